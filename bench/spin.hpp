// How every wait loop of every impl idles, and how a broken run stops.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ringbus::bench {

// One idle step of a busy-wait. The same pause everywhere (atomic_queue's and
// ringbus's own spin loops use the same instruction), so no row waits
// differently from another.
inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// An impl refused an operation that cannot fail in a correct run (e.g. a
// blocking append returned an error). Waiting threads could never finish, so
// the whole process stops, loudly.
[[noreturn]] inline void fail(std::string_view impl, std::string_view what) noexcept {
  std::fprintf(stderr, "ringbus-bench: %.*s: %.*s\n", static_cast<int>(impl.size()), impl.data(),
               static_cast<int>(what.size()), what.data());
  std::abort();
}

} // namespace ringbus::bench
