// Every tunable of a topic and a consumer, in one place, validated once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/status.hpp"

namespace ringbus {

// What the producer does when the slowest open consumer is a whole ring behind.
enum class OverflowPolicy : std::uint8_t {
  block,     // lossless: wait (append) or say would_block (try_append)
  overwrite, // never wait: a lapped consumer is told how many records it lost
};

// How a thread waits for data (consumer) or room (producer, block policy).
enum class WaitStrategy : std::uint8_t {
  busy_spin, // spin with a pause instruction: lowest latency, burns a core
  yield,     // sched_yield between checks: for more threads than cores
  backoff,   // spin, then yield, then sleep up to 1 ms: the general default
  blocking,  // futex sleep; producer wakes sleepers (the topic must be created blocking)
};

// Where a new consumer starts in a topic.
enum class StartPosition : std::uint8_t {
  earliest, // the oldest record the ring still holds
  latest,   // the next record to be appended
};

// Where record timestamps come from when the producer gives none.
enum class TimestampSource : std::uint8_t {
  // CLOCK_REALTIME at append, in ns since the epoch. Where the kernel keeps
  // time with the TSC, read from the counter (an rdtsc, re-anchored to
  // CLOCK_REALTIME every millisecond): within a few microseconds of it, and
  // a topic's stamps never decrease unless CLOCK_REALTIME is set back (by
  // more than a millisecond; less is absorbed). Elsewhere a clock_gettime
  // per call. See detail/clock.hpp.
  wall_clock,
  none, // 0 unless the producer sets one: for the last nanoseconds
};

// Where a topic's log lives.
enum class Storage : std::uint8_t {
  bus_default, // persistent on a bus opened on a directory (Bus::open), memory otherwise
  memory,      // anonymous memory: gone with the bus
  persistent,  // segment files under the bus's directory (needs Bus::open)
};

// What a persistent topic promises about appended records (README "Durability").
enum class Durability : std::uint8_t {
  none,     // page cache only: survives a crash of the process, not of the machine
  interval, // flushed (msync + fdatasync) every flush_interval or flush_bytes
  sync,     // append returns after its records are on disk; a batch shares one flush
};

// When a persistent topic deletes its oldest segment files (checked at each
// segment roll; the segment just sealed and the new one are always kept). 0
// disables a limit. A segment a consumer still reads is kept until it moves
// on (block policy) or is lapped (overwrite policy): see README "Retention". The ring capacity
// (segment_bytes * segment_count) always bounds what is kept.
struct Retention {
  std::uint64_t max_bytes = 0;         // total bytes of segment data
  std::chrono::nanoseconds max_age{0}; // a segment sealed (the next one begun) longer ago
  std::size_t max_segments = 0;        // segment files kept, the open one included
};

struct TopicOptions {
  // Size of one segment in bytes: a power of two, at least 4 KiB, at most 1 GiB.
  // A record (frame header + key + value + headers) must fit in one segment.
  std::size_t segment_bytes = std::size_t{1} << 20;
  // Segments in the ring: a power of two, at least 2. Ring capacity is
  // segment_bytes * segment_count, at most 64 GiB.
  std::size_t segment_count = 8;
  OverflowPolicy overflow = OverflowPolicy::block;
  // Default for consumers of this topic and how the producer waits for room.
  // Only a topic created `blocking` can have consumers that sleep in the kernel:
  // its producer then checks for sleepers after each publish.
  WaitStrategy wait = WaitStrategy::backoff;
  TimestampSource timestamps = TimestampSource::wall_clock;
  // Open consumers a topic can hold at once (reader slots); at most 4096.
  std::size_t max_consumers = 64;
  // Back the ring with 2 MiB transparent huge pages where the system has them.
  bool huge_pages = false;
  // Touch every page at creation so the first lap takes no page faults.
  bool prefault = true;
  // Latency: every per-record append (Producer::append, try_append) pads its
  // frame to the end of a 64-byte cache line, so the next record's frame
  // starts on a line of its own and a reader takes a small record with one
  // line transfer instead of two whenever a frame would straddle a line. An
  // 8 B value then takes 64 B of ring instead of 40 B. In-memory topics with
  // the block policy only. Claims and batches are not per-record appends:
  // they keep the 8-byte layout, except that in every in-memory block-policy
  // topic, with or without this option, a batch frame (append_values,
  // append_batch, claim_values) of 1 KiB or more ends on a 128-byte boundary.
  bool line_aligned_appends = false;

  // --- persistence (a topic of a bus opened on a directory; README "Persistence") ---
  Storage storage = Storage::bus_default;
  Durability durability = Durability::none;
  // Durability::interval: flush when this much time passed since the last
  // flush, or (when not 0) this many bytes were appended since.
  std::chrono::milliseconds flush_interval{10};
  std::size_t flush_bytes = 0;
  Retention retention{};

