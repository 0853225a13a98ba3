// Crash recovery of persistent topics, tested the way crashes happen: a child
// process (fork) appends to a topic and is killed with SIGKILL, at random
// moments and at forced points (inside a claim, inside a segment roll, inside
// an offset commit). After each kill the parent reopens the same directory
// (so later kills test the recovery of a recovered log) and checks: every
// record the child acknowledged is there, byte for byte; offsets run
// contiguously from the oldest held; nothing beyond what the child could have
// written is delivered, and a drain simply ends; the producer resumes at
// exactly the end. Forced points use the crash hooks of platform/files.hpp
// (testing::kill_at_call): a kill at a chosen rename, remove, sync or write
// (whole, or torn in half), while a topic is made, a segment rolls or an
// offset is committed. Then Kafka-style tail damage: bytes after the tail's
// valid end, a flipped byte inside the last frame, and a newer segment after
// one left unsealed (a batch whose first word was never stored).
//
// RINGBUS_CRASH_KILLS=n sets the random kills (default 400, 100 under
// RINGBUS_TEST_SCALE=small); RINGBUS_TEST_SEED=n replays a run.
//
// A process crash (not a power loss) keeps everything that reached the page
// cache, so under every durability policy an acknowledged record is present.
//
// Every record's content follows from its offset (Derived below), so a record
// from any life of the directory (a child, the parent) can be checked alone.
//
// fork() is called only while the parent has no other thread (tsan): every
// Bus of the parent, and with it its flusher thread, is closed before a fork.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "detail/topic_store.hpp"
#include "persist_support.hpp"
#include "platform/files.hpp"
#include "ringbus/detail/frame_layout.hpp"
#include "ringbus/detail/segment_index.hpp"
#include "ringbus/detail/segment_layout.hpp"
#include "stress_support.hpp"
#include "test_support.hpp"

using namespace ringbus;
using namespace ringbus::test;
using platform::testing::CrashCall;
using platform::testing::CrashPoint;

namespace {

constexpr const char* topic = "t";
constexpr std::size_t max_value_bytes = 300;
constexpr std::size_t max_batch = 12; // records one producer call appends at most
// A ring of 4 KiB segments holds at least 7 whole segments behind the writer;
// one holds at least 9 records of at most ~380 bytes each.
constexpr std::uint64_t min_records_held = 60;

TopicOptions crash_ring(Durability durability, OverflowPolicy overflow = OverflowPolicy::block) {
  TopicOptions o = small_ring(8, overflow);
  o.durability = durability;
  o.flush_interval = std::chrono::milliseconds(1);
  o.flush_bytes = 2048;
  return o;
}

// --- records whose content follows from their offset ------------------------------

std::size_t value_size_for(std::uint64_t offset) { return stress::mix64(offset) % max_value_bytes; }
bool has_header(std::uint64_t offset) { return offset % 3 == 0; }
std::int64_t timestamp_for(std::uint64_t offset) { return static_cast<std::int64_t>(1000 * (offset + 1)); }

// The one record that belongs at an offset, whoever appends it. Not movable:
// its header and message view its own members.
struct Derived {
  explicit Derived(std::uint64_t o) : offset(o), key(key_for(o)), value(value_for(o, value_size_for(o))) {
    std::memcpy(header_value.data(), &offset, sizeof offset);
    header = Header{ByteView("o"), ByteView(header_value.data(), header_value.size())};
  }
  Derived(const Derived&) = delete;
  Derived& operator=(const Derived&) = delete;

  [[nodiscard]] Message message() const {
    return msg(key, value, timestamp_for(offset),
               has_header(offset) ? std::span<const Header>(&header, 1) : std::span<const Header>());
  }
  [[nodiscard]] OwnedRecord owned() const {
    OwnedRecord r;
    r.topic = topic;
    r.offset = offset;
    r.timestamp_ns = timestamp_for(offset);
    r.key = key;
    r.value = value;
    if (has_header(offset)) r.headers.emplace_back("o", std::string(header_value.data(), header_value.size()));
    return r;
  }

  std::uint64_t offset;
  std::string key;
  std::string value;
  std::array<char, 8> header_value{};
  Header header;
};

// --- what the child tells the parent ------------------------------------------------

// One 8-byte word per note through a pipe (atomic: below PIPE_BUF): the kind
// in the top two bits, an offset below.
enum class Note : std::uint64_t {
  appended = 0,     // a producer call returned: this is the offset of its last record
  commit_begun = 1, // commit() is called with this position
  commit_done = 2,  // commit() returned ok with this position
  claim_open = 3,   // a claim at this offset is open (written in part or whole), never to be committed
};
constexpr std::uint64_t note_word(Note n, std::uint64_t value) { return (static_cast<std::uint64_t>(n) << 62) | value; }

// What the parent heard from one child.
struct Heard {
  std::optional<std::uint64_t> last_appended;
  std::optional<std::uint64_t> commit_done;
  std::optional<std::uint64_t> commit_begun; // begun and not (yet) reported done
  std::optional<std::uint64_t> claim_open;
  std::uint64_t notes = 0;

