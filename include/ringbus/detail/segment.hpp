// The memory a topic's segments live in. In memory, the ring's segments are
// one anonymous mapping (contiguous, so a frame is always one run of bytes);
// persistent topics map segment files into one reserved range (topic_store.hpp).
#pragma once

#include <cstddef>

#include "ringbus/status.hpp"

namespace ringbus::detail {

class RingMapping {
 public:
  // Maps bytes of zeroed anonymous memory. huge_pages asks for transparent huge
  // pages (madvise), prefault touches every page now so no later access faults.
  static Result<RingMapping> anonymous(std::size_t bytes, bool huge_pages, bool prefault);
  // Takes over a mapping made elsewhere (a persistent topic's reserved ring
  // with segment files mapped into it); unmaps all of it on destruction.
  static RingMapping adopt(std::byte* data, std::size_t size) noexcept { return RingMapping(data, size); }

  RingMapping() noexcept = default;
  RingMapping(RingMapping&& other) noexcept;
  RingMapping& operator=(RingMapping&& other) noexcept;
  RingMapping(const RingMapping&) = delete;
  RingMapping& operator=(const RingMapping&) = delete;
  ~RingMapping();

  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  RingMapping(std::byte* data, std::size_t size) noexcept : data_(data), size_(size) {}
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

} // namespace ringbus::detail
