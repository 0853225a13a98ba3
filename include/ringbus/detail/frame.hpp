// Encoding and decoding of frames (layout in frame_layout.hpp). No threads,
// no atomics: callers decide where the bytes live and how they are published.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "ringbus/detail/config.hpp"
#include "ringbus/detail/frame_layout.hpp"
#include "ringbus/record.hpp"

namespace ringbus::detail {

// --- varints (LEB128, at most 10 bytes) -------------------------------------

constexpr std::size_t varint_size(std::uint64_t v) noexcept {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

RINGBUS_ALWAYS_INLINE std::byte* put_varint(std::byte* p, std::uint64_t v) noexcept {
  while (v >= 0x80) {
    *p++ = static_cast<std::byte>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<std::byte>(v);
  return p;
}

// Reads a varint from [p, end); returns nullptr if it runs past end or over 10 bytes.
RINGBUS_ALWAYS_INLINE const std::byte* get_varint(const std::byte* p, const std::byte* end,
                                                  std::uint64_t& out) noexcept {
  std::uint64_t v = 0;
  for (unsigned shift = 0; shift < 70 && p < end; shift += 7) {
    const auto b = static_cast<std::uint8_t>(*p++);
    v |= std::uint64_t{b & 0x7fu} << shift;
    if (b < 0x80) {
      out = v;
      return p;
    }
  }
  return nullptr;
}

constexpr std::uint64_t zigzag(std::int64_t v) noexcept {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
constexpr std::int64_t unzigzag(std::uint64_t v) noexcept {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

// --- sizes --------------------------------------------------------------------

// Bytes of one record in a general (not packed) body, excluding nothing.
inline std::size_t record_body_bytes(const Message& m, std::int64_t ts_delta) noexcept {
  std::size_t rest = varint_size(zigzag(ts_delta)) + varint_size(m.key.size()) + m.key.size() +
                     varint_size(m.value.size()) + m.value.size() + varint_size(m.headers.size());
  for (const Header& h : m.headers) {
    rest += varint_size(h.name.size()) + h.name.size() + varint_size(h.value.size()) + h.value.size();
  }
  return varint_size(rest) + rest;
}

// What a record's body may grow by over record_body_bytes(m, 0) once its
// frame gives it a timestamp delta: the delta's varint takes up to 10 bytes
// where 0 took 1, and the record's length prefix may take one byte more.
inline constexpr std::size_t max_delta_growth = 10;

// A message that can use the packed form alone in a frame: value only.
inline bool packable(const Message& m) noexcept { return m.key.empty() && m.headers.empty(); }

// --- encoding -------------------------------------------------------------------

// Writes header bytes [8, 32) and returns the publication word (bytes [0, 8),
// without its lap): the log stores that word last (Log::advance, publish).
// Field by field, straight from registers: a FrameHeader built on the stack
// and copied was one 16-byte load over two of the stack's stores, which the
// CPU cannot forward (~15 cycles before the header's store, and so before
// the publication word's, on every append).
RINGBUS_ALWAYS_INLINE std::uint64_t write_header(std::byte* frame, std::uint32_t length, std::uint8_t flags,
                                                 std::uint32_t count, std::uint64_t base_offset,
                                                 std::int64_t base_ts) noexcept {
  const std::uint64_t count_and_checksum = count; // checksum 0: stamp_checksum sets it later, if at all
  static_assert(offsetof(FrameHeader, checksum) == offsetof(FrameHeader, record_count) + 4);
  std::memcpy(frame + offsetof(FrameHeader, record_count), &count_and_checksum, 8);
  std::memcpy(frame + offsetof(FrameHeader, base_offset), &base_offset, 8);
  std::memcpy(frame + offsetof(FrameHeader, base_timestamp), &base_ts, 8);
  return frame_word0(length, frame_type::data, flags);
}

// Zeroes the bytes between length and the next 8-byte boundary so that
// frame bytes are deterministic (checksums, dumps).
inline void zero_padding(std::byte* frame, std::size_t length) noexcept {
  const std::size_t padded = align_up(length, frame_alignment);
  if (padded != length) std::memset(frame + length, 0, padded - length);
}

// Copies an n-byte value to body (8-byte aligned) and zeroes the padding
// after it to the next 8-byte boundary. Values up to 16 bytes, the common
// fixed-size records, are copied with a few overlapping word stores instead
// of a call into libc's memcpy (the whole append is ~60 instructions).
RINGBUS_ALWAYS_INLINE void put_value_padded(std::byte* body, const std::byte* src, std::size_t n) noexcept {
  if (n > 16) {
    std::memcpy(body, src, n);
    zero_padding(body, n);
    return;
  }
  constexpr std::uint64_t zero = 0;
  if (n != 0) std::memcpy(body, &zero, 8);
  if (n > 8) std::memcpy(body + 8, &zero, 8);
  if (n >= 8) {
    std::memcpy(body, src, 8);
    std::memcpy(body + n - 8, src + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(body, src, 4);
    std::memcpy(body + n - 4, src + n - 4, 4);
  } else if (n != 0) {
    body[0] = src[0];
    body[n / 2] = src[n / 2];
    body[n - 1] = src[n - 1];
  }
}

// Encodes one general-form record at p; returns the end.
inline std::byte* encode_record(std::byte* p, const Message& m, std::int64_t ts_delta) noexcept {
  std::size_t rest = varint_size(zigzag(ts_delta)) + varint_size(m.key.size()) + m.key.size() +
                     varint_size(m.value.size()) + m.value.size() + varint_size(m.headers.size());
  for (const Header& h : m.headers) {
    rest += varint_size(h.name.size()) + h.name.size() + varint_size(h.value.size()) + h.value.size();
  }
  p = put_varint(p, rest);
  p = put_varint(p, zigzag(ts_delta));
  p = put_varint(p, m.key.size());
  if (!m.key.empty()) std::memcpy(p, m.key.data(), m.key.size());
  p += m.key.size();
  p = put_varint(p, m.value.size());
  if (!m.value.empty()) std::memcpy(p, m.value.data(), m.value.size());
  p += m.value.size();
  p = put_varint(p, m.headers.size());
  for (const Header& h : m.headers) {
    p = put_varint(p, h.name.size());
    if (!h.name.empty()) std::memcpy(p, h.name.data(), h.name.size());
    p += h.name.size();
    p = put_varint(p, h.value.size());
    if (!h.value.empty()) std::memcpy(p, h.value.data(), h.value.size());
    p += h.value.size();
  }
  return p;
}

// --- decoding -------------------------------------------------------------------

// Decodes the general-form record at p (inside a frame ending at end) into out
// (offset and topic left to the caller). Returns the next record, or nullptr
// if the bytes are malformed.
inline const std::byte* decode_record(const std::byte* p, const std::byte* end, std::int64_t base_ts,
                                      Record& out) noexcept {
  std::uint64_t rest = 0;
  if ((p = get_varint(p, end, rest)) == nullptr || rest > static_cast<std::uint64_t>(end - p)) return nullptr;
  const std::byte* const next = p + rest;
  std::uint64_t v = 0;
  if ((p = get_varint(p, next, v)) == nullptr) return nullptr;
  out.timestamp_ns = static_cast<std::int64_t>(static_cast<std::uint64_t>(base_ts) +
                                               static_cast<std::uint64_t>(unzigzag(v))); // wraps like the encoder
  if ((p = get_varint(p, next, v)) == nullptr || v > static_cast<std::uint64_t>(next - p)) return nullptr;
  out.key = ByteView(p, static_cast<std::size_t>(v));
  p += v;
  if ((p = get_varint(p, next, v)) == nullptr || v > static_cast<std::uint64_t>(next - p)) return nullptr;
  out.value = ByteView(p, static_cast<std::size_t>(v));
  p += v;
  if ((p = get_varint(p, next, v)) == nullptr || v > 0xffffffffu) return nullptr;
  out.headers = HeadersView(p, next, static_cast<std::uint32_t>(v));
  return next;
}

// Skips the general-form record at p; nullptr if malformed.
inline const std::byte* skip_record(const std::byte* p, const std::byte* end) noexcept {
  std::uint64_t rest = 0;
  if ((p = get_varint(p, end, rest)) == nullptr || rest > static_cast<std::uint64_t>(end - p)) return nullptr;
  return p + rest;
}

} // namespace ringbus::detail
