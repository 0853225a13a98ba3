// The two scenarios, written once for every impl.
//
// spsc_*: Google Benchmark's thread is the producer (pinned to CPU 0 in
// main); each run starts one consumer thread pinned to CPU 1 and joins it at
// the end. Thread start-up stays outside the timed region, and a thread per
// run keeps each impl's run self-contained (no type-erased hand-off of work
// between runs). Each timed iteration sends items_per_iteration items into an
// empty queue and ends when the consumer has verified the last one: the time
// (manual, wall clock) covers the whole transfer, both threads' work included.
//
// rtt: thread A (the benchmark thread, CPU 0) sends k, thread B (CPU 1)
// receives it and sends it back, A waits for it. Every round trip is one
// sample in a preallocated vector; p50 / p99 / p99.9 / max are taken after
// the run.
//
// Both report cpu_share: the CPU time of the less-served of the two threads
// over the wall time of the timed region. Both threads busy-wait, so it is
// 1.0 when nothing else ran on their CPUs, and lower when the OS gave a CPU
// to someone else for a while (the results of such a run are pessimistic).
// And c2c_before_ns / c2c_after_ns: where the host ran the two CPUs around the
// timed region (placement.hpp); a run measured on one core is set aside.
//
// An impl provides, for spsc (each member called from one thread only):
//   using Payload = ...;
//   void produce(std::uint64_t first_sequence, std::uint64_t count); // producer
//   void consume(std::uint64_t count, Verifier<Payload>& verifier);  // consumer
// and for rtt:
//   void send_ping(std::uint64_t); std::uint64_t receive_pong();      // thread A
//   std::uint64_t receive_ping(); void send_pong(std::uint64_t);      // thread B
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "affinity.hpp"
#include "clocks.hpp"
#include "config.hpp"
#include "payload.hpp"
#include "placement.hpp"
#include "spin.hpp"

