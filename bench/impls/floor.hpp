// rtt/floor: the physical limit of a round trip between the two cores. Two
// std::atomic<uint64_t>, each alone on its own 128-byte line (two lines, as
// the adjacent-line prefetcher pairs them); A stores to one and spins on the
// other, B the reverse. No queue could do less work per round trip.
//
// rtt/floor_stamped: the same, but each send first writes a wall-clock stamp
// from the clock a ringbus producer uses (detail::WallClock: the TSC where
// the kernel keeps time with it, else one clock_gettime(CLOCK_REALTIME)) into
// the line it then publishes, as an append stamps its record before the
// publication store. floor_stamped - floor is what stamping costs a round
// trip on this machine, whatever carries the message: the physical limit of
// a round trip whose messages carry a time of append.
#pragma once

#include <atomic>
#include <cstdint>

#include "ringbus/detail/clock.hpp"
#include "spin.hpp"

namespace ringbus::bench {

template <bool Stamped>
class FloorRttOf {
 public:
  void send_ping(std::uint64_t value) noexcept { send(ping_, a_clock_.clock, value); }
  std::uint64_t receive_pong() noexcept { return await_change(pong_, a_last_.value); }
  std::uint64_t receive_ping() noexcept { return await_change(ping_, b_last_.value); }
  void send_pong(std::uint64_t value) noexcept { send(pong_, b_clock_.clock, value); }

 private:
  struct alignas(128) Line {
    std::atomic<std::uint64_t> value{0};
    std::int64_t stamp = 0; // floor_stamped: written by the sender before value, read by no one
  };
  struct alignas(128) Clock {
    detail::WallClock clock; // each sender's own, as each topic's writer has one
  };
  static void send(Line& line, detail::WallClock& clock, std::uint64_t value) noexcept {
    if constexpr (Stamped) line.stamp = clock.now();
    line.value.store(value, std::memory_order_release); // pairs with the acquire in await_change
  }
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
  Clock a_clock_;
  Clock b_clock_;
};

using FloorRtt = FloorRttOf<false>;
using FloorStampedRtt = FloorRttOf<true>;

} // namespace ringbus::bench
