// atomic_queue ("atomic_queue"): its fixed-capacity, SPSC-optimized variant
// (template flag SPSC = true; capacity a compile-time constant), with the
// busy-waiting push / pop its author benchmarks with. An 8 B payload uses
// AtomicQueue (the element itself is the atomic; 0 is its empty marker, so
// sequences start at 1); a 64 B payload uses AtomicQueue2 (a state byte per slot).
#pragma once

#include <cstdint>
#include <memory>

#include <atomic_queue/atomic_queue.h>

#include "config.hpp"
#include "payload.hpp"

namespace ringbus::bench {

// SPSC = true, MAXIMIZE_THROUGHPUT = true, TOTAL_ORDER = false, and
// MINIMIZE_CONTENTION = false: with one producer and one consumer walking the
// slots in order, keeping consecutive slots on one cache line (rather than
// spreading them over lines, the default, which is for many threads) moves
// several items per line transfer. Measured on this machine (undisturbed,
// --quick, 5 repetitions): 8 B 88.5 M/s against 18.8 M/s with the default,
// 64 B 8.3 GB/s against 6.4 GB/s.
template <class P>
struct AtomicQueueFor {
  using type = atomic_queue::AtomicQueue2<P, peer_slots, false, true, false, true>;
};
template <>
struct AtomicQueueFor<std::uint64_t> {
  using type = atomic_queue::AtomicQueue<std::uint64_t, peer_slots, std::uint64_t{0}, false, true, false, true>;
};

template <class P>
class AtomicQueueSpsc {
 public:
  using Payload = P;

  // The queue holds its slots inline (4 MiB for 64 B): on the heap.
  AtomicQueueSpsc() : queue_(std::make_unique<Queue>()) {}

  void produce(std::uint64_t first, std::uint64_t count) noexcept {
    for (const std::uint64_t end = first + count; first != end; ++first) queue_->push(make_payload<P>(first));
  }

  void consume(std::uint64_t count, Verifier<P>& shared) noexcept {
    with_local_verifier(shared, [&](Verifier<P>& verifier) {
      for (; count != 0; --count) verifier.check(queue_->pop());
    });
  }

 private:
  using Queue = typename AtomicQueueFor<P>::type;
  std::unique_ptr<Queue> queue_;
};

class AtomicQueueRtt {
 public:
  AtomicQueueRtt() : ping_(std::make_unique<Queue>()), pong_(std::make_unique<Queue>()) {}

  void send_ping(std::uint64_t value) noexcept { ping_->push(value); }
  std::uint64_t receive_pong() noexcept { return pong_->pop(); }
  std::uint64_t receive_ping() noexcept { return ping_->pop(); }
  void send_pong(std::uint64_t value) noexcept { pong_->push(value); }

 private:
  using Queue = AtomicQueueFor<std::uint64_t>::type;
  std::unique_ptr<Queue> ping_;
  std::unique_ptr<Queue> pong_;
};

} // namespace ringbus::bench
