// boost::lockfree::spsc_queue ("boost_spsc"), compile-time capacity. For
// throughput the producer pushes arrays with push(const T*, n) and the
// consumer reads in place with consume_all(functor), the zero-copy read;
// round trips push / pop one element.
//
// Measured on this machine (undisturbed, --quick, 5 repetitions), items per
// second at 8 B / bytes per second at 64 B:
//   push(T*, n) + pop(T*, 256)                     1176 M/s  12.5 GB/s
//   push(T*, n) + consume_all                      1468 M/s  16.2 GB/s  <- used
//   push(first, last) from a generating iterator   1005 M/s   7.3 GB/s  (+ consume_all)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include <boost/lockfree/spsc_queue.hpp>

#include "config.hpp"
#include "payload.hpp"
#include "spin.hpp"

namespace ringbus::bench {

// capacity<N> holds N elements (it allocates N + 1 slots internally).
template <class T>
using BoostSpscQueue = boost::lockfree::spsc_queue<T, boost::lockfree::capacity<peer_slots>>;

template <class P>
class BoostSpsc {
 public:
  using Payload = P;

  // The slots are inline in the queue object (4 MiB for 64 B): on the heap.
  BoostSpsc() : queue_(std::make_unique<BoostSpscQueue<P>>()), producer_() {}

  void produce(std::uint64_t first, std::uint64_t count) noexcept {
    while (count != 0) {
      const std::size_t n = count < batch_values ? static_cast<std::size_t>(count) : batch_values;
      for (std::size_t i = 0; i < n; ++i) make_payload(first + i, producer_.batch[i]);
      // push takes as many as fit and says how many.
      for (std::size_t pushed = 0; pushed != n;) {
        const std::size_t k = queue_->push(producer_.batch + pushed, n - pushed);
        if (k == 0) spin_pause();
        pushed += k;
      }
      first += n;
      count -= n;
    }
  }

  void consume(std::uint64_t count, Verifier<P>& shared) noexcept {
    with_local_verifier(shared, [&](Verifier<P>& verifier) {
      while (count != 0) {
        const std::size_t n = queue_->consume_all([&verifier](const P& item) { verifier.check(item); });
        if (n == 0) spin_pause();
        count -= n;
      }
    });
  }

 private:
  struct alignas(128) Buffer {
    P batch[batch_values];
  };
  std::unique_ptr<BoostSpscQueue<P>> queue_;
  Buffer producer_;
};

class BoostSpscRtt {
 public:
  BoostSpscRtt() : ping_(std::make_unique<Queue>()), pong_(std::make_unique<Queue>()) {}

  void send_ping(std::uint64_t value) noexcept { send(*ping_, value); }
  std::uint64_t receive_pong() noexcept { return receive(*pong_); }
  std::uint64_t receive_ping() noexcept { return receive(*ping_); }
  void send_pong(std::uint64_t value) noexcept { send(*pong_, value); }

 private:
  using Queue = BoostSpscQueue<std::uint64_t>;
  static void send(Queue& queue, std::uint64_t value) noexcept {
    while (!queue.push(value)) spin_pause();
  }
  static std::uint64_t receive(Queue& queue) noexcept {
    std::uint64_t value;
    while (!queue.pop(value)) spin_pause();
    return value;
  }
  std::unique_ptr<Queue> ping_;
  std::unique_ptr<Queue> pong_;
};

} // namespace ringbus::bench
