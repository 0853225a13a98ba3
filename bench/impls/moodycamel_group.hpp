// group_3C/moodycamel_cq: moodycamel::ConcurrentQueue as a work queue, its
// home ground: one producer with a ProducerToken and try_enqueue_bulk of
// batch_values items (yielding while the queue is full), N consumers each
// taking up to batch_values items at a time with try_dequeue_bulk_from_producer
// (the producer is known; concurrent dequeuers are safe: the queue is MPMC).
// Same traits and fixed capacity as spsc_8B/moodycamel_cq (moodycamel_cq.hpp):
// peer_slots items, blocks of 1024, preallocated, the try_ calls never allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

#include "../group.hpp"
#include "config.hpp"
#include "moodycamel_cq.hpp"
#include "payload.hpp"

namespace ringbus::bench {

class MoodycamelCqGroup {
 public:
  using Payload = Payload8;

  explicit MoodycamelCqGroup(std::size_t consumers)
      : queue_(peer_slots), producer_(queue_), consumers_(std::make_unique<ConsumerSide[]>(consumers)) {}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
  void produce(std::uint64_t first, std::uint64_t count) noexcept {
    while (count != 0) {
      const std::size_t n = count < batch_values ? static_cast<std::size_t>(count) : batch_values;
      for (std::size_t i = 0; i < n; ++i) make_payload(first + i, producer_.batch[i]);
      while (!queue_.try_enqueue_bulk(producer_.token, producer_.batch, n)) std::this_thread::yield();
      first += n;
      count -= n;
    }
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  std::uint64_t consume_some(std::size_t consumer, GroupVerifier& verifier) noexcept {
    Payload* batch = consumers_[consumer].batch;
    const std::size_t n = queue_.try_dequeue_bulk_from_producer(producer_.token, batch, batch_values);
    check_all(verifier, batch, n); // Payload8: the value is its sequence
    return n;
  }

 private:
  struct alignas(128) ProducerSide {
    explicit ProducerSide(MoodycamelQueue<Payload>& queue) : token(queue) {}
    moodycamel::ProducerToken token;
    Payload batch[batch_values];
  };
  struct alignas(128) ConsumerSide {
    Payload batch[batch_values];
  };
  MoodycamelQueue<Payload> queue_;
  ProducerSide producer_;
  std::unique_ptr<ConsumerSide[]> consumers_;
};

} // namespace ringbus::bench
