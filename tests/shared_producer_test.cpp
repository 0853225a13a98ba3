// SharedProducer: every call on one thread (errors included), then many
// senders at once: every record arrives exactly once, each sender's order is
// kept, offsets are dense, every record's content is intact, and the offset a
// sender is told holds exactly its record.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "persist_support.hpp"
#include "platform/files.hpp"
#include "ringbus/ringbus.hpp"
#include "stress_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using ringbus::Bus;
using ringbus::ByteView;
using ringbus::Consumer;
using ringbus::Errc;
using ringbus::Header;
using ringbus::Message;
using ringbus::Producer;
using ringbus::Record;
using ringbus::Records;
using ringbus::Result;
using ringbus::SequencerMode;
using ringbus::SharedProducer;
using ringbus::SharedProducerOptions;
using ringbus::Status;
using ringbus::Ticket;
using ringbus::TopicOptions;
using ringbus::test::contains;
using ringbus::test::msg;
using ringbus::test::OwnedRecord;

SharedProducerOptions caller_mode(std::size_t sender_queue_slots = 4096) {
  SharedProducerOptions o;
  o.sequencer = SequencerMode::caller;
  o.sender_queue_slots = sender_queue_slots;
  if (sender_queue_slots < 300) o.max_record_bytes = 256; // a max record must fit the queue
  return o;
}

// 64 KiB x 4: room for a few thousand small records, max records of 4 KiB.
TopicOptions medium_ring() {
  TopicOptions o;
  o.segment_bytes = std::size_t{64} << 10;
  o.segment_count = 4;
  return o;
}

// Pumps until a pump moves nothing.
std::size_t pump_all(SharedProducer& shared) {
  std::size_t total = 0;
  for (;;) {
    Result<std::size_t> moved = shared.pump();
    REQUIRE_MESSAGE(moved.ok(), moved.message());
    if (*moved == 0) return total;
    total += *moved;
  }
}

struct Fixture {
  explicit Fixture(SharedProducerOptions options = caller_mode(), TopicOptions topic = medium_ring()) {
    REQUIRE(bus.create_topic("t", topic).ok());
    Result<SharedProducer> s = bus.shared_producer("t", options);
    REQUIRE_MESSAGE(s.ok(), s.message());
    shared = std::move(*s);
    consumer = bus.consumer("t").value();
  }
  Bus bus;
  SharedProducer shared;
  Consumer consumer;
};

// Record `seq` of writer `w` (a thread of a test) carries id = w << 32 | seq:
// every third one as its whole 8-byte value (one queue slot), the others as
// the first 8 bytes of a value that goes on with bytes derived from the id,
// under the key "w" (several queue slots). A record out of its writer's
// order, torn or of another form does not match.
struct WriterRecord {
  std::string key;
  std::string value;
};

WriterRecord writer_record(unsigned w, std::uint64_t seq) {
  const std::uint64_t id = std::uint64_t{w} << 32 | seq;
  std::string value(8, '\0');
  std::memcpy(value.data(), &id, 8);
  if (seq % 3 == 0) return {"", value};
  return {"w", value + ringbus::test::value_for(id, 1 + seq % 40)};
}

Result<Ticket> send_record(SharedProducer::Sender& sender, unsigned w, std::uint64_t seq) {
  const WriterRecord r = writer_record(w, seq);
  return sender.send(ByteView(r.key), ByteView(r.value));
}

// Checks records as they arrive: each one is the next of its writer, byte
// for byte. Stops at the first that is not and says why.
class WriterOrder {
 public:
  explicit WriterOrder(unsigned writers) : next_(writers, 0) {}

  bool check(std::string_view key, std::string_view value) {
    if (!error_.empty()) return false;
    std::uint64_t id = 0;
    if (value.size() < 8) return fail("a record of " + std::to_string(value.size()) + " bytes carries no id");
    std::memcpy(&id, value.data(), 8);
    const auto w = static_cast<unsigned>(id >> 32);
    const std::uint64_t seq = id & 0xffff'ffff;
    if (w >= next_.size()) return fail("a record of writer " + std::to_string(w) + ", which does not exist");
    if (seq != next_[w]) {
      return fail("writer " + std::to_string(w) + " record " + std::to_string(seq) + " where " +
                  std::to_string(next_[w]) + " was next");
    }
    const WriterRecord want = writer_record(w, seq);
    if (key != want.key || value != want.value) {
      return fail("writer " + std::to_string(w) + " record " + std::to_string(seq) + " is not intact");
    }
    ++next_[w];
    return true;
  }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  [[nodiscard]] std::uint64_t next(unsigned w) const noexcept { return next_[w]; }

 private:
  bool fail(std::string why) {
    error_ = std::move(why);
    return false;
  }
  std::vector<std::uint64_t> next_;
  std::string error_;
};

// Opens a Sender on a thread of its own (which ends at once).
Result<SharedProducer::Sender> sender_of_another_thread(SharedProducer& shared) {
  std::optional<Result<SharedProducer::Sender>> opened;
  std::thread([&] { opened.emplace(shared.sender()); }).join();
  return std::move(*opened);
}

} // namespace

