// The bytes of a frame, the unit the log is written in. Same layout in memory
// and (later) on disk. Little-endian, every frame 8-byte aligned, padded to 8,
// and never straddling a segment end.
//
// A DATA frame is a batch of records (Kafka's RecordBatch, in spirit):
//
//   0       4     5     6          8              12             16
//   +-------+-----+-----+----------+--------------+--------------+
//   |length |type |flags| lap      | record_count | checksum     |
//   +-------+-----+-----+----------+--------------+--------------+
//   16                              24                            32
//   +-------------------------------+-----------------------------+
//   | base_offset (u64)             | base_timestamp (i64, ns)    |
//   +-------------------------------+-----------------------------+
//   32 body ... (length - 32 bytes), then zero padding to 8
//
//   length       header + body bytes, without the padding. The frame occupies
//                align_up(length, 8) bytes of the segment (with
//                frame_flags::line_end: up to the next 64-byte line; with
//                frame_flags::pair_end: up to the next 128-byte boundary); its
//                end is frame_end(position, word0).
//   type         frame_type::data or frame_type::pad (none: nothing published here)
//   lap          (position / ring capacity) mod 2^16. The first 8 bytes are the
//                publication word: a reader accepts a frame only when its type is
//                set and its lap is the lap of the position it reads (see log.hpp).
//   flags        frame_flags::line_end: the frame runs to the next 64-byte
//                boundary of the ring, align_up(position + length, 64), not to
//                align_up(length, 8): the next frame starts on a cache line
//                (TopicOptions::line_aligned_appends; in-memory topics only,
//                recovery refuses the bit). Readers find a frame's end with
//                frame_end(). The padding past length is never read.
//                frame_flags::pair_end: the same to the next 128-byte
//                boundary, the pair of lines a core's adjacent-line
//                prefetcher fetches together (batch frames of at least
//                batch_pair_min_bytes in in-memory block-policy topics: see
//                Log::reserve_batch; recovery refuses the bit too).
//                frame_flags::packed: the body is record_count values of
//                (length - 32) / record_count bytes each; no keys, no headers,
//                every timestamp equals base_timestamp. The compact form for
//                fixed-size records: 8 B values cost 8 B each plus one header.
//                Without it, each record is encoded as:
//                  varint  rest       bytes of this record after this varint
//                  zigzag  ts_delta   timestamp - base_timestamp
//                  varint  key_len,   key bytes
//                  varint  value_len, value bytes
//                  varint  header_count, then per header:
//                    varint name_len, name, varint value_len, value
//   record_count records in the batch, >= 1; offsets are base_offset + i
//   checksum     persistent topics: frame_checksum() in checksum.hpp, the CRC32C of
//                bytes [0, 6), [8, 12) and [16, length) (all but the lap tag and the
//                checksum itself); 0 in memory
//
// A PAD frame fills the tail of a segment so that no frame straddles its end:
// only its first 8 bytes are written (length = bytes to the segment end,
// type = pad, lap). Readers skip it; it holds no record.
//
// Invariant: a DATA frame's length <= segment_bytes, and
//   record_count >= 1, base_offset(next frame) = base_offset + record_count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ringbus/detail/config.hpp"

