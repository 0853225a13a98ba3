// The shared state of one consumer group in one topic: the claim position its
// members compete for, one record per member (what it holds unacknowledged),
// and the hand-over of a departed member's records. See ringbus/group.hpp for
// the semantics and group.cpp for the protocol.
//
// Invariants (positions are byte positions in the topic's log):
//   claim is a frame boundary and only grows (members CAS it forward).
//   every member's and every abandoned record's reader slot <= claim, and
//   <= the frame of the first record it holds unacknowledged; with no open
//   member, the anchor slot (or an abandoned record's slot) holds the claim.
//   So the producer (block policy) never overwrites a record the group has not
//   acknowledged, nor one no member has claimed yet.
//   group position (offset) = min(offset at claim, every record's held_offset):
//   every record below it has been acknowledged.
//   commit_floor <= group position (persistent topics): a commit stores
//   max(a position snapshot, commit_floor), never more than the truth and
//   never less than an earlier commit of this bus's life.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>

#include "ringbus/detail/config.hpp"
#include "ringbus/detail/log.hpp"
#include "ringbus/detail/memory.hpp"
#include "ringbus/detail/offset_store.hpp"
#include "ringbus/options.hpp"

namespace ringbus::detail {

inline constexpr std::uint64_t no_offset = UINT64_MAX;

enum member_state : std::uint32_t {
  member_free = 0,      // no member
  member_active = 1,    // an open member
  member_abandoned = 2, // closed without ack: its records wait for another member
  member_adopting = 3,  // being taken over by another member
};

struct alignas(cache_line) MemberRecord {
  // (G3) The first offset this member holds unacknowledged (delivered, or
  // claimed and not delivered yet); no_offset when it holds none. Stored by the
  // member (release, or relaxed before the claim CAS (G1), whose release
  // publishes it); acquire-loaded by position().
  std::atomic<std::uint64_t> held_offset{no_offset};
  // (G5) release by the member that abandons the record; (G6) acquire CAS by the
  // member that adopts it: the hand-over fields below travel with it.
  std::atomic<std::uint32_t> state{member_free};
  // Hand-over (plain; see state): the reader slot that still holds the bytes,
  // the first unacknowledged record (frame position, records of that frame
  // already acknowledged, its offset) and the end of the claimed frames.
  int log_slot = -1;
  std::uint64_t pos = 0;
  std::uint32_t skip = 0;
  std::uint64_t offset = 0;
  std::uint64_t range_end = 0;
};

// The durable positions of one group name in every persistent topic it is in:
// <dir>/groups/<group>.offsets, an OffsetStore with one entry per topic.
// Shared by the group's GroupStates (one per topic) and all their members;
// owned by BusCore::group_offsets (lives as long as the bus core).
struct GroupOffsets {
  // Serializes commits (OffsetStore is single-threaded; each commit is a
  // pwrite and an fdatasync: a cold path) and reads of the committed map.
  std::mutex mutex;
  // Opened at the group's first join when the file exists, else at its first
  // commit (which creates it).
  std::optional<OffsetStore> store;
};

struct GroupState {
  GroupState(std::string_view group_name, Log* topic_log) : name(group_name), log(topic_log) {}

  HeapString name;
  Log* log;
  // (G1) CAS acq_rel by members claiming frames [claim, new); (G2) acquire
  // loads. Written by every member: on its own line.
  alignas(cache_line) std::atomic<std::uint64_t> claim{0};
  // Records in member_abandoned: peeked at (relaxed) by every poll, written
  // rarely (relaxed; the record's state, (G5)/(G6), carries the hand-over).
  alignas(cache_line) std::atomic<std::uint32_t> abandoned{0};
  // Hand-overs begun and finished: position() retries while one runs, since a
  // range moving between two records could be missed by its scan.
  std::atomic<std::uint64_t> handovers_begun{0};
  std::atomic<std::uint64_t> handovers_done{0};
  // Cold path: joining and leaving.
  std::mutex membership;
  bool started = false; // claim has been placed (first join)
  std::uint32_t open_members = 0;
  // Holds the claim while no member is open; the next join takes it over, or
  // unregisters it when it takes an abandoned record's slot instead.
  int anchor_slot = -1;
  MemberRecord members[limits::max_group_members];
  // Durable position: set at creation for a persistent topic of a writable
  // bus on a directory, else null (commit() then says why not).
  GroupOffsets* offsets = nullptr;
  // Guarded by offsets->mutex: the position this group resumed at or last
  // committed in this bus's life. A position snapshot may lag the truth a
  // little (see position()), the truth only grows: commits never go below it.
  std::uint64_t commit_floor = 0;
};

// Registry key of a group in a topic (names contain no NUL).
inline HeapString group_key(std::string_view group, std::string_view topic) {
  HeapString key(group);
  key.push_back('\0');
  key.append(topic);
  return key;
}

} // namespace ringbus::detail
