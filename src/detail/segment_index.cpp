#include "ringbus/detail/segment_index.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

#include "ringbus/detail/checksum.hpp"
#include "ringbus/detail/config.hpp"
#include "ringbus/detail/frame.hpp"
#include "ringbus/detail/frame_layout.hpp"
#include "ringbus/options.hpp"

namespace ringbus::detail {

namespace {

constexpr std::array<char, 8> index_magic{'R', 'B', 'U', 'S', '-', 'I', 'D', 'X'};
constexpr std::size_t index_checksum_field = offsetof(SegmentIndexFileHeader, checksum);
constexpr std::size_t index_lap_field = offsetof(SegmentIndexFileHeader, lap_tag);

std::uint32_t index_checksum(const std::byte* file, std::size_t entry_bytes) noexcept {
  std::uint32_t crc = crc32c_extend(0, file, index_checksum_field);
  crc = crc32c_extend(crc, file + index_lap_field, 4);
  return crc32c_extend(crc, file + sizeof(SegmentIndexFileHeader), entry_bytes);
}

std::string hex32(std::uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

// What one frame is, once it passed validation.
struct FrameFacts {
  frame_type type = frame_type::none;
  std::uint32_t bytes = 0; // bytes it occupies (aligned)
  std::uint32_t records = 0;
  std::uint16_t lap = 0;
  std::int64_t max_timestamp = no_timestamp;
};

// Validates the general-form body [p, end) of count records; sets the largest timestamp.
bool check_records(const std::byte* p, const std::byte* end, std::uint32_t count, std::int64_t base_ts,
                   std::int64_t& max_ts, std::string& why) {
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint64_t rest = 0;
    if ((p = get_varint(p, end, rest)) == nullptr || rest > static_cast<std::uint64_t>(end - p)) {
      why = "record " + std::to_string(i) + " runs past the frame";
      return false;
    }
    const std::byte* const next = p + rest;
    std::uint64_t v = 0;
    if ((p = get_varint(p, next, v)) == nullptr) {
      why = "record " + std::to_string(i) + " has a bad timestamp";
      return false;
    }
    const auto ts = static_cast<std::int64_t>(static_cast<std::uint64_t>(base_ts) +
                                              static_cast<std::uint64_t>(unzigzag(v))); // wraps like the encoder
    max_ts = std::max(max_ts, ts);
    // key, value, then header_count pairs of (name, value): each a length and its bytes.
    std::uint64_t header_count = 0;
    for (int field = 0; field < 3; ++field) {
      if ((p = get_varint(p, next, v)) == nullptr) break;
      if (field == 2) {
        header_count = v;
        // The decoder (decode_record in frame.hpp) refuses more; and 2 * count below must not wrap.
        if (header_count > 0xffffffffu) p = nullptr;
        break;
      }
      if (v > static_cast<std::uint64_t>(next - p)) {
        p = nullptr;
        break;
      }
      p += v;
    }
    for (std::uint64_t h = 0; p != nullptr && h < 2 * header_count; ++h) {
      if ((p = get_varint(p, next, v)) == nullptr || v > static_cast<std::uint64_t>(next - p)) {
        p = nullptr;
        break;
      }
      p += v;
    }
    if (p != next) {
      why = "record " + std::to_string(i) + " is malformed (its fields do not fill its length)";
      return false;
    }
  }
  if (p != end) {
    why = "bytes follow its last record";
    return false;
  }
  return true;
}

// Checks the frame at data[position] (remaining bytes to the segment end).
// Returns false with why set for an invalid frame; facts.type none for a zero word.
bool check_frame(const std::byte* frame, std::uint64_t remaining, std::uint64_t expected_offset,
                 const ScanOptions& options, const std::optional<std::uint16_t>& lap, FrameFacts& facts,
                 std::string& why) {
  std::uint64_t word0 = 0;
  std::memcpy(&word0, frame, sizeof word0);
  facts = FrameFacts{};
  if (word0 == 0) return true; // nothing written here
  const std::uint32_t length = word0_length(word0);
  const frame_type type = word0_type(word0);
  const std::uint8_t flags = word0_flags(word0);
  facts.lap = static_cast<std::uint16_t>(word0 >> 48);
  const std::optional<std::uint16_t> want_lap = options.lap.has_value() ? options.lap : lap;
  if (want_lap.has_value() && facts.lap != *want_lap) {
    why = "lap tag " + std::to_string(facts.lap) + ", the segment's frames carry " + std::to_string(*want_lap);
    return false;
  }
  if (type == frame_type::pad) {
    if (flags != 0 || length < pad_frame_min_bytes || length != remaining) {
      why = "pad frame of length " + std::to_string(length) + " does not end the segment (" +
            std::to_string(remaining) + " bytes remain)";
      return false;
    }
    facts.type = type;
    facts.bytes = length;
    return true;
  }
  if (type != frame_type::data) {
    why = "type " + std::to_string(static_cast<unsigned>(type)) + " is neither data (1) nor pad (2)";
    return false;
  }
  if (length < frame_header_bytes || align_up(length, frame_alignment) > remaining) {
    why = "length " + std::to_string(length) + " is outside [32, " + std::to_string(remaining) +
          "] (header size, bytes left in the segment)";
    return false;
  }
  if ((flags & ~frame_flags::packed) != 0) {
    why = "flags " + hex32(flags) + " has unknown bits";
    return false;
  }
  FrameHeader h{};
  std::memcpy(&h, frame, sizeof h);
  if (h.record_count == 0) {
    why = "record_count 0 (a data frame holds at least one record)";
    return false;
  }
  if (h.base_offset != expected_offset) {
    why = "base_offset " + std::to_string(h.base_offset) + ", the previous frames end at offset " +
          std::to_string(expected_offset);
    return false;
  }
  if (h.base_offset > UINT64_MAX - h.record_count) {
    why = "record_count " + std::to_string(h.record_count) + " overflows offsets past 2^64";
    return false;
  }
  if (options.verify_checksums) {
    const std::uint32_t computed = frame_checksum(frame, length);
    if (computed != h.checksum) {
      why = "checksum " + hex32(h.checksum) + ", the frame's CRC32C is " + hex32(computed);
      return false;
    }
  }
  const std::byte* body = frame + frame_header_bytes;
  const std::byte* end = frame + length;
  if ((flags & frame_flags::packed) != 0) {
    if ((length - frame_header_bytes) % h.record_count != 0) {
      why = "packed body of " + std::to_string(length - frame_header_bytes) + " bytes does not split into " +
            std::to_string(h.record_count) + " equal values";
      return false;
    }
    facts.max_timestamp = h.base_timestamp;
  } else if (!check_records(body, end, h.record_count, h.base_timestamp, facts.max_timestamp, why)) {
    return false;
  }
  facts.type = type;
  facts.bytes = static_cast<std::uint32_t>(align_up(length, frame_alignment));
  facts.records = h.record_count;
  return true;
}

bool valid_segment_bytes(std::uint64_t bytes) noexcept {
  return is_power_of_two(bytes) && bytes >= limits::min_segment_bytes && bytes <= limits::max_segment_bytes;
}

} // namespace

std::string_view to_string(ScanStop stop) noexcept {
  switch (stop) {
    case ScanStop::end_of_data: return "end_of_data";
    case ScanStop::segment_full: return "segment_full";
    case ScanStop::invalid_frame: return "invalid_frame";
    case ScanStop::limit: return "limit";
  }
  return "unknown";
}

SegmentIndex::SegmentIndex(std::uint64_t base_offset, std::uint64_t segment_bytes,
                           std::uint32_t interval_bytes) noexcept
    : base_offset_(base_offset),
      segment_bytes_(segment_bytes),
      next_offset_(base_offset),
      interval_bytes_(interval_bytes) {}

Result<SegmentIndex> SegmentIndex::create(std::uint64_t base_offset, std::uint64_t segment_bytes,
                                          std::uint32_t interval_bytes) {
  if (!valid_segment_bytes(segment_bytes)) {
    return Status(Errc::invalid_argument, "segment index: segment_bytes " + std::to_string(segment_bytes) +
                                              " must be a power of two in [4 KiB, 1 GiB]");
  }
  if (interval_bytes < min_index_interval_bytes) {
    return Status(Errc::invalid_argument, "segment index: interval_bytes " + std::to_string(interval_bytes) +
                                              " is below the minimum " + std::to_string(min_index_interval_bytes));
  }
  return SegmentIndex(base_offset, segment_bytes, interval_bytes);
}

void SegmentIndex::reserve_all() { entries_.reserve(segment_bytes_ / interval_bytes_ + 1); }

void SegmentIndex::add_frame(std::uint32_t position, std::uint32_t frame_bytes, std::uint64_t first_offset,
                             std::uint32_t records, std::int64_t max_timestamp) {
  if (entries_.empty() || position >= std::uint64_t{entries_.back().position} + interval_bytes_) {
    entries_.push_back(SegmentIndexEntry{first_offset, max_timestamp_, position, 0});
  }
  max_timestamp_ = std::max(max_timestamp_, max_timestamp);
  next_offset_ = first_offset + records;
  end_position_ = position + frame_bytes;
  if (end_position_ == segment_bytes_) sealed_ = true;
}

void SegmentIndex::seal() noexcept {
  end_position_ = static_cast<std::uint32_t>(segment_bytes_);
  sealed_ = true;
}

ScanStop SegmentIndex::catch_up(std::span<const std::byte> data, const ScanOptions& options,
                                std::optional<std::uint32_t> until) {
  problem_.clear();
  if (data.size() != segment_bytes_) {
    problem_ = "the data is " + std::to_string(data.size()) + " bytes, the segment " + std::to_string(segment_bytes_);
    return ScanStop::invalid_frame;
  }
  const std::uint64_t limit = std::min<std::uint64_t>(until.value_or(UINT32_MAX), segment_bytes_);
  for (;;) {
    if (sealed_ || end_position_ >= segment_bytes_) {
      sealed_ = true;
      return ScanStop::segment_full;
    }
    if (end_position_ >= limit) return ScanStop::limit;
    if (limit < segment_bytes_) {
      // Read nothing at or past the caller's limit (a published tail): a frame
      // reaching past it is not published as a whole.
      std::uint64_t word0 = 0;
      std::memcpy(&word0, data.data() + end_position_, sizeof word0);
      if (word0 != 0 && end_position_ + align_up(word0_length(word0), frame_alignment) > limit) return ScanStop::limit;
    }
    if (options.other_lap_ends_data) {
      const std::optional<std::uint16_t> want_lap = options.lap.has_value() ? options.lap : lap_;
      std::uint64_t word0 = 0;
      std::memcpy(&word0, data.data() + end_position_, sizeof word0);
      if (word0 != 0 && want_lap.has_value() && static_cast<std::uint16_t>(word0 >> 48) != *want_lap) {
        return ScanStop::end_of_data;
      }
    }
    FrameFacts facts;
    if (!check_frame(data.data() + end_position_, segment_bytes_ - end_position_, next_offset_, options, lap_, facts,
                     problem_)) {
      problem_ = "frame at position " + std::to_string(end_position_) + " (offset " + std::to_string(next_offset_) +
                 "): " + problem_;
      return ScanStop::invalid_frame;
    }
    if (facts.type == frame_type::none) return ScanStop::end_of_data;
    if (!lap_.has_value()) lap_ = facts.lap;
    if (facts.type == frame_type::pad) {
      seal();
      return ScanStop::segment_full;
    }
    add_frame(end_position_, facts.bytes, next_offset_, facts.records, facts.max_timestamp);
  }
}

Result<SegmentIndex> SegmentIndex::rebuild(std::span<const std::byte> data, std::uint64_t base_offset,
                                           std::uint32_t interval_bytes, const ScanOptions& options) {
  Result<SegmentIndex> index = create(base_offset, data.size(), interval_bytes);
  if (!index.ok()) return index;
  index->catch_up(data, options);
  return index;
}

IndexPosition SegmentIndex::lookup_offset(std::uint64_t offset) const noexcept {
  const auto it = std::upper_bound(entries_.begin(), entries_.end(), offset,
                                   [](std::uint64_t o, const SegmentIndexEntry& e) { return o < e.offset; });
  if (it == entries_.begin()) return IndexPosition{0, base_offset_};
  return IndexPosition{std::prev(it)->position, std::prev(it)->offset};
}

IndexPosition SegmentIndex::lookup_time(std::int64_t timestamp_ns) const noexcept {
  const auto it = std::partition_point(entries_.begin(), entries_.end(), [timestamp_ns](const SegmentIndexEntry& e) {
    return e.max_timestamp_before < timestamp_ns;
  });
  if (it == entries_.begin()) return IndexPosition{0, base_offset_};
  return IndexPosition{std::prev(it)->position, std::prev(it)->offset};
}

std::vector<std::byte> SegmentIndex::encode() const {
  const std::size_t entry_bytes = entries_.size() * sizeof(SegmentIndexEntry);
  std::vector<std::byte> out(sizeof(SegmentIndexFileHeader) + entry_bytes);
  SegmentIndexFileHeader h{};
  std::memcpy(h.magic, index_magic.data(), index_magic.size());
  h.format_version = segment_index_format_version;
  h.interval_bytes = interval_bytes_;
  h.base_offset = base_offset_;
  h.segment_bytes = segment_bytes_;
  h.next_offset = next_offset_;
  h.max_timestamp = max_timestamp_;
  h.end_position = end_position_;
  h.entry_count = static_cast<std::uint32_t>(entries_.size());
  h.lap_tag = lap_.has_value() ? std::uint32_t{*lap_} + 1 : 0;
  std::memcpy(out.data(), &h, sizeof h);
  if (entry_bytes != 0) std::memcpy(out.data() + sizeof h, entries_.data(), entry_bytes);
  const std::uint32_t checksum = index_checksum(out.data(), entry_bytes);
  std::memcpy(out.data() + index_checksum_field, &checksum, sizeof checksum);
  return out;
}

Result<SegmentIndex> SegmentIndex::decode(std::span<const std::byte> bytes, std::string_view file_name,
                                          std::uint64_t base_offset, std::uint64_t segment_bytes) {
  const auto refuse = [file_name](const std::string& why) {
    return Status(Errc::corrupt_data, "segment index " + std::string(file_name) + ": " + why);
  };
  if (bytes.size() < sizeof(SegmentIndexFileHeader)) {
    return refuse("file is " + std::to_string(bytes.size()) + " bytes, shorter than its 64-byte header");
  }
  SegmentIndexFileHeader h{};
  std::memcpy(&h, bytes.data(), sizeof h);
  if (std::memcmp(h.magic, index_magic.data(), index_magic.size()) != 0) {
    return refuse("magic is not \"RBUS-IDX\": not a ringbus index file");
  }
  if (h.format_version != segment_index_format_version) {
    return refuse("format_version " + std::to_string(h.format_version) + ", this build reads " +
                  std::to_string(segment_index_format_version));
  }
  const std::size_t entry_bytes = bytes.size() - sizeof h;
  if (entry_bytes != std::uint64_t{h.entry_count} * sizeof(SegmentIndexEntry)) {
    return refuse("entry_count " + std::to_string(h.entry_count) + " does not match the file's " +
                  std::to_string(entry_bytes) + " bytes of entries");
  }
  const std::uint32_t computed = index_checksum(bytes.data(), entry_bytes);
  if (computed != h.checksum) {
    return refuse("checksum " + hex32(h.checksum) + ", the file's CRC32C is " + hex32(computed) + ": damaged");
  }
  if (h.base_offset != base_offset) {
    return refuse("base_offset " + std::to_string(h.base_offset) + ", the segment's is " + std::to_string(base_offset));
  }
  if (h.segment_bytes != segment_bytes || !valid_segment_bytes(segment_bytes)) {
    return refuse("segment_bytes " + std::to_string(h.segment_bytes) + ", the segment's is " +
                  std::to_string(segment_bytes));
  }
  if (h.interval_bytes < min_index_interval_bytes) {
    return refuse("interval_bytes " + std::to_string(h.interval_bytes) + " is below the minimum 64");
  }
  if (h.end_position > segment_bytes || h.end_position % frame_alignment != 0) {
    return refuse("end_position " + std::to_string(h.end_position) + " is not an 8-aligned position in the segment");
  }
  if (h.lap_tag > 0x10000) return refuse("lap_tag " + std::to_string(h.lap_tag) + " is over 65536");
  SegmentIndex index(base_offset, segment_bytes, h.interval_bytes);
  index.entries_.resize(h.entry_count);
  if (entry_bytes != 0) std::memcpy(index.entries_.data(), bytes.data() + sizeof h, entry_bytes);
  for (std::size_t i = 0; i < index.entries_.size(); ++i) {
    const SegmentIndexEntry& e = index.entries_[i];
    const SegmentIndexEntry* before = i == 0 ? nullptr : &index.entries_[i - 1];
    const bool ok =
        e.reserved == 0 && e.position % frame_alignment == 0 && e.position < h.end_position &&
        (before == nullptr ? (e.position == 0 && e.offset == base_offset && e.max_timestamp_before == no_timestamp)
                           : (e.position > before->position && e.offset > before->offset &&
                              e.max_timestamp_before >= before->max_timestamp_before));
    if (!ok) {
      return refuse("entry " + std::to_string(i) + " (position " + std::to_string(e.position) + ", offset " +
                    std::to_string(e.offset) + ") breaks the index's order or bounds: positions 8-aligned, rising " +
                    "and below end_position " + std::to_string(h.end_position) + ", offsets rising from " +
                    std::to_string(base_offset) + ", max_timestamp_before not falling");
    }
  }
  const bool empty = index.entries_.empty();
  if (empty ? (h.next_offset != base_offset || (h.end_position != 0 && h.end_position != segment_bytes))
            : (h.next_offset <= index.entries_.back().offset ||
               h.max_timestamp < index.entries_.back().max_timestamp_before)) {
    return refuse("next_offset " + std::to_string(h.next_offset) + " or max_timestamp disagrees with its entries");
  }
  index.next_offset_ = h.next_offset;
  index.max_timestamp_ = h.max_timestamp;
  index.end_position_ = h.end_position;
  index.sealed_ = h.end_position == segment_bytes;
  if (h.lap_tag != 0) index.lap_ = static_cast<std::uint16_t>(h.lap_tag - 1);
  return index;
}

Status SegmentIndex::verify(std::span<const std::byte> data, std::string_view file_name, bool verify_checksums) const {
  const auto refuse = [file_name](const std::string& why) {
    return Status(Errc::corrupt_data,
                  "segment index " + std::string(file_name) + " does not match its segment: " + why);
  };
  if (data.size() != segment_bytes_) {
    return refuse("the segment has " + std::to_string(data.size()) + " data bytes, the index says " +
                  std::to_string(segment_bytes_));
  }
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const SegmentIndexEntry& e = entries_[i];
    if (e.position + frame_header_bytes > segment_bytes_) {
      return refuse("entry " + std::to_string(i) + " lies at the segment's end");
    }
    FrameHeader h{};
    std::memcpy(&h, data.data() + e.position, sizeof h);
    const std::uint64_t word0 =
        frame_word0(h.length, static_cast<frame_type>(h.type), h.flags) | (std::uint64_t{h.lap} << 48);
    if (word0_type(word0) != frame_type::data || h.base_offset != e.offset || (lap_.has_value() && h.lap != *lap_)) {
      return refuse("entry " + std::to_string(i) + " (position " + std::to_string(e.position) + ", offset " +
                    std::to_string(e.offset) + ") does not name a data frame with that offset");
    }
  }
  // Walk the frames after the last entry (from the segment's start when there
  // is none), validating each, to the end the index claims: that end must be a
  // frame boundary with next_offset there and the largest timestamp must come
  // out as stored. An empty index is walked too: one claiming a sealed, empty
  // segment would otherwise hide every record in it.
  std::uint64_t position = 0;
  std::uint64_t offset = base_offset_;
  std::int64_t max_ts = no_timestamp;
  if (!entries_.empty()) {
    position = entries_.back().position;
    offset = entries_.back().offset;
    max_ts = entries_.back().max_timestamp_before;
  }
  std::string why;
  ScanOptions options{};
  options.verify_checksums = verify_checksums;
  while (position < end_position_) {
    FrameFacts facts;
    if (!check_frame(data.data() + position, segment_bytes_ - position, offset, options, lap_, facts, why)) {
      return refuse("frame at position " + std::to_string(position) + ": " + why);
    }
    if (facts.type == frame_type::none) break;
    if (facts.type == frame_type::pad) {
      position = segment_bytes_;
      break;
    }
    position += facts.bytes;
    offset += facts.records;
    max_ts = std::max(max_ts, facts.max_timestamp);
  }
  if (position != end_position_ || offset != next_offset_ || max_ts != max_timestamp_) {
    return refuse("its end (position " + std::to_string(end_position_) + ", offset " + std::to_string(next_offset_) +
                  ") is not where the frames after its last entry end (position " + std::to_string(position) +
                  ", offset " + std::to_string(offset) + ")");
  }
  return {};
}

std::string segment_index_file_name(std::uint64_t base_offset) {
  char text[32];
  std::snprintf(text, sizeof text, "%020llu.idx", static_cast<unsigned long long>(base_offset));
  return text;
}

} // namespace ringbus::detail
