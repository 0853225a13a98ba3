// Consumer: polling, fan-out, fairness across topics, seek and replay,
// position/lag/lost, the overwrite policy's gaps, and wait strategies.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ringbus/consumer.hpp"
#include "stress_support.hpp"
#include "test_support.hpp"

using ringbus::Bus;
using ringbus::ByteView;
using ringbus::Consumer;
using ringbus::ConsumerOptions;
using ringbus::Errc;
using ringbus::Gap;
using ringbus::Header;
using ringbus::Message;
using ringbus::OverflowPolicy;
using ringbus::Producer;
using ringbus::Record;
using ringbus::Records;
using ringbus::Result;
using ringbus::StartPosition;
using ringbus::Status;
using ringbus::TopicOptions;
using ringbus::WaitStrategy;
using ringbus::test::append_numbered;
using ringbus::test::contains;
using ringbus::test::drain;
using ringbus::test::even_value_bytes;
using ringbus::test::msg;
using ringbus::test::OwnedRecord;
using ringbus::test::packed_frame_bytes;
using ringbus::test::poll_once;
using ringbus::test::records_per_small_segment;
using ringbus::test::small_ring;
using ringbus::test::str;
using ringbus::test::value_for;

namespace {

constexpr std::uint64_t per_segment = records_per_small_segment; // 64-byte frames, 64 per 4 KiB

// Topics "a" and "b", each with `records` numbered records, and one consumer
// subscribed to both from the beginning.
struct TwoBusyTopics {
  explicit TwoBusyTopics(std::uint64_t records) {
    REQUIRE(bus.create_topic("a", small_ring(4)).ok());
    REQUIRE(bus.create_topic("b", small_ring(4)).ok());
    pa = bus.producer("a").value();
    pb = bus.producer("b").value();
    append_numbered(pa, records);
    append_numbered(pb, records);
    ConsumerOptions o;
    o.topics = {"a", "b"};
    consumer = bus.consumer(o).value();
  }
  Bus bus;
  Producer pa;
  Producer pb;
  Consumer consumer;
};

// Appends `count` even-sized records; when the ring is full (block policy)
// lets `reader` catch up and retries.
void append_draining(Producer& p, Consumer& reader, std::uint64_t count) {
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t offset = p.next_offset();
    auto r = p.try_append(value_for(offset, even_value_bytes));
    if (r.code() == Errc::would_block) {
      drain(reader);
      r = p.try_append(value_for(offset, even_value_bytes));
    }
    REQUIRE_MESSAGE(r.ok(), r.message());
    REQUIRE(*r == offset);
  }
}

// Checks that records are consecutive offsets from `first` with the values append_numbered wrote.
void check_run(const std::vector<OwnedRecord>& got, std::uint64_t first, std::uint64_t count) {
  REQUIRE(got.size() == count);
  for (std::uint64_t i = 0; i < count; ++i) {
    CAPTURE(i);
    CHECK(got[i].offset == first + i);
    CHECK(got[i].value == value_for(first + i, even_value_bytes));
  }
}

std::size_t count_topic(const std::vector<OwnedRecord>& got, std::string_view topic) {
  std::size_t n = 0;
  for (const OwnedRecord& r : got) n += r.topic == topic ? 1 : 0;
  return n;
}

// One poll_one, copied out; nullopt when it said would_block (no record there).
std::optional<OwnedRecord> poll_one_owned(Consumer& c) {
  Record record;
  const Status polled = c.poll_one(record);
  if (polled.code() == Errc::would_block) return std::nullopt;
  REQUIRE_MESSAGE(polled.ok(), polled.message());
  return ringbus::test::own(record);
}

// Topic "t" on a 4-segment ring and a consumer of it from the beginning.
struct OneTopic {
  explicit OneTopic(std::size_t segments = 4) {
    REQUIRE(bus.create_topic("t", small_ring(segments)).ok());
    producer = bus.producer("t").value();
    consumer = bus.consumer("t").value();
  }
  // `frames` general-form frames (append_batch) of values.size() records
  // each, keyed "key", the values in order.
  void append_batches(const std::vector<std::string>& values, int frames) {
    std::vector<Message> batch;
    for (const std::string& v : values) batch.push_back(msg("key", v));
    for (int i = 0; i < frames; ++i) REQUIRE(producer.append_batch(batch).ok());
  }
  Bus bus;
  Producer producer;
  Consumer consumer;
};

TopicOptions waiting(WaitStrategy wait) {
  TopicOptions o = small_ring();
  o.wait = wait;
  return o;
}

constexpr std::array<WaitStrategy, 4> every_strategy{WaitStrategy::busy_spin, WaitStrategy::yield,
                                                     WaitStrategy::backoff, WaitStrategy::blocking};

// A thread that sleeps `delay`, then does `act`: something that happens
// while the test's thread waits in a poll. Join it before checking.
template <class Act>
std::thread after(std::chrono::milliseconds delay, Act act) {
  return std::thread([delay, act] {
    std::this_thread::sleep_for(delay);
    act();
  });
}

} // namespace

