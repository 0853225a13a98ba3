// GroupMember: one of the competing consumers of a named consumer group in a
// topic (work-queue semantics on top of the log). Each record of the topic is
// handed to exactly one live member; members claim whole frames from the
// group's one shared position with a compare-and-swap (no mutex), so a member
// never decodes a frame it does not own.
//
// Acknowledgement: a poll acknowledges the previous poll's records (or ack()
// does, explicitly). A member that closes (or is destroyed) without
// acknowledging hands what it holds to another member: the records of its
// last poll and any claimed records it had not delivered yet. The next member
// to join takes them over (with the departed member's place and reader slot),
// or else the next poll of any member, before claiming new ones. So a
// member's loss costs at most a redelivery of its last poll's records
// (at-least-once for that batch); every other record is delivered once.
//
// The group's position is the lowest offset not yet acknowledged (one shared
// value; every record below it is done). It holds the producer of a block
// topic like a consumer's position, including while no member is open: the
// group outlives its members for as long as the bus lives.
//
// Durable position (a persistent topic of a bus opened writable on a
// directory): commit() stores the group's position in
// <dir>/groups/<group>.offsets (one entry per topic; two checksummed slots,
// fdatasynced: after a crash the old or the new position, never garbage).
// When the group is next created on that topic (the first member joins after
// a restart) it resumes at the committed position, clamped to what the log
// holds, instead of GroupOptions::start. Records at or past the committed
// position are delivered again after a restart: those in flight at the
// commit (delivered, not yet acknowledged) too, so at-least-once for them.
//
// Groups need block-policy topics (overwrite topics are refused). A
// GroupMember is used by one thread at a time; its poll's views are valid
// until its next poll or close.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ringbus/records.hpp"
#include "ringbus/status.hpp"

namespace ringbus {

namespace detail {
struct MemberState;
} // namespace detail

class GroupMember {
 public:
  GroupMember() noexcept = default; // not open; every call says closed
  GroupMember(GroupMember&& other) noexcept;
  GroupMember& operator=(GroupMember&& other) noexcept;
  GroupMember(const GroupMember&) = delete;
  GroupMember& operator=(const GroupMember&) = delete;
  ~GroupMember(); // close(): without ack, so what it holds goes to another member

  // Acknowledges the previous poll's records (then, with
  // GroupOptions::auto_commit_interval, commits the group's position when it
  // is due and returns that commit's error, if any), then returns up to max_records
  // records this member now owns: first the rest of frames it claimed before,
  // else records a departed member left, else newly claimed frames (at most
  // GroupOptions::max_claim_records records' worth, whole frames). Waits up
  // to timeout (by the wait strategy) when there is nothing; zero: no wait,
  // nanoseconds::max() waits for good.
  Result<Records> poll(std::size_t max_records = SIZE_MAX,
                       std::chrono::nanoseconds timeout = std::chrono::nanoseconds::zero()) noexcept;

  // Acknowledges the records of the last poll now (a poll does it otherwise).
  // Their views stay readable until the next poll.
  Status ack() noexcept;

  // The group's position in its topic: every record below it has been
  // acknowledged by some member. A snapshot that may lag the truth a little
  // while others work, never run ahead of it.
  Result<std::uint64_t> position() const noexcept;
  // Records published to the topic that the group has not acknowledged.
  Result<std::uint64_t> lag() const noexcept;

  // Durable position: stores the group's position() (never below what this
  // bus committed for the group before, see above) and fdatasyncs it. Any
  // member may commit, from any thread; commits of a group are serialized.
  // Needs a persistent topic of a bus opened writable on a directory; else
  // invalid_argument naming the group and why. Cold path.
  Status commit();
  // The position last committed for this group in its topic (by this bus or
  // an earlier one on the directory); topic_not_found when none was.
  Result<std::uint64_t> committed() const;

  [[nodiscard]] std::string_view group() const noexcept;
  [[nodiscard]] std::string_view topic() const noexcept;

  // Leaves the group. Records of the last poll that were not acknowledged,
  // and claimed records not yet delivered, go to another member. With
  // GroupOptions::auto_commit_interval, first commits the group's position
  // (the records handed over are at or past it) and returns that commit's
  // error, if any; a member closed after its bus cannot commit and says so.
  Status close() noexcept;
  [[nodiscard]] bool is_open() const noexcept { return state_ != nullptr; }

 private:
  friend class Bus;
  explicit GroupMember(detail::MemberState* state) noexcept : state_(state) {}
  detail::MemberState* state_ = nullptr;
};

} // namespace ringbus
