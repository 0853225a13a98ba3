// Producer: the one writer of a topic. Appends are inline, take no lock, make
// no system call (the clock is the TSC or the vDSO: detail/clock.hpp) and
// allocate nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <type_traits>

#include "ringbus/detail/config.hpp"
#include "ringbus/detail/frame.hpp"
#include "ringbus/detail/log.hpp"
#include "ringbus/record.hpp"
#include "ringbus/status.hpp"

namespace ringbus {

namespace detail {
class BusCore;
}

class Producer;

// Space inside the ring for one frame, to serialize into in place; then
// commit() publishes it (one release store) or abort() forgets it. While a
// claim is open its producer refuses other appends. Destroying an open claim
// aborts it; closing the producer aborts its open claim. Like its producer, a
// claim is used by one thread.
class Claim {
 public:
  Claim() = default;
  Claim(Claim&& other) noexcept;
  Claim& operator=(Claim&& other) noexcept;
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  ~Claim() { abort(); }

  // Key bytes to fill (empty for value-only and batch claims).
  [[nodiscard]] std::span<std::byte> key() const noexcept { return key_; }
  // Value bytes to fill; for claim_values, count() values back to back.
  [[nodiscard]] std::span<std::byte> value() const noexcept { return value_; }
  template <class T>
  [[nodiscard]] std::span<T> values() const noexcept {
    static_assert(std::is_trivially_copyable_v<T> && alignof(T) <= detail::frame_alignment);
    return {reinterpret_cast<T*>(value_.data()), value_.size() / sizeof(T)};
  }
  [[nodiscard]] std::uint32_t count() const noexcept { return count_; }
  void set_timestamp(std::int64_t ns) noexcept { timestamp_ = ns; }
  [[nodiscard]] bool is_open() const noexcept { return log_ != nullptr; }

  // Publishes the records; returns the offset of the first.
  Result<std::uint64_t> commit() noexcept;
  void abort() noexcept;

 private:
  friend class Producer;
  detail::Log* log_ = nullptr; // null once committed, aborted or its producer closed
  bool wall_clock_ = true;
  std::byte* frame_ = nullptr;
  std::uint32_t length_ = 0;
  std::uint32_t count_ = 0;
  std::uint8_t flags_ = 0;
  std::int64_t timestamp_ = timestamp_now;
  std::span<std::byte> key_;
  std::span<std::byte> value_;
};

class Producer {
 public:
  Producer() noexcept = default; // not open; every call says closed
  Producer(Producer&& other) noexcept;
  Producer& operator=(Producer&& other) noexcept;
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  ~Producer();

  // Appends one record; waits for room under the block policy. Returns its offset.
  Result<std::uint64_t> append(ByteView value) noexcept { return append_value(value, true); }
  Result<std::uint64_t> append(ByteView key, ByteView value) noexcept {
    return append_one(Message{key, value, timestamp_now, {}}, true);
  }
  Result<std::uint64_t> append(const Message& m) noexcept { return append_one(m, true); }
  // Same, but never waits: Errc::would_block when the slowest consumer holds the room.
  Result<std::uint64_t> try_append(ByteView value) noexcept { return append_value(value, false); }
  Result<std::uint64_t> try_append(ByteView key, ByteView value) noexcept {
    return append_one(Message{key, value, timestamp_now, {}}, false);
  }
  Result<std::uint64_t> try_append(const Message& m) noexcept { return append_one(m, false); }

  // Appends all messages and publishes them with one store; returns the first
  // offset. All or nothing: a refused batch leaves nothing behind. A batch may
  // be at most batch_limit_bytes() encoded.
  Result<std::uint64_t> append_batch(std::span<const Message> messages) noexcept { return append_many(messages, true); }
  Result<std::uint64_t> try_append_batch(std::span<const Message> messages) noexcept {
    return append_many(messages, false);
  }

