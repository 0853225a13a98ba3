// The clocks of the harness: the time-stamp counter for round-trip samples
// (cheaper to read than clock_gettime: a few ns against 20-50 on a VM),
// converted to ns with a rate measured against steady_clock at startup; and
// each thread's CPU time, which tells whether a run had its two CPUs to itself.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace ringbus::bench {

// A tick count. lfence first: the read happens after every earlier
// instruction (e.g. the load that saw the reply) has completed.
inline std::uint64_t ticks_now() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_lfence();
  return __rdtsc();
#else
  return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
}

// Nanoseconds per tick, measured over `window` of steady_clock.
inline double measure_ns_per_tick(std::chrono::milliseconds window) noexcept {
  using clock = std::chrono::steady_clock;
  const clock::time_point t0 = clock::now();
  const std::uint64_t c0 = ticks_now();
  clock::time_point t1 = t0;
  while (t1 - t0 < window) t1 = clock::now();
  const std::uint64_t c1 = ticks_now();
  const double ns = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  return c1 > c0 ? ns / static_cast<double>(c1 - c0) : 1.0;
}

// CPU time the calling thread has used, in seconds. A busy-waiting thread
// that was never descheduled uses as much CPU time as wall time.
inline double thread_cpu_seconds() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

} // namespace ringbus::bench