TEST_SUITE("shared_producer") {
  TEST_CASE("records_of_every_form_arrive_intact_in_send_order") {
    Fixture f;
    SharedProducer::Sender sender = f.shared.sender().value();
    const std::string big = ringbus::test::value_for(7, 3000);
    const std::array<Header, 2> headers = {Header{ByteView("h1"), ByteView("v1")}, Header{ByteView(""), ByteView("")}};
    std::vector<Ticket> tickets;
    tickets.push_back(sender.send("8 bytes!").value());                               // inline
    tickets.push_back(sender.send("").value());                                       // inline, empty
    tickets.push_back(sender.send("a value of more than eight bytes").value());       // general
    tickets.push_back(sender.send("key", "value").value());                           // keyed
    tickets.push_back(sender.send(msg(ByteView("k"), ByteView("v"), 12345)).value()); // timestamp
    tickets.push_back(sender.send(msg(ByteView(), ByteView("hv"), ringbus::timestamp_now, headers)).value());
    tickets.push_back(sender.send(msg(ByteView("kk"), big)).value()); // many cells
    tickets.push_back(sender.try_send("x").value());
    tickets.push_back(sender.try_send("k2", "v2").value());
    for (std::size_t i = 0; i < tickets.size(); ++i) CHECK(tickets[i].sequence == i);
    CHECK(sender.offset_of(tickets[0]).code() == Errc::would_block); // not pumped yet
    CHECK(pump_all(f.shared) == tickets.size());
    CHECK(f.shared.sequenced() == tickets.size());

    const std::vector<OwnedRecord> got = ringbus::test::drain(f.consumer);
    REQUIRE(got.size() == tickets.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].offset == i);
      CHECK(sender.offset_of(tickets[i]).value() == i);
    }
    CHECK(got[0].value == "8 bytes!");
    CHECK(got[0].key.empty());
    CHECK(got[1].value.empty());
    CHECK(got[2].value == "a value of more than eight bytes");
    CHECK(got[3].key == "key");
    CHECK(got[3].value == "value");
    CHECK(got[4].timestamp_ns == 12345);
    CHECK(got[5].value == "hv");
    REQUIRE(got[5].headers.size() == 2);
    CHECK(got[5].headers[0] == std::pair<std::string, std::string>("h1", "v1"));
    CHECK(got[5].headers[1] == std::pair<std::string, std::string>("", ""));
    CHECK(got[6].key == "kk");
    CHECK(got[6].value == big);
    CHECK(got[7].value == "x");
    CHECK(got[8].key == "k2");
    // Records sent without a timestamp are stamped when appended.
    CHECK(got[0].timestamp_ns > 0);
  }

  TEST_CASE("send_batch_and_send_values_take_consecutive_tickets") {
    Fixture f;
    SharedProducer::Sender sender = f.shared.sender().value();
    std::vector<std::string> values;
    for (int i = 0; i < 20; ++i) values.push_back(ringbus::test::value_for(i, static_cast<std::size_t>(i * 7)));
    std::vector<Message> batch;
    for (int i = 0; i < 20; ++i) batch.push_back(msg(i % 3 == 0 ? ByteView() : ByteView("key"), values[i]));
    const std::array<std::uint64_t, 5> small = {1, 2, 3, 4, 5};
    struct Wide {
      std::uint64_t a, b, c;
    };
    const std::array<Wide, 3> wide = {Wide{1, 2, 3}, Wide{4, 5, 6}, Wide{7, 8, 9}};
    CHECK(sender.send_batch(batch).value().sequence == 0);
    CHECK(sender.send_values(std::span<const std::uint64_t>(small)).value().sequence == 20);
    CHECK(sender.try_send_values(std::span<const Wide>(wide)).value().sequence == 25);
    CHECK(sender.try_send_batch(std::span<const Message>(batch.data(), 2)).value().sequence == 28);
    CHECK(sender.next_ticket().sequence == 30);
    CHECK(pump_all(f.shared) == 30);
    const std::vector<OwnedRecord> got = ringbus::test::drain(f.consumer);
    REQUIRE(got.size() == 30);
    for (int i = 0; i < 20; ++i) {
      CHECK(got[i].value == values[i]);
      CHECK(got[i].key == (i % 3 == 0 ? "" : "key"));
    }
    for (int i = 0; i < 5; ++i) CHECK(ByteView(got[20 + i].value).as<std::uint64_t>() == small[i]);
    for (int i = 0; i < 3; ++i) {
      REQUIRE(got[25 + i].value.size() == sizeof(Wide));
      CHECK(std::memcmp(got[25 + i].value.data(), &wide[i], sizeof(Wide)) == 0);
    }
    CHECK(got[28].value == values[0]);
    CHECK(got[29].key == "key");
  }

  TEST_CASE("send_values_longer_than_a_packed_run_arrives_whole_and_in_order") {
    Fixture f;
    SharedProducer::Sender sender = f.shared.sender().value();
    std::vector<std::uint64_t> values(1500); // three packed runs of at most 512
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = 1000 + i;
    REQUIRE(sender.send("first").ok());
    CHECK(sender.send_values(std::span<const std::uint64_t>(values)).value().sequence == 1);
    REQUIRE(sender.send("last").ok());
    CHECK(pump_all(f.shared) == values.size() + 2);
    const std::vector<OwnedRecord> got = ringbus::test::drain(f.consumer);
    REQUIRE(got.size() == values.size() + 2);
    CHECK(got.front().value == "first");
    for (std::size_t i = 0; i < values.size(); ++i) {
      CHECK(ByteView(got[1 + i].value).as<std::uint64_t>() == values[i]);
      if (i % 97 == 0) CHECK(sender.offset_of(Ticket{1 + i}).value() == 1 + i);
    }
    CHECK(got.back().value == "last");
  }

  // Values of every size a packed run takes in one piece (built in the
  // sender's staging cells) or in several (values over 4 KiB together, or one
  // value larger than a run), counts that leave the last cell half full or
  // fill it: every byte of every value arrives, in order.
  TEST_CASE("send_values_of_any_size_and_count_arrive_byte_for_byte_in_order") {
    SharedProducerOptions options = caller_mode();
    options.max_record_bytes = 6000;
    Fixture f(options);
    SharedProducer::Sender sender = f.shared.sender().value();
    std::vector<std::string> expected;
    std::uint64_t seed = 1;
    const auto send = [&](std::size_t value_bytes, std::size_t count) {
      std::vector<std::byte> bytes(value_bytes * count);
      for (std::byte& b : bytes) b = static_cast<std::byte>(ringbus::stress::mix64(seed++));
      for (std::size_t i = 0; i < count; ++i) {
        expected.emplace_back(reinterpret_cast<const char*>(bytes.data()) + i * value_bytes, value_bytes);
      }
      const auto send_as = [&]<std::size_t N>() {
        const std::span<const std::array<std::byte, N>> values(
            reinterpret_cast<const std::array<std::byte, N>*>(bytes.data()), count);
        return sender.send_values(values);
      };
      Result<Ticket> t = ringbus::Status(Errc::invalid_argument);
      switch (value_bytes) {
        case 1: t = send_as.template operator()<1>(); break;
        case 3: t = send_as.template operator()<3>(); break;
        case 8: t = send_as.template operator()<8>(); break;
        case 24: t = send_as.template operator()<24>(); break;
        case 4096: t = send_as.template operator()<4096>(); break;
        case 5000: t = send_as.template operator()<5000>(); break;
        default: FAIL("no such value size");
      }
      REQUIRE_MESSAGE(t.ok(), t.message());
    };
    for (const std::size_t count : {std::size_t{1}, std::size_t{3}, std::size_t{511}, std::size_t{512}}) {
      send(8, count); // 512 x 8 B: exactly one run of 4 KiB
    }
    send(1, 15);   // one cell, 15 of its 16 bytes
    send(1, 4097); // two runs
    send(3, 1365); // 4095 bytes: one run, the last cell 15 bytes full
    send(24, 170); // 4080 bytes: one run
    send(24, 171); // 4104 bytes: two runs
    send(4096, 1); // one value of a whole run
    send(4096, 2); // one run each
    send(5000, 2); // values larger than a run
    std::size_t got = 0;
    while (got < expected.size()) {
      REQUIRE(pump_all(f.shared) != 0);
      for (const OwnedRecord& r : ringbus::test::drain(f.consumer)) {
        REQUIRE(got < expected.size());
        CHECK(r.offset == got);
        CHECK(r.key.empty());
        REQUIRE(r.value.size() == expected[got].size());
        CHECK(r.value == expected[got]);
        ++got;
      }
    }
    CHECK(sender.offset_of(Ticket{got - 1}).value() == got - 1);
  }

  // nanoseconds::max() means wait: the deadline saturates instead of
  // overflowing into the past (which timed out at once).
  TEST_CASE("wait_offset_with_the_longest_timeout_waits_for_the_pump") {
    Fixture f;
    SharedProducer::Sender sender = f.shared.sender().value();
    const Ticket t = sender.send("v").value();
    CHECK(sender.offset_of(t).code() == Errc::would_block); // caller mode: nothing before a pump
    std::thread pumper([&f] {
      std::this_thread::sleep_for(20ms);
      REQUIRE(f.shared.pump().ok());
    });
    const Result<std::uint64_t> offset = sender.wait_offset(t, std::chrono::nanoseconds::max());
    pumper.join();
    REQUIRE_MESSAGE(offset.ok(), offset.message());
    CHECK(*offset == 0);
  }

  TEST_CASE("thread_mode_sequences_without_pump_and_tells_each_sender_its_offset") {
    SharedProducerOptions options;
    options.idle_wait = ringbus::WaitStrategy::yield;
    Fixture f(options);
    SharedProducer::Sender a = f.shared.sender().value();
    SharedProducer::Sender b = f.shared.sender().value();
    const Ticket ta = a.send("from a").value();
    const Ticket tb = b.send("kb", "from b").value();
    const std::uint64_t oa = a.wait_offset(ta, 10s).value();
    const std::uint64_t ob = b.wait_offset(tb, 10s).value();
    CHECK(oa != ob);
    CHECK(f.shared.pump().code() == Errc::invalid_argument);
    std::vector<OwnedRecord> got;
    for (int i = 0; i < 1000 && got.size() < 2; ++i) {
      Result<Records> polled = f.consumer.poll(SIZE_MAX, 10ms);
      REQUIRE(polled.ok());
      for (const Record& r : *polled) got.push_back(ringbus::test::own(r));
    }
    REQUIRE(got.size() == 2);
    CHECK(got[oa].value == "from a");
    CHECK(got[ob].value == "from b");
    CHECK(got[ob].key == "kb");
  }

  TEST_CASE("close_flushes_every_accepted_record_in_both_modes") {
    for (const SequencerMode mode : {SequencerMode::caller, SequencerMode::thread}) {
      CAPTURE(ringbus::to_string(mode));
      SharedProducerOptions options = caller_mode();
      options.sequencer = mode;
      Fixture f(options);
      SharedProducer::Sender s1 = f.shared.sender().value();
      SharedProducer::Sender s2 = f.shared.sender().value();
      for (std::uint64_t i = 0; i < 500; ++i) {
        REQUIRE(s1.send(ringbus::bytes_of(i)).ok());
        REQUIRE(s2.send("k", ringbus::test::value_for(i, 20)).ok());
      }
      REQUIRE(f.shared.close().ok());
      CHECK_FALSE(f.shared.is_open());
      CHECK(f.shared.sequenced() == 1000);
      const std::vector<OwnedRecord> got = ringbus::test::drain(f.consumer);
      REQUIRE(got.size() == 1000);
      std::uint64_t next1 = 0;
      std::uint64_t next2 = 0;
      for (const OwnedRecord& r : got) {
        if (r.key.empty()) {
          CHECK(ByteView(r.value).as<std::uint64_t>() == next1++);
        } else {
          CHECK(r.value == ringbus::test::value_for(next2++, 20));
        }
      }
      CHECK(next1 == 500);
      CHECK(next2 == 500);
      // Tickets still resolve after close.
      CHECK(s1.offset_of(Ticket{499}).ok());
    }
  }

  TEST_CASE("send_after_close_is_refused") {
    Fixture f;
    SharedProducer::Sender sender = f.shared.sender().value();
    REQUIRE(f.shared.close().ok());
    Result<Ticket> r = sender.send("late");
    CHECK(r.code() == Errc::closed);
    CHECK(contains(r.message(), "topic 't'"));
    CHECK(sender.try_send("late").code() == Errc::closed);
    CHECK(sender.send_values(std::span<const std::uint64_t>()).code() == Errc::invalid_argument);
    CHECK(f.shared.sender().code() == Errc::closed);
    CHECK(f.shared.pump().code() == Errc::closed);
    CHECK(f.shared.close().code() == Errc::closed);
    CHECK(ringbus::test::drain(f.consumer).empty());
    REQUIRE(sender.close().ok());
    CHECK(sender.close().code() == Errc::closed);
    CHECK(sender.send("x").code() == Errc::closed);
  }

  TEST_CASE("a_record_over_max_record_bytes_is_refused_naming_both_sizes") {
    SharedProducerOptions options = caller_mode();
    options.max_record_bytes = 100;
    Fixture f(options);
    SharedProducer::Sender sender = f.shared.sender().value();
    const std::string value(101, 'x');
    Result<Ticket> r = sender.send(value);
    CHECK(r.code() == Errc::record_too_large);
    CHECK(contains(r.message(), "101 bytes"));
    CHECK(contains(r.message(), "limit of 100 bytes"));
    CHECK(sender.send("k", std::string(100, 'x')).code() == Errc::record_too_large); // key counts
    const std::array<Header, 1> h = {Header{ByteView("n"), ByteView(std::string_view(value).substr(0, 92))}};
    CHECK(sender.send(msg(ByteView(), ByteView("v"), ringbus::timestamp_now, h)).code() == Errc::record_too_large);
    CHECK(sender.send(std::string(100, 'y')).ok()); // exactly the limit
    const std::array<Message, 2> batch = {msg(ByteView(), ByteView("ok")), msg(ByteView(), value)};
    CHECK(sender.send_batch(batch).code() == Errc::record_too_large);
    struct Big {
      char bytes[101];
    };
    const std::array<Big, 1> bigs{};
    CHECK(sender.send_values(std::span<const Big>(bigs)).code() == Errc::record_too_large);
    CHECK(sender.next_ticket().sequence == 1); // refusals take no ticket
    CHECK(pump_all(f.shared) == 1);
  }

  TEST_CASE("max_record_bytes_that_cannot_fit_a_segment_is_refused_at_creation") {
    Bus bus;
    REQUIRE(bus.create_topic("t", ringbus::test::small_ring()).ok());
    SharedProducerOptions options;
    options.max_record_bytes = 4000;
    Result<SharedProducer> s = bus.shared_producer("t", options);
    CHECK(s.code() == Errc::record_too_large);
    CHECK(contains(s.message(), "4000"));
    CHECK(contains(s.message(), "4096 bytes"));
    // The refusal released the topic's producer.
    CHECK(bus.producer("t").ok());
  }

  TEST_CASE("shared_producer_and_plain_producer_exclude_each_other") {
    Bus bus;
    REQUIRE(bus.create_topic("t", medium_ring()).ok());
    {
      SharedProducer shared = bus.shared_producer("t", caller_mode()).value();
      CHECK(bus.producer("t").code() == Errc::producer_exists);
      CHECK(bus.shared_producer("t", caller_mode()).code() == Errc::producer_exists);
      CHECK(bus.describe("t").value().has_producer);
      REQUIRE(shared.close().ok());
      Producer p = bus.producer("t").value(); // free again after close
      CHECK(bus.shared_producer("t").code() == Errc::producer_exists);
    }
    CHECK(bus.shared_producer("t").ok()); // the plain producer went out of scope
    CHECK(bus.shared_producer("missing").code() == Errc::topic_not_found);
  }

  TEST_CASE("try_send_says_would_block_when_the_sender_queue_is_full") {
    Fixture f(caller_mode(64));
    SharedProducer::Sender sender = f.shared.sender().value();
    for (std::uint64_t i = 0; i < 64; ++i) REQUIRE(sender.try_send(ringbus::bytes_of(i)).ok());
    CHECK(sender.try_send("one more").code() == Errc::would_block);
    // A general record needs several slots: also refused.
    CHECK(sender.try_send("key", "value").code() == Errc::would_block);
    CHECK(pump_all(f.shared) == 64);
    CHECK(sender.try_send("one more").ok());
    // Another sender has its own quota.
    SharedProducer::Sender other = f.shared.sender().value();
    for (std::uint64_t i = 0; i < 64; ++i) REQUIRE(other.try_send(ringbus::bytes_of(i)).ok());
    // A batch larger than the whole quota can never go in.
    std::vector<std::uint64_t> many(200, 1); // 1 head + 100 body slots
    CHECK(sender.send_values(std::span<const std::uint64_t>(many)).code() == Errc::record_too_large);
  }

  TEST_CASE("a_full_log_under_block_backs_up_into_would_block_not_memory") {
    // 2 x 4 KiB ring: 64-byte frames fill it after 128 records.
    Fixture f(caller_mode(64), ringbus::test::small_ring());
    SharedProducer::Sender sender = f.shared.sender().value();
    const std::string value(24, 'v');
    std::uint64_t sent = 0;
    std::size_t moved = 0;
    // Send and pump until the log is full and the queue behind it too.
    // (A pump that finds the log full keeps what it drained and drains no more.)
    for (int round = 0; round < 100; ++round) {
      std::uint64_t accepted = 0;
      while (sender.try_send(value).ok()) ++accepted;
      sent += accepted;
      Result<std::size_t> m = f.shared.pump();
      REQUIRE(m.ok());
      moved += *m;
      if (*m == 0 && accepted == 0) break;
    }
    CHECK(sender.try_send(value).code() == Errc::would_block);
    CHECK(moved < sent); // records wait in the queue, not in the log
    CHECK(sent <= moved + 64 + 2048);
    // A consumer that reads makes room; everything arrives.
    std::uint64_t received = 0;
    for (int i = 0; i < 10000 && received < sent; ++i) {
      received += ringbus::test::drain(f.consumer).size();
      (void)f.shared.pump();
    }
    CHECK(received == sent);
  }

  TEST_CASE("send_waits_for_room_and_proceeds_when_the_sequencer_drains") {
    SharedProducerOptions options;
    options.sender_queue_slots = 64;
    options.max_record_bytes = 256;
    options.idle_wait = ringbus::WaitStrategy::yield;
    Fixture f(options);
    SharedProducer::Sender sender = f.shared.sender().value();
    for (std::uint64_t i = 0; i < 5000; ++i) REQUIRE(sender.send(ringbus::bytes_of(i)).ok());
    const std::uint64_t last = sender.wait_offset(Ticket{4999}, 10s).value();
    CHECK(last == 4999);
    CHECK(sender.offset_of(Ticket{5000}).code() == Errc::invalid_argument); // not issued
    CHECK(sender.offset_window() == 64);
    Result<std::uint64_t> old = sender.offset_of(Ticket{10});
    CHECK(old.code() == Errc::invalid_argument); // older than the window
    CHECK(contains(old.message(), "64"));
    CHECK(sender.offset_of(Ticket{4999 - 63}).value() == 4999 - 63);
  }

  // Two senders' records alternate in the log (a's at even offsets, b's at
  // odd), so every record of each is an offset run of its own: 300 runs per
  // sender wrap their ring (2 * 64 entries) twice, and records still in
  // flight (sent, not pumped) shrink what stays readable. Every ticket of the
  // window must still resolve to the offset the consumer sees it at, and the
  // ones outside it must be refused.
  TEST_CASE("offset_of_resolves_every_ticket_of_the_window_when_senders_interleave_record_by_record") {
    SharedProducerOptions options = caller_mode();
    options.max_senders = 2;
    options.sender_queue_slots = 64;
    options.max_record_bytes = 64;
    Fixture f(options);
    SharedProducer::Sender a = f.shared.sender().value();
    SharedProducer::Sender b = f.shared.sender().value();
    REQUIRE(a.offset_window() == 64);
    constexpr std::uint64_t rounds = 300;
    for (std::uint64_t i = 0; i < rounds; ++i) {
      REQUIRE(a.send(ringbus::bytes_of(2 * i)).ok());
      REQUIRE(pump_all(f.shared) == 1);
      REQUIRE(b.send(ringbus::bytes_of(2 * i + 1)).ok());
      REQUIRE(pump_all(f.shared) == 1);
    }
    // a: 40 more in flight (sent, not yet in the log).
    for (std::uint64_t i = 0; i < 40; ++i) REQUIRE(a.send(ringbus::bytes_of(2 * rounds + i)).ok());

    std::vector<std::uint64_t> value_at; // the value the consumer saw at each offset
    const auto drain = [&] {
      for (const OwnedRecord& r : ringbus::test::drain(f.consumer)) {
        REQUIRE(r.offset == value_at.size());
        std::uint64_t v = 0;
        REQUIRE(r.value.size() == sizeof v);
        std::memcpy(&v, r.value.data(), sizeof v);
        value_at.push_back(v);
      }
    };
    drain();
    REQUIRE(value_at.size() == 2 * rounds);
    const std::uint64_t sent = rounds + 40;
    for (std::uint64_t t = sent - 64; t < rounds; ++t) {
      Result<std::uint64_t> offset = a.offset_of(Ticket{t});
      REQUIRE_MESSAGE(offset.ok(), offset.message());
      CHECK(*offset == 2 * t);
      REQUIRE(*offset < value_at.size());
      CHECK(value_at[*offset] == 2 * t);
    }
    for (std::uint64_t t = rounds; t < sent; ++t) CHECK(a.offset_of(Ticket{t}).code() == Errc::would_block);
    CHECK(a.offset_of(Ticket{sent - 65}).code() == Errc::invalid_argument);
    for (std::uint64_t t = rounds - 64; t < rounds; ++t) {
      Result<std::uint64_t> offset = b.offset_of(Ticket{t});
      REQUIRE_MESSAGE(offset.ok(), offset.message());
      REQUIRE(*offset < value_at.size());
      CHECK(value_at[*offset] == 2 * t + 1);
    }

    // The 40 join the log as one stretch after b's last record: a new run.
    REQUIRE(pump_all(f.shared) == 40);
    drain();
    for (std::uint64_t t = sent - 64; t < sent; ++t) {
      Result<std::uint64_t> offset = a.offset_of(Ticket{t});
      REQUIRE_MESSAGE(offset.ok(), offset.message());
      REQUIRE(*offset < value_at.size());
      CHECK(value_at[*offset] == (t < rounds ? 2 * t : 2 * rounds + (t - rounds)));
      if (t >= rounds) CHECK(*offset == 2 * rounds + (t - rounds));
    }
  }

  // The same with the sequencer on its own thread, so it writes offset runs
  // while a sender reads them: sender a asks for the oldest ticket of its
  // window after every send (records in flight, runs being added), sender b
  // interleaves its records with a's. Every offset a was told must be where
  // the consumer finds a's record.
  TEST_CASE("offset_of_at_the_window_edge_stays_right_while_the_sequencer_thread_adds_runs") {
    SharedProducerOptions options;
    options.max_senders = 2;
    options.sender_queue_slots = 64;
    options.max_record_bytes = 64;
    options.idle_wait = ringbus::WaitStrategy::yield;
    options.send_wait = ringbus::WaitStrategy::yield;
    TopicOptions topic = medium_ring();
    topic.segment_bytes = std::size_t{1} << 20; // room for every record: nobody has to read while sending
    Fixture f(options, topic);
    const std::uint64_t count = ringbus::stress::scaled(20000, 4000);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> told; // (ticket, offset) for a
    std::atomic<bool> a_done{false};
    std::thread tb([&] {
      SharedProducer::Sender b = f.shared.sender().value();
      for (std::uint64_t i = 0; i < count && !a_done.load(std::memory_order_relaxed); ++i) {
        if (!b.send(ringbus::bytes_of((std::uint64_t{1} << 63) | i)).ok()) return;
      }
    });
    {
      SharedProducer::Sender a = f.shared.sender().value();
      const std::uint64_t window = a.offset_window();
      for (std::uint64_t i = 0; i < count; ++i) {
        REQUIRE(a.send(ringbus::bytes_of(i)).ok());
        const std::uint64_t sent = i + 1;
        const Ticket edge{sent > window ? sent - window : 0};
        Result<std::uint64_t> offset = a.offset_of(edge);
        if (offset.ok()) {
          told.emplace_back(edge.sequence, *offset);
        } else {
          REQUIRE_MESSAGE(offset.code() == Errc::would_block, offset.message());
        }
      }
      a_done.store(true, std::memory_order_relaxed);
    }
    tb.join();
    REQUIRE(f.shared.close().ok());
    std::vector<std::uint64_t> value_at;
    for (const OwnedRecord& r : ringbus::test::drain(f.consumer)) {
      REQUIRE(r.offset == value_at.size());
      value_at.push_back(ByteView(r.value).as<std::uint64_t>().value());
    }
    CHECK(!told.empty());
    std::size_t wrong = 0;
    for (const auto& [ticket, offset] : told) {
      if (offset >= value_at.size() || value_at[offset] != ticket) ++wrong;
    }
    CHECK(wrong == 0);
  }

  TEST_CASE("senders_are_limited_by_max_senders_and_a_closed_one_frees_its_slot") {
    SharedProducerOptions options = caller_mode();
    options.max_senders = 2;
    Fixture f(options);
    SharedProducer::Sender a = f.shared.sender().value();
    SharedProducer::Sender b = f.shared.sender().value();
    Result<SharedProducer::Sender> c = f.shared.sender();
    CHECK(c.code() == Errc::too_many_senders);
    CHECK(contains(c.message(), "max_senders"));
    REQUIRE(a.send("from a").ok());
    REQUIRE(a.close().ok());
    SharedProducer::Sender d = f.shared.sender().value(); // a's slot, a's counters
    CHECK(d.next_ticket().sequence == 1);
    REQUIRE(d.send("from d").ok());
    CHECK(pump_all(f.shared) == 2);
    const std::vector<OwnedRecord> got = ringbus::test::drain(f.consumer);
    REQUIRE(got.size() == 2);
    CHECK(got[0].value == "from a"); // a's record, accepted before it closed, stays
    CHECK(got[1].value == "from d");
    SharedProducer::Sender moved = std::move(b);
    CHECK_FALSE(b.is_open()); // NOLINT: moved-from is closed by design
    CHECK(b.send("x").code() == Errc::closed);
    CHECK(moved.send("x").ok());
  }

  TEST_CASE("a_thread_that_closes_its_sender_and_opens_another_keeps_its_order") {
    // Caller mode: where each record lands is decided by the pumps below. A
    // gather takes at most 64 queue slots, so the first takes only part of
    // what a left queued, and the next starts at another slot (it rotates).
    SharedProducerOptions options = caller_mode();
    options.max_senders = 2;
    options.sequencer_batch_slots = 64;
    Fixture f(options);
    std::uint64_t sent = 0; // writer 0: this thread
    SharedProducer::Sender a = f.shared.sender().value();
    for (; sent < 100; ++sent) REQUIRE(send_record(a, 0, sent).ok());
    REQUIRE(a.close().ok()); // its records are all still queued
    // Another thread opens a Sender and sends while they wait.
    Result<SharedProducer::Sender> other = sender_of_another_thread(f.shared);
    REQUIRE_MESSAGE(other.ok(), other.message());
    for (std::uint64_t i = 0; i < 10; ++i) REQUIRE(send_record(*other, 1, i).ok());
    SharedProducer::Sender b = f.shared.sender().value(); // this thread again
    for (; sent < 110; ++sent) REQUIRE(send_record(b, 0, sent).ok());
    CHECK(pump_all(f.shared) == 120); // this thread pumps: nothing waits for it
    WriterOrder order(2);
    for (const OwnedRecord& r : ringbus::test::drain(f.consumer)) {
      if (!order.check(r.key, r.value)) break;
    }
    CHECK_MESSAGE(order.error().empty(), order.error());
    CHECK(order.next(0) == 110);
    CHECK(order.next(1) == 10);
  }

  TEST_CASE("another_thread_gets_a_closed_senders_slot_once_its_records_are_drained") {
    SharedProducerOptions options = caller_mode();
    options.max_senders = 1;
    Fixture f(options);
    SharedProducer::Sender a = f.shared.sender().value();
    REQUIRE(a.send("a0").ok());
    REQUIRE(a.send("a1").ok());
    REQUIRE(a.close().ok());
    // The slot is kept for this thread's next Sender while a's records are queued.
    const Result<SharedProducer::Sender> refused = sender_of_another_thread(f.shared);
    CHECK(refused.code() == Errc::too_many_senders);
    CHECK(contains(refused.message(), "max_senders"));
    CHECK(contains(refused.message(), "not yet drained"));
    CHECK(pump_all(f.shared) == 2);
    Result<SharedProducer::Sender> c = sender_of_another_thread(f.shared);
    REQUIRE_MESSAGE(c.ok(), c.message());
    CHECK(c->next_ticket().sequence == 2); // a's slot, a's counters
    REQUIRE(c->send("c0").ok());
    CHECK(pump_all(f.shared) == 1);
    const std::vector<OwnedRecord> got = ringbus::test::drain(f.consumer);
    REQUIRE(got.size() == 3);
    CHECK(got[0].value == "a0");
    CHECK(got[1].value == "a1");
    CHECK(got[2].value == "c0");
  }

  TEST_CASE("options_out_of_their_limits_are_refused_by_name") {
    Bus bus;
    REQUIRE(bus.create_topic("t", medium_ring()).ok());
    const auto refused = [&](SharedProducerOptions o, std::string_view field) {
      Result<SharedProducer> s = bus.shared_producer("t", o);
      CHECK(s.code() == Errc::invalid_argument);
      CHECK(contains(s.message(), field));
      CHECK(contains(s.message(), "topic 't'"));
    };
    SharedProducerOptions o;
    o.max_senders = 0;
    refused(o, "max_senders");
    o = {};
    o.max_senders = 257;
    refused(o, "max_senders");
    o = {};
    o.sender_queue_slots = 10; // a 4096-byte record needs more
    refused(o, "sender_queue_slots");
    o = {};
    o.sequencer_batch_slots = 1;
    refused(o, "sequencer_batch_slots");
    o = {};
    o.sequencer = static_cast<SequencerMode>(9);
    refused(o, "sequencer mode");
    CHECK(bus.shared_producer("t").ok()); // nothing was left holding the producer
  }

  TEST_CASE("closing_the_bus_under_a_shared_producer_refuses_sends") {
    for (const SequencerMode mode : {SequencerMode::caller, SequencerMode::thread}) {
      CAPTURE(ringbus::to_string(mode));
      SharedProducerOptions options = caller_mode();
      options.sequencer = mode;
      Fixture f(options);
      SharedProducer::Sender sender = f.shared.sender().value();
      REQUIRE(sender.send("before").ok());
      f.bus.close();
      if (mode == SequencerMode::caller) CHECK(f.shared.pump().code() == Errc::closed);
      // The sender learns it on a later send at the latest (thread mode: once the sequencer sees it).
      Result<Ticket> r = sender.send("after");
      for (int i = 0; i < 10000 && r.ok(); ++i) {
        std::this_thread::sleep_for(100us);
        r = sender.send("after");
      }
      CHECK(r.code() == Errc::closed);
      CHECK(f.shared.close().code() == Errc::closed);
    }
  }

  TEST_CASE("a_moved_shared_producer_keeps_working_and_the_old_one_is_closed") {
    Fixture f;
    SharedProducer other = std::move(f.shared);
    CHECK_FALSE(f.shared.is_open()); // NOLINT: moved-from is closed by design
    CHECK(f.shared.sender().code() == Errc::closed);
    CHECK(f.shared.topic().empty());
    CHECK(other.topic() == "t");
    CHECK(other.options().sequencer == SequencerMode::caller);
    SharedProducer::Sender s = other.sender().value();
    REQUIRE(s.send("x").ok());
    CHECK(pump_all(other) == 1);
  }
}

