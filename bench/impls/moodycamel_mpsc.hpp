// moodycamel::ConcurrentQueue with several producers ("mpsc_4P/moodycamel_cq"),
// used as its author recommends for throughput: one ProducerToken per
// producer thread, try_enqueue_bulk of batch_values items, and one consumer
// with a ConsumerToken and try_dequeue_bulk into a buffer of batch_values.
//
// Capacity: like ringbus_shared (sender_queue_slots = peer_slots / 4 per
// sender), each producer may hold peer_slots / 4 items (MAX_SUBQUEUE_SIZE),
// and the constructor preallocates enough blocks for all of them; the try_
// operations never allocate. The per-producer limit matters: explicit
// producers keep the blocks they took, so without it a producer that started
// late could find every block held by the others and never enqueue.
// BLOCK_SIZE 1024, the fastest in the spsc measurements (moodycamel_cq.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#if __has_include(<concurrentqueue/moodycamel/concurrentqueue.h>)
#include <concurrentqueue/moodycamel/concurrentqueue.h>
#else
#include <concurrentqueue/concurrentqueue.h>
#endif

#include "config.hpp"
#include "mpsc.hpp"

namespace ringbus::bench {

struct MoodycamelMpscTraits : moodycamel::ConcurrentQueueDefaultTraits {
  static constexpr std::size_t BLOCK_SIZE = 1024;
  static constexpr std::size_t MAX_SUBQUEUE_SIZE = peer_slots / mpsc_producers;
};

class MoodycamelCqMpsc {
 public:
  using Queue = moodycamel::ConcurrentQueue<std::uint64_t, MoodycamelMpscTraits>;

  explicit MoodycamelCqMpsc(std::size_t producers)
      // Each producer: MAX_SUBQUEUE_SIZE / BLOCK_SIZE blocks, one it is filling, one not yet seen empty.
      : queue_(producers * (MoodycamelMpscTraits::MAX_SUBQUEUE_SIZE + 2 * MoodycamelMpscTraits::BLOCK_SIZE)),
        consumer_(queue_) {
    for (std::size_t p = 0; p < producers; ++p) sides_.push_back(std::make_unique<ProducerSide>(queue_));
  }

// GCC 12 reports a bogus -Wstringop-overflow inside the queue's header once
// try_enqueue_bulk is inlined here (see moodycamel_cq.hpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
  void produce(std::size_t p, std::uint64_t first, std::uint64_t count) noexcept {
    ProducerSide& side = *sides_[p];
    while (count != 0) {
      const std::size_t n = count < batch_values ? static_cast<std::size_t>(count) : batch_values;
      for (std::size_t i = 0; i < n; ++i) side.batch[i] = mpsc_item(p, first + i);
      while (!queue_.try_enqueue_bulk(side.token, side.batch, n)) std::this_thread::yield();
      first += n;
      count -= n;
    }
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  void consume(std::uint64_t count, MpscVerifier& verifier) noexcept {
    while (count != 0) {
      const std::size_t n = queue_.try_dequeue_bulk(consumer_.token, consumer_.batch, batch_values);
      if (n == 0) {
        std::this_thread::yield();
        continue;
      }
      check_all(verifier, consumer_.batch, n);
      count -= n < count ? n : count;
    }
  }

 private:
  struct alignas(128) ProducerSide {
    explicit ProducerSide(Queue& queue) : token(queue) {}
    moodycamel::ProducerToken token;
    std::uint64_t batch[batch_values];
  };
  struct alignas(128) ConsumerSide {
    explicit ConsumerSide(Queue& queue) : token(queue) {}
    moodycamel::ConsumerToken token;
    std::uint64_t batch[batch_values];
  };
  Queue queue_;
  ConsumerSide consumer_;
  std::vector<std::unique_ptr<ProducerSide>> sides_;
};

} // namespace ringbus::bench
