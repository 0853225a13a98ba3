#include "ringbus/detail/segment.hpp"

#include <cstdint>
#include <string>
#include <utility>

#include "platform/files.hpp"
#include "platform/platform.hpp"

namespace ringbus::detail {

Result<RingMapping> RingMapping::anonymous(std::size_t bytes, bool huge_pages, bool prefault) {
  const std::size_t guard = platform::system_page_size();
  if (bytes == 0) return Status(Errc::invalid_argument, "a ring of 0 bytes cannot be mapped (mmap)");
  if (bytes > SIZE_MAX - guard) {
    return Status(Errc::out_of_memory, "mmap of a ring of " + std::to_string(bytes) +
                                           " bytes and its guard page: more than the address space");
  }
  Result<void*> mapped = platform::map_anonymous(bytes + guard);
  if (!mapped.ok()) {
    return Status(mapped.code(), "a ring of " + std::to_string(bytes) + " bytes and its " + std::to_string(guard) +
                                     "-byte guard page: " + std::string(mapped.message()));
  }
  auto* const data = static_cast<std::byte*>(*mapped);
  RingMapping ring(data, bytes, guard); // unmaps all of it on the error paths
  if (!platform::protect_none(data + bytes, guard)) {
    return Status(Errc::system_error, "could not protect the guard page after " + std::to_string(bytes) +
                                          " bytes of ring memory (mprotect)");
  }
  if (huge_pages) platform::advise_huge_pages(data, bytes); // a hint: refusal is fine
  if (prefault && !platform::prefault(data, bytes)) {
    return Status(Errc::out_of_memory, "could not prefault " + std::to_string(bytes) + " bytes of ring memory");
  }
  return ring;
}

RingMapping::RingMapping(RingMapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      guard_(std::exchange(other.guard_, 0)) {}

RingMapping& RingMapping::operator=(RingMapping&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) platform::unmap(data_, size_ + guard_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    guard_ = std::exchange(other.guard_, 0);
  }
  return *this;
}

RingMapping::~RingMapping() {
  if (data_ != nullptr) platform::unmap(data_, size_ + guard_);
}

} // namespace ringbus::detail