  void take(std::uint64_t word) {
    ++notes;
    const std::uint64_t value = word & ((std::uint64_t{1} << 62) - 1);
    switch (static_cast<Note>(word >> 62)) {
      case Note::appended: last_appended = value; break;
      case Note::commit_begun: commit_begun = value; break;
      case Note::commit_done:
        commit_done = value;
        commit_begun.reset();
        break;
      case Note::claim_open: claim_open = value; break;
    }
  }
};

// --- the child ------------------------------------------------------------------------

enum class ChildMode : std::uint8_t {
  append_loop,  // append (and maybe commit) until killed
  claim_half,   // after `warmup` calls: claim, write half the value, report, wait to be killed
  claim_full,   // after `warmup` calls: claim, write all of it, report, never commit
  armed,        // after `warmup` calls: arm the crash hook and append until it fires
  commit_armed, // after `warmup` calls: poll to the end, report, arm the hook, commit
};

struct ChildPlan {
  std::string dir;
  TopicOptions options;
  bool flusher = false;
  bool commits = false; // a named consumer polls to the end and commits now and then
  ChildMode mode = ChildMode::append_loop;
  std::uint64_t seed = 0;
  std::uint64_t warmup = 0;
  CrashCall call = CrashCall::rename;
  int nth = 1;
  CrashPoint point = CrashPoint::before;
  bool arm_before_open = false; // armed: arm the hook before Bus::open (then `warmup` is ignored)
};

constexpr const char* consumer_name = "auditor";
constexpr std::uint64_t armed_call_limit = 200'000; // an armed hook that never fires is a failure

void child_note(int fd, Note n, std::uint64_t value) { child_write_note(fd, note_word(n, value)); }

// One producer call of a random kind (single, batch, claim); returns the offset of its last record.
std::uint64_t append_some(Producer& p, stress::Rng& rng) {
  const std::uint64_t at = p.next_offset();
  Result<std::uint64_t> r = Status(Errc::invalid_argument, "no call made");
  std::uint64_t records = 1;
  const std::uint64_t kind = rng.below(4);
  if (kind == 2) {
    records = 1 + rng.below(max_batch);
    std::vector<std::unique_ptr<Derived>> owned;
    std::vector<Message> messages;
    for (std::uint64_t i = 0; i < records; ++i) {
      owned.push_back(std::make_unique<Derived>(at + i));
      messages.push_back(owned.back()->message());
    }
    r = p.append_batch(messages);
  } else if (kind == 3 && !has_header(at)) { // a claim carries no headers
    const Derived d(at);
    Result<Claim> c = p.claim(d.value.size(), d.key.size());
    if (!c.ok()) child_fail("claim at offset " + std::to_string(at) + ": " + std::string(c.message()));
    std::memcpy(c->key().data(), d.key.data(), d.key.size());
    if (!d.value.empty()) std::memcpy(c->value().data(), d.value.data(), d.value.size());
    c->set_timestamp(timestamp_for(at));
    r = c->commit();
  } else {
    const Derived d(at);
    r = p.append(d.message());
  }
  if (!r.ok()) child_fail("append at offset " + std::to_string(at) + ": " + std::string(r.message()));
  if (*r != at) child_fail("append returned offset " + std::to_string(*r) + ", expected " + std::to_string(at));
  return at + records - 1;
}

// Polls the named consumer to the end and returns its position.
std::uint64_t catch_up(Consumer& c) {
  for (;;) {
    Result<Records> r = c.poll(SIZE_MAX);
    if (!r.ok()) child_fail("poll: " + std::string(r.message()));
    if (r->empty()) break;
  }
  Result<std::uint64_t> at = c.position(topic);
  if (!at.ok()) child_fail("position: " + std::string(at.message()));
  return *at;
}

// Holds an open claim at the next offset (half or all of it written) and waits to be killed.
[[noreturn]] void hold_claim(Producer& p, bool whole, int fd) {
  const std::uint64_t at = p.next_offset();
  const Derived d(at);
  const std::size_t value_bytes = std::max<std::size_t>(d.value.size(), 64);
  const std::string value = value_for(at, value_bytes);
  Result<Claim> c = p.claim(value_bytes, d.key.size());
  if (!c.ok()) child_fail("claim: " + std::string(c.message()));
  std::memcpy(c->key().data(), d.key.data(), d.key.size());
  std::memcpy(c->value().data(), value.data(), whole ? value_bytes : value_bytes / 2);
  if (whole) c->set_timestamp(timestamp_for(at));
  child_note(fd, Note::claim_open, at);
  for (;;) ::pause(); // until SIGKILL
}

[[noreturn]] void child_main(const ChildPlan& plan, int fd) {
  try {
    if (plan.mode == ChildMode::armed && plan.arm_before_open) {
      platform::testing::kill_at_call(plan.call, plan.nth, plan.point);
    }
    BusOptions bo;
    bo.flusher_thread = plan.flusher;
    Result<Bus> bus = Bus::open(plan.dir, bo);
    if (!bus.ok()) child_fail("Bus::open: " + std::string(bus.message()));
    if (!bus->has_topic(topic)) {
      if (Status st = bus->create_topic(topic, plan.options); !st.ok()) {
        child_fail("create_topic: " + std::string(st.message()));
      }
    }
    Result<Producer> p = bus->producer(topic);
    if (!p.ok()) child_fail("producer: " + std::string(p.message()));
    std::optional<Consumer> auditor;
    if (plan.commits) {
      ConsumerOptions co;
      co.name = consumer_name;
      co.topics = {topic};
      Result<Consumer> c = bus->consumer(co);
      if (!c.ok()) child_fail("named consumer: " + std::string(c.message()));
      auditor.emplace(std::move(*c));
    }
    stress::Rng rng(plan.seed);
    for (std::uint64_t calls = 0;; ++calls) {
      if (calls == plan.warmup) {
        switch (plan.mode) {
          case ChildMode::append_loop: break;
          case ChildMode::claim_half: hold_claim(*p, false, fd);
          case ChildMode::claim_full: hold_claim(*p, true, fd);
          case ChildMode::armed:
            if (!plan.arm_before_open) platform::testing::kill_at_call(plan.call, plan.nth, plan.point);
            break;
          case ChildMode::commit_armed: {
            const std::uint64_t at = catch_up(*auditor);
            child_note(fd, Note::commit_begun, at);
            platform::testing::kill_at_call(plan.call, plan.nth, plan.point);
            const Status st = auditor->commit();
            child_fail("commit returned (" + std::string(st.message()) + ") where the armed hook should have fired");
          }
        }
      }
      if (plan.mode == ChildMode::armed && calls > plan.warmup + armed_call_limit) {
        child_fail("the armed crash hook never fired");
      }
      // The named consumer reads along (it must: a block topic waits for it,
      // from the committed offset it resumed at) and commits now and then.
      if (auditor) (void)catch_up(*auditor);
      child_note(fd, Note::appended, append_some(*p, rng));
      if (auditor) {
        const std::uint64_t at = catch_up(*auditor);
        if (!rng.one_in(8)) continue;
        child_note(fd, Note::commit_begun, at);
        if (Status st = auditor->commit(); !st.ok()) child_fail("commit: " + std::string(st.message()));
        child_note(fd, Note::commit_done, at);
      }
    }
  } catch (const std::exception& e) {
    child_fail(std::string("exception: ") + e.what());
  }
}

// --- the parent --------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;

// A child process and the read end of its pipe. A test that stops early
// (a failed REQUIRE) still kills and reaps it: no orphan keeps appending.
struct Child {
  Child(pid_t p, int f) noexcept : pid(p), fd(f) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (fd >= 0) ::close(fd);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      int status = 0;
      (void)::waitpid(pid, &status, 0);
    }
  }
  pid_t pid = -1;
  int fd = -1;
};

