// The memory a topic's segments live in. In memory, the ring's segments are
// one anonymous mapping (contiguous, so a frame is always one run of bytes);
// persistent topics map segment files into one reserved range (topic_store.hpp).
#pragma once

#include <cstddef>

#include "ringbus/status.hpp"

namespace ringbus::detail {

class RingMapping {
 public:
  // Maps bytes of zeroed anonymous memory, followed by a guard page that
  // faults on any access (address space only: no memory). huge_pages asks for
  // transparent huge pages (madvise), prefault touches every page now so no
  // later access faults.
  static Result<RingMapping> anonymous(std::size_t bytes, bool huge_pages, bool prefault);
  // Takes over a mapping made elsewhere (a persistent topic's reserved ring
  // with segment files mapped into it, and guard bytes after it); unmaps all
  // of it on destruction.
  static RingMapping adopt(std::byte* data, std::size_t size, std::size_t guard = 0) noexcept {
    return RingMapping(data, size, guard);
  }

  RingMapping() noexcept = default;
  RingMapping(RingMapping&& other) noexcept;
  RingMapping& operator=(RingMapping&& other) noexcept;
  RingMapping(const RingMapping&) = delete;
  RingMapping& operator=(const RingMapping&) = delete;
  ~RingMapping();

  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  RingMapping(std::byte* data, std::size_t size, std::size_t guard = 0) noexcept
      : data_(data), size_(size), guard_(guard) {}
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t guard_ = 0; // bytes of guard after size_, unmapped with it
};

} // namespace ringbus::detail
