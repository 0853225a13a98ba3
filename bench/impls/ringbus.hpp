// ringbus rows: one topic per direction, in-memory, block policy (lossless,
// like every peer), busy-spin wait strategy (like every peer, never sleeps).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "config.hpp"
#include "payload.hpp"
#include "ringbus/ringbus.hpp"
#include "spin.hpp"

namespace ringbus::bench {

// How a ringbus spsc row writes; every row reads with Consumer::poll.
enum class RingbusWrite {
  batch,       // ringbus_batch: batches of batch_values, one publish each (see RingbusSpsc::produce)
  append,      // ringbus_append: one Producer::append per record; wall-clock timestamps (the default)
  append_nots, // ringbus_append_nots: the same with TimestampSource::none (an extra, labelled row)
};

// line_aligned_appends: the rows of one 8-byte record per append
// (spsc_8B/ringbus_append*, rtt) take TopicOptions::line_aligned_appends, the
// option for records smaller than a line and their faster configuration, in
// paired runs of ringbus-bench when it came (3 alternations, 3 repetitions
// each): rtt/ringbus p50 461-498 ns against 509-583 without it,
// ringbus_nots 414-441 against 462-530, spsc_8B/ringbus_append 15.4-16.9 M/s
// against 11.5-13.9. The 64 B rows (96-byte frames, 128 with it) keep the
// 8-byte layout: there it made no clear difference (ringbus_append 19.3-22.9
// against 15.6-20.6 M/s, ringbus_append_nots 39.7-49.4 against 42.2-53.4).
// Batches are not appends: the option leaves them alone. Their frames of
// 256 values (1 KiB or more) end on a 128-byte boundary in every in-memory
// block-policy topic (README, "Batch frames on line pairs").
inline TopicOptions ringbus_topic_options(std::size_t ring_bytes, TimestampSource timestamps,
                                          bool line_aligned_appends = false) {
  TopicOptions options;
  options.segment_count = ringbus_segment_count;
  options.segment_bytes = ring_bytes / ringbus_segment_count;
  options.wait = WaitStrategy::busy_spin;
  options.timestamps = timestamps;
  options.line_aligned_appends = line_aligned_appends;
  return options;
}

// Checks every record of a poll, a Batch (one frame) at a time, packed values
// as a typed span in place (Batch::values<P>): the way a user reads
// fixed-size records. A batch that is not packed values of sizeof(P) means
// the row is broken: each of its records counts as rejected.
template <class P>
void verify_batches(const Records& records, Verifier<P>& verifier) noexcept {
  for (const Batch& batch : records.batches()) {
    const std::span<const P> values = batch.values<P>();
    if (values.size() != batch.size()) {
      for (std::size_t i = 0; i < batch.size(); ++i) verifier.reject();
      continue;
    }
    check_all(verifier, values.data(), values.size());
  }
}

// Polls until count records passed verify_batches; idle() runs after an empty poll.
template <class P, class Idle>
void consume_verified(std::string_view impl, Consumer& consumer, std::uint64_t count, Verifier<P>& shared,
                      Idle idle) noexcept {
  with_local_verifier(shared, [&](Verifier<P>& verifier) {
    while (count != 0) {
      Result<Records> records = consumer.poll();
      if (!records) fail(impl, records.message());
      if (records->empty()) {
        idle();
        continue;
      }
      verify_batches(*records, verifier);
      count -= records->size();
    }
  });
}

template <class P, RingbusWrite Write>
class RingbusSpsc {
 public:
  using Payload = P;
  static constexpr std::string_view name = "ringbus";

  RingbusSpsc() {
    const TimestampSource timestamps =
        Write == RingbusWrite::append_nots ? TimestampSource::none : TimestampSource::wall_clock;
    bus_.create_topic("spsc", ringbus_topic_options(ringbus_ring_bytes<P>, timestamps,
                                                    Write != RingbusWrite::batch && sizeof(P) == 8))
        .check();
    producer_.handle = bus_.producer("spsc").value();
    consumer_.handle = bus_.consumer("spsc").value();
  }

  // ringbus_batch takes ringbus's faster batch API for the payload, as
  // measured (ringbus-bench, 3 repetitions, alternating runs, commit 40865d1):
  //   8 B:  claim_values, filled in place    10.3, 11.7 GB/s
  //         append_values from a buffer       9.3, 11.3 GB/s
  //   64 B: claim_values, filled in place    13.4, 13.4 GB/s
  //         append_values from a buffer      16.4, 15.7 GB/s   <- the producer loop of boost_spsc
  // (memcpy writes whole lines into the ring; filling in place stores word by word.)
  // At 8 B the claim is claim_values_up_to of batch_values: 252 values, whose
  // frame fills 16 line pairs exactly, where 256 take 17 with padding
  // (README, "Batch frames on line pairs"). Measured on the AMD host (3
  // alternating runs of spsc_8B/(ringbus_batch|boost_spsc)): 0.87-0.91x of
  // boost_spsc with claim_values of 256, 0.98-1.02x with 252.
  static constexpr bool batch_by_copy = sizeof(P) >= 64;

