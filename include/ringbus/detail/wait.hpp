// How a thread waits: one step at a time, so callers keep their own deadline
// and their own condition. The blocking strategy's kernel sleep lives in the
// log (it needs the producer's cooperation); here it backs off like `backoff`.
#pragma once

#include <cstdint>

#include "ringbus/options.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ringbus::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

void thread_yield() noexcept;                   // sched_yield
void thread_sleep_ns(std::int64_t ns) noexcept; // nanosleep

class Waiter {
 public:
  explicit Waiter(WaitStrategy strategy) noexcept : strategy_(strategy) {}
  // Resuming a wait that already idled `step` times (a caller's own spin).
  Waiter(WaitStrategy strategy, std::uint32_t step) noexcept : strategy_(strategy), step_(step) {}
  void reset() noexcept { step_ = 0; }
  // One idle step of the strategy.
  void idle() noexcept {
    switch (strategy_) {
      case WaitStrategy::busy_spin: cpu_relax(); return;
      case WaitStrategy::yield: thread_yield(); return;
      case WaitStrategy::backoff:
      case WaitStrategy::blocking: backoff(); return;
    }
  }
  [[nodiscard]] WaitStrategy strategy() const noexcept { return strategy_; }

  static constexpr std::uint32_t spin_steps = 256; // backoff: pause this many times,
  static constexpr std::uint32_t yield_steps = 64; // then yield this many, then sleep

 private:
  void backoff() noexcept {
    if (step_ < spin_steps) {
      cpu_relax();
    } else if (step_ < spin_steps + yield_steps) {
      thread_yield();
    } else {
      // 1 us doubling to 1 ms: a slow peer costs at most one extra millisecond.
      const std::uint32_t exponent = step_ - spin_steps - yield_steps;
      thread_sleep_ns(exponent >= 10 ? 1'000'000 : (1000LL << exponent));
    }
    if (step_ < spin_steps + yield_steps + 10) ++step_;
  }
  WaitStrategy strategy_;
  std::uint32_t step_ = 0;
};

} // namespace ringbus::detail
