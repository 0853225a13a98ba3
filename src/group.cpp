// Consumer groups: competing consumers over one topic's log.
//
// The protocol, with the letters used at each site (see also the diagram in
// ringbus/detail/log.hpp for (A)-(D) and src/detail/group_state.hpp for the
// invariants):
//
//   member (each, on its own thread)                 the group's shared state
//   ----------------------------------------------   ------------------------------
//   p = claim.load (G2, acquire)
//   (D) slot.position.store(p, release): holds p     claim: next unclaimed frame
//       (the slot only ever moves forward here, and
//       it was <= claim already, so p was held all
//       along: the bytes at p are this lap's)
//   (C) acquire-load publication words from p on,
//       frame after frame, up to the claim target:
//       p' = end of the last whole frame
//   held_offset.store(first offset, relaxed)
//   (G1) claim.CAS(p -> p', acq_rel) --------------> exactly one member wins [p, p');
//       lost: p = the winner's p', scan again          the loser read headers only
//   deliver [p, p') (budget permitting; the rest
//       stays claimed for later polls)
//   next poll (or ack): slot := first undelivered frame, held_offset := its offset
//
//   hand-over (member leaves without ack):            adoption (another member's poll,
//   record.{log_slot, pos, skip, offset, range_end}   when it holds nothing undelivered):
//   (G5) record.state.store(abandoned, release) ---> (G6) CAS abandoned -> adopting
//   abandoned.fetch_add(release)                          (acquire); takes over its reader
//   the abandoned record keeps its reader slot, so        slot (still holding the range)
//   the range stays held while nobody owns it.            and frees its own.
//                                                     or a joining member (under membership):
//                                                     (G6) the same CAS, then it takes the
//                                                     record as its own, place, slot and range
//                                                     (so departed members never fill the
//                                                     places and slots a join needs).
//
// Durable position (persistent topics): commit() stores max(position(),
// commit_floor) under the group's GroupOffsets mutex (cold; no atomics of its
// own: the position is read by the same protocol as position()). The first
// join after a restart places the claim at the committed offset (see
// resume_point): at its frame when the offset starts one, else past its frame,
// with the joining member holding the rest of that frame as if it had claimed
// it (so the records before the offset in that frame are not redelivered).
#include "ringbus/group.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "detail/bus_core.hpp"
#include "detail/group_state.hpp"
#include "detail/topic_store.hpp"
#include "platform/files.hpp"
#include "platform/platform.hpp"
#include "ringbus/bus.hpp"
#include "ringbus/detail/cursor.hpp"
#include "ringbus/detail/wait.hpp"

namespace ringbus::detail {

// What a GroupMember handle owns.
// alignas: poll writes it on every call (see CacheLineAllocator in memory.hpp).
struct alignas(cache_line) MemberState {
  std::shared_ptr<BusCore> core;
  GroupState* group = nullptr;
  MemberRecord* record = nullptr;
  // c.pos/skip/offset: the next record to deliver; [c.pos, range_end): claimed
  // frames not delivered yet; c.released: the value in our reader slot.
  Cursor c;
  std::uint64_t range_end = 0;
  // The first record of the last poll not acknowledged yet (== c.* when acked).
  std::uint64_t batch_pos = 0;
  std::uint32_t batch_skip = 0;
  std::uint64_t batch_offset = 0;
  std::size_t max_claim = 0;
  WaitStrategy wait = WaitStrategy::backoff;
  Chunk chunk;
  std::int64_t auto_commit_ns = 0; // GroupOptions::auto_commit_interval; 0: none
  std::int64_t last_commit_ns = 0; // monotonic clock: this member's last commit (or its join)
};

} // namespace ringbus::detail

