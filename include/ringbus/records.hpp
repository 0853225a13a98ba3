// Records: what one poll returns. A range of Record views decoded lazily from
// the frames in place (zero copy), valid until the consumer's next poll, plus
// the gaps an overwrite topic's lapped consumer was told about.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <span>
#include <string_view>
#include <type_traits>

#include "ringbus/detail/config.hpp"
#include "ringbus/detail/frame.hpp"
#include "ringbus/detail/frame_layout.hpp"
#include "ringbus/record.hpp"

namespace ringbus {

// Records an overwrite topic's consumer lost because the producer lapped it:
// offsets [first_lost, first_lost + count) were never delivered; delivery
// resumed at first_lost + count, the oldest record still held.
struct Gap {
  std::string_view topic;
  std::uint64_t first_lost = 0;
  std::uint64_t count = 0;
};

namespace detail {

// A run of records of one topic: `count` records starting at record
// `first_skip` of the frame at `frame`. Frames are walked in place; when the
// walk reaches wrap_end (the ring's end) it continues at wrap_begin.
struct Chunk {
  std::string_view topic;
  const std::byte* frame = nullptr;
  const std::byte* wrap_begin = nullptr;
  const std::byte* wrap_end = nullptr;
  std::uint32_t first_skip = 0;
  std::uint64_t count = 0;
};

} // namespace detail

// One frame's share of a poll: a run of records that were published together
// (Kafka's RecordBatch). Iterating a Batch yields its Records; a batch of
// packed fixed-size values also reads as a typed span in place, the fastest
// way through small records: no per-record decoding at all.
class Batch {
 public:
  class iterator;

  Batch() = default;

  [[nodiscard]] std::string_view topic() const noexcept { return chunk_.topic; }
  [[nodiscard]] std::uint64_t first_offset() const noexcept { return first_offset_; }
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(chunk_.count); }
  // The frame's base timestamp: every record's timestamp when the batch is packed.
  [[nodiscard]] std::int64_t base_timestamp_ns() const noexcept { return base_timestamp_ns_; }
  // Whether the batch is packed values (no keys, no headers, one timestamp)
  // and how many bytes each value has (0 when not packed).
  [[nodiscard]] bool packed() const noexcept { return value_size_ != 0; }
  [[nodiscard]] std::size_t value_size() const noexcept { return value_size_; }

  // The values in place when the batch is packed values of exactly sizeof(T)
  // bytes; an empty span otherwise (a batch holds at least one record, so
  // empty means "read it record by record"). T must be trivially copyable with
  // alignment <= 8 (frames are 8-byte aligned). Valid, like every view of a
  // poll, until the consumer's next poll.
  template <class T>
  [[nodiscard]] std::span<const T> values() const noexcept {
    static_assert(std::is_trivially_copyable_v<T>, "values<T>() reads T from the frame's bytes");
    static_assert(alignof(T) <= detail::frame_alignment, "frames are only 8-byte aligned");
    if (value_size_ != sizeof(T)) return {};
    return std::span<const T>(reinterpret_cast<const T*>(first_value_), size());
  }

  // Record by record (any batch). The iterators point into this Batch: keep
  // it alive while they are used.
  [[nodiscard]] inline iterator begin() const noexcept;
  [[nodiscard]] inline iterator end() const noexcept;

 private:
  friend class Records;
  detail::Chunk chunk_;                    // this batch as a one-frame chunk, for record iteration
  const std::byte* first_value_ = nullptr; // packed: the first value of the batch
  std::uint64_t first_offset_ = 0;
  std::int64_t base_timestamp_ns_ = 0;
  std::size_t value_size_ = 0;
};

class Records {
 public:
  class batch_iterator;
  class batch_range;

  class iterator {
   public:
    using value_type = Record;
    using difference_type = std::ptrdiff_t;
    using reference = const Record&;
    using pointer = const Record*;
    using iterator_category = std::forward_iterator_tag;

    iterator() = default;
    iterator(const detail::Chunk* chunk, std::uint64_t total) noexcept : chunk_(chunk), left_total_(total) {
      if (left_total_ != 0) enter_chunk();
    }
    const Record& operator*() const noexcept { return current_; }
    const Record* operator->() const noexcept { return &current_; }
    RINGBUS_ALWAYS_INLINE iterator& operator++() noexcept {
      if (--left_total_ == 0) return *this;
      if (--left_in_chunk_ == 0) {
        ++chunk_;
        enter_chunk();
        return *this;
      }
      if (++index_ < frame_count_) {
        ++current_.offset;
        if (packed_) {
          current_.value = ByteView(current_.value.data() + value_size_, value_size_);
        } else {
          decode_general(cursor_);
        }
        return *this;
      }
      next_frame(frame_next_, 0);
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const iterator& other) const noexcept { return left_total_ == other.left_total_; }

