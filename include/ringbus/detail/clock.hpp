// The wall clock a producer stamps its records with (TimestampSource::wall_clock).
//
// clock_gettime(CLOCK_REALTIME) costs 22-30 ns here even through the vDSO:
// it orders the CPU's time-stamp counter read (rdtscp or lfence; rdtsc), so
// the pipeline drains behind it, and an append is otherwise ~30 ns. When the
// kernel itself keeps time with the TSC (clocksource "tsc", or "kvm-clock"
// with an invariant TSC: see clocksource_reads_tsc), a producer reads the
// counter directly (rdtsc, unordered) and converts it with its own anchor
// and rate, the way the vDSO does with the kernel's:
//
//   anchor   a (ticks, ns) sample of CLOCK_REALTIME, retaken whenever the
//            last one is older than anchor_interval_ns (1 ms): one sample
//            per millisecond instead of a clock_gettime per record
//   rate     ns per tick, measured against CLOCK_MONOTONIC (slewed by NTP like
//            CLOCK_REALTIME, but never stepped) over a baseline of 1 ms to 2 s
//            (the base sample moves on every second, so NTP's frequency
//            corrections are followed within seconds)
//   ceiling  stamps never step back: an anchor is never below the last stamp
//            the previous interval could have given. When the extrapolation
//            ran ahead of CLOCK_REALTIME (rate error, NTP slowing the clock),
//            the anchor keeps the extrapolated time and the next interval runs
//            slower (by at most half) until the lead is gone. Behind, the
//            anchor steps forward to CLOCK_REALTIME at once.
//   step     CLOCK_REALTIME further than step_limit_ns (1 ms, plus 1/1024 of
//            the time since the anchor) from the extrapolation: an
//            administrator or NTP set the clock. The stamps follow it at once,
//            forwards or back; the rate (against CLOCK_MONOTONIC) stands.
//   wide     a sample whose counter reads are more than max_sample_width_ns
//            apart (the thread was preempted in between) is not trusted:
//            within two intervals of the anchor the next one starts on the
//            extrapolation; after an idle, at the sample (never below the
//            ceiling). It never decides a step and never measures the rate.
//
// So a stamp is within a few microseconds of CLOCK_REALTIME at the append
// (the error is the rate's error over one interval plus NTP's slew within
// it), and the stamps of one clock never decrease unless CLOCK_REALTIME
// steps back. The clock is the topic writer's (detail::WriterState): the
// producers of a topic, one after the other, and a SharedProducer's
// sequencer share it. Until its first 1 ms baseline exists, and on every
// machine where the kernel's clock does not read the TSC (or not x86-64),
// each stamp is a clock_gettime.
#pragma once

#include <cstdint>
#include <ctime>
#include <string_view>

#include "ringbus/detail/config.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <x86intrin.h>
#define RINGBUS_HAS_TSC 1
#else
#define RINGBUS_HAS_TSC 0
#endif

namespace ringbus::detail {

// CLOCK_REALTIME in ns since the epoch (vDSO: no system call with the TSC clocksource).
inline std::int64_t wall_clock_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// One reading of the clocks: CLOCK_MONOTONIC and CLOCK_REALTIME between two
// ordered counter reads `width` ticks apart; `ticks` is their midpoint.
struct ClockSample {
  std::uint64_t ticks = 0;
  std::int64_t steady_ns = 0;
  std::int64_t real_ns = 0;
  std::uint64_t width = 0;
};

// The pure part of the TSC clock: ticks to ns between anchors. No clock is
// read here, so tests drive it with made-up samples.
class TickClock {
 public:
  static constexpr std::int64_t anchor_interval_ns = 1'000'000;  // an anchor is at most this old
  static constexpr std::int64_t min_baseline_ns = 1'000'000;     // no extrapolation from a shorter baseline
  static constexpr std::int64_t base_refresh_ns = 1'000'000'000; // the rate's baseline: 1 to 2 s
  static constexpr std::int64_t step_limit_ns = 1'000'000;       // further off: the real clock stepped
  static constexpr std::int64_t max_sample_width_ns = 10'000;    // a wider sample (preempted) is not trusted
  static constexpr std::uint64_t baseline_per_width = 1000;      // rate from a baseline >= 1000x the samples' widths
  static constexpr unsigned shift = 32;                          // rates are ns per tick in 32.32 fixed point

  // Whether convert may say yes (there is a rate): a caller reads the counter only then.
  [[nodiscard]] bool ready() const noexcept { return interval_ticks_ != 0; }

