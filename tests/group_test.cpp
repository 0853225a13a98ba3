// GroupMember: competing consumers. Each record goes to exactly one member;
// acknowledgement by the next poll (or ack()); a member that leaves without
// acknowledging hands its records to another; the group holds the producer
// at its lowest unacknowledged record; groups and fan-out consumers coexist.
// Ends with the stress test: three member threads, one killed mid-stream.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ringbus/detail/memory.hpp"
#include "ringbus/ringbus.hpp"
#include "stress_support.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using ringbus::Bus;
using ringbus::Consumer;
using ringbus::Errc;
using ringbus::GroupMember;
using ringbus::GroupOptions;
using ringbus::OverflowPolicy;
using ringbus::Producer;
using ringbus::Record;
using ringbus::Records;
using ringbus::Result;
using ringbus::StartPosition;
using ringbus::TopicOptions;
using ringbus::WaitStrategy;
using ringbus::test::append_numbered;
using ringbus::test::contains;
using ringbus::test::even_value_bytes;
using ringbus::test::own_all;
using ringbus::test::OwnedRecord;
using ringbus::test::records_per_small_segment;
using ringbus::test::small_ring;
using ringbus::test::value_for;

namespace {

std::vector<OwnedRecord> poll_member(GroupMember& m, std::size_t max_records = SIZE_MAX) {
  Result<Records> r = m.poll(max_records);
  REQUIRE_MESSAGE(r.ok(), r.message());
  return own_all(*r);
}

void check_numbered(const std::vector<OwnedRecord>& got, std::size_t value_bytes = even_value_bytes) {
  for (const OwnedRecord& r : got) {
    CAPTURE(r.offset);
    CHECK(r.value == value_for(r.offset, value_bytes));
  }
}

std::vector<std::uint64_t> offsets_of(const std::vector<OwnedRecord>& got) {
  std::vector<std::uint64_t> out;
  for (const OwnedRecord& r : got) out.push_back(r.offset);
  return out;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t end) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t o = first; o < end; ++o) out.push_back(o);
  return out;
}

// One small topic "t" (4 x 4 KiB, 64 records per segment) with its producer.
struct GroupTopic {
  explicit GroupTopic(std::size_t segments = 4, bool line_aligned_appends = false) {
    TopicOptions options = small_ring(segments);
    options.line_aligned_appends = line_aligned_appends;
    REQUIRE(bus.create_topic("t", options).ok());
    producer = bus.producer("t").value();
  }
  Bus bus;
  Producer producer;
};

// 100 records appended one by one (a frame each), polled 7 at most at a time
// by two members in turn: each record reaches exactly one, intact.
void share_100_between_two_members(GroupTopic& t, std::size_t value_bytes) {
  append_numbered(t.producer, 100, value_bytes);
  GroupMember a = t.bus.group_member("g", "t").value();
  GroupMember b = t.bus.group_member("g", "t").value();
  std::vector<std::uint64_t> all;
  for (int round = 0; round < 20; ++round) {
    for (GroupMember* m : {&a, &b}) {
      const std::vector<OwnedRecord> got = poll_member(*m, 7);
      CHECK(got.size() <= 7);
      check_numbered(got, value_bytes);
      for (const OwnedRecord& r : got) all.push_back(r.offset);
    }
  }
  std::sort(all.begin(), all.end());
  CHECK(all == range(0, 100));
}

} // namespace

