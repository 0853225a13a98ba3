#include "ringbus/detail/segment.hpp"

#include <utility>

#include "platform/platform.hpp"

namespace ringbus::detail {

Result<RingMapping> RingMapping::anonymous(std::size_t bytes, bool huge_pages, bool prefault) {
  Result<void*> mapped = platform::map_anonymous(bytes);
  if (!mapped.ok()) return mapped.status();
  if (huge_pages) platform::advise_huge_pages(*mapped, bytes); // a hint: refusal is fine
  if (prefault && !platform::prefault(*mapped, bytes)) {
    platform::unmap(*mapped, bytes);
    return Status(Errc::out_of_memory, "could not prefault " + std::to_string(bytes) + " bytes of ring memory");
  }
  return RingMapping(static_cast<std::byte*>(*mapped), bytes);
}

RingMapping::RingMapping(RingMapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

RingMapping& RingMapping::operator=(RingMapping&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) platform::unmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

RingMapping::~RingMapping() {
  if (data_ != nullptr) platform::unmap(data_, size_);
}

} // namespace ringbus::detail
