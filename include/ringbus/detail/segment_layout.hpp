// The bytes of a segment file of a persistent topic. Little-endian.
//
// A persistent topic is a directory; each segment is one file named by its
// base offset, zero-padded to 20 digits: 00000000000000004096.seg. The file is
// a header page, then the segment's frames (frame_layout.hpp):
//
//   file offset 0           page_size                      page_size + segment_bytes
//   +-----------------------+------------------------------+
//   | header (this page)    | data: frames, as in memory   |
//   +-----------------------+------------------------------+
//
// The data starts at page_size so it can be mapped on its own (an mmap offset
// is a multiple of the page size) next to the other segments of the ring.
//
// The header, at file offset 0 (the rest of its page is zero but for the seal):
//
//   0                     8               12              16
//   +---------------------+---------------+---------------+
//   | magic "RBUS-SEG"    | format_version| page_size     |
//   +---------------------+---------------+---------------+
//   16                                    24                                    32
//   +-------------------------------------+-------------------------------------+
//   | segment_bytes (u64)                 | base_offset (u64)                   |
//   +-------------------------------------+-------------------------------------+
//   32                                    40              44              48
//   +-------------------------------------+---------------+---------------+
//   | created_ns (i64)                    | frame_checksum| name_length   |
//   +-------------------------------------+---------------+---------------+
//   48                                                                     304
//   +----------------------------------------------------------------------+
//   | topic_name: name_length bytes, then zeros (255 bytes at most + a 0)   |
//   +----------------------------------------------------------------------+
//   304                                   312                                   320
//   +-------------------------------------+-------------------------------------+
//   | base_position (u64)                 | ring_capacity (u64)                 |
//   +-------------------------------------+-------------------------------------+
//   320               324               328
//   +-----------------+-----------------+-- zeros to segment_header_bytes ---
//   | flags           | header_checksum |
//   +-----------------+-----------------+
//
//   magic           identifies a ringbus segment file
//   format_version  segment_format_version of the build that wrote it; another
//                   version is refused (no silent reinterpretation)
//   page_size       bytes before the data: a power of two >= 4096 and a
//                   multiple of the reading system's page size
//   segment_bytes   bytes of data: a power of two in [4 KiB, 1 GiB], equal to
//                   the topic's segment size
//   base_offset     offset of the first record in the segment; equals the
//                   number in the file name
//   created_ns      wall clock (ns since the epoch) when the file was created
//   frame_checksum  how DATA frames are checksummed: 1 = CRC32C (frame_checksum()
//                   in checksum.hpp), what this version writes for every
//                   topic; 0 = not at all (accepted when read: the checksum
//                   field is 0 and recovery checks the frames' structure only;
//                   README "Checksums")
//   name_length     bytes of topic_name: 1..255
//   base_position   byte position of the segment's first frame in the topic's
//                   unbounded log (a multiple of segment_bytes): with
//                   ring_capacity it gives the lap tag the frames carry
//   ring_capacity   segment_bytes * segment_count of the topic that wrote it
//   flags           segment_flags: opened_mid_batch = the segment was begun
//                   while a batch that started in an earlier segment was not
//                   yet published (recovery then checks that segment is sealed)
//   header_checksum CRC32C of bytes [0, 324)
//
// The seal, at file offset 512 of the header page (zeros until written):
//
//   512                                   520                                   528
//   +-------------------------------------+-------------------------------------+
//   | base_position (u64)                 | end_offset (u64)                    |
//   +-------------------------------------+-------------------------------------+
//   528                                   536               540               544
//   +-------------------------------------+-----------------+-----------------+
//   | boot (u64)                          | seal_checksum   | zero            |
//   +-------------------------------------+-----------------+-----------------+
//
//   Written by the bus's flusher (in topics whose segments have 4 MiB or
//   more: TopicStore::seal_min_segment_bytes) once the writer has published
//   past the segment's end: every frame of it, the pad that ends it
//   included, was in place before (the flusher reads the tail with
//   acquire). base_position names the segment it is for (a recycled file's
//   header is rewritten, zeros and all, and a seal of an older lap never
//   matches its position), end_offset is the next segment's base_offset,
//   boot a hash of the boot id of the system that wrote it (seal_boot_tag
//   in topic_store.hpp), seal_checksum the CRC32C of bytes [512, 536). Recovery takes a valid
//   seal that matches the next segment, written in this boot, for the walk
//   that proves a segment sealed (TopicStore::sealed), and only while the
//   directory's last writer ran in this boot too (writer_boot.hpp). A seal
//   of another boot is never trusted: its page may have reached the disk
//   without the data's, and a recovery after that reboot may have cut the
//   segment it vouched for. Older builds leave the bytes zero and ignore them.
//
// Invariants: file size = page_size + segment_bytes (preallocated), and
//   base_offset(next segment) = base_offset + records in this segment.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "ringbus/status.hpp"

