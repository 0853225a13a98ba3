#include "ringbus/detail/segment.hpp"

#include <cstdint>
#include <string>
#include <utility>

#include "platform/files.hpp"
#include "platform/platform.hpp"

namespace ringbus::detail {

namespace {

constexpr std::size_t huge_page_bytes = std::size_t{2} << 20; // x86-64's and arm64's (4 KiB pages) PMD size

} // namespace

Result<RingMapping> RingMapping::anonymous(std::size_t bytes, bool huge_pages, bool prefault) {
  // [ring: bytes, rounded up to whole pages][guard page], starting on a huge
  // page boundary when huge pages are asked for: the kernel aligns a mapping
  // to 2 MiB only when its length is a multiple of 2 MiB, which the guard
  // page breaks, so the start is aligned here from a larger mapping.
  const std::size_t page = platform::system_page_size();
  if (bytes == 0) return Status(Errc::invalid_argument, "a ring of 0 bytes cannot be mapped (mmap)");
  const std::size_t align = huge_pages && huge_page_bytes > page ? huge_page_bytes : 0;
  if (bytes > SIZE_MAX - 2 * page - align) {
    return Status(Errc::out_of_memory, "mmap of a ring of " + std::to_string(bytes) +
                                           " bytes and its guard page: more than the address space");
  }
  const std::size_t ring_end = (bytes + page - 1) / page * page; // the guard page starts here
  const std::size_t used = ring_end + page;
  Result<void*> mapped = platform::map_anonymous(used + align);
  if (!mapped.ok()) {
    return Status(mapped.code(), "a ring of " + std::to_string(bytes) + " bytes and its " + std::to_string(page) +
                                     "-byte guard page: " + std::string(mapped.message()));
  }
  auto* const first = static_cast<std::byte*>(*mapped);
  std::byte* data = first;
  if (align != 0) {
    const auto at = reinterpret_cast<std::uintptr_t>(first);
    data = first + ((align - at % align) % align);
    if (data != first) platform::unmap(first, static_cast<std::size_t>(data - first));
    const std::size_t after = align - static_cast<std::size_t>(data - first);
    if (after != 0) platform::unmap(data + used, after);
  }
  RingMapping ring(data, bytes, used - bytes); // unmaps all of it on the error paths
  if (!platform::protect_none(data + ring_end, page)) {
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
