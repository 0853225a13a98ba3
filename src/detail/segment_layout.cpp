#include "ringbus/detail/segment_layout.hpp"

#include <cstdio>
#include <cstring>

#include "platform/files.hpp"
#include "ringbus/detail/checksum.hpp"
#include "ringbus/detail/config.hpp"
#include "ringbus/options.hpp"

namespace ringbus::detail {

namespace {

// Largest page_size a header may name: beyond any real page size.
constexpr std::uint64_t max_page_size = std::uint64_t{1} << 30;

template <class T>
T load_field(std::span<const std::byte> bytes, std::size_t offset) noexcept {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

template <class T>
void store_field(std::span<std::byte> bytes, std::size_t offset, T value) noexcept {
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

std::string hex32(std::uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

Status refuse(std::string_view file_name, const std::string& what) {
  return Status(Errc::corrupt_data, "segment " + std::string(file_name) + ": " + what);
}

std::string printable(std::span<const std::byte> bytes) {
  std::string out;
  for (std::byte b : bytes) {
    const auto c = static_cast<unsigned char>(b);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char text[8];
      std::snprintf(text, sizeof text, "\\x%02x", c);
      out += text;
    }
  }
  return out;
}

} // namespace

std::array<std::byte, segment_seal_bytes> encode_segment_seal(const SegmentSeal& seal) noexcept {
  std::array<std::byte, segment_seal_bytes> out{};
  store_field(out, 0, seal.base_position);
  store_field(out, 8, seal.end_offset);
  store_field(out, 16, seal.boot);
  store_field(out, 24, crc32c(out.data(), 24));
  return out;
}

std::optional<SegmentSeal> decode_segment_seal(std::span<const std::byte> header) noexcept {
  if (header.size() < segment_seal_at + segment_seal_bytes) return std::nullopt;
  const std::span<const std::byte> bytes = header.subspan(segment_seal_at, segment_seal_bytes);
  // Zeros (no seal written) fail the checksum too: the CRC32C of 24 zero bytes is not 0.
  if (load_field<std::uint32_t>(bytes, 24) != crc32c(bytes.data(), 24) || load_field<std::uint32_t>(bytes, 28) != 0) {
    return std::nullopt;
  }
  SegmentSeal seal;
  seal.base_position = load_field<std::uint64_t>(bytes, 0);
  seal.end_offset = load_field<std::uint64_t>(bytes, 8);
  seal.boot = load_field<std::uint64_t>(bytes, 16);
  return seal;
}

Status encode_segment_header(std::span<std::byte> out, const SegmentHeaderFields& fields) {
  if (out.size() < segment_header_bytes) {
    return Status(Errc::invalid_argument, "segment header buffer of " + std::to_string(out.size()) +
                                              " bytes: it needs " + std::to_string(segment_header_bytes));
  }
  if (!is_power_of_two(fields.page_size) || fields.page_size < segment_header_bytes ||
      fields.page_size > max_page_size) {
    return Status(Errc::invalid_argument,
                  "segment page_size " + std::to_string(fields.page_size) + ": must be a power of two in [4096, 2^30]");
  }
  if (!is_power_of_two(fields.segment_bytes) || fields.segment_bytes < limits::min_segment_bytes ||
      fields.segment_bytes > limits::max_segment_bytes) {
    return Status(Errc::invalid_argument, "segment segment_bytes " + std::to_string(fields.segment_bytes) +
                                              ": must be a power of two in [4 KiB, 1 GiB]");
  }
  if (Status s = validate_topic_name(fields.topic); !s.ok()) return s;
  if ((fields.flags & ~segment_flags::known) != 0) {
    return Status(Errc::invalid_argument, "segment flags " + hex32(fields.flags) + ": unknown bits");
  }
  if (!is_power_of_two(fields.ring_capacity) || fields.ring_capacity < 2 * fields.segment_bytes ||
      fields.ring_capacity > limits::max_capacity_bytes || fields.base_position % fields.segment_bytes != 0) {
    return Status(Errc::invalid_argument, "segment ring_capacity " + std::to_string(fields.ring_capacity) +
                                              " / base_position " + std::to_string(fields.base_position) +
                                              ": capacity must be a power of two of at least two segments, at most " +
                                              std::to_string(limits::max_capacity_bytes) +
                                              ", and the position a multiple of segment_bytes");
  }

  std::memset(out.data(), 0, segment_header_bytes);
  std::memcpy(out.data() + offsetof(SegmentHeader, magic), segment_magic.data(), segment_magic.size());
  store_field(out, offsetof(SegmentHeader, format_version), segment_format_version);
  store_field(out, offsetof(SegmentHeader, page_size), fields.page_size);
  store_field(out, offsetof(SegmentHeader, segment_bytes), fields.segment_bytes);
  store_field(out, offsetof(SegmentHeader, base_offset), fields.base_offset);
  store_field(out, offsetof(SegmentHeader, created_ns), fields.created_ns);
  store_field(out, offsetof(SegmentHeader, frame_checksum), static_cast<std::uint32_t>(fields.frame_checksum));
  store_field(out, offsetof(SegmentHeader, name_length), static_cast<std::uint32_t>(fields.topic.size()));
  std::memcpy(out.data() + offsetof(SegmentHeader, topic_name), fields.topic.data(), fields.topic.size());
  store_field(out, offsetof(SegmentHeader, base_position), fields.base_position);
  store_field(out, offsetof(SegmentHeader, ring_capacity), fields.ring_capacity);
  store_field(out, offsetof(SegmentHeader, flags), fields.flags);
  store_field(out, offsetof(SegmentHeader, header_checksum), crc32c(out.data(), segment_header_checked_bytes));
  return {};
}

Status validate_segment_header(std::span<const std::byte> bytes, std::string_view file_name,
                               std::string_view expected_topic, std::uint64_t expected_segment_bytes,
                               SegmentHeaderFields* out) {
  if (bytes.size() < segment_header_bytes) {
    return refuse(file_name, "file is " + std::to_string(bytes.size()) + " bytes, shorter than its " +
                                 std::to_string(segment_header_bytes) + "-byte header");
  }
  const auto magic = bytes.subspan(offsetof(SegmentHeader, magic), segment_magic.size());
  if (std::memcmp(magic.data(), segment_magic.data(), segment_magic.size()) != 0) {
    return refuse(file_name, "magic \"" + printable(magic) + "\" is not \"RBUS-SEG\": not a ringbus segment file");
  }
  const auto version = load_field<std::uint32_t>(bytes, offsetof(SegmentHeader, format_version));
  if (version != segment_format_version) {
    return refuse(file_name, "format_version " + std::to_string(version) + ", this build reads " +
                                 std::to_string(segment_format_version));
  }
  const auto stored_checksum = load_field<std::uint32_t>(bytes, offsetof(SegmentHeader, header_checksum));
  const std::uint32_t computed_checksum = crc32c(bytes.data(), segment_header_checked_bytes);
  if (stored_checksum != computed_checksum) {
    return refuse(file_name, "header_checksum " + hex32(stored_checksum) + " does not match the header's CRC32C " +
                                 hex32(computed_checksum) + ": the header is damaged");
  }
  const auto page_size = load_field<std::uint32_t>(bytes, offsetof(SegmentHeader, page_size));
  const std::size_t system_page = platform::system_page_size();
  if (!is_power_of_two(page_size) || page_size < segment_header_bytes || page_size > max_page_size ||
      page_size % system_page != 0) {
    return refuse(file_name, "page_size " + std::to_string(page_size) +
                                 ": must be a power of two in [4096, 2^30] and a multiple of this system's page size " +
                                 std::to_string(system_page));
  }
  const auto segment_bytes = load_field<std::uint64_t>(bytes, offsetof(SegmentHeader, segment_bytes));
  if (segment_bytes != expected_segment_bytes) {
    return refuse(file_name, "segment_bytes " + std::to_string(segment_bytes) + ", the topic's segments are " +
                                 std::to_string(expected_segment_bytes));
  }
  const auto checksum_kind = load_field<std::uint32_t>(bytes, offsetof(SegmentHeader, frame_checksum));
  if (checksum_kind != static_cast<std::uint32_t>(FrameChecksumKind::crc32c) &&
      checksum_kind != static_cast<std::uint32_t>(FrameChecksumKind::none)) {
    return refuse(file_name,
                  "frame_checksum " + std::to_string(checksum_kind) + ", this build knows 1 (CRC32C) and 0 (none)");
  }
  const auto name_length = load_field<std::uint32_t>(bytes, offsetof(SegmentHeader, name_length));
  if (name_length == 0 || name_length > limits::max_topic_name_bytes) {
    return refuse(file_name, "name_length " + std::to_string(name_length) + ": a topic name is 1..255 bytes");
  }
  const auto name_field = bytes.subspan(offsetof(SegmentHeader, topic_name), segment_topic_name_capacity);
  for (std::size_t i = name_length; i < name_field.size(); ++i) {
    if (name_field[i] != std::byte{0}) {
      return refuse(file_name, "topic_name has non-zero bytes after its name_length " + std::to_string(name_length));
    }
  }
  const std::string_view topic(reinterpret_cast<const char*>(name_field.data()), name_length);
  if (topic != expected_topic) {
    return refuse(file_name, "topic_name \"" + printable(name_field.first(name_length)) +
                                 "\", this directory holds topic \"" + std::string(expected_topic) + "\"");
  }
  const auto base_offset = load_field<std::uint64_t>(bytes, offsetof(SegmentHeader, base_offset));
  if (const auto named = parse_segment_file_name(file_name); named.has_value() && *named != base_offset) {
    return refuse(file_name, "base_offset " + std::to_string(base_offset) + " does not match the file name's " +
                                 std::to_string(*named));
  }
  const auto base_position = load_field<std::uint64_t>(bytes, offsetof(SegmentHeader, base_position));
  const auto ring_capacity = load_field<std::uint64_t>(bytes, offsetof(SegmentHeader, ring_capacity));
  if (!is_power_of_two(ring_capacity) || ring_capacity < 2 * segment_bytes ||
      ring_capacity > limits::max_capacity_bytes) {
    return refuse(file_name, "ring_capacity " + std::to_string(ring_capacity) +
                                 ": must be a power of two of at least two segments, at most " +
                                 std::to_string(limits::max_capacity_bytes));
  }
  if (base_position % segment_bytes != 0) {
    return refuse(file_name, "base_position " + std::to_string(base_position) + " is not a multiple of segment_bytes " +
                                 std::to_string(segment_bytes));
  }
  const auto flags = load_field<std::uint32_t>(bytes, offsetof(SegmentHeader, flags));
  if ((flags & ~segment_flags::known) != 0) {
    return refuse(file_name, "flags " + hex32(flags) + " has bits this build does not know");
  }
  if (out != nullptr) {
    out->flags = flags;
    out->frame_checksum = static_cast<FrameChecksumKind>(checksum_kind);
    out->base_position = base_position;
    out->ring_capacity = ring_capacity;
    out->page_size = page_size;
    out->segment_bytes = segment_bytes;
    out->base_offset = base_offset;
    out->created_ns = load_field<std::int64_t>(bytes, offsetof(SegmentHeader, created_ns));
    out->topic = std::string(topic);
  }
  return {};
}

std::string segment_file_name(std::uint64_t base_offset) {
  char text[32];
  std::snprintf(text, sizeof text, "%020llu.seg", static_cast<unsigned long long>(base_offset));
  return text;
}

std::optional<std::uint64_t> parse_segment_file_name(std::string_view name) noexcept {
  if (name.size() != segment_file_name_digits + segment_file_suffix.size()) return std::nullopt;
  if (name.substr(segment_file_name_digits) != segment_file_suffix) return std::nullopt;
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < segment_file_name_digits; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt; // past 2^64 - 1
    value = value * 10 + digit;
  }
  return value;
}

} // namespace ringbus::detail
