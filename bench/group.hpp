// The competing-consumers scenario (group_3C), written once for every impl.
//
// Google Benchmark's thread is the producer (pinned to CPU 0 in main); each
// run starts N consumer threads, pinned round robin like fanout_1toN's
// (consumer i on CPU (1 + i) mod the CPUs allowed), and joins them at the end.
// The consumers COMPETE: every item goes to exactly one of them. Each
// timed iteration publishes items_per_iteration items and ends when the
// consumers together have taken them all; the rate is delivered items/s
// (published / that time: each item is delivered once).
//
// Checking: each consumer checks that the sequences it gets only grow (each
// impl hands a consumer its items in order) and adds them up; at the end the
// counts and sums of all consumers together must be those of 1..sent: every
// item once, none lost, none twice.
//
// With 3 consumers and the producer, 4 threads share 2 CPUs here: every wait
// (queue full, queue empty, round not done) yields the CPU.
//
// An impl provides (each member called from one thread only):
//   using Payload = Payload8;
//   explicit Impl(std::size_t consumers);
//   void produce(std::uint64_t first_sequence, std::uint64_t count);      // producer
//   std::uint64_t consume_some(std::size_t consumer, GroupVerifier& v);   // consumer: items taken, 0 if none
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
#include "fanout.hpp"
#include "harness.hpp"
#include "payload.hpp"

namespace ringbus::bench {

// One consumer's share: its items must grow; counts and sums add up across consumers.
class GroupVerifier {
 public:
  void check(std::uint64_t sequence) noexcept {
    out_of_order_ += sequence <= last_ ? 1 : 0;
    last_ = sequence;
    sum_ += sequence;
    ++count_;
  }
  void reject() noexcept {
    ++out_of_order_;
    ++count_;
  }
  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] std::uint64_t sum() const noexcept { return sum_; }
  [[nodiscard]] std::uint64_t out_of_order() const noexcept { return out_of_order_; }

 private:
  std::uint64_t last_ = 0;
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t out_of_order_ = 0;
};

template <class Impl>
void group_throughput(benchmark::State& state, const RunConfig& config, std::size_t consumers) {
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

  struct alignas(128) Progress {
    std::atomic<std::uint64_t> taken{0}; // items this consumer has taken and checked
    GroupVerifier verifier;              // written by the consumer before join, read after
    double cpu_seconds = 0;
  };
  auto progress = std::make_unique<Progress[]>(consumers);
  // On a line of its own, not on this thread's stack (which it keeps writing):
  // every consumer reads it once per consume_some.
  struct alignas(128) Done {
    std::atomic<bool> flag{false};
  };
  auto done = std::make_unique<Done>();

  std::vector<std::thread> threads;
  threads.reserve(consumers);
  for (std::size_t c = 0; c < consumers; ++c) {
    // What it uses per call by value into locals, as the rtt echo thread
    // (harness.hpp): by reference they are reloads from this thread's stack.
    threads.emplace_back([&, c, member_impl = impl.get(), stop = done.get()] {
      Impl* const member = member_impl;
      const Done* const finished = stop;
      pin_this_thread(fanout_consumer_cpu(c, config.cpus));
      Progress& mine = progress[c];
      GroupVerifier verifier; // on this thread's stack
      const double cpu_start = thread_cpu_seconds();
      std::uint64_t taken = 0;
      while (!finished->flag.load(std::memory_order_acquire)) { // pairs with the producer's release at the end
        const std::uint64_t n = member->consume_some(c, verifier);
        if (n == 0) {
          std::this_thread::yield();
          continue;
        }
        taken += n;
        mine.taken.store(taken, std::memory_order_release); // pairs with the acquire in wait_for
      }
      mine.cpu_seconds = thread_cpu_seconds() - cpu_start;
      mine.verifier = verifier;
    });
  }
  const auto wait_for = [&](std::uint64_t items) {
    for (;;) {
      std::uint64_t sum = 0;
      for (std::size_t c = 0; c < consumers; ++c) sum += progress[c].taken.load(std::memory_order_acquire);
      if (sum >= items) return;
      std::this_thread::yield();
    }
  };

  impl->produce(1, config.warmup_items);
  wait_for(config.warmup_items);

  using clock = std::chrono::steady_clock;
  std::uint64_t next = config.warmup_items + 1;
  const double cpu_start = thread_cpu_seconds();
  const clock::time_point wall_start = clock::now();
  for (auto _ : state) {
    const clock::time_point start = clock::now();
    impl->produce(next, per_iteration);
    wait_for(next - 1 + per_iteration);
    const clock::time_point end = clock::now();
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
    next += per_iteration;
  }
  const double wall = std::chrono::duration<double>(clock::now() - wall_start).count();
  double cpu = thread_cpu_seconds() - cpu_start;
  done->flag.store(true, std::memory_order_release);
  for (std::thread& t : threads) t.join();

  std::uint64_t count = 0;
  std::uint64_t sum = 0;
  std::uint64_t out_of_order = 0;
  for (std::size_t c = 0; c < consumers; ++c) {
    count += progress[c].verifier.count();
    sum += progress[c].verifier.sum();
    out_of_order += progress[c].verifier.out_of_order();
    cpu += progress[c].cpu_seconds;
  }
  std::string verdict;
  if (count != total) verdict = "received " + std::to_string(count) + " items, sent " + std::to_string(total);
  if (out_of_order != 0) verdict = std::to_string(out_of_order) + " items out of order or malformed";
  if (verdict.empty() && sum != expected_fold_sum<Payload8>(total)) verdict = "sequence sum mismatch (lost or twice)";
  if (!verdict.empty()) {
    state.SkipWithError(("check failed: " + verdict).c_str());
    return;
  }
  const auto delivered = static_cast<std::int64_t>(iterations * per_iteration);
  state.SetItemsProcessed(delivered);
  state.SetBytesProcessed(delivered * static_cast<std::int64_t>(sizeof(Payload8)));
  const auto threads_total = static_cast<double>(consumers + 1);
  const double usable = std::min(threads_total, static_cast<double>(std::max(config.cpus, 1)));
  state.counters["cpu_share"] = benchmark::Counter(wall > 0 ? cpu / (wall * usable) : 0.0);
  state.counters["threads"] = benchmark::Counter(threads_total);
  state.counters["cpus"] = benchmark::Counter(static_cast<double>(config.cpus));
}

} // namespace ringbus::bench
