#include "ringbus/detail/clock.hpp"

#include <algorithm>

#include "platform/platform.hpp"

namespace ringbus::detail {

namespace {

__extension__ typedef unsigned __int128 u128; // pedantic: a GCC and Clang extension

// ticks * rate in ns (32.32 fixed point), for any tick count.
std::int64_t ticks_to_ns(std::uint64_t ticks, std::uint64_t rate) noexcept {
  const u128 ns = (u128{ticks} * rate) >> TickClock::shift;
  return ns > u128{INT64_MAX} ? INT64_MAX : static_cast<std::int64_t>(ns);
}

} // namespace

std::int64_t TickClock::restart(std::uint64_t t, std::int64_t real_ns, std::uint64_t width_ticks) noexcept {
  has_base_ = true;
  base_ticks_ = next_base_ticks_ = anchor_ticks_ = t;
  base_ns_ = next_base_ns_ = anchor_ns_ = real_ns;
  base_width_ = next_base_width_ = width_ticks;
  rate_ = interval_rate_ = 0;
  interval_ticks_ = 0;
  return real_ns;
}

std::int64_t TickClock::anchor(std::uint64_t t, std::int64_t real_ns, std::uint64_t width_ticks) noexcept {
  if (!has_base_) return restart(t, real_ns, width_ticks);
  // The counter or the real clock went back past the base: nothing measured holds.
  if (t <= base_ticks_ || real_ns <= base_ns_) return restart(t, real_ns, width_ticks);
  std::int64_t at = real_ns;
  if (rate_ != 0) {
    // A counter behind the anchor (another CPU's, not quite in step) is a step too.
    if (t < anchor_ticks_) return restart(t, real_ns, width_ticks);
    const std::uint64_t d = t - anchor_ticks_;
    const std::uint64_t in_interval = std::min(d, interval_ticks_);
    // The last stamp convert could have given, then on at the full rate.
    const std::int64_t ceiling = anchor_ns_ + ticks_to_ns(in_interval, interval_rate_);
    const std::int64_t predicted = ceiling + ticks_to_ns(d - in_interval, rate_);
    const std::int64_t limit = step_limit_ns + (predicted - anchor_ns_) / 1024;
    if (predicted - real_ns > limit || real_ns - predicted > limit) return restart(t, real_ns, width_ticks);
    if (ticks_to_ns(width_ticks, rate_) > max_sample_width_ns) {
      // Too wide to anchor to: one more interval on the extrapolation.
      anchor_ticks_ = t;
      anchor_ns_ = predicted;
      interval_rate_ = rate_;
      return predicted;
    }
    at = std::max(real_ns, ceiling);
  }
  // The rate, from real samples only (never from the stamps given).
  const std::uint64_t baseline_ticks = t - base_ticks_;
  if (real_ns - base_ns_ >= min_baseline_ns &&
      (u128{base_width_} + width_ticks) * baseline_per_width <= u128{baseline_ticks} * 2) {
    rate_ =
        static_cast<std::uint64_t>((u128(static_cast<std::uint64_t>(real_ns - base_ns_)) << shift) / baseline_ticks);
  }
  if (real_ns - next_base_ns_ >= base_refresh_ns) {
    base_ticks_ = next_base_ticks_;
    base_ns_ = next_base_ns_;
    base_width_ = next_base_width_;
    next_base_ticks_ = t;
    next_base_ns_ = real_ns;
    next_base_width_ = width_ticks;
  }
  anchor_ticks_ = t;
  anchor_ns_ = at;
  if (rate_ == 0) { // no baseline yet (or a counter of more than 2^32 ticks a ns): no extrapolation
    interval_ticks_ = 0;
    return at;
  }
  interval_ticks_ = static_cast<std::uint64_t>((u128{anchor_interval_ns} << shift) / rate_);
  // Ahead of the real clock: this interval gives back the lead, at most half of it.
  const auto slowed = static_cast<std::uint64_t>(std::min(at - real_ns, anchor_interval_ns / 2));
  interval_rate_ = rate_ - static_cast<std::uint64_t>(u128{rate_} * slowed / anchor_interval_ns);
  return at;
}

bool tsc_clock_usable() noexcept {
#if RINGBUS_HAS_TSC
  static const bool usable = platform::kernel_clocksource_is_tsc();
  return usable;
#else
  return false;
#endif
}

std::int64_t WallClock::now_slow() noexcept {
#if RINGBUS_HAS_TSC
  if (use_tsc_) {
    // The real clock between two ordered counter reads, the narrowest of
    // three tries: the sample's tick is their midpoint.
    std::uint64_t best_width = UINT64_MAX;
    std::uint64_t best_ticks = 0;
    std::int64_t best_ns = 0;
    for (int i = 0; i < 3; ++i) {
      _mm_lfence(); // the counter read waits for what came before it
      const std::uint64_t before = __rdtsc();
      const std::int64_t ns = wall_clock_ns();
      _mm_lfence();
      const std::uint64_t after = __rdtsc();
      if (after >= before && after - before < best_width) {
        best_width = after - before;
        best_ticks = before + best_width / 2;
        best_ns = ns;
      }
    }
    if (best_width != UINT64_MAX) return ticks_.anchor(best_ticks, best_ns, best_width);
  }
#endif
  return wall_clock_ns();
}

} // namespace ringbus::detail
