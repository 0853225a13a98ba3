// The bytes of a topic's stats file: <bus>/topics/<topic>/stats, the live
// counters of the topic's writing process for `ringbus stat` in another
// process (Aeron's CnC counters file in miniature). Little-endian, 4096 bytes,
// created 0600 by the writable Bus that opens or creates the topic, mapped
// MAP_SHARED, and rewritten every BusOptions::stats_interval by the bus's
// flusher thread from the in-process counters (the hot path writes nothing
// here), and once more at Bus::close. Not part of the log: recovery and
// `ringbus verify` pass over it; a damaged or foreign one is never trusted.
//
// The identity (written once, before the file gets its name):
//
//   0                     8               12              16
//   +---------------------+---------------+---------------+
//   | magic "RBUS-STA"    | format_version| file_bytes    |
//   +---------------------+---------------+---------------+
//   16                    24                    32              36              40
//   +---------------------+---------------------+---------------+---------------+
//   | writer_pid (i64)    | started_ns (i64)    | name_length   | ident_checksum|
//   +---------------------+---------------------+---------------+---------------+
//   40                                                                     296
//   +----------------------------------------------------------------------+
//   | topic_name: name_length bytes, then zeros (255 bytes at most + a 0)   |
//   +----------------------------------------------------------------------+
//
// The snapshot (rewritten in place under a seqlock), from 320: every field a
// 64-bit word, stored by the writer with one atomic store each:
//
//   320 sequence          even: stable; odd: the writer is inside an update
//   328 updated_mono_ns   CLOCK_MONOTONIC at the sample (TopicStats::sampled_at)
//   336 updated_real_ns   CLOCK_REALTIME at the sample (for the age, across reboots)
//   344 end_offset        the TopicStats fields, in this order
//   352 records_appended
//   360 bytes_appended
//   368 producer_waits
//   376 producer_wait_ns
//   384 segment_rolls
//   392 segment_roll_ns
//   400 lapped_consumers
//   408 records_lost_by_lapped_consumers
//   416 open_consumers (low 32 bits) | flags (high 32 bits: stats_flags)
//   424 snapshot_checksum (low 32 bits: CRC32C of the words 328..424) | 0
//   432 .. 4096 zeros
//
//   magic           identifies a ringbus stats file
//   format_version  stats_format_version; another version is not read
//   file_bytes      4096
//   writer_pid      the process that writes it (it holds <bus>/LOCK while alive)
//   started_ns      CLOCK_REALTIME when that process opened or created the topic:
//                   records_appended and bytes_appended count from there
//   ident_checksum  CRC32C of bytes [0, 36) and of the name bytes
//
// The seqlock (writer: the flusher thread, or Bus::close after the flusher
// stopped: one writer at a time; reader: any process, read-only mapping):
//   writer: sequence.store(s + 1, relaxed); each word.store(release);
//           sequence.store(s + 2, release)
//   reader: s1 = sequence.load(acquire); each word.load(acquire);
//           s2 = sequence.load(relaxed); the copy is whole when s1 == s2, s1 even
//           and the snapshot checksum matches.
// A word the reader took from a later update was stored (release) after that
// update's odd sequence, so its acquire load makes the reread see the odd
// (or a later) sequence; a stable even s1 (acquire, pairs with the release
// that ends an update) makes every word at least as new as that update. The
// checksum catches what the sequence cannot: a damaged file. A writer killed
// inside an update leaves the sequence odd: the reader reports a torn file.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ringbus::detail {

static_assert(std::endian::native == std::endian::little);

inline constexpr std::size_t stats_file_bytes = 4096;
inline constexpr std::uint32_t stats_format_version = 1;
inline constexpr std::array<char, 8> stats_magic{'R', 'B', 'U', 'S', '-', 'S', 'T', 'A'};
inline constexpr std::size_t stats_topic_name_capacity = 256; // 255 bytes of name + at least one zero

namespace stats_flags {
inline constexpr std::uint32_t has_producer = 0x1;
inline constexpr std::uint32_t closed = 0x2; // the final values: the writer closed its bus
} // namespace stats_flags

struct StatsIdentity {
  char magic[8];
  std::uint32_t format_version;
  std::uint32_t file_bytes;
  std::int64_t writer_pid;
  std::int64_t started_ns;
  std::uint32_t name_length;
  std::uint32_t ident_checksum;
  char topic_name[stats_topic_name_capacity];
};
static_assert(offsetof(StatsIdentity, magic) == 0);
static_assert(offsetof(StatsIdentity, format_version) == 8);
static_assert(offsetof(StatsIdentity, file_bytes) == 12);
static_assert(offsetof(StatsIdentity, writer_pid) == 16);
static_assert(offsetof(StatsIdentity, started_ns) == 24);
static_assert(offsetof(StatsIdentity, name_length) == 32);
static_assert(offsetof(StatsIdentity, ident_checksum) == 36);
static_assert(offsetof(StatsIdentity, topic_name) == 40);
inline constexpr std::size_t stats_ident_checked_bytes = offsetof(StatsIdentity, ident_checksum);

// The snapshot's words, by index from stats_snapshot_offset.
namespace stats_word {
enum : std::size_t {
  sequence,
  updated_mono_ns,
  updated_real_ns,
  end_offset,
  records_appended,
  bytes_appended,
  producer_waits,
  producer_wait_ns,
  segment_rolls,
  segment_roll_ns,
  lapped_consumers,
  records_lost_by_lapped_consumers,
  consumers_and_flags,
  checksum,
  count,
};
} // namespace stats_word
inline constexpr std::size_t stats_snapshot_offset = 320;
static_assert(sizeof(StatsIdentity) <= stats_snapshot_offset);
static_assert(stats_snapshot_offset % 64 == 0); // the snapshot starts a cache line of its own
static_assert(stats_snapshot_offset + stats_word::updated_mono_ns * 8 == 328);
static_assert(stats_snapshot_offset + stats_word::end_offset * 8 == 344);
static_assert(stats_snapshot_offset + stats_word::records_lost_by_lapped_consumers * 8 == 408);
static_assert(stats_snapshot_offset + stats_word::consumers_and_flags * 8 == 416);
static_assert(stats_snapshot_offset + stats_word::checksum * 8 == 424);
static_assert(stats_snapshot_offset + stats_word::count * 8 <= stats_file_bytes);

inline constexpr std::string_view stats_file_name = "stats";

} // namespace ringbus::detail