namespace ringbus::detail {

enum class frame_type : std::uint8_t { none = 0, data = 1, pad = 2 };

namespace frame_flags {
inline constexpr std::uint8_t packed = 0x01;
inline constexpr std::uint8_t line_end = 0x02;
inline constexpr std::uint8_t pair_end = 0x04;
} // namespace frame_flags

// The line a frame with frame_flags::line_end runs to the end of.
inline constexpr std::uint64_t frame_line_bytes = 64;
// The line pair a frame with frame_flags::pair_end runs to the end of.
inline constexpr std::uint64_t frame_pair_bytes = 128;
// Batch frames this long or longer take frame_flags::pair_end (in-memory
// block-policy topics): the padding, under 128 bytes, is then at most 1/8 of
// the frame.
inline constexpr std::uint64_t batch_pair_min_bytes = 1024;

struct FrameHeader {
  std::uint32_t length;
  std::uint8_t type;
  std::uint8_t flags;
  std::uint16_t lap;
  std::uint32_t record_count;
  std::uint32_t checksum;
  std::uint64_t base_offset;
  std::int64_t base_timestamp;
};

inline constexpr std::size_t frame_header_bytes = 32;
inline constexpr std::size_t pad_frame_min_bytes = 8;

static_assert(sizeof(FrameHeader) == frame_header_bytes);
static_assert(offsetof(FrameHeader, length) == 0);
static_assert(offsetof(FrameHeader, type) == 4);
static_assert(offsetof(FrameHeader, flags) == 5);
static_assert(offsetof(FrameHeader, lap) == 6);
static_assert(offsetof(FrameHeader, record_count) == 8);
static_assert(offsetof(FrameHeader, checksum) == 12);
static_assert(offsetof(FrameHeader, base_offset) == 16);
static_assert(offsetof(FrameHeader, base_timestamp) == 24);

// A data frame's header fields, each read where it lies in the frame at f.
// The readers' hot paths take these, not a FrameHeader copied whole: gcc
// copies one through the stack (two 16-byte loads and stores, then reloads),
// which adds a store-to-load forward to a record's read.
inline std::uint32_t header_record_count(const std::byte* f) noexcept {
  std::uint32_t count;
  std::memcpy(&count, f + offsetof(FrameHeader, record_count), sizeof count);
  return count;
}
inline std::uint64_t header_base_offset(const std::byte* f) noexcept {
  std::uint64_t base;
  std::memcpy(&base, f + offsetof(FrameHeader, base_offset), sizeof base);
  return base;
}
inline std::int64_t header_base_timestamp(const std::byte* f) noexcept {
  std::int64_t ts;
  std::memcpy(&ts, f + offsetof(FrameHeader, base_timestamp), sizeof ts);
  return ts;
}

// The first 8 bytes of a frame as one word: length | type << 32 | flags << 40 | lap << 48.
constexpr std::uint64_t frame_word0(std::uint32_t length, frame_type type, std::uint8_t flags) noexcept {
  return std::uint64_t{length} | (std::uint64_t{static_cast<std::uint8_t>(type)} << 32) | (std::uint64_t{flags} << 40);
}
constexpr std::uint32_t word0_length(std::uint64_t w) noexcept { return static_cast<std::uint32_t>(w); }
constexpr frame_type word0_type(std::uint64_t w) noexcept { return static_cast<frame_type>((w >> 32) & 0xff); }
constexpr std::uint8_t word0_flags(std::uint64_t w) noexcept { return static_cast<std::uint8_t>(w >> 40); }
constexpr std::uint64_t word0_lap_bits(std::uint64_t w) noexcept { return w & (std::uint64_t{0xffff} << 48); }

// Where the data frame at ring position p, whose publication word is word0,
// ends: the next frame's position. Positions and addresses of a ring agree
// modulo 128 (rings are mapped page-aligned), so it takes either. Not so in an
// overwrite reader's staging copy (it starts at any 8-aligned position), but
// no line_end or pair_end frame gets there: overwrite topics write none.
constexpr std::uint64_t frame_end(std::uint64_t p, std::uint64_t word0) noexcept {
  const std::uint8_t flags = word0_flags(word0);
  const std::uint64_t mask = (flags & frame_flags::pair_end) != 0   ? frame_pair_bytes - 1
                             : (flags & frame_flags::line_end) != 0 ? frame_line_bytes - 1
                                                                    : frame_alignment - 1;
  return (p + word0_length(word0) + mask) & ~mask;
}
inline const std::byte* frame_end(const std::byte* f, std::uint64_t word0) noexcept {
  const auto at = reinterpret_cast<std::uintptr_t>(f);
  return f + (frame_end(at, word0) - at);
}

// Bytes of each value of a packed frame of `length` bytes and `count`
// records. One record (the per-record append's frames) takes no division: a
// 32-bit div is ~26 cycles on the reader's path of every rtt hop. Written
// `count <= 1`, not `count == 1`: gcc folds the latter into the plain
// division (body / 1 == body), and it cannot fold this one (count 0 would
// divide by zero).
constexpr std::uint32_t packed_value_bytes(std::uint32_t length, std::uint32_t count) noexcept {
  const std::uint32_t body = length - static_cast<std::uint32_t>(frame_header_bytes);
  return count <= 1 ? body : body / count;
}

} // namespace ringbus::detail
