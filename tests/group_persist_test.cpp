// Durable consumer-group positions (GroupMember::commit, committed,
// GroupOptions::auto_commit_interval): a group committed on a persistent
// topic resumes there when it is next created after a restart, clamped to what
// the log holds; commits of two members from two threads; a child process
// killed while committing leaves a position it committed, never garbage.
//
// fork() is called only while the parent has no other thread (tsan): every
// Bus of the parent runs without a flusher thread and is closed before a fork.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "persist_support.hpp"
#include "platform/files.hpp"
#include "ringbus/detail/offset_store.hpp"
#include "ringbus/ringbus.hpp"
#include "stress_support.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;
using namespace ringbus;
using namespace ringbus::test;

namespace {

constexpr const char* topic = "t";

GroupMember join(Bus& bus, const std::string& group, const GroupOptions& options = {},
                 const std::string& in_topic = topic) {
  Result<GroupMember> m = bus.group_member(group, in_topic, options);
  REQUIRE_MESSAGE(m.ok(), m.message());
  return std::move(*m);
}

std::vector<OwnedRecord> poll_member(GroupMember& m, std::size_t max_records = SIZE_MAX) {
  Result<Records> r = m.poll(max_records);
  REQUIRE_MESSAGE(r.ok(), r.message());
  return own_all(*r);
}

// The offsets file `file` of the bus directory's sub-directory `sub`
// ("groups" or "consumers"), opened the way the bus opens it.
detail::OffsetStore open_offsets(const TempBusDir& dir, const std::string& sub, const std::string& file) {
  Result<platform::FileDescriptor> d = platform::open_directory(dir.path() + "/" + sub);
  REQUIRE_MESSAGE(d.ok(), d.message());
  Result<detail::OffsetStore> store = detail::OffsetStore::open(*d, file);
  REQUIRE_MESSAGE(store.ok(), store.message());
  return std::move(*store);
}

// Polls until a poll returns nothing (which acknowledges the last batch).
std::vector<OwnedRecord> drain_member(GroupMember& m, std::size_t max_records = SIZE_MAX) {
  std::vector<OwnedRecord> out;
  for (;;) {
    std::vector<OwnedRecord> batch = poll_member(m, max_records);
    if (batch.empty()) return out;
    out.insert(out.end(), batch.begin(), batch.end());
  }
}

// Exactly the records [first, end), in order, each with its own content.
void check_exactly(const std::vector<OwnedRecord>& got, std::uint64_t first, std::uint64_t end) {
  REQUIRE(got.size() == end - first);
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].offset == first + i);
    CHECK(got[i].value == value_for(first + i, even_value_bytes));
  }
}

std::uint64_t committed_of(const GroupMember& m) {
  Result<std::uint64_t> at = m.committed();
  REQUIRE_MESSAGE(at.ok(), at.message());
  return *at;
}

std::uint64_t position_of(const GroupMember& m) {
  Result<std::uint64_t> at = m.position();
  REQUIRE_MESSAGE(at.ok(), at.message());
  return *at;
}

// Appends count records of value_for(offset, even_value_bytes) as one batch frame.
void append_one_frame(Producer& p, std::size_t count) {
  std::vector<std::string> values;
  std::vector<Message> messages;
  for (std::size_t i = 0; i < count; ++i) values.push_back(value_for(p.next_offset() + i, even_value_bytes));
  for (const std::string& v : values) messages.push_back(msg(ByteView(), v));
  Result<std::uint64_t> r = p.append_batch(messages);
  REQUIRE_MESSAGE(r.ok(), r.message());
}

} // namespace

