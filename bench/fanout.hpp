// The fan-out scenario (fanout_1to{1,2,3}), written once for every impl.
//
// Google Benchmark's thread is the producer (pinned to CPU 0 in main); each
// run starts N consumer threads, consumer i pinned to CPU (1 + i) mod the
// CPUs allowed (on 2 CPUs: 1, 0, 1), and joins them at the end. Every
// consumer receives every item (fan-out) and checks each one with its own
// Verifier. Each timed iteration publishes items_per_iteration items and ends
// when the last consumer has verified the last one; the rate reported is
// delivered items: published x N / that time.
//
// At 1->2 and 1->3 the threads outnumber 2 CPUs, so every wait (producer:
// queue full; consumer: queue empty; producer: consumers not done) yields the
// CPU with std::this_thread::yield instead of spinning: a spinning thread
// would hold the CPU its peer on the same core needs.
//
// cpu_share here is the CPU time all threads got together over the wall time
// of the timed region times the CPUs they could use (min(threads, CPUs)):
// yielding threads stay runnable, so 1.00 means they had those CPUs to
// themselves, lower that something else ran.
//
// An impl provides (each member called from one thread only):
//   using Payload = ...;
//   explicit Impl(std::size_t consumers);                                        // queues allocated, touched
//   void produce(std::uint64_t first_sequence, std::uint64_t count);             // producer
//   void consume(std::size_t consumer, std::uint64_t count, Verifier<Payload>&); // consumer `consumer`
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "affinity.hpp"
#include "clocks.hpp"
#include "config.hpp"
#include "harness.hpp"
#include "payload.hpp"

namespace ringbus::bench {

// The CPU consumer i of a fan-out run is pinned to: round robin over the
// allowed CPUs, starting with the one after the producer's.
inline int fanout_consumer_cpu(std::size_t consumer, int cpus) noexcept {
  const auto n = static_cast<std::size_t>(std::max(cpus, 1));
  return static_cast<int>((static_cast<std::size_t>(producer_cpu) + 1 + consumer) % n);
}

template <class Impl>
void fanout_throughput(benchmark::State& state, const RunConfig& config, std::size_t consumers) {
  using Payload = typename Impl::Payload;
  std::unique_ptr<Impl> impl;
  try {
    impl = std::make_unique<Impl>(consumers);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  const std::uint64_t per_iteration = config.fanout_items_per_iteration;
  const auto iterations = static_cast<std::uint64_t>(state.max_iterations);
  const std::uint64_t total = config.warmup_items + iterations * per_iteration;

  // Rounds each consumer has finished (round 1 is the warm-up, round 1 + i
  // the i-th timed iteration), each on its own cache line, written by its
  // consumer and read by the producer only at the end of a round.
  struct alignas(128) Progress {
    std::atomic<std::uint64_t> rounds_done{0};
    SecondThreadReport report; // written by the consumer before join, read after
  };
  auto progress = std::make_unique<Progress[]>(consumers);

  std::vector<std::thread> threads;
  threads.reserve(consumers);
  for (std::size_t c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      pin_this_thread(fanout_consumer_cpu(c, config.cpus));
      Progress& mine = progress[c];
      // On this thread's stack: nothing another thread writes shares its lines.
      Verifier<Payload> verifier;
      impl->consume(c, config.warmup_items, verifier);
      const double cpu_start = thread_cpu_seconds();
      mine.rounds_done.store(1, std::memory_order_release); // pairs with the acquire in wait_for_round
      for (std::uint64_t round = 0; round < iterations; ++round) {
        impl->consume(c, per_iteration, verifier);
        mine.rounds_done.store(round + 2, std::memory_order_release); // pairs with the acquire in wait_for_round
      }
      mine.report.cpu_seconds = thread_cpu_seconds() - cpu_start;
      mine.report.verdict = verifier.verdict(total);
    });
  }
  const auto wait_for_round = [&](std::uint64_t round) {
    for (std::size_t c = 0; c < consumers; ++c) {
      // pairs with the consumer's release store of its round
      while (progress[c].rounds_done.load(std::memory_order_acquire) < round) std::this_thread::yield();
    }
  };

  // Warm-up: every slot of every queue is written and read before timing.
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
  double cpu = thread_cpu_seconds() - cpu_start;
  for (std::thread& t : threads) t.join();

  for (std::size_t c = 0; c < consumers; ++c) {
    const SecondThreadReport& report = progress[c].report;
    if (!report.verdict.empty()) {
      state.SkipWithError(("consumer " + std::to_string(c) + " check failed: " + report.verdict).c_str());
      return;
    }
    cpu += report.cpu_seconds;
  }
  const auto delivered = static_cast<std::int64_t>(iterations * per_iteration * consumers);
  state.SetItemsProcessed(delivered);
  state.SetBytesProcessed(delivered * static_cast<std::int64_t>(sizeof(Payload)));
  const auto threads_total = static_cast<double>(consumers + 1);
  const double usable = std::min(threads_total, static_cast<double>(std::max(config.cpus, 1)));
  state.counters["cpu_share"] = benchmark::Counter(wall > 0 ? cpu / (wall * usable) : 0.0);
  state.counters["threads"] = benchmark::Counter(threads_total);
  state.counters["cpus"] = benchmark::Counter(static_cast<double>(config.cpus));
}

} // namespace ringbus::bench