  // Appends fixed-size values (no keys, one timestamp) in the packed form:
  // the fastest way in. One store publishes them all.
  template <class T>
  Result<std::uint64_t> append_values(std::span<const T> values, std::int64_t timestamp_ns = timestamp_now) noexcept {
    static_assert(std::is_trivially_copyable_v<T>, "append_values needs trivially copyable values");
    return append_packed(values.data(), sizeof(T), values.size(), timestamp_ns, true);
  }
  template <class T>
  Result<std::uint64_t> try_append_values(std::span<const T> values,
                                          std::int64_t timestamp_ns = timestamp_now) noexcept {
    static_assert(std::is_trivially_copyable_v<T>, "append_values needs trivially copyable values");
    return append_packed(values.data(), sizeof(T), values.size(), timestamp_ns, false);
  }
  // The untyped form: count values of value_bytes each, back to back at data.
  Result<std::uint64_t> append_values(const void* data, std::size_t value_bytes, std::size_t count,
                                      std::int64_t timestamp_ns = timestamp_now) noexcept {
    return append_packed(data, value_bytes, count, timestamp_ns, true);
  }
  Result<std::uint64_t> try_append_values(const void* data, std::size_t value_bytes, std::size_t count,
                                          std::int64_t timestamp_ns = timestamp_now) noexcept {
    return append_packed(data, value_bytes, count, timestamp_ns, false);
  }

  // Zero copy: room for one record with key_bytes of key and value_bytes of
  // value, inside the ring (block policy) to fill before commit().
  Result<Claim> claim(std::size_t value_bytes, std::size_t key_bytes = 0) noexcept {
    return claim_frame(value_bytes, key_bytes, 1, true, false);
  }
  Result<Claim> try_claim(std::size_t value_bytes, std::size_t key_bytes = 0) noexcept {
    return claim_frame(value_bytes, key_bytes, 1, false, false);
  }
  // Zero copy batch: room for count values of value_bytes each (packed form),
  // published by one commit(). count * value_bytes must fit one segment.
  Result<Claim> claim_values(std::size_t value_bytes, std::size_t count) noexcept {
    return claim_frame(value_bytes, 0, count, true, true);
  }
  Result<Claim> try_claim_values(std::size_t value_bytes, std::size_t count) noexcept {
    return claim_frame(value_bytes, 0, count, false, true);
  }
  // The same for at most max_count values: as many as one segment holds and,
  // where batch frames end on a line pair (in-memory block-policy topics,
  // frames of 1 KiB or more), fewer when that ends the frame exactly on a
  // 128-byte boundary with no padding: by the values that would spill into a
  // last, partly filled pair (252 of 256 values of 8 B: 2,048 bytes instead
  // of 2,176), or, where the whole frame would not fit the rest of the
  // writer's segment, as many as fill that rest exactly (at least 1 KiB of
  // them). Claim::count() says how many. The fastest way in for small values.
  // Refused as claim_values is (closed, an open claim; try_: would_block
  // while the room it needs is held), and when max_count is 0 or not one
  // value fits a segment. Values of 0 bytes: up to 2^32 - 1 of them.
  Result<Claim> claim_values_up_to(std::size_t value_bytes, std::size_t max_count) noexcept {
    return claim_values_up_to(value_bytes, max_count, true);
  }
  Result<Claim> try_claim_values_up_to(std::size_t value_bytes, std::size_t max_count) noexcept {
    return claim_values_up_to(value_bytes, max_count, false);
  }

  // Releases the single-writer token; another producer may then open.
  Status close() noexcept;
  [[nodiscard]] bool is_open() const noexcept { return log_ != nullptr; }
  [[nodiscard]] std::string_view topic() const noexcept;
  // Offset the next appended record will get.
  [[nodiscard]] std::uint64_t next_offset() const noexcept;
  // Largest single record value (without key or headers) that fits a segment.
  [[nodiscard]] std::size_t max_value_bytes() const noexcept;
  // Largest encoded batch: (ring capacity - one segment) / 2, or fewer when
  // segments are small and many (segments / 2 * (segment - 32), for
  // segment bytes under 32 * segments). A batch is published at its end,
  // so all of it must fit the ring at once; within this limit it always does.
  [[nodiscard]] std::size_t batch_limit_bytes() const noexcept;

 private:
  friend class Bus;
  friend class Claim;
  Producer(std::shared_ptr<detail::BusCore> core, detail::Log* log) noexcept;

  // The writer's clock (detail/clock.hpp): an rdtsc where the kernel keeps
  // time with the TSC, else a clock_gettime.
  RINGBUS_ALWAYS_INLINE std::int64_t stamp() const noexcept { return wall_clock_ ? log_->writer().clock.now() : 0; }

