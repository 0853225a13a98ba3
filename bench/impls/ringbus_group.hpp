// group_3C/ringbus: one topic, a consumer group of N members (competing
// consumers, ringbus/group.hpp). In-memory, block policy, the spsc ring
// (peer_slots x 8 B in ringbus_segment_count segments). The producer writes
// claim_values of batch_values, filled in place, one commit per batch (one
// frame of 256 values), waiting for room by the topic's `yield` strategy.
// Each member polls with its defaults: it claims whole frames from the
// group's shared position with one CAS (at most
// GroupOptions::max_claim_records = 256 records' worth: one frame here), reads
// them in place as a typed span (Batch::values), and acknowledges them with
// its next poll. claim_values_up_to (252 values a frame, ending on a line
// pair, as the spsc_8B and fanout rows claim) measured slower here: 3
// alternating runs of group_3C on the AMD host, 577-585 M/s with
// claim_values of 256 against 544-568 with it (moodycamel_cq 417-434 in
// both); members claim a frame at a time, so smaller frames mean more claims.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "../group.hpp"
#include "config.hpp"
#include "payload.hpp"
#include "ringbus/ringbus.hpp"
#include "spin.hpp"

namespace ringbus::bench {

class RingbusGroup {
 public:
  using Payload = Payload8;
  static constexpr std::string_view name = "ringbus";

  explicit RingbusGroup(std::size_t consumers) : members_(std::make_unique<MemberSide[]>(consumers)) {
    TopicOptions options;
    options.segment_count = ringbus_segment_count;
    options.segment_bytes = ringbus_ring_bytes<Payload> / ringbus_segment_count;
    options.wait = WaitStrategy::yield; // how the producer waits for room
    bus_.create_topic("group", options).check();
    producer_.handle = bus_.producer("group").value();
    for (std::size_t c = 0; c < consumers; ++c) members_[c].handle = bus_.group_member("bench", "group").value();
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

  std::uint64_t consume_some(std::size_t member, GroupVerifier& verifier) noexcept {
    Result<Records> records = members_[member].handle.poll();
    if (!records) fail(name, records.message());
    for (const Batch& batch : records->batches()) {
      const std::span<const Payload> values = batch.values<Payload>();
      if (values.size() != batch.size()) { // not packed values of sizeof(Payload): the row is broken
        for (std::size_t i = 0; i < batch.size(); ++i) verifier.reject();
        continue;
      }
      check_all(verifier, values.data(), values.size()); // Payload8: the value is its sequence
    }
    return records->size();
  }

 private:
  struct alignas(128) ProducerSide {
    Producer handle;
  };
  struct alignas(128) MemberSide {
    GroupMember handle;
  };
  Bus bus_;
  ProducerSide producer_;
  std::unique_ptr<MemberSide[]> members_;
};

} // namespace ringbus::bench