   private:
    void enter_chunk() noexcept {
      while (chunk_->count == 0) ++chunk_;
      left_in_chunk_ = chunk_->count;
      current_.topic = chunk_->topic;
      next_frame(chunk_->frame, chunk_->first_skip);
    }
    // Loads the first data frame at or after p and positions on its record `skip`.
    RINGBUS_ALWAYS_INLINE void next_frame(const std::byte* p, std::uint32_t skip) noexcept {
      for (;;) {
        if (p == chunk_->wrap_end) p = chunk_->wrap_begin;
        std::uint64_t word0;
        std::memcpy(&word0, p, sizeof word0);
        if (detail::word0_type(word0) == detail::frame_type::data) {
          frame_length_ = detail::word0_length(word0);
          packed_ = (detail::word0_flags(word0) & detail::frame_flags::packed) != 0;
          frame_next_ = detail::frame_end(p, word0);
          break;
        }
        p += detail::word0_length(word0); // pad: to the segment end
      }
      frame_ = p;
      frame_end_ = p + frame_length_;
      frame_count_ = detail::header_record_count(p);
      base_ts_ = detail::header_base_timestamp(p);
      index_ = skip;
      current_.offset = detail::header_base_offset(p) + skip;
      const std::byte* body = p + detail::frame_header_bytes;
      if (packed_) {
        value_size_ = detail::packed_value_bytes(frame_length_, frame_count_);
        current_.timestamp_ns = base_ts_;
        current_.key = ByteView();
        current_.headers = HeadersView();
        current_.value = ByteView(body + std::size_t{skip} * value_size_, value_size_);
      } else {
        for (std::uint32_t i = 0; i < skip && body != nullptr; ++i) body = detail::skip_record(body, frame_end_);
        decode_general(body);
      }
    }
    // The general-form record at `at` into current_, and where the next one
    // starts. A malformed record (bytes changed in a segment file after they
    // were published) and every record after it in its frame, whose starts
    // cannot be found (at: nullptr), read as empty records with the frame's
    // timestamp, as take_one_in_place gives them: never a read past the frame.
    RINGBUS_ALWAYS_INLINE void decode_general(const std::byte* at) noexcept {
      cursor_ = RINGBUS_LIKELY(at != nullptr) ? detail::decode_record(at, frame_end_, base_ts_, current_) : nullptr;
      if (RINGBUS_UNLIKELY(cursor_ == nullptr)) {
        current_.timestamp_ns = base_ts_;
        current_.key = ByteView();
        current_.value = ByteView();
        current_.headers = HeadersView();
      }
    }

    const detail::Chunk* chunk_ = nullptr; // chunks with records remain while left_total_ > 0
    std::uint64_t left_total_ = 0;
    std::uint64_t left_in_chunk_ = 0;
    const std::byte* frame_ = nullptr;
    const std::byte* frame_end_ = nullptr;  // of its records
    const std::byte* frame_next_ = nullptr; // where the next frame starts (padding included)
    const std::byte* cursor_ = nullptr;     // next general-form record
    std::uint32_t frame_length_ = 0;
    std::uint32_t frame_count_ = 0;
    std::uint32_t index_ = 0;
    std::uint32_t value_size_ = 0;
    std::int64_t base_ts_ = 0;
    bool packed_ = false;
    Record current_;
  };

  Records() = default;
  Records(std::span<const detail::Chunk> chunks, std::uint64_t total, std::span<const Gap> gaps) noexcept
      : chunks_(chunks), total_(total), gaps_(gaps) {}

  [[nodiscard]] iterator begin() const noexcept { return {chunks_.data(), total_}; }
  [[nodiscard]] iterator end() const noexcept { return {}; }
  // The same records, a Batch (one frame's share) at a time.
  [[nodiscard]] inline batch_range batches() const noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(total_); }
  [[nodiscard]] bool empty() const noexcept { return total_ == 0; }
  // Records lost to lapping (overwrite topics) since the previous poll, per topic.
  [[nodiscard]] std::span<const Gap> gaps() const noexcept { return gaps_; }
  [[nodiscard]] std::uint64_t lost() const noexcept {
    std::uint64_t n = 0;
    for (const Gap& g : gaps_) n += g.count;
    return n;
  }

 private:
  std::span<const detail::Chunk> chunks_;
  std::uint64_t total_ = 0;
  std::span<const Gap> gaps_;
};