// --- append errors: a full disk, a failed sync ---------------------------------------------------
//
// Only a closed bus is reported as one. Another append error keeps the
// records queued and is retried; a topic whose store failed for good stops
// the sequencer, and every accepted record that did not get in is counted by
// close() and has a ticket that says so instead of waiting.

namespace {

using ringbus::Storage;
using ringbus::test::drain;
using ringbus::test::even_value_bytes;
using ringbus::test::no_flusher;
using ringbus::test::open_bus;
using ringbus::test::small_ring;
using ringbus::test::TempBusDir;
using ringbus::test::value_for;
namespace faults = ringbus::platform::testing;

// Disarms an injected fault when the test leaves, however it leaves.
struct FaultsOff {
  FaultsOff() = default;
  FaultsOff(const FaultsOff&) = delete;
  FaultsOff& operator=(const FaultsOff&) = delete;
  ~FaultsOff() {
    faults::fail_next_preallocations(0);
    faults::fail_next_syncs(0);
  }
};

// A persistent topic of 8 small segments and a shared producer on it whose
// records may be 256 bytes.
struct PersistentFixture {
  PersistentFixture(const std::string& topic, SequencerMode mode, ringbus::Durability durability,
                    std::size_t sender_queue_slots = SharedProducerOptions().sender_queue_slots) {
    TopicOptions o = small_ring(8);
    o.storage = Storage::persistent;
    o.durability = durability;
    REQUIRE(bus.create_topic(topic, o).ok());
    SharedProducerOptions so;
    so.sequencer = mode;
    so.max_record_bytes = 256;
    so.sender_queue_slots = sender_queue_slots;
    Result<SharedProducer> made = bus.shared_producer(topic, so);
    REQUIRE_MESSAGE(made.ok(), made.message());
    shared = std::move(*made);
    sender = shared.sender().value();
    consumer = bus.consumer(topic).value();
  }
  TempBusDir dir;
  Bus bus = open_bus(dir.path(), no_flusher());
  SharedProducer shared;
  SharedProducer::Sender sender;
  Consumer consumer;
};

// Sends value_for(i) for i in [from, to) as one batch; returns its first ticket.
Ticket send_numbered(SharedProducer::Sender& sender, std::uint64_t from, std::uint64_t to) {
  std::vector<std::string> values;
  for (std::uint64_t i = from; i < to; ++i) values.push_back(value_for(i, even_value_bytes));
  std::vector<Message> batch;
  for (const std::string& v : values) batch.push_back(msg(ByteView(), ByteView(v)));
  Result<Ticket> t = sender.send_batch(batch);
  REQUIRE_MESSAGE(t.ok(), t.message());
  return *t;
}

// The log holds value_for(i) at offset i for every i < count, and nothing more.
void check_numbered(Consumer& consumer, std::uint64_t count) {
  const std::vector<OwnedRecord> got = drain(consumer);
  CHECK(got.size() == count);
  for (std::uint64_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].offset == i);
    CHECK(got[i].value == value_for(i, even_value_bytes));
  }
}

} // namespace

