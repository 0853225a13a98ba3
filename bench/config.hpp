// The knobs every impl shares, so that the rows of a scenario differ only in
// the queue: same capacity, same payload, same batch size, same pinning.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ringbus::bench {

// Capacity. Every peer gets a fixed ring of 65536 slots, allocated and
// touched before timing starts. ringbus gets a ring of 65536 * sizeof(payload)
// bytes: the same payload bytes, i.e. 65536 payloads in its packed form minus
// one 32-byte frame header per batch (63,550 8 B values at a batch of 256; a
// record appended alone costs a whole frame: 64 B for an 8 B value on the
// line-aligned topics of the 8 B append rows, which hold 8,192 such records,
// 40 B without the option). The ring is cut into
// ringbus_segment_count segments, the library's default count.
inline constexpr std::size_t peer_slots = 65536;
inline constexpr std::size_t ringbus_segment_count = 8;
template <class Payload>
inline constexpr std::size_t ringbus_ring_bytes = peer_slots * sizeof(Payload);

// Batch size for every batched write: ringbus claim_values, moodycamel
// try_enqueue_bulk, boost spsc_queue push(T*, n); and the buffer moodycamel's
// try_dequeue_bulk_from_producer dequeues into. The zero-copy reads (ringbus
// poll(), boost consume_all) take all there is.
inline constexpr std::size_t batch_values = 256;

// Fan-out capacity: each consumer may fall as far behind the producer as a
// spsc consumer may. ringbus keeps one ring of ringbus_ring_bytes (one copy
// of every item, whatever the number of consumers); rwq_copies keeps one
// queue of peer_slots slots per consumer (N copies, N times the memory).

// persist_append: every row's topic has persist_segment_count segments of
// persist_segment_bytes (the library's defaults: 8 x 1 MiB), in memory or in
// files, 64 B records written as spsc_64B/ringbus_batch writes them.
// replay and recover: a topic of persist_log_bytes in segments of
// log_segment_bytes, log_segment_count of them (room for the whole log, so
// nothing is dropped while it is written).
inline constexpr std::size_t persist_segment_bytes = std::size_t{1} << 20;
inline constexpr std::size_t persist_segment_count = 8;
inline constexpr std::size_t log_segment_bytes = std::size_t{64} << 20;
inline constexpr std::size_t log_segment_count = 32;

// How much work one run does; --quick shrinks it.
// spsc_* and rtt runs whose placement probe (placement.hpp) reads a bare
// round trip below this many ns are set aside as measured on one physical
// core: between the two clusters seen on this project's machine (about 57 and
// about 290 ns).
inline constexpr double default_one_core_below_ns = 150;
// The largest threshold the flags take (1 s: every run is set aside long before).
inline constexpr double max_one_core_below_ns = 1e9;

struct RunConfig {
  std::uint64_t items_per_iteration = 0;        // spsc_*: items moved per timed iteration
  std::int64_t iterations = 0;                  // spsc_*: timed iterations per run
  std::uint64_t warmup_items = 0;               // spsc_*: untimed items moved first (touches every slot twice)
  std::uint64_t rtt_samples = 0;                // rtt: round trips recorded per run
  std::uint64_t rtt_warmup = 0;                 // rtt: untimed round trips first
  std::uint64_t fanout_items_per_iteration = 0; // fanout_*: items published per timed iteration
  std::int64_t fanout_iterations = 0;           // fanout_*: timed iterations per run
  int cpus = 2;                                 // CPUs the process may use (fanout_* pins round robin over them)
  bool quick = false;
  double one_core_below_ns = default_one_core_below_ns; // spsc_*, rtt: a probe below this sets the run aside (0: none)
  std::uint64_t persist_items_per_iteration = 0;        // persist_append/{memory,none,interval}
  std::uint64_t persist_sync_items_per_iteration = 0;   // persist_append/sync (each commit waits for the disk)
  std::int64_t persist_sync_iterations = 0;             // persist_append/sync
  std::uint64_t persist_sync_warmup_items = 0;          // persist_append/sync
  std::uint64_t persist_log_bytes = 0;                  // replay, recover: value bytes in the topic
  std::int64_t replay_iterations = 0;                   // replay: timed reads of the whole log per run
  std::string persist_dir;                              // replay, recover, persist_append: temporary buses go here
  std::string persist_filesystem;                       // its file system (statfs), e.g. "ext4" or "tmpfs"
};

} // namespace ringbus::bench