class Batch::iterator : public Records::iterator {
 public:
  using Records::iterator::iterator;
  explicit iterator(const Records::iterator& it) noexcept : Records::iterator(it) {}
};

inline Batch::iterator Batch::begin() const noexcept { return iterator(Records::iterator(&chunk_, chunk_.count)); }
inline Batch::iterator Batch::end() const noexcept { return {}; }

// Walks the chunks of a poll frame by frame, one Batch per data frame.
class Records::batch_iterator {
 public:
  using value_type = Batch;
  using difference_type = std::ptrdiff_t;
  using reference = const Batch&;
  using pointer = const Batch*;
  using iterator_category = std::forward_iterator_tag;

  batch_iterator() = default;
  batch_iterator(const detail::Chunk* chunk, std::uint64_t total) noexcept : chunk_(chunk), left_total_(total) {
    if (left_total_ != 0) enter_chunk();
  }
  const Batch& operator*() const noexcept { return current_; }
  const Batch* operator->() const noexcept { return &current_; }
  RINGBUS_ALWAYS_INLINE batch_iterator& operator++() noexcept {
    left_total_ -= current_.chunk_.count;
    if (left_total_ == 0) return *this;
    left_in_chunk_ -= current_.chunk_.count;
    if (left_in_chunk_ == 0) {
      ++chunk_;
      enter_chunk();
    } else {
      load(next_frame_, 0);
    }
    return *this;
  }
  batch_iterator operator++(int) noexcept {
    batch_iterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const batch_iterator& other) const noexcept { return left_total_ == other.left_total_; }

 private:
  void enter_chunk() noexcept {
    while (chunk_->count == 0) ++chunk_;
    left_in_chunk_ = chunk_->count;
    current_.chunk_.topic = chunk_->topic;
    current_.chunk_.wrap_begin = chunk_->wrap_begin;
    current_.chunk_.wrap_end = chunk_->wrap_end;
    load(chunk_->frame, chunk_->first_skip);
  }
  // Makes current_ the first data frame at or after p, from its record `skip`.
  RINGBUS_ALWAYS_INLINE void load(const std::byte* p, std::uint32_t skip) noexcept {
    std::uint64_t word0;
    for (;;) {
      if (p == chunk_->wrap_end) p = chunk_->wrap_begin;
      std::memcpy(&word0, p, sizeof word0);
      if (detail::word0_type(word0) == detail::frame_type::data) break;
      p += detail::word0_length(word0); // pad: to the segment end
    }
    const std::uint32_t length = detail::word0_length(word0);
    const std::uint32_t record_count = detail::header_record_count(p);
    const std::uint64_t in_frame = record_count - skip;
    const std::uint64_t count = in_frame < left_in_chunk_ ? in_frame : left_in_chunk_;
    Batch& b = current_;
    b.chunk_.frame = p;
    b.chunk_.first_skip = skip;
    b.chunk_.count = count;
    b.first_offset_ = detail::header_base_offset(p) + skip;
    b.base_timestamp_ns_ = detail::header_base_timestamp(p);
    if ((detail::word0_flags(word0) & detail::frame_flags::packed) != 0) {
      b.value_size_ = detail::packed_value_bytes(length, record_count);
      b.first_value_ = p + detail::frame_header_bytes + std::size_t{skip} * b.value_size_;
    } else {
      b.value_size_ = 0;
      b.first_value_ = nullptr;
    }
    next_frame_ = detail::frame_end(p, word0);
  }

  const detail::Chunk* chunk_ = nullptr; // chunks with records remain while left_total_ > 0
  std::uint64_t left_total_ = 0;
  std::uint64_t left_in_chunk_ = 0;
  const std::byte* next_frame_ = nullptr;
  Batch current_;
};

class Records::batch_range {
 public:
  batch_range(const detail::Chunk* chunks, std::uint64_t total) noexcept : chunks_(chunks), total_(total) {}
  [[nodiscard]] batch_iterator begin() const noexcept { return {chunks_, total_}; }
  [[nodiscard]] batch_iterator end() const noexcept { return {}; }

 private:
  const detail::Chunk* chunks_;
  std::uint64_t total_;
};

inline Records::batch_range Records::batches() const noexcept { return {chunks_.data(), total_}; }

} // namespace ringbus
