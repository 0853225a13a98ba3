// The writer's wall clock: the tick-to-ns conversion driven by made-up
// samples (calibration, anchors, a real clock that drifts or steps, samples
// taken by a preempted thread), then the real clock against CLOCK_REALTIME.
#include "ringbus/detail/clock.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

#include "platform/platform.hpp"
#include "test_support.hpp"

namespace detail = ringbus::detail;
using detail::TickClock;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000'000'000; // a real-clock time in 2023
constexpr std::uint64_t ticks0 = 5'000'000'000;        // the counter then

// A 3 GHz counter: the tick at real time ns (when the real clock keeps time exactly).
std::uint64_t tick_at(std::int64_t ns) { return ticks0 + static_cast<std::uint64_t>(ns - t0) * 3; }

// A sample at tick t whose clocks read steady and real.
detail::ClockSample reading(std::uint64_t t, std::int64_t steady, std::int64_t real, std::uint64_t width = 90) {
  return {t, steady, real, width};
}

// Anchors c at time ns of exact clocks and returns what it gave.
std::int64_t sample(TickClock& c, std::int64_t ns, std::uint64_t width = 90) {
  return c.anchor(reading(tick_at(ns), ns, ns, width));
}

std::int64_t dist(std::int64_t a) { return a < 0 ? -a : a; }

// What a writer does: convert, or sample when convert says no. NTP slews
// both clocks alike: here they read the same.
std::int64_t stamp(TickClock& c, std::uint64_t tick, std::int64_t real_ns) {
  std::int64_t ns = 0;
  if (c.convert(tick, ns)) return ns;
  return c.anchor(reading(tick, real_ns, real_ns));
}

// A clock calibrated on an exact real clock over [t0, t0 + 2 ms].
TickClock calibrated() {
  TickClock c;
  sample(c, t0);
  sample(c, t0 + 2'000'000);
  REQUIRE(c.calibrated());
  return c;
}

// 200 ms of stamps 3.3 us apart after calibration while the real clock runs
// ppm parts per million fast (or slow, negative); every stamp must be at or
// after the one before. Returns the largest distance from the real clock.
std::int64_t worst_error_under_drift(std::int64_t ppm) {
  TickClock c = calibrated();
  std::int64_t last = 0;
  std::int64_t worst = 0;
  const std::int64_t from = t0 + 2'000'000;
  for (std::int64_t true_ns = from; true_ns < from + 200'000'000; true_ns += 3'301) {
    const std::int64_t real = true_ns + (true_ns - from) * ppm / 1'000'000;
    const std::int64_t got = stamp(c, tick_at(true_ns), real);
    REQUIRE(got >= last);
    last = got;
    worst = std::max(worst, dist(got - real));
  }
  return worst;
}

} // namespace

