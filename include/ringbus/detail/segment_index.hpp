// A sparse index of one segment: offset -> byte position and time -> byte
// position, so a seek is a binary search plus a short scan, not a walk of the
// segment. Built by scanning the segment's frames (rebuild, catch_up) or fed
// frame by frame (add_frame); optionally persisted next to the segment as a
// checksummed file that is verified against the segment before it is used.
//
// An entry is taken at the first frame of the segment and then at the first
// frame starting at least interval_bytes after the previous entry:
//
//   entry = { offset: first offset of the frame at position,
//             max_timestamp_before: largest timestamp of the records of this
//                 segment before position (INT64_MIN for the first entry),
//             position: byte position of the frame, from the segment's data start }
//
//   lookup_offset(o): the last entry with offset <= o. Every record >= o
//       lies at or after its position; with dense offsets, at most
//       interval_bytes + one frame are scanned to reach o.
//   lookup_time(t): the last entry with max_timestamp_before < t. Every record
//       before its position is older than t, so the first record with
//       timestamp >= t is at or after it. With non-decreasing timestamps the
//       next entry's max_timestamp_before >= t bounds the scan to one interval.
//       (Timestamps are the producer's and need not be ordered: the lookup stays
//       correct, the scan may grow.)
//
// Invariants: positions strictly increase, are 8-aligned and < segment_bytes;
// offsets strictly increase from base_offset; max_timestamp_before never decreases.
//
// Persisted form (optional; "00000000000000004096.idx" next to the segment):
//
//   0                     8               12              16
//   +---------------------+---------------+---------------+
//   | magic "RBUS-IDX"    | format_version| interval_bytes|
//   +---------------------+---------------+---------------+
//   16                  24                 32                  40
//   +-------------------+------------------+-------------------+
//   | base_offset (u64) | segment_bytes    | next_offset (u64) |
//   +-------------------+------------------+-------------------+
//   40                  48             52            56          60          64
//   +-------------------+--------------+-------------+-----------+-----------+
//   | max_timestamp     | end_position | entry_count | checksum  | lap_tag   |
//   +-------------------+--------------+-------------+-----------+-----------+
//   64 entry_count x SegmentIndexEntry (24 bytes each, layout below)
//
//   checksum: CRC32C of bytes [0, 56), [60, 64) and of the entries.
//   lap_tag:  1 + the lap tag of the segment's frames; 0 before the first frame.
//
// Thread safety: none. Scanning reads the segment with plain loads: the caller
// passes only bytes below a published tail it loaded with acquire (or bytes of
// a segment no one writes).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/detail/memory.hpp"
#include "ringbus/status.hpp"

namespace ringbus::detail {

// The bytes are the in-memory structs, copied: this layout is little-endian only.
static_assert(std::endian::native == std::endian::little);

//   0                 8                       16          20          24
//   +-----------------+-----------------------+-----------+-----------+
//   | offset (u64)    | max_timestamp_before  | position  | reserved 0|
//   +-----------------+-----------------------+-----------+-----------+
struct SegmentIndexEntry {
  std::uint64_t offset;
  std::int64_t max_timestamp_before;
  std::uint32_t position;
  std::uint32_t reserved;
};
static_assert(offsetof(SegmentIndexEntry, offset) == 0);
static_assert(offsetof(SegmentIndexEntry, max_timestamp_before) == 8);
static_assert(offsetof(SegmentIndexEntry, position) == 16);
static_assert(offsetof(SegmentIndexEntry, reserved) == 20);
static_assert(sizeof(SegmentIndexEntry) == 24);

struct SegmentIndexFileHeader {
  char magic[8];
  std::uint32_t format_version;
  std::uint32_t interval_bytes;
  std::uint64_t base_offset;
  std::uint64_t segment_bytes;
  std::uint64_t next_offset;
  std::int64_t max_timestamp;
  std::uint32_t end_position;
  std::uint32_t entry_count;
  std::uint32_t checksum;
  std::uint32_t lap_tag;
};
static_assert(offsetof(SegmentIndexFileHeader, magic) == 0);
static_assert(offsetof(SegmentIndexFileHeader, format_version) == 8);
static_assert(offsetof(SegmentIndexFileHeader, interval_bytes) == 12);
static_assert(offsetof(SegmentIndexFileHeader, base_offset) == 16);
static_assert(offsetof(SegmentIndexFileHeader, segment_bytes) == 24);
static_assert(offsetof(SegmentIndexFileHeader, next_offset) == 32);
static_assert(offsetof(SegmentIndexFileHeader, max_timestamp) == 40);
static_assert(offsetof(SegmentIndexFileHeader, end_position) == 48);
static_assert(offsetof(SegmentIndexFileHeader, entry_count) == 52);
static_assert(offsetof(SegmentIndexFileHeader, checksum) == 56);
static_assert(offsetof(SegmentIndexFileHeader, lap_tag) == 60);
static_assert(sizeof(SegmentIndexFileHeader) == 64);

inline constexpr std::uint32_t segment_index_format_version = 1;
inline constexpr std::uint32_t min_index_interval_bytes = 64;
inline constexpr std::int64_t no_timestamp = std::numeric_limits<std::int64_t>::min();

// Where a scan for a record should start.
struct IndexPosition {
  std::uint32_t position = 0; // a frame start, relative to the segment's data
  std::uint64_t offset = 0;   // the first offset of that frame
};

// Why a scan stopped.
enum class ScanStop : std::uint8_t {
  end_of_data,   // a zero word: nothing written past here yet (a live or crashed tail)
  segment_full,  // the frames (and a closing pad frame) reach the segment's end
  invalid_frame, // a frame failed validation: the log is cut here (see problem)
  limit,         // reached the `until` position the caller gave
};
std::string_view to_string(ScanStop stop) noexcept;

struct ScanOptions {
  // Check each DATA frame's CRC32C (persistent topics). In-memory frames carry 0.
  bool verify_checksums = true;
  // The lap tag every frame must carry; unset: the first frame's lap.
  std::optional<std::uint16_t> lap;
  // A frame of another lap where the next frame would be ends the data
  // (end_of_data) instead of being invalid: a recycled segment file (README
  // "Persistence") holds its previous lap's frames past this lap's last one.
  bool other_lap_ends_data = false;
};

class SegmentIndex {
 public:
  // An empty index of the segment [base_offset, ...) of segment_bytes data
  // bytes; invalid_argument when interval_bytes < 64 or segment_bytes is not
  // a power of two in [4 KiB, 1 GiB].
  static Result<SegmentIndex> create(std::uint64_t base_offset, std::uint64_t segment_bytes,
                                     std::uint32_t interval_bytes);

