// The many-producer scenario (mpsc_4P): mpsc_producers producer threads, one
// consumer, 8-byte items; written once for every impl.
//
// Google Benchmark's thread is the consumer (pinned to CPU 0 in main); each
// run starts the producer threads, producer p pinned to CPU (1 + p) mod the
// CPUs allowed (on 2 CPUs: 1, 0, 1, 0), and joins them at the end. Item k of
// producer p is p << 56 | k (k = 1, 2, ...); the consumer checks that each
// producer's items arrive all, once, in that producer's order (items of
// different producers interleave). Each timed iteration starts a round: every
// producer sends its share (items_per_iteration / producers), and the round
// ends when the consumer has verified every item of it.
//
// Threads outnumber the CPUs on a 2-core machine (5 threads), so every wait
// (queue full, queue empty, round not started) yields the CPU with
// std::this_thread::yield instead of spinning; the summary says so.
//
// cpu_share: the CPU time of all threads over the wall time of the timed
// region times min(threads, CPUs), as in fanout.hpp.
//
// An impl provides:
//   explicit Impl(std::size_t producers);                    // queues allocated, touched
//   void produce(std::size_t p, std::uint64_t first, std::uint64_t count);  // producer p, items first.. of p
//   void consume(std::uint64_t count, MpscVerifier&);        // the consumer
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

namespace ringbus::bench {

inline constexpr std::size_t mpsc_producers = 4;
inline constexpr unsigned mpsc_producer_shift = 56;

inline std::uint64_t mpsc_item(std::size_t producer, std::uint64_t k) noexcept {
  return static_cast<std::uint64_t>(producer) << mpsc_producer_shift | k;
}

// Per producer: the next sequence expected; branch-free per item.
class MpscVerifier {
 public:
  void check(std::uint64_t item) noexcept {
    const std::uint64_t p = item >> mpsc_producer_shift;
    const std::uint64_t k = item & ((std::uint64_t{1} << mpsc_producer_shift) - 1);
    const std::uint64_t slot = p < mpsc_producers ? p : 0;
    mismatches_ += (p >= mpsc_producers || k != next_[slot]) ? 1 : 0;
    next_[slot] = k + 1;
    ++count_;
  }
  void reject() noexcept {
    ++mismatches_;
    ++count_;
  }
  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  // Empty when every producer's items 1..per_producer arrived once, in order.
  [[nodiscard]] std::string verdict(std::uint64_t per_producer) const {
    if (mismatches_ != 0) return std::to_string(mismatches_) + " items out of their producer's order or malformed";
    for (std::size_t p = 0; p < mpsc_producers; ++p) {
      if (next_[p] != per_producer + 1) {
        return "producer " + std::to_string(p) + ": " + std::to_string(next_[p] - 1) + " items where " +
               std::to_string(per_producer) + " were sent";
      }
    }
    return {};
  }

 private:
  std::uint64_t next_[mpsc_producers] = {1, 1, 1, 1};
  std::uint64_t mismatches_ = 0;
  std::uint64_t count_ = 0;
};

inline int mpsc_producer_cpu(std::size_t producer, int cpus) noexcept {
  const auto n = static_cast<std::size_t>(std::max(cpus, 1));
  return static_cast<int>((static_cast<std::size_t>(producer_cpu) + 1 + producer) % n);
}

template <class Impl>
void mpsc_throughput(benchmark::State& state, const RunConfig& config) {
  std::unique_ptr<Impl> impl;
  try {
    impl = std::make_unique<Impl>(mpsc_producers);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  const std::uint64_t per_iteration = config.items_per_iteration / mpsc_producers * mpsc_producers;
  const std::uint64_t share = per_iteration / mpsc_producers;
  const std::uint64_t warmup_share = config.warmup_items / mpsc_producers;
  const auto iterations = static_cast<std::uint64_t>(state.max_iterations);

  // Round r may start when started >= r (0 is the warm-up); written by the
  // consumer (release), read by the producers (acquire).
  struct alignas(128) Start {
    std::atomic<std::uint64_t> started{0};
  };
  struct alignas(128) ProducerReport {
    double cpu_seconds = 0; // written before join, read after
  };
  auto start = std::make_unique<Start>();
  auto reports = std::make_unique<ProducerReport[]>(mpsc_producers);
  std::vector<std::thread> threads;
  threads.reserve(mpsc_producers);
  for (std::size_t p = 0; p < mpsc_producers; ++p) {
    threads.emplace_back([&, p] {
      pin_this_thread(mpsc_producer_cpu(p, config.cpus));
      impl->produce(p, 1, warmup_share);
      std::uint64_t next = warmup_share + 1;
      const double cpu_start = thread_cpu_seconds();
      for (std::uint64_t round = 1; round <= iterations; ++round) {
        // pairs with the consumer's release store of `started`
        while (start->started.load(std::memory_order_acquire) < round) std::this_thread::yield();
        impl->produce(p, next, share);
        next += share;
      }
      reports[p].cpu_seconds = thread_cpu_seconds() - cpu_start;
    });
  }

  MpscVerifier verifier;
  impl->consume(warmup_share * mpsc_producers, verifier);
  using clock = std::chrono::steady_clock;
  std::uint64_t round = 0;
  const double cpu_start = thread_cpu_seconds();
  const clock::time_point wall_start = clock::now();
  for (auto _ : state) {
    const clock::time_point t0 = clock::now();
    start->started.store(++round, std::memory_order_release); // pairs with the producers' acquire
    impl->consume(per_iteration, verifier);
    const clock::time_point t1 = clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  const double wall = std::chrono::duration<double>(clock::now() - wall_start).count();
  double cpu = thread_cpu_seconds() - cpu_start;
  for (std::thread& t : threads) t.join();
  for (std::size_t p = 0; p < mpsc_producers; ++p) cpu += reports[p].cpu_seconds;

  const std::string verdict = verifier.verdict(warmup_share + iterations * share);
  if (!verdict.empty()) {
    state.SkipWithError(("consumer check failed: " + verdict).c_str());
    return;
  }
  const auto items = static_cast<std::int64_t>(iterations * per_iteration);
  state.SetItemsProcessed(items);
  state.SetBytesProcessed(items * 8);
  const auto threads_total = static_cast<double>(mpsc_producers + 1);
  const double usable = std::min(threads_total, static_cast<double>(std::max(config.cpus, 1)));
  state.counters["cpu_share"] = benchmark::Counter(wall > 0 ? cpu / (wall * usable) : 0.0);
  state.counters["threads"] = benchmark::Counter(threads_total);
  state.counters["cpus"] = benchmark::Counter(static_cast<double>(config.cpus));
}

} // namespace ringbus::bench
