// persist_append/{memory,none,interval,sync}: what persistence costs a
// producer. A writer and reader like spsc_64B/ringbus_batch's (claim_values of
// batch_values 64 B values filled in place, one commit per batch; poll() read
// as Batch::values spans, every value checked), on a topic that differs only
// in where its log lives:
//
//   memory    an in-memory topic (Bus()), the reference;
//   none      a persistent topic (Bus::open on a fresh directory under
//             persist_root) with Durability::none: segment files in the page
//             cache, written back by the kernel; the producer stamps a
//             CRC32C into each frame (every persistent topic does);
//   interval  Durability::interval, flush_interval 10 ms: the bus's flusher
//             thread fdatasyncs what was appended every 10 ms;
//   sync      Durability::sync: each commit returns after its bytes are on
//             disk (msync), so a batch of 256 records shares one flush.
//
// No retention in any row: once the ring is full each roll recycles the file
// leaving the slot it enters (README "Recycled segment files"), which is
// what a user of these rows gets with the defaults.
//
// Same segment size and count for all (persist_segment_bytes x
// persist_segment_count, the library's defaults), block policy, busy-spin
// waits, wall-clock timestamps (one per frame). The bus is opened with this
// thread unpinned, so the flusher thread (persistent rows) may run on either
// CPU rather than on the producer's. The directory is removed after the run.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "affinity.hpp"
#include "config.hpp"
#include "impls/ringbus.hpp"
#include "payload.hpp"
#include "ringbus/ringbus.hpp"
#include "spin.hpp"
#include "temp_dir.hpp"

namespace ringbus::bench {

enum class PersistMode { memory, none, interval, sync };

template <PersistMode Mode>
class RingbusPersistSpsc {
 public:
  using Payload = Payload64;
  static constexpr std::string_view name = "ringbus";

  RingbusPersistSpsc() : dir_("persist_append") {
    TopicOptions options;
    options.segment_bytes = persist_segment_bytes;
    options.segment_count = persist_segment_count;
    options.wait = WaitStrategy::busy_spin;
    options.storage = Mode == PersistMode::memory ? Storage::memory : Storage::persistent;
    options.durability = Mode == PersistMode::sync       ? Durability::sync
                         : Mode == PersistMode::interval ? Durability::interval
                                                         : Durability::none;
    options.flush_interval = std::chrono::milliseconds(10);
    if constexpr (Mode == PersistMode::memory) {
      bus_ = Bus();
    } else {
      unpin_this_thread(); // the flusher thread inherits this mask
      Result<Bus> bus = Bus::open(dir_.path());
      pin_this_thread(producer_cpu);
      bus_ = std::move(bus).value();
    }
    bus_.create_topic("persist", options).check();
    producer_.handle = bus_.producer("persist").value();
    consumer_.handle = bus_.consumer("persist").value();
  }

  void produce(std::uint64_t first, std::uint64_t count) noexcept {
    Producer& producer = producer_.handle;
    while (count != 0) {
      const std::uint64_t n = std::min<std::uint64_t>(count, batch_values);
      Result<Claim> claim = producer.claim_values(sizeof(Payload), n);
      if (!claim) fail(name, claim.message());
      for (Payload& value : claim->values<Payload>()) make_payload(first++, value);
      if (Result<std::uint64_t> committed = claim->commit(); !committed) fail(name, committed.message());
      count -= n;
    }
  }

  void consume(std::uint64_t count, Verifier<Payload>& verifier) noexcept {
    consume_verified(name, consumer_.handle, count, verifier, [] { spin_pause(); });
  }

 private:
  struct alignas(128) ProducerSide {
    Producer handle;
  };
  struct alignas(128) ConsumerSide {
    Consumer handle;
  };
  TempDirectory dir_; // first in, last out: removed after the bus is closed
  Bus bus_;
  ProducerSide producer_;
  ConsumerSide consumer_;
};

} // namespace ringbus::bench