  // Notes a DATA frame, in order, at position (where the previous one ended)
  // with offsets [first_offset, first_offset + records) and the largest
  // timestamp among them. Allocates only when an entry is added past the capacity reserved so far.
  void add_frame(std::uint32_t position, std::uint32_t frame_bytes, std::uint64_t first_offset, std::uint32_t records,
                 std::int64_t max_timestamp);
  // Notes that a pad frame (or the segment's end) closes the segment.
  void seal() noexcept;
  // Reserves room for every entry the segment could need, so add_frame never allocates.
  void reserve_all();

  // Walks frames from end_position() up to `until` (a frame boundary <= the
  // data size; default: all of data), validating each one: length bounds,
  // type, flags, record count, offsets continuing from next_offset(), record
  // encoding, lap tag and checksum. Stops at the first invalid frame, which is
  // not indexed; end_position() is then where the valid log ends.
  ScanStop catch_up(std::span<const std::byte> data, const ScanOptions& options = {},
                    std::optional<std::uint32_t> until = std::nullopt);
  // Why the last catch_up stopped at an invalid frame ("" otherwise).
  [[nodiscard]] const std::string& problem() const noexcept { return problem_; }

  // An index rebuilt from a segment's data (create + catch_up).
  static Result<SegmentIndex> rebuild(std::span<const std::byte> data, std::uint64_t base_offset,
                                      std::uint32_t interval_bytes, const ScanOptions& options = {});

  [[nodiscard]] IndexPosition lookup_offset(std::uint64_t offset) const noexcept;
  [[nodiscard]] IndexPosition lookup_time(std::int64_t timestamp_ns) const noexcept;

  [[nodiscard]] std::uint64_t base_offset() const noexcept { return base_offset_; }
  [[nodiscard]] std::uint64_t segment_bytes() const noexcept { return segment_bytes_; }
  [[nodiscard]] std::uint32_t interval_bytes() const noexcept { return interval_bytes_; }
  // Offset of the next record after the indexed frames.
  [[nodiscard]] std::uint64_t next_offset() const noexcept { return next_offset_; }
  // Where the indexed frames end (the next frame starts here).
  [[nodiscard]] std::uint32_t end_position() const noexcept { return end_position_; }
  // Largest timestamp of an indexed record; no_timestamp when none.
  [[nodiscard]] std::int64_t max_timestamp() const noexcept { return max_timestamp_; }
  [[nodiscard]] std::span<const SegmentIndexEntry> entries() const noexcept {
    return {entries_.data(), entries_.size()};
  }
  // True once a pad frame or the segment's end was reached.
  [[nodiscard]] bool sealed() const noexcept { return sealed_; }

  // The persisted form (layout above).
  [[nodiscard]] std::vector<std::byte> encode() const;
  // Reads a persisted index of the segment (base_offset, segment_bytes);
  // corrupt_data names file_name and the field when it is damaged or another segment's.
  static Result<SegmentIndex> decode(std::span<const std::byte> bytes, std::string_view file_name,
                                     std::uint64_t base_offset, std::uint64_t segment_bytes);
  // Checks a decoded index against the segment's data: every entry names a
  // DATA frame with that first offset, and end_position is the end of data.
  // corrupt_data when it does not hold (rebuild instead).
  // verify_checksums false: the segment's frames carry no CRC32C (FrameChecksumKind::none).
  [[nodiscard]] Status verify(std::span<const std::byte> data, std::string_view file_name,
                              bool verify_checksums = true) const;

 private:
  SegmentIndex(std::uint64_t base_offset, std::uint64_t segment_bytes, std::uint32_t interval_bytes) noexcept;

  std::vector<SegmentIndexEntry, HeapAllocator<SegmentIndexEntry>> entries_;
  std::uint64_t base_offset_ = 0;
  std::uint64_t segment_bytes_ = 0;
  std::uint64_t next_offset_ = 0;
  std::int64_t max_timestamp_ = no_timestamp;
  std::uint32_t interval_bytes_ = 0;
  std::uint32_t end_position_ = 0;
  std::optional<std::uint16_t> lap_; // lap of the frames scanned so far
  bool sealed_ = false;
  std::string problem_;
};

// "00000000000000004096.idx": the index file of the segment with that base offset.
std::string segment_index_file_name(std::uint64_t base_offset);

} // namespace ringbus::detail
