// moodycamel::ConcurrentQueue ("moodycamel_cq"), used the way its author
// recommends for throughput from one producer: an explicit producer
// (ProducerToken), the bulk operations, and large blocks ("for few producers
// and/or many elements, a larger block size is preferred"). The consumer
// dequeues from that producer's sub-queue directly
// (try_dequeue_bulk_from_producer), the fastest dequeue when the producer is
// known.
//
// Measured on this machine (undisturbed runs, --quick, 5 repetitions), items
// per second at 8 B / bytes per second at 64 B:
//   BLOCK_SIZE 32,   try_dequeue_bulk(ConsumerToken)  281 M/s  6.9 GB/s (the defaults)
//   BLOCK_SIZE 256,  try_dequeue_bulk_from_producer   298 M/s  9.0 GB/s
//   BLOCK_SIZE 1024, try_dequeue_bulk(ConsumerToken)  225 M/s  6.2 GB/s
//   BLOCK_SIZE 1024, try_dequeue_bulk_from_producer   378-407 M/s  6.6-9.4 GB/s  <- used
//   BLOCK_SIZE 4096, try_dequeue_bulk_from_producer   374 M/s  6.7 GB/s
//
// Fixed capacity: the constructor preallocates peer_slots / BLOCK_SIZE
// blocks, and the try_ operations never allocate. An explicit producer also
// needs a block-index entry per block it holds, so the initial index is made
// large enough for every block (too small an index would make try_enqueue
// refuse long before the queue holds peer_slots items).
#pragma once

#include <cstddef>
#include <cstdint>

#if __has_include(<concurrentqueue/moodycamel/concurrentqueue.h>)
#include <concurrentqueue/moodycamel/concurrentqueue.h>
#else
#include <concurrentqueue/concurrentqueue.h>
#endif

#include "config.hpp"
#include "payload.hpp"
#include "spin.hpp"

namespace ringbus::bench {

struct MoodycamelTraits : moodycamel::ConcurrentQueueDefaultTraits {
  static constexpr std::size_t BLOCK_SIZE = 1024;
  static constexpr std::size_t EXPLICIT_INITIAL_INDEX_SIZE = peer_slots / BLOCK_SIZE;
};

template <class T>
using MoodycamelQueue = moodycamel::ConcurrentQueue<T, MoodycamelTraits>;

template <class P>
class MoodycamelCqSpsc {
 public:
  using Payload = P;

  MoodycamelCqSpsc() : queue_(peer_slots), producer_(queue_) {}

// GCC 12 reports a bogus -Wstringop-overflow inside the queue's header once
// try_enqueue_bulk is inlined here (it ignores that the header is a system one).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
  void produce(std::uint64_t first, std::uint64_t count) noexcept {
    while (count != 0) {
      const std::size_t n = count < batch_values ? static_cast<std::size_t>(count) : batch_values;
      for (std::size_t i = 0; i < n; ++i) make_payload(first + i, producer_.batch[i]);
      while (!queue_.try_enqueue_bulk(producer_.token, producer_.batch, n)) spin_pause();
      first += n;
      count -= n;
    }
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  void consume(std::uint64_t count, Verifier<P>& shared) noexcept {
    with_local_verifier(shared, [&](Verifier<P>& verifier) {
      while (count != 0) {
        const std::size_t n = queue_.try_dequeue_bulk_from_producer(producer_.token, consumer_.batch, batch_values);
        if (n == 0) {
          spin_pause();
          continue;
        }
        check_all(verifier, consumer_.batch, n);
        count -= n;
      }
    });
  }

 private:
  // The token is the producer thread's; the consumer only names the
  // sub-queue with it (try_dequeue_bulk_from_producer reads, never writes it).
  struct alignas(128) ProducerSide {
    explicit ProducerSide(MoodycamelQueue<P>& queue) : token(queue) {}
    moodycamel::ProducerToken token;
    P batch[batch_values];
  };
  struct alignas(128) ConsumerSide {
    P batch[batch_values];
  };
  MoodycamelQueue<P> queue_;
  ProducerSide producer_;
  ConsumerSide consumer_;
};

// One item at a time: try_enqueue with the sender's ProducerToken,
// try_dequeue_from_producer on the receiving side.
class MoodycamelCqRtt {
 public:
  MoodycamelCqRtt() : ping_(peer_slots), pong_(peer_slots), a_(ping_), b_(pong_) {}

  void send_ping(std::uint64_t value) noexcept { send(ping_, a_.token, value); }
  std::uint64_t receive_pong() noexcept { return receive(pong_, b_.token); }
  std::uint64_t receive_ping() noexcept { return receive(ping_, a_.token); }
  void send_pong(std::uint64_t value) noexcept { send(pong_, b_.token, value); }

 private:
  using Queue = MoodycamelQueue<std::uint64_t>;
  static void send(Queue& queue, moodycamel::ProducerToken& token, std::uint64_t value) noexcept {
    while (!queue.try_enqueue(token, value)) spin_pause();
  }
  static std::uint64_t receive(Queue& queue, const moodycamel::ProducerToken& sender) noexcept {
    std::uint64_t value;
    while (!queue.try_dequeue_from_producer(sender, value)) spin_pause();
    return value;
  }
  // Each thread's token for the queue it sends into.
  struct alignas(128) Side {
    explicit Side(Queue& out) : token(out) {}
    moodycamel::ProducerToken token;
  };
  Queue ping_;
  Queue pong_;
  Side a_;
  Side b_;
};

} // namespace ringbus::bench