TEST_SUITE("consumer") {
  // --- polling --------------------------------------------------------------------------

  TEST_CASE("consumer_from_earliest_sees_every_record_in_order") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(4)).ok());
    auto p = bus.producer("t").value();
    append_numbered(p, 100);
    auto c = bus.consumer("t", StartPosition::earliest).value();
    check_run(drain(c), 0, 100);
  }

  TEST_CASE("consumer_from_latest_sees_only_records_appended_after_it_subscribed") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(4)).ok());
    auto p = bus.producer("t").value();
    append_numbered(p, 30);
    auto c = bus.consumer("t", StartPosition::latest).value();
    CHECK(c.position("t").value() == 30);
    CHECK(poll_once(c).empty());
    append_numbered(p, 5);
    check_run(drain(c), 30, 5);
  }

  TEST_CASE("every_consumer_sees_every_record") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(4)).ok());
    auto p = bus.producer("t").value();
    auto c1 = bus.consumer("t").value();
    auto c2 = bus.consumer("t").value();
    append_numbered(p, 50);
    auto c3 = bus.consumer("t").value();
    check_run(drain(c1), 0, 50);
    check_run(drain(c2), 0, 50);
    check_run(drain(c3), 0, 50);
  }

  TEST_CASE("poll_returns_at_most_max_records_and_resumes_where_it_stopped") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(4)).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    append_numbered(p, 20);
    std::vector<Message> batch; // one frame of ten records: polls stop inside it
    std::vector<std::string> values;
    for (std::uint64_t i = 20; i < 30; ++i) values.push_back(value_for(i, even_value_bytes));
    for (const std::string& v : values) batch.push_back(msg("", v, 1));
    REQUIRE(p.append_batch(batch).value() == 20);

    std::vector<OwnedRecord> all;
    for (;;) {
      std::vector<OwnedRecord> got = poll_once(c, 3);
      CHECK(got.size() <= 3);
      if (got.empty()) break;
      all.insert(all.end(), got.begin(), got.end());
    }
    check_run(all, 0, 30);
  }

  TEST_CASE("poll_of_zero_records_returns_nothing_and_moves_nothing") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    append_numbered(p, 5);
    auto r = c.poll(0, std::chrono::milliseconds(50));
    REQUIRE(r.ok());
    CHECK(r->empty());
    CHECK(r->size() == 0);
    CHECK(c.position("t").value() == 0);
    check_run(drain(c), 0, 5);
  }

  TEST_CASE("records_range_offers_size_iteration_and_arrow_access") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    REQUIRE(p.append("k0", "v0").ok());
    REQUIRE(p.append("k1", "v1").ok());
    auto r = c.poll();
    REQUIRE(r.ok());
    CHECK(r->size() == 2);
    CHECK_FALSE(r->empty());
    CHECK(r->gaps().empty());
    CHECK(r->lost() == 0);
    auto it = r->begin();
    CHECK(it->offset == 0);
    CHECK(str(it->key) == "k0");
    auto old = it++;
    CHECK(old->offset == 0);
    CHECK(it->offset == 1);
    CHECK(str((*it).value) == "v1");
    ++it;
    CHECK(it == r->end());

    const Records none;
    CHECK(none.empty());
    CHECK(none.begin() == none.end());
    CHECK(none.lost() == 0);
  }

  TEST_CASE("views_stay_valid_until_the_next_poll") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    append_numbered(p, 2 * per_segment);
    auto first = c.poll();
    REQUIRE(first.ok());
    REQUIRE(first->size() == 2 * per_segment);
    // The producer tries to lap the views we still hold: refused, views intact.
    for (int attempt = 0; attempt < 3; ++attempt) CHECK(p.try_append("lap").code() == Errc::would_block);
    check_run(ringbus::test::own_all(*first), 0, 2 * per_segment);
  }

  // --- fairness across topics ------------------------------------------------------------

  // The documented rule: each poll starts at the next topic in turn and gives
  // every topic an equal share of max_records (at least one), then what is left
  // to the topics in the same turn order.
  TEST_CASE("poll_splits_an_even_budget_equally_between_two_busy_topics") {
    TwoBusyTopics busy(100);
    Consumer& c = busy.consumer;
    std::uint64_t next_a = 0;
    std::uint64_t next_b = 0;
    for (int poll = 0; poll < 10; ++poll) {
      const std::vector<OwnedRecord> got = poll_once(c, 4);
      CHECK(count_topic(got, "a") == 2);
      CHECK(count_topic(got, "b") == 2);
      for (const OwnedRecord& r : got) {
        std::uint64_t& next = r.topic == "a" ? next_a : next_b;
        CHECK(r.offset == next);
        CHECK(r.value == value_for(next, even_value_bytes));
        ++next;
      }
    }
    CHECK(c.position("a").value() == 20);
    CHECK(c.position("b").value() == 20);
  }

  TEST_CASE("poll_of_one_record_alternates_between_two_busy_topics") {
    TwoBusyTopics busy(50);
    Consumer& c = busy.consumer;
    std::string previous;
    for (int poll = 0; poll < 20; ++poll) {
      const std::vector<OwnedRecord> got = poll_once(c, 1);
      REQUIRE(got.size() == 1);
      CHECK(got[0].topic != previous);
      previous = got[0].topic;
    }
    CHECK(c.position("a").value() == 10);
    CHECK(c.position("b").value() == 10);
  }

  TEST_CASE("poll_gives_an_odd_budgets_extra_record_to_each_topic_in_turn") {
    TwoBusyTopics busy(50);
    Consumer& c = busy.consumer;
    std::string previous_bigger;
    for (int poll = 0; poll < 8; ++poll) {
      const std::vector<OwnedRecord> got = poll_once(c, 3);
      REQUIRE(got.size() == 3);
      const std::size_t a = count_topic(got, "a");
      const std::size_t b = count_topic(got, "b");
      CHECK(((a == 2 && b == 1) || (a == 1 && b == 2)));
      const std::string bigger = a == 2 ? "a" : "b";
      CHECK(bigger != previous_bigger);
      previous_bigger = bigger;
    }
    CHECK(c.position("a").value() == 12);
    CHECK(c.position("b").value() == 12);
  }

  TEST_CASE("an_idle_topic_leaves_the_whole_budget_to_the_busy_one") {
    Bus bus;
    REQUIRE(bus.create_topic("busy", small_ring(4)).ok());
    REQUIRE(bus.create_topic("idle", small_ring(4)).ok());
    auto p = bus.producer("busy").value();
    append_numbered(p, 50);
    ConsumerOptions o;
    o.topics = {"idle", "busy"};
    auto c = bus.consumer(o).value();
    for (int poll = 0; poll < 4; ++poll) {
      const std::vector<OwnedRecord> got = poll_once(c, 5);
      CHECK(got.size() == 5);
      CHECK(count_topic(got, "busy") == 5);
    }
  }

  // --- subscriptions --------------------------------------------------------------------

  TEST_CASE("subscribe_adds_a_topic_and_unsubscribe_removes_it") {
    Bus bus;
    REQUIRE(bus.create_topic("a", small_ring()).ok());
    REQUIRE(bus.create_topic("b", small_ring()).ok());
    auto pa = bus.producer("a").value();
    auto pb = bus.producer("b").value();
    append_numbered(pa, 3);
    append_numbered(pb, 4);
    auto c = bus.consumer("a").value();
    CHECK(c.subscription_count() == 1);
    REQUIRE(c.subscribe("b", StartPosition::latest).ok());
    CHECK(c.subscription_count() == 2);
    CHECK(c.position("b").value() == 4);
    append_numbered(pb, 1);
    const std::vector<OwnedRecord> got = drain(c);
    CHECK(count_topic(got, "a") == 3);
    CHECK(count_topic(got, "b") == 1);

    REQUIRE(c.unsubscribe("a").ok());
    CHECK(c.subscription_count() == 1);
    CHECK(c.position("a").code() == Errc::not_subscribed);
    append_numbered(pa, 2);
    append_numbered(pb, 2);
    const std::vector<OwnedRecord> after = drain(c);
    CHECK(count_topic(after, "a") == 0);
    CHECK(count_topic(after, "b") == 2);

    REQUIRE(c.subscribe("a").ok()); // again, from the earliest record
    check_run(drain(c), 0, 5);
  }

  // poll takes a shorter way for a single block-policy subscription; going
  // from two subscriptions to one and back must keep it on the right cursor.
  TEST_CASE("a_consumer_left_with_one_topic_reads_and_releases_it_across_laps") {
    Bus bus;
    REQUIRE(bus.create_topic("a", small_ring()).ok());
    REQUIRE(bus.create_topic("b", small_ring()).ok());
    auto pa = bus.producer("a").value();
    auto pb = bus.producer("b").value();
    auto c = bus.consumer("a").value();
    REQUIRE(c.subscribe("b").ok());
    REQUIRE(c.unsubscribe("a").ok());
    // Five laps of b's two-segment ring, read a segment at a time: try_append
    // fails if the poll did not release the position it left.
    for (std::uint64_t lap = 0; lap < 10; ++lap) {
      append_numbered(pb, per_segment);
      const std::vector<OwnedRecord> got = drain(c);
      REQUIRE(got.size() == per_segment);
      CHECK(count_topic(got, "b") == per_segment);
      check_run(got, lap * per_segment, per_segment);
    }
    // Back to two topics (a from the earliest), then to a alone.
    append_numbered(pa, 3);
    REQUIRE(c.subscribe("a").ok());
    append_numbered(pb, 2);
    const std::vector<OwnedRecord> both = drain(c);
    CHECK(count_topic(both, "a") == 3);
    CHECK(count_topic(both, "b") == 2);
    REQUIRE(c.unsubscribe("b").ok());
    for (std::uint64_t lap = 0; lap < 6; ++lap) {
      append_numbered(pa, per_segment);
      check_run(drain(c), 3 + lap * per_segment, per_segment);
    }
  }

  TEST_CASE("subscribe_to_an_unknown_topic_is_refused_naming_it") {
    Bus bus;
    REQUIRE(bus.create_topic("a", small_ring()).ok());
    auto c = bus.consumer("a").value();
    auto s = c.subscribe("ghost");
    CHECK(s.code() == Errc::topic_not_found);
    CHECK(contains(s.message(), "'ghost'"));
    CHECK(c.subscription_count() == 1);
  }

  TEST_CASE("subscribing_twice_to_a_topic_is_refused") {
    Bus bus;
    REQUIRE(bus.create_topic("a", small_ring()).ok());
    auto c = bus.consumer("a").value();
    auto s = c.subscribe("a");
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "already subscribed"));
    CHECK(contains(s.message(), "'a'"));
    CHECK(c.subscription_count() == 1);
  }

  TEST_CASE("subscribe_to_a_topic_with_every_slot_taken_says_too_many_consumers") {
    Bus bus;
    TopicOptions o = small_ring();
    o.max_consumers = 1;
    REQUIRE(bus.create_topic("full", o).ok());
    REQUIRE(bus.create_topic("free", small_ring()).ok());
    auto holder = bus.consumer("full").value();
    auto c = bus.consumer("free").value();
    auto s = c.subscribe("full");
    CHECK(s.code() == Errc::too_many_consumers);
    CHECK(contains(s.message(), "'full'"));
    CHECK(contains(s.message(), "1 reader slots"));
    CHECK(c.subscription_count() == 1);
    // The refused subscribe made room for a second cursor (moving the first):
    // the consumer still reads "free", the short way included.
    auto p = bus.producer("free").value();
    append_numbered(p, 3);
    check_run(drain(c), 0, 3);
    REQUIRE(holder.unsubscribe("full").ok()); // unsubscribing frees the slot
    CHECK(c.subscribe("full").ok());
  }

  TEST_CASE("unsubscribe_from_a_topic_not_subscribed_says_not_subscribed") {
    Bus bus;
    REQUIRE(bus.create_topic("a", small_ring()).ok());
    REQUIRE(bus.create_topic("b", small_ring()).ok());
    auto c = bus.consumer("a").value();
    auto s = c.unsubscribe("b");
    CHECK(s.code() == Errc::not_subscribed);
    CHECK(contains(s.message(), "'b'"));
  }

  TEST_CASE("poll_without_subscriptions_says_not_subscribed") {
    Bus bus;
    REQUIRE(bus.create_topic("a", small_ring()).ok());
    auto none = bus.consumer(ConsumerOptions{}).value();
    auto r = none.poll();
    CHECK(r.code() == Errc::not_subscribed);
    CHECK(contains(r.message(), "subscribe"));
    auto c = bus.consumer("a").value();
    REQUIRE(c.unsubscribe("a").ok());
    CHECK(c.poll().code() == Errc::not_subscribed);
    CHECK(c.seek_to_beginning().ok()); // nothing to move
    CHECK(c.seek_to_end().ok());
  }

  TEST_CASE("calls_naming_a_topic_not_subscribed_say_not_subscribed") {
    Bus bus;
    REQUIRE(bus.create_topic("a", small_ring()).ok());
    REQUIRE(bus.create_topic("b", small_ring()).ok());
    auto c = bus.consumer("a").value();
    CHECK(c.seek("b", 0).code() == Errc::not_subscribed);
    CHECK(contains(c.seek("b", 0).message(), "'b'"));
    CHECK(c.seek_to_beginning("b").code() == Errc::not_subscribed);
    CHECK(c.seek_to_end("b").code() == Errc::not_subscribed);
    CHECK(c.position("b").code() == Errc::not_subscribed);
    CHECK(c.lag("b").code() == Errc::not_subscribed);
    CHECK(c.lost("b").code() == Errc::not_subscribed);
    CHECK(c.position("nowhere").code() == Errc::not_subscribed);
  }

  // --- seek and replay -------------------------------------------------------------------

  TEST_CASE("seek_moves_the_next_poll_to_that_offset") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(4)).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    append_numbered(p, 150); // three segments
    drain(c);
    for (std::uint64_t target : {std::uint64_t{37}, std::uint64_t{0}, std::uint64_t{64}, std::uint64_t{149}}) {
      CAPTURE(target);
      REQUIRE(c.seek("t", target).ok());
      CHECK(c.position("t").value() == target);
      CHECK(c.lag("t").value() == 150 - target);
      check_run(drain(c), target, 150 - target);
    }
  }

  TEST_CASE("seek_into_the_middle_of_a_batch_delivers_from_that_record") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(4)).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    std::vector<std::string> values;
    for (std::uint64_t i = 0; i < 10; ++i) values.push_back(value_for(i, even_value_bytes));
    std::vector<Message> batch;
    for (const std::string& v : values) batch.push_back(msg("k", v));
    REQUIRE(p.append_batch(batch).ok()); // one frame
    REQUIRE(c.seek("t", 4).ok());
    const std::vector<OwnedRecord> got = drain(c);
    REQUIRE(got.size() == 6);
    for (std::uint64_t i = 0; i < 6; ++i) {
      CHECK(got[i].offset == 4 + i);
      CHECK(got[i].value == values[4 + i]);
    }
  }

  TEST_CASE("seek_to_the_end_offset_waits_for_new_records") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    append_numbered(p, 10);
    REQUIRE(c.seek("t", 10).ok());
    CHECK(c.lag("t").value() == 0);
    CHECK(poll_once(c).empty());
    append_numbered(p, 2);
    check_run(drain(c), 10, 2);
  }

  TEST_CASE("seek_past_the_end_is_refused_naming_the_held_range") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    append_numbered(p, 10);
    REQUIRE(poll_once(c, 4).size() == 4);
    auto s = c.seek("t", 11);
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "offset 11"));
    CHECK(contains(s.message(), "'t'"));
    CHECK(contains(s.message(), "[0, 10)"));
    CHECK(c.position("t").value() == 4); // unchanged
    check_run(drain(c), 4, 6);
  }

  TEST_CASE("seek_older_than_the_oldest_held_record_is_refused_naming_the_held_range") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    append_draining(p, c, 5 * per_segment); // the ring holds segments 3 and 4: offsets [192, 320)
    drain(c);
    CHECK(bus.describe("t")->oldest_offset == 3 * per_segment);
    auto s = c.seek("t", 0);
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "offset 0"));
    CHECK(contains(s.message(), "[192, 320)"));
    CHECK(c.seek("t", 191).code() == Errc::invalid_argument);
    CHECK(c.position("t").value() == 320);
    REQUIRE(c.seek("t", 192).ok());
    check_run(drain(c), 192, 128);
  }

  TEST_CASE("refused_seek_keeps_the_consumer_holding_its_unread_records") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    append_numbered(p, 2 * per_segment); // the ring is full and c has read nothing
    REQUIRE(p.try_append("lap").code() == Errc::would_block);
    CHECK(c.seek("t", 1000).code() == Errc::invalid_argument);
    CHECK(c.position("t").value() == 0);
    // c still holds offset 0 on: the producer must not overwrite it.
    CHECK(p.try_append("lap").code() == Errc::would_block);
    const std::vector<OwnedRecord> got = drain(c);
    REQUIRE(got.size() >= 2 * per_segment);
    for (std::uint64_t i = 0; i < 2 * per_segment; ++i) {
      CAPTURE(i);
      CHECK(got[i].offset == i);
      CHECK(got[i].value == value_for(i, even_value_bytes));
    }
  }

  TEST_CASE("seeking_back_replays_identical_records") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(8)).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    const std::array<Header, 2> headers{Header{"h1", "x"}, Header{"h2", ""}};
    std::vector<std::string> storage;
    std::vector<std::string> keys;
    for (std::uint64_t i = 0; i < 120; ++i) storage.push_back(value_for(i, 1 + (i * 37) % 300));
    for (std::uint64_t i = 0; i < 60; ++i) keys.push_back(i % 2 == 0 ? ringbus::test::key_for(i) : std::string());
    for (std::uint64_t i = 0; i < 60; ++i) {
      Message m = msg(keys[i], storage[i]);
      if (i % 3 == 0) m.headers = headers;
      REQUIRE(p.append(m).ok());
    }
    std::vector<Message> batch;
    for (std::uint64_t i = 60; i < 90; ++i) batch.push_back(msg("b", storage[i], static_cast<std::int64_t>(i)));
    REQUIRE(p.append_batch(batch).ok());
    const std::vector<std::uint32_t> packed(30, 0xabcdef01u);
    REQUIRE(p.append_values(std::span<const std::uint32_t>(packed)).ok());

    const std::vector<OwnedRecord> original = drain(c);
    REQUIRE(original.size() == 120);
    REQUIRE(c.seek_to_beginning("t").ok());
    CHECK(c.position("t").value() == 0);
    CHECK(drain(c) == original);
    REQUIRE(c.seek("t", 75).ok());
    const std::vector<OwnedRecord> tail = drain(c);
    CHECK(tail == std::vector<OwnedRecord>(original.begin() + 75, original.end()));
    REQUIRE(c.seek("t", 0).ok());
    CHECK(drain(c, 7) == original); // in small polls too
  }

  // --- poll_one: the next record alone, decoded into the caller's Record ----------------

  TEST_CASE("poll_one_gives_every_kind_of_record_exactly_as_poll_does") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(4)).ok());
    auto p = bus.producer("t").value();
    auto one = bus.consumer("t").value();
    auto many = bus.consumer("t").value();
    const std::array<Header, 2> headers{Header{"h1", "x"}, Header{"h2", ""}};
    std::uint64_t next = 0;
    for (int round = 0; round < 40; ++round) { // ~6 laps of the 16 KiB ring: pad frames and wraps
      std::vector<std::string> storage;
      for (std::uint64_t i = 0; i < 7; ++i) storage.push_back(value_for(next + i, 1 + (next * 37 + i * 11) % 200));
      REQUIRE(p.append(ByteView(storage[0])).ok());                                      // packed, alone
      REQUIRE(p.append(msg(ringbus::test::key_for(next), storage[1], 7, headers)).ok()); // general, alone
      std::vector<Message> batch;                                                        // general, five in a frame
      for (int i = 2; i < 7; ++i) batch.push_back(msg(i % 2 == 0 ? "k" : "", storage[i], 100 + i, headers));
      REQUIRE(p.append_batch(batch).ok());
      const std::vector<std::uint32_t> packed{1, 2, 3, 0xabcdef01u}; // packed, four in a frame
      REQUIRE(p.append_values(std::span<const std::uint32_t>(packed)).ok());
      auto claim = p.claim(8, 3);
      REQUIRE(claim.ok());
      std::memcpy(claim->key().data(), "key", 3);
      std::memset(claim->value().data(), round, 8);
      REQUIRE(claim->commit().ok());
      next = p.next_offset();

      const std::vector<OwnedRecord> expected = drain(many);
      REQUIRE(expected.size() == 12);
      std::vector<OwnedRecord> got;
      while (std::optional<OwnedRecord> r = poll_one_owned(one)) got.push_back(*r);
      CHECK(got == expected);
    }
    CHECK(one.position("t").value() == next);
    CHECK(one.lag("t").value() == 0);
  }

  TEST_CASE("poll_one_and_poll_take_turns_inside_one_batch_frame_and_after_a_seek_back") {
    OneTopic t;
    std::vector<std::string> values;
    for (std::uint64_t i = 0; i < 20; ++i) values.push_back(value_for(i, 5 + i));
    t.append_batches(values, 1); // one general-form frame of 20
    std::vector<OwnedRecord> got;
    for (const std::size_t n : {0, 0, 3, 0, 2, 0, 0}) { // 0: poll_one
      if (n == 0) {
        const std::optional<OwnedRecord> r = poll_one_owned(t.consumer);
        REQUIRE(r.has_value());
        got.push_back(*r);
      } else {
        for (const OwnedRecord& r : poll_once(t.consumer, n)) got.push_back(r);
      }
    }
    REQUIRE(got.size() == 10);
    // A seek to where poll_one stands (its next record is known), one record,
    // then back into records it has read and on to the frame's end.
    REQUIRE(t.consumer.seek("t", 10).ok());
    got.push_back(poll_one_owned(t.consumer).value());
    REQUIRE(t.consumer.seek("t", 3).ok());
    while (std::optional<OwnedRecord> r = poll_one_owned(t.consumer)) got.push_back(*r);
    REQUIRE(got.size() == 28);
    // A new subscription starts with nothing known: from record 15 to the end.
    REQUIRE(t.consumer.unsubscribe("t").ok());
    REQUIRE(t.consumer.subscribe("t").ok());
    REQUIRE(t.consumer.seek("t", 15).ok());
    while (std::optional<OwnedRecord> r = poll_one_owned(t.consumer)) got.push_back(*r);
    REQUIRE(got.size() == 33);
    std::vector<std::uint64_t> expected_offsets;
    for (std::uint64_t o = 0; o <= 10; ++o) expected_offsets.push_back(o);
    for (std::uint64_t o = 3; o < 20; ++o) expected_offsets.push_back(o);
    for (std::uint64_t o = 15; o < 20; ++o) expected_offsets.push_back(o);
    for (std::size_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      const std::uint64_t offset = expected_offsets[i];
      CHECK(got[i].offset == offset);
      CHECK(got[i].key == "key");
      CHECK(got[i].value == values[offset]);
    }
    CHECK(t.consumer.position("t").value() == 20);
  }

  TEST_CASE("poll_one_after_a_seek_into_a_batch_starts_at_that_record") {
    OneTopic t;
    std::vector<std::string> values;
    for (std::uint64_t i = 0; i < 10; ++i) values.push_back(value_for(i, even_value_bytes));
    t.append_batches(values, 2);
    REQUIRE(t.consumer.seek("t", 13).ok()); // the second frame, its record 3
    std::uint64_t offset = 13;
    while (std::optional<OwnedRecord> r = poll_one_owned(t.consumer)) {
      CHECK(r->offset == offset);
      CHECK(r->value == values[offset - 10]);
      ++offset;
    }
    CHECK(offset == 20);
  }

  // Single-record packed frames (append of a value) are poll_one's short
  // read; a seek or a seek_to_time to one of them, and frames of several
  // records or of the general form between them, must still come out right.
  TEST_CASE("poll_one_after_a_seek_among_single_record_frames_starts_at_that_record") {
    OneTopic t(16); // holds all 300
    std::vector<std::string> values;
    for (std::uint64_t i = 0; i < 300; ++i) values.push_back(value_for(i, 1 + (i * 13) % 40));
    for (std::uint64_t i = 0; i < 300; ++i) {
      if (i % 50 == 7) {
        REQUIRE(t.producer.append(msg("k", values[i], static_cast<std::int64_t>(1000 + i))).ok()); // general form
      } else {
        REQUIRE(t.producer.append(msg("", values[i], static_cast<std::int64_t>(1000 + i))).ok()); // packed
      }
    }
    for (std::uint64_t target : {0, 1, 7, 8, 63, 64, 65, 150, 299}) {
      CAPTURE(target);
      REQUIRE(t.consumer.seek("t", target).ok());
      for (std::uint64_t offset = target; offset < std::min<std::uint64_t>(target + 70, 300); ++offset) {
        const std::optional<OwnedRecord> r = poll_one_owned(t.consumer);
        REQUIRE(r.has_value());
        CHECK(r->offset == offset);
        CHECK(r->value == values[offset]);
        CHECK(r->timestamp_ns == static_cast<std::int64_t>(1000 + offset));
      }
    }
    REQUIRE(t.consumer.seek_to_time("t", 1000 + 200).ok());
    const std::optional<OwnedRecord> at = poll_one_owned(t.consumer);
    REQUIRE(at.has_value());
    CHECK(at->offset == 200);
    REQUIRE(t.consumer.seek("t", 299).ok());
    REQUIRE(poll_one_owned(t.consumer).has_value());
    CHECK_FALSE(poll_one_owned(t.consumer).has_value());
    CHECK(t.consumer.position("t").value() == 300);
  }

  TEST_CASE("seek_to_time_lands_on_a_record_inside_a_general_form_batch_under_either_policy") {
    for (OverflowPolicy policy : {OverflowPolicy::block, OverflowPolicy::overwrite}) {
      CAPTURE(policy == OverflowPolicy::overwrite);
      Bus bus;
      REQUIRE(bus.create_topic("t", small_ring(2, policy)).ok());
      Consumer c = bus.consumer("t").value();
      Producer p = bus.producer("t").value();
      const Message batch[] = {msg("k", "a", 10), msg("k", "b", 20), msg("k", "c", 30)};
      REQUIRE(p.append_batch(batch).ok());
      REQUIRE(p.append(msg("k", "d", 40)).ok());
      for (const auto& [t, want] : {std::pair<std::int64_t, std::uint64_t>{5, 0},
                                    {10, 0},
                                    {15, 1},
                                    {20, 1},
                                    {25, 2},
                                    {30, 2},
                                    {35, 3},
                                    {40, 3},
                                    {45, 4}}) {
        CAPTURE(t);
        REQUIRE(c.seek_to_time("t", t).ok());
        CHECK(c.position("t").value() == want);
        const std::vector<OwnedRecord> got = drain(c);
        REQUIRE(got.size() == 4 - want);
        if (!got.empty()) CHECK(got.front().timestamp_ns >= t);
      }
    }
  }

  // Record i has timestamp i; seeking to a time just past the end races the
  // producer. Whatever the interleaving, the landing is at most t: t itself
  // once it is published, the end before that.
  TEST_CASE("seek_to_time_racing_the_producer_never_lands_past_the_first_record_at_or_after_t") {
    for (OverflowPolicy policy : {OverflowPolicy::block, OverflowPolicy::overwrite}) {
      CAPTURE(policy == OverflowPolicy::overwrite);
      Bus bus;
      REQUIRE(bus.create_topic("t", small_ring(64, policy)).ok());
      Producer p = bus.producer("t").value();
      std::atomic<bool> stop{false};
      std::atomic<std::int64_t> next{0}; // records published: release by the producer, acquire below
      std::thread producer([&] {
        // try_append: under block policy the ring fills behind the seeking
        // consumer, which never polls; the seeks go on against a full ring.
        for (std::int64_t i = 0; !stop.load(std::memory_order_relaxed);) { // relaxed: a stop flag only
          const Result<std::uint64_t> r = p.try_append(msg("", "v", i));
          if (r.code() == Errc::would_block) {
            std::this_thread::yield();
            continue;
          }
          if (!r.ok()) break;
          next.store(++i, std::memory_order_release);
        }
      });
      Consumer c = bus.consumer("t").value();
      std::uint64_t past = 0;
      const std::uint64_t seeks = ringbus::stress::scaled(200'000, 20'000);
      for (std::uint64_t i = 0; i < seeks; ++i) {
        const std::int64_t t = next.load(std::memory_order_acquire) + 1;
        if (!c.seek_to_time("t", t).ok()) continue;
        const std::uint64_t at = c.position("t").value();
        // Record t still held now was held during the seek (held ranges only move forward).
        if (at > static_cast<std::uint64_t>(t) && c.seek("t", static_cast<std::uint64_t>(t)).ok()) ++past;
      }
      stop.store(true, std::memory_order_relaxed);
      producer.join();
      CHECK(past == 0);
    }
  }

  TEST_CASE("poll_one_waits_up_to_its_timeout_and_returns_a_record_appended_meanwhile") {
    Bus bus;
    REQUIRE(bus.create_topic("t", waiting(WaitStrategy::backoff)).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    Record record;
    const auto before = std::chrono::steady_clock::now();
    record.offset = 77; // written only when a record comes
    const Status none = c.poll_one(record, std::chrono::milliseconds(2));
    CHECK(none.code() == Errc::timed_out);
    CHECK(record.offset == 77);
    CHECK(c.poll_one(record).code() == Errc::would_block);
    CHECK(std::chrono::steady_clock::now() - before >= std::chrono::milliseconds(2));
    std::thread writer = after(std::chrono::milliseconds(5), [&p] { REQUIRE(p.append(ByteView("late")).ok()); });
    const Status late = c.poll_one(record, std::chrono::seconds(30));
    writer.join();
    REQUIRE_MESSAGE(late.ok(), late.message());
    CHECK(str(record.value) == "late");
    CHECK(record.offset == 0);
    CHECK(record.topic == "t");
  }

  TEST_CASE("poll_one_alternates_between_two_busy_topics") {
    TwoBusyTopics busy(50);
    std::string previous;
    for (int poll = 0; poll < 20; ++poll) {
      const std::optional<OwnedRecord> r = poll_one_owned(busy.consumer);
      REQUIRE(r.has_value());
      CHECK(r->topic != previous);
      previous = r->topic;
    }
    CHECK(busy.consumer.position("a").value() == 10);
    CHECK(busy.consumer.position("b").value() == 10);
  }

  // poll_one reports no gaps: a lapped consumer resumes at the oldest record
  // held, and lost(topic) says how many it lost.
  TEST_CASE("poll_one_of_a_lapped_consumer_resumes_at_the_oldest_held_record_and_lost_counts_the_gap") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(2, OverflowPolicy::overwrite)).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    append_numbered(p, 5 * per_segment); // the ring keeps offsets [192, 320)
    std::vector<OwnedRecord> got;
    while (std::optional<OwnedRecord> r = poll_one_owned(c)) {
      got.push_back(*r);
      CHECK(c.lost("t").value() == 192);
    }
    check_run(got, 192, 128);
    CHECK(c.position("t").value() == 320);
  }

  // A record that leaves 8, 16 or 24 bytes at a segment's end is followed by
  // a pad frame shorter than a frame header. At the ring's end a guard page
  // follows it: poll_one must know it is a pad from its first word, and read
  // nothing of a header there (it used to, a read past the ring).
  TEST_CASE("poll_one_crosses_pad_frames_shorter_than_a_header_at_the_rings_end") {
    for (std::size_t value_bytes = 1; value_bytes <= 64; ++value_bytes) {
      CAPTURE(value_bytes);
      Bus bus;
      REQUIRE(bus.create_topic("t", small_ring(2)).ok());
      auto p = bus.producer("t").value();
      auto c = bus.consumer("t").value();
      const std::uint64_t laps = 3 * 2 * ringbus::test::small_segment_bytes / packed_frame_bytes(value_bytes);
      for (std::uint64_t i = 0; i < laps; ++i) {
        REQUIRE(p.append(value_for(i, value_bytes)).value() == i);
        const std::optional<OwnedRecord> r = poll_one_owned(c);
        REQUIRE(r.has_value());
        REQUIRE(r->offset == i);
        REQUIRE(r->value == value_for(i, value_bytes));
      }
      CHECK_FALSE(poll_one_owned(c).has_value());
    }
  }

  TEST_CASE("poll_one_on_a_closed_consumer_or_bus_or_without_subscriptions_says_why") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    Record record;
    Consumer closed;
    CHECK(closed.poll_one(record).code() == Errc::closed);
    auto bare = bus.consumer(ConsumerOptions{}).value();
    const Status unsubscribed = bare.poll_one(record);
    CHECK(unsubscribed.code() == Errc::not_subscribed);
    CHECK(contains(unsubscribed.message(), "no subscriptions"));
    auto c = bus.consumer("t").value();
    bus.close();
    const Status after = c.poll_one(record);
    CHECK(after.code() == Errc::closed);
    CHECK(contains(after.message(), "bus is closed"));
  }

  TEST_CASE("seek_to_beginning_and_end_move_one_topic_or_all") {
    Bus bus;
    REQUIRE(bus.create_topic("a", small_ring()).ok());
    REQUIRE(bus.create_topic("b", small_ring()).ok());
    auto pa = bus.producer("a").value();
    auto pb = bus.producer("b").value();
    append_numbered(pa, 6);
    append_numbered(pb, 9);
    ConsumerOptions o;
    o.topics = {"a", "b"};
    auto c = bus.consumer(o).value();

    REQUIRE(c.seek_to_end("a").ok());
    CHECK(c.position("a").value() == 6);
    CHECK(c.position("b").value() == 0);
    REQUIRE(c.seek_to_end().ok());
    CHECK(c.position("b").value() == 9);
    CHECK(poll_once(c).empty());

    REQUIRE(c.seek_to_beginning("b").ok());
    CHECK(c.position("a").value() == 6);
    CHECK(c.position("b").value() == 0);
    REQUIRE(c.seek_to_beginning().ok());
    CHECK(c.position("a").value() == 0);
    const std::vector<OwnedRecord> got = drain(c);
    CHECK(count_topic(got, "a") == 6);
    CHECK(count_topic(got, "b") == 9);
  }

  // --- position, lag, lost -------------------------------------------------------------------

  TEST_CASE("position_and_lag_follow_polls_and_appends") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    CHECK(c.position("t").value() == 0);
    CHECK(c.lag("t").value() == 0);
    CHECK(c.lost("t").value() == 0);
    append_numbered(p, 10);
    CHECK(c.position("t").value() == 0);
    CHECK(c.lag("t").value() == 10);
    REQUIRE(poll_once(c, 4).size() == 4);
    CHECK(c.position("t").value() == 4);
    CHECK(c.lag("t").value() == 6);
    drain(c);
    CHECK(c.position("t").value() == 10);
    CHECK(c.lag("t").value() == 0);
    CHECK(c.lost("t").value() == 0); // block topics never lose
  }

  // --- consumers coming and going ----------------------------------------------------------------

  TEST_CASE("consumers_open_and_close_between_appends") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(4)).ok());
    auto p = bus.producer("t").value();
    append_numbered(p, 5);
    auto early = bus.consumer("t", StartPosition::earliest).value();
    append_numbered(p, 5);
    auto late = bus.consumer("t", StartPosition::latest).value();
    append_numbered(p, 5);
    check_run(drain(early), 0, 15);
    check_run(drain(late), 10, 5);
    REQUIRE(early.close().ok());
    auto again = bus.consumer("t").value();
    append_numbered(p, 5);
    check_run(drain(again), 0, 20);
    check_run(drain(late), 15, 5);
    REQUIRE(late.close().ok());
    REQUIRE(again.close().ok());
    append_numbered(p, 5); // no consumers at all: nothing holds the producer
    auto last = bus.consumer("t").value();
    check_run(drain(last), 0, 25);
  }

  TEST_CASE("closed_consumer_no_longer_holds_the_producer_back") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    auto slow = bus.consumer("t").value();
    auto fast = bus.consumer("t").value();
    append_numbered(p, 2 * per_segment);
    drain(fast);
    CHECK(p.try_append("x").code() == Errc::would_block); // slow has read nothing
    REQUIRE(slow.close().ok());
    CHECK(p.try_append(value_for(128, even_value_bytes)).value() == 128);
    check_run(drain(fast), 128, 1);
  }

  TEST_CASE("unsubscribed_consumer_no_longer_holds_the_producer_back") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    auto slow = bus.consumer("t").value();
    append_numbered(p, 2 * per_segment);
    CHECK(p.try_append("x").code() == Errc::would_block);
    REQUIRE(slow.unsubscribe("t").ok());
    CHECK(p.try_append("x").value() == 128);
  }

  TEST_CASE("destroyed_consumer_no_longer_holds_the_producer_back") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    {
      auto slow = bus.consumer("t").value();
      append_numbered(p, 2 * per_segment);
      CHECK(p.try_append("x").code() == Errc::would_block);
    }
    CHECK(p.try_append("x").value() == 128);
  }

  TEST_CASE("moved_consumer_keeps_its_position_and_its_hold") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    append_numbered(p, 2 * per_segment);
    REQUIRE(poll_once(c, 10).size() == 10);
    Consumer moved(std::move(c));
    CHECK_FALSE(c.is_open()); // NOLINT(bugprone-use-after-move): the moved-from state is the point
    CHECK(c.poll().code() == Errc::closed);
    CHECK(moved.is_open());
    CHECK(moved.position("t").value() == 10);
    CHECK(p.try_append("x").code() == Errc::would_block); // still held
    Consumer assigned;
    assigned = std::move(moved);
    check_run(drain(assigned), 10, 2 * per_segment - 10);
  }

  TEST_CASE("move_assigning_over_an_open_consumer_closes_it") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    REQUIRE(bus.create_topic("u", small_ring()).ok());
    auto p = bus.producer("t").value();
    auto holder = bus.consumer("t").value();
    append_numbered(p, 2 * per_segment);
    CHECK(p.try_append("x").code() == Errc::would_block);
    holder = bus.consumer("u").value(); // the consumer of t is closed
    CHECK(p.try_append("x").value() == 128);
  }

  TEST_CASE("closed_or_default_consumer_says_closed_to_every_call") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    Consumer never_opened;
    auto closed = bus.consumer("t").value();
    REQUIRE(closed.close().ok());
    for (Consumer* c : {&never_opened, &closed}) {
      CHECK_FALSE(c->is_open());
      CHECK(c->subscription_count() == 0);
      CHECK(c->poll().code() == Errc::closed);
      CHECK(c->subscribe("t").code() == Errc::closed);
      CHECK(c->unsubscribe("t").code() == Errc::closed);
      CHECK(c->seek("t", 0).code() == Errc::closed);
      CHECK(c->seek_to_beginning("t").code() == Errc::closed);
      CHECK(c->seek_to_end("t").code() == Errc::closed);
      CHECK(c->seek_to_beginning().code() == Errc::closed);
      CHECK(c->seek_to_end().code() == Errc::closed);
      CHECK(c->position("t").code() == Errc::closed);
      CHECK(c->lag("t").code() == Errc::closed);
      CHECK(c->lost("t").code() == Errc::closed);
      auto again = c->close();
      CHECK(again.code() == Errc::closed);
      CHECK(contains(again.message(), "closed"));
    }
  }

  // --- overwrite policy ---------------------------------------------------------------------

  TEST_CASE("lapped_consumer_is_told_exactly_how_many_records_it_lost") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(2, OverflowPolicy::overwrite)).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    // Five segments of 64 records into a two-segment ring: the ring keeps
    // segments 3 and 4, so offsets [0, 192) are gone before c reads anything.
    append_numbered(p, 5 * per_segment);
    CHECK(bus.describe("t")->oldest_offset == 192);
    CHECK(c.lag("t").value() == 320);

    auto first = c.poll();
    REQUIRE(first.ok());
    REQUIRE(first->gaps().size() == 1);
    const Gap gap = first->gaps()[0];
    CHECK(gap.topic == "t");
    CHECK(gap.first_lost == 0);
    CHECK(gap.count == 192);
    CHECK(first->lost() == 192);
    CHECK(c.lost("t").value() == 192);
    std::vector<OwnedRecord> all = ringbus::test::own_all(*first); // copied: the next poll ends the views
    check_run(all, 192, first->size());                            // resumes at the oldest held
    CHECK_FALSE(all.empty());

    const std::vector<OwnedRecord> rest = drain(c);
    CHECK(c.lost("t").value() == 192);
    all.insert(all.end(), rest.begin(), rest.end());
    check_run(all, 192, 128);
    CHECK(c.position("t").value() == 320);
    CHECK(c.lag("t").value() == 0);
  }

  TEST_CASE("lapped_consumer_keeps_the_records_it_was_given_and_loses_only_the_rest") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(2, OverflowPolicy::overwrite)).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    append_numbered(p, per_segment);
    check_run(poll_once(c, 10), 0, 10);
    // Five more segments: the ring now keeps segments 4 and 5, offsets [256, 384).
    append_numbered(p, 5 * per_segment);
    CHECK(bus.describe("t")->oldest_offset == 256);

    std::vector<OwnedRecord> got;
    std::uint64_t lost = 0;
    std::uint64_t next = 10;
    for (;;) {
      auto r = c.poll();
      REQUIRE(r.ok());
      if (r->empty()) break;
      for (const Gap& g : r->gaps()) {
        CHECK(g.first_lost == next); // the gap starts exactly where delivery stopped
        next += g.count;
        lost += g.count;
      }
      for (const Record& rec : *r) {
        CHECK(rec.offset == next);
        CHECK(str(rec.value) == value_for(rec.offset, even_value_bytes));
        ++next;
      }
    }
    // Offsets 10..63 had been copied out by the first poll; 64..255 are lost.
    CHECK(lost == 256 - 64);
    CHECK(c.lost("t").value() == 256 - 64);
    CHECK(next == 384);
  }

  TEST_CASE("overwrite_views_survive_the_producer_lapping_the_ring") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(2, OverflowPolicy::overwrite)).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    append_numbered(p, per_segment);
    auto held = c.poll();
    REQUIRE(held.ok());
    REQUIRE(held->size() == per_segment);
    append_numbered(p, 10 * per_segment); // five laps over the bytes the views came from
    check_run(ringbus::test::own_all(*held), 0, per_segment);
  }

  TEST_CASE("consumer_that_keeps_up_with_an_overwrite_topic_loses_nothing") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(2, OverflowPolicy::overwrite)).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    std::vector<OwnedRecord> all;
    for (int round = 0; round < 40; ++round) {
      append_numbered(p, 50);
      const std::vector<OwnedRecord> got = drain(c);
      all.insert(all.end(), got.begin(), got.end());
    }
    check_run(all, 0, 2000);
    CHECK(c.lost("t").value() == 0);
  }

  // An overwrite consumer copies a segment's published frames at a time; a
  // frame that did not fit the rest of a segment leaves a pad frame alone
  // there. The poll that reaches it reads on into the next segment: a poll
  // (and a poll_one) with no timeout never comes back empty while a record
  // is published. 1,500-byte records: two per 4 KiB segment, then 1 KiB of
  // padding; over three laps of the ring.
  TEST_CASE("an_overwrite_consumer_reads_past_a_segments_padding_in_the_same_poll") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(2, OverflowPolicy::overwrite)).ok());
    Producer p = bus.producer("t").value();
    Consumer c = bus.consumer("t").value();
    for (std::uint64_t i = 0; i < 12; ++i) {
      CAPTURE(i);
      const std::string value(1500, static_cast<char>('a' + i));
      REQUIRE(p.append(value).value() == i);
      if (i % 4 != 2) { // a pad before every even one: poll and poll_one both pass pads
        const std::vector<OwnedRecord> got = poll_once(c);
        REQUIRE(got.size() == 1);
        CHECK(got[0].offset == i);
        CHECK(got[0].value == value);
      } else {
        const std::optional<OwnedRecord> got = poll_one_owned(c);
        REQUIRE(got.has_value());
        CHECK(got->offset == i);
        CHECK(got->value == value);
      }
    }
    CHECK(c.lost("t").value() == 0);
  }

  TEST_CASE("lapped_consumer_never_gets_a_corrupted_record") {
    Bus bus;
    TopicOptions o = small_ring(4, OverflowPolicy::overwrite);
    o.timestamps = ringbus::TimestampSource::none;
    REQUIRE(bus.create_topic("t", o).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    const std::array<std::size_t, 9> sizes{0, 3, 8, 61, 200, 999, 1500, 2500, 4000};
    std::uint64_t next = 0;
    std::uint64_t delivered = 0;
    std::uint64_t lost = 0;
    const auto check_poll = [&](std::size_t max) {
      auto r = c.poll(max);
      REQUIRE(r.ok());
      for (const Gap& g : r->gaps()) {
        CHECK(g.first_lost == next);
        CHECK(g.count > 0);
        next += g.count;
        lost += g.count;
      }
      for (const Record& rec : *r) {
        REQUIRE(rec.offset == next);
        const std::uint64_t i = rec.offset;
        CHECK(str(rec.key) == (i % 2 == 0 ? ringbus::test::key_for(i) : std::string()));
        CHECK(str(rec.value) == value_for(i, sizes[i % sizes.size()]));
        CHECK(rec.timestamp_ns == static_cast<std::int64_t>(i));
        ++next;
        ++delivered;
      }
    };
    for (std::uint64_t i = 0; i < 3000; ++i) {
      const std::string key = i % 2 == 0 ? ringbus::test::key_for(i) : std::string();
      const std::string value = value_for(i, sizes[i % sizes.size()]);
      auto r = p.try_append(msg(key, value, static_cast<std::int64_t>(i)));
      REQUIRE_MESSAGE(r.ok(), r.message());
      if (i % 37 == 0) check_poll(1 + i % 11); // a slow, irregular reader
    }
    for (int i = 0; i < 20; ++i) check_poll(SIZE_MAX);
    CHECK(next == 3000);
    CHECK(delivered + lost == 3000);
    CHECK(lost > 0); // the reader really was lapped
    CHECK(c.lost("t").value() == lost);
  }

  TEST_CASE("seek_on_an_overwrite_topic_refuses_overwritten_offsets_and_reads_held_ones") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(2, OverflowPolicy::overwrite)).ok());
    auto p = bus.producer("t").value();
    auto c = bus.consumer("t").value();
    append_numbered(p, 5 * per_segment);
    auto s = c.seek("t", 100);
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "[192, 320)"));
    REQUIRE(c.seek("t", 200).ok());
    CHECK(c.position("t").value() == 200);
    check_run(drain(c), 200, 120);
    CHECK(c.lost("t").value() == 0); // a seek is not a loss
    REQUIRE(c.seek_to_beginning("t").ok());
    CHECK(c.position("t").value() == 192);
    check_run(drain(c), 192, 128);
  }

  // --- wait strategies ---------------------------------------------------------------------

  TEST_CASE("poll_with_a_timeout_on_an_empty_topic_waits_at_least_the_timeout") {
    for (WaitStrategy wait : every_strategy) {
      CAPTURE(ringbus::to_string(wait));
      Bus bus;
      REQUIRE(bus.create_topic("t", waiting(wait)).ok());
      auto c = bus.consumer("t").value(); // takes the topic's strategy
      const auto timeout = std::chrono::milliseconds(20);
      const auto start = std::chrono::steady_clock::now();
      auto r = c.poll(SIZE_MAX, timeout);
      const auto elapsed = std::chrono::steady_clock::now() - start;
      REQUIRE(r.ok());
      CHECK(r->empty());
      CHECK(elapsed >= timeout);
    }
  }

  TEST_CASE("consumer_overriding_the_wait_strategy_still_waits_at_least_the_timeout") {
    for (WaitStrategy wait : {WaitStrategy::busy_spin, WaitStrategy::yield, WaitStrategy::backoff}) {
      CAPTURE(ringbus::to_string(wait));
      Bus bus;
      REQUIRE(bus.create_topic("t", waiting(WaitStrategy::blocking)).ok());
      ConsumerOptions o;
      o.topics = {"t"};
      o.override_wait = true;
      o.wait = wait;
      auto c = bus.consumer(o).value();
      const auto timeout = std::chrono::milliseconds(10);
      const auto start = std::chrono::steady_clock::now();
      auto r = c.poll(SIZE_MAX, timeout);
      REQUIRE(r.ok());
      CHECK(r->empty());
      CHECK(std::chrono::steady_clock::now() - start >= timeout);
    }
  }

  TEST_CASE("poll_with_a_timeout_returns_records_that_are_already_there") {
    for (WaitStrategy wait : every_strategy) {
      CAPTURE(ringbus::to_string(wait));
      Bus bus;
      REQUIRE(bus.create_topic("t", waiting(wait)).ok());
      auto p = bus.producer("t").value();
      auto c = bus.consumer("t").value();
      append_numbered(p, 3);
      auto r = c.poll(SIZE_MAX, std::chrono::seconds(30)); // returns at once: there are records
      REQUIRE(r.ok());
      check_run(ringbus::test::own_all(*r), 0, 3);
    }
  }

  // One subscription, nothing there, a timeout: poll and poll_one spin on the
  // next publication word first (busy_spin for the whole timeout), then wait
  // the strategy's way. Each of them, under each strategy, must still time out,
  // hand over a record that comes during the wait, and see the bus close.
  TEST_CASE("poll_and_poll_one_under_every_strategy_time_out_take_a_record_that_comes_and_see_the_bus_close") {
    for (WaitStrategy wait : every_strategy) {
      CAPTURE(ringbus::to_string(wait));
      Bus bus;
      REQUIRE(bus.create_topic("t", waiting(wait)).ok());
      auto p = bus.producer("t").value();
      auto c = bus.consumer("t").value();
      Record record;
      record.offset = 77; // written only when a record comes
      const auto timeout = std::chrono::milliseconds(5);
      auto start = std::chrono::steady_clock::now();
      CHECK(c.poll_one(record, timeout).code() == Errc::timed_out);
      CHECK(std::chrono::steady_clock::now() - start >= timeout);
      CHECK(record.offset == 77);
      start = std::chrono::steady_clock::now();
      Result<Records> none = c.poll(SIZE_MAX, timeout);
      REQUIRE(none.ok());
      CHECK(none->empty());
      CHECK(std::chrono::steady_clock::now() - start >= timeout);

      for (int round = 0; round < 2; ++round) {
        std::thread writer = after(std::chrono::milliseconds(5),
                                   [&p, round] { REQUIRE(p.append(ByteView(round == 0 ? "first" : "second")).ok()); });
        if (round == 0) {
          const Status got = c.poll_one(record, std::chrono::seconds(30));
          writer.join();
          REQUIRE_MESSAGE(got.ok(), got.message());
          CHECK(record.offset == 0);
          CHECK(str(record.value) == "first");
        } else {
          Result<Records> got = c.poll(SIZE_MAX, std::chrono::seconds(30));
          writer.join();
          REQUIRE_MESSAGE(got.ok(), got.message());
          const std::vector<OwnedRecord> owned = ringbus::test::own_all(*got);
          REQUIRE(owned.size() == 1);
          CHECK(owned[0].offset == 1);
          CHECK(owned[0].value == "second");
        }
      }

      // The bus closing while each of them waits (a bus each).
      std::thread closer = after(std::chrono::milliseconds(5), [&bus] { bus.close(); });
      const Status one = c.poll_one(record, std::chrono::seconds(30));
      closer.join();
      CHECK(one.code() == Errc::closed);
      CHECK(record.offset == 0);
      Bus other;
      REQUIRE(other.create_topic("t", waiting(wait)).ok());
      auto waiting_poll = other.consumer("t").value();
      std::thread other_closer = after(std::chrono::milliseconds(5), [&other] { other.close(); });
      const Result<Records> polled = waiting_poll.poll(SIZE_MAX, std::chrono::seconds(30));
      other_closer.join();
      CHECK(polled.code() == Errc::closed);
    }
  }

  // nanoseconds::max() means wait: the deadline saturates instead of
  // overflowing into the past (which timed out at once).
  TEST_CASE("poll_and_poll_one_with_the_longest_timeout_wait_for_the_record") {
    for (WaitStrategy wait : every_strategy) {
      CAPTURE(ringbus::to_string(wait));
      Bus bus;
      REQUIRE(bus.create_topic("t", waiting(wait)).ok());
      auto p = bus.producer("t").value();
      auto c = bus.consumer("t").value();
      std::thread writer = after(std::chrono::milliseconds(20), [&p] {
        REQUIRE(p.append(ByteView("a")).ok());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        REQUIRE(p.append(ByteView("b")).ok());
      });
      Record record;
      const Status one = c.poll_one(record, std::chrono::nanoseconds::max());
      CHECK_MESSAGE(one.ok(), one.message());
      CHECK(str(record.value) == "a");
      Result<Records> two = c.poll(SIZE_MAX, std::chrono::nanoseconds::max());
      writer.join();
      REQUIRE_MESSAGE(two.ok(), two.message());
      const std::vector<OwnedRecord> owned = ringbus::test::own_all(*two);
      REQUIRE(owned.size() == 1);
      CHECK(owned[0].value == "b");

      // Two subscriptions: the general wait alone.
      REQUIRE(bus.create_topic("u", waiting(wait)).ok());
      auto pu = bus.producer("u").value();
      ConsumerOptions both;
      both.topics = {"t", "u"};
      both.start = StartPosition::latest;
      auto c2 = bus.consumer(both).value();
      std::thread later = after(std::chrono::milliseconds(20), [&pu] { REQUIRE(pu.append(ByteView("u")).ok()); });
      Result<Records> three = c2.poll(SIZE_MAX, std::chrono::nanoseconds::max());
      later.join();
      REQUIRE_MESSAGE(three.ok(), three.message());
      const std::vector<OwnedRecord> from_u = ringbus::test::own_all(*three);
      REQUIRE(from_u.size() == 1);
      CHECK(from_u[0].topic == "u");
    }
  }

  TEST_CASE("blocking_consumer_waits_on_several_blocking_topics") {
    Bus bus;
    REQUIRE(bus.create_topic("a", waiting(WaitStrategy::blocking)).ok());
    REQUIRE(bus.create_topic("b", waiting(WaitStrategy::blocking)).ok());
    ConsumerOptions o;
    o.topics = {"a", "b"};
    auto c = bus.consumer(o).value();
    const auto timeout = std::chrono::milliseconds(10);
    const auto start = std::chrono::steady_clock::now();
    auto r = c.poll(SIZE_MAX, timeout);
    REQUIRE(r.ok());
    CHECK(r->empty());
    CHECK(std::chrono::steady_clock::now() - start >= timeout);
    auto pb = bus.producer("b").value();
    append_numbered(pb, 2);
    auto got = c.poll(SIZE_MAX, std::chrono::seconds(30));
    REQUIRE(got.ok());
    CHECK(got->size() == 2);
  }

  TEST_CASE("blocking_consumer_on_a_non_blocking_topic_is_refused_with_a_clear_message") {
    Bus bus;
    REQUIRE(bus.create_topic("t", waiting(WaitStrategy::backoff)).ok());
    ConsumerOptions o;
    o.topics = {"t"};
    o.override_wait = true;
    o.wait = WaitStrategy::blocking;
    auto c = bus.consumer(o);
    CHECK(c.code() == Errc::invalid_argument);
    CHECK(contains(c.message(), "blocking"));
    CHECK(contains(c.message(), "'t'"));
    CHECK(contains(c.message(), "TopicOptions::wait"));
    CHECK(contains(c.message(), "backoff"));

    // A consumer that waits by blocking (it took the strategy of its first
    // topic) cannot add a topic whose producer never rings.
    REQUIRE(bus.create_topic("b", waiting(WaitStrategy::blocking)).ok());
    auto blocking = bus.consumer("b").value();
    auto s = blocking.subscribe("t");
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "'t'"));
    CHECK(blocking.subscription_count() == 1);
  }

} // TEST_SUITE

