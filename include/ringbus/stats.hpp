// TopicStats: a topic's live counters, as Bus::stats(topic) samples them
// (README "Statistics"). What they cost the hot path: nothing per record.
//   - records and bytes are not counted per append: they are the difference
//     between what the log already publishes (its end offset and its tail
//     position) now and when this bus opened or created the topic;
//   - producer waits are timed only when the producer actually waits (a roll
//     that finds no room under the block policy), rolls of a persistent topic
//     only at the roll (once per segment);
//   - laps are counted only where a lapped consumer learns what it lost.
// Every counter is a relaxed atomic written on those slow paths: a sample is
// a set of counters each exact at some moment during the call, not one
// instant of the whole topic (statistics need no ordering with the data).
#pragma once

#include <chrono>
#include <cstdint>

namespace ringbus {

struct TopicStats {
  // When the sample was taken (CLOCK_MONOTONIC, shared by every process of the machine).
  std::chrono::steady_clock::time_point sampled_at{};
  // Offset the next record will get (as TopicInfo::end_offset).
  std::uint64_t end_offset = 0;
  // Records published since this bus created or opened the topic (a
  // persistent topic's recovered records are not counted; end_offset is).
  std::uint64_t records_appended = 0;
  // Log bytes published over the same span: frame bytes (the 32-byte frame
  // header, the record encoding, alignment to 8) plus the pad frames that
  // fill the end of a segment: what the records took in the ring, not their
  // payload bytes.
  std::uint64_t bytes_appended = 0;
  // Block policy: how many times a producer found the ring full and waited
  // for the slowest consumer (append, claim, a SharedProducer's sequencer;
  // try_append refusals are not waits), and for how long in total. A wait
  // is counted when it begins, its time added when it ends.
  std::uint64_t producer_waits = 0;
  std::uint64_t producer_wait_ns = 0;
  // Persistent topics: segment rolls and the time the producer spent in them
  // (retention, mapping the next file; creating it when the flusher had none
  // ready). 0 for in-memory topics, whose rolls cost no system call.
  std::uint64_t segment_rolls = 0;
  std::uint64_t segment_roll_ns = 0;
  // Overwrite policy, retention under overwrite, and read-only followers
  // lapped by the writing process: how many times a consumer of this bus was
  // told it lost records (one per Gap), and how many records that was.
  std::uint64_t lapped_consumers = 0;
  std::uint64_t records_lost_by_lapped_consumers = 0;
  // Reader slots in use: subscribed consumers, group members and groups
  // whose members all left (a group keeps its slot).
  std::uint32_t open_consumers = 0;
  bool has_producer = false;
};

// Append rates between two samples of the same topic (`later` taken after
// `earlier`): the counters' differences over the time between them. Zero
// when no time passed or the samples are out of order.
struct AppendRate {
  double records_per_second = 0;
  double bytes_per_second = 0;
  double seconds = 0; // the span the rates are over
};
AppendRate append_rate(const TopicStats& earlier, const TopicStats& later) noexcept;

} // namespace ringbus