  RINGBUS_ALWAYS_INLINE Result<std::uint64_t> append_one(const Message& m, bool wait) noexcept {
    detail::Log* const log = log_;
    if (RINGBUS_UNLIKELY(log == nullptr || log->writer().open_claim != nullptr || log->refusing())) return refusal();
    const bool packed = detail::packable(m);
    const std::size_t length = detail::frame_header_bytes + (packed ? m.value.size() : detail::record_body_bytes(m, 0));
    if (RINGBUS_UNLIKELY(detail::align_up(length, detail::frame_alignment) > log->segment_bytes() ||
                         m.headers.size() > limits::max_headers)) {
      return too_large(length, m);
    }
    const std::int64_t ts = m.timestamp_ns != timestamp_now ? m.timestamp_ns : stamp();
    Errc err = Errc::ok;
    std::size_t frame_bytes = 0;
    std::byte* const p = log->reserve_append(length, wait, err, frame_bytes);
    if (RINGBUS_UNLIKELY(p == nullptr)) return failure(err);
    const std::uint64_t offset = log->writer().next_offset;
    const auto flags = static_cast<std::uint8_t>((packed ? detail::frame_flags::packed : 0) | log->append_flags());
    const std::uint64_t word0 = detail::write_header(p, static_cast<std::uint32_t>(length), flags, 1, offset, ts);
    if (packed) {
      detail::put_value_padded(p + detail::frame_header_bytes, m.value.data(), m.value.size());
    } else {
      detail::encode_record(p + detail::frame_header_bytes, m, 0);
      detail::zero_padding(p, length);
    }
    log->commit_one(frame_bytes, word0);
    if (RINGBUS_UNLIKELY(log->needs_sync())) return synced(offset);
    return offset;
  }

  // append_one for a value alone (no key, no headers, timestamp taken now):
  // always the packed form, one record.
  RINGBUS_ALWAYS_INLINE Result<std::uint64_t> append_value(ByteView value, bool wait) noexcept {
    detail::Log* const log = log_;
    if (RINGBUS_UNLIKELY(log == nullptr || log->writer().open_claim != nullptr || log->refusing())) return refusal();
    const std::size_t length = detail::frame_header_bytes + value.size();
    const std::size_t frame_bytes = detail::align_up(length, detail::frame_alignment);
    const std::int64_t ts = stamp();
    std::uint64_t offset;
    if (RINGBUS_LIKELY(log->append_direct(frame_bytes, static_cast<std::uint32_t>(length), value.data(), value.size(),
                                          ts, offset))) {
      return offset;
    }
    return append_value_slow(value, ts, wait);
  }
  // The rest of append_value: a roll, a record too large, a persistent or
  // overwrite topic.
  RINGBUS_NOINLINE Result<std::uint64_t> append_value_slow(ByteView value, std::int64_t ts, bool wait) noexcept;

  Result<std::uint64_t> append_many(std::span<const Message> messages, bool wait) noexcept;
  Result<std::uint64_t> append_packed(const void* data, std::size_t value_bytes, std::size_t count,
                                      std::int64_t timestamp_ns, bool wait) noexcept;
  Result<Claim> claim_values_up_to(std::size_t value_bytes, std::size_t max_count, bool wait) noexcept;
  // batch: claim_values, a batch frame (Log::reserve_batch); else claim, the 8-byte layout.
  Result<Claim> claim_frame(std::size_t value_bytes, std::size_t key_bytes, std::size_t count, bool wait,
                            bool batch) noexcept;

  // Cold error builders (out of line so the hot path stays small).
  RINGBUS_NOINLINE Status refusal() const noexcept;
  RINGBUS_NOINLINE Status too_large(std::size_t frame_length, const Message& m) const noexcept;
  RINGBUS_NOINLINE Status value_too_large(std::size_t frame_length, ByteView value) const noexcept;
  RINGBUS_NOINLINE Status failure(Errc err) const noexcept;
  RINGBUS_NOINLINE Status batch_too_large(std::size_t total) const noexcept;
  RINGBUS_NOINLINE Status batch_refused(Errc err, std::size_t total, std::uint64_t span) const noexcept;
  // Durability::sync: flushes what was just published, then gives offset.
  RINGBUS_NOINLINE Result<std::uint64_t> synced(std::uint64_t offset) const noexcept;

  std::shared_ptr<detail::BusCore> core_;
  detail::Log* log_ = nullptr;
  bool wall_clock_ = true;
};

} // namespace ringbus