// --- pipelines (ConsumerOptions::name and ::after) ----------------------------------------

namespace {

ConsumerOptions stage(std::string name, std::vector<std::string> after, std::vector<std::string> topics = {"t"}) {
  ConsumerOptions o;
  o.topics = std::move(topics);
  o.name = std::move(name);
  o.after = std::move(after);
  return o;
}

std::vector<std::uint64_t> offsets(const std::vector<OwnedRecord>& got) {
  std::vector<std::uint64_t> out;
  for (const OwnedRecord& r : got) out.push_back(r.offset);
  return out;
}

std::vector<std::uint64_t> offsets_from(std::uint64_t first, std::uint64_t end) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t o = first; o < end; ++o) out.push_back(o);
  return out;
}

} // namespace

TEST_SUITE("pipeline") {
  TEST_CASE("consumer_names_are_unique_among_open_consumers_and_valid") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    Consumer journal = bus.consumer(stage("journal", {})).value();
    auto taken = bus.consumer(stage("journal", {}));
    CHECK(taken.code() == Errc::invalid_argument);
    CHECK(contains(taken.message(), "'journal'"));
    CHECK(contains(taken.message(), "taken"));
    auto bad = bus.consumer(stage("a/b", {}));
    CHECK(bad.code() == Errc::invalid_argument);
    CHECK(contains(bad.message(), "consumer name 'a/b'"));
    journal.close().check();
    CHECK(bus.consumer(stage("journal", {})).ok()); // free again once closed
  }

  TEST_CASE("running_after_a_consumer_that_is_not_open_is_refused_naming_it") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto missing = bus.consumer(stage("business", {"journal"}));
    CHECK(missing.code() == Errc::invalid_argument);
    CHECK(contains(missing.message(), "'journal'"));
    CHECK(contains(missing.message(), "not an open consumer"));
    auto itself = bus.consumer(stage("loop", {"loop"}));
    CHECK(itself.code() == Errc::invalid_argument);
    CHECK(contains(itself.message(), "'loop'"));
    CHECK(bus.consumer(stage("loop", {})).ok()); // the refused one took no name
  }

  TEST_CASE("downstream_sees_only_records_its_upstream_has_passed") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(4)).ok());
    Producer p = bus.producer("t").value();
    Consumer journal = bus.consumer(stage("journal", {})).value();
    Consumer business = bus.consumer(stage("business", {"journal"})).value();
    append_numbered(p, 10);             // one frame per record
    CHECK(poll_once(business).empty()); // journal has passed nothing
    CHECK(offsets(poll_once(journal, 4)) == offsets_from(0, 4));
    CHECK(poll_once(business).empty());                          // handed to journal, not passed yet
    CHECK(offsets(poll_once(journal, 3)) == offsets_from(4, 7)); // passes 0..3
    const std::vector<OwnedRecord> first = poll_once(business);
    CHECK(offsets(first) == offsets_from(0, 4));
    for (const OwnedRecord& r : first) CHECK(r.value == value_for(r.offset, even_value_bytes));
    CHECK(drain(journal).size() == 3); // the last, empty poll passes everything
    CHECK(offsets(drain(business)) == offsets_from(4, 10));
    CHECK(business.lag("t").value() == 0);
  }

  TEST_CASE("a_consumer_after_several_sees_what_all_of_them_passed") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(4)).ok());
    Producer p = bus.producer("t").value();
    Consumer journal = bus.consumer(stage("journal", {})).value();
    Consumer replicate = bus.consumer(stage("replicate", {})).value();
    Consumer business = bus.consumer(stage("business", {"journal", "replicate"})).value();
    append_numbered(p, 10);
    (void)poll_once(journal, 8);
    (void)poll_once(journal, 0); // passes 0..7
    (void)poll_once(replicate, 3);
    (void)poll_once(replicate, 0); // passes 0..2
    CHECK(offsets(drain(business)) == offsets_from(0, 3));
    (void)drain(replicate);
    CHECK(offsets(drain(business)) == offsets_from(3, 8));
  }

  TEST_CASE("a_batch_frame_is_passed_only_when_its_upstream_is_past_all_of_it") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(4)).ok());
    Producer p = bus.producer("t").value();
    Consumer journal = bus.consumer(stage("journal", {})).value();
    Consumer business = bus.consumer(stage("business", {"journal"})).value();
    std::vector<std::uint64_t> values(20, 5);
    REQUIRE(p.append_values(std::span<const std::uint64_t>(values)).ok()); // one frame
    CHECK(poll_once(journal, 15).size() == 15);
    CHECK(poll_once(journal, 0).empty()); // 0..14 handed and moved on from, but inside the frame
    CHECK(poll_once(business).empty());
    CHECK(poll_once(journal).size() == 5);
    CHECK(poll_once(journal).empty());
    CHECK(poll_once(business).size() == 20);
  }

  TEST_CASE("a_closed_upstream_leaves_its_gate_where_it_last_was") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(4)).ok());
    Producer p = bus.producer("t").value();
    Consumer journal = bus.consumer(stage("journal", {})).value();
    Consumer business = bus.consumer(stage("business", {"journal"})).value();
    append_numbered(p, 10);
    (void)poll_once(journal, 5);
    (void)poll_once(journal, 0); // passes 0..4
    journal.close().check();
    append_numbered(p, 10);
    CHECK(offsets(drain(business)) == offsets_from(0, 5));
    // A new consumer under the old name is not the old gate: business stays put.
    Consumer again = bus.consumer(stage("journal", {})).value();
    (void)drain(again);
    CHECK(drain(business).empty());
    CHECK(business.lag("t").value() == 15);
  }

  TEST_CASE("an_upstream_that_does_not_read_a_topic_does_not_gate_it") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(4)).ok());
    REQUIRE(bus.create_topic("u", small_ring(4)).ok());
    Producer pt = bus.producer("t").value();
    Producer pu = bus.producer("u").value();
    Consumer journal = bus.consumer(stage("journal", {}, {"t"})).value();
    Consumer business = bus.consumer(stage("business", {"journal"}, {"t", "u"})).value();
    append_numbered(pt, 3);
    append_numbered(pu, 4);
    const std::vector<OwnedRecord> got = drain(business);
    CHECK(count_topic(got, "u") == 4);
    CHECK(count_topic(got, "t") == 0);
    (void)drain(journal);
    CHECK(count_topic(drain(business), "t") == 3);
  }

  TEST_CASE("a_gated_blocking_consumer_wakes_when_its_upstream_passes") {
    Bus bus;
    REQUIRE(bus.create_topic("t", waiting(WaitStrategy::blocking)).ok());
    Producer p = bus.producer("t").value();
    Consumer journal = bus.consumer(stage("journal", {})).value();
    Consumer business = bus.consumer(stage("business", {"journal"})).value();
    append_numbered(p, 5);
    std::thread upstream([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      (void)drain(journal); // passes all five; rings no doorbell
    });
    std::size_t got = 0;
    for (int i = 0; i < 200 && got < 5; ++i) {
      auto r = business.poll(SIZE_MAX, std::chrono::milliseconds(20));
      REQUIRE(r.ok());
      got += r->size();
    }
    upstream.join();
    CHECK(got == 5);
  }
} // TEST_SUITE

