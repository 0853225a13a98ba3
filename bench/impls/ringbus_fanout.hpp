// fanout_1toN/ringbus: one topic, N consumers, each reading every record at
// its own offset. In-memory, block policy (lossless, like the peer), the
// same ring as the spsc rows (peer_slots x 8 B in ringbus_segment_count
// segments), one copy of each item whatever N is. The producer writes as
// spsc_8B/ringbus_batch does (claim_values_up_to of batch_values: 252
// values a frame, whole line pairs; filled in place, one commit per batch;
// against claim_values of 256, 3 alternating runs on the AMD host: 1to1 the
// same, 1to2 757-777 -> 844-854 M/s, 1to3 1172-1177 -> 1324-1332 M/s) and,
// when the slowest consumer holds the room, waits
// by the topic's wait strategy: yield. Consumers call poll() with its
// defaults (every record published, zero copy, no wait), read a Batch (one
// frame) at a time as a typed span in place (Batch::values), as the spsc rows
// do, and yield when the poll is empty.
//
// Why the span: on 2 CPUs at 1to3 two consumers share a CPU, so the read
// cost per record sets the pace, not the producer. Single-threaded, a
// record costs ~3 ns through the Records iterator against ~0.2-0.3 ns from
// the span (and an rwq try_dequeue ~4 ns, both with the Verifier; thread CPU
// time, /tmp micro-benchmark on this machine). Read record by record, this
// row measured 1.54x rwq_copies at 1to3 (1.19x at 1to1) in the same run
// where the span measured 8.5x (3 repetitions, a busy machine).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <thread>

#include "config.hpp"
#include "impls/ringbus.hpp"
#include "payload.hpp"
#include "ringbus/ringbus.hpp"
#include "spin.hpp"

namespace ringbus::bench {

class RingbusFanout {
 public:
  using Payload = Payload8;
  static constexpr std::string_view name = "ringbus";

  explicit RingbusFanout(std::size_t consumers) : consumers_(std::make_unique<ConsumerSide[]>(consumers)) {
    TopicOptions options;
    options.segment_count = ringbus_segment_count;
    options.segment_bytes = ringbus_ring_bytes<Payload> / ringbus_segment_count;
    options.wait = WaitStrategy::yield; // how the producer waits for room
    bus_.create_topic("fanout", options).check();
    producer_.handle = bus_.producer("fanout").value();
    for (std::size_t c = 0; c < consumers; ++c) consumers_[c].handle = bus_.consumer("fanout").value();
  }

  void produce(std::uint64_t first, std::uint64_t count) noexcept {
    Producer& producer = producer_.handle;
    while (count != 0) {
      Result<Claim> claim = producer.claim_values_up_to(sizeof(Payload), std::min<std::uint64_t>(count, batch_values));
      if (!claim) fail(name, claim.message());
      for (Payload& value : claim->values<Payload>()) make_payload(first++, value);
      if (Result<std::uint64_t> committed = claim->commit(); !committed) fail(name, committed.message());
      count -= claim->count();
    }
  }

  void consume(std::size_t consumer, std::uint64_t count, Verifier<Payload>& verifier) noexcept {
    consume_verified(name, consumers_[consumer].handle, count, verifier, [] { std::this_thread::yield(); });
  }

 private:
  // Each thread's handle on its own cache line.
  struct alignas(128) ProducerSide {
    Producer handle;
  };
  struct alignas(128) ConsumerSide {
    Consumer handle;
  };
  Bus bus_;
  ProducerSide producer_;
  std::unique_ptr<ConsumerSide[]> consumers_;
};

} // namespace ringbus::bench
