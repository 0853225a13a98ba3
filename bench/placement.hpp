// Where the host put the two benchmark CPUs. This machine is a 2-vCPU guest,
// and its host does not keep the two vCPUs apart: for seconds at a time they
// run on the two hyperthreads of one physical core, where a bare cache-line
// round trip (rtt/floor) takes about 57 ns instead of about 290 ns. The two
// placements favour different designs (on one core the threads share L1 and
// the execution units, so instructions per item count, not line transfers),
// and a row measured in one cannot be compared with a row measured in the
// other.
//
// So every spsc and rtt run probes the placement just before and just after
// its timed region: a short bare round trip between the run's two CPUs,
// reported as the counters c2c_before_ns and c2c_after_ns (medians of
// c2c_trips round trips each). grouping.cpp sets a run aside when either
// probe says "one core" (below RunConfig::one_core_below_ns); the tables, the
// chart and the targets use the other runs, and the summary lists the
// set-aside ones on their own.
//
// The threshold is this host's: other machines have other clusters (bare
// metal often crosses cores in under 150 ns; a guest whose CPUs 0 and 1 are
// hyperthreads of one core is always "one core"). Both frontends take it as
// a flag (--one-core-below NS, --one_core_below_ns=NS); 0 sets nothing aside.
// The default, default_one_core_below_ns (config.hpp), lies between the two
// clusters seen here.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "affinity.hpp"
#include "clocks.hpp"
#include "impls/floor.hpp"

namespace ringbus::bench {

inline constexpr std::uint64_t c2c_trips = 2000;

// Median bare round trip, in ns, between the calling thread (already pinned
// to producer_cpu) and a helper thread pinned to consumer_cpu.
inline double probe_round_trip_ns(double ns_per_tick) {
  FloorRtt line;
  std::vector<std::uint64_t> ticks(c2c_trips, 0);
  std::thread echo([&] {
    pin_this_thread(consumer_cpu);
    for (std::uint64_t i = 0; i < c2c_trips + 100; ++i) line.send_pong(line.receive_ping());
  });
  std::uint64_t value = 1;
  for (std::uint64_t i = 0; i < 100; ++i, ++value) { // warm-up: both lines cached, the helper running
    line.send_ping(value);
    line.receive_pong();
  }
  for (std::uint64_t i = 0; i < c2c_trips; ++i, ++value) {
    const std::uint64_t t0 = ticks_now();
    line.send_ping(value);
    line.receive_pong();
    ticks[i] = ticks_now() - t0;
  }
  echo.join();
  std::nth_element(ticks.begin(), ticks.begin() + static_cast<std::ptrdiff_t>(c2c_trips / 2), ticks.end());
  return static_cast<double>(ticks[c2c_trips / 2]) * ns_per_tick;
}

inline void set_placement_counters(benchmark::State& state, double before_ns, double after_ns) {
  state.counters["c2c_before_ns"] = benchmark::Counter(before_ns);
  state.counters["c2c_after_ns"] = benchmark::Counter(after_ns);
}

} // namespace ringbus::bench