TEST_SUITE("shared_producer") {
  TEST_CASE("a_full_disk_at_a_roll_is_not_reported_as_a_closed_bus_and_loses_no_accepted_record") {
    for (const SequencerMode mode : {SequencerMode::caller, SequencerMode::thread}) {
      CAPTURE(ringbus::to_string(mode));
      FaultsOff faults_off;
      PersistentFixture f("f", mode, ringbus::Durability::none);
      CHECK(send_numbered(f.sender, 0, 10) == Ticket{0});
      if (mode == SequencerMode::caller) REQUIRE(f.shared.pump().value() == 10);
      REQUIRE(f.sender.wait_offset(Ticket{9}, 10s).value() == 9);

      // The next segment cannot be made once: the batch that needs it fails whole.
      faults::fail_next_preallocations(1);
      CHECK(send_numbered(f.sender, 10, 210) == Ticket{10});
      std::uint64_t accepted = 210;
      if (mode == SequencerMode::caller) {
        const Status failure = f.shared.pump().status();
        CHECK(failure.code() == Errc::no_space);
        CHECK(contains(failure.message(), "topic 'f'"));
        CHECK_FALSE(contains(failure.message(), "bus was closed"));
        // Kept, not given up: the ticket waits for the next pump.
        CHECK(f.sender.offset_of(Ticket{10}).code() == Errc::would_block);
        CHECK(f.shared.sequenced() == 10);
      } else {
        // The sequencer retries on its own; the producer stays open to sends.
        REQUIRE(f.sender.wait_offset(Ticket{209}, 10s).value() == 209);
        Result<Ticket> late = f.sender.send(value_for(210, even_value_bytes));
        REQUIRE_MESSAGE(late.ok(), late.message());
        CHECK(*late == Ticket{210});
        accepted = 211;
      }
      REQUIRE(f.bus.is_open());
      const Status closed = f.shared.close();
      CHECK_MESSAGE(closed.ok(), closed.message());
      CHECK(f.shared.sequenced() == accepted);
      check_numbered(f.consumer, accepted);
      CHECK(f.sender.offset_of(Ticket{accepted - 1}).value() == accepted - 1);
    }
  }

  TEST_CASE("a_full_disk_that_lasts_through_close_is_reported_with_the_records_not_appended") {
    for (const SequencerMode mode : {SequencerMode::caller, SequencerMode::thread}) {
      CAPTURE(ringbus::to_string(mode));
      FaultsOff faults_off;
      PersistentFixture f("f", mode, ringbus::Durability::none);
      send_numbered(f.sender, 0, 10);
      if (mode == SequencerMode::caller) REQUIRE(f.shared.pump().value() == 10);
      REQUIRE(f.sender.wait_offset(Ticket{9}, 10s).value() == 9);
      faults::fail_next_preallocations(1 << 20); // every roll, until the test ends
      send_numbered(f.sender, 10, 210);
      if (mode == SequencerMode::caller) CHECK(f.shared.pump().code() == Errc::no_space);
      const Status closed = f.shared.close();
      CHECK(closed.code() == Errc::no_space);
      CHECK(contains(closed.message(), "topic 'f'"));
      const std::uint64_t in_log = f.bus.describe("f").value().end_offset;
      CHECK(in_log < 210);
      CHECK(f.shared.sequenced() == in_log);
      CHECK(contains(closed.message(), std::to_string(210 - in_log) + " accepted records were not appended"));
      check_numbered(f.consumer, in_log);
      // A ticket whose record never got in says so at once; it never gets an offset.
      const Result<std::uint64_t> lost = f.sender.wait_offset(Ticket{209}, 10s);
      CHECK(lost.code() == Errc::no_space);
      CHECK(contains(lost.message(), "ticket 209"));
      CHECK(f.sender.send("late").code() == Errc::closed);
    }
  }

  TEST_CASE("a_full_disk_the_sequencer_retries_is_told_to_senders_before_close_and_clears_when_the_disk_does") {
    for (const SequencerMode mode : {SequencerMode::caller, SequencerMode::thread}) {
      CAPTURE(ringbus::to_string(mode));
      FaultsOff faults_off;
      // 256 queue slots: what the sender and the sequencer hold fits the
      // ring, which no one reads before the end.
      PersistentFixture f("f", mode, ringbus::Durability::none, 256);
      send_numbered(f.sender, 0, 10);
      if (mode == SequencerMode::caller) REQUIRE(f.shared.pump().value() == 10);
      REQUIRE(f.sender.wait_offset(Ticket{9}, 10s).value() == 9);
      CHECK(f.shared.append_error().ok());

      // Every roll fails from here. Send until a send is refused: the
      // sequencer keeps what it could not append and this sender's queue
      // slots fill up behind it.
      faults::fail_next_preallocations(1 << 20);
      std::uint64_t accepted = 10;
      Status refused;
      Status pumped;
      const auto deadline = std::chrono::steady_clock::now() + 60s; // a bound, not a timing check
      while (std::chrono::steady_clock::now() < deadline) {
        Result<Ticket> t = f.sender.try_send(value_for(accepted, even_value_bytes));
        if (t.ok()) {
          CHECK(*t == Ticket{accepted});
          ++accepted;
          continue;
        }
        if (t.code() != Errc::would_block) {
          refused = std::move(t).status();
          break;
        }
        if (mode == SequencerMode::caller) {
          Result<std::size_t> p = f.shared.pump();
          if (!p.ok()) pumped = std::move(p).status();
        } else {
          std::this_thread::sleep_for(100us);
        }
      }
      REQUIRE_MESSAGE(refused.code() == Errc::no_space, refused.message());
      CHECK(contains(refused.message(), "topic 'f'"));
      CHECK(contains(refused.message(), "queue slots are full"));
      if (mode == SequencerMode::caller) CHECK(pumped.code() == Errc::no_space);
      const Status retried = f.shared.append_error();
      CHECK(retried.code() == Errc::no_space);
      CHECK(contains(retried.message(), "topic 'f'"));
      CHECK(contains(retried.message(), "the sequencer retries them"));
      // A waiting send says it at once too, and a wait for a ticket names it.
      CHECK(f.sender.send(value_for(accepted, even_value_bytes)).code() == Errc::no_space);
      const Result<std::uint64_t> waited = f.sender.wait_offset(Ticket{accepted - 1}, 20ms);
      CHECK(waited.code() == Errc::timed_out);
      CHECK(contains(waited.message(), "the sequencer is retrying an append"));
      CHECK(f.shared.sequenced() < accepted);

      // The disk clears: every accepted record gets in, in send order, and
      // the error is gone.
      faults::fail_next_preallocations(0);
      for (int i = 0; i < 10000 && f.shared.sequenced() < accepted; ++i) {
        if (mode == SequencerMode::caller) {
          (void)f.shared.pump();
        } else {
          std::this_thread::sleep_for(1ms);
        }
      }
      REQUIRE(f.sender.wait_offset(Ticket{accepted - 1}, 10s).value() == accepted - 1);
      for (int i = 0; i < 10000 && !f.shared.append_error().ok(); ++i) std::this_thread::sleep_for(1ms);
      CHECK_MESSAGE(f.shared.append_error().ok(), f.shared.append_error().message());
      const Status closed = f.shared.close();
      CHECK_MESSAGE(closed.ok(), closed.message());
      check_numbered(f.consumer, accepted);
    }
  }

  TEST_CASE("a_pump_that_appends_some_records_before_an_error_says_how_many_it_appended") {
    FaultsOff faults_off;
    PersistentFixture f("f", SequencerMode::caller, ringbus::Durability::none);
    faults::fail_next_preallocations(1 << 20); // the first roll fails
    // Two appends in one pump: a packed run of 64 values that fits the first
    // segment, then 200 records that need the next one.
    std::vector<std::uint64_t> values(64);
    for (std::uint64_t i = 0; i < values.size(); ++i) values[i] = i;
    REQUIRE(f.sender.send_values(std::span<const std::uint64_t>(values)).value() == Ticket{0});
    send_numbered(f.sender, 64, 264);
    const Status failed = f.shared.pump().status();
    REQUIRE(failed.code() == Errc::no_space);
    CHECK(f.shared.sequenced() == 64);
    CHECK_MESSAGE(contains(failed.message(), "after 64 records were appended"), failed.message());
    CHECK(f.shared.append_error().code() == Errc::no_space);
    faults::fail_next_preallocations(0);
    CHECK(f.shared.pump().value() == 200);
    CHECK(f.shared.append_error().ok());
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 264);
    for (std::uint64_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i].offset == i);
      if (i < 64) {
        std::uint64_t v = 0;
        REQUIRE(got[i].value.size() == sizeof v);
        std::memcpy(&v, got[i].value.data(), sizeof v);
        CHECK(v == i);
      } else {
        CHECK(got[i].value == value_for(i, even_value_bytes));
      }
    }
  }

  TEST_CASE("a_failed_sync_names_the_io_error_and_the_record_it_left_in_the_log_keeps_its_offset") {
    FaultsOff faults_off;
    PersistentFixture f("s", SequencerMode::caller, ringbus::Durability::sync);
    const Ticket first = f.sender.send(value_for(0, even_value_bytes)).value();
    REQUIRE(f.shared.pump().value() == 1);
    const Ticket second = f.sender.send(value_for(1, even_value_bytes)).value();
    faults::fail_next_syncs(1, EIO);
    const Result<std::size_t> pumped = f.shared.pump();
    faults::fail_next_syncs(0);
    CHECK(pumped.code() == Errc::system_error);
    CHECK(contains(pumped.message(), "topic 's'"));
    CHECK_FALSE(contains(pumped.message(), "bus was closed"));
    check_numbered(f.consumer, 2); // published before the sync failed: readers have it
    CHECK(f.sender.offset_of(first).value() == 0);
    const Result<std::uint64_t> off = f.sender.wait_offset(second, 10s);
    REQUIRE_MESSAGE(off.ok(), off.message());
    CHECK(*off == 1);
    CHECK(f.shared.sequenced() == 2);
  }

  TEST_CASE("a_topic_failed_by_a_sync_stops_the_sequencer_and_close_counts_what_did_not_get_in") {
    for (const SequencerMode mode : {SequencerMode::caller, SequencerMode::thread}) {
      CAPTURE(ringbus::to_string(mode));
      FaultsOff faults_off;
      PersistentFixture f("s", mode, ringbus::Durability::sync);
      send_numbered(f.sender, 0, 1);
      if (mode == SequencerMode::caller) REQUIRE(f.shared.pump().value() == 1);
      REQUIRE(f.sender.wait_offset(Ticket{0}, 10s).value() == 0);
      faults::fail_next_syncs(1, EIO); // the topic's store fails for good
      std::uint64_t accepted = 0;
      Status refused;
      if (mode == SequencerMode::caller) {
        send_numbered(f.sender, 1, 4);
        const Result<std::size_t> pumped = f.shared.pump(1); // record 1 gets in, then the sync fails
        CHECK(pumped.code() == Errc::system_error);
        CHECK(contains(pumped.message(), "topic 's' failed and takes no more appends"));
        CHECK(f.shared.pump().code() == Errc::system_error); // stopped: no retry
        accepted = 4;
        refused = f.sender.send("late").status();
      } else {
        // Record 1 gets in, then its sync fails and stops the sequencer
        // (its offset is published first). What is sent after that never
        // gets in; sends are refused once the sequencer has stopped.
        send_numbered(f.sender, 1, 2);
        REQUIRE(f.sender.wait_offset(Ticket{1}, 10s).value() == 1);
        accepted = 2;
        for (int i = 0; i < 100000; ++i) {
          Result<Ticket> t = f.sender.send(value_for(accepted, even_value_bytes));
          if (!t.ok()) {
            refused = std::move(t).status();
            break;
          }
          ++accepted;
          std::this_thread::sleep_for(100us);
        }
      }
      CHECK(refused.code() == Errc::system_error);
      CHECK(contains(refused.message(), "topic 's' failed and takes no more appends"));
      // append_error() says what stopped the sequencer, in both modes.
      const Status stopped = f.shared.append_error();
      CHECK(stopped.code() == Errc::system_error);
      CHECK(contains(stopped.message(), "topic 's' failed and takes no more appends"));
      REQUIRE(f.bus.is_open());
      const std::uint64_t in_log = f.bus.describe("s").value().end_offset;
      CHECK(in_log == 2);
      REQUIRE(accepted >= in_log);
      const Result<std::uint64_t> last_in = f.sender.wait_offset(Ticket{1}, 10s);
      REQUIRE_MESSAGE(last_in.ok(), last_in.message());
      CHECK(*last_in == 1);
      if (accepted > in_log) {
        const Result<std::uint64_t> lost = f.sender.wait_offset(Ticket{accepted - 1}, 10s);
        CHECK(lost.code() == Errc::system_error);
        CHECK(contains(lost.message(), "was not appended"));
      }
      const Status closed = f.shared.close();
      CHECK(closed.code() == Errc::system_error);
      CHECK(contains(closed.message(), "topic 's'"));
      CHECK(contains(closed.message(), "topic 's' failed and takes no more appends"));
      if (accepted > in_log) { // caller mode always; thread mode when a send got in before the sequencer stopped
        CHECK(contains(closed.message(), std::to_string(accepted - in_log) + " accepted records were not appended"));
      }
      check_numbered(f.consumer, in_log);
    }
  }
}