TEST_SUITE("group") {
  TEST_CASE("a_new_member_resumes_at_the_committed_position_after_a_restart") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      REQUIRE(bus.create_topic(topic, persistent_small_ring(8)).ok());
      Producer p = bus.producer(topic).value();
      append_numbered(p, 200);
      GroupMember m = join(bus, "billing");
      CHECK(m.committed().code() == Errc::topic_not_found); // nothing committed yet
      CHECK(!std::filesystem::exists(dir.path() + "/groups/billing.offsets"));
      check_exactly(poll_member(m, 120), 0, 120);
      REQUIRE(m.ack().ok());
      REQUIRE(m.commit().ok());
      CHECK(committed_of(m) == 120);
      CHECK(std::filesystem::exists(dir.path() + "/groups/billing.offsets"));
      // In flight at the restart: delivered, never acknowledged nor committed.
      check_exactly(poll_member(m, 10), 120, 130);
    }
    CHECK((std::filesystem::status(dir.path() + "/groups").permissions() & std::filesystem::perms::all) ==
          std::filesystem::perms::owner_all);
    Bus bus = open_bus(dir.path(), no_flusher());
    GroupOptions latest;
    latest.start = StartPosition::latest; // a committed position wins over start
    GroupMember m = join(bus, "billing", latest);
    CHECK(position_of(m) == 120);
    CHECK(committed_of(m) == 120);
    check_exactly(drain_member(m, 7), 120, 200); // the in-flight ones again: at-least-once
    CHECK(position_of(m) == 200);
    // Another group starts where its options say.
    GroupMember other = join(bus, "audit");
    CHECK(position_of(other) == 0);
  }

  TEST_CASE("the_longest_consumer_and_group_names_commit_and_resume_and_one_byte_more_is_refused") {
    TempBusDir dir;
    const std::string consumer_name(limits::max_consumer_name_bytes, 'c');
    const std::string group_name(limits::max_group_name_bytes, 'g');
    ConsumerOptions co;
    co.name = consumer_name;
    co.topics = {topic};
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      REQUIRE(bus.create_topic(topic, persistent_small_ring(8)).ok());
      Producer p = bus.producer(topic).value();
      append_numbered(p, 30);
      Result<Consumer> c = bus.consumer(co);
      REQUIRE_MESSAGE(c.ok(), c.message());
      check_exactly(poll_once(*c, 10), 0, 10);
      REQUIRE(c->commit().ok());
      GroupMember m = join(bus, group_name);
      check_exactly(poll_member(m, 20), 0, 20);
      REQUIRE(m.ack().ok());
      REQUIRE(m.commit().ok());

      ConsumerOptions longer = co;
      longer.name += 'c';
      const Result<Consumer> refused = bus.consumer(longer);
      CHECK(refused.code() == Errc::invalid_argument);
      CHECK(contains(refused.message(), std::to_string(limits::max_consumer_name_bytes + 1) + " bytes"));
      CHECK(contains(refused.message(), "limit of 243 bytes"));
      const Result<GroupMember> refused_group = bus.group_member(group_name + 'g', topic);
      CHECK(refused_group.code() == Errc::invalid_argument);
      CHECK(contains(refused_group.message(), "limit of 243 bytes"));
    }
    Bus bus = open_bus(dir.path(), no_flusher());
    Result<Consumer> c = bus.consumer(co);
    REQUIRE_MESSAGE(c.ok(), c.message());
    check_exactly(drain(*c), 10, 30);
    GroupMember m = join(bus, group_name);
    check_exactly(drain_member(m), 20, 30);
  }

  TEST_CASE("a_commit_inside_a_batch_frame_resumes_at_the_next_record_of_that_frame") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      REQUIRE(bus.create_topic(topic, persistent_small_ring(8)).ok());
      Producer p = bus.producer(topic).value();
      append_numbered(p, 5);
      append_one_frame(p, 20); // offsets 5..24 in one frame
      append_numbered(p, 5);
      GroupMember m = join(bus, "g");
      check_exactly(poll_member(m, 9), 0, 9); // 4 records into the frame
      REQUIRE(m.ack().ok());
      REQUIRE(m.commit().ok());
      CHECK(committed_of(m) == 9);
    }
    for (int life = 0; life < 2; ++life) {
      CAPTURE(life);
      Bus bus = open_bus(dir.path(), no_flusher());
      GroupMember first = join(bus, "g");
      CHECK(position_of(first) == 9);
      if (life == 0) {
        // Closed without polling: the rest of the frame goes to the next member.
        REQUIRE(first.close().ok());
        GroupMember second = join(bus, "g");
        CHECK(position_of(second) == 9);
        check_exactly(drain_member(second, 3), 9, 30);
      } else {
        GroupMember second = join(bus, "g");
        std::vector<OwnedRecord> got = drain_member(first, 4);
        std::vector<OwnedRecord> more = drain_member(second);
        got.insert(got.end(), more.begin(), more.end());
        std::sort(got.begin(), got.end(),
                  [](const OwnedRecord& a, const OwnedRecord& b) { return a.offset < b.offset; });
        check_exactly(got, 9, 30);
      }
    }
  }

  TEST_CASE("auto_commit_commits_when_due_in_poll_and_at_close") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      REQUIRE(bus.create_topic(topic, persistent_small_ring(8)).ok());
      Producer p = bus.producer(topic).value();
      append_numbered(p, 100);
      GroupOptions o;
      o.auto_commit_interval = 1ms;
      GroupMember m = join(bus, "g", o);
      check_exactly(poll_member(m, 10), 0, 10);
      std::this_thread::sleep_for(2ms); // the interval has passed: the next poll commits
      check_exactly(poll_member(m, 10), 10, 20);
      CHECK(committed_of(m) == 10);
      check_exactly(poll_member(m, 30), 20, 50);
      // Closed without ack: the last poll's records go to another member, and
      // the committed position stays below them.
      REQUIRE(m.close().ok());
      GroupOptions hourly;
      hourly.auto_commit_interval = std::chrono::hours(1);
      GroupMember n = join(bus, "g", hourly);
      CHECK(committed_of(n) == 20);
      check_exactly(poll_member(n, 30), 20, 50); // handed over
      check_exactly(poll_member(n, 5), 50, 55);  // acknowledges 20..49
      // n's close commits 50 (55 is delivered, not acknowledged).
    }
    Bus bus = open_bus(dir.path(), no_flusher());
    GroupMember m = join(bus, "g");
    CHECK(position_of(m) == 50);
    check_exactly(drain_member(m), 50, 100);
  }

  TEST_CASE("two_members_committing_from_two_threads_leave_a_position_one_of_them_committed") {
    const std::uint64_t total = stress::scaled(3000, 600);
    TempBusDir dir;
    std::uint64_t final_committed = 0;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      REQUIRE(bus.create_topic(topic, persistent_small_ring(16)).ok());
      Producer p = bus.producer(topic).value();
      GroupMember a = join(bus, "g");
      GroupMember b = join(bus, "g");
      std::atomic<std::uint64_t> delivered{0};
      std::atomic<bool> failed{false};
      std::mutex seen_mutex;
      std::vector<std::uint64_t> seen_offsets;
      std::set<std::uint64_t> observed_commits;
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      // relaxed everywhere: flags and counts; the threads' results travel by
      // seen_mutex and join().
      const auto fail = [&failed] { failed.store(true, std::memory_order_relaxed); };
      const auto commit_and_read_back = [&](GroupMember& m, std::vector<std::uint64_t>& commits) {
        if (!m.commit().ok()) fail();
        Result<std::uint64_t> c = m.committed();
        if (!c.ok()) {
          fail();
        } else {
          commits.push_back(*c);
        }
      };
      const auto work = [&](GroupMember& m, std::uint64_t seed) {
        stress::Rng rng(seed);
        std::vector<std::uint64_t> mine;
        std::vector<std::uint64_t> commits;
        while (delivered.load(std::memory_order_relaxed) < total && !failed.load(std::memory_order_relaxed)) {
          if (std::chrono::steady_clock::now() > deadline) {
            fail();
            break;
          }
          Result<Records> r = m.poll(1 + rng.below(16), 1ms);
          if (!r.ok()) {
            fail();
            break;
          }
          for (const Record& rec : *r) {
            if (str(rec.value) != value_for(rec.offset, even_value_bytes)) fail();
            mine.push_back(rec.offset);
          }
          delivered.fetch_add(r->size(), std::memory_order_relaxed);
          if (rng.one_in(3)) commit_and_read_back(m, commits);
        }
        if (!m.ack().ok()) fail();
        commit_and_read_back(m, commits);
        std::lock_guard lock(seen_mutex);
        seen_offsets.insert(seen_offsets.end(), mine.begin(), mine.end());
        observed_commits.insert(commits.begin(), commits.end());
      };
      std::thread ta(work, std::ref(a), 1);
      std::thread tb(work, std::ref(b), 2);
      // try_append: a producer never waits past the deadline for members that gave up.
      for (std::uint64_t i = 0; i < total && !failed.load(std::memory_order_relaxed);) {
        const std::string v = value_for(i, even_value_bytes);
        Result<std::uint64_t> r = p.try_append(v);
        if (r.ok()) {
          ++i;
        } else if (r.code() != Errc::would_block || std::chrono::steady_clock::now() > deadline) {
          fail();
        } else {
          std::this_thread::yield();
        }
      }
      ta.join();
      tb.join();
      REQUIRE(!failed.load(std::memory_order_relaxed));
      // Each record went to exactly one member.
      std::sort(seen_offsets.begin(), seen_offsets.end());
      REQUIRE(seen_offsets.size() == total);
      for (std::uint64_t i = 0; i < total; ++i) REQUIRE(seen_offsets[i] == i);
      // The last commit's thread read its value back: the store holds one of
      // the values committed, the highest (commits never go back).
      final_committed = committed_of(a);
      CHECK(final_committed == committed_of(b));
      REQUIRE(!observed_commits.empty());
      CHECK(observed_commits.count(final_committed) == 1);
      CHECK(final_committed == *observed_commits.rbegin());
      CHECK(final_committed <= total);
    }
    Bus bus = open_bus(dir.path(), no_flusher());
    GroupMember m = join(bus, "g");
    CHECK(position_of(m) == final_committed);
    check_exactly(drain_member(m), final_committed, total);
  }

  TEST_CASE("a_resume_is_clamped_to_the_oldest_record_when_retention_deleted_the_committed_one") {
    TempBusDir dir;
    TopicOptions o = persistent_small_ring(4);
    o.retention.max_segments = 2;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      REQUIRE(bus.create_topic(topic, o).ok());
      Producer p = bus.producer(topic).value();
      append_numbered(p, 20);
      GroupMember m = join(bus, "g");
      check_exactly(poll_member(m, 10), 0, 10);
      REQUIRE(m.ack().ok());
      REQUIRE(m.commit().ok());
    }
    std::uint64_t oldest = 0;
    {
      // The group is not created in this life: nothing holds the records.
      Bus bus = open_bus(dir.path(), no_flusher());
      Producer p = bus.producer(topic).value();
      append_numbered(p, 300);
      oldest = bus.describe(topic).value().oldest_offset;
      REQUIRE(oldest > 10);
    }
    Bus bus = open_bus(dir.path(), no_flusher());
    GroupMember m = join(bus, "g");
    CHECK(committed_of(m) == 10); // what the store holds until the next commit
    CHECK(position_of(m) == oldest);
    check_exactly(drain_member(m), oldest, 320);
    REQUIRE(m.commit().ok());
    CHECK(committed_of(m) == 320);
  }

  TEST_CASE("a_resume_is_clamped_to_the_log_end_when_the_committed_position_is_past_it") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      REQUIRE(bus.create_topic(topic, persistent_small_ring(8)).ok());
      Producer p = bus.producer(topic).value();
      append_numbered(p, 40);
    }
    {
      // As after a crash that cut the log's tail below a committed position
      // (the log lost records the store had already passed).
      REQUIRE(open_offsets(dir, "groups", "g.offsets").commit(topic, 1000).ok());
    }
    Bus bus = open_bus(dir.path(), no_flusher());
    Producer p = bus.producer(topic).value();
    GroupMember m = join(bus, "g");
    CHECK(position_of(m) == 40);
    CHECK(poll_member(m).empty());
    append_numbered(p, 10);
    check_exactly(drain_member(m), 40, 50);
    // The first commit brings the stored position back to the truth.
    REQUIRE(m.commit().ok());
    CHECK(committed_of(m) == 50);
  }

  TEST_CASE("positions_committed_past_a_recovered_end_are_set_back_at_open_so_no_later_record_is_skipped") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      REQUIRE(bus.create_topic(topic, persistent_small_ring(8)).ok());
      REQUIRE(bus.create_topic("u", persistent_small_ring(8)).ok());
      Producer p = bus.producer(topic).value();
      append_numbered(p, 40);
    }
    {
      // As after a power loss that cut the log's tail below positions a group
      // and a named consumer had committed (their stores were synced, the
      // log's last pages were not). Topic u's entry is within its end (0).
      const detail::OffsetUpdate updates[] = {{topic, 1000, false}, {"u", 0, false}, {"gone", 7, false}};
      REQUIRE(open_offsets(dir, "groups", "g.offsets").commit(updates).ok());
      REQUIRE(open_offsets(dir, "consumers", "billing.offsets").commit(updates).ok());
    }
    Bus bus = open_bus(dir.path(), no_flusher());
    Producer p = bus.producer(topic).value();
    append_numbered(p, 10); // offsets 40..49: the ones the old commits claimed were read
    GroupMember m = join(bus, "g");
    CHECK(committed_of(m) == 40);
    CHECK(position_of(m) == 40);
    check_exactly(drain_member(m), 40, 50);
    ConsumerOptions co;
    co.name = "billing";
    co.topics = {topic};
    Consumer c = bus.consumer(co).value();
    CHECK(c.committed(topic).value() == 40);
    CHECK(c.position(topic).value() == 40);
    check_exactly(drain(c), 40, 50);
    // Entries within their topic's end, and of topics not in the bus, are kept.
    const detail::OffsetStore store = open_offsets(dir, "groups", "g.offsets");
    CHECK(store.committed("u") == std::optional<std::uint64_t>(0));
    CHECK(store.committed("gone") == std::optional<std::uint64_t>(7));
  }

  TEST_CASE("a_group_and_a_named_consumer_of_the_same_name_and_a_group_in_two_topics_keep_apart") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      REQUIRE(bus.create_topic(topic, persistent_small_ring(8)).ok());
      REQUIRE(bus.create_topic("u", persistent_small_ring(8)).ok());
      Producer p = bus.producer(topic).value();
      Producer q = bus.producer("u").value();
      append_numbered(p, 60);
      append_numbered(q, 60);
      ConsumerOptions co;
      co.name = "billing";
      co.topics = {topic};
      Consumer c = bus.consumer(co).value();
      REQUIRE(c.poll(20).value().size() == 20);
      REQUIRE(c.commit().ok());
      GroupMember in_t = join(bus, "billing");
      GroupMember in_u = join(bus, "billing", {}, "u");
      check_exactly(poll_member(in_t, 35), 0, 35);
      REQUIRE(in_t.ack().ok());
      REQUIRE(in_t.commit().ok());
      check_exactly(poll_member(in_u, 12), 0, 12);
      REQUIRE(in_u.ack().ok());
      REQUIRE(in_u.commit().ok()); // keeps the entry of topic t
      CHECK(committed_of(in_t) == 35);
      CHECK(committed_of(in_u) == 12);
    }
    Bus bus = open_bus(dir.path(), no_flusher());
    ConsumerOptions co;
    co.name = "billing";
    co.topics = {topic};
    Consumer c = bus.consumer(co).value();
    CHECK(c.position(topic).value() == 20);
    CHECK(position_of(join(bus, "billing")) == 35);
    CHECK(position_of(join(bus, "billing", {}, "u")) == 12);
  }

  TEST_CASE("commit_on_an_in_memory_topic_or_bus_says_why_naming_the_group") {
    {
      Bus bus;
      REQUIRE(bus.create_topic(topic, small_ring(4)).ok());
      GroupMember m = join(bus, "g");
      const Status st = m.commit();
      CHECK(st.code() == Errc::invalid_argument);
      CHECK(contains(st.message(), "group 'g' in topic 't'"));
      CHECK(contains(st.message(), "the bus is in memory"));
      CHECK(m.committed().code() == Errc::invalid_argument);
      GroupOptions o;
      o.auto_commit_interval = 5ms;
      Result<GroupMember> auto_member = bus.group_member("g", topic, o);
      CHECK(auto_member.code() == Errc::invalid_argument);
      CHECK(contains(auto_member.message(), "auto_commit_interval"));
      o.auto_commit_interval = -5ms;
      Result<GroupMember> negative = bus.group_member("g", topic, o);
      CHECK(negative.code() == Errc::invalid_argument);
      CHECK(contains(negative.message(), "auto_commit_interval -5 ms is negative"));
    }
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      TopicOptions memory = small_ring(4);
      memory.storage = Storage::memory;
      REQUIRE(bus.create_topic("m", memory).ok());
      REQUIRE(bus.create_topic(topic, persistent_small_ring(8)).ok());
      GroupMember m = join(bus, "g", {}, "m");
      const Status st = m.commit();
      CHECK(st.code() == Errc::invalid_argument);
      CHECK(contains(st.message(), "group 'g' in topic 'm'"));
      CHECK(contains(st.message(), "the topic is in memory"));
    }
    BusOptions ro = no_flusher();
    ro.read_only = true;
    Bus reader = open_bus(dir.path(), ro);
    // A read-only bus follows another process's writer: no groups there at all.
    Result<GroupMember> follower = reader.group_member("g", topic);
    CHECK(follower.code() == Errc::invalid_argument);
    CHECK(contains(follower.message(), "read-only"));
    // Its own in-memory topics take groups, but no commits.
    TopicOptions memory = small_ring(4);
    memory.storage = Storage::memory;
    REQUIRE(reader.create_topic("m", memory).ok());
    GroupMember m = join(reader, "g", {}, "m");
    CHECK(m.commit().code() == Errc::invalid_argument);
  }

  TEST_CASE("a_member_closed_after_its_bus_says_its_auto_commit_was_not_made") {
    TempBusDir dir;
    Bus bus = open_bus(dir.path(), no_flusher());
    REQUIRE(bus.create_topic(topic, persistent_small_ring(8)).ok());
    Producer p = bus.producer(topic).value();
    append_numbered(p, 10);
    GroupOptions o;
    o.auto_commit_interval = std::chrono::hours(1);
    GroupMember m = join(bus, "g", o);
    check_exactly(poll_member(m), 0, 10);
    bus.close();
    const Status st = m.close();
    CHECK(st.code() == Errc::closed);
    CHECK(contains(st.message(), "group 'g' in topic 't'"));
    CHECK(!m.is_open());
  }
}

