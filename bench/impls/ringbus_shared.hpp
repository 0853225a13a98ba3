// ringbus SharedProducer with several producers ("mpsc_4P/ringbus_shared"):
// one topic (the spsc_8B ring: 512 KiB in 8 segments, block policy), one
// SharedProducer in caller mode (SequencerMode::caller), one Sender per
// producer thread. Producers try_send_values batches of batch_values 8-byte
// items (one queue slot each) and yield while their slots are full; the
// consumer thread drives the sequencer itself: pump() (drains every sender's
// slots, appends them with one append_batch per chunk, records each item's
// offset for its sender), then poll() and check what arrived, a Batch (one
// frame) at a time: a packed run's values as a typed span in place
// (Batch::values), the reader's best API as in the spsc rows (one run each:
// record by record 0.62x moodycamel_cq, by batch 0.74x). Caller mode spares
// a sixth thread on a 2-core machine; that is why it is used here.
//
// Capacity like the moodycamel_cq row: peer_slots / 4 queue slots per sender.
// What the row carries beyond the peer: every item gets a dense offset in a
// replayable log, and each sender can ask which offset each item got.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "config.hpp"
#include "impls/ringbus.hpp"
#include "mpsc.hpp"
#include "ringbus/ringbus.hpp"
#include "spin.hpp"

namespace ringbus::bench {

class RingbusSharedMpsc {
 public:
  static constexpr std::string_view name = "ringbus_shared";

  explicit RingbusSharedMpsc(std::size_t producers) {
    TopicOptions topic = ringbus_topic_options(ringbus_ring_bytes<Payload8>, TimestampSource::wall_clock);
    topic.wait = WaitStrategy::yield;
    bus_.create_topic("mpsc", topic).check();
    SharedProducerOptions options;
    options.sequencer = SequencerMode::caller;
    options.max_senders = producers;
    options.sender_queue_slots = peer_slots / producers;
    options.max_record_bytes = 64;
    options.sequencer_batch_slots = 4096;
    shared_ = bus_.shared_producer("mpsc", options).value();
    for (std::size_t p = 0; p < producers; ++p) {
      sides_.push_back(std::make_unique<ProducerSide>());
      sides_.back()->sender = shared_.sender().value();
    }
    consumer_.handle = bus_.consumer("mpsc").value();
  }

  void produce(std::size_t p, std::uint64_t first, std::uint64_t count) noexcept {
    ProducerSide& side = *sides_[p];
    while (count != 0) {
      const std::size_t n = count < batch_values ? static_cast<std::size_t>(count) : batch_values;
      for (std::size_t i = 0; i < n; ++i) side.batch[i] = mpsc_item(p, first + i);
      for (;;) {
        Result<Ticket> sent = side.sender.try_send_values(std::span<const std::uint64_t>(side.batch, n));
        if (sent.ok()) break;
        if (sent.code() != Errc::would_block) fail(name, sent.message());
        std::this_thread::yield();
      }
      first += n;
      count -= n;
    }
  }

  void consume(std::uint64_t count, MpscVerifier& verifier) noexcept {
    Consumer& consumer = consumer_.handle;
    while (count != 0) {
      Result<std::size_t> pumped = shared_.pump();
      if (!pumped) fail(name, pumped.message());
      Result<Records> records = consumer.poll();
      if (!records) fail(name, records.message());
      if (records->empty()) {
        if (*pumped == 0) std::this_thread::yield();
        continue;
      }
      for (const Batch& batch : records->batches()) {
        const std::span<const std::uint64_t> values = batch.values<std::uint64_t>();
        if (values.size() == batch.size()) {
          check_all(verifier, values.data(), values.size());
          continue;
        }
        for (const Record& record : batch) { // not a packed run of 8-byte values
          if (record.value.size() != sizeof(std::uint64_t)) {
            verifier.reject();
            continue;
          }
          std::uint64_t value;
          std::memcpy(&value, record.value.data(), sizeof value);
          verifier.check(value);
        }
      }
      count -= records->size() < count ? records->size() : count;
    }
  }

 private:
  struct alignas(128) ProducerSide {
    SharedProducer::Sender sender;
    std::uint64_t batch[batch_values];
  };
  struct alignas(128) ConsumerSide {
    Consumer handle;
  };
  Bus bus_;
  SharedProducer shared_;
  std::vector<std::unique_ptr<ProducerSide>> sides_;
  ConsumerSide consumer_;
};

} // namespace ringbus::bench