// A 3-stage pipeline (journal -> replicate -> business), each stage on its
// own thread. After handling a batch, stage k stores in passed[k] the offset
// below which it has handled everything (release), then polls again (which
// passes the records on). On every record, stage k checks that passed[k-1]
// is already past it (acquire): the gate let nothing through early.
TEST_CASE("stress: a pipeline stage never sees a record its upstream has not passed") {
  const std::uint64_t total = ringbus::stress::scaled(2'000'000, 50'000);
  Bus bus;
  TopicOptions o;
  o.segment_bytes = std::size_t{16} << 10;
  o.segment_count = 4;
  o.wait = WaitStrategy::yield;
  REQUIRE(bus.create_topic("t", o).ok());
  Producer p = bus.producer("t").value();
  constexpr std::size_t stages = 3;
  const std::array<std::string, stages> names = {"journal", "replicate", "business"};
  std::array<Consumer, stages> consumers;
  for (std::size_t k = 0; k < stages; ++k) {
    consumers[k] =
        bus.consumer(stage(names[k], k == 0 ? std::vector<std::string>{} : std::vector<std::string>{names[k - 1]}))
            .value();
  }
  struct alignas(128) Passed {
    std::atomic<std::uint64_t> below{0};
  };
  std::array<Passed, stages> passed;
  std::array<std::string, stages> errors;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (std::size_t k = 0; k < stages; ++k) {
    threads.emplace_back([&, k] {
      ringbus::stress::Rng rng(ringbus::stress::test_seed() + k);
      std::uint64_t expected = 0;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
      while (expected < total && !stop.load(std::memory_order_relaxed)) {
        if (std::chrono::steady_clock::now() > deadline) {
          errors[k] = "timed out at offset " + std::to_string(expected);
          break;
        }
        auto r = consumers[k].poll(rng.one_in(4) ? 1 + rng.below(5) : 1 + rng.below(500), std::chrono::milliseconds(2));
        if (!r.ok()) {
          errors[k] = std::string(r.message());
          break;
        }
        for (const Record& rec : *r) {
          // (every record) the upstream already passed it: pairs with its release below
          if (k > 0 && passed[k - 1].below.load(std::memory_order_acquire) <= rec.offset) {
            errors[k] = "offset " + std::to_string(rec.offset) + " seen before stage " + std::to_string(k - 1) +
                        " passed it (it had passed below " +
                        std::to_string(passed[k - 1].below.load(std::memory_order_relaxed)) + ")";
            break;
          }
          std::uint64_t got_value = 0;
          if (rec.offset != expected || rec.value.size() != 8 ||
              (std::memcpy(&got_value, rec.value.data(), 8), got_value != rec.offset * 3 + 1)) {
            errors[k] = "offset " + std::to_string(rec.offset) + " where " + std::to_string(expected) +
                        " was next, or its value is wrong";
            break;
          }
          ++expected;
        }
        if (!errors[k].empty()) break;
        passed[k].below.store(expected, std::memory_order_release); // handled: the next poll passes it on
        if (rng.one_in(16)) std::this_thread::yield();
      }
      if (!errors[k].empty()) stop.store(true);
      (void)consumers[k].poll(0);   // passes the last batch on
      consumers[k].close().check(); // never holds the producer after the end
    });
  }
  std::vector<std::uint64_t> batch;
  for (std::uint64_t next = 0; next < total && !stop.load();) {
    const std::uint64_t n = std::min<std::uint64_t>(total - next, 1 + next % 37);
    batch.clear();
    for (std::uint64_t i = 0; i < n; ++i) batch.push_back((next + i) * 3 + 1);
    auto r =
        n % 5 == 0 ? p.append(ringbus::bytes_of(batch[0])) : p.append_values(std::span<const std::uint64_t>(batch));
    if (!r.ok()) break;
    next += n % 5 == 0 ? 1 : n;
  }
  for (std::thread& t : threads) t.join();
  for (std::size_t k = 0; k < stages; ++k) {
    INFO("stage ", names[k]);
    CHECK(errors[k].empty());
    CHECK(passed[k].below.load() == total);
  }
}