// --- many senders at once ----------------------------------------------------------------------

namespace {

using ringbus::stress::hash64;
using ringbus::stress::mix64;

constexpr unsigned thread_shift = 56;
constexpr std::uint64_t sequence_mask = (std::uint64_t{1} << thread_shift) - 1;

// Record `seq` of sender `t` carries id = t << 56 | seq, either as its whole
// 8-byte value (inline form), or as the first 8 bytes of a 16-byte key whose
// other 8 bytes are the hash of the value (general form), sometimes with a
// header "o" holding the id too.
struct StressRecord {
  std::uint64_t id;
  std::array<std::uint64_t, 2> key;
  Header header;
  Message message;
};

enum class Form { inline_value, keyed, keyed_with_header };

Form form_of(std::uint64_t id) noexcept {
  switch (mix64(id) % 4) {
    case 0:
    case 1: return Form::inline_value;
    case 2: return Form::keyed;
    default: return Form::keyed_with_header;
  }
}

void build(StressRecord& r, std::uint64_t id, const ringbus::stress::PayloadPool& pool) {
  r.id = id;
  switch (form_of(id)) {
    case Form::inline_value: r.message = msg(ByteView(), ringbus::bytes_of(r.id)); return;
    case Form::keyed:
    case Form::keyed_with_header: {
      const ringbus::stress::Slice& s = pool.for_offset(id);
      const std::size_t size = std::min<std::size_t>(s.size, 300); // within max_record_bytes
      r.key = {id, hash64(s.data, size)};
      r.message = msg(ByteView(r.key.data(), 16), ByteView(s.data, size));
      if (form_of(id) == Form::keyed_with_header) {
        r.header = Header{ByteView("o"), ringbus::bytes_of(r.id)};
        r.message.headers = std::span<const Header>(&r.header, 1);
      }
      return;
    }
  }
}

// The id a received record carries, or a defect.
const char* id_of(const Record& r, std::uint64_t& id) {
  if (r.key.empty()) {
    if (r.value.size() != 8 || !r.headers.empty()) return "an unkeyed record is not an 8-byte id";
    id = r.value.as<std::uint64_t>().value();
    return form_of(id) == Form::inline_value ? nullptr : "an inline record whose id says another form";
  }
  if (r.key.size() != 16) return "a key of a size no sender wrote";
  std::uint64_t hash = 0;
  std::memcpy(&id, r.key.data(), 8);
  std::memcpy(&hash, r.key.data() + 8, 8);
  if (hash64(r.value.data(), r.value.size()) != hash) return "the value does not match the hash in its key";
  const bool header_expected = form_of(id) == Form::keyed_with_header;
  if (r.headers.size() != (header_expected ? 1U : 0U)) return "a record with the wrong number of headers";
  if (header_expected) {
    const Header h = *r.headers.begin();
    if (h.name.str() != "o" || h.value.as<std::uint64_t>() != id) return "the header does not hold the record's id";
  }
  return nullptr;
}

// Every offset a sender learned for the sampled sequences, and every offset
// the consumer saw them at.
constexpr std::uint64_t sample_every = 256;

struct SenderReport {
  std::string error;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> sampled; // (sequence, offset told)
};

// Sender t: `count` records in a mix of send, try_send, send_batch and
// send_values calls; checks offset_of for every sampled ticket within its window.
void run_sender(SharedProducer& shared, unsigned t, std::uint64_t count, const ringbus::stress::PayloadPool& pool,
                ringbus::stress::Progress& progress, SenderReport& report) {
  Result<SharedProducer::Sender> opened = shared.sender();
  if (!opened.ok()) {
    report.error = std::string(opened.message());
    return;
  }
  SharedProducer::Sender sender = std::move(*opened);
  ringbus::stress::Rng rng(ringbus::stress::test_seed() + t);
  std::vector<StressRecord> batch(32);
  std::vector<Message> messages(32);
  std::vector<std::uint64_t> ids(32);
  std::vector<Ticket> pending; // sampled tickets not yet resolved
  const auto base = static_cast<std::uint64_t>(t) << thread_shift;
  std::uint64_t seq = 0;
  const auto fail = [&](std::string what, const ringbus::Status& st) {
    report.error =
        "sender " + std::to_string(t) + " at " + std::to_string(seq) + ": " + what + ": " + std::string(st.message());
  };
  while (seq < count) {
    const std::uint64_t n = std::min<std::uint64_t>(1 + rng.below(32), count - seq);
    const std::uint64_t choice = rng.below(8);
    Result<Ticket> ticket = Ticket{};
    if (choice < 4 || n == 1) {
      build(batch[0], base | seq, pool);
      ticket = choice == 1 ? sender.try_send(batch[0].message) : sender.send(batch[0].message);
      while (ticket.code() == Errc::would_block) {
        std::this_thread::yield();
        ticket = sender.try_send(batch[0].message);
      }
      if (!ticket.ok()) return fail("send", ticket.status());
      if (ticket->sequence != seq) return fail("ticket " + std::to_string(ticket->sequence), ringbus::Status());
      ++seq;
    } else if (choice < 6) {
      for (std::uint64_t i = 0; i < n; ++i) {
        build(batch[i], base | (seq + i), pool);
        messages[i] = batch[i].message;
      }
      ticket = sender.send_batch(std::span<const Message>(messages.data(), n));
      if (!ticket.ok()) return fail("send_batch", ticket.status());
      seq += n;
    } else {
      // send_values only for a run of inline-form ids (it carries no key).
      std::uint64_t k = 0;
      while (k < n && form_of(base | (seq + k)) == Form::inline_value) {
        ids[k] = base | (seq + k);
        ++k;
      }
      if (k == 0) continue; // the next record is keyed: another call will take it
      ticket = sender.send_values(std::span<const std::uint64_t>(ids.data(), k));
      if (!ticket.ok()) return fail("send_values", ticket.status());
      seq += k;
    }
    // Sampled tickets: remember, resolve later.
    for (std::uint64_t s = ticket->sequence; s < seq; ++s) {
      if (s % sample_every == 0) pending.push_back(Ticket{s});
    }
    while (!pending.empty()) {
      Result<std::uint64_t> offset = sender.offset_of(pending.front());
      if (offset.code() == Errc::would_block && seq - pending.front().sequence < sender.offset_window() / 2) break;
      if (offset.code() == Errc::would_block) offset = sender.wait_offset(pending.front(), 60s);
      if (!offset.ok()) return fail("offset_of", offset.status());
      report.sampled.emplace_back(pending.front().sequence, *offset);
      pending.erase(pending.begin());
    }
    progress.value.store(seq, std::memory_order_relaxed);
  }
  for (const Ticket& p : pending) {
    Result<std::uint64_t> offset = sender.wait_offset(p, 60s);
    if (!offset.ok()) return fail("wait_offset", offset.status());
    report.sampled.emplace_back(p.sequence, *offset);
  }
}

struct ConsumerReport {
  std::string error;
  std::uint64_t received = 0;
  std::vector<std::vector<std::pair<std::uint64_t, std::uint64_t>>> sampled; // per sender: (sequence, offset)
};

// Checks every record: dense offsets, each sender's sequence in order, intact content.
void run_consumer(Consumer& consumer, SharedProducer* pumper, unsigned senders, std::uint64_t per_sender,
                  ringbus::stress::Progress& progress, ConsumerReport& report) {
  std::vector<std::uint64_t> next(senders, 0);
  report.sampled.resize(senders);
  const std::uint64_t total = per_sender * senders;
  while (report.received < total) {
    if (pumper != nullptr) {
      Result<std::size_t> moved = pumper->pump();
      if (!moved.ok()) {
        report.error = "pump: " + std::string(moved.message());
        return;
      }
    }
    Result<Records> polled = consumer.poll(SIZE_MAX, pumper != nullptr ? 0ms : 10ms);
    if (!polled.ok()) {
      report.error = "poll: " + std::string(polled.message());
      return;
    }
    for (const Record& r : *polled) {
      std::uint64_t id = 0;
      if (r.offset != report.received) {
        report.error = "offset " + std::to_string(r.offset) + " where " + std::to_string(report.received) + " was next";
        return;
      }
      if (const char* defect = id_of(r, id)) {
        report.error = "offset " + std::to_string(r.offset) + ": " + defect;
        return;
      }
      const std::uint64_t t = id >> thread_shift;
      const std::uint64_t seq = id & sequence_mask;
      if (t >= senders || seq != next[t]) {
        report.error = "offset " + std::to_string(r.offset) + ": sender " + std::to_string(t) + " record " +
                       std::to_string(seq) + " where " + (t < senders ? std::to_string(next[t]) : "none") + " was next";
        return;
      }
      ++next[t];
      if (seq % sample_every == 0) report.sampled[t].emplace_back(seq, r.offset);
      ++report.received;
    }
    progress.value.store(report.received, std::memory_order_relaxed);
  }
}

void stress(SequencerMode mode, unsigned senders, std::uint64_t per_sender) {
  Bus bus;
  TopicOptions topic;
  topic.segment_bytes = std::size_t{256} << 10;
  topic.segment_count = 4;
  REQUIRE(bus.create_topic("t", topic).ok());
  SharedProducerOptions options;
  options.sequencer = mode;
  options.max_record_bytes = 512;
  options.sender_queue_slots = 2048;
  SharedProducer shared = bus.shared_producer("t", options).value();
  Consumer consumer = bus.consumer("t").value();
  const ringbus::stress::PayloadPool pool(ringbus::stress::test_seed());

  std::vector<ringbus::stress::Progress> progress(senders + 1);
  std::vector<SenderReport> reports(senders);
  ConsumerReport consumed;
  ringbus::stress::Watchdog watchdog(
      std::chrono::seconds(60),
      [&] {
        std::uint64_t sum = 0;
        for (const auto& p : progress) sum += p.value.load(std::memory_order_relaxed);
        return sum;
      },
      [&] { bus.close(); });
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < senders; ++t) {
    threads.emplace_back([&, t] { run_sender(shared, t, per_sender, pool, progress[t], reports[t]); });
  }
  std::thread reader([&] {
    run_consumer(consumer, mode == SequencerMode::caller ? &shared : nullptr, senders, per_sender, progress[senders],
                 consumed);
  });
  for (std::thread& t : threads) t.join();
  reader.join();
  watchdog.stop();
  CHECK_FALSE(watchdog.fired());
  for (const SenderReport& r : reports) CHECK_MESSAGE(r.error.empty(), r.error);
  CHECK_MESSAGE(consumed.error.empty(), consumed.error);
  CHECK(consumed.received == per_sender * senders);
  CHECK(shared.close().ok());
  CHECK(bus.describe("t").value().end_offset == per_sender * senders); // nothing more, nothing less
  // The offset each sender was told holds exactly its record.
  if (consumed.error.empty()) {
    for (unsigned t = 0; t < senders; ++t) {
      CAPTURE(t);
      CHECK(reports[t].sampled == consumed.sampled[t]);
    }
  }
}