std::unique_ptr<Child> spawn(const ChildPlan& plan) {
  const auto [pid, read_fd] = fork_with_pipe([&plan](int fd) { child_main(plan, fd); });
  return std::make_unique<Child>(pid, read_fd);
}

// Reads notes until `until`, until stop(heard) holds, or until the child's end
// of the pipe closes. Returns false on the close (the child died or exited).
template <class Stop>
bool listen(const Child& c, Heard& heard, Clock::time_point until, Stop stop) {
  for (;;) {
    if (stop(heard)) return true;
    const auto left = until - Clock::now();
    if (left <= Clock::duration::zero()) return true;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec timeout{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    pollfd pfd{c.fd, POLLIN, 0};
    const int ready = ::ppoll(&pfd, 1, &timeout, nullptr);
    if (ready < 0 && errno == EINTR) continue;
    REQUIRE(ready >= 0);
    if (ready == 0) continue;
    std::array<std::uint64_t, 512> words{};
    const ssize_t got = ::read(c.fd, words.data(), sizeof words);
    if (got < 0 && errno == EINTR) continue;
    REQUIRE(got >= 0);
    if (got == 0) return false;
    REQUIRE(got % 8 == 0); // each note is one atomic 8-byte write
    for (ssize_t i = 0; i < got / 8; ++i) heard.take(words[static_cast<std::size_t>(i)]);
  }
}

bool never(const Heard&) { return false; }

// Kills the child (if still alive), reads its last notes and reaps it. The
// child must have died of SIGKILL (ours or its own hook's); an exit is its failure.
void kill_and_reap(Child& c, Heard& heard) {
  ::kill(c.pid, SIGKILL);
  while (listen(c, heard, Clock::now() + std::chrono::seconds(30), never)) {
  }
  ::close(std::exchange(c.fd, -1));
  int status = 0;
  REQUIRE(::waitpid(std::exchange(c.pid, -1), &status, 0) > 0);
  if (WIFEXITED(status)) FAIL("the child exited with code " << WEXITSTATUS(status) << " (its message is above)");
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
}

// Waits (bounded) for a child whose own hook kills it, then reaps it.
void await_self_kill(Child& c, Heard& heard) {
  const bool still_open = listen(c, heard, Clock::now() + std::chrono::seconds(60), never);
  if (still_open) MESSAGE("the child's armed crash hook did not fire within 60 s; killing it");
  CHECK(!still_open);
  kill_and_reap(c, heard);
}

// What the parent knows of a directory between kills.
struct Model {
  TopicOptions options;  // what the topic is created with
  std::uint64_t end = 0; // end_offset after the last check (and the parent's own append)
  std::optional<std::uint64_t> committed;
  std::uint64_t kills = 0;
};

struct Expect {
  std::optional<std::uint64_t> exact_end;       // a forced point: the log ends exactly here
  std::optional<std::uint64_t> exact_committed; // a forced commit point: this offset is stored
  bool committed_is_old = false;                // a forced commit point: the old offset stays
};

// Every file in the topic's directory belongs there: topic.meta, segments,
// indexes of segments that exist, and the stats file.
void check_topic_files(const TempBusDir& dir) {
  std::vector<std::string> stray;
  const std::string tdir = dir.topic_dir(topic);
  for (const auto& e : std::filesystem::directory_iterator(tdir)) {
    const std::string name = e.path().filename().string();
    // stats: the live counters file (README "Statistics").
    if (name == "topic.meta" || name == "stats" || e.path().extension() == ".seg") continue;
    if (e.path().extension() == ".idx" &&
        std::filesystem::exists(tdir + "/" + e.path().stem().string() + std::string(detail::segment_file_suffix))) {
      continue;
    }
    stray.push_back(name);
  }
  if (!stray.empty()) {
    std::string all;
    for (const std::string& s : stray) all += " " + s;
    FAIL_CHECK("files left behind in " << tdir << ":" << all);
  }
}

// The checks after a kill; then the parent appends the next record itself.
void check_recovered(const TempBusDir& dir, const Heard& heard, Model& model, const Expect& expect = {}) {
  Bus bus = open_bus(dir.path(), BusOptions{false, false});
  if (!bus.has_topic(topic)) {
    // Killed before the topic was made: nothing can have been acknowledged,
    // and the name is free (a half-made topic left behind is not in the way).
    REQUIRE(!heard.last_appended.has_value());
    REQUIRE(model.end == 0);
    const Status created = bus.create_topic(topic, model.options);
    REQUIRE_MESSAGE(created.ok(), created.message());
    bus.close();
    check_topic_files(dir);
    return;
  }
  Result<TopicInfo> info = bus.describe(topic);
  REQUIRE_MESSAGE(info.ok(), info.message());
  INFO("after kill " << model.kills << ": oldest " << info->oldest_offset << ", end " << info->end_offset
                     << ", model end " << model.end << ", last acknowledged "
                     << (heard.last_appended ? std::to_string(*heard.last_appended) : std::string("none")));
  REQUIRE_MESSAGE(info->failure.empty(), info->failure);
  const std::uint64_t acknowledged_end = heard.last_appended ? *heard.last_appended + 1 : model.end;
  REQUIRE(acknowledged_end >= model.end);
  // Every acknowledged record is there; beyond them, at most the records of the
  // one call the child made but did not get to report.
  REQUIRE(info->end_offset >= acknowledged_end);
  REQUIRE(info->end_offset <= acknowledged_end + max_batch);
  if (expect.exact_end) REQUIRE(info->end_offset == *expect.exact_end);
  REQUIRE(info->oldest_offset <= info->end_offset);
  REQUIRE((info->oldest_offset == 0 || info->end_offset - info->oldest_offset >= min_records_held));
  {
    Result<Consumer> c = bus.consumer(topic);
    REQUIRE_MESSAGE(c.ok(), c.message());
    const std::vector<OwnedRecord> got = drain(*c);
    REQUIRE(got.size() == info->end_offset - info->oldest_offset);
    for (std::size_t i = 0; i < got.size(); ++i) {
      const Derived want(info->oldest_offset + i);
      if (!(got[i] == want.owned())) {
        FAIL("record " << i << " of the drain is " << got[i] << ", expected " << want.owned()
                       << (got[i].offset == want.offset ? " (same offset, other bytes)" : ""));
      }
    }
    REQUIRE(c->close().ok());
  }
  if (expect.exact_committed || expect.committed_is_old || heard.commit_begun || heard.commit_done || model.committed) {
    ConsumerOptions co;
    co.name = consumer_name;
    co.topics = {topic};
    Result<Consumer> c = bus.consumer(co);
    REQUIRE_MESSAGE(c.ok(), c.message());
    Result<std::uint64_t> stored = c->committed(topic);
    const std::optional<std::uint64_t> old = heard.commit_done ? heard.commit_done : model.committed;
    std::optional<std::uint64_t> now;
    if (stored.ok()) now = *stored;
    INFO("committed " << (now ? std::to_string(*now) : std::string("none")) << ", last done "
                      << (old ? std::to_string(*old) : std::string("none")) << ", begun "
                      << (heard.commit_begun ? std::to_string(*heard.commit_begun) : std::string("none")));
    if (!stored.ok()) REQUIRE(stored.code() == Errc::topic_not_found);
    if (expect.exact_committed) {
      REQUIRE(now == expect.exact_committed);
    } else if (expect.committed_is_old) {
      REQUIRE(now == old);
    } else {
      REQUIRE((now == old || (heard.commit_begun && now == heard.commit_begun)));
    }
    if (now) REQUIRE(*now <= info->end_offset);
    model.committed = now;
    REQUIRE(c->close().ok());
  }
  Result<Producer> p = bus.producer(topic);
  REQUIRE_MESSAGE(p.ok(), p.message());
  REQUIRE(p->next_offset() == info->end_offset);
  const Derived next(info->end_offset);
  Result<std::uint64_t> r = p->append(next.message());
  REQUIRE_MESSAGE(r.ok(), r.message());
  REQUIRE(*r == info->end_offset);
  model.end = info->end_offset + 1;
  REQUIRE(p->close().ok());
  bus.close();
  check_topic_files(dir);
}

std::uint64_t env_kills() {
  const char* v = std::getenv("RINGBUS_CRASH_KILLS");
  return v != nullptr ? std::strtoull(v, nullptr, 10) : 0;
}

// A random pause in [0, 20 ms), spread over decades so that short and long
// runs of appends (many ring laps) are both common.
std::chrono::nanoseconds random_delay(stress::Rng& rng) {
  static constexpr std::array<std::uint64_t, 4> spans{50'000, 500'000, 5'000'000, 20'000'000};
  return std::chrono::nanoseconds(rng.below(spans[rng.below(spans.size())]));
}

struct LoopConfig {
  const char* name;
  Durability durability;
  bool flusher;
  bool commits;
  OverflowPolicy overflow = OverflowPolicy::block;
  bool sealed = false; // the flusher seals crash_ring's 4 KiB segments (testing::seal_segments_from)
};

} // namespace