TEST_SUITE("group") {
  TEST_CASE("members_share_the_records_each_record_going_to_exactly_one") {
    GroupTopic t;
    share_100_between_two_members(t, even_value_bytes);
  }

  TEST_CASE("members_share_line_aligned_appends_each_record_going_to_exactly_one") {
    GroupTopic t(4, true);
    share_100_between_two_members(t, 8); // 40-byte frames, each padded to 64
  }

  TEST_CASE("a_member_claims_whole_frames_and_delivers_them_over_several_polls") {
    GroupTopic t;
    std::vector<std::uint64_t> values(40);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = 1000 + i;
    REQUIRE(t.producer.append_values(std::span<const std::uint64_t>(values)).ok()); // one frame of 40
    GroupMember a = t.bus.group_member("g", "t").value();
    GroupMember b = t.bus.group_member("g", "t").value();
    CHECK(offsets_of(poll_member(a, 10)) == range(0, 10)); // a owns the whole frame now
    CHECK(poll_member(b).empty());                         // b never decodes it
    CHECK(offsets_of(poll_member(a, 25)) == range(10, 35));
    const std::vector<OwnedRecord> last = poll_member(a);
    REQUIRE(offsets_of(last) == range(35, 40));
    CHECK(last.back().value.size() == 8);
  }

  TEST_CASE("max_claim_records_limits_what_one_member_takes_at_once") {
    GroupTopic t;
    append_numbered(t.producer, 30);
    GroupOptions o;
    o.max_claim_records = 4;
    GroupMember a = t.bus.group_member("g", "t", o).value();
    GroupMember b = t.bus.group_member("g", "t", o).value();
    CHECK(offsets_of(poll_member(a)) == range(0, 4));
    CHECK(offsets_of(poll_member(b)) == range(4, 8));
    CHECK(offsets_of(poll_member(a)) == range(8, 12));
  }

  // nanoseconds::max() means wait: the deadline saturates instead of
  // overflowing into the past (which returned at once, empty).
  TEST_CASE("a_member_poll_with_the_longest_timeout_waits_for_the_record") {
    GroupTopic t;
    GroupMember m = t.bus.group_member("g", "t").value();
    std::thread writer([&t] {
      std::this_thread::sleep_for(20ms);
      REQUIRE(t.producer.append(ringbus::ByteView("late")).ok());
    });
    Result<Records> r = m.poll(SIZE_MAX, std::chrono::nanoseconds::max());
    writer.join();
    REQUIRE_MESSAGE(r.ok(), r.message());
    const std::vector<OwnedRecord> got = own_all(*r);
    REQUIRE(got.size() == 1);
    CHECK(got[0].value == "late");
  }

  TEST_CASE("a_poll_acknowledges_the_previous_one_and_the_group_position_follows") {
    GroupTopic t;
    append_numbered(t.producer, 20);
    GroupMember a = t.bus.group_member("g", "t").value();
    GroupMember b = t.bus.group_member("g", "t").value();
    CHECK(a.position().value() == 0);
    CHECK(a.lag().value() == 20);
    CHECK(poll_member(a, 5).size() == 5); // 0..4, not acknowledged yet
    CHECK(poll_member(b, 5).size() == 5); // 5..9
    CHECK(a.position().value() == 0);
    CHECK(b.position().value() == 0);
    REQUIRE(b.ack().ok()); // 5..9 done, but 0..4 still held by a
    CHECK(a.position().value() == 0);
    REQUIRE(a.ack().ok());
    CHECK(a.position().value() == 10);
    CHECK(b.position().value() == 10);
    CHECK(b.lag().value() == 10);
    CHECK(poll_member(a, 100).size() == 10); // 10..19
    CHECK(b.position().value() == 10);
    CHECK(poll_member(a).empty()); // acknowledges 10..19
    CHECK(b.position().value() == 20);
    CHECK(b.lag().value() == 0);
  }

  TEST_CASE("member_that_leaves_mid_batch_hands_its_records_to_another") {
    GroupTopic t;
    append_numbered(t.producer, 30);
    GroupMember a = t.bus.group_member("g", "t").value();
    GroupMember b = t.bus.group_member("g", "t").value();
    CHECK(offsets_of(poll_member(a, 4)) == range(0, 4));
    CHECK(offsets_of(poll_member(a, 4)) == range(4, 8)); // 0..3 acknowledged
    CHECK(offsets_of(poll_member(b, 4)) == range(8, 12));
    REQUIRE(a.close().ok()); // without ack: 4..7 go to another member
    CHECK(b.position().value() == 4);
    // b acknowledges 8..11, then takes a's unacknowledged records before new ones.
    const std::vector<OwnedRecord> redelivered = poll_member(b);
    CHECK(offsets_of(redelivered) == range(4, 8));
    check_numbered(redelivered);
    CHECK(offsets_of(poll_member(b, 100)) == range(12, 30));
    CHECK(poll_member(b).empty());
    CHECK(b.position().value() == 30);
  }

  TEST_CASE("a_member_that_leaves_hands_over_claimed_records_it_had_not_delivered") {
    GroupTopic t;
    std::vector<std::uint64_t> values(50, 7);
    REQUIRE(t.producer.append_values(std::span<const std::uint64_t>(values)).ok()); // one frame of 50
    GroupMember a = t.bus.group_member("g", "t").value();
    CHECK(offsets_of(poll_member(a, 10)) == range(0, 10));
    REQUIRE(a.ack().ok());
    a = GroupMember(); // move-assigning closes it: 10..49 were claimed, never delivered
    GroupMember b = t.bus.group_member("g", "t").value();
    CHECK(b.position().value() == 10);
    CHECK(offsets_of(poll_member(b)) == range(10, 50));
  }

  TEST_CASE("a_destroyed_member_hands_over_like_a_closed_one") {
    GroupTopic t;
    append_numbered(t.producer, 10);
    GroupMember b = t.bus.group_member("g", "t").value();
    {
      GroupMember a = t.bus.group_member("g", "t").value();
      CHECK(offsets_of(poll_member(a, 3)) == range(0, 3));
    }
    CHECK(offsets_of(poll_member(b, 100)) == range(0, 3));
    CHECK(offsets_of(poll_member(b, 100)) == range(3, 10));
  }

  TEST_CASE("the_group_outlives_its_members_and_resumes_at_its_position") {
    GroupTopic t;
    append_numbered(t.producer, 20);
    {
      GroupMember a = t.bus.group_member("g", "t").value();
      CHECK(poll_member(a, 8).size() == 8);
      REQUIRE(a.ack().ok());
    }
    GroupMember late = t.bus.group_member("g", "t", {.start = StartPosition::latest}).value(); // existing group
    CHECK(late.position().value() == 8);
    CHECK(offsets_of(poll_member(late)) == range(8, 20));
  }

  TEST_CASE("the_group_holds_the_producer_at_its_lowest_unacknowledged_record") {
    GroupTopic t(2); // 128 records of 64 bytes fill the ring
    GroupMember a = t.bus.group_member("g", "t").value();
    GroupMember b = t.bus.group_member("g", "t").value();
    append_numbered(t.producer, 2 * records_per_small_segment);
    CHECK(t.producer.try_append(value_for(128, even_value_bytes)).code() == Errc::would_block);
    CHECK(poll_member(a, 1).size() == 1);               // a holds offset 0
    for (int i = 0; i < 200; ++i) (void)poll_member(b); // b acknowledges everything else
    CHECK(b.position().value() == 0);
    CHECK(t.producer.try_append(value_for(128, even_value_bytes)).code() == Errc::would_block);
    CHECK(poll_member(a).empty()); // acknowledges 0
    CHECK(a.position().value() == 128);
    append_numbered(t.producer, records_per_small_segment); // a whole segment is free again
  }

  TEST_CASE("a_group_with_no_member_still_holds_the_producer") {
    GroupTopic t(2);
    { GroupMember a = t.bus.group_member("g", "t").value(); }
    append_numbered(t.producer, 2 * records_per_small_segment);
    CHECK(t.producer.try_append(value_for(128, even_value_bytes)).code() == Errc::would_block);
    GroupMember b = t.bus.group_member("g", "t").value();
    CHECK(poll_member(b).size() == 128);
    CHECK(poll_member(b).empty());
    append_numbered(t.producer, records_per_small_segment);
  }

  TEST_CASE("a_new_group_starting_latest_gets_only_records_appended_after_it") {
    GroupTopic t;
    append_numbered(t.producer, 10);
    GroupMember a = t.bus.group_member("g", "t", {.start = StartPosition::latest}).value();
    CHECK(a.position().value() == 10);
    CHECK(poll_member(a).empty());
    append_numbered(t.producer, 5);
    CHECK(offsets_of(poll_member(a)) == range(10, 15));
  }

  TEST_CASE("groups_and_fan_out_consumers_coexist_on_a_topic") {
    GroupTopic t;
    Consumer fan = t.bus.consumer("t").value();
    GroupMember g1a = t.bus.group_member("one", "t").value();
    GroupMember g1b = t.bus.group_member("one", "t").value();
    GroupMember g2 = t.bus.group_member("two", "t").value();
    append_numbered(t.producer, 60);
    std::vector<std::uint64_t> one;
    for (int i = 0; i < 10; ++i) {
      for (GroupMember* m : {&g1a, &g1b}) {
        for (const OwnedRecord& r : poll_member(*m, 5)) one.push_back(r.offset);
      }
    }
    std::sort(one.begin(), one.end());
    CHECK(one == range(0, 60));
    CHECK(offsets_of(poll_member(g2)) == range(0, 60)); // another group gets everything too
    const std::vector<OwnedRecord> all = ringbus::test::drain(fan);
    CHECK(offsets_of(all) == range(0, 60)); // and so does the plain consumer
    check_numbered(all);
  }

  TEST_CASE("the_same_group_name_in_two_topics_is_two_groups") {
    Bus bus;
    REQUIRE(bus.create_topic("x", small_ring()).ok());
    REQUIRE(bus.create_topic("y", small_ring()).ok());
    Producer px = bus.producer("x").value();
    Producer py = bus.producer("y").value();
    append_numbered(px, 5);
    append_numbered(py, 3);
    GroupMember gx = bus.group_member("g", "x").value();
    GroupMember gy = bus.group_member("g", "y").value();
    CHECK(offsets_of(poll_member(gx)) == range(0, 5));
    CHECK(offsets_of(poll_member(gy)) == range(0, 3));
    CHECK(gx.group() == "g");
    CHECK(gx.topic() == "x");
    CHECK(gy.topic() == "y");
  }

  TEST_CASE("group_member_errors_name_the_thing_and_the_limit") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    REQUIRE(bus.create_topic("o", small_ring(2, OverflowPolicy::overwrite)).ok());

    auto missing = bus.group_member("g", "nope");
    CHECK(missing.code() == Errc::topic_not_found);
    CHECK(contains(missing.message(), "'nope'"));

    auto bad_name = bus.group_member("a/b", "t");
    CHECK(bad_name.code() == Errc::invalid_argument);
    CHECK(contains(bad_name.message(), "group name 'a/b'"));
    CHECK(bus.group_member("", "t").code() == Errc::invalid_argument);

    auto overwrite = bus.group_member("g", "o");
    CHECK(overwrite.code() == Errc::invalid_argument);
    CHECK(contains(overwrite.message(), "'o'"));
    CHECK(contains(overwrite.message(), "overwrite"));

    GroupOptions zero;
    zero.max_claim_records = 0;
    auto z = bus.group_member("g", "t", zero);
    CHECK(z.code() == Errc::invalid_argument);
    CHECK(contains(z.message(), "max_claim_records"));

    GroupOptions blocking;
    blocking.override_wait = true;
    blocking.wait = WaitStrategy::blocking;
    auto b = bus.group_member("g", "t", blocking);
    CHECK(b.code() == Errc::invalid_argument);
    CHECK(contains(b.message(), "blocking"));
    CHECK(contains(b.message(), "'t'"));
  }

  TEST_CASE("a_group_takes_one_reader_slot_per_member_and_says_when_none_is_left") {
    Bus bus;
    TopicOptions o = small_ring();
    o.max_consumers = 2;
    REQUIRE(bus.create_topic("t", o).ok());
    GroupMember a = bus.group_member("g", "t").value();
    Consumer c = bus.consumer("t").value();
    auto full = bus.group_member("g", "t");
    CHECK(full.code() == Errc::too_many_consumers);
    CHECK(contains(full.message(), "'t'"));
    CHECK(contains(full.message(), "max_consumers"));
  }

  TEST_CASE("a_group_has_at_most_max_group_members_places") {
    Bus bus;
    TopicOptions o = small_ring();
    o.max_consumers = 128;
    REQUIRE(bus.create_topic("t", o).ok());
    std::vector<GroupMember> members;
    for (std::size_t i = 0; i < ringbus::limits::max_group_members; ++i) {
      members.push_back(bus.group_member("g", "t").value());
    }
    auto one_more = bus.group_member("g", "t");
    CHECK(one_more.code() == Errc::too_many_consumers);
    CHECK(contains(one_more.message(), "'g'"));
    CHECK(contains(one_more.message(), std::to_string(ringbus::limits::max_group_members)));
    members.pop_back();
    CHECK(bus.group_member("g", "t").ok());
  }

  // A pool of workers that all leave mid-batch (say on an exception) keeps
  // every reader slot the topic has (max_consumers = 4): a joining member
  // takes a departed one's place and slot over instead of needing new ones.
  TEST_CASE("a_worker_pool_that_all_left_mid_batch_can_rejoin_with_every_reader_slot_taken") {
    Bus bus;
    TopicOptions o = small_ring(4);
    o.max_consumers = 4;
    REQUIRE(bus.create_topic("t", o).ok());
    Producer p = bus.producer("t").value();
    append_numbered(p, 20); // a frame per record
    {
      std::vector<GroupMember> workers;
      for (int i = 0; i < 4; ++i) workers.push_back(bus.group_member("g", "t").value());
      for (GroupMember& w : workers) REQUIRE(poll_member(w, 1).size() == 1);
    } // all destroyed mid-batch
    Result<GroupMember> again = bus.group_member("g", "t");
    REQUIRE_MESSAGE(again.ok(), again.message());
    std::vector<std::uint64_t> got;
    for (int i = 0; i < 30; ++i) {
      for (const OwnedRecord& r : poll_member(*again, 3)) got.push_back(r.offset);
    }
    std::sort(got.begin(), got.end());
    CHECK(got == range(0, 20)); // the four handed over once, the rest once
    // The pool restarts in full: the rejoined member's place and slot count once.
    std::vector<GroupMember> pool;
    for (int i = 0; i < 3; ++i) {
      Result<GroupMember> w = bus.group_member("g", "t");
      REQUIRE_MESSAGE(w.ok(), w.message());
      pool.push_back(std::move(*w));
    }
    CHECK(bus.group_member("g", "t").code() == Errc::too_many_consumers);
  }

  TEST_CASE("max_group_members_that_all_left_mid_batch_leave_the_group_open_to_joins") {
    Bus bus;
    TopicOptions o = small_ring(4);
    o.max_consumers = 128;
    REQUIRE(bus.create_topic("t", o).ok());
    Producer p = bus.producer("t").value();
    append_numbered(p, 100);
    {
      std::vector<GroupMember> members;
      for (std::size_t i = 0; i < ringbus::limits::max_group_members; ++i) {
        members.push_back(bus.group_member("g", "t").value());
      }
      for (GroupMember& m : members) REQUIRE(poll_member(m, 1).size() == 1);
    }
    Result<GroupMember> again = bus.group_member("g", "t");
    REQUIRE_MESSAGE(again.ok(), again.message());
    CHECK(again->position().value() == 0);
    std::vector<std::uint64_t> got;
    for (int i = 0; i < 200; ++i) {
      for (const OwnedRecord& r : poll_member(*again, 7)) got.push_back(r.offset);
    }
    std::sort(got.begin(), got.end());
    CHECK(got == range(0, 100));
    CHECK(again->position().value() == 100);
  }

  // Every place and slot held by departed members, and the ring full: after
  // a member rejoins, each unacknowledged record reaches it exactly once, the
  // group position only grows, and the producer fills and wraps the ring
  // again as the member acknowledges.
  TEST_CASE("a_rejoined_member_gets_each_handed_over_record_once_and_frees_the_producer") {
    Bus bus;
    TopicOptions o = small_ring(2); // 128 records of 64 bytes fill the ring
    o.max_consumers = 4;
    REQUIRE(bus.create_topic("t", o).ok());
    Producer p = bus.producer("t").value();
    {
      std::vector<GroupMember> workers;
      for (int i = 0; i < 4; ++i) workers.push_back(bus.group_member("g", "t").value());
      append_numbered(p, 2 * records_per_small_segment);
      REQUIRE(offsets_of(poll_member(workers[0], 2)) == range(0, 2));
      for (GroupMember& w : workers) REQUIRE(poll_member(w, 2).size() == 2); // acks 0 and 1; 2..9 in flight
    } // all four leave holding records, and their reader slots

    CHECK(p.try_append(value_for(128, even_value_bytes)).code() == Errc::would_block);
    GroupMember m = bus.group_member("g", "t").value();
    const std::uint64_t total = 5 * records_per_small_segment; // wraps the ring twice
    std::vector<std::uint64_t> got;
    std::uint64_t appended = 2 * records_per_small_segment;
    std::uint64_t last_position = 0;
    for (int round = 0; round < 1000 && got.size() < total - 2; ++round) {
      const std::vector<OwnedRecord> polled = poll_member(m, 5);
      check_numbered(polled);
      for (const OwnedRecord& r : polled) got.push_back(r.offset);
      const std::uint64_t at = m.position().value();
      CHECK(at >= last_position);
      last_position = at;
      while (appended < total && p.try_append(value_for(appended, even_value_bytes)).ok()) ++appended;
    }
    CHECK(appended == total);
    CHECK(poll_member(m).empty()); // acknowledges the last poll
    std::sort(got.begin(), got.end());
    CHECK(got == range(2, total)); // 2..9 from the departed, once; 0 and 1 (acked) not again
    CHECK(m.position().value() == total);
  }

  // One member left without ack, the last one with it (its slot anchors the
  // claim): a joiner takes the departed member's record and slot, and the
  // anchor goes, so it does not pin the producer at the old claim.
  TEST_CASE("a_member_rejoining_a_group_with_an_anchor_and_a_departed_member_frees_the_anchor") {
    Bus bus;
    TopicOptions o = small_ring(2);
    o.max_consumers = 2;
    REQUIRE(bus.create_topic("t", o).ok());
    Producer p = bus.producer("t").value();
    append_numbered(p, 10);
    {
      GroupMember a = bus.group_member("g", "t").value();
      GroupMember b = bus.group_member("g", "t").value();
      CHECK(offsets_of(poll_member(a, 2)) == range(0, 2));
      CHECK(offsets_of(poll_member(b, 3)) == range(2, 5));
      REQUIRE(a.close().ok()); // without ack: 0 and 1 handed over
      REQUIRE(b.ack().ok());   // b leaves last, acked: its slot anchors the claim at 5
    }
    GroupMember m = bus.group_member("g", "t").value();
    CHECK(offsets_of(poll_member(m)) == range(0, 2));
    CHECK(offsets_of(poll_member(m)) == range(5, 10));
    CHECK(poll_member(m).empty());
    // Nothing else holds the ring: a consumer fits in the freed slot, and
    // the producer wraps the ring while m keeps up.
    Result<Consumer> c = bus.consumer("t", StartPosition::latest);
    REQUIRE_MESSAGE(c.ok(), c.message());
    REQUIRE(c->close().ok());
    std::uint64_t appended = 10;
    for (int round = 0; round < 100 && appended < 10 + 4 * records_per_small_segment; ++round) {
      while (appended < 10 + 4 * records_per_small_segment &&
             p.try_append(value_for(appended, even_value_bytes)).ok()) {
        ++appended;
      }
      (void)poll_member(m);
    }
    CHECK(appended == 10 + 4 * records_per_small_segment);
  }

  TEST_CASE("closed_or_default_member_says_closed_to_every_call") {
    GroupMember none;
    CHECK_FALSE(none.is_open());
    CHECK(none.poll().code() == Errc::closed);
    CHECK(none.ack().code() == Errc::closed);
    CHECK(none.position().code() == Errc::closed);
    CHECK(none.lag().code() == Errc::closed);
    CHECK(none.close().code() == Errc::closed);
    CHECK(none.group().empty());

    GroupTopic t;
    GroupMember m = t.bus.group_member("g", "t").value();
    t.bus.close();
    CHECK(m.poll().code() == Errc::closed);
    CHECK(m.position().code() == Errc::closed);
    CHECK(m.close().ok()); // still releases
    CHECK(t.bus.group_member("g", "t").code() == Errc::closed);
  }

  TEST_CASE("moved_member_keeps_its_claim") {
    GroupTopic t;
    append_numbered(t.producer, 10);
    GroupMember a = t.bus.group_member("g", "t").value();
    CHECK(offsets_of(poll_member(a, 3)) == range(0, 3));
    GroupMember moved(std::move(a));
    CHECK_FALSE(a.is_open()); // NOLINT(bugprone-use-after-move): checking the moved-from state
    CHECK(offsets_of(poll_member(moved, 100)) == range(3, 10));
  }

  TEST_CASE("poll_with_a_timeout_waits_and_returns_new_records") {
    GroupTopic t;
    GroupMember a = t.bus.group_member("g", "t").value();
    const auto before = std::chrono::steady_clock::now();
    Result<Records> empty = a.poll(SIZE_MAX, 5ms);
    REQUIRE(empty.ok());
    CHECK(empty->empty());
    CHECK(std::chrono::steady_clock::now() - before >= 5ms);
    std::thread writer([&] {
      std::this_thread::sleep_for(2ms);
      append_numbered(t.producer, 3);
    });
    std::vector<std::uint64_t> got;
    for (int i = 0; i < 1000 && got.size() < 3; ++i) {
      Result<Records> r = a.poll(SIZE_MAX, 10ms);
      REQUIRE(r.ok());
      for (const Record& rec : *r) got.push_back(rec.offset);
    }
    writer.join();
    CHECK(got == range(0, 3));
  }

  TEST_CASE("group_poll_and_ack_allocate_nothing_in_steady_state") {
    GroupTopic t;
    GroupMember a = t.bus.group_member("g", "t").value();
    GroupMember b = t.bus.group_member("g", "t").value();
    const std::string value = value_for(0, even_value_bytes);
    const auto round = [&] {
      for (int i = 0; i < 8; ++i) REQUIRE(t.producer.try_append(value).ok());
      for (GroupMember* m : {&a, &b}) {
        Result<Records> r = m->poll(3);
        REQUIRE(r.ok());
        std::size_t n = 0;
        for (const Record& rec : *r) n += rec.value.size() == even_value_bytes ? 1 : 0;
        REQUIRE(n == r->size());
        REQUIRE(m->ack().ok());
      }
      for (int i = 0; i < 3; ++i) REQUIRE(a.poll().ok()); // drain what is left
    };
    for (int i = 0; i < 50; ++i) round(); // warm up: every segment written and read once
    const std::uint64_t before = ringbus::detail::heap_allocation_count();
    for (int i = 0; i < 500; ++i) round();
    CHECK(ringbus::detail::heap_allocation_count() == before);
  }

  TEST_CASE("blocking_members_wake_for_new_records_and_for_handed_over_ones") {
    Bus bus;
    TopicOptions o = small_ring();
    o.wait = WaitStrategy::blocking;
    REQUIRE(bus.create_topic("t", o).ok());
    Producer p = bus.producer("t").value();
    GroupMember a = bus.group_member("g", "t").value();
    GroupMember b = bus.group_member("g", "t").value();
    std::atomic<std::uint64_t> b_got{0};
    std::thread reader([&] {
      for (int i = 0; i < 2000 && b_got.load() < 6; ++i) {
        Result<Records> r = b.poll(SIZE_MAX, 50ms);
        if (!r.ok()) return;
        b_got.fetch_add(r->size());
      }
    });
    append_numbered(p, 3);
    for (int i = 0; i < 2000 && b_got.load() < 3; ++i) std::this_thread::sleep_for(1ms);
    CHECK(b_got.load() == 3);
    append_numbered(p, 3);
    // a may race b for these; whatever a takes it hands back by leaving.
    (void)a.poll(SIZE_MAX);
    a.close().check();
    reader.join();
    CHECK(b_got.load() == 6);
  }
} // TEST_SUITE