TEST_SUITE("clock") {
  TEST_CASE("tick_clock_extrapolates_only_after_a_baseline_of_one_millisecond") {
    TickClock c;
    std::int64_t ns = 0;
    CHECK_FALSE(c.convert(ticks0, ns));
    CHECK(sample(c, t0) == t0);
    CHECK_FALSE(c.convert(tick_at(t0 + 10), ns));
    CHECK(sample(c, t0 + 500'000) == t0 + 500'000); // half a millisecond: the real clock, no rate yet
    CHECK_FALSE(c.calibrated());
    CHECK_FALSE(c.convert(tick_at(t0 + 500'010), ns));
    CHECK(sample(c, t0 + 1'000'000) == t0 + 1'000'000);
    REQUIRE(c.calibrated());
    CHECK(c.rate() == (std::uint64_t{1} << TickClock::shift) / 3); // a third of a ns per tick
    REQUIRE(c.convert(tick_at(t0 + 1'001'234), ns));
    CHECK(dist(ns - (t0 + 1'001'234)) <= 1);
    // One anchor interval on, the clock wants a new sample.
    CHECK_FALSE(c.convert(tick_at(t0 + 1'000'000 + TickClock::anchor_interval_ns + 1), ns));
  }

  TEST_CASE("tick_clock_matches_an_exact_real_clock_to_the_nanosecond_across_anchors") {
    TickClock c = calibrated();
    std::int64_t last = 0;
    int anchors = 0;
    for (std::int64_t ns = t0 + 2'000'000; ns < t0 + 50'000'000; ns += 7'919) {
      std::int64_t got = 0;
      if (!c.convert(tick_at(ns), got)) {
        got = sample(c, ns);
        ++anchors;
      }
      CHECK(dist(got - ns) <= 1);
      CHECK(got >= last);
      last = got;
    }
    CHECK(anchors >= 40); // about one per millisecond
  }

  TEST_CASE("tick_clock_tracks_a_real_clock_running_300_ppm_slow_or_fast_and_never_steps_back") {
    // Calibrated on an exact clock, then NTP slews the real clock 300 ppm
    // slow (the extrapolation runs ahead: anchors keep the stamps rising and
    // slower intervals give the lead back) or fast (anchors step forward).
    for (const std::int64_t ppm : {-300, 300}) {
      CAPTURE(ppm);
      CHECK(worst_error_under_drift(ppm) <= 2'000); // 300 ppm of one interval is 300 ns; the rate follows too
    }
  }

  TEST_CASE("tick_clock_anchor_behind_its_last_stamp_keeps_the_stamp_and_gives_the_lead_back_slowly") {
    // 1.5 s on an exact real clock (a long baseline: the rate is exact), then
    // the real clock reads 5 us earlier than the extrapolation.
    TickClock c = calibrated();
    std::int64_t ns = t0 + 2'000'000;
    for (; ns < t0 + 1'500'000'000; ns += 250'000) stamp(c, tick_at(ns), ns);
    sample(c, ns);
    // The last stamp this interval gives.
    std::int64_t before = 0;
    std::uint64_t tick = tick_at(ns);
    while (c.convert(tick + 1'000, before)) tick += 1'000;
    REQUIRE(c.convert(tick, before));
    const std::int64_t true_after = before + 1'000;
    const std::int64_t lag = 5'000;
    std::int64_t got = 0;
    REQUIRE_FALSE(c.convert(tick_at(true_after), got));
    got = c.anchor(reading(tick_at(true_after), true_after - lag, true_after - lag));
    CHECK(got >= before); // never back past a stamp given, so about 4 us ahead of the real clock...
    CHECK(got - (true_after - lag) >= lag - 1'000 - 2);
    // ...which the next interval gives back: two intervals on, on time.
    const std::int64_t later = true_after + 2 * TickClock::anchor_interval_ns + 100;
    std::int64_t last = got;
    std::int64_t t = true_after;
    while (t + 997 <= later) {
      t += 997;
      const std::int64_t s = stamp(c, tick_at(t), t - lag);
      REQUIRE(s >= last);
      last = s;
    }
    CHECK(dist(last - (t - lag)) <= 20);
  }

  TEST_CASE("tick_clock_follows_a_real_clock_step_of_more_than_a_millisecond_at_once_and_keeps_its_rate") {
    // CLOCK_REALTIME is set (by an hour, or by 1.5 ms) while CLOCK_MONOTONIC
    // runs on: the stamps follow, forwards or back, and the rate stands.
    for (const std::int64_t step : {-3'600'000'000'000LL, 3'600'000'000'000LL, -1'500'000LL, 1'500'000LL}) {
      CAPTURE(step);
      TickClock c = calibrated();
      const std::int64_t true_ns = t0 + 2'500'000;
      CHECK(c.anchor(reading(tick_at(true_ns), true_ns, true_ns + step)) == true_ns + step);
      CHECK(c.calibrated());
      std::int64_t ns = 0;
      REQUIRE(c.convert(tick_at(true_ns + 500), ns));
      CHECK(dist(ns - (true_ns + step + 500)) <= 1);
    }
  }

  TEST_CASE("tick_clock_real_clock_set_back_by_less_than_a_millisecond_is_absorbed_without_a_stamp_going_back") {
    // 0.9 ms back is not a step: the stamps keep rising and run slow (by at
    // most half) until they are back on CLOCK_REALTIME, within two intervals.
    TickClock c = calibrated();
    std::int64_t last = 0;
    std::int64_t t = t0 + 2'000'000;
    for (; t < t0 + 2'500'000; t += 997) last = stamp(c, tick_at(t), t);
    const std::int64_t back = 900'000;
    for (; t < t0 + 2'500'000 + 3 * TickClock::anchor_interval_ns; t += 997) {
      const std::int64_t got = c.convert(tick_at(t), last) ? last : c.anchor(reading(tick_at(t), t, t - back));
      REQUIRE(got >= last);
      last = got;
    }
    CHECK(dist(last - (t - 997 - back)) <= 20);
  }

  TEST_CASE("tick_clock_rate_survives_a_real_clock_step_while_it_is_being_measured") {
    // The clock is set 10 ms forward 200 us after the first sample (chrony at
    // boot): the rate is measured against CLOCK_MONOTONIC and comes out right.
    TickClock c;
    const std::int64_t jump = 10'000'000;
    sample(c, t0);
    CHECK(c.anchor(reading(tick_at(t0 + 200'000), t0 + 200'000, t0 + 200'000 + jump)) == t0 + 200'000 + jump);
    CHECK_FALSE(c.calibrated());
    CHECK(c.anchor(reading(tick_at(t0 + 1'200'000), t0 + 1'200'000, t0 + 1'200'000 + jump)) == t0 + 1'200'000 + jump);
    REQUIRE(c.calibrated());
    CHECK(c.rate() == (std::uint64_t{1} << TickClock::shift) / 3);
    std::int64_t ns = 0;
    REQUIRE(c.convert(tick_at(t0 + 1'900'000), ns));
    CHECK(dist(ns - (t0 + 1'900'000 + jump)) <= 1);
  }

  TEST_CASE("tick_clock_counter_behind_its_base_measures_again_without_a_stamp_going_back") {
    TickClock c = calibrated();
    std::int64_t given = 0;
    REQUIRE(c.convert(tick_at(t0 + 2'999'000), given)); // the interval's last stamps
    // A counter read behind the base (t0): nothing measured holds.
    const std::int64_t got = c.anchor(reading(ticks0 - 1'000, t0 + 2'999'500, t0 + 2'999'500 - 200'000));
    CHECK(got >= given);
    CHECK_FALSE(c.calibrated());
  }

  TEST_CASE("tick_clock_counter_a_little_behind_its_anchor_keeps_rate_and_stamps_rising") {
    // Another CPU's counter, a few ticks behind this one's: on from the ceiling.
    TickClock c = calibrated();
    std::int64_t given = 0;
    REQUIRE(c.convert(tick_at(t0 + 2'999'000), given));
    const std::int64_t got = c.anchor(reading(tick_at(t0 + 2'000'000) - 30, t0 + 3'000'000, t0 + 3'000'000));
    CHECK(got >= given);
    CHECK(c.calibrated());
  }

  TEST_CASE("tick_clock_keeps_its_rate_over_a_long_idle") {
    TickClock c = calibrated();
    const std::int64_t later = t0 + 1'000'000'000'000; // 1000 s without an append
    CHECK(sample(c, later) == later);
    CHECK(c.calibrated());
    std::int64_t ns = 0;
    REQUIRE(c.convert(tick_at(later + 123'456), ns));
    CHECK(dist(ns - (later + 123'456)) <= 1);
  }

  TEST_CASE("tick_clock_sample_too_wide_to_trust_continues_on_the_extrapolation") {
    // A thread preempted between its counter reads: the sample is 1 ms wide
    // and its clocks read 0.4 or 5 ms off. 1.5 ms after the anchor, it is not
    // anchored to, and decides no step.
    for (const std::int64_t off : {400'000LL, 5'000'000LL}) {
      CAPTURE(off);
      TickClock c = calibrated();
      const std::int64_t true_ns = t0 + 3'500'000;
      const std::int64_t got = c.anchor(reading(tick_at(true_ns), true_ns + off, true_ns + off, 3'000'000));
      CHECK(dist(got - true_ns) <= 3); // a ns of rounding per conversion
      CHECK(c.calibrated());
      std::int64_t ns = 0;
      REQUIRE(c.convert(tick_at(true_ns + 1'000), ns));
      CHECK(dist(ns - (true_ns + 1'000)) <= 3);
    }
  }

  TEST_CASE("tick_clock_sample_too_wide_after_a_long_idle_takes_the_real_clock_not_the_extrapolation") {
    // 1000 s idle during which NTP moved the clocks 20 ppm against the
    // counter: the extrapolation is 20 ms off, a wide sample at most its width.
    TickClock c = calibrated();
    const std::int64_t idle = 1'000'000'000'000;
    const std::int64_t real = t0 + 2'000'000 + idle + idle / 50'000;
    const std::int64_t got = c.anchor(reading(tick_at(t0 + 2'000'000 + idle), real, real, 3'000'000));
    CHECK(got == real);
  }

  TEST_CASE("tick_clock_measures_its_rate_only_over_a_baseline_long_against_the_sample_widths") {
    // Samples 10 us wide (a slow clock read): a rate needs 1000 x 20 us / 2 = 10 ms.
    TickClock c;
    const std::uint64_t wide = 30'000; // ticks: 10 us
    CHECK(sample(c, t0, wide) == t0);
    CHECK(sample(c, t0 + 2'000'000, wide) == t0 + 2'000'000);
    CHECK_FALSE(c.calibrated());
    CHECK(sample(c, t0 + 10'000'000, wide) == t0 + 10'000'000);
    CHECK(c.calibrated());
  }

  TEST_CASE("the_tsc_is_read_where_the_kernels_clock_is_the_tsc_scaled") {
    CHECK(detail::clocksource_reads_tsc("tsc", true));
    CHECK(detail::clocksource_reads_tsc("tsc", false)); // the kernel vouches for it
    // kvm-clock: the host's scaling of the guest's TSC, which the anchors
    // follow when its rate is one the CPU keeps.
    CHECK(detail::clocksource_reads_tsc("kvm-clock", true));
    CHECK_FALSE(detail::clocksource_reads_tsc("kvm-clock", false));
    CHECK_FALSE(detail::clocksource_reads_tsc("hpet", true));
    CHECK_FALSE(detail::clocksource_reads_tsc("acpi_pm", true));
    CHECK_FALSE(detail::clocksource_reads_tsc("tsc-early", true)); // the boot's, never the kernel's for good
    CHECK_FALSE(detail::clocksource_reads_tsc("", true));
  }

  TEST_CASE("this_process_reads_the_tsc_exactly_when_its_kernel_clock_and_cpu_say_so") {
    char clocksource[32];
    const bool known = ringbus::platform::kernel_clocksource(clocksource, sizeof clocksource);
    MESSAGE("clocksource " << std::string(known ? clocksource : "(unknown)") << ", invariant TSC "
                           << ringbus::platform::cpu_has_invariant_tsc() << ", stamps from the TSC "
                           << detail::tsc_clock_usable());
#if RINGBUS_HAS_TSC
    CHECK(detail::tsc_clock_usable() ==
          (known && detail::clocksource_reads_tsc(clocksource, ringbus::platform::cpu_has_invariant_tsc())));
#else
    CHECK_FALSE(detail::tsc_clock_usable());
#endif
  }

  TEST_CASE("wall_clock_without_the_tsc_reads_clock_realtime_every_time") {
    detail::WallClock c(false);
    for (int i = 0; i < 1000; ++i) {
      const std::int64_t before = detail::wall_clock_ns();
      const std::int64_t t = c.now();
      const std::int64_t after = detail::wall_clock_ns();
      REQUIRE(t >= before);
      REQUIRE(t <= after);
    }
    CHECK_FALSE(c.ticks().calibrated());
  }

  TEST_CASE("wall_clock_with_the_tsc_stays_near_clock_realtime_and_never_steps_back") {
    // Where the kernel keeps time otherwise, the counter is still read when
    // the CPU says it is invariant: the path runs on every such machine.
    if (!detail::tsc_clock_usable() && !ringbus::platform::cpu_has_invariant_tsc()) {
      MESSAGE("no invariant TSC here: every stamp is a clock_gettime (tested above)");
      return;
    }
    // Over 20 ms (about 20 anchors) of calls. The documented error is a few
    // microseconds; 100 us leaves room for a loaded machine and sanitizers
    // while failing on any unit or rate mistake (milliseconds and more).
    constexpr std::int64_t tolerance_ns = 100'000;
    detail::WallClock c(true);
    std::int64_t last = 0;
    const std::int64_t end = detail::wall_clock_ns() + 20'000'000;
    std::int64_t before = 0;
    do {
      before = detail::wall_clock_ns();
      const std::int64_t t = c.now();
      const std::int64_t after = detail::wall_clock_ns();
      REQUIRE(t >= before - tolerance_ns);
      REQUIRE(t <= after + tolerance_ns);
      REQUIRE(t >= last);
      last = t;
    } while (before < end);
    CHECK(c.ticks().calibrated()); // the stamps came from the counter
  }
}
