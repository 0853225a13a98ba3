// fanout_1toN/rwq_copies: what a user does without a bus. The producer
// pushes every item into N moodycamel::ReaderWriterQueues, one per consumer;
// each consumer drains its own. Each queue has peer_slots slots (so each
// consumer may fall as far behind as with ringbus's ring, at N times the
// memory). rwq has no bulk API (readerwriterqueue.h: enqueue / try_enqueue /
// emplace, try_dequeue / peek / pop): the producer uses try_enqueue (enqueue
// would allocate a new block when full) and yields while a queue is full;
// consumers use try_dequeue (faster than peek / pop at 8 B, see rwq.hpp) and
// yield while theirs is empty.
//
// The producer fills the queues a run of batch_values items at a time (256
// items into queue 0, the same 256 into queue 1, ...), not item by item
// across the queues: each queue's tail line stays in the producer's cache for
// the whole run, as the peers' bulk APIs do. Item by item measured slower
// (--quick, 5 repetitions interleaved, a busy machine; delivered items/s,
// median): 1to1 76 vs 89 M/s, 1to2 55 vs 84 M/s, 1to3 63 vs 93 M/s.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <readerwriterqueue/readerwriterqueue.h>

#include "config.hpp"
#include "payload.hpp"

namespace ringbus::bench {

class RwqCopiesFanout {
 public:
  using Payload = Payload8;

  explicit RwqCopiesFanout(std::size_t consumers) {
    queues_.reserve(consumers);
    for (std::size_t c = 0; c < consumers; ++c) queues_.push_back(std::make_unique<Side>());
  }

  void produce(std::uint64_t first, std::uint64_t count) noexcept {
    while (count != 0) {
      const std::uint64_t n = std::min<std::uint64_t>(count, batch_values);
      for (const std::unique_ptr<Side>& side : queues_) {
        Queue& queue = side->queue;
        for (std::uint64_t k = first, end = first + n; k != end; ++k) {
          const Payload value = make_payload<Payload>(k);
          while (!queue.try_enqueue(value)) std::this_thread::yield();
        }
      }
      first += n;
      count -= n;
    }
  }

  void consume(std::size_t consumer, std::uint64_t count, Verifier<Payload>& shared) noexcept {
    with_local_verifier(shared, [&](Verifier<Payload>& verifier) {
      Queue& queue = queues_[consumer]->queue;
      for (; count != 0; --count) {
        Payload value;
        while (!queue.try_dequeue(value)) std::this_thread::yield();
        verifier.check(value);
      }
    });
  }

 private:
  using Queue = moodycamel::ReaderWriterQueue<Payload>;
  // The constructor guarantees room for peer_slots elements.
  struct alignas(128) Side {
    Queue queue{peer_slots};
  };
  std::vector<std::unique_ptr<Side>> queues_;
};

} // namespace ringbus::bench