namespace ringbus::bench {

// Set once in main, before any run.
inline double ns_per_tick = 1.0;

// Builds the impl (queues allocated, rings mapped) outside the timed region;
// reports a construction failure as the run's error.
template <class Impl>
std::unique_ptr<Impl> make_impl(benchmark::State& state) {
  try {
    return std::make_unique<Impl>();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  return nullptr;
}

// What the second thread hands back after join (join orders its writes
// before our reads).
struct SecondThreadReport {
  std::string verdict;    // empty: every item arrived, once, in order, intact
  double cpu_seconds = 0; // over its share of the timed region
};

inline void set_cpu_share(benchmark::State& state, double first_cpu, double second_cpu, double wall) {
  state.counters["cpu_share"] = benchmark::Counter(wall > 0 ? std::min(first_cpu, second_cpu) / wall : 0.0);
}

template <class Impl>
void spsc_throughput(benchmark::State& state, const RunConfig& config) {
  using Payload = typename Impl::Payload;
  std::unique_ptr<Impl> impl = make_impl<Impl>(state);
  if (impl == nullptr) return;
  const std::uint64_t per_iteration = config.items_per_iteration;
  const auto iterations = static_cast<std::uint64_t>(state.max_iterations);
  const std::uint64_t total = config.warmup_items + iterations * per_iteration;

  // Rounds the consumer has finished: round 1 is the warm-up, round 1 + i the
  // i-th timed iteration. On its own cache line, read by the producer only
  // at the end of each round.
  struct alignas(128) Progress {
    std::atomic<std::uint64_t> rounds_done{0};
  };
  auto progress = std::make_unique<Progress>();
  SecondThreadReport report;
  const double c2c_before = probe_round_trip_ns(ns_per_tick); // placement.hpp

  std::thread consumer([&] {
    pin_this_thread(consumer_cpu);
    // The verifier lives on this thread's stack: nothing the producer writes
    // shares its cache lines.
    Verifier<Payload> verifier;
    impl->consume(config.warmup_items, verifier);
    const double cpu_start = thread_cpu_seconds();
    progress->rounds_done.store(1, std::memory_order_release); // pairs with the acquire in wait_for_round
    for (std::uint64_t round = 0; round < iterations; ++round) {
      impl->consume(per_iteration, verifier);
      progress->rounds_done.store(round + 2, std::memory_order_release);
    }
    report.cpu_seconds = thread_cpu_seconds() - cpu_start;
    report.verdict = verifier.verdict(total);
  });
  const auto wait_for_round = [&](std::uint64_t round) {
    while (progress->rounds_done.load(std::memory_order_acquire) < round) spin_pause();
  };

  // Warm-up: every slot of every queue is written and read before timing, so
  // no row pays page faults or cold caches.
  impl->produce(1, config.warmup_items);
  wait_for_round(1);

  using clock = std::chrono::steady_clock;
  std::uint64_t next = config.warmup_items + 1;
  std::uint64_t round = 1;
  const double cpu_start = thread_cpu_seconds();
  const clock::time_point wall_start = clock::now();
  for (auto _ : state) {
    const clock::time_point start = clock::now();
    impl->produce(next, per_iteration);
    wait_for_round(++round);
    const clock::time_point end = clock::now();
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
    next += per_iteration;
  }
  const double wall = std::chrono::duration<double>(clock::now() - wall_start).count();
  const double cpu = thread_cpu_seconds() - cpu_start;
  consumer.join();
  const double c2c_after = probe_round_trip_ns(ns_per_tick);

  if (!report.verdict.empty()) {
    state.SkipWithError(("consumer check failed: " + report.verdict).c_str());
    return;
  }
  const auto items = static_cast<std::int64_t>(iterations * per_iteration);
  state.SetItemsProcessed(items);
  state.SetBytesProcessed(items * static_cast<std::int64_t>(sizeof(Payload)));
  set_cpu_share(state, cpu, report.cpu_seconds, wall);
  set_placement_counters(state, c2c_before, c2c_after);
}

// Nearest-rank percentile of sorted samples, q in (0, 1].
inline std::uint64_t percentile(const std::vector<std::uint64_t>& sorted, double q) noexcept {
  const auto n = static_cast<double>(sorted.size());
  const auto rank = static_cast<std::size_t>(std::ceil(q * n));
  return sorted[std::min(sorted.size(), std::max<std::size_t>(rank, 1)) - 1];
}

template <class Impl>
void round_trip(benchmark::State& state, const RunConfig& config) {
  std::unique_ptr<Impl> impl = make_impl<Impl>(state);
  if (impl == nullptr) return;
  const std::uint64_t samples = config.rtt_samples;
  const auto iterations = static_cast<std::uint64_t>(state.max_iterations);
  // Allocated and touched here: no allocation or page fault in the loop.
  std::vector<std::uint64_t> ticks(samples * iterations, 0);
  SecondThreadReport report;
  const double c2c_before = probe_round_trip_ns(ns_per_tick); // placement.hpp

  // The echo thread takes what it uses per hop by value into its own locals.
  // Captured by reference, `impl` and the trip counts are loads from this
  // thread's stack, redone after every call the compiler cannot see into
  // (ringbus's poll_one is one, atomic_queue's inlined pop is not): a line
  // this thread keeps writing, so a cross-core miss on the echo's path per hop
  // for the rows that make such calls, and not for the others.
  std::thread echo([echo_impl = impl.get(), warmup = config.rtt_warmup, trips = samples * iterations, &report] {
    Impl* const echoer = echo_impl;
    const std::uint64_t warmup_trips = warmup;
    const std::uint64_t timed_trips = trips;
    pin_this_thread(consumer_cpu);
    for (std::uint64_t i = 0; i < warmup_trips; ++i) echoer->send_pong(echoer->receive_ping());
    const double cpu_start = thread_cpu_seconds();
    for (std::uint64_t i = 0; i < timed_trips; ++i) echoer->send_pong(echoer->receive_ping());
    report.cpu_seconds = thread_cpu_seconds() - cpu_start;
  });

  std::uint64_t sequence = 1;
  std::uint64_t wrong = 0;
  for (std::uint64_t i = 0; i < config.rtt_warmup; ++i, ++sequence) {
    impl->send_ping(sequence);
    wrong += impl->receive_pong() != sequence ? 1 : 0;
  }
  using clock = std::chrono::steady_clock;
  std::uint64_t* sample = ticks.data();
  const double cpu_start = thread_cpu_seconds();
  const clock::time_point wall_start = clock::now();
  for (auto _ : state) {
    const clock::time_point start = clock::now();
    for (std::uint64_t i = 0; i < samples; ++i, ++sequence) {
      const std::uint64_t t0 = ticks_now();
      impl->send_ping(sequence);
      const std::uint64_t reply = impl->receive_pong();
      const std::uint64_t t1 = ticks_now();
      *sample++ = t1 - t0;
      wrong += reply != sequence ? 1 : 0;
    }
    const clock::time_point end = clock::now();
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
  }
  const double wall = std::chrono::duration<double>(clock::now() - wall_start).count();
  const double cpu = thread_cpu_seconds() - cpu_start;
  echo.join();
  const double c2c_after = probe_round_trip_ns(ns_per_tick);

  if (wrong != 0) {
    state.SkipWithError((std::to_string(wrong) + " replies did not carry the value sent").c_str());
    return;
  }
  std::sort(ticks.begin(), ticks.end());
  const auto ns = [](std::uint64_t t) { return static_cast<double>(t) * ns_per_tick; };
  state.counters["p50_ns"] = benchmark::Counter(ns(percentile(ticks, 0.50)));
  state.counters["p99_ns"] = benchmark::Counter(ns(percentile(ticks, 0.99)));
  state.counters["p999_ns"] = benchmark::Counter(ns(percentile(ticks, 0.999)));
  state.counters["max_ns"] = benchmark::Counter(ns(ticks.back()));
  // items = round trips; bytes = payload carried both ways (8 B ping + 8 B pong).
  const auto trips = static_cast<std::int64_t>(ticks.size());
  state.SetItemsProcessed(trips);
  state.SetBytesProcessed(trips * 16);
  set_cpu_share(state, cpu, report.cpu_seconds, wall);
  set_placement_counters(state, c2c_before, c2c_after);
}

} // namespace ringbus::bench