// --- a child process killed while committing ------------------------------------------

namespace {

enum class Note : std::uint64_t { commit_begun = 1, commit_done = 2 };
constexpr std::uint64_t note_word(Note n, std::uint64_t value) { return (static_cast<std::uint64_t>(n) << 62) | value; }

void child_note(int fd, Note n, std::uint64_t value) { child_write_note(fd, note_word(n, value)); }

// The child: appends a few records, polls them all with a member of group
// "g" and commits its position, in a loop, telling the parent each value
// before and after its commit. armed: the crash hook is set (to fire inside
// the commit) after `warmup` commits.
struct ChildPlan {
  std::string dir;
  std::uint64_t seed = 0;
  bool armed = false;
  std::uint64_t warmup = 0;
  platform::testing::CrashCall call = platform::testing::CrashCall::write;
  platform::testing::CrashPoint point = platform::testing::CrashPoint::before;
};

[[noreturn]] void child_main(const ChildPlan& plan, int fd) {
  try {
    Result<Bus> bus = Bus::open(plan.dir, no_flusher());
    if (!bus.ok()) child_fail("Bus::open: " + std::string(bus.message()));
    Result<Producer> p = bus->producer(topic);
    if (!p.ok()) child_fail("producer: " + std::string(p.message()));
    Result<GroupMember> m = bus->group_member("g", topic);
    if (!m.ok()) child_fail("group_member: " + std::string(m.message()));
    stress::Rng rng(plan.seed);
    for (std::uint64_t commits = 0;; ++commits) {
      const std::uint64_t n = 1 + rng.below(6);
      for (std::uint64_t i = 0; i < n; ++i) {
        const std::uint64_t at = p->next_offset();
        if (Result<std::uint64_t> r = p->append(value_for(at, even_value_bytes)); !r.ok()) {
          child_fail("append: " + std::string(r.message()));
        }
      }
      for (;;) {
        Result<Records> r = m->poll(1 + rng.below(8));
        if (!r.ok()) child_fail("poll: " + std::string(r.message()));
        for (const Record& rec : *r) {
          if (str(rec.value) != value_for(rec.offset, even_value_bytes)) child_fail("a record's content differs");
        }
        if (r->empty()) break;
      }
      Result<std::uint64_t> at = m->position();
      if (!at.ok()) child_fail("position: " + std::string(at.message()));
      if (plan.armed && commits == plan.warmup) platform::testing::kill_at_call(plan.call, 1, plan.point);
      child_note(fd, Note::commit_begun, *at);
      if (Status st = m->commit(); !st.ok()) child_fail("commit: " + std::string(st.message()));
      if (plan.armed && commits == plan.warmup) child_fail("the armed crash hook did not fire in the commit");
      child_note(fd, Note::commit_done, *at);
    }
  } catch (const std::exception& e) {
    child_fail(std::string("exception: ") + e.what());
  }
}

struct Heard {
  std::optional<std::uint64_t> done;
  std::optional<std::uint64_t> begun; // begun and not reported done
  std::uint64_t commits = 0;
};

// Forks the child, reads its notes until it has committed `commits` times (then
// kills it) or dies by its own hook; returns what it heard. The child must die
// of SIGKILL.
Heard run_child(const ChildPlan& plan, std::uint64_t commits) {
  const auto [pid, read_fd] = fork_with_pipe([&plan](int fd) { child_main(plan, fd); });
  Heard heard;
  bool killed = false;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    if (!killed && (heard.commits >= commits || std::chrono::steady_clock::now() > deadline)) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    pollfd pfd{read_fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, 100);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    std::array<std::uint64_t, 256> words{};
    const ssize_t got = ::read(read_fd, words.data(), sizeof words);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break; // the child is gone
    for (ssize_t i = 0; i < got / 8; ++i) {
      const std::uint64_t w = words[static_cast<std::size_t>(i)];
      const std::uint64_t value = w & ((std::uint64_t{1} << 62) - 1);
      if (static_cast<Note>(w >> 62) == Note::commit_begun) {
        heard.begun = value;
      } else {
        heard.done = value;
        heard.begun.reset();
        ++heard.commits;
      }
    }
  }
  ::close(read_fd);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (WIFEXITED(status)) FAIL("the child exited with code " << WEXITSTATUS(status) << " (its message is above)");
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
  return heard;
}