// --- stress ------------------------------------------------------------------------------

namespace {

using ringbus::stress::Failures;
using ringbus::stress::MixedWriter;
using ringbus::stress::PayloadPool;
using ringbus::stress::Progress;
using ringbus::stress::record_defect;
using ringbus::stress::Rng;
using ringbus::stress::scaled;
using ringbus::stress::test_seed;
using ringbus::stress::Watchdog;

// Rechecks every record of a poll just before the next one.
bool still_intact(const Records& records, Failures& failures) {
  for (const Record& r : records) {
    if (const char* defect = record_defect(r)) {
      failures.add("offset " + std::to_string(r.offset) + " changed while held unacknowledged: " + defect);
      return false;
    }
  }
  return true;
}

struct MemberRun {
  std::uint64_t got = 0;   // records delivered to this member
  std::uint64_t acked = 0; // of them, acknowledged (by its next poll)
  std::uint64_t polls = 0;
  std::uint64_t unacked_at_kill = 0;
  bool killed = false;
};

// When member_loop stops as if its thread died: after `records` records, or
// once the group has acknowledged `acked` offsets (whichever comes first), at
// a moment it holds a poll not yet acknowledged and has acknowledged one
// before. The second bound keeps the kill mid-stream when the member is
// starved (a loaded machine, a sanitizer).
struct KillAt {
  std::uint64_t records = UINT64_MAX;
  std::uint64_t acked = UINT64_MAX;
};

// A surviving member's manners while another is to be killed: once `acked`
// offsets are acknowledged and `killed` is not yet set, it sleeps 200 us
// after each poll, so the starved member gets frames to claim. It keeps
// polling (a member that stopped would keep its claimed frames from everyone).
struct YieldTo {
  const std::atomic<bool>* killed = nullptr;
  std::uint64_t acked = UINT64_MAX;
};

// Polls until every offset is acknowledged (or until `kill`, then stops
// without acknowledging its last poll: the handle is closed later by the test
// thread, as if the thread had died). Every record's content is checked;
// acknowledged offsets are counted in `acked` (exactly once each).
void member_loop(GroupMember& member, std::uint64_t total, KillAt kill, std::uint64_t seed,
                 std::vector<std::atomic<std::uint8_t>>& acked, std::atomic<std::uint64_t>& acked_total,
                 Progress& progress, Failures& failures, std::atomic<bool>& stop, MemberRun& out,
                 YieldTo yield_to = {}) {
  Rng rng(seed);
  std::vector<std::uint64_t> pending; // delivered by the last poll: acknowledged by the next
  pending.reserve(4096);
  std::optional<Records> last; // the last poll's views: valid, and unchanged, until the next poll
  while (!stop.load(std::memory_order_relaxed)) {
    if (!pending.empty() && out.acked != 0 &&
        (out.got >= kill.records || acked_total.load(std::memory_order_acquire) >= kill.acked)) {
      out.unacked_at_kill = pending.size();
      out.killed = true;
      return; // killed: the last poll's records stay unacknowledged
    }
    if (acked_total.load(std::memory_order_acquire) == total) return;
    // Unacknowledged records are held: the producer has not overwritten them
    // while this member worked on them.
    if (last && !still_intact(*last, failures)) {
      stop.store(true);
      return;
    }
    const std::size_t max = rng.one_in(3) ? 1 + rng.below(7) : 1 + rng.below(600);
    Result<Records> polled = member.poll(max, 5ms);
    ++out.polls;
    if (!polled.ok()) {
      failures.add("poll failed: " + std::string(polled.message()));
      stop.store(true);
      return;
    }
    // This poll acknowledged the previous one.
    for (const std::uint64_t o : pending) {
      if (acked[o].fetch_add(1, std::memory_order_relaxed) != 0) {
        failures.add("offset " + std::to_string(o) + " acknowledged twice");
        stop.store(true);
      }
    }
    out.acked += pending.size();
    acked_total.fetch_add(pending.size(), std::memory_order_release);
    pending.clear();
    if (polled->size() > max) failures.add("a poll returned more than max_records");
    for (const Record& r : *polled) {
      if (r.offset >= total) {
        failures.add("offset " + std::to_string(r.offset) + " past the end");
        stop.store(true);
        return;
      }
      if (const char* defect = record_defect(r)) {
        failures.add("offset " + std::to_string(r.offset) + ": " + defect);
        stop.store(true);
        return;
      }
      pending.push_back(r.offset);
    }
    last = *polled;
    if (!pending.empty() && rng.one_in(16)) {
      // The group's position is a lower bound: it never passes a record this
      // member holds unacknowledged.
      const Result<std::uint64_t> at = member.position();
      const std::uint64_t lowest = *std::min_element(pending.begin(), pending.end());
      if (!at.ok() || *at > lowest) {
        failures.add("group position " + (at.ok() ? std::to_string(*at) : std::string(at.message())) +
                     " passed offset " + std::to_string(lowest) + ", held unacknowledged");
        stop.store(true);
        return;
      }
    }
    out.got += polled->size();
    progress.value.store(out.got + out.polls, std::memory_order_relaxed);
    // acquire: pairs with the release store after the killed member's close.
    if (yield_to.killed != nullptr && !yield_to.killed->load(std::memory_order_acquire) &&
        acked_total.load(std::memory_order_acquire) >= yield_to.acked) {
      std::this_thread::sleep_for(200us);
    }
    if (rng.one_in(64)) std::this_thread::yield();
  }
}

} // namespace

