// Multi-threaded stress of the log's concurrency design (the pairing diagram
// at the top of ringbus/detail/log.hpp): one producer mixing every append API
// against several consumers, on rings small enough to wrap thousands of times.
// Every consumer checks every record's offset, key and payload hash, not only
// a count. RINGBUS_TEST_SCALE=small shrinks the runs for sanitized builds.
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ringbus/ringbus.hpp"
#include "stress_support.hpp"

namespace {

using namespace std::chrono_literals;
using ringbus::Bus;
using ringbus::Consumer;
using ringbus::ConsumerOptions;
using ringbus::Errc;
using ringbus::OverflowPolicy;
using ringbus::Producer;
using ringbus::Record;
using ringbus::Records;
using ringbus::Result;
using ringbus::StartPosition;
using ringbus::Status;
using ringbus::TopicOptions;
using ringbus::WaitStrategy;
using ringbus::stress::Api;
using ringbus::stress::api_count;
using ringbus::stress::api_names;
using ringbus::stress::check_poll;
using ringbus::stress::check_record;
using ringbus::stress::Failures;
using ringbus::stress::MixedWriter;
using ringbus::stress::PayloadPool;
using ringbus::stress::Progress;
using ringbus::stress::Rng;
using ringbus::stress::scaled;
using ringbus::stress::Stream;
using ringbus::stress::test_seed;
using ringbus::stress::Watchdog;

// 4 x 64 KiB: a 256 KiB ring holds about a hundred 0-4 KiB records, so ten
// million of them wrap it tens of thousands of times.
constexpr std::size_t segment_bytes = std::size_t{64} << 10;
constexpr std::size_t segment_count = 4;
constexpr std::uint64_t ring_bytes = segment_bytes * segment_count;

// A run that makes no progress for this long has deadlocked or lost a wake-up.
constexpr auto stall_limit = 30s;

TopicOptions small_ring(OverflowPolicy overflow, WaitStrategy wait) {
  TopicOptions o;
  o.segment_bytes = segment_bytes;
  o.segment_count = segment_count;
  o.overflow = overflow;
  o.wait = wait;
  return o;
}

// How a consumer dawdles between polls.
enum class Pace {
  eager,       // polls back to back
  yields,      // often gives up the CPU
  sleeps,      // now and then sleeps a little: gets lapped on overwrite topics
  small_polls, // asks for 1-7 records at a time (a quarter of its reads are poll_one): splits batch frames
};

std::size_t poll_size(Pace pace, Rng& rng) {
  if (pace == Pace::small_polls) return rng.one_in(2) ? 1 : 2 + rng.below(6);
  if (rng.one_in(8)) return 1 + rng.below(7);
  return rng.one_in(2) ? SIZE_MAX : 64 + rng.below(1024);
}

void dawdle(Pace pace, Rng& rng) {
  switch (pace) {
    case Pace::eager:
    case Pace::small_polls: return;
    case Pace::yields:
      if (rng.one_in(4)) std::this_thread::yield();
      return;
    case Pace::sleeps:
      if (rng.one_in(32)) std::this_thread::sleep_for(std::chrono::microseconds(50 + rng.below(500)));
      return;
  }
}

struct ReaderResult {
  Stream stream;
  std::uint64_t polls = 0;
  std::uint64_t lost_reported = 0; // Consumer::lost() at the end
};

// Reads topic until offset `total` (or a stop), checking every poll. On a
// defect it records it, stops everyone, and closes its consumer so that the
// producer is not held back.
void read_to_end(Consumer consumer, std::string_view topic, std::uint64_t total, Pace pace, bool overwrite,
                 std::uint64_t seed, Progress& progress, Failures& failures, std::atomic<bool>& stop, ReaderResult& out,
                 std::string_view name) {
  Rng rng(seed);
  Stream& s = out.stream;
  s.topic = topic;
  // No .value() on this thread: a throw here would terminate the whole run.
  const Result<std::uint64_t> start = consumer.position(topic);
  if (!start.ok()) {
    failures.add(std::string(name) + ": position() failed: " + std::string(start.message()));
    return;
  }
  s.expected = *start;
  std::string why;
  Record record;
  while (s.expected < total && !stop.load(std::memory_order_relaxed)) {
    const std::size_t budget = poll_size(pace, rng);
    if (budget == 1 && pace == Pace::small_polls && rng.one_in(2)) { // poll_one: its own read path
      const Status got = consumer.poll_one(record, 20ms);
      ++out.polls;
      if (!got.ok() && got.code() != Errc::timed_out) {
        failures.add(std::string(name) + ": poll_one failed at offset " + std::to_string(s.expected) + ": " +
                     std::string(got.message()));
        break;
      }
      // poll_one reports no gaps: lost() says how many records the stream
      // skips. (So where a gap starts is not checked here; poll's gaps are.)
      if (overwrite) {
        const Result<std::uint64_t> lost = consumer.lost(topic);
        if (!lost.ok() || *lost < s.lost) {
          failures.add(std::string(name) + ": Consumer::lost() says " +
                       (lost.ok() ? std::to_string(*lost) : std::string(lost.message())) + " after " +
                       std::to_string(s.lost));
          stop.store(true, std::memory_order_relaxed);
          break;
        }
        if (*lost > s.lost) {
          s.expected += *lost - s.lost;
          s.lost = *lost;
          ++s.gaps;
        }
      }
      if (got.ok() && !check_record(record, std::span<Stream>(&s, 1), why)) {
        failures.add(std::string(name) + ": poll_one: " + why);
        stop.store(true, std::memory_order_relaxed);
        break;
      }
      progress.value.store(s.expected, std::memory_order_relaxed);
      dawdle(pace, rng);
      continue;
    }
    Result<Records> polled = consumer.poll(budget, 20ms);
    ++out.polls;
    if (!polled.ok()) {
      failures.add(std::string(name) + ": poll failed at offset " + std::to_string(s.expected) + ": " +
                   std::string(polled.message()));
      break;
    }
    if (!check_poll(*polled, std::span<Stream>(&s, 1), overwrite, why)) {
      failures.add(std::string(name) + ": " + why);
      stop.store(true, std::memory_order_relaxed);
      break;
    }
    if (overwrite) {
      const Result<std::uint64_t> lost = consumer.lost(topic);
      if (!lost.ok() || *lost != s.lost) {
        failures.add(std::string(name) + ": Consumer::lost() says " +
                     (lost.ok() ? std::to_string(*lost) : std::string(lost.message())) +
                     " but the gaps reported add up to " + std::to_string(s.lost));
        stop.store(true, std::memory_order_relaxed);
        break;
      }
    }
    progress.value.store(s.expected, std::memory_order_relaxed);
    dawdle(pace, rng);
  }
  const Result<std::uint64_t> lost = consumer.lost(topic);
  out.lost_reported = lost.ok() ? *lost : UINT64_MAX;
  consumer.close();
}

std::string describe_writer(const MixedWriter& w) {
  std::string out = "api calls:";
  for (std::size_t i = 0; i < api_count; ++i) {
    out += " " + std::string(api_names[i]) + "=" + std::to_string(w.calls(static_cast<Api>(i)));
  }
  return out;
}

void check_every_api_ran(const MixedWriter& w) {
  for (std::size_t i = 0; i < api_count; ++i) {
    INFO("api ", api_names[i]);
    CHECK(w.calls(static_cast<Api>(i)) > 0);
  }
}

// One producer (every API) and three consumers of one small-ring topic.
struct FanOutRun {
  std::uint64_t total = 0;
  std::vector<ReaderResult> readers;
  std::uint64_t produced = 0;
  std::uint64_t value_bytes = 0;
  bool watchdog_fired = false;
  std::string producer_error;
  std::string writer_summary;
  Failures failures;
};

constexpr std::array<std::string_view, 3> consumer_names = {"consumer 0", "consumer 1", "consumer 2"};

void run_fan_out(OverflowPolicy overflow, const std::vector<Pace>& paces, std::uint64_t total, FanOutRun& run,
                 bool line_aligned_appends = false) {
  REQUIRE(paces.size() <= consumer_names.size());
  const std::uint64_t seed = test_seed();
  const PayloadPool pool(seed);
  Bus bus;
  TopicOptions topic = small_ring(overflow, WaitStrategy::yield);
  topic.line_aligned_appends = line_aligned_appends;
  REQUIRE(bus.create_topic("stress", topic).ok());
  Producer producer = bus.producer("stress").value();
  std::vector<Consumer> consumers;
  for (std::size_t i = 0; i < paces.size(); ++i) {
    // Every consumer is open before the first append: from offset 0 on, it sees everything.
    ConsumerOptions options;
    options.topics = {"stress"};
    options.override_wait = true;
    options.wait = i % 2 == 0 ? WaitStrategy::yield : WaitStrategy::backoff;
    consumers.push_back(bus.consumer(options).value());
  }

  run.total = total;
  run.readers.resize(paces.size());
  std::atomic<bool> stop{false};
  Progress produced;
  std::vector<Progress> read(paces.size());
  Watchdog watchdog(
      stall_limit,
      [&] {
        std::uint64_t sum = produced.value.load(std::memory_order_relaxed);
        for (Progress& p : read) sum += p.value.load(std::memory_order_relaxed);
        return sum;
      },
      [&] { bus.close(); });

  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < paces.size(); ++i) {
    threads.emplace_back(read_to_end, std::move(consumers[i]), std::string_view("stress"), total, paces[i],
                         overflow == OverflowPolicy::overwrite, seed + 1 + i, std::ref(read[i]), std::ref(run.failures),
                         std::ref(stop), std::ref(run.readers[i]), consumer_names[i]);
  }
  MixedWriter writer(producer, pool, seed, stop);
  // Under overwrite the producer never waits, so it would lap every consumer
  // on every poll; now and then it gives them a chance to catch up, so that
  // reading in step and being lapped both happen, and the switch between them.
  const auto pace = [overflow](Rng& rng) {
    if (overflow != OverflowPolicy::overwrite) return;
    if (rng.one_in(16)) std::this_thread::yield();
    if (rng.one_in(512)) std::this_thread::sleep_for(200us);
  };
  if (!writer.run(total, produced.value, run.producer_error, pace)) stop.store(true, std::memory_order_relaxed);
  for (std::thread& t : threads) t.join();
  watchdog.stop();
  run.watchdog_fired = watchdog.fired();
  run.produced = writer.next_offset();
  run.value_bytes = writer.value_bytes();
  run.writer_summary = describe_writer(writer);
  check_every_api_ran(writer);
}

