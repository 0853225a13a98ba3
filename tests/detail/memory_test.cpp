// The library heap: mimalloc's mi_ API when present, aligned, counted.
#include "ringbus/detail/memory.hpp"

#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

#include "test_support.hpp"

namespace detail = ringbus::detail;

namespace {

[[maybe_unused]] bool mimalloc_loadable() {
  void* lib = ::dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) lib = ::dlopen("libmimalloc.so", RTLD_NOW | RTLD_LOCAL);
  const bool ok = lib != nullptr && ::dlsym(lib, "mi_malloc_aligned") != nullptr && ::dlsym(lib, "mi_free") != nullptr;
  if (lib != nullptr) ::dlclose(lib);
  return ok;
}

struct Tracked {
  static inline int live = 0;
  int value;
  explicit Tracked(int v) : value(v) { ++live; }
  ~Tracked() { --live; }
};

struct ThrowsOnConstruction {
  explicit ThrowsOnConstruction(int) { throw std::runtime_error("constructor failed"); }
};

} // namespace

TEST_SUITE("memory") {
  TEST_CASE("heap_backend_is_mimalloc_when_libmimalloc_is_present") {
#ifdef RINGBUS_SYSTEM_HEAP
    CHECK(detail::heap_backend() == "system"); // sanitizer builds: the sanitizer sees every allocation
#else
    CHECK(detail::heap_backend() == (mimalloc_loadable() ? "mimalloc" : "system"));
#endif
    CHECK(ringbus::heap_backend() == detail::heap_backend());
  }

  TEST_CASE("heap_allocate_returns_writable_memory_at_the_requested_alignment") {
    for (std::size_t alignment :
         {std::size_t{1}, std::size_t{8}, std::size_t{16}, std::size_t{64}, std::size_t{128}, std::size_t{4096}}) {
      for (std::size_t bytes : {std::size_t{1}, std::size_t{24}, std::size_t{1000}, std::size_t{1} << 20}) {
        CAPTURE(alignment);
        CAPTURE(bytes);
        void* p = detail::heap_allocate(bytes, alignment);
        REQUIRE(p != nullptr);
        CHECK(reinterpret_cast<std::uintptr_t>(p) % alignment == 0);
        std::memset(p, 0x5a, bytes);
        CHECK(static_cast<unsigned char*>(p)[bytes - 1] == 0x5a);
        detail::heap_free(p);
      }
    }
    void* default_aligned = detail::heap_allocate(40);
    CHECK(reinterpret_cast<std::uintptr_t>(default_aligned) % alignof(std::max_align_t) == 0);
    detail::heap_free(default_aligned);
  }

  TEST_CASE("heap_allocate_of_zero_bytes_returns_a_freeable_pointer") {
    void* p = detail::heap_allocate(0);
    CHECK(p != nullptr);
    detail::heap_free(p);
    detail::heap_free(nullptr); // fine
  }

  TEST_CASE("heap_allocate_counts_every_allocation") {
    const std::uint64_t before = detail::heap_allocation_count();
    void* a = detail::heap_allocate(8);
    void* b = detail::heap_allocate(16, 64);
    CHECK(detail::heap_allocation_count() == before + 2);
    detail::heap_free(a);
    detail::heap_free(b);
    CHECK(detail::heap_allocation_count() == before + 2); // frees are not allocations
  }

  TEST_CASE("heap_allocate_throws_bad_alloc_when_the_heap_refuses") {
    CHECK_THROWS_AS(detail::heap_allocate(SIZE_MAX / 2, 64), std::bad_alloc);
  }

  TEST_CASE("heap_allocator_backs_standard_containers") {
    const std::uint64_t before = detail::heap_allocation_count();
    std::vector<std::uint64_t, detail::HeapAllocator<std::uint64_t>> v;
    for (std::uint64_t i = 0; i < 1000; ++i) v.push_back(i * i);
    for (std::uint64_t i = 0; i < 1000; ++i) CHECK(v[i] == i * i);
    CHECK(detail::heap_allocation_count() > before);

    detail::HeapString s("a heap string long enough to leave the small-string buffer");
    const std::size_t once = s.size();
    s += s;
    CHECK(s.size() == 2 * once);
    CHECK(s.substr(once) == s.substr(0, once));
    CHECK(detail::HeapAllocator<int>() == detail::HeapAllocator<char>());
  }

  TEST_CASE("heap_new_and_heap_delete_construct_and_destroy_once") {
    Tracked::live = 0;
    Tracked* t = detail::heap_new<Tracked>(7);
    CHECK(Tracked::live == 1);
    CHECK(t->value == 7);
    detail::heap_delete(t);
    CHECK(Tracked::live == 0);
    detail::heap_delete<Tracked>(nullptr); // fine

    {
      std::unique_ptr<Tracked, detail::HeapDeleter> owned(detail::heap_new<Tracked>(1));
      CHECK(Tracked::live == 1);
    }
    CHECK(Tracked::live == 0);
  }

  TEST_CASE("cache_line_allocator_gives_each_block_whole_cache_lines_of_its_own") {
    // Two small blocks allocated one after the other (a 56-byte Chunk is one
    // of mimalloc's 64-byte class) must not share a cache_line pair.
    struct Small {
      std::byte bytes[56];
    };
    detail::CacheLineAllocator<Small> allocator;
    Small* a = allocator.allocate(1);
    Small* b = allocator.allocate(1);
    const auto line_of = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) / detail::cache_line; };
    CHECK(reinterpret_cast<std::uintptr_t>(a) % detail::cache_line == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(b) % detail::cache_line == 0);
    CHECK(line_of(a) != line_of(b));
    std::memset(a, 0xab, sizeof(Small));
    std::memset(b, 0xcd, sizeof(Small));
    CHECK(std::to_integer<int>(a->bytes[55]) == 0xab);
    allocator.deallocate(a, 1);
    allocator.deallocate(b, 1);

    std::vector<std::uint32_t, detail::CacheLineAllocator<std::uint32_t>> v(100, 7u); // 400 bytes: 4 lines
    CHECK(reinterpret_cast<std::uintptr_t>(v.data()) % detail::cache_line == 0);
    CHECK(v[99] == 7u);
  }

  TEST_CASE("heap_new_passes_on_a_constructor_exception") {
    CHECK_THROWS_AS(detail::heap_new<ThrowsOnConstruction>(1), std::runtime_error);
  }

} // TEST_SUITE
