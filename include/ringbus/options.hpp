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
  wall_clock, // CLOCK_REALTIME at append, in ns since the epoch (one read per call)
  none,       // 0 unless the producer sets one: for the last nanoseconds
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
};

// Limits the library enforces, in one place.
namespace limits {
inline constexpr std::size_t max_topic_name_bytes = 255;
inline constexpr std::size_t min_segment_bytes = 4096;
inline constexpr std::size_t max_segment_bytes = std::size_t{1} << 30;
inline constexpr std::size_t min_segment_count = 2;
inline constexpr std::size_t max_capacity_bytes = std::size_t{64} << 30;
inline constexpr std::size_t max_consumers = 4096;
inline constexpr std::size_t max_headers = 65535;
} // namespace limits

// Checks a topic name: 1..255 bytes, no '/', no NUL, not "." or "..", no "..".
[[nodiscard]] Status validate_topic_name(std::string_view name);

std::string_view to_string(OverflowPolicy p) noexcept;
std::string_view to_string(WaitStrategy w) noexcept;

} // namespace ringbus