  // The time at tick t, when t is inside the current anchor's interval;
  // false when it is not (or there is no rate yet): sample and anchor().
  RINGBUS_ALWAYS_INLINE bool convert(std::uint64_t t, std::int64_t& ns) const noexcept {
    const std::uint64_t d = t - anchor_ticks_; // a counter behind the anchor wraps: false
    if (RINGBUS_UNLIKELY(d >= interval_ticks_)) return false;
    ns = anchor_ns_ + static_cast<std::int64_t>((d * interval_rate_) >> shift);
    return true;
  }

  // Re-anchors at a sample and returns the time for its tick (see ceiling,
  // step and wide above). The rate is only measured over a baseline at least
  // baseline_per_width times the two samples' widths, so it is right to
  // 1e-3 however slowly the clocks were read.
  std::int64_t anchor(const ClockSample& s) noexcept;
  // No sample could be taken (the counter read back): CLOCK_REALTIME, never
  // below a stamp already given.
  [[nodiscard]] std::int64_t without_sample(std::int64_t real_ns) const noexcept;
  // Whether a sample of this width is too wide to trust (needs a rate).
  [[nodiscard]] bool too_wide(std::uint64_t width) const noexcept;

  [[nodiscard]] bool calibrated() const noexcept { return rate_ != 0; }
  // ns per tick, 32.32 fixed point (0: not calibrated yet).
  [[nodiscard]] std::uint64_t rate() const noexcept { return rate_; }

 private:
  // The last stamp convert can give in the current interval: no later stamp goes below it.
  [[nodiscard]] std::int64_t given_max() const noexcept;
  // Measures the rate again from this sample (the counter or the monotonic
  // clock went back past the base: nothing measured holds).
  void rebase(const ClockSample& s) noexcept;
  // Starts the interval at (t, at); `slowed`: ns of lead to give back in it.
  std::int64_t start_interval(std::uint64_t t, std::int64_t at, std::int64_t slowed) noexcept;

  // Hot: read by every convert.
  std::uint64_t anchor_ticks_ = 0;
  std::int64_t anchor_ns_ = 0;
  std::uint64_t interval_ticks_ = 0; // 0: every convert says no
  std::uint64_t interval_rate_ = 0;  // rate_, slowed while a lead is being given back
  // Calibration, read at anchors only.
  std::uint64_t rate_ = 0;
  ClockSample base_;      // the rate is measured from this sample...
  ClockSample next_base_; // ...until this one is base_refresh_ns old
  bool has_base_ = false;
};

// Whether the kernel's clock is the TSC scaled: clocksource "tsc", or
// "kvm-clock" on a CPU whose TSC is invariant. kvm-clock is the host's
// scaling of this guest's TSC (pvclock: a per-vCPU tsc_timestamp, system_time
// and multiplier that the vDSO applies to an rdtsc); a kernel may still mark
// the TSC itself unstable as a clocksource (tsc=unstable: the host may move
// the guest, or restore it from a snapshot, onto another TSC), which is
// exactly what the writer's anchors absorb: a counter that jumps or changes
// rate is re-anchored within a millisecond and never steps a stamp back.
bool clocksource_reads_tsc(std::string_view clocksource, bool invariant_tsc) noexcept;

// Whether this process reads the TSC for wall-clock stamps: x86-64 and
// clocksource_reads_tsc (read once, from sysfs and CPUID, when the first
// topic is made; a kernel that later gives up on the TSC is not noticed, but
// the anchors keep every stamp within a millisecond of CLOCK_REALTIME).
bool tsc_clock_usable() noexcept;

// One writer's wall clock (it lives in the writer's state: one thread at a
// time, no atomics). now() is an rdtsc and a multiply; once a millisecond
// (and where the TSC is not usable, always) it is a clock_gettime.
class WallClock {
 public:
  WallClock() noexcept : WallClock(tsc_clock_usable()) {}
  explicit WallClock(bool use_tsc) noexcept : use_tsc_(use_tsc) {}

  RINGBUS_ALWAYS_INLINE std::int64_t now() noexcept {
#if RINGBUS_HAS_TSC
    std::int64_t ns;
    if (RINGBUS_LIKELY(ticks_.ready()) && RINGBUS_LIKELY(ticks_.convert(__rdtsc(), ns))) return ns;
#endif
    return now_slow();
  }
  [[nodiscard]] const TickClock& ticks() const noexcept { return ticks_; }

 private:
  // Samples the clocks and re-anchors (TSC), or one clock_gettime (no TSC).
  RINGBUS_NOINLINE std::int64_t now_slow() noexcept;

  TickClock ticks_;
  bool use_tsc_;
};

} // namespace ringbus::detail
