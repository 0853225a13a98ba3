// The library heap: mimalloc's mi_ API, loaded privately so that it never
// replaces the application's malloc (see detail/memory.hpp).
#include "ringbus/detail/memory.hpp"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>

namespace ringbus::detail {

namespace {

using MallocAligned = void* (*)(std::size_t, std::size_t);
using Free = void (*)(void*);

struct Heap {
  MallocAligned malloc_aligned = nullptr;
  Free free = nullptr;
  Heap() {
#ifdef RINGBUS_SYSTEM_HEAP
    return; // sanitizer builds: the sanitizer's allocator sees every allocation
#endif
    // RTLD_LOCAL: mi_ symbols for us only; the process's malloc stays as it is
    // (unless the executable linked libmimalloc itself, then this finds that copy).
    void* lib = ::dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) lib = ::dlopen("libmimalloc.so", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return;
    malloc_aligned = reinterpret_cast<MallocAligned>(::dlsym(lib, "mi_malloc_aligned"));
    free = reinterpret_cast<Free>(::dlsym(lib, "mi_free"));
    if (malloc_aligned == nullptr || free == nullptr) {
      malloc_aligned = nullptr;
      free = nullptr;
    }
  }
};

const Heap& heap() {
  static const Heap instance; // thread-safe static init; cold path
  return instance;
}

std::atomic<std::uint64_t> allocations{0};

} // namespace

void* heap_allocate(std::size_t bytes, std::size_t alignment) {
  allocations.fetch_add(1, std::memory_order_relaxed); // a statistic only
  if (bytes == 0) bytes = 1;
  const Heap& h = heap();
  void* p = nullptr;
  if (h.malloc_aligned != nullptr) {
    p = h.malloc_aligned(bytes, alignment);
  } else {
    if (::posix_memalign(&p, alignment < sizeof(void*) ? sizeof(void*) : alignment, bytes) != 0) p = nullptr;
  }
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void heap_free(void* p) noexcept {
  if (p == nullptr) return;
  const Heap& h = heap();
  if (h.free != nullptr) {
    h.free(p);
  } else {
    std::free(p); // NOLINT: pairs with posix_memalign
  }
}

std::string_view heap_backend() noexcept { return heap().malloc_aligned != nullptr ? "mimalloc" : "system"; }

std::uint64_t heap_allocation_count() noexcept { return allocations.load(std::memory_order_relaxed); }

} // namespace ringbus::detail
