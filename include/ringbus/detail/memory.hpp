// The library's own heap: every allocation ringbus makes off the mapped path
// goes through here, to mimalloc's mi_ API. mimalloc is loaded privately
// (RTLD_LOCAL), so it never replaces the application's malloc unless the
// application links it itself (the RINGBUS_MIMALLOC_OVERRIDE CMake option does
// that for ringbus's own executables).
#pragma once

#include "ringbus/detail/config.hpp"

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <string_view>
#include <utility>

namespace ringbus::detail {

// Allocates bytes aligned to alignment (a power of two); throws std::bad_alloc.
void* heap_allocate(std::size_t bytes, std::size_t alignment = alignof(std::max_align_t));
// Frees what heap_allocate returned; nullptr is fine.
void heap_free(void* p) noexcept;
// "mimalloc" when the mi_ API was found, else "system".
std::string_view heap_backend() noexcept;
// Allocations made so far through heap_allocate (for tests that count).
std::uint64_t heap_allocation_count() noexcept;

template <class T>
struct HeapAllocator {
  using value_type = T;
  HeapAllocator() noexcept = default;
  template <class U>
  HeapAllocator(const HeapAllocator<U>&) noexcept {} // NOLINT: rebind
  T* allocate(std::size_t n) { return static_cast<T*>(heap_allocate(n * sizeof(T), alignof(T))); }
  void deallocate(T* p, std::size_t) noexcept { heap_free(p); }
  template <class U>
  bool operator==(const HeapAllocator<U>&) const noexcept {
    return true;
  }
};

// For state one thread writes on every call (a consumer's cursors, its poll's
// chunks): blocks aligned to and padded to whole cache_line pairs, so two
// threads' small blocks never share a line or the line the adjacent-line
// prefetcher pulls along with it (the rtt benchmark's two consumers otherwise
// got neighbouring 64-byte blocks from the same size class).
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() noexcept = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {} // NOLINT: rebind
  T* allocate(std::size_t n) {
    const std::size_t bytes = (n * sizeof(T) + cache_line - 1) & ~(cache_line - 1);
    return static_cast<T*>(heap_allocate(bytes, cache_line));
  }
  void deallocate(T* p, std::size_t) noexcept { heap_free(p); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept {
    return true;
  }
};

using HeapString = std::basic_string<char, std::char_traits<char>, HeapAllocator<char>>;

template <class T, class... Args>
T* heap_new(Args&&... args) {
  void* p = heap_allocate(sizeof(T), alignof(T));
  try {
    return ::new (p) T(std::forward<Args>(args)...);
  } catch (...) {
    heap_free(p);
    throw;
  }
}

template <class T>
void heap_delete(T* p) noexcept {
  if (p != nullptr) {
    p->~T();
    heap_free(p);
  }
}

struct HeapDeleter {
  template <class T>
  void operator()(T* p) const noexcept {
    heap_delete(p);
  }
};

} // namespace ringbus::detail