TEST_CASE("stress: a group of three shares every record exactly once and a killed member loses nothing") {
  const std::uint64_t total = scaled(10'000'000, 100'000);
  const std::uint64_t seed = test_seed();
  const PayloadPool pool(seed);
  Bus bus;
  TopicOptions o;
  o.segment_bytes = std::size_t{64} << 10;
  o.segment_count = 4;
  o.wait = WaitStrategy::yield;
  REQUIRE(bus.create_topic("work", o).ok());
  Producer producer = bus.producer("work").value();
  constexpr std::size_t members = 3;
  std::vector<GroupMember> handles;
  for (std::size_t i = 0; i < members; ++i) {
    GroupOptions g;
    g.max_claim_records = i == 0 ? 64 : 256;
    handles.push_back(bus.group_member("workers", "work", g).value());
  }
  std::vector<std::atomic<std::uint8_t>> acked(total);
  std::atomic<std::uint64_t> acked_total{0};
  std::atomic<bool> stop{false};
  Failures failures;
  std::vector<MemberRun> runs(members);
  std::vector<Progress> progress(members);
  Progress produced;
  Watchdog watchdog(
      30s,
      [&] {
        std::uint64_t sum = produced.value.load(std::memory_order_relaxed);
        for (Progress& p : progress) sum += p.value.load(std::memory_order_relaxed);
        return sum;
      },
      [&] { bus.close(); });
  // Member 0 is killed mid-stream: after a third of its share, or once half
  // the stream is acknowledged if it is starved (the others then slow down
  // until it is).
  const std::uint64_t kill_after = total / 3 / members;
  std::atomic<bool> killed{false};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < members; ++i) {
    threads.emplace_back([&, i] {
      member_loop(handles[i], total, i == 0 ? KillAt{kill_after, total / 2} : KillAt{}, seed + 1 + i, acked,
                  acked_total, progress[i], failures, stop, runs[i], i == 0 ? YieldTo{} : YieldTo{&killed, total / 2});
    });
  }
  // The killed member's handle is closed, without ack, once its thread is gone.
  std::thread reaper([&] {
    threads[0].join();
    handles[0].close().check();
    killed.store(true, std::memory_order_release); // pairs with the survivors' acquire in member_loop
  });
  MixedWriter writer(producer, pool, seed, stop);
  std::string producer_error;
  if (!writer.run(total, produced.value, producer_error)) stop.store(true);
  reaper.join();
  for (std::size_t i = 1; i < members; ++i) threads[i].join();
  // The survivors' last polls: acknowledge them.
  for (std::size_t i = 1; i < members; ++i) {
    if (!handles[i].is_open()) continue;
    REQUIRE(handles[i].ack().ok());
  }
  watchdog.stop();
  INFO("seed ", seed, "\n", failures.summary(), producer_error);
  CHECK_FALSE(watchdog.fired());
  CHECK(failures.count() == 0);
  CHECK(producer_error.empty());
  CHECK(writer.next_offset() == total);
  std::uint64_t missing = 0;
  std::uint64_t first_missing = UINT64_MAX;
  for (std::uint64_t off = 0; off < total; ++off) {
    if (acked[off].load(std::memory_order_relaxed) != 1) {
      ++missing;
      first_missing = std::min(first_missing, off);
    }
  }
  CHECK_MESSAGE(missing == 0, missing, " offsets not acknowledged exactly once, the first ", first_missing);
  CHECK(acked_total.load() == total);
  // Member 0 died mid-stream holding its last poll: those records went to another member.
  CHECK(runs[0].killed);
  CHECK(runs[0].acked > 0);
  CHECK(runs[0].unacked_at_kill > 0);
  std::uint64_t got = 0;
  for (const MemberRun& r : runs) got += r.got;
  CHECK(got == total + runs[0].unacked_at_kill); // the dead member's unacked batch, delivered twice
  CHECK(handles[1].position().value() == total);
  CHECK(handles[1].lag().value() == 0);
  for (std::size_t i = 0; i < members; ++i) {
    MESSAGE("member ", i, ": got ", runs[i].got, ", acknowledged ", runs[i].acked, " in ", runs[i].polls, " polls",
            i == 0 ? " (killed; unacknowledged at death: " + std::to_string(runs[0].unacked_at_kill) + ")" : "");
  }
}

