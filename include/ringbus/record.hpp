// Records as the producer hands them in (Message) and as a consumer sees them
// (Record: a view into the ring, valid until that consumer's next poll).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace ringbus {

// A read-only run of bytes; built from strings, byte spans or trivially
// copyable values. Never owns.
class ByteView {
 public:
  constexpr ByteView() noexcept = default;
  constexpr ByteView(const std::byte* data, std::size_t size) noexcept : data_(data), size_(size) {}
  ByteView(const void* data, std::size_t size) noexcept : data_(static_cast<const std::byte*>(data)), size_(size) {}
  ByteView(std::string_view s) noexcept // NOLINT: implicit by design
      : data_(reinterpret_cast<const std::byte*>(s.data())), size_(s.size()) {}
  ByteView(const char* s) noexcept : ByteView(std::string_view(s)) {}        // NOLINT
  ByteView(const std::string& s) noexcept : ByteView(std::string_view(s)) {} // NOLINT
  ByteView(std::span<const std::byte> s) noexcept                            // NOLINT
      : data_(s.data()), size_(s.size()) {}
  ByteView(std::span<const unsigned char> s) noexcept // NOLINT
      : data_(reinterpret_cast<const std::byte*>(s.data())), size_(s.size()) {}

  [[nodiscard]] constexpr const std::byte* data() const noexcept { return data_; }
  [[nodiscard]] constexpr std::size_t size() const noexcept { return size_; }
  [[nodiscard]] constexpr bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::string_view str() const noexcept { return {reinterpret_cast<const char*>(data_), size_}; }
  [[nodiscard]] std::span<const std::byte> span() const noexcept { return {data_, size_}; }
  // The bytes as a trivially copyable T; empty when the size is not sizeof(T).
  template <class T>
  [[nodiscard]] std::optional<T> as() const noexcept {
    static_assert(std::is_trivially_copyable_v<T>);
    if (size_ != sizeof(T)) return std::nullopt;
    T out;
    std::memcpy(&out, data_, sizeof(T));
    return out;
  }
  friend bool operator==(ByteView a, ByteView b) noexcept {
    return a.size_ == b.size_ && (a.size_ == 0 || std::memcmp(a.data_, b.data_, a.size_) == 0);
  }

 private:
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// The bytes of a trivially copyable value, e.g. bytes_of(price).
template <class T>
ByteView bytes_of(const T& value) noexcept {
  static_assert(std::is_trivially_copyable_v<T>, "bytes_of needs a trivially copyable type");
  return ByteView(&value, sizeof(T));
}

struct Header {
  ByteView name;
  ByteView value;
};

// "Take the time at append" (the topic's TimestampSource decides).
inline constexpr std::int64_t timestamp_now = INT64_MIN;

// CLOCK_REALTIME in ns since the epoch (std::chrono::system_clock on Linux),
// read through the vDSO: the clock record timestamps follow. Producers read
// it through the TSC where they can (TimestampSource::wall_clock).
std::int64_t wall_clock_ns() noexcept;

// A record as the producer gives it.
struct Message {
  ByteView key;
  ByteView value;
  std::int64_t timestamp_ns = timestamp_now;
  std::span<const Header> headers;
};

// The headers of a received record, decoded lazily from the frame.
class HeadersView {
 public:
  class iterator {
   public:
    using value_type = Header;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(const std::byte* p, const std::byte* end, std::uint32_t left) noexcept : p_(p), end_(end), left_(left) {
      load();
    }
    Header operator*() const noexcept { return current_; }
    iterator& operator++() noexcept {
      --left_;
      load();
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const iterator& o) const noexcept { return left_ == o.left_; }

   private:
    void load() noexcept;
    const std::byte* p_ = nullptr;
    const std::byte* end_ = nullptr;
    std::uint32_t left_ = 0;
    Header current_{};
  };

  HeadersView() = default;
  HeadersView(const std::byte* encoded, const std::byte* end, std::uint32_t count) noexcept
      : p_(encoded), end_(end), count_(count) {}
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] iterator begin() const noexcept { return {p_, end_, count_}; }
  [[nodiscard]] iterator end() const noexcept { return {}; }
  // The value of the first header with this name.
  [[nodiscard]] std::optional<ByteView> find(std::string_view name) const noexcept;

 private:
  const std::byte* p_ = nullptr;
  const std::byte* end_ = nullptr;
  std::uint32_t count_ = 0;
};

// A record as a consumer sees it: views into the ring (or the consumer's copy
// for overwrite topics), valid until that consumer's next poll.
struct Record {
  std::string_view topic;
  std::uint64_t offset = 0;
  std::int64_t timestamp_ns = 0;
  ByteView key;
  ByteView value;
  HeadersView headers;
};

} // namespace ringbus