TEST_SUITE("topic_store_crash") {
  TEST_CASE("a_process_killed_at_random_keeps_every_acknowledged_record_and_resumes_at_the_end") {
    const std::uint64_t requested = env_kills();
    const std::uint64_t total = requested != 0 ? requested : stress::scaled(400, 100);
    if (requested == 0 && stress::small_scale()) {
      MESSAGE("RINGBUS_TEST_SCALE=small: " << total << " kills (400 at full scale; RINGBUS_CRASH_KILLS=n for more)");
    }
    // "sealed segments": the flusher seals the segments (segment_layout.hpp),
    // so the recoveries after later kills take its seals for their walks.
    const std::array<LoopConfig, 6> configs{{
        {"none", Durability::none, false, true},
        {"interval+flusher", Durability::interval, true, false},
        {"sync", Durability::sync, false, true},
        {"none+flusher", Durability::none, true, true},
        {"overwrite", Durability::none, false, false, OverflowPolicy::overwrite},
        {"none+flusher, sealed segments", Durability::none, true, true, OverflowPolicy::block, true},
    }};
    const std::uint64_t seed = stress::test_seed();
    const auto started = Clock::now();
    for (std::size_t k = 0; k < configs.size(); ++k) {
      const LoopConfig& config = configs[k];
      const std::string config_name = config.name;
      const std::uint64_t kills = total / configs.size() + (k < total % configs.size() ? 1 : 0);
      TempBusDir dir;
      Model model;
      stress::Rng rng(stress::mix64(seed + k));
      std::uint64_t early = 0;
      const SealEverySegment seal_every_segment(config.sealed); // before any child is forked
      std::size_t seals_seen = 0;                               // segments held with a seal, after each kill
      std::size_t seals_trusted = 0; // recoveries of 3 segments or more that walked fewer than 2
      for (std::uint64_t i = 0; i < kills; ++i) {
        CAPTURE(config_name);
        INFO("kill " << i << " (RINGBUS_TEST_SEED=" << seed << ")");
        ChildPlan plan;
        plan.dir = dir.path();
        plan.options = crash_ring(config.durability, config.overflow);
        model.options = plan.options;
        plan.flusher = config.flusher;
        plan.commits = config.commits;
        plan.seed = rng.next();
        Heard heard;
        std::unique_ptr<Child> child = spawn(plan);
        if (rng.one_in(8)) {
          // Anywhere from start-up on: opening, recovering, creating the topic.
          ++early;
          listen(*child, heard, Clock::now() + std::chrono::microseconds(rng.below(3000)), never);
        } else {
          const bool alive = listen(*child, heard, Clock::now() + std::chrono::seconds(60),
                                    [](const Heard& h) { return h.notes != 0; });
          REQUIRE_MESSAGE(alive, "the child ended before its first append");
          REQUIRE_MESSAGE(heard.notes != 0, "no append from the child within 60 s");
          listen(*child, heard, Clock::now() + random_delay(rng), never);
        }
        kill_and_reap(*child, heard);
        ++model.kills;
        if (config.sealed && std::filesystem::exists(dir.topic_dir(topic))) { // a kill in start-up may come first
          for (const std::string& segment : dir.segments(topic)) {
            if (detail::decode_segment_seal(file_bytes(segment)).has_value()) ++seals_seen;
          }
          // Recovery by hand first, to see whether it took seals for its walks
          // (check_recovered's Bus::open then finds a clean log). A topic a
          // kill left half made does not open here: check_recovered judges it.
          Result<platform::FileDescriptor> topics = platform::open_directory(dir.path() + "/topics");
          REQUIRE_MESSAGE(topics.ok(), topics.message());
          Result<std::unique_ptr<detail::TopicStore>> store = detail::TopicStore::open(*topics, topic, false, false);
          if (store.ok() && (*store)->recovery().segments >= 3 && (*store)->recovery().segments_walked < 2) {
            ++seals_trusted;
          }
        }
        check_recovered(dir, heard, model);
      }
      MESSAGE(config_name << ": " << kills << " kills (" << early << " during start-up), log end " << model.end);
      if (config.sealed) {
        MESSAGE(config_name << ": " << seals_seen << " seals on disk after the kills, " << seals_trusted
                            << " recoveries took one for a walk");
        if (kills >= 10) CHECK(seals_trusted > 0);
      }
    }
    MESSAGE("crash loop: " << total << " kills in "
                           << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()
                           << " ms");
  }

  TEST_CASE("a_claim_killed_half_written_or_uncommitted_is_not_in_the_log_and_its_offset_goes_to_the_next_append") {
    const std::uint64_t seed = stress::test_seed();
    stress::Rng rng(stress::mix64(seed ^ 0xc1a1));
    for (Durability durability : {Durability::none, Durability::sync}) {
      for (ChildMode mode : {ChildMode::claim_half, ChildMode::claim_full}) {
        const std::string durability_name(to_string(durability));
        const std::string claim_state = mode == ChildMode::claim_half ? "half written" : "written, not committed";
        CAPTURE(durability_name);
        CAPTURE(claim_state);
        TempBusDir dir;
        Model model;
        for (int round = 0; round < 4; ++round) {
          INFO("round " << round << " (RINGBUS_TEST_SEED=" << seed << ")");
          ChildPlan plan;
          plan.dir = dir.path();
          plan.options = crash_ring(durability);
          model.options = plan.options;
          plan.mode = mode;
          plan.seed = rng.next();
          plan.warmup = rng.below(60);
          Heard heard;
          std::unique_ptr<Child> child = spawn(plan);
          listen(*child, heard, Clock::now() + std::chrono::seconds(60),
                 [](const Heard& h) { return h.claim_open.has_value(); });
          REQUIRE(heard.claim_open.has_value());
          kill_and_reap(*child, heard);
          ++model.kills;
          Expect expect;
          expect.exact_end = *heard.claim_open;
          check_recovered(dir, heard, model, expect);
        }
      }
    }
  }

  TEST_CASE("a_kill_inside_a_segment_roll_recovers_every_acknowledged_record") {
    struct RollPoint {
      const char* name;
      Durability durability;
      CrashCall call;
      CrashPoint point;
      // Which call after arming. A roll into a fresh file names it (one
      // rename); once the ring is full, a roll recycles the old lap's file of
      // that slot: renames it to next-rN.tmp, writes its new header, renames
      // it to the new name. The directory is reused across rounds, so the
      // first rounds roll into fresh files and the later ones recycle.
      int nth;
      bool random_nth; // sync: a random one of the msyncs, fdatasyncs and directory fsyncs
    };
    const std::array<RollPoint, 9> points{{
        {"before a roll's first rename", Durability::none, CrashCall::rename, CrashPoint::before, 1, false},
        {"after a roll's first rename", Durability::none, CrashCall::rename, CrashPoint::after, 1, false},
        {"before a roll's second rename", Durability::none, CrashCall::rename, CrashPoint::before, 2, false},
        {"after a roll's second rename", Durability::none, CrashCall::rename, CrashPoint::after, 2, false},
        {"before a segment header is written", Durability::none, CrashCall::write, CrashPoint::before, 1, false},
        {"with half a segment header written", Durability::none, CrashCall::write, CrashPoint::torn, 1, false},
        {"after a segment header is written", Durability::none, CrashCall::write, CrashPoint::after, 1, false},
        {"before a sync", Durability::sync, CrashCall::sync, CrashPoint::before, 0, true},
        {"after a sync", Durability::sync, CrashCall::sync, CrashPoint::after, 0, true},
    }};
    std::size_t dropped_after_naming = 0;
    const std::uint64_t seed = stress::test_seed();
    stress::Rng rng(stress::mix64(seed ^ 0x5e9));
    const int rounds = static_cast<int>(stress::scaled(6, 3));
    for (const RollPoint& rp : points) {
      const std::string point_name = rp.name;
      CAPTURE(point_name);
      TempBusDir dir;
      Model model;
      std::size_t dropped = 0;
      for (int round = 0; round < rounds; ++round) {
        INFO("round " << round << " (RINGBUS_TEST_SEED=" << seed << ")");
        ChildPlan plan;
        plan.dir = dir.path();
        plan.options = crash_ring(rp.durability);
        model.options = plan.options;
        plan.mode = ChildMode::armed;
        plan.seed = rng.next();
        plan.warmup = rng.below(20);
        plan.call = rp.call;
        plan.point = rp.point;
        plan.nth = rp.random_nth ? 1 + static_cast<int>(rng.below(40)) : rp.nth;
        Heard heard;
        std::unique_ptr<Child> child = spawn(plan);
        await_self_kill(*child, heard);
        ++model.kills;
        {
          // Recovery by hand first, to see what it did (a later Bus::open finds a clean log).
          Result<platform::FileDescriptor> topics = platform::open_directory(dir.path() + "/topics");
          REQUIRE_MESSAGE(topics.ok(), topics.message());
          Result<std::unique_ptr<detail::TopicStore>> store = detail::TopicStore::open(*topics, topic, false, false);
          REQUIRE_MESSAGE(store.ok(), store.message());
          if ((*store)->recovery().dropped_unpublished_segment) ++dropped;
        }
        check_recovered(dir, heard, model);
      }
      if (rp.call == CrashCall::rename && rp.point == CrashPoint::after) dropped_after_naming += dropped;
      MESSAGE(point_name << ": " << rounds << " kills, " << dropped << " unpublished segments dropped");
    }
    // The new file is named before the pad frame seals the old segment:
    // unless that segment was exactly full, recovery must drop the new one.
    CHECK(dropped_after_naming > 0);
  }

  TEST_CASE("a_kill_while_the_bus_and_topic_are_first_made_leaves_a_directory_that_opens") {
    // Every file-system step of Bus::open, create_topic and the first appends
    // (lock file, topic directory, topic.meta, the first segments), one kill
    // each, on a fresh directory.
    struct MakePoint {
      CrashCall call;
      int first, last; // kill at each of these calls
    };
    const std::array<MakePoint, 4> kinds{{
        {CrashCall::write, 1, 4},  // the lock file's pid, topic.meta, the first two segment headers
        {CrashCall::sync, 1, 5},   // the bus's directories, the topics directory, topic.meta and its name
        {CrashCall::rename, 1, 3}, // topic.meta, the first two segments
        // The first recycle (the ring has 8 segments: topic.meta and the first
        // lap take renames 1-9): segment 0's file is renamed to next-rN.tmp,
        // then to its new name.
        {CrashCall::rename, 10, 11},
    }};
    const std::uint64_t seed = stress::test_seed();
    stress::Rng rng(stress::mix64(seed ^ 0x6e3));
    std::uint64_t kills = 0;
    std::uint64_t without_topic = 0;
    for (const MakePoint& kind : kinds) {
      for (int nth = kind.first; nth <= kind.last; ++nth) {
        for (CrashPoint point : {CrashPoint::before, CrashPoint::after, CrashPoint::torn}) {
          if (point == CrashPoint::torn && kind.call != CrashCall::write) continue;
          CAPTURE(static_cast<int>(kind.call));
          CAPTURE(nth);
          CAPTURE(static_cast<int>(point));
          for (Durability durability : {Durability::none, Durability::sync}) {
            CAPTURE(static_cast<int>(durability));
            TempBusDir dir;
            Model model;
            ChildPlan plan;
            plan.dir = dir.path();
            plan.options = crash_ring(durability);
            model.options = plan.options;
            plan.mode = ChildMode::armed;
            plan.arm_before_open = true;
            plan.seed = rng.next();
            plan.call = kind.call;
            plan.nth = nth;
            plan.point = point;
            Heard heard;
            std::unique_ptr<Child> child = spawn(plan);
            await_self_kill(*child, heard);
            ++kills;
            Bus probe = open_bus(dir.path(), BusOptions{false, false});
            if (!probe.has_topic(topic)) ++without_topic;
            probe.close();
            check_recovered(dir, heard, model);
          }
        }
      }
    }
    MESSAGE(kills << " kills while making the bus and topic; " << without_topic << " left no topic");
  }

  TEST_CASE("a_kill_inside_an_offset_commit_leaves_the_old_or_the_new_offset_never_garbage") {
    struct CommitPoint {
      const char* name;
      CrashCall call;
      CrashPoint point;
      bool keeps_old; // else the new offset is stored (a process crash keeps the page cache)
    };
    const std::array<CommitPoint, 5> points{{
        {"before the slot is written", CrashCall::write, CrashPoint::before, true},
        {"with half the slot written", CrashCall::write, CrashPoint::torn, true},
        {"after the slot is written", CrashCall::write, CrashPoint::after, false},
        {"before the fdatasync", CrashCall::sync, CrashPoint::before, false},
        {"after the fdatasync", CrashCall::sync, CrashPoint::after, false},
    }};
    const std::uint64_t seed = stress::test_seed();
    stress::Rng rng(stress::mix64(seed ^ 0xc0ff));
    for (const CommitPoint& cp : points) {
      const std::string point_name = cp.name;
      CAPTURE(point_name);
      TempBusDir dir;
      Model model;
      for (int round = 0; round < 4; ++round) {
        INFO("round " << round << " (RINGBUS_TEST_SEED=" << seed << ")");
        ChildPlan plan;
        plan.dir = dir.path();
        plan.options = crash_ring(Durability::none);
        model.options = plan.options;
        plan.commits = true;
        plan.mode = ChildMode::commit_armed;
        plan.seed = rng.next();
        plan.warmup = 1 + rng.below(40);
        plan.call = cp.call;
        plan.point = cp.point;
        Heard heard;
        std::unique_ptr<Child> child = spawn(plan);
        await_self_kill(*child, heard);
        REQUIRE(heard.commit_begun.has_value());
        ++model.kills;
        Expect expect;
        if (cp.keeps_old) {
          expect.committed_is_old = true;
        } else {
          expect.exact_committed = *heard.commit_begun;
        }
        check_recovered(dir, heard, model, expect);
      }
    }
  }
}