namespace ringbus::detail {

// The bytes are the in-memory structs, copied: this layout is little-endian only.
static_assert(std::endian::native == std::endian::little);

inline constexpr std::size_t segment_header_bytes = 4096;
inline constexpr std::uint32_t segment_format_version = 1;
inline constexpr std::array<char, 8> segment_magic{'R', 'B', 'U', 'S', '-', 'S', 'E', 'G'};
inline constexpr std::size_t segment_topic_name_capacity = 256; // 255 bytes of name + at least one zero

enum class FrameChecksumKind : std::uint32_t { none = 0, crc32c = 1 };

namespace segment_flags {
inline constexpr std::uint32_t opened_mid_batch = 0x1;
inline constexpr std::uint32_t known = opened_mid_batch;
} // namespace segment_flags

struct SegmentHeader {
  char magic[8];
  std::uint32_t format_version;
  std::uint32_t page_size;
  std::uint64_t segment_bytes;
  std::uint64_t base_offset;
  std::int64_t created_ns;
  std::uint32_t frame_checksum;
  std::uint32_t name_length;
  char topic_name[segment_topic_name_capacity];
  std::uint64_t base_position;
  std::uint64_t ring_capacity;
  std::uint32_t flags;
  std::uint32_t header_checksum;
};

static_assert(offsetof(SegmentHeader, magic) == 0);
static_assert(offsetof(SegmentHeader, format_version) == 8);
static_assert(offsetof(SegmentHeader, page_size) == 12);
static_assert(offsetof(SegmentHeader, segment_bytes) == 16);
static_assert(offsetof(SegmentHeader, base_offset) == 24);
static_assert(offsetof(SegmentHeader, created_ns) == 32);
static_assert(offsetof(SegmentHeader, frame_checksum) == 40);
static_assert(offsetof(SegmentHeader, name_length) == 44);
static_assert(offsetof(SegmentHeader, topic_name) == 48);
static_assert(offsetof(SegmentHeader, base_position) == 304);
static_assert(offsetof(SegmentHeader, ring_capacity) == 312);
static_assert(offsetof(SegmentHeader, flags) == 320);
static_assert(offsetof(SegmentHeader, header_checksum) == 324);
inline constexpr std::size_t segment_header_checked_bytes = offsetof(SegmentHeader, header_checksum);
static_assert(sizeof(SegmentHeader) <= segment_header_bytes);
static_assert(sizeof(SegmentHeader) <= 512, "the seal follows the header (segment_seal_at)");

// What a header says, in the words of the code.
struct SegmentHeaderFields {
  std::uint32_t page_size = 4096;
  std::uint64_t segment_bytes = 0;
  std::uint64_t base_offset = 0;
  std::int64_t created_ns = 0;
  std::uint64_t base_position = 0;
  std::uint64_t ring_capacity = 0;
  std::uint32_t flags = 0;
  FrameChecksumKind frame_checksum = FrameChecksumKind::crc32c;
  std::string topic;
};

// Writes the header of fields into out (at least segment_header_bytes; the
// rest of that page is zeroed) with its checksum. invalid_argument names a field out of its limits.
Status encode_segment_header(std::span<std::byte> out, const SegmentHeaderFields& fields);

// Checks the header at the start of bytes, read from file file_name, against
// the topic and segment size it must have (ring_capacity and base_position are
// checked for shape: a power of two of at least two segments, a multiple of
// segment_bytes; the caller compares them across segments); corrupt_data names the file and the
// field, e.g. "segment 00000000000000000000.seg: format_version 7, this build reads 1".
// On success fills *out when given.
Status validate_segment_header(std::span<const std::byte> bytes, std::string_view file_name,
                               std::string_view expected_topic, std::uint64_t expected_segment_bytes,
                               SegmentHeaderFields* out = nullptr);

// The seal of a segment (see the layout above): where it lies in the header
// page and what it says.
inline constexpr std::size_t segment_seal_at = 512;
inline constexpr std::size_t segment_seal_bytes = 32;
static_assert(segment_seal_at + segment_seal_bytes <= segment_header_bytes);
struct SegmentSeal {
  std::uint64_t base_position = 0;
  std::uint64_t end_offset = 0;
  std::uint64_t boot = 0;
};
// The seal's bytes, checksum included.
std::array<std::byte, segment_seal_bytes> encode_segment_seal(const SegmentSeal& seal) noexcept;
// The seal in a header page read from a file (bytes from file offset 0);
// nullopt when there is none or it does not validate (zeros, a torn write,
// a checksum that does not match, bytes short of it).
std::optional<SegmentSeal> decode_segment_seal(std::span<const std::byte> header) noexcept;

// Where the data of a segment with this header starts in its file.
constexpr std::uint64_t segment_data_offset(const SegmentHeaderFields& fields) noexcept { return fields.page_size; }

// "00000000000000004096.seg" for base offset 4096: 20 digits, zero-padded.
std::string segment_file_name(std::uint64_t base_offset);
// The base offset a segment file name stands for; nullopt for any other name
// (not 20 digits, not ".seg", a value past 2^64 - 1).
std::optional<std::uint64_t> parse_segment_file_name(std::string_view name) noexcept;

inline constexpr std::size_t segment_file_name_digits = 20;
inline constexpr std::string_view segment_file_suffix = ".seg";

} // namespace ringbus::detail