void report(const FanOutRun& run) {
  MESSAGE("seed ", test_seed(), ": ", run.produced, " records, ", run.value_bytes >> 20,
          " MiB of values, >= ", run.value_bytes / ring_bytes, " ring wraps; ", run.writer_summary);
  for (std::size_t i = 0; i < run.readers.size(); ++i) {
    const ReaderResult& r = run.readers[i];
    MESSAGE("consumer ", i, ": delivered ", r.stream.delivered, ", lost ", r.stream.lost, " in ", r.stream.gaps,
            " gaps, ", r.polls, " polls");
  }
}

// A block-policy fan-out of `total` records: every consumer gets every one,
// intact and in order, and the ring wrapped at least `min_wraps` times.
void check_block_fan_out(std::uint64_t total, std::uint64_t min_wraps, bool line_aligned_appends) {
  FanOutRun run;
  run_fan_out(OverflowPolicy::block, {Pace::eager, Pace::yields, Pace::small_polls}, total, run, line_aligned_appends);
  report(run);
  INFO("seed ", test_seed(), "\n", run.failures.summary());
  CHECK_FALSE(run.watchdog_fired);
  CHECK(run.failures.count() == 0);
  CHECK(run.producer_error.empty());
  CHECK(run.produced == total);
  // Frames hold at least their values, so the ring wrapped at least this often.
  CHECK(run.value_bytes / ring_bytes >= min_wraps);
  for (const ReaderResult& r : run.readers) {
    CHECK(r.stream.expected == total);
    CHECK(r.stream.delivered == total); // nothing lost
    CHECK(r.stream.gaps == 0);
    CHECK(r.lost_reported == 0);
  }
}

} // namespace