  void produce(std::uint64_t first, std::uint64_t count) noexcept {
    Producer& producer = producer_.handle;
    if constexpr (Write == RingbusWrite::batch && batch_by_copy) {
      while (count != 0) {
        const std::uint64_t n = std::min<std::uint64_t>(count, batch_values);
        for (std::uint64_t i = 0; i < n; ++i) make_payload(first + i, producer_.batch[i]);
        Result<std::uint64_t> appended = producer.append_values(std::span<const P>(producer_.batch, n));
        if (!appended) fail(name, appended.message());
        first += n;
        count -= n;
      }
    } else if constexpr (Write == RingbusWrite::batch) {
      while (count != 0) {
        Result<Claim> claim = producer.claim_values_up_to(sizeof(P), std::min<std::uint64_t>(count, batch_values));
        if (!claim) fail(name, claim.message());
        for (P& value : claim->values<P>()) make_payload(first++, value);
        if (Result<std::uint64_t> committed = claim->commit(); !committed) fail(name, committed.message());
        count -= claim->count();
      }
    } else {
      for (; count != 0; --count) {
        const P value = make_payload<P>(first++);
        if (Result<std::uint64_t> appended = producer.append(bytes_of(value)); !appended) {
          fail(name, appended.message());
        }
      }
    }
  }

  // poll() as its defaults have it: every record published, zero copy, no
  // wait; read a Batch (one frame) at a time, packed values as a typed span in
  // place (Batch::values<P>), the way a user reads fixed-size records.
  // (Capping poll at batch_values records, like the peers' bulk dequeues into
  // a 256-slot buffer, measured slower: 0.82x at 8 B, 0.75x at 64 B.)
  void consume(std::uint64_t count, Verifier<P>& verifier) noexcept {
    consume_verified(name, consumer_.handle, count, verifier, [] { spin_pause(); });
  }

 private:
  // Each thread's handle on its own cache line.
  struct alignas(128) ProducerSide {
    Producer handle;
    alignas(64) P batch[batch_values]; // batch_by_copy: the values before append_values
  };
  struct alignas(128) ConsumerSide {
    Consumer handle;
  };
  Bus bus_;
  ProducerSide producer_;
  ConsumerSide consumer_;
};

// Ping-pong through two topics: A appends to "ping" and polls "pong"; B the
// reverse. One record per append, read by poll_one waiting with the topic's
// busy_spin strategy (a pause and a look at the next publication word per
// round), as atomic_queue's pop() waits in its own spin loop.
template <TimestampSource Timestamps>
class RingbusRtt {
 public:
  static constexpr std::string_view name = "ringbus";

  RingbusRtt() {
    const TopicOptions options = ringbus_topic_options(ringbus_ring_bytes<Payload8>, Timestamps, true);
    bus_.create_topic("ping", options).check();
    bus_.create_topic("pong", options).check();
    a_.ping = bus_.producer("ping").value();
    a_.pong = bus_.consumer("pong").value();
    b_.ping = bus_.consumer("ping").value();
    b_.pong = bus_.producer("pong").value();
  }

  void send_ping(std::uint64_t value) noexcept { send(a_.ping, value); }
  std::uint64_t receive_pong() noexcept { return receive(a_.pong); }
  std::uint64_t receive_ping() noexcept { return receive(b_.ping); }
  void send_pong(std::uint64_t value) noexcept { send(b_.pong, value); }

 private:
  static void send(Producer& producer, std::uint64_t value) noexcept {
    if (Result<std::uint64_t> appended = producer.append(bytes_of(value)); !appended) fail(name, appended.message());
  }
  // poll_one: the record decoded once, straight into `record`, with no
  // Records range: ringbus's leanest read of one record. Against poll(1),
  // paired runs found ~0.1x of atomic_queue's p50 in one set and ~0.02x or
  // nothing in two others: within this host's noise (README, "rtt"). Its
  // own wait (the timeout) against zero-timeout polls in a loop here: no
  // difference outside the noise either, but it is what a user writes.
  static std::uint64_t receive(Consumer& consumer) noexcept {
    Record record;
    for (;;) {
      const Status got = consumer.poll_one(record, std::chrono::seconds(1));
      if (got.code() != Errc::timed_out && !got.ok()) fail(name, got.message());
      if (got.ok()) {
        if (record.value.size() != sizeof(std::uint64_t)) return 0; // the caller sees a wrong reply
        std::uint64_t value;
        std::memcpy(&value, record.value.data(), sizeof value);
        return value;
      }
    }
  }

  struct alignas(128) SideA {
    Producer ping;
    Consumer pong;
  };
  struct alignas(128) SideB {
    Consumer ping;
    Producer pong;
  };
  Bus bus_;
  SideA a_;
  SideB b_;
};

} // namespace ringbus::bench
