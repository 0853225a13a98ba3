// The hot path makes no heap allocation in steady state (DESIGN.md, "The hot
// path"). Two heaps are counted over a window of append + poll pairs after a
// warm-up: the global operator new (replaced below for the whole test binary,
// counting only while a window is open) and the library's own heap
// (detail::heap_allocation_count(): every detail::heap_allocate, whichever heap
// backs it).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "persist_support.hpp"
#include "ringbus/detail/memory.hpp"
#include "ringbus/ringbus.hpp"
#include "stress_support.hpp"

// --- counting operator new ----------------------------------------------------------
//
// Replacing operator new affects every test in this binary, so it counts only
// while a window is open (from any thread: a library thread allocating on our
// behalf counts too) and otherwise just forwards to malloc.
namespace {

std::atomic<bool> counting{false};
std::atomic<std::uint64_t> counted_news{0};
std::atomic<std::uint64_t> counted_deletes{0};

void* allocate(std::size_t bytes) noexcept {
  if (counting.load(std::memory_order_relaxed)) counted_news.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(bytes == 0 ? 1 : bytes);
}

void* allocate_aligned(std::size_t bytes, std::align_val_t alignment) noexcept {
  if (counting.load(std::memory_order_relaxed)) counted_news.fetch_add(1, std::memory_order_relaxed);
  std::size_t align = static_cast<std::size_t>(alignment);
  if (align < sizeof(void*)) align = sizeof(void*);
  void* p = nullptr;
  if (::posix_memalign(&p, align, bytes == 0 ? 1 : bytes) != 0) return nullptr;
  return p;
}

void release(void* p) noexcept {
  if (p == nullptr) return;
  if (counting.load(std::memory_order_relaxed)) counted_deletes.fetch_add(1, std::memory_order_relaxed);
  std::free(p);
}

void* allocate_or_throw(std::size_t bytes) {
  void* p = allocate(bytes);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* allocate_aligned_or_throw(std::size_t bytes, std::align_val_t alignment) {
  void* p = allocate_aligned(bytes, alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

} // namespace

void* operator new(std::size_t n) { return allocate_or_throw(n); }
void* operator new[](std::size_t n) { return allocate_or_throw(n); }
void* operator new(std::size_t n, std::align_val_t a) { return allocate_aligned_or_throw(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocate_aligned_or_throw(n, a); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return allocate_aligned(n, a); }
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate_aligned(n, a);
}
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }
void operator delete(void* p, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }

namespace {

using namespace std::chrono_literals;
using ringbus::Bus;
using ringbus::ByteView;
using ringbus::Claim;
using ringbus::Consumer;
using ringbus::ConsumerOptions;
using ringbus::Errc;
using ringbus::Message;
using ringbus::OverflowPolicy;
using ringbus::Producer;
using ringbus::Record;
using ringbus::Records;
using ringbus::Result;
using ringbus::TopicOptions;
using ringbus::WaitStrategy;
using ringbus::stress::Rng;
using ringbus::stress::scaled;

struct Allocations {
  std::uint64_t news = 0;    // global operator new calls
  std::uint64_t deletes = 0; // global operator delete calls
  std::uint64_t library = 0; // ringbus::detail::heap_allocate calls
};

// Counts both heaps from construction to stop(). Nothing in between may use
// doctest (its assertions may allocate): loops record mismatches in plain
// counters that are checked after the window.
class AllocationWindow {
 public:
  AllocationWindow() : library_before_(ringbus::detail::heap_allocation_count()) {
    counted_news.store(0, std::memory_order_relaxed);
    counted_deletes.store(0, std::memory_order_relaxed);
    counting.store(true, std::memory_order_seq_cst);
  }
  Allocations stop() {
    counting.store(false, std::memory_order_seq_cst);
    return {counted_news.load(std::memory_order_relaxed), counted_deletes.load(std::memory_order_relaxed),
            ringbus::detail::heap_allocation_count() - library_before_};
  }

 private:
  std::uint64_t library_before_;
};

void check_none(const Allocations& a) {
  CHECK(a.news == 0);
  CHECK(a.deletes == 0);
  CHECK(a.library == 0);
}

// Pairs measured per test: enough for every slow path (rolls, wraps, gaps) to
// run thousands of times.
std::uint64_t pairs() { return scaled(1'000'000, 100'000); }
// Warm-up: several laps, so every page is touched and every lazily built thing built.
constexpr std::uint64_t warmup_pairs = 20'000;

// 4 x 16 KiB: small enough that a million small records wrap it many times.
TopicOptions small_ring(OverflowPolicy overflow = OverflowPolicy::block, WaitStrategy wait = WaitStrategy::backoff) {
  TopicOptions o;
  o.segment_bytes = std::size_t{16} << 10;
  o.segment_count = 4;
  o.overflow = overflow;
  o.wait = wait;
  return o;
}

// Checks that a poll returned exactly the records [expected, expected + n)
// and counts them; mismatches go to `wrong` (no doctest inside a window).
struct Tally {
  std::uint64_t expected = 0;
  std::uint64_t delivered = 0;
  std::uint64_t wrong = 0;
  void take(const Record& r) noexcept {
    if (r.offset != expected) ++wrong;
    expected = r.offset + 1;
    ++delivered;
  }
  void take(const Records& records) noexcept {
    for (const Record& r : records) take(r);
  }
};

// A value of 0..255 bytes, its size derived from the offset.
struct Values {
  std::vector<std::byte> bytes = std::vector<std::byte>(512, std::byte{0x5a});
  ByteView at(std::uint64_t offset) noexcept {
    const std::size_t size = static_cast<std::size_t>(ringbus::stress::mix64(offset) & 255);
    return ByteView(bytes.data(), size);
  }
};

// Warms up, then counts allocations over pairs() of: append_one(i), then one poll.
// Topic "t" on a small ring, its producer and one consumer.
struct OneTopic {
  OneTopic() {
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    producer = bus.producer("t").value();
    consumer = bus.consumer("t").value();
  }
  Bus bus;
  Producer producer;
  Consumer consumer;
};

// No allocation, no refused append, every record delivered intact.
void check_clean(const Allocations& a, std::uint64_t failed, const Tally& tally, std::uint64_t appended) {
  check_none(a);
  CHECK(failed == 0);
  CHECK(tally.wrong == 0);
  CHECK(tally.delivered == appended);
}

// How each pair reads: poll(), or poll_one (detail::take_one_in_place, the
// record decoded into the caller's Record).
enum class Read { poll, poll_one };

template <class AppendOne>
void warm_up_and_measure(Consumer& consumer, AppendOne append_one, Tally& tally, Allocations& allocations,
                         Read read = Read::poll) {
  Record record;
  const auto read_one = [&] {
    if (read == Read::poll_one) {
      if (consumer.poll_one(record).ok()) {
        tally.take(record);
      } else {
        ++tally.wrong;
      }
      return;
    }
    Result<Records> polled = consumer.poll();
    if (polled.ok()) {
      tally.take(*polled);
    } else {
      ++tally.wrong;
    }
  };
  for (std::uint64_t i = 0; i < warmup_pairs; ++i) {
    append_one(i);
    read_one();
  }
  const std::uint64_t n = pairs();
  AllocationWindow window;
  for (std::uint64_t i = warmup_pairs; i < warmup_pairs + n; ++i) {
    append_one(i);
    read_one();
  }
  allocations = window.stop();
}

} // namespace

TEST_SUITE_BEGIN("allocation");
namespace {
// Pairs of append (keyed and value-only in turn) and one read, by `read`.
void check_append_and_read_allocate_nothing(Read read) {
  OneTopic t;
  Values values;
  std::uint64_t failed = 0;
  std::uint64_t key = 0;
  Tally tally;
  Allocations a;
  warm_up_and_measure(
      t.consumer,
      [&](std::uint64_t i) {
        key = i;
        // Alternate the keyed (general) and value-only (packed) forms.
        Result<std::uint64_t> r =
            (i & 1) != 0 ? t.producer.append(ringbus::bytes_of(key), values.at(i)) : t.producer.append(values.at(i));
        if (!r.ok()) ++failed;
      },
      tally, a, read);
  check_clean(a, failed, tally, warmup_pairs + pairs());
}
} // namespace

TEST_CASE("steady state: append and poll allocate nothing") { check_append_and_read_allocate_nothing(Read::poll); }

TEST_CASE("steady state: append and poll_one allocate nothing") {
  check_append_and_read_allocate_nothing(Read::poll_one);
}

// Persistent topics: inside a segment, append (CRC32C included) and poll
// allocate nothing, and neither does the bus's flusher thread flushing an
// `interval` topic meanwhile. A segment roll is not steady state here: it
// names, creates and maps a file (a few small allocations once per segment).
TEST_CASE("steady state: a persistent topic's append and poll allocate nothing between rolls") {
  for (ringbus::Durability durability : {ringbus::Durability::none, ringbus::Durability::interval}) {
    CAPTURE(ringbus::to_string(durability));
    ringbus::test::TempBusDir dir;
    Result<Bus> bus = Bus::open(dir.path());
    REQUIRE(bus.ok());
    TopicOptions o;
    o.segment_bytes = std::size_t{8} << 20; // the window below stays inside the first segment
    o.segment_count = 2;
    o.durability = durability;
    o.flush_interval = std::chrono::milliseconds(1);
    REQUIRE(bus->create_topic("p", o).ok());
    Producer producer = bus->producer("p").value();
    Consumer consumer = bus->consumer("p").value();
    std::uint64_t failed = 0;
    Tally tally;
    const std::uint64_t value = 42;
    for (std::uint64_t i = 0; i < 1000; ++i) {
      if (!producer.append(ringbus::bytes_of(value)).ok()) ++failed;
      tally.take(consumer.poll().value());
    }
    // The flusher's first pass allocates (its lists of topics, the next
    // segment it prepares): wait until it prepared that segment, however
    // long a loaded machine keeps the thread from running, then a little
    // more for the rest of the pass.
    const auto prepared = [&] {
      for (const auto& e : std::filesystem::directory_iterator(dir.topic_dir("p"))) {
        if (e.path().filename().string().starts_with("next-")) return true;
      }
      return false;
    };
    for (int waited_ms = 0; !prepared() && waited_ms < 30'000; ++waited_ms) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(prepared());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const std::uint64_t n = 60'000; // 64-byte frames: under 4 MiB
    AllocationWindow window;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (!producer.append(ringbus::bytes_of(value)).ok()) ++failed;
      Result<Records> polled = consumer.poll();
      if (polled.ok()) {
        tally.take(*polled);
      } else {
        ++tally.wrong;
      }
      if (i % 10'000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2)); // let it flush
    }
    const Allocations a = window.stop();
    check_clean(a, failed, tally, 1000 + n);
  }
}

TEST_CASE("steady state: try_append, including its would_block refusals, allocates nothing") {
  OneTopic t;
  Producer& producer = t.producer;
  Consumer& consumer = t.consumer;
  Values values;
  Tally tally;
  // Rounds fill the ring until try_append refuses, then drain it, until
  // `records` more records went through.
  const auto run = [&](std::uint64_t records, std::uint64_t& rounds, std::uint64_t& refusals, std::uint64_t& failed) {
    const std::uint64_t until = tally.delivered + records;
    while (tally.delivered < until) {
      ++rounds;
      for (;;) {
        Result<std::uint64_t> r = producer.try_append(values.at(tally.expected + rounds));
        if (r.code() == Errc::would_block) {
          ++refusals;
          break;
        }
        if (!r.ok()) {
          ++failed;
          break;
        }
      }
      for (;;) {
        Result<Records> polled = consumer.poll();
        if (!polled.ok()) ++failed;
        if (!polled.ok() || polled->empty()) break;
        tally.take(*polled);
      }
    }
  };
  std::uint64_t rounds = 0;
  std::uint64_t refusals = 0;
  std::uint64_t failed = 0;
  run(warmup_pairs, rounds, refusals, failed);
  rounds = 0;
  refusals = 0;
  AllocationWindow window;
  run(pairs(), rounds, refusals, failed);
  const Allocations a = window.stop();
  check_none(a);
  CHECK(failed == 0);
  CHECK(rounds > 100);
  CHECK(refusals == rounds); // every round ended in a would_block
  CHECK(tally.wrong == 0);
}

TEST_CASE("steady state: append_batch allocates nothing") {
  OneTopic t;
  Producer& producer = t.producer;
  Consumer& consumer = t.consumer;
  Values values;
  std::vector<Message> batch(8);
  std::vector<std::uint64_t> keys(8);
  const ringbus::Header header{ByteView("h"), ByteView("v")};
  std::uint64_t failed = 0;
  std::uint64_t next = 0;
  Tally tally;
  Allocations a;
  warm_up_and_measure(
      consumer,
      [&](std::uint64_t i) {
        const std::size_t n = 1 + (i % 8);
        const bool packed = (i % 3) == 0; // same-size values only: the packed form
        for (std::size_t k = 0; k < n; ++k) {
          keys[k] = next + k;
          batch[k] = packed ? Message{ByteView(), values.at(i), ringbus::timestamp_now, {}}
                            : Message{ringbus::bytes_of(keys[k]), values.at(next + k), ringbus::timestamp_now,
                                      (k & 1) != 0 ? std::span<const ringbus::Header>(&header, 1)
                                                   : std::span<const ringbus::Header>()};
        }
        if (!producer.append_batch(std::span<const Message>(batch.data(), n)).ok()) ++failed;
        next += n;
      },
      tally, a);
  check_clean(a, failed, tally, next);
}

TEST_CASE("steady state: append_values allocates nothing") {
  OneTopic t;
  Producer& producer = t.producer;
  Consumer& consumer = t.consumer;
  std::vector<std::uint64_t> block(64);
  std::uint64_t failed = 0;
  std::uint64_t next = 0;
  Tally tally;
  Allocations a;
  warm_up_and_measure(
      consumer,
      [&](std::uint64_t i) {
        const std::size_t n = 1 + (i % 64);
        for (std::size_t k = 0; k < n; ++k) block[k] = next + k;
        if (!producer.append_values(std::span<const std::uint64_t>(block.data(), n)).ok()) ++failed;
        next += n;
      },
      tally, a);
  check_clean(a, failed, tally, next);
}

TEST_CASE("steady state: claim and commit allocate nothing") {
  OneTopic t;
  Producer& producer = t.producer;
  Consumer& consumer = t.consumer;
  std::uint64_t failed = 0;
  std::uint64_t next = 0;
  Tally tally;
  Allocations a;
  warm_up_and_measure(
      consumer,
      [&](std::uint64_t i) {
        // Alternate a keyed one-record claim, a packed claim_values and a
        // claim_values_up_to of a batch that ends on a line pair (of 256
        // asked, 252 or whatever fills the pairs from where the writer stands).
        const bool values = (i & 1) != 0;
        const bool up_to = (i % 4) == 3;
        const std::size_t n = values ? 1 + (i % 16) : 1;
        Result<Claim> claim = !values ? producer.claim(24, 8)
                              : up_to ? producer.claim_values_up_to(sizeof(std::uint64_t), 256)
                                      : producer.claim_values(sizeof(std::uint64_t), n);
        if (!claim.ok()) {
          ++failed;
          return;
        }
        if (values) {
          for (std::size_t k = 0; k < claim->count(); ++k) claim->values<std::uint64_t>()[k] = next + k;
        } else {
          std::memcpy(claim->key().data(), &next, 8);
          std::memset(claim->value().data(), 0x42, claim->value().size());
        }
        const std::size_t claimed = claim->count();
        if (!claim->commit().ok()) ++failed;
        next += claimed;
      },
      tally, a);
  check_clean(a, failed, tally, next);
}

TEST_CASE("steady state: a lapped consumer of an overwrite topic allocates nothing") {
  Bus bus;
  REQUIRE(bus.create_topic("t", small_ring(OverflowPolicy::overwrite)).ok());
  Producer producer = bus.producer("t").value();
  Consumer consumer = bus.consumer("t").value();
  Values values;
  std::uint64_t failed = 0;
  std::uint64_t gaps = 0;
  std::uint64_t lost = 0;
  std::uint64_t delivered = 0;
  std::uint64_t wrong = 0;
  std::uint64_t expected = 0;
  // Every 256th pair the producer first runs a whole ring ahead, so the
  // next poll reports a gap.
  const auto pair = [&](std::uint64_t i) {
    const std::uint64_t burst = (i % 256) == 0 ? 1000 : 1;
    for (std::uint64_t k = 0; k < burst; ++k) {
      if (!producer.append(values.at(i + k)).ok()) ++failed;
    }
    Result<Records> polled = consumer.poll();
    if (!polled.ok()) {
      ++failed;
      return;
    }
    for (const ringbus::Gap& g : polled->gaps()) {
      if (g.first_lost != expected) ++wrong;
      expected += g.count;
      lost += g.count;
      ++gaps;
    }
    for (const Record& r : *polled) {
      if (r.offset != expected) ++wrong;
      expected = r.offset + 1;
      ++delivered;
    }
  };
  for (std::uint64_t i = 0; i < warmup_pairs; ++i) pair(i);
  const std::uint64_t gaps_before = gaps;
  AllocationWindow window;
  for (std::uint64_t i = warmup_pairs; i < warmup_pairs + pairs(); ++i) pair(i);
  const Allocations a = window.stop();
  check_none(a);
  CHECK(failed == 0);
  CHECK(wrong == 0);
  CHECK(gaps - gaps_before >= pairs() / 256 / 2); // the gap path ran
  CHECK(consumer.lost("t").value() == lost);
  CHECK(delivered > 0);
}

TEST_CASE("steady state: a consumer of two topics allocates nothing") {
  Bus bus;
  REQUIRE(bus.create_topic("a", small_ring()).ok());
  REQUIRE(bus.create_topic("b", small_ring(OverflowPolicy::overwrite)).ok());
  Producer producer_a = bus.producer("a").value();
  Producer producer_b = bus.producer("b").value();
  ConsumerOptions options;
  options.topics = {"a", "b"};
  Consumer consumer = bus.consumer(options).value();
  Values values;
  std::uint64_t failed = 0;
  std::uint64_t from_a = 0;
  std::uint64_t from_b = 0;
  std::uint64_t wrong = 0;
  std::uint64_t next_a = 0;
  std::uint64_t next_b = 0;
  const auto pair = [&](std::uint64_t i) {
    if (!producer_a.append(values.at(i)).ok()) ++failed;
    if (!producer_b.append(values.at(i + 1)).ok()) ++failed;
    Result<Records> polled = consumer.poll();
    if (!polled.ok()) {
      ++failed;
      return;
    }
    for (const Record& r : *polled) {
      std::uint64_t& next = r.topic == "a" ? next_a : next_b;
      (r.topic == "a" ? from_a : from_b) += 1;
      if (r.offset != next) ++wrong;
      next = r.offset + 1;
    }
  };
  for (std::uint64_t i = 0; i < warmup_pairs; ++i) pair(i);
  AllocationWindow window;
  for (std::uint64_t i = warmup_pairs; i < warmup_pairs + pairs(); ++i) pair(i);
  const Allocations a = window.stop();
  check_none(a);
  CHECK(failed == 0);
  CHECK(wrong == 0);
  CHECK(from_a == warmup_pairs + pairs());
  CHECK(from_b == warmup_pairs + pairs());
}

TEST_CASE("steady state: a blocking-strategy topic allocates nothing, asleep or awake") {
  Bus bus;
  REQUIRE(bus.create_topic("t", small_ring(OverflowPolicy::block, WaitStrategy::blocking)).ok());
  Producer producer = bus.producer("t").value();
  Consumer consumer = bus.consumer("t").value();
  Values values;
  const std::uint64_t total = warmup_pairs + pairs();
  std::atomic<bool> warmed{false};
  std::atomic<bool> reader_done{false};
  std::atomic<bool> window_closed{false};
  std::uint64_t failed = 0;
  std::uint64_t consumer_failed = 0;
  Tally tally;
  // The consumer runs on its own thread with long timeouts, so it really
  // sleeps in the kernel and the producer's publish really wakes it; the
  // window counts allocations from both threads.
  std::thread reader([&] {
    while (tally.expected < total) {
      Result<Records> polled = consumer.poll(SIZE_MAX, 10s);
      if (!polled.ok()) {
        ++consumer_failed;
        break;
      }
      tally.take(*polled);
      if (tally.expected >= warmup_pairs) warmed.store(true, std::memory_order_release);
    }
    // Ends only after the window is closed: std::thread frees its state as
    // the thread exits, which is the test's allocation, not the library's.
    reader_done.store(true, std::memory_order_release);
    while (!window_closed.load(std::memory_order_acquire)) std::this_thread::yield();
  });
  Rng rng(ringbus::stress::test_seed());
  const auto append = [&](std::uint64_t i) {
    if (!producer.append(values.at(i)).ok()) ++failed;
    // Pause now and then so the consumer runs dry and goes to sleep.
    if (rng.one_in(1024)) std::this_thread::sleep_for(std::chrono::microseconds(500));
  };
  for (std::uint64_t i = 0; i < warmup_pairs; ++i) append(i);
  while (!warmed.load(std::memory_order_acquire)) std::this_thread::yield();
  AllocationWindow window;
  for (std::uint64_t i = warmup_pairs; i < total; ++i) append(i);
  while (!reader_done.load(std::memory_order_acquire)) std::this_thread::yield();
  const Allocations a = window.stop();
  window_closed.store(true, std::memory_order_release);
  reader.join();
  check_none(a);
  CHECK(failed == 0);
  CHECK(consumer_failed == 0);
  CHECK(tally.wrong == 0);
  CHECK(tally.delivered == total);
}

// SharedProducer: send (every form), pump, poll and offset_of, counted over
// a window after a warm-up. The queue's blocks were allocated at creation.
TEST_CASE("steady state: a shared producer's send, pump and offset_of allocate nothing") {
  Bus bus;
  REQUIRE(bus.create_topic("t", small_ring()).ok());
  ringbus::SharedProducerOptions options;
  options.sequencer = ringbus::SequencerMode::caller;
  options.max_record_bytes = 1024;
  ringbus::SharedProducer shared = bus.shared_producer("t", options).value();
  ringbus::SharedProducer::Sender sender = shared.sender().value();
  Consumer consumer = bus.consumer("t").value();
  Values values;
  const ringbus::Header header{ByteView("h"), ByteView("v")};
  std::vector<Message> batch(8);
  std::vector<std::uint64_t> ids(16);
  std::uint64_t key = 0;
  std::uint64_t failed = 0;
  std::uint64_t sent = 0;
  Tally tally;
  const auto step = [&](std::uint64_t i) {
    key = i;
    Result<ringbus::Ticket> t = ringbus::Ticket{};
    switch (i % 5) {
      case 0: t = sender.send(ringbus::bytes_of(key)); break; // inline
      case 1: t = sender.send(ringbus::bytes_of(key), values.at(i)); break;
      case 2:
        t = sender.try_send(Message{ByteView(), values.at(i), 7, std::span<const ringbus::Header>(&header, 1)});
        break;
      case 3:
        for (std::size_t k = 0; k < batch.size(); ++k)
          batch[k] = Message{ByteView(), values.at(i + k), ringbus::timestamp_now, {}};
        t = sender.send_batch(batch);
        break;
      default:
        for (std::size_t k = 0; k < ids.size(); ++k) ids[k] = i + k;
        t = sender.send_values(std::span<const std::uint64_t>(ids));
        break;
    }
    if (!t.ok()) {
      ++failed;
      return;
    }
    sent = sender.next_ticket().sequence;
    if (!shared.pump().ok()) ++failed;
    if (sender.offset_of(ringbus::Ticket{sent - 1}).code() != Errc::ok) ++failed; // pumped: resolved
    Result<Records> polled = consumer.poll();
    if (polled.ok()) {
      tally.take(*polled);
    } else {
      ++failed;
    }
  };
  for (std::uint64_t i = 0; i < warmup_pairs; ++i) step(i);
  const std::uint64_t n = pairs() / 4;
  AllocationWindow window;
  for (std::uint64_t i = warmup_pairs; i < warmup_pairs + n; ++i) step(i);
  const Allocations a = window.stop();
  check_none(a);
  CHECK(failed == 0);
  CHECK(tally.wrong == 0);
  CHECK(tally.delivered == sent);
}

// Thread mode: the sequencer thread runs throughout the window (started,
// like the queue, before it).
TEST_CASE("steady state: a shared producer's sequencer thread allocates nothing") {
  Bus bus;
  REQUIRE(bus.create_topic("t", small_ring()).ok());
  ringbus::SharedProducerOptions options;
  options.max_record_bytes = 1024;
  options.idle_wait = WaitStrategy::yield;
  ringbus::SharedProducer shared = bus.shared_producer("t", options).value();
  ringbus::SharedProducer::Sender sender = shared.sender().value();
  Consumer consumer = bus.consumer("t").value();
  Values values;
  std::uint64_t key = 0;
  std::uint64_t failed = 0;
  Tally tally;
  const auto step = [&](std::uint64_t i) {
    key = i;
    Result<ringbus::Ticket> t =
        (i & 1) != 0 ? sender.send(ringbus::bytes_of(key), values.at(i)) : sender.send(ringbus::bytes_of(key));
    if (!t.ok()) {
      ++failed;
      return;
    }
    // Every 64th record: wait for its offset, then read everything up to it.
    if (i % 64 == 63) {
      if (!sender.wait_offset(*t, std::chrono::seconds(30)).ok()) ++failed;
      while (tally.delivered < t->sequence + 1) {
        Result<Records> polled = consumer.poll();
        if (!polled.ok()) {
          ++failed;
          break;
        }
        tally.take(*polled);
      }
    }
  };
  for (std::uint64_t i = 0; i < warmup_pairs; ++i) step(i);
  const std::uint64_t n = pairs() / 4;
  AllocationWindow window;
  for (std::uint64_t i = warmup_pairs; i < warmup_pairs + n; ++i) step(i);
  const Allocations a = window.stop();
  check_none(a);
  CHECK(failed == 0);
  CHECK(tally.wrong == 0);
  CHECK(shared.close().ok());
}

TEST_SUITE_END();