// --- tail damage (no processes) ----------------------------------------------------------

namespace {

// The tail segment file and where its valid frames end.
struct TailEnd {
  std::string file;
  std::uint64_t data_offset = 0; // where the data starts in the file (the header page)
  std::uint64_t end = 0;         // bytes of valid frames
  std::uint64_t last_frame = 0;  // start of the last DATA frame (when end > 0)
  std::uint32_t last_length = 0;
  std::uint16_t lap = 0;
  std::uint64_t next_offset = 0;
};

void write_file_at(const std::string& path, std::uint64_t at, const void* data, std::size_t bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f.good());
  f.seekp(static_cast<std::streamoff>(at));
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  REQUIRE(f.good());
}

// The frame header at file offset `at` (a pad frame at the segment's end may
// be shorter than a header: the missing bytes read as zero).
detail::FrameHeader header_at(const std::vector<std::byte>& file, std::uint64_t at) {
  detail::FrameHeader h{};
  std::memcpy(&h, file.data() + at, std::min<std::size_t>(sizeof h, file.size() - at));
  return h;
}

// Walks the newest segment holding a DATA frame (closed bus) frame by frame.
TailEnd find_tail(const TempBusDir& dir) {
  const std::vector<std::string> segs = dir.segments(topic);
  REQUIRE(!segs.empty());
  for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
    const std::vector<std::byte> file = file_bytes(*it);
    TailEnd t;
    t.file = *it;
    std::uint32_t page = 0;
    std::memcpy(&page, file.data() + 12, sizeof page); // SegmentHeader::page_size
    t.data_offset = page;
    const std::uint64_t segment_bytes = file.size() - page;
    bool found = false;
    std::uint64_t pos = 0;
    while (pos < segment_bytes) {
      const detail::FrameHeader h = header_at(file, page + pos);
      if (h.length == 0) break;
      if (h.type == static_cast<std::uint8_t>(detail::frame_type::pad)) break;
      t.last_frame = pos;
      t.last_length = h.length;
      t.lap = h.lap;
      t.next_offset = h.base_offset + h.record_count;
      found = true;
      pos += detail::align_up(h.length, detail::frame_alignment);
    }
    t.end = pos;
    if (found) return t;
  }
  FAIL("no segment holds a frame");
  return {};
}