  [[nodiscard]] std::size_t capacity_bytes() const noexcept { return segment_bytes * segment_count; }
  // Checks every field; the error names the field, its value and its limit.
  [[nodiscard]] Status validate() const;
};

struct ConsumerOptions {
  std::vector<std::string> topics; // subscribed at creation (more with subscribe())
  StartPosition start = StartPosition::earliest;
  // Overrides the topic's wait strategy when set.
  bool override_wait = false;
  WaitStrategy wait = WaitStrategy::backoff;
  // Optional name, unique among the bus's open consumers (validated like a
  // topic name). Other consumers can run `after` a named one.
  std::string name;
  // Pipelines (Disruptor-style gating): names of open consumers this one runs
  // after. In each topic it reads, it only gets records that every listed
  // consumer subscribed to that topic (when this one subscribes) has passed.
  // A record is passed when its consumer moved past its whole frame: it polled
  // again after the poll that returned the record's last record of that frame,
  // or sought past it. When an upstream closes or unsubscribes, its gate stays
  // where it last was. See README "Pipelines".
  std::vector<std::string> after;
  // Durable offsets (a named consumer of a bus opened on a directory): where
  // commit() stores its positions, and a subscription to a persistent topic
  // resumes at the committed offset when there is one (else at `start`).
  // Not 0: poll() also commits when this much time passed since the last
  // commit, and close() commits.
  std::chrono::milliseconds auto_commit_interval{0};
};

// How Bus::open treats its directory.
struct BusOptions {
  // Open for reading only: topics found in the directory can be consumed
  // (live, while another process writes them); no producer, no topic
  // creation, no commits. Files are mapped read-only and no lock is taken.
  bool read_only = false;
  // Run one thread that flushes topics with Durability::interval. Off: the
  // application calls Bus::flush() itself.
  bool flusher_thread = true;
  // How often the flusher thread rewrites each persistent topic's stats file
  // (<dir>/topics/<topic>/stats: the live counters `ringbus stat` reads from
  // another process; README "Statistics"). Without the flusher the file is
  // written at open and at close only. Zero: no stats files.
  std::chrono::milliseconds stats_interval{100};
};

// A member of a consumer group (competing consumers): see ringbus/group.hpp.
struct GroupOptions {
  // Where a new group starts; a member joining an existing group takes the
  // group's position.
  StartPosition start = StartPosition::earliest;
  // Most records one claim takes from the group's shared position (whole
  // frames: a claim ends at the first frame boundary at or past this, or at
  // the poll's max_records if smaller). At least 1.
  std::size_t max_claim_records = 256;
  // Overrides the topic's wait strategy when set.
  bool override_wait = false;
  WaitStrategy wait = WaitStrategy::backoff;
  // Durable position (a persistent topic of a bus opened writable on a
  // directory; see GroupMember::commit). Not 0: poll() also commits the
  // group's position when this much time passed since this member's last
  // commit, and close() commits. Other topics refuse it at join.
  std::chrono::milliseconds auto_commit_interval{0};

  [[nodiscard]] Status validate() const;
};

// Limits the library enforces, in one place.
namespace limits {
inline constexpr std::size_t max_topic_name_bytes = 255;
// A named consumer's or a group's durable offsets live in <name>.offsets,
// written as <name>.offsets.tmp: one path component of at most 255 bytes.
inline constexpr std::size_t max_consumer_name_bytes = 255 - 12; // 243
inline constexpr std::size_t max_group_name_bytes = 255 - 12;    // 243
inline constexpr std::size_t min_segment_bytes = 4096;
inline constexpr std::size_t max_segment_bytes = std::size_t{1} << 30;
inline constexpr std::size_t min_segment_count = 2;
inline constexpr std::size_t max_capacity_bytes = std::size_t{64} << 30;
inline constexpr std::size_t max_consumers = 4096;
inline constexpr std::size_t max_headers = 65535;
inline constexpr std::size_t max_group_members = 64;     // open members per group and topic
inline constexpr std::size_t max_committed_topics = 256; // topics one named consumer can commit offsets of
// Longest interval option (flush_interval, stats_interval,
// auto_commit_interval): 366 days. Longer ones would overflow on their way
// to nanoseconds (a milliseconds::max() became -1 ms: act at every chance).
inline constexpr std::chrono::milliseconds max_interval{366LL * 24 * 3600 * 1000};
} // namespace limits

// Checks a topic name: 1..255 bytes, no '/', no NUL, not "." or "..", no "..".
[[nodiscard]] Status validate_topic_name(std::string_view name);
// The same rules for a consumer's or a group's name, 1..243 bytes (its
// offsets file's name must fit a path component); the error says which.
[[nodiscard]] Status validate_consumer_name(std::string_view name);
[[nodiscard]] Status validate_group_name(std::string_view name);
// Checks an interval option named `name`: 0 to limits::max_interval.
[[nodiscard]] Status validate_interval(std::string_view name, std::chrono::milliseconds interval);

std::string_view to_string(OverflowPolicy p) noexcept;
std::string_view to_string(WaitStrategy w) noexcept;
std::string_view to_string(Durability d) noexcept;

} // namespace ringbus
