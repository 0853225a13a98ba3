// Build-wide constants for the hot path.
#pragma once

#include <cstddef>

namespace ringbus::detail {

// One cache-line constant for alignment. 128 on x86-64, not 64: the L2's
// adjacent-line prefetcher pulls lines in pairs, so two independently written
// atomics 64 bytes apart still interfere.
inline constexpr std::size_t cache_line = 128;

// Frames are aligned to, and padded to, this many bytes.
inline constexpr std::size_t frame_alignment = 8;

constexpr std::size_t align_up(std::size_t n, std::size_t a) noexcept { return (n + a - 1) & ~(a - 1); }
constexpr bool is_power_of_two(std::size_t n) noexcept { return n != 0 && (n & (n - 1)) == 0; }

#if defined(__GNUC__)
#define RINGBUS_LIKELY(x) __builtin_expect(!!(x), 1)
#define RINGBUS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RINGBUS_NOINLINE __attribute__((noinline))
#define RINGBUS_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define RINGBUS_LIKELY(x) (x)
#define RINGBUS_UNLIKELY(x) (x)
#define RINGBUS_NOINLINE
#define RINGBUS_ALWAYS_INLINE inline
#endif

// Asks for the cache line at p in a state this core may write (PREFETCHW on
// x86-64: every x86-64 CPU decodes it, as a hint or a no-op). Never faults.
RINGBUS_ALWAYS_INLINE void prefetch_for_write(const void* p) noexcept {
#if defined(__x86_64__) && defined(__GNUC__)
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#elif defined(__GNUC__)
  __builtin_prefetch(p, 1, 3);
#else
  (void)p;
#endif
}

} // namespace ringbus::detail