std::vector<OwnedRecord> read_log(Bus& bus) {
  Result<Consumer> c = bus.consumer(topic);
  REQUIRE_MESSAGE(c.ok(), c.message());
  std::vector<OwnedRecord> out = drain(*c);
  REQUIRE(c->close().ok());
  return out;
}

void append_derived(Bus& bus, std::uint64_t count) {
  Result<Producer> p = bus.producer(topic);
  REQUIRE_MESSAGE(p.ok(), p.message());
  for (std::uint64_t i = 0; i < count; ++i) {
    const Derived d(p->next_offset());
    Result<std::uint64_t> r = p->append(d.message());
    REQUIRE_MESSAGE(r.ok(), r.message());
    REQUIRE(*r == d.offset);
  }
  REQUIRE(p->close().ok());
}

std::vector<std::byte> random_bytes(stress::Rng& rng, std::size_t n) {
  std::vector<std::byte> out(n);
  for (std::byte& b : out) b = static_cast<std::byte>(rng.next());
  return out;
}

} // namespace

TEST_SUITE("topic_store_crash") {
  TEST_CASE("damage_after_the_tail_end_is_cut_away_and_the_log_reads_back_as_before") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), BusOptions{false, false});
      REQUIRE(bus.create_topic(topic, crash_ring(Durability::none)).ok());
      append_derived(bus, 150);
    }
    const std::uint64_t seed = stress::test_seed();
    stress::Rng rng(stress::mix64(seed ^ 0x7a11));
    const int rounds = static_cast<int>(stress::scaled(100, 40));
    for (int round = 0; round < rounds; ++round) {
      INFO("round " << round << " (RINGBUS_TEST_SEED=" << seed << ")");
      std::vector<OwnedRecord> before;
      {
        Bus bus = open_bus(dir.path(), BusOptions{false, false});
        before = read_log(bus);
      }
      REQUIRE(!before.empty());
      const TailEnd tail = find_tail(dir);
      const std::uint64_t segment_bytes = std::filesystem::file_size(tail.file) - tail.data_offset;
      const std::uint64_t room = segment_bytes - tail.end;
      if (room < 8) {
        // A full segment: nothing to damage after it; one more record starts the next.
        Bus bus = open_bus(dir.path(), BusOptions{false, false});
        append_derived(bus, 1);
        continue;
      }
      // Damage at the end, or a few words after it.
      const std::uint64_t at = tail.end + (rng.one_in(4) ? 8 * rng.below(std::min<std::uint64_t>(room / 8, 8)) : 0);
      const std::uint64_t space = segment_bytes - at;
      std::vector<std::byte> damage;
      const std::uint64_t kind = rng.below(6);
      CAPTURE(kind);
      detail::FrameHeader h{};
      h.type = static_cast<std::uint8_t>(detail::frame_type::data);
      h.lap = tail.lap;
      h.record_count = 1;
      h.base_offset = tail.next_offset;
      h.base_timestamp = timestamp_for(tail.next_offset);
      switch (kind) {
        case 0: damage = random_bytes(rng, 1 + rng.below(std::min<std::uint64_t>(space, 512))); break;
        case 1: damage.assign(1 + rng.below(std::min<std::uint64_t>(space, 512)), std::byte{0}); break;
        case 2: { // a frame that looks right but for its checksum
          const std::uint64_t body = std::min<std::uint64_t>(space - detail::frame_header_bytes, rng.below(200));
          h.length = static_cast<std::uint32_t>(detail::frame_header_bytes + body);
          h.checksum = static_cast<std::uint32_t>(rng.next());
          damage.resize(detail::frame_header_bytes);
          std::memcpy(damage.data(), &h, sizeof h);
          const std::vector<std::byte> rest = random_bytes(rng, body);
          damage.insert(damage.end(), rest.begin(), rest.end());
          break;
        }
        case 3: { // a frame whose length runs past the segment's end
          h.length = static_cast<std::uint32_t>(space + 8 + 8 * rng.below(64));
          h.checksum = static_cast<std::uint32_t>(rng.next());
          damage.resize(sizeof h);
          std::memcpy(damage.data(), &h, sizeof h);
          break;
        }
        case 4: { // a pad frame that stops short of the segment's end (or, in the last word, runs past it)
          const std::uint64_t length = space > 8 ? 8 * (1 + rng.below(space / 8 - 1)) : 16;
          const std::uint64_t word =
              detail::frame_word0(static_cast<std::uint32_t>(length), detail::frame_type::pad, 0) |
              (std::uint64_t{tail.lap} << 48);
          damage.resize(sizeof word);
          std::memcpy(damage.data(), &word, sizeof word);
          break;
        }
        default: { // a frame from the wrong lap, else whole and valid-looking
          h.lap = static_cast<std::uint16_t>(tail.lap + 1);
          h.length = detail::frame_header_bytes;
          damage.resize(sizeof h);
          std::memcpy(damage.data(), &h, sizeof h);
          break;
        }
      }
      damage.resize(std::min<std::uint64_t>(damage.size(), space));
      write_file_at(tail.file, tail.data_offset + at, damage.data(), damage.size());
      Bus bus = open_bus(dir.path(), BusOptions{false, false});
      Result<TopicInfo> info = bus.describe(topic);
      REQUIRE(info.ok());
      CHECK(info->failure.empty());
      const std::vector<OwnedRecord> after = read_log(bus);
      REQUIRE(after.size() == before.size());
      for (std::size_t i = 0; i < after.size(); ++i) REQUIRE(after[i] == before[i]);
      REQUIRE(info->end_offset == before.back().offset + 1);
      const std::uint64_t more = 1 + rng.below(3);
      append_derived(bus, more);
      const std::vector<OwnedRecord> grown = read_log(bus); // the ring may have let its oldest records go
      REQUIRE(!grown.empty());
      REQUIRE(grown.back().offset == before.back().offset + more);
      for (std::size_t i = 0; i < grown.size(); ++i) {
        REQUIRE(grown[i] == Derived(grown.front().offset + i).owned());
      }
    }
  }

  TEST_CASE("a_flipped_byte_in_the_last_frame_cuts_that_record_alone_and_appends_take_its_offset") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), BusOptions{false, false});
      // interval: its frames carry CRC32C (a none topic's carry no checksum).
      REQUIRE(bus.create_topic(topic, crash_ring(Durability::interval)).ok());
      append_derived(bus, 100);
    }
    const std::uint64_t seed = stress::test_seed();
    stress::Rng rng(stress::mix64(seed ^ 0xf11b));
    const int rounds = static_cast<int>(stress::scaled(60, 25));
    for (int round = 0; round < rounds; ++round) {
      INFO("round " << round << " (RINGBUS_TEST_SEED=" << seed << ")");
      std::vector<OwnedRecord> before;
      {
        Bus bus = open_bus(dir.path(), BusOptions{false, false});
        before = read_log(bus);
      }
      const TailEnd tail = find_tail(dir);
      REQUIRE(tail.next_offset == before.back().offset + 1);
      // Any byte the checksum covers: [0, 6), [8, 12) and [16, length) of the frame.
      std::uint64_t at = 0;
      do {
        at = rng.below(tail.last_length);
      } while ((at >= 6 && at < 8) || (at >= 12 && at < 16));
      CAPTURE(at);
      std::vector<std::byte> file = file_bytes(tail.file);
      std::byte b = file[tail.data_offset + tail.last_frame + at];
      b ^= static_cast<std::byte>(1u << rng.below(8));
      write_file_at(tail.file, tail.data_offset + tail.last_frame + at, &b, 1);
      // The last frame holds one record (single appends): that record alone goes.
      Bus bus = open_bus(dir.path(), BusOptions{false, false});
      const std::vector<OwnedRecord> after = read_log(bus);
      REQUIRE(after.size() == before.size() - 1);
      for (std::size_t i = 0; i < after.size(); ++i) REQUIRE(after[i] == before[i]);
      Result<TopicInfo> info = bus.describe(topic);
      REQUIRE(info.ok());
      REQUIRE(info->end_offset == before.back().offset);
      const std::uint64_t more = 1 + rng.below(4);
      append_derived(bus, more);
      const std::vector<OwnedRecord> grown = read_log(bus);
      REQUIRE(!grown.empty());
      REQUIRE(grown.back().offset == before.back().offset - 1 + more);
      for (std::size_t i = 0; i < grown.size(); ++i) {
        REQUIRE(grown[i] == Derived(grown.front().offset + i).owned());
      }
    }
  }
}