// Members come and go all the time: each of three threads joins, polls a
// few times, then leaves either after ack() or without it (handing its last
// poll and its undelivered claim to whoever polls next), and joins again.
// So the group is often left with no open member (the anchor holds its
// position), members join while another takes over a departed one's range,
// and a joiner and pollers race for the same abandoned range. Every record's content
// is checked at delivery and again just before the next poll (held records
// are never overwritten); every offset is acknowledged exactly once; and a
// record is delivered again only when the member holding it left without ack.
TEST_CASE("stress: members joining and leaving without ack lose nothing and acknowledge each record once") {
  const std::uint64_t total = scaled(2'000'000, 40'000);
  const std::uint64_t seed = test_seed();
  const PayloadPool pool(seed);
  Bus bus;
  TopicOptions o;
  o.segment_bytes = std::size_t{64} << 10; // the least the mixed writer needs: the group holds it often
  o.segment_count = 4;
  o.wait = WaitStrategy::yield;
  // One slot per thread (its open member, or the record it left) and the
  // anchor: a join takes a departed member's slot over instead of a new one,
  // so no join may fail for want of a slot.
  o.max_consumers = 4;
  REQUIRE(bus.create_topic("work", o).ok());
  Producer producer = bus.producer("work").value();
  // The group exists before the first append (and holds the producer from
  // then on, with or without open members).
  bus.group_member("workers", "work").value().close().check();
  constexpr std::size_t threads_n = 3;
  std::vector<std::atomic<std::uint8_t>> acked(total);
  std::atomic<std::uint64_t> acked_total{0};
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> dropped{0}; // delivered, then left without ack
  std::atomic<std::uint64_t> sessions{0};
  std::atomic<bool> stop{false};
  Failures failures;
  Progress produced;
  Watchdog watchdog(
      30s,
      [&] {
        // Acknowledgements, not polls: members that keep polling while a
        // range is stuck must not count as progress.
        return produced.value.load(std::memory_order_relaxed) + acked_total.load(std::memory_order_relaxed);
      },
      [&] { bus.close(); });
  const auto fail = [&](std::string why) {
    failures.add(std::move(why));
    stop.store(true);
  };
  const auto acknowledge = [&](std::vector<std::uint64_t>& pending) {
    for (const std::uint64_t off : pending) {
      if (acked[off].fetch_add(1, std::memory_order_relaxed) != 0)
        fail("offset " + std::to_string(off) + " acknowledged twice");
    }
    acked_total.fetch_add(pending.size(), std::memory_order_release);
    pending.clear();
  };
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < threads_n; ++t) {
    threads.emplace_back([&, t] {
      Rng rng(seed + 100 + t);
      std::vector<std::uint64_t> pending;
      while (!stop.load(std::memory_order_relaxed) && acked_total.load(std::memory_order_acquire) != total) {
        GroupOptions g;
        g.max_claim_records = 1 + rng.below(300);
        Result<GroupMember> joined = bus.group_member("workers", "work", g);
        if (!joined.ok()) {
          fail("join failed: " + std::string(joined.message()));
          return;
        }
        GroupMember m = std::move(*joined);
        sessions.fetch_add(1, std::memory_order_relaxed);
        std::optional<Records> last;
        const std::uint64_t polls = 1 + rng.below(12);
        for (std::uint64_t i = 0; i < polls && !stop.load(std::memory_order_relaxed); ++i) {
          if (last && !still_intact(*last, failures)) {
            stop.store(true);
            return;
          }
          const std::size_t max = rng.one_in(3) ? 1 + rng.below(5) : 1 + rng.below(400);
          Result<Records> polled = m.poll(max, 2ms);
          if (!polled.ok()) {
            fail("poll failed: " + std::string(polled.message()));
            return;
          }
          acknowledge(pending); // this poll acknowledged the previous one
          for (const Record& r : *polled) {
            if (r.offset >= total) {
              fail("offset " + std::to_string(r.offset) + " past the end");
              return;
            }
            if (const char* defect = record_defect(r)) {
              fail("offset " + std::to_string(r.offset) + ": " + defect);
              return;
            }
            pending.push_back(r.offset);
          }
          if (!pending.empty()) {
            const Result<std::uint64_t> at = m.position();
            const std::uint64_t lowest = *std::min_element(pending.begin(), pending.end());
            if (!at.ok() || *at > lowest) {
              fail("group position passed offset " + std::to_string(lowest) + ", held unacknowledged");
              return;
            }
          }
          last = *polled;
          delivered.fetch_add(polled->size(), std::memory_order_relaxed);
        }
        if (last && !still_intact(*last, failures)) {
          stop.store(true);
          return;
        }
        const bool done = acked_total.load(std::memory_order_acquire) + pending.size() == total;
        if (done || rng.one_in(2)) {
          if (ringbus::Status st = m.ack(); !st.ok()) {
            fail("ack failed: " + std::string(st.message()));
            return;
          }
          acknowledge(pending);
        } else {
          dropped.fetch_add(pending.size(), std::memory_order_relaxed);
          pending.clear(); // left without ack: another member gets these again
        }
        if (rng.one_in(4)) std::this_thread::yield(); // now and then nobody is open
      }
    });
  }
  MixedWriter writer(producer, pool, seed, stop);
  std::string producer_error;
  if (!writer.run(total, produced.value, producer_error)) stop.store(true);
  for (std::thread& th : threads) th.join();
  watchdog.stop();
  INFO("seed ", seed, "\n", failures.summary(), producer_error);
  CHECK_FALSE(watchdog.fired());
  CHECK(failures.count() == 0);
  CHECK(producer_error.empty());
  CHECK(writer.next_offset() == total);
  std::uint64_t missing = 0;
  std::uint64_t first_missing = UINT64_MAX;
  for (std::uint64_t off = 0; off < total; ++off) {
    if (acked[off].load(std::memory_order_relaxed) != 1) {
      ++missing;
      first_missing = std::min(first_missing, off);
    }
  }
  std::string ranges; // the first few offset ranges not acknowledged exactly once
  for (std::uint64_t off = 0, shown = 0; off < total && shown < 8; ++off) {
    if (acked[off].load(std::memory_order_relaxed) == 1) continue;
    std::uint64_t end = off;
    while (end < total && acked[end].load(std::memory_order_relaxed) == acked[off].load(std::memory_order_relaxed)) {
      ++end;
    }
    ranges += " [" + std::to_string(off) + ", " + std::to_string(end) + ") x" +
              std::to_string(acked[off].load(std::memory_order_relaxed));
    off = end - 1;
    ++shown;
  }
  CHECK_MESSAGE(missing == 0, missing, " offsets not acknowledged exactly once:", ranges);
  CHECK(acked_total.load() == total);
  // Redelivered: exactly the records whose holder left without ack.
  CHECK(delivered.load() == total + dropped.load());
  GroupMember probe = bus.group_member("workers", "work").value();
  CHECK(probe.position().value() == total);
  CHECK(probe.poll().value().empty());
  MESSAGE(sessions.load(), " member sessions; ", dropped.load(), " records redelivered after a leave without ack");
}