TEST_SUITE_BEGIN("stress");
TEST_CASE("stress: block policy delivers every record intact to every consumer across thousands of ring wraps") {
  check_block_fan_out(scaled(10'000'000, 200'000), scaled(1000, 300), false);
}

// The same with every per-record append padded to a cache line's end, mixed
// with batches and claims in the 8-byte layout (MixedWriter uses every API).
TEST_CASE("stress: line-aligned appends deliver every record intact to every consumer across ring wraps") {
  check_block_fan_out(scaled(1'000'000, 100'000), scaled(100, 30), true);
}

TEST_CASE("stress: overwrite policy tells a lapped consumer exactly which records it lost") {
  const std::uint64_t total = scaled(10'000'000, 200'000);
  FanOutRun run;
  run_fan_out(OverflowPolicy::overwrite, {Pace::sleeps, Pace::yields, Pace::small_polls}, total, run);
  report(run);
  INFO("seed ", test_seed(), "\n", run.failures.summary());
  CHECK_FALSE(run.watchdog_fired);
  CHECK(run.failures.count() == 0);
  CHECK(run.producer_error.empty());
  CHECK(run.produced == total);
  CHECK(run.value_bytes / ring_bytes >= scaled(1000, 300));
  for (const ReaderResult& r : run.readers) {
    // Every offset was either delivered (intact) or reported lost, once.
    CHECK(r.stream.expected == total);
    CHECK(r.stream.delivered + r.stream.lost == total);
    CHECK(r.lost_reported == r.stream.lost);
    CHECK(r.stream.delivered > 0);
  }
  // The sleeper falls a whole ring behind a producer that never waits: the
  // gap path must have run, or this test proved nothing about it.
  CHECK(run.readers[0].stream.lost > 0);
}

namespace {

// A consumer opened mid-stream by the churn thread.
struct Visitor {
  Consumer consumer;
  Stream stream;
  std::uint64_t quota = 0;      // records to read before closing
  std::uint64_t idle_turns = 0; // turns to hold its place without polling first
  std::vector<std::string> history;

  // What happened to it, most recent last, for failure messages.
  void note(std::string event) {
    if (history.size() == 12) history.erase(history.begin() + 1); // keep how it opened
    history.push_back(std::move(event));
  }
  [[nodiscard]] std::string story() const {
    std::string out;
    for (const std::string& e : history) out += (out.empty() ? "" : "; ") + e;
    return "[" + out + "]";
  }
};

struct ChurnStats {
  std::uint64_t opened = 0;
  std::uint64_t held_then_closed = 0;
  std::uint64_t seeks = 0;
  std::uint64_t refused_seeks = 0;
  std::uint64_t delivered = 0;
};

enum class Opening { earliest, latest, subscribed, seek_held, seek_to_end, seek_to_beginning, count };

// Moves v somewhere while the producer runs: back to an older offset the
// ring still holds (replay), forward toward the end, past the end (must be
// refused), or to the beginning or the end. A seek to an offset may be
// refused when the offset left the ring meanwhile; then the position must
// not move and reading must go on from it, intact: a refused seek releases
// nothing the consumer still has to read.
bool seek_somewhere(Bus& bus, Rng& rng, Visitor& v, ChurnStats& stats, std::string& why) {
  const Result<ringbus::TopicInfo> info = bus.describe("churn");
  if (!info.ok()) {
    why = "describe failed: " + std::string(info.message());
    return false;
  }
  const std::uint64_t oldest = info->oldest_offset;
  const std::uint64_t end = info->end_offset;
  const std::uint64_t from = v.stream.expected;
  ++stats.seeks;
  const std::uint64_t how = rng.below(16);
  if (how >= 14) {
    const bool to_end = how == 15;
    const ringbus::Status st = to_end ? v.consumer.seek_to_end("churn") : v.consumer.seek_to_beginning("churn");
    const Result<std::uint64_t> position = v.consumer.position("churn");
    v.note(std::string(to_end ? "seek_to_end" : "seek_to_beginning") + " (held " + std::to_string(oldest) + ".." +
           std::to_string(end) + "): " + (st.ok() ? "ok" : std::string(st.message())) + ", position " +
           (position.ok() ? std::to_string(*position) : std::string(position.message())));
    if (!st.ok() || !position.ok()) {
      why = "seeking to the beginning or end failed " + v.story();
      return false;
    }
    v.stream.expected = *position;
    return true;
  }
  const bool past_end = how == 13;
  std::uint64_t target = 0;
  if (past_end) {
    // Far past anything the producer will ever write: `end` is a snapshot and
    // the producer keeps appending, so end + a little may be held by the time
    // the seek runs (a deschedule of this thread is enough).
    target = end + (std::uint64_t{1} << 40) + rng.below(1000);
  } else if (how < 5 && oldest < from) {
    target = oldest + rng.below(from - oldest); // back: replay
  } else {
    target = from + rng.below(end - from + 1);
  }
  const ringbus::Status st = v.consumer.seek("churn", target);
  v.note("seek to " + std::to_string(target) + " (held " + std::to_string(oldest) + ".." + std::to_string(end) +
         "): " + (st.ok() ? "ok" : std::string(st.message())));
  if (st.ok() && past_end) {
    why = "a seek past the end succeeded " + v.story();
    return false;
  }
  if (st.ok()) {
    v.stream.expected = target;
  } else {
    ++stats.refused_seeks;
    if (st.code() != Errc::invalid_argument) {
      why = "a seek failed with an unexpected code " + v.story();
      return false;
    }
  }
  const Result<std::uint64_t> position = v.consumer.position("churn");
  if (!position.ok() || *position != v.stream.expected) {
    why = "after the seek position() is " +
          (position.ok() ? std::to_string(*position) : std::string(position.message())) + ", expected " +
          std::to_string(v.stream.expected) + " " + v.story();
    return false;
  }
  return true;
}

// Opens a consumer by one of the ways a client can start mid-stream; its
// first record must be at position() right after. False with `why` on a defect.
bool open_visitor(Bus& bus, Rng& rng, Visitor& v, ChurnStats& stats, std::string& why) {
  const auto opening = static_cast<Opening>(rng.below(static_cast<std::uint64_t>(Opening::count)));
  const StartPosition start = opening == Opening::latest || opening == Opening::seek_to_beginning ||
                                      (opening == Opening::subscribed && rng.one_in(2))
                                  ? StartPosition::latest
                                  : StartPosition::earliest;
  Result<Consumer> opened =
      opening == Opening::subscribed ? bus.consumer(ConsumerOptions{}) : bus.consumer("churn", start);
  if (!opened.ok()) {
    why = "opening a consumer: " + std::string(opened.message());
    return false;
  }
  v.consumer = std::move(*opened);
  v.stream = Stream{};
  v.stream.topic = "churn";
  const char* start_name = start == StartPosition::latest ? "latest" : "earliest";
  ringbus::Status st;
  switch (opening) {
    case Opening::subscribed:
      st = v.consumer.subscribe("churn", start);
      v.note(std::string("subscribed at ") + start_name);
      break;
    case Opening::seek_to_end:
      st = v.consumer.seek_to_end("churn");
      v.note("opened at earliest, then seek_to_end");
      break;
    case Opening::seek_to_beginning:
      st = v.consumer.seek_to_beginning();
      v.note("opened at latest, then seek_to_beginning");
      break;
    default: v.note(std::string("opened at ") + start_name); break;
  }
  if (!st.ok()) {
    why = std::string(st.message()) + " " + v.story();
    return false;
  }
  const Result<std::uint64_t> position = v.consumer.position("churn");
  if (!position.ok()) {
    why = "position() failed: " + std::string(position.message()) + " " + v.story();
    return false;
  }
  v.stream.expected = *position;
  v.note("position " + std::to_string(v.stream.expected));
  if (opening == Opening::seek_held && !seek_somewhere(bus, rng, v, stats, why)) return false;
  v.quota = rng.below(4) == 0 ? 0 : rng.below(1000);
  v.idle_turns = rng.one_in(4) || opening == Opening::seek_held ? 1 + rng.below(200) : 0;
  ++stats.opened;
  return true;
}

} // namespace

TEST_CASE("stress: consumers opened and closed mid-stream never hold the producer back or miss a record") {
  const std::uint64_t seed = test_seed();
  const std::uint64_t total = scaled(3'000'000, 100'000);
  const PayloadPool pool(seed);
  Bus bus;
  TopicOptions options = small_ring(OverflowPolicy::block, WaitStrategy::yield);
  options.max_consumers = 8; // slots are reused over and over
  REQUIRE(bus.create_topic("churn", options).ok());
  Producer producer = bus.producer("churn").value();
  Consumer steady = bus.consumer("churn").value();

  Failures failures;
  std::atomic<bool> stop{false};
  std::atomic<bool> producer_done{false};
  Progress produced;
  Progress steady_read;
  Watchdog watchdog(
      stall_limit,
      [&] {
        return produced.value.load(std::memory_order_relaxed) + steady_read.value.load(std::memory_order_relaxed);
      },
      [&] { bus.close(); });

  ReaderResult steady_result;
  std::thread steady_thread(read_to_end, std::move(steady), std::string_view("churn"), total, Pace::yields, false,
                            seed + 1, std::ref(steady_read), std::ref(failures), std::ref(stop),
                            std::ref(steady_result), std::string_view("steady consumer"));

  ChurnStats stats;
  std::uint64_t turns = 0;
  std::thread churn([&] {
    Rng rng(seed + 2);
    std::vector<Visitor> open;
    std::string why;
    const auto fail = [&](const std::string& what) {
      failures.add("churn: " + what);
      stop.store(true, std::memory_order_relaxed);
    };
    while (!producer_done.load(std::memory_order_acquire) && !stop.load(std::memory_order_relaxed)) {
      ++turns;
      if (open.size() < 3 && rng.one_in(4)) {
        Visitor v;
        if (!open_visitor(bus, rng, v, stats, why)) {
          fail(why);
          break;
        }
        open.push_back(std::move(v));
        continue;
      }
      if (open.empty()) continue;
      const std::size_t pick = rng.below(open.size());
      Visitor& v = open[pick];
      bool done = false;
      if (v.idle_turns != 0) {
        // Holds its place without reading: the producer may stall on it
        // until it is closed, which must release it at once.
        if (--v.idle_turns == 0 && v.quota == 0) done = true;
        std::this_thread::yield();
      } else if (rng.one_in(64)) {
        if (!seek_somewhere(bus, rng, v, stats, why)) {
          fail(why);
          break;
        }
        // Go away for a while before reading on: whatever the seek left
        // held must stay held meanwhile.
        if (rng.one_in(2)) v.idle_turns = 1 + rng.below(50);
      } else {
        Result<Records> polled = v.consumer.poll(1 + rng.below(300));
        if (!polled.ok()) {
          fail("poll failed: " + std::string(polled.message()) + " " + v.story());
          break;
        }
        const std::uint64_t from = v.stream.expected;
        if (!check_poll(*polled, std::span<Stream>(&v.stream, 1), false, why)) {
          fail(why + " " + v.story());
          break;
        }
        if (polled->empty()) {
          std::this_thread::yield();
        } else {
          v.note("read " + std::to_string(from) + ".." + std::to_string(v.stream.expected - 1));
        }
        stats.delivered += v.stream.expected - from;
        done = v.stream.delivered >= v.quota;
      }
      if (done) {
        if (v.stream.delivered == 0) ++stats.held_then_closed;
        if (rng.one_in(2)) {
          const ringbus::Status st = v.consumer.close();
          if (!st.ok()) {
            fail("close failed: " + std::string(st.message()) + " " + v.story());
            break;
          }
        }
        open.erase(open.begin() + static_cast<std::ptrdiff_t>(pick)); // the destructor closes the rest
      }
    }
  });

  MixedWriter writer(producer, pool, seed, stop);
  std::string producer_error;
  if (!writer.run(total, produced.value, producer_error)) stop.store(true, std::memory_order_relaxed);
  producer_done.store(true, std::memory_order_release);
  churn.join();
  steady_thread.join();
  watchdog.stop();

  MESSAGE("seed ", seed, ": ", writer.next_offset(), " records; churn opened ", stats.opened, " consumers (",
          stats.held_then_closed, " closed without reading), ", stats.seeks, " seeks (", stats.refused_seeks,
          " refused), ", stats.delivered, " records read by them; ", turns, " turns");
  INFO("seed ", seed, "\n", failures.summary(), producer_error);
  CHECK_FALSE(watchdog.fired());
  CHECK(failures.count() == 0);
  CHECK(producer_error.empty());
  CHECK(writer.next_offset() == total);
  CHECK(steady_result.stream.delivered == total);
  // The churn must really have happened, or this test proved nothing.
  CHECK(stats.opened >= scaled(1000, 50));
  CHECK(stats.delivered > 0);
  CHECK(stats.refused_seeks > 0);
  CHECK(stats.held_then_closed > 0);
}

TEST_CASE("stress: blocking wait strategy loses no wake-up") {
  const std::uint64_t seed = test_seed();
  const std::uint64_t total_a = scaled(4'000'000, 80'000);
  const std::uint64_t total_b = scaled(1'000'000, 20'000);
  // A poll with records on the way never sleeps this long unless a wake-up was lost.
  constexpr auto poll_timeout = 20s;
  const PayloadPool pool(seed);
  Bus bus;
  REQUIRE(bus.create_topic("a", small_ring(OverflowPolicy::block, WaitStrategy::blocking)).ok());
  REQUIRE(bus.create_topic("b", small_ring(OverflowPolicy::block, WaitStrategy::blocking)).ok());
  Producer producer_a = bus.producer("a").value();
  Producer producer_b = bus.producer("b").value();

  // Consumer 2 reads both topics and sleeps on one doorbell for the two.
  struct Reader {
    Consumer consumer;
    std::vector<Stream> streams;
    std::vector<Progress*> progress; // per stream, read by the producers in lockstep
    std::uint64_t polls = 0;
    std::uint64_t long_polls = 0; // waited over 150 us: most likely asleep in the kernel
    std::string name;
  };
  std::vector<Progress> read_a(3);
  Progress read_b;
  std::vector<Reader> readers(3);
  for (std::size_t i = 0; i < readers.size(); ++i) {
    Reader& r = readers[i];
    ConsumerOptions options;
    options.topics = {"a"};
    r.streams.push_back(Stream{"a"});
    r.progress.push_back(&read_a[i]);
    if (i == 2) {
      options.topics.emplace_back("b");
      r.streams.push_back(Stream{"b"});
      r.progress.push_back(&read_b);
    }
    r.consumer = bus.consumer(options).value();
    r.name = "consumer " + std::to_string(i);
  }

  Failures failures;
  std::atomic<bool> stop{false};
  Progress produced_a;
  Progress produced_b;
  Watchdog watchdog(
      stall_limit,
      [&] {
        std::uint64_t sum =
            produced_a.value.load(std::memory_order_relaxed) + produced_b.value.load(std::memory_order_relaxed);
        for (Progress& p : read_a) sum += p.value.load(std::memory_order_relaxed);
        return sum + read_b.value.load(std::memory_order_relaxed);
      },
      [&] {
        stop.store(true, std::memory_order_relaxed);
        bus.close();
      });

  const auto total_of = [&](const Stream& s) { return s.topic == "a" ? total_a : total_b; };
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < readers.size(); ++i) {
    threads.emplace_back([&, i] {
      Reader& r = readers[i];
      Rng rng(seed + 10 + i);
      std::string why;
      const auto finished = [&] {
        for (const Stream& s : r.streams) {
          if (s.expected < total_of(s)) return false;
        }
        return true;
      };
      while (!finished() && !stop.load(std::memory_order_relaxed)) {
        const auto began = std::chrono::steady_clock::now();
        Result<Records> polled = r.consumer.poll(rng.one_in(4) ? 1 + rng.below(16) : SIZE_MAX, poll_timeout);
        const auto waited = std::chrono::steady_clock::now() - began;
        ++r.polls;
        if (waited > 150us) ++r.long_polls;
        if (!polled.ok()) {
          failures.add(r.name + ": poll failed: " + std::string(polled.message()));
          break;
        }
        // Records are always on the way (producers wait for the consumers,
        // never the other way round), so a poll that sleeps its whole timeout
        // missed its wake-up, even if it finds records when it times out.
        if (waited >= poll_timeout || polled->empty()) {
          std::string where;
          for (const Stream& st : r.streams) where += " " + std::string(st.topic) + "@" + std::to_string(st.expected);
          failures.add(r.name + ": a poll slept its whole timeout while records were on the way (a lost wake-up) at" +
                       where + "; it then returned " + std::to_string(polled->size()) + " records");
          stop.store(true, std::memory_order_relaxed);
          break;
        }
        if (!check_poll(*polled, r.streams, false, why)) {
          failures.add(r.name + ": " + why);
          stop.store(true, std::memory_order_relaxed);
          break;
        }
        for (std::size_t k = 0; k < r.streams.size(); ++k) {
          r.progress[k]->value.store(r.streams[k].expected, std::memory_order_release);
        }
      }
      r.consumer.close();
    });
  }

  // Now and then a producer goes in lockstep for a few appends: it waits
  // until every consumer of its topic has read everything, lets them fall
  // asleep, appends once, and waits again. That append's wake-up is then the
  // only way they learn of it, so a lost wake-up stalls the run (caught by
  // the consumer's poll timeout, or the watchdog) instead of being repaired
  // by the next publish.
  const auto lockstep = [&](Progress& produced, std::vector<Progress*> readers_of_topic) {
    return [&, readers_of_topic, steps_left = std::uint64_t{0}](Rng& rng) mutable {
      if (steps_left == 0) {
        if (!rng.one_in(64)) return;
        steps_left = 1 + rng.below(4);
      }
      --steps_left;
      const std::uint64_t upto = produced.value.load(std::memory_order_relaxed);
      for (Progress* p : readers_of_topic) {
        while (p->value.load(std::memory_order_acquire) < upto && !stop.load(std::memory_order_relaxed)) {
          std::this_thread::yield();
        }
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100 + rng.below(150)));
    };
  };
  std::string error_b;
  std::thread thread_b([&] {
    MixedWriter writer(producer_b, pool, seed + 100, stop);
    if (!writer.run(total_b, produced_b.value, error_b, lockstep(produced_b, {&read_b}))) {
      stop.store(true, std::memory_order_relaxed);
    }
  });
  MixedWriter writer_a(producer_a, pool, seed, stop);
  std::string error_a;
  if (!writer_a.run(total_a, produced_a.value, error_a, lockstep(produced_a, {&read_a[0], &read_a[1], &read_a[2]}))) {
    stop.store(true, std::memory_order_relaxed);
  }
  thread_b.join();
  for (std::thread& t : threads) t.join();
  watchdog.stop();

  for (const Reader& r : readers) MESSAGE(r.name, ": ", r.polls, " polls, ", r.long_polls, " of them over 150 us");
  INFO("seed ", seed, "\n", failures.summary(), error_a, error_b);
  CHECK_FALSE(watchdog.fired());
  CHECK(failures.count() == 0);
  CHECK(error_a.empty());
  CHECK(error_b.empty());
  for (const Reader& r : readers) {
    for (const Stream& st : r.streams) {
      INFO(r.name, " topic ", st.topic);
      CHECK(st.delivered == total_of(st));
    }
  }
}

TEST_SUITE_END();