// After a kill: the stored position is one the child committed (the last one
// done, or the one in progress), and the group resumes exactly there.
std::uint64_t check_after_kill(const TempBusDir& dir, const Heard& heard, std::optional<std::uint64_t> before,
                               bool must_be_old) {
  Bus bus = open_bus(dir.path(), no_flusher());
  GroupMember m = join(bus, "g");
  const std::optional<std::uint64_t> old = heard.done.has_value() ? heard.done : before;
  Result<std::uint64_t> committed = m.committed();
  if (!committed.ok()) {
    CHECK(committed.code() == Errc::topic_not_found);
    CHECK(!old.has_value()); // nothing was ever committed
    return 0;
  }
  const bool is_old = old.has_value() && *committed == *old;
  const bool is_new = heard.begun.has_value() && *committed == *heard.begun;
  CAPTURE(*committed);
  CHECK((is_old || (is_new && !must_be_old)));
  const std::uint64_t end = bus.describe(topic).value().end_offset;
  CHECK(*committed <= end);
  CHECK(position_of(m) == *committed);
  check_exactly(drain_member(m), *committed, end);
  return *committed;
}

} // namespace

TEST_SUITE("group") {
  TEST_CASE("a_child_killed_while_committing_leaves_a_position_it_committed_never_garbage") {
    const std::uint64_t seed = stress::test_seed();
    stress::Rng rng(stress::mix64(seed ^ 0x6709));
    INFO("RINGBUS_TEST_SEED=" << seed);
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      REQUIRE(bus.create_topic(topic, persistent_small_ring(8)).ok());
    }
    std::optional<std::uint64_t> last;
    const std::uint64_t rounds = stress::scaled(8, 3);
    for (std::uint64_t round = 0; round < rounds; ++round) {
      CAPTURE(round);
      ChildPlan plan;
      plan.dir = dir.path();
      plan.seed = rng.next();
      const Heard heard = run_child(plan, 1 + rng.below(40));
      last = check_after_kill(dir, heard, last, false);
    }
    // Forced points inside a commit: a torn or unwritten slot keeps the old
    // position; once the slot is written (page cache) the new one is there.
    using platform::testing::CrashCall;
    using platform::testing::CrashPoint;
    struct Point {
      const char* name;
      CrashCall call;
      CrashPoint point;
      bool keeps_old;
    };
    const std::array<Point, 4> points{{
        {"before the slot is written", CrashCall::write, CrashPoint::before, true},
        {"with half the slot written", CrashCall::write, CrashPoint::torn, true},
        {"before the fdatasync", CrashCall::sync, CrashPoint::before, false},
        {"after the fdatasync", CrashCall::sync, CrashPoint::after, false},
    }};
    for (const Point& pt : points) {
      const std::string point_name = pt.name;
      CAPTURE(point_name);
      ChildPlan plan;
      plan.dir = dir.path();
      plan.seed = rng.next();
      plan.armed = true;
      plan.warmup = 1 + rng.below(5);
      plan.call = pt.call;
      plan.point = pt.point;
      const Heard heard = run_child(plan, UINT64_MAX);
      REQUIRE(heard.begun.has_value());
      const std::uint64_t now = check_after_kill(dir, heard, last, pt.keeps_old);
      if (!pt.keeps_old) CHECK(now == *heard.begun);
      last = now;
    }
  }
}
