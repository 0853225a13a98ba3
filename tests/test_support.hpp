// Shared helpers of the unit tests: small deterministic rings, owned copies
// of records (a poll's views die at the next poll), content generators that
// make a misplaced or torn record visible, and printers so doctest can show
// error codes and records when a check fails.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringbus/detail/config.hpp"
#include "ringbus/detail/frame_layout.hpp"
#include "ringbus/ringbus.hpp"

namespace ringbus {
// Found by doctest through argument-dependent lookup, so failed checks print
// error codes by name ("would_block") rather than as numbers. Test-only.
inline doctest::String toString(Errc code) {
  const std::string_view name = to_string(code);
  return doctest::String(name.data(), static_cast<doctest::String::size_type>(name.size()));
}
} // namespace ringbus

namespace ringbus::test {

// The smallest segment the library allows: a few dozen records fill one, so
// tests cross segment ends and lap the ring after a few hundred appends.
inline constexpr std::size_t small_segment_bytes = 4096;

inline TopicOptions small_ring(std::size_t segment_count = 2, OverflowPolicy overflow = OverflowPolicy::block) {
  TopicOptions o;
  o.segment_bytes = small_segment_bytes;
  o.segment_count = segment_count;
  o.overflow = overflow;
  return o;
}

// Bytes a value-only record takes in a segment: it is stored alone in a
// packed frame (32-byte header + value), padded to 8.
constexpr std::size_t packed_frame_bytes(std::size_t value_bytes) {
  return detail::align_up(detail::frame_header_bytes + value_bytes, detail::frame_alignment);
}

// 32-byte values make 64-byte frames: exactly 64 of them fill a 4 KiB
// segment with no padding, so the arithmetic of laps stays exact.
inline constexpr std::size_t even_value_bytes = 32;
inline constexpr std::size_t records_per_small_segment = small_segment_bytes / packed_frame_bytes(even_value_bytes);
static_assert(records_per_small_segment == 64);

// `size` bytes that depend on offset and size: a record read back at the
// wrong offset, truncated or half-overwritten does not match.
inline std::string value_for(std::uint64_t offset, std::size_t size) {
  std::string s(size, '\0');
  std::uint64_t x = (offset + 1) * 0x9E3779B97F4A7C15ull ^ (size * 0xC2B2AE3D27D4EB4Full);
  for (std::size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x);
  }
  return s;
}

// A Message from its parts: aggregate initialisation that leaves fields out
// trips -Wmissing-field-initializers (-Wextra).
inline Message msg(ByteView key, ByteView value, std::int64_t timestamp_ns = timestamp_now,
                   std::span<const Header> headers = {}) {
  return Message{key, value, timestamp_ns, headers};
}

inline std::string key_for(std::uint64_t offset) { return "key-" + std::to_string(offset); }

inline bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

inline std::string str(ByteView b) { return std::string(b.str()); }

// A record copied out of the ring, to compare after the views are gone.
struct OwnedRecord {
  std::string topic;
  std::uint64_t offset = 0;
  std::int64_t timestamp_ns = 0;
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;

  friend bool operator==(const OwnedRecord&, const OwnedRecord&) = default;
  friend std::ostream& operator<<(std::ostream& os, const OwnedRecord& r) {
    os << "{" << r.topic << "@" << r.offset << " ts=" << r.timestamp_ns << " key=" << r.key.size()
       << "B value=" << r.value.size() << "B headers=" << r.headers.size() << "}";
    return os;
  }
};

inline OwnedRecord own(const Record& r) {
  OwnedRecord o;
  o.topic = std::string(r.topic);
  o.offset = r.offset;
  o.timestamp_ns = r.timestamp_ns;
  o.key = str(r.key);
  o.value = str(r.value);
  for (const Header h : r.headers) o.headers.emplace_back(str(h.name), str(h.value));
  return o;
}

inline std::vector<OwnedRecord> own_all(const Records& records) {
  std::vector<OwnedRecord> out;
  for (const Record& r : records) out.push_back(own(r));
  return out;
}

// One poll, copied out.
inline std::vector<OwnedRecord> poll_once(Consumer& c, std::size_t max_records = SIZE_MAX) {
  Result<Records> r = c.poll(max_records);
  REQUIRE_MESSAGE(r.ok(), r.message());
  return own_all(*r);
}

// Polls until a poll returns nothing. The last, empty poll also releases
// everything the consumer was given (views live until the next poll).
inline std::vector<OwnedRecord> drain(Consumer& c, std::size_t max_records = SIZE_MAX) {
  std::vector<OwnedRecord> out;
  for (;;) {
    std::vector<OwnedRecord> batch = poll_once(c, max_records);
    if (batch.empty()) return out;
    out.insert(out.end(), batch.begin(), batch.end());
  }
}

// Appends `count` value-only records, each holding value_for(its offset, size).
inline void append_numbered(Producer& p, std::size_t count, std::size_t size = even_value_bytes) {
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t offset = p.next_offset();
    Result<std::uint64_t> r = p.try_append(value_for(offset, size));
    REQUIRE_MESSAGE(r.ok(), r.message());
    REQUIRE(*r == offset);
  }
}

// True when [data, data + size) lies inside one aligned block of `block` bytes
// (the ring is mapped page-aligned, so 4 KiB blocks are its segments).
inline bool within_one_block(const std::byte* data, std::size_t size, std::size_t block) {
  if (size == 0) return true;
  const auto first = reinterpret_cast<std::uintptr_t>(data);
  return first / block == (first + size - 1) / block;
}

} // namespace ringbus::test