TEST_SUITE("topic_store_crash") {
  TEST_CASE("a_newer_segment_after_one_left_unsealed_is_dropped_with_its_frames") {
    // A batch that crosses a segment end is published by one store of its
    // first frame's word; its later frames, the pad that seals the old segment
    // and the frames in the new one are in place before. A crash just before
    // that store leaves the old segment ending in a zero word, then a pad, and
    // a newer segment of valid frames. Made here by zeroing the publication
    // word of the old segment's last frame.
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), BusOptions{false, false});
      REQUIRE(bus.create_topic(topic, crash_ring(Durability::none)).ok());
      append_derived(bus, 40);
      while (dir.segments(topic).size() < 3) append_derived(bus, 1);
      append_derived(bus, 3); // the tail holds frames of its own
    }
    std::vector<OwnedRecord> before;
    {
      Bus bus = open_bus(dir.path(), BusOptions{false, false});
      before = read_log(bus);
    }
    const std::vector<std::string> segs = dir.segments(topic);
    const std::string older = segs[segs.size() - 2];
    const std::string newer = segs.back();
    const std::vector<std::byte> file = file_bytes(older);
    std::uint32_t page = 0;
    std::memcpy(&page, file.data() + 12, sizeof page); // SegmentHeader::page_size
    std::uint64_t pos = 0;
    std::uint64_t last_frame = 0;
    std::uint64_t cut_offset = 0;
    while (page + pos < file.size()) {
      const detail::FrameHeader h = header_at(file, page + pos);
      if (h.length == 0 || h.type != static_cast<std::uint8_t>(detail::frame_type::data)) break;
      last_frame = pos;
      cut_offset = h.base_offset;
      pos += detail::align_up(h.length, detail::frame_alignment);
    }
    REQUIRE(cut_offset > before.front().offset);
    const std::uint64_t zero = 0;
    write_file_at(older, page + last_frame, &zero, sizeof zero);

    Result<platform::FileDescriptor> topics = platform::open_directory(dir.path() + "/topics");
    REQUIRE(topics.ok());
    {
      Result<std::unique_ptr<detail::TopicStore>> store = detail::TopicStore::open(*topics, topic, false, false);
      REQUIRE_MESSAGE(store.ok(), store.message());
      CHECK((*store)->recovery().dropped_unpublished_segment);
      CHECK((*store)->restored().next_offset == cut_offset);
    }
    CHECK(!std::filesystem::exists(newer));
    Bus bus = open_bus(dir.path(), BusOptions{false, false});
    const std::vector<OwnedRecord> after = read_log(bus);
    REQUIRE(!after.empty());
    REQUIRE(after.back().offset + 1 == cut_offset);
    for (std::size_t i = 0; i < after.size(); ++i) REQUIRE(after[i] == before[i]);
    append_derived(bus, 70); // through the dropped segment's slot and on
    const std::vector<OwnedRecord> grown = read_log(bus);
    REQUIRE(grown.back().offset == cut_offset + 69);
    for (std::size_t i = 0; i < grown.size(); ++i) REQUIRE(grown[i] == Derived(grown.front().offset + i).owned());
  }
}
