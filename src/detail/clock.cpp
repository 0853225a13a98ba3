#include "ringbus/detail/clock.hpp"

#include <algorithm>

#include "platform/platform.hpp"

namespace ringbus::detail {

namespace {

__extension__ typedef unsigned __int128 u128; // pedantic: a GCC and Clang extension

// ticks * rate in ns (32.32 fixed point), for any tick count; at most 2^62
// ns (146 years), so that adding it to a time since the epoch cannot overflow.
std::int64_t ticks_to_ns(std::uint64_t ticks, std::uint64_t rate) noexcept {
  constexpr std::int64_t most = std::int64_t{1} << 62;
  const u128 ns = (u128{ticks} * rate) >> TickClock::shift;
  return ns > u128{most} ? most : static_cast<std::int64_t>(ns);
}

} // namespace

std::int64_t TickClock::given_max() const noexcept { return anchor_ns_ + ticks_to_ns(interval_ticks_, interval_rate_); }

std::int64_t TickClock::without_sample(std::int64_t real_ns) const noexcept {
  return has_base_ ? std::max(real_ns, given_max()) : real_ns;
}

bool TickClock::too_wide(std::uint64_t width) const noexcept {
  return rate_ != 0 && ticks_to_ns(width, rate_) > max_sample_width_ns;
}

void TickClock::rebase(const ClockSample& s) noexcept {
  has_base_ = true;
  base_ = next_base_ = s;
  rate_ = 0;
}

std::int64_t TickClock::start_interval(std::uint64_t t, std::int64_t at, std::int64_t slowed) noexcept {
  anchor_ticks_ = t;
  anchor_ns_ = at;
  if (rate_ == 0) { // no baseline yet (or a counter of more than 2^32 ticks a ns): no extrapolation
    interval_ticks_ = interval_rate_ = 0;
    return at;
  }
  interval_ticks_ = static_cast<std::uint64_t>((u128{anchor_interval_ns} << shift) / rate_);
  const auto give_back = static_cast<std::uint64_t>(std::clamp<std::int64_t>(slowed, 0, anchor_interval_ns / 2));
  interval_rate_ = rate_ - static_cast<std::uint64_t>(u128{rate_} * give_back / anchor_interval_ns);
  return at;
}

std::int64_t TickClock::anchor(const ClockSample& s) noexcept {
  if (!has_base_ || s.ticks <= base_.ticks || s.steady_ns <= base_.steady_ns) {
    // First sample, or the counter or the monotonic clock behind the base.
    const std::int64_t at = without_sample(s.real_ns);
    rebase(s);
    return start_interval(s.ticks, at, 0);
  }
  std::int64_t at = s.real_ns;
  if (rate_ != 0) {
    if (s.ticks < anchor_ticks_) { // a CPU whose counter is a little behind: on from the ceiling
      return start_interval(s.ticks, std::max(s.real_ns, given_max()), 0);
    }
    const std::uint64_t d = s.ticks - anchor_ticks_;
    const std::uint64_t in_interval = std::min(d, interval_ticks_);
    // The last stamp convert could have given, then on at the full rate.
    const std::int64_t ceiling = anchor_ns_ + ticks_to_ns(in_interval, interval_rate_);
    const std::int64_t predicted = ceiling + ticks_to_ns(d - in_interval, rate_);
    if (too_wide(s.width)) {
      // Not trusted: close to the anchor the extrapolation is better; after an idle, the sample.
      return start_interval(s.ticks, d <= 2 * interval_ticks_ ? predicted : std::max(s.real_ns, ceiling), 0);
    }
    const std::int64_t limit = step_limit_ns + (predicted - anchor_ns_) / 1024;
    if (predicted - s.real_ns > limit || s.real_ns - predicted > limit) {
      at = s.real_ns; // CLOCK_REALTIME stepped: follow it, forwards or back
    } else {
      at = std::max(s.real_ns, ceiling);
    }
  }
  // The rate, against the monotonic clock (never the stamps given).
  const std::uint64_t baseline_ticks = s.ticks - base_.ticks;
  if (s.steady_ns - base_.steady_ns >= min_baseline_ns &&
      (u128{base_.width} + s.width) * baseline_per_width <= u128{baseline_ticks} * 2) {
    rate_ = static_cast<std::uint64_t>((u128(static_cast<std::uint64_t>(s.steady_ns - base_.steady_ns)) << shift) /
                                       baseline_ticks);
  }
  if (s.steady_ns - next_base_.steady_ns >= base_refresh_ns) {
    base_ = next_base_;
    next_base_ = s;
  }
  return start_interval(s.ticks, at, at - s.real_ns);
}

bool clocksource_reads_tsc(std::string_view clocksource, bool invariant_tsc) noexcept {
  if (clocksource == "tsc") return true;
  return clocksource == "kvm-clock" && invariant_tsc;
}

bool tsc_clock_usable() noexcept {
#if RINGBUS_HAS_TSC
  static const bool usable = [] {
    char clocksource[32];
    return platform::kernel_clocksource(clocksource, sizeof clocksource) &&
           clocksource_reads_tsc(clocksource, platform::cpu_has_invariant_tsc());
  }();
  return usable;
#else
  return false;
#endif
}

std::int64_t WallClock::now_slow() noexcept {
#if RINGBUS_HAS_TSC
  if (use_tsc_) {
    // The clocks between two ordered counter reads; up to three tries while
    // the thread keeps being preempted in between, then the narrowest. The
    // lfences order the counter reads within this thread's instruction
    // stream (rdtsc is not ordered otherwise); they are not memory fences and
    // no other thread relies on them.
    ClockSample best;
    best.width = UINT64_MAX;
    for (int i = 0; i < 3; ++i) {
      _mm_lfence();
      const std::uint64_t before = __rdtsc();
      const std::int64_t steady = platform::monotonic_ns();
      const std::int64_t real = wall_clock_ns();
      _mm_lfence();
      const std::uint64_t after = __rdtsc();
      if (after < before || after - before >= best.width) continue;
      best = ClockSample{before + (after - before) / 2, steady, real, after - before};
      if (!ticks_.too_wide(best.width)) break;
    }
    if (best.width == UINT64_MAX) return ticks_.without_sample(wall_clock_ns());
    return ticks_.anchor(best);
  }
#endif
  return wall_clock_ns();
}

} // namespace ringbus::detail