// Writers that keep closing their Sender (or dropping it) and opening
// another, with twice as many writer threads as sender slots, so slots
// change hands all the time: every record arrives once, intact, in its
// writer's order.
void reopening_writers(SequencerMode mode) {
  constexpr unsigned writers = 6;
  const std::uint64_t per_writer = ringbus::stress::scaled(20'000, 2'000);
  Bus bus;
  REQUIRE(bus.create_topic("t", medium_ring()).ok());
  SharedProducerOptions options;
  options.sequencer = mode;
  options.max_senders = 3;
  options.sender_queue_slots = 300;
  options.max_record_bytes = 256;
  options.sequencer_batch_slots = 64;
  SharedProducer shared = bus.shared_producer("t", options).value();
  Consumer consumer = bus.consumer("t").value();

  std::vector<std::string> errors(writers);
  std::atomic<bool> stop{false}; // a writer failed, or the reader did
  std::vector<std::thread> threads;
  for (unsigned w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      ringbus::stress::Rng rng(ringbus::stress::test_seed() + w);
      std::vector<WriterRecord> records;
      std::vector<Message> messages;
      std::uint64_t seq = 0;
      const auto fail = [&](std::string why) {
        errors[w] = std::move(why);
        stop.store(true, std::memory_order_relaxed);
      };
      while (seq < per_writer && !stop.load(std::memory_order_relaxed)) {
        Result<SharedProducer::Sender> opened = shared.sender();
        if (opened.code() == Errc::too_many_senders) {
          std::this_thread::yield();
          continue;
        }
        if (!opened.ok()) {
          return fail("sender(): " + std::string(opened.message()));
        }
        SharedProducer::Sender sender = std::move(*opened);
        const std::uint64_t end = std::min<std::uint64_t>(seq + 1 + rng.below(40), per_writer);
        while (seq < end) {
          Result<Ticket> sent = Ticket{};
          std::uint64_t n = 1;
          if (rng.one_in(4)) { // a batch of the next few records
            n = std::min<std::uint64_t>(1 + rng.below(8), end - seq);
            records.clear();
            messages.clear();
            for (std::uint64_t i = 0; i < n; ++i) records.push_back(writer_record(w, seq + i));
            for (const WriterRecord& r : records) messages.push_back(msg(ByteView(r.key), ByteView(r.value)));
            sent = sender.send_batch(messages);
          } else {
            sent = send_record(sender, w, seq);
          }
          if (!sent.ok()) {
            return fail("send of record " + std::to_string(seq) + ": " + std::string(sent.message()));
          }
          seq += n;
        }
        if (rng.one_in(2)) (void)sender.close(); // else its destructor closes it
      }
    });
  }
  // This thread reads (and pumps, in caller mode) until every record is in,
  // one is out of order or a writer failed; then closing the bus stops the
  // writers' waits.
  WriterOrder order(writers);
  std::uint64_t received = 0;
  std::string error;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (received < writers * per_writer && error.empty() && !stop.load(std::memory_order_relaxed)) {
    if (std::chrono::steady_clock::now() > deadline) {
      error = "only " + std::to_string(received) + " records arrived within 60 s";
      break;
    }
    if (mode == SequencerMode::caller) {
      Result<std::size_t> moved = shared.pump();
      if (!moved.ok()) error = "pump: " + std::string(moved.message());
    }
    Result<Records> polled = consumer.poll(SIZE_MAX, mode == SequencerMode::caller ? 0ms : 10ms);
    if (!polled.ok()) {
      error = "poll: " + std::string(polled.message());
      break;
    }
    for (const Record& r : *polled) {
      if (!order.check(r.key.str(), r.value.str())) {
        error = "offset " + std::to_string(r.offset) + ": " + order.error();
        break;
      }
      ++received;
    }
  }
  if (received != writers * per_writer) {
    stop.store(true, std::memory_order_relaxed);
    bus.close();
  }
  for (std::thread& t : threads) t.join();
  CHECK_MESSAGE(error.empty(), error);
  if (!error.empty()) return; // the writers then met the closed bus
  for (const std::string& e : errors) CHECK_MESSAGE(e.empty(), e);
  if (received != writers * per_writer) return;
  CHECK(shared.close().ok());
  CHECK(bus.describe("t").value().end_offset == writers * per_writer); // nothing more, nothing less
}

} // namespace

TEST_SUITE("shared_producer") {
  TEST_CASE("eight_senders_in_thread_mode_deliver_every_record_once_in_each_senders_order") {
    stress(SequencerMode::thread, 8, ringbus::stress::scaled(1'000'000, 20'000));
  }

  TEST_CASE("four_senders_and_a_pumping_consumer_deliver_every_record_once_in_each_senders_order") {
    stress(SequencerMode::caller, 4, ringbus::stress::scaled(1'000'000, 20'000));
  }

  TEST_CASE("threads_that_keep_reopening_senders_keep_their_order_in_both_modes") {
    for (const SequencerMode mode : {SequencerMode::thread, SequencerMode::caller}) {
      CAPTURE(ringbus::to_string(mode));
      reopening_writers(mode);
    }
  }
}