namespace ringbus {

namespace {

using detail::GroupState;
using detail::MemberRecord;
using detail::MemberState;

Status closed_status() { return Status(Errc::closed, "group member is closed"); }

Status check_open(const MemberState* s) {
  if (s == nullptr) return closed_status();
  // acquire: pairs with the store in Bus::close (a statement of fact, no data follows).
  if (s->core->closed.load(std::memory_order_acquire)) return Status(Errc::closed, "bus is closed");
  return {};
}

// (D) release: this member is done with every byte below pos; pairs with (A)
// in the producer's roll. Only ever moves forward (see the diagram).
void hold_from(MemberState& s, std::uint64_t pos) noexcept {
  if (s.c.released == pos) return;
  s.c.log->slot(s.c.slot).position.store(pos, std::memory_order_release);
  s.c.released = pos;
}

bool holds_unacked(const MemberState& s) noexcept {
  return s.batch_pos != s.c.pos || s.batch_skip != s.c.skip || s.c.pos < s.range_end;
}

// Acknowledges everything delivered so far.
void acknowledge(MemberState& s) noexcept {
  detail::Cursor& c = s.c;
  if (s.batch_pos == c.pos && s.batch_skip == c.skip && s.batch_offset == c.offset) return;
  s.batch_pos = c.pos;
  s.batch_skip = c.skip;
  s.batch_offset = c.offset;
  // (G3) release: what we did with the records happens before anyone sees
  // the group's position pass them.
  s.record->held_offset.store(c.pos < s.range_end ? c.offset : detail::no_offset, std::memory_order_release);
  hold_from(s, c.pos);
}

// One abandoned record, now member_adopting and ours to take; nullptr when
// none is abandoned (or another taker won each).
MemberRecord* claim_abandoned(GroupState& g) noexcept {
  for (MemberRecord& r : g.members) {
    // relaxed peek; the CAS below (G6) is what acquires the hand-over.
    if (r.state.load(std::memory_order_relaxed) != detail::member_abandoned) continue;
    std::uint32_t expected = detail::member_abandoned;
    if (r.state.compare_exchange_strong(expected, detail::member_adopting, std::memory_order_acquire,
                                        std::memory_order_relaxed)) { // (G6) pairs with (G5) in close
      return &r;
    }
  }
  return nullptr;
}

// Moves an adopted record's reader slot and range into s (the record keeps
// its held_offset: the caller says who holds the range from now on).
void take_range(MemberState& s, MemberRecord& r) noexcept {
  s.c.slot = r.log_slot;
  // relaxed: the slot's last store was the leaving member's, before (G5).
  s.c.released = s.c.log->slot(s.c.slot).position.load(std::memory_order_relaxed);
  s.c.pos = s.batch_pos = r.pos;
  s.c.skip = s.batch_skip = r.skip;
  s.c.offset = s.batch_offset = r.offset;
  s.range_end = r.range_end;
  r.log_slot = -1;
}

// Takes over one abandoned record, if any. Only when we hold nothing
// undelivered: our reader slot is then swapped for the abandoned one, which
// holds the range (<= claim, so it holds everything unclaimed too).
void adopt(MemberState& s) noexcept {
  GroupState& g = *s.group;
  MemberRecord* const r = claim_abandoned(g);
  if (r == nullptr) return;
  // seq_cst: position() reads begun before its scan and again after it.
  g.handovers_begun.fetch_add(1, std::memory_order_seq_cst);
  const int mine = s.c.slot;
  take_range(s, *r);
  s.record->held_offset.store(r->offset, std::memory_order_seq_cst);  // (G3), before the abandoned one clears
  r->held_offset.store(detail::no_offset, std::memory_order_seq_cst); // (G3) seq_cst: see position()
  s.c.log->unregister_reader(mine);
  r->state.store(detail::member_free, std::memory_order_release); // a join may reuse it (acquire there)
  // relaxed: a count for the pollers' peek in fill(); the record's state
  // (G5)/(G6) carries the hand-over itself.
  g.abandoned.fetch_sub(1, std::memory_order_relaxed);
  g.handovers_done.fetch_add(1, std::memory_order_seq_cst); // pairs with position()'s loads
}

// A joining member takes over one abandoned record, if any, as its own: its
// place, its reader slot (which still holds the range) and the range itself.
// So a join needs neither a free place nor a new reader slot while a departed
// member's records wait, and members that all left mid-batch never lock the
// group out. Under g.membership; s has no record or slot yet.
bool adopt_at_join(MemberState& s) noexcept {
  GroupState& g = *s.group;
  MemberRecord* const r = claim_abandoned(g); // a poll's adopt() may win some
  if (r == nullptr) return false;
  // No range moves between records: the record stays the holder, and its
  // held_offset (G3, r->offset since close) stays, so position() needs no
  // hand-over bracket.
  s.record = r;
  take_range(s, *r);
  if (g.anchor_slot >= 0) {
    // The anchor held the claim while nobody was open; the adopted slot is
    // <= claim and holds everything from the range on, so the anchor can go
    // (kept, it would pin the producer at this claim for good).
    s.c.log->unregister_reader(g.anchor_slot);
    g.anchor_slot = -1;
  }
  // relaxed: a count for the pollers' peek in fill(); the record's state
  // (G5)/(G6) carries the hand-over itself.
  g.abandoned.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

// Claims whole frames from the group's position and delivers up to budget
// records of them. Returns the records delivered.
std::uint64_t claim_and_take(MemberState& s, std::uint64_t budget) noexcept {
  GroupState& g = *s.group;
  detail::Log& log = *s.c.log;
  detail::Cursor& c = s.c;
  const std::uint64_t target = std::min<std::uint64_t>(budget, s.max_claim);
  bool held = false;
  std::uint64_t p = g.claim.load(std::memory_order_acquire); // (G2) pairs with (G1)
  for (;;) {
    hold_from(s, p);
    std::uint64_t q = p;
    std::uint64_t records = 0;
    std::uint64_t first = detail::no_offset;
    while (records < target) {
      const std::byte* f = log.ring_at(q);
      std::uint64_t word0;
      if (!log.published_word0(q, word0)) break;
      const std::uint32_t length = detail::word0_length(word0);
      if (detail::word0_type(word0) != detail::frame_type::data) {
        q += length; // pad: to the segment end
        continue;
      }
      std::uint32_t count;
      std::memcpy(&count, f + offsetof(detail::FrameHeader, record_count), sizeof count);
      if (first == detail::no_offset) std::memcpy(&first, f + offsetof(detail::FrameHeader, base_offset), sizeof first);
      records += count;
      q = detail::frame_end(q, word0);
    }
    if (q == p) {
      if (held) s.record->held_offset.store(detail::no_offset, std::memory_order_release); // (G3)
      return 0;
    }
    if (first != detail::no_offset) {
      s.record->held_offset.store(first, std::memory_order_relaxed); // (G3) published by (G1)
      held = true;
    }
    // (G1) acq_rel: publishes held_offset before the claim moves; on failure,
    // p becomes the winner's end (acquire) and we scan from there.
    if (!g.claim.compare_exchange_strong(p, q, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    s.range_end = q;
    c.skip = s.batch_skip = 0;
    if (records == 0) { // only pad frames: nothing to deliver; claim on
      c.pos = s.batch_pos = p = q;
      continue;
    }
    c.pos = s.batch_pos = p;
    c.offset = s.batch_offset = first;
    return detail::take_in_place(c, budget, s.chunk, q);
  }
}

std::uint64_t fill(MemberState& s, std::uint64_t budget) noexcept {
  s.chunk.count = 0;
  if (budget == 0) return 0;
  if (s.c.pos < s.range_end) return detail::take_in_place(s.c, budget, s.chunk, s.range_end);
  // relaxed peek: the counter is written only when members leave; the state
  // CAS in adopt() (G6) is what acquires a hand-over.
  if (RINGBUS_UNLIKELY(s.group->abandoned.load(std::memory_order_relaxed) != 0)) {
    adopt(s);
    if (s.c.pos < s.range_end) return detail::take_in_place(s.c, budget, s.chunk, s.range_end);
  }
  return claim_and_take(s, budget);
}

// Blocking strategy: sleep on our slot's doorbell until the producer rings it
// (after publishing) or the deadline passes (the Dekker pair of log.hpp).
void sleep_until_data(MemberState& s, std::int64_t deadline) noexcept {
  detail::Log& log = *s.c.log;
  detail::ReaderSlot& slot = log.slot(s.c.slot);
  std::atomic<std::uint32_t>* doorbell = slot.wake_target.load(std::memory_order_acquire); // set at registration
  const std::uint32_t seen = doorbell->load(std::memory_order_acquire); // pairs with wake_sleepers' fetch_add
  slot.sleeping.store(1, std::memory_order_seq_cst);                    // read by wake_sleepers (seq_cst)
  log.sleepers().fetch_add(1, std::memory_order_seq_cst);               // Dekker with (B') in publish
  // tail: the Dekker pair with (B'). claim (G2) and abandoned: snapshots (a
  // claim or a departure rings no doorbell; the 1 ms slices below cover them).
  const bool ready = log.tail_for_sleeper() > s.group->claim.load(std::memory_order_seq_cst) ||
                     s.group->abandoned.load(std::memory_order_seq_cst) != 0;
  if (!ready && !s.core->closed.load(std::memory_order_seq_cst)) { // pairs with Bus::close
    // A departing member rings no doorbell: look again at least every millisecond.
    const std::int64_t left = std::min<std::int64_t>(deadline - platform::monotonic_ns(), 1'000'000);
    if (left > 0) platform::futex_wait(doorbell, seen, left);
  }
  // relaxed: leaving sleep publishes nothing.
  log.sleepers().fetch_sub(1, std::memory_order_relaxed);
  slot.sleeping.store(0, std::memory_order_relaxed);
}

// The offset of the record at frame boundary p (or the next one published
// there). Our slot is at or below p, so the bytes are this lap's.
std::uint64_t offset_at(const detail::Log& log, std::uint64_t p) noexcept {
  // Read first: if the frame at p is still unpublished after this, every
  // record published by then is below p, so end_offset is p's offset (or less,
  // while the producer's end_offset store trails its publication word).
  const std::uint64_t end = log.end_offset();
  for (;;) {
    const std::byte* f = log.ring_at(p);
    std::uint64_t word0;
    if (!log.published_word0(p, word0)) return end;
    if (detail::word0_type(word0) == detail::frame_type::data) {
      std::uint64_t base;
      std::memcpy(&base, f + offsetof(detail::FrameHeader, base_offset), sizeof base);
      return base;
    }
    p += detail::word0_length(word0);
  }
}

// The frame boundary where offset `end` (the log's end when read) starts: a
// new group that starts at `latest` claims from there. Our slot holds the head.
std::uint64_t position_of_end(detail::Log& log, int slot) noexcept {
  for (;;) {
    std::uint64_t head = 0;
    std::uint64_t oldest = 0;
    log.protect_from_head(slot, head, oldest);
    const std::uint64_t end = log.end_offset();
    std::uint64_t segment = 0;
    std::uint64_t first = 0;
    if (!log.segment_for_offset(end, head, segment, first)) continue;
    std::uint64_t q = segment;
    for (;;) {
      const std::byte* f = log.ring_at(q);
      std::uint64_t word0;
      if (!log.published_word0(q, word0)) return q;
      const std::uint32_t length = detail::word0_length(word0);
      if (detail::word0_type(word0) == detail::frame_type::data) {
        std::uint64_t base;
        std::memcpy(&base, f + offsetof(detail::FrameHeader, base_offset), sizeof base);
        if (base >= end) return q;
        q = detail::frame_end(q, word0);
      } else {
        q += length;
      }
    }
  }
}

// The group's position: every record below it has been acknowledged. A
// member's slot (or the anchor) holds the claim's bytes while this runs.
std::uint64_t group_position(const GroupState& g) noexcept {
  for (std::uint32_t attempt = 0;; ++attempt) {
    // seq_cst with the hand-over's counters: a scan that overlaps a hand-over
    // (a range moving from one record to another) is retried. Never given up
    // on: a scan that overlapped one could miss the moving range and run
    // ahead of the truth. A hand-over is a few stores and never waits, so
    // this waits only for its thread to be scheduled again.
    const std::uint64_t done = g.handovers_done.load(std::memory_order_seq_cst);
    const std::uint64_t begun = g.handovers_begun.load(std::memory_order_seq_cst);
    if (begun != done) {
      if (attempt < 1024) {
        detail::cpu_relax();
      } else {
        detail::thread_yield(); // its adopter was descheduled mid-hand-over
      }
      continue;
    }
    // (G2) acquire, pairs with (G1): every range below p was claimed by a member
    // whose held_offset was stored before its claim.
    const std::uint64_t p = g.claim.load(std::memory_order_acquire);
    std::uint64_t low = offset_at(*g.log, p);
    for (const MemberRecord& r : g.members) {
      low = std::min(low, r.held_offset.load(std::memory_order_seq_cst)); // (G3)
    }
    if (g.handovers_begun.load(std::memory_order_seq_cst) == begun) return low;
  }
}

// Where a resuming group places its claim: the frame holding the record at
// the committed offset, clamped to what the log holds now ([oldest, end]:
// retention may have deleted the committed offset, a crash may have cut the
// tail below it). Our slot holds the head while this looks (protect_from_head).
struct ResumePoint {
  std::uint64_t pos = 0;       // frame boundary: the record's frame (or the end)
  std::uint32_t skip = 0;      // records of that frame before the record
  std::uint64_t offset = 0;    // the record's offset: where the group resumes
  std::uint64_t frame_end = 0; // end of that frame (when skip != 0)
};

ResumePoint resume_point(detail::Log& log, int slot, std::uint64_t committed, std::uint64_t& head) noexcept {
  for (;;) {
    std::uint64_t oldest = 0;
    log.protect_from_head(slot, head, oldest);
    const std::uint64_t end = log.end_offset();
    const std::uint64_t at = std::min(std::max(committed, oldest), end);
    if (at == oldest) return ResumePoint{head, 0, at, head};
    std::uint64_t segment = 0;
    std::uint64_t first = 0;
    if (!log.segment_for_offset(at, head, segment, first)) continue; // the head moved: again
    std::uint64_t q = segment;
    if (detail::TopicStore* store = log.store(); store != nullptr && at > first) {
      // The segment's sparse index: a frame start at most one interval before at.
      if (const auto indexed = store->position_for_offset(segment, at, log.tail_acquire()); indexed.has_value()) {
        q = *indexed;
      }
    }
    for (;;) {
      const std::byte* f = log.ring_at(q);
      std::uint64_t word0;
      // Nothing published at q: every record below at is below q (at == end).
      if (!log.published_word0(q, word0)) return ResumePoint{q, 0, at, q};
      const std::uint32_t length = detail::word0_length(word0);
      if (detail::word0_type(word0) != detail::frame_type::data) {
        q += length; // pad: to the segment end
        continue;
      }
      std::uint64_t base;
      std::uint32_t count;
      std::memcpy(&base, f + offsetof(detail::FrameHeader, base_offset), sizeof base);
      std::memcpy(&count, f + offsetof(detail::FrameHeader, record_count), sizeof count);
      const std::uint64_t next = detail::frame_end(q, word0);
      if (base + count > at) {
        if (base >= at) return ResumePoint{q, 0, at, q};
        return ResumePoint{q, static_cast<std::uint32_t>(at - base), at, next};
      }
      q = next;
    }
  }
}

std::string describe(const GroupState& g) {
  return "group '" + std::string(std::string_view(g.name)) + "' in topic '" + std::string(g.log->name()) + "'";
}

// Why the position of group g cannot be made durable; ok when it can.
Status why_not_durable(const detail::BusCore& core, const GroupState& g) {
  if (g.offsets != nullptr) return {};
  const detail::BusDirectory* disk = core.disk.get();
  std::string why;
  if (disk == nullptr) {
    why = "the bus is in memory; durable positions need a bus opened on a directory (Bus::open)";
  } else if (g.log->store() == nullptr) {
    why = "the topic is in memory (TopicOptions::storage); only positions in persistent topics are committed";
  } else {
    why = "bus directory " + disk->path + " is open read-only; it takes no commits";
  }
  return Status(Errc::invalid_argument, describe(g) + ": " + why);
}

// The group's offset store, <dir>/groups/<group>.offsets, opened on first
// use; under g.offsets->mutex. create: made when missing; else null (with why
// ok) when there is none yet. Null with why when it cannot be opened.
detail::OffsetStore* store_of(const detail::BusCore& core, const GroupState& g, bool create, Status& why) {
  detail::GroupOffsets& o = *g.offsets;
  if (o.store) return &*o.store;
  const std::string file = std::string(std::string_view(g.name)) + ".offsets";
  if (!create) {
    Result<bool> exists = platform::entry_exists_at(core.disk->groups, file);
    if (!exists.ok()) {
      why = Status(exists.code(), describe(g) + ": durable position: " + std::string(exists.message()));
      return nullptr;
    }
    if (!*exists) return nullptr;
  }
  Result<detail::OffsetStore> store = detail::OffsetStore::open(core.disk->groups, file);
  if (!store.ok()) {
    why = Status(store.code(), describe(g) + ": durable position: " + std::string(store.message()));
    return nullptr;
  }
  o.store.emplace(std::move(*store));
  return &*o.store;
}

// Commits the group's position (cold: a pwrite and an fdatasync).
Status commit_position(MemberState& s) {
  GroupState& g = *s.group;
  if (Status st = why_not_durable(*s.core, g); !st.ok()) return st;
  s.last_commit_ns = platform::monotonic_ns();
  std::lock_guard lock(g.offsets->mutex);
  // Read under the lock, so commits store positions in the order they were
  // read; the floor keeps a lagging snapshot from undoing an earlier commit.
  const std::uint64_t at = std::max(group_position(g), g.commit_floor);
  Status why;
  detail::OffsetStore* store = store_of(*s.core, g, true, why);
  if (store == nullptr) return why;
  const std::string_view topic = g.log->name();
  if (store->committed(topic) != at) {
    if (Status st = store->commit(topic, at); !st.ok()) {
      return Status(st.code(), describe(g) + ": commit of position " + std::to_string(at) +
                                   " failed: " + std::string(st.message()));
    }
  }
  g.commit_floor = at;
  return {};
}

// poll's auto-commit, off the fast path: only members with an
// auto_commit_interval come here.
RINGBUS_NOINLINE Status auto_commit_if_due(MemberState& s) noexcept {
  if (platform::monotonic_ns() - s.last_commit_ns < s.auto_commit_ns) return {};
  try {
    return commit_position(s);
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "auto-commit of a group's position ran out of memory");
  }
}
} // namespace

GroupMember::GroupMember(GroupMember&& other) noexcept : state_(other.state_) { other.state_ = nullptr; }

GroupMember& GroupMember::operator=(GroupMember&& other) noexcept {
  if (this != &other) {
    close();
    state_ = other.state_;
    other.state_ = nullptr;
  }
  return *this;
}

GroupMember::~GroupMember() { close(); }

Result<Records> GroupMember::poll(std::size_t max_records, std::chrono::nanoseconds timeout) noexcept {
  MemberState* const s = state_;
  if (Status st = check_open(s); RINGBUS_UNLIKELY(!st.ok())) return st;
  acknowledge(*s);
  if (RINGBUS_UNLIKELY(s->auto_commit_ns != 0)) {
    // The position after acknowledging: everything given out so far was handled.
    if (Status st = auto_commit_if_due(*s); !st.ok()) return st;
  }
  std::uint64_t total = fill(*s, max_records);
  if (total == 0 && timeout.count() > 0 && max_records != 0) {
    const std::int64_t deadline = platform::deadline_after(timeout.count());
    detail::Waiter waiter(s->wait);
    for (std::uint32_t round = 1;; ++round) {
      if (s->wait == WaitStrategy::blocking && round > detail::Waiter::spin_steps + detail::Waiter::yield_steps) {
        sleep_until_data(*s, deadline);
      } else {
        waiter.idle();
      }
      total = fill(*s, max_records);
      if (total != 0) break;
      if ((s->wait != WaitStrategy::busy_spin || (round & 63) == 0) && platform::monotonic_ns() >= deadline) break;
      if (Status st = check_open(s); !st.ok()) return st;
    }
  }
  return Records(std::span<const detail::Chunk>(&s->chunk, 1), total, std::span<const Gap>());
}

Status GroupMember::ack() noexcept {
  if (Status st = check_open(state_); !st.ok()) return st;
  acknowledge(*state_);
  return {};
}

Result<std::uint64_t> GroupMember::position() const noexcept {
  const MemberState* const s = state_;
  if (Status st = check_open(s); !st.ok()) return st;
  return group_position(*s->group);
}

Result<std::uint64_t> GroupMember::lag() const noexcept {
  Result<std::uint64_t> at = position();
  if (!at.ok()) return at;
  const std::uint64_t end = state_->c.log->end_offset();
  return end > *at ? end - *at : 0;
}

Status GroupMember::commit() {
  if (Status st = check_open(state_); !st.ok()) return st;
  try {
    return commit_position(*state_);
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "commit of a group's position ran out of memory");
  }
}

Result<std::uint64_t> GroupMember::committed() const {
  if (Status st = check_open(state_); !st.ok()) return st;
  const GroupState& g = *state_->group;
  if (Status st = why_not_durable(*state_->core, g); !st.ok()) return st;
  std::lock_guard lock(g.offsets->mutex);
  Status why;
  const detail::OffsetStore* store = store_of(*state_->core, g, false, why);
  if (!why.ok()) return why;
  const std::optional<std::uint64_t> at = store == nullptr ? std::nullopt : store->committed(g.log->name());
  if (!at.has_value()) return Status(Errc::topic_not_found, describe(g) + " has no committed position");
  return *at;
}

std::string_view GroupMember::group() const noexcept {
  return state_ == nullptr ? std::string_view() : std::string_view(state_->group->name);
}

std::string_view GroupMember::topic() const noexcept {
  return state_ == nullptr ? std::string_view() : state_->c.log->name();
}

Status GroupMember::close() noexcept {
  MemberState* const s = state_;
  if (s == nullptr) return closed_status(); // works on a closed bus too: releases or hands over
  Status committed;
  if (s->auto_commit_ns != 0) {
    try {
      // acquire: pairs with the store in Bus::close, which released the
      // directory's lock: nothing may be written there any more.
      if (s->core->closed.load(std::memory_order_acquire)) {
        committed = Status(Errc::closed, describe(*s->group) +
                                             ": the bus was closed before this member; its position was not "
                                             "committed at close (close members before their bus)");
      } else {
        committed = commit_position(*s);
      }
    } catch (const std::bad_alloc&) {
      committed = Status(Errc::out_of_memory, "auto-commit of a group's position at close ran out of memory");
    }
  }
  GroupState& g = *s->group;
  detail::Log& log = *s->c.log;
  MemberRecord& r = *s->record;
  {
    std::lock_guard lock(g.membership);
    --g.open_members;
    if (holds_unacked(*s)) {
      // Hand over from the first unacknowledged record: the last poll's records
      // again (at-least-once) and the claimed frames not delivered yet.
      r.log_slot = s->c.slot;
      r.pos = s->batch_pos;
      r.skip = s->batch_skip;
      r.offset = s->batch_offset;
      r.range_end = s->range_end;
      r.held_offset.store(s->batch_offset, std::memory_order_release);    // (G3)
      r.state.store(detail::member_abandoned, std::memory_order_release); // (G5) pairs with (G6)
      g.abandoned.fetch_add(1, std::memory_order_relaxed);                // the count fill() peeks at; (G5) publishes
    } else {
      if (g.open_members == 0) {
        // The last one out keeps holding the group's position with its slot.
        g.anchor_slot = s->c.slot;
        hold_from(*s, g.claim.load(std::memory_order_acquire)); // (G2); stable: nobody is left to claim
      } else {
        log.unregister_reader(s->c.slot);
      }
      r.held_offset.store(detail::no_offset, std::memory_order_release); // (G3)
      r.state.store(detail::member_free, std::memory_order_release);     // pairs with the acquire in join
    }
  }
  detail::heap_delete(s);
  state_ = nullptr;
  return committed;
}

Result<GroupMember> Bus::group_member(std::string_view group, std::string_view topic, const GroupOptions& options) {
  if (!is_open()) return Status(Errc::closed, "bus is closed");
  if (Status st = validate_group_name(group); !st.ok()) return st;
  if (Status st = options.validate(); !st.ok()) {
    return Status(st.code(), "group '" + std::string(group) + "': " + std::string(st.message()));
  }
  Result<detail::Log*> found = core_->lookup(topic);
  if (!found.ok()) return found.status();
  detail::Log* log = *found;
  if (log->follower()) {
    return Status(Errc::invalid_argument, "group '" + std::string(group) + "': topic '" + std::string(topic) +
                                              "' is followed from a bus opened read-only (another process writes "
                                              "it); consumer groups need the writing bus");
  }
  if (log->overwrite()) {
    return Status(Errc::invalid_argument, "group '" + std::string(group) + "': topic '" + std::string(topic) +
                                              "' uses the overwrite policy; consumer groups need a block topic "
                                              "(overwrite groups are not supported yet)");
  }
  const WaitStrategy wait = options.override_wait ? options.wait : log->options().wait;
  if (wait == WaitStrategy::blocking && !log->blocking()) {
    return Status(Errc::invalid_argument, "wait strategy 'blocking' needs topic '" + std::string(topic) +
                                              "' to be created with TopicOptions::wait = blocking");
  }
  GroupState* g = nullptr;
  MemberState* s = nullptr;
  try {
    {
      std::lock_guard lock(core_->mutex);
      const detail::HeapString key = detail::group_key(group, topic);
      auto it = core_->groups.find(key);
      if (it == core_->groups.end()) {
        detail::BusCore::GroupPtr created(detail::heap_new<GroupState>(group, log));
        const detail::BusDirectory* disk = core_->disk.get();
        if (log->store() != nullptr && disk != nullptr && !disk->read_only && disk->groups.valid()) {
          // A durable position: the group name's store, shared with its other topics.
          auto o = core_->group_offsets.find(group);
          if (o == core_->group_offsets.end()) {
            o = core_->group_offsets
                    .emplace(detail::HeapString(group),
                             detail::BusCore::GroupOffsetsPtr(detail::heap_new<detail::GroupOffsets>()))
                    .first;
          }
          created->offsets = o->second.get();
        }
        it = core_->groups.emplace(key, std::move(created)).first;
      }
      g = it->second.get();
    }
    if (options.auto_commit_interval.count() > 0) {
      if (Status st = why_not_durable(*core_, *g); !st.ok()) {
        return Status(st.code(), std::string(st.message()) + " (GroupOptions::auto_commit_interval needs one)");
      }
    }
    s = detail::heap_new<MemberState>();
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "joining group '" + std::string(group) + "' ran out of memory");
  }
  s->core = core_;
  s->group = g;
  s->max_claim = options.max_claim_records;
  s->wait = wait;
  s->chunk.topic = log->name();
  s->c.log = log;
  s->auto_commit_ns = std::chrono::nanoseconds(options.auto_commit_interval).count();
  s->last_commit_ns = platform::monotonic_ns();
  std::lock_guard lock(g->membership);
  if (adopt_at_join(*s)) {
    // release: read by adopt()'s relaxed peek only (an active record is never
    // adopted); ordered for the membership scan by the mutex.
    s->record->state.store(detail::member_active, std::memory_order_release);
    ++g->open_members;
    return GroupMember(s);
  }
  // No record is abandoned now (close abandons under this lock), but a poll's
  // adopt() may still be finishing one: wait for it (a few stores; it never
  // waits), so that its place is free and the reader slot it swapped out is
  // back before we count places and slots.
  for (MemberRecord& r : g->members) {
    // acquire: pairs with the release that freed it (close, adopt).
    std::uint32_t state = r.state.load(std::memory_order_acquire);
    for (std::uint32_t attempt = 0; state == detail::member_adopting; ++attempt) {
      if (attempt < 1024) {
        detail::cpu_relax();
      } else {
        detail::thread_yield(); // its adopter was descheduled mid-hand-over
      }
      state = r.state.load(std::memory_order_acquire); // pairs with adopt()'s release
    }
    if (state == detail::member_free && s->record == nullptr) s->record = &r;
  }
  if (s->record == nullptr) {
    detail::heap_delete(s);
    return Status(Errc::too_many_consumers, "group '" + std::string(group) + "' in topic '" + std::string(topic) +
                                                "' has all its " + std::to_string(limits::max_group_members) +
                                                " member places taken by open members (limits::max_group_members)");
  }
  // A new group on a persistent topic resumes at its committed position, if any.
  std::optional<std::uint64_t> committed;
  if (!g->started && g->offsets != nullptr) {
    Status why;
    try {
      std::lock_guard offsets_lock(g->offsets->mutex); // after membership, as everywhere
      const detail::OffsetStore* store = store_of(*core_, *g, false, why);
      if (store != nullptr) committed = store->committed(topic);
    } catch (const std::bad_alloc&) {
      why = Status(Errc::out_of_memory, "joining group '" + std::string(group) + "' ran out of memory");
    }
    if (!why.ok()) {
      detail::heap_delete(s);
      return why;
    }
  }
  int slot = g->anchor_slot;
  g->anchor_slot = -1;
  if (slot < 0) {
    slot = log->register_reader(); // (R): holds the head
    if (slot < 0) {
      detail::heap_delete(s);
      return Status(Errc::too_many_consumers, "topic '" + std::string(topic) + "' has all its " +
                                                  std::to_string(log->options().max_consumers) +
                                                  " reader slots taken (TopicOptions::max_consumers; each group "
                                                  "member takes one)");
    }
  }
  s->c.slot = slot;
  s->c.released = log->slot(slot).position.load(std::memory_order_relaxed); // our own slot
  std::optional<ResumePoint> inside_frame;                                  // resuming at a record inside a frame
  if (!g->started) {
    std::uint64_t head = 0;
    std::uint64_t oldest = 0;
    log->protect_from_head(slot, head, oldest);
    std::uint64_t start = head;
    if (committed.has_value()) {
      // Instead of options.start: the committed position, clamped to the log.
      const ResumePoint r = resume_point(*log, slot, *committed, head);
      start = r.pos;
      if (r.skip != 0) {
        start = r.frame_end; // the rest of r's frame is this member's (below)
        inside_frame = r;
      }
      std::lock_guard offsets_lock(g->offsets->mutex);
      g->commit_floor = r.offset;
    } else if (options.start == StartPosition::latest) {
      start = position_of_end(*log, slot);
    }
    s->c.released = head;
    g->claim.store(start, std::memory_order_release); // (G1'): first placement, under membership
    g->started = true;
  }
  std::uint64_t held = detail::no_offset;
  if (inside_frame.has_value()) {
    // As if this member had claimed the resumed record's frame and delivered
    // the records before it: it holds [r.offset, the frame's end) unacknowledged.
    const ResumePoint& r = *inside_frame;
    hold_from(*s, r.pos); // our slot holds the head, <= r.pos
    s->c.pos = s->batch_pos = r.pos;
    s->c.skip = s->batch_skip = r.skip;
    s->c.offset = s->batch_offset = r.offset;
    s->range_end = r.frame_end;
    held = r.offset;
  } else {
    // Our slot (at the head, or the anchor at the claim) is <= claim; moving it
    // up to the claim releases nothing the group still needs (the group's other
    // holders are all <= claim).
    const std::uint64_t at = g->claim.load(std::memory_order_acquire); // (G2)
    if (s->c.released < at) hold_from(*s, at);
    s->c.pos = s->range_end = s->batch_pos = at;
  }
  // (G3) release: a resumed record is held before the member is handed out;
  // otherwise no scan counts this record before its member's (G3)/(G1) stores.
  s->record->held_offset.store(held, std::memory_order_release);
  // release: read by adopt()'s relaxed peek only (an active record is never
  // adopted); ordered for the membership scan by the mutex.
  s->record->state.store(detail::member_active, std::memory_order_release);
  ++g->open_members;
  return GroupMember(s);
}

} // namespace ringbus
