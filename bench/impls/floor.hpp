// rtt/floor: the physical limit of a round trip between the two cores. Two
// std::atomic<uint64_t>, each alone on its own 128-byte line (two lines, as
// the adjacent-line prefetcher pairs them); A stores to one and spins on the
// other, B the reverse. No queue could do less work per round trip.
#pragma once

#include <atomic>
#include <cstdint>

#include "spin.hpp"

namespace ringbus::bench {

class FloorRtt {
 public:
  void send_ping(std::uint64_t value) noexcept {
    ping_.value.store(value, std::memory_order_release); // pairs with the acquire in receive_ping
  }
  std::uint64_t receive_pong() noexcept { return await_change(pong_, a_last_.value); }
  std::uint64_t receive_ping() noexcept { return await_change(ping_, b_last_.value); }
  void send_pong(std::uint64_t value) noexcept {
    pong_.value.store(value, std::memory_order_release); // pairs with the acquire in receive_pong
  }

 private:
  struct alignas(128) Line {
    std::atomic<std::uint64_t> value{0};
  };
  struct alignas(128) Seen {
    std::uint64_t value = 0; // last value this side received (values never repeat)
  };
  static std::uint64_t await_change(const Line& line, std::uint64_t& last) noexcept {
    for (;;) {
      const std::uint64_t value = line.value.load(std::memory_order_acquire);
      if (value != last) {
        last = value;
        return value;
      }
      spin_pause();
    }
  }
  Line ping_;
  Line pong_;
  Seen a_last_;
  Seen b_last_;
};

} // namespace ringbus::bench
