// Records and Batch: a poll read frame by frame. Batches must cover exactly
// the records the record iterator yields, in the same order, whatever frames
// the poll starts or ends inside of, across pad frames and ring wraps.
#include <array>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "ringbus/records.hpp"
#include "test_support.hpp"

using ringbus::Batch;
using ringbus::Bus;
using ringbus::Consumer;
using ringbus::OverflowPolicy;
using ringbus::Producer;
using ringbus::Record;
using ringbus::Records;
using ringbus::Result;
using ringbus::test::msg;
using ringbus::test::own;
using ringbus::test::OwnedRecord;
using ringbus::test::small_ring;

namespace {

struct Fixture {
  Bus bus;
  Producer producer;
  Consumer consumer;
  explicit Fixture(ringbus::TopicOptions options = small_ring(4)) {
    REQUIRE(bus.create_topic("t", options).ok());
    producer = bus.producer("t").value();
    consumer = bus.consumer("t").value();
  }
};

// Appends values first..first+count as one packed frame.
void append_run(Producer& p, std::uint64_t first, std::size_t count) {
  std::vector<std::uint64_t> values(count);
  std::iota(values.begin(), values.end(), first);
  Result<std::uint64_t> r = p.try_append_values(std::span<const std::uint64_t>(values));
  REQUIRE_MESSAGE(r.ok(), r.message());
}

// Everything in one poll, read through batches() and through the record
// iterator; the two must agree record for record.
std::vector<OwnedRecord> via_batches(const Records& records) {
  std::vector<OwnedRecord> out;
  std::uint64_t expected_offset = records.empty() ? 0 : records.begin()->offset;
  for (const Batch& batch : records.batches()) {
    CHECK(batch.size() >= 1);
    CHECK(batch.first_offset() == expected_offset);
    std::size_t n = 0;
    for (const Record& r : batch) {
      CHECK(r.offset == batch.first_offset() + n);
      CHECK(r.topic == batch.topic());
      out.push_back(own(r));
      ++n;
    }
    CHECK(n == batch.size());
    expected_offset += n;
  }
  return out;
}

std::vector<OwnedRecord> via_records(const Records& records) {
  std::vector<OwnedRecord> out;
  for (const Record& r : records) out.push_back(own(r));
  return out;
}

} // namespace

TEST_SUITE("records") {
  TEST_CASE("packed_batch_reads_as_a_typed_span_in_place") {
    Fixture f;
    append_run(f.producer, 100, 10);
    append_run(f.producer, 110, 5);
    Result<Records> polled = f.consumer.poll();
    REQUIRE(polled.ok());
    std::vector<std::uint64_t> seen;
    std::vector<std::size_t> sizes;
    for (const Batch& batch : polled->batches()) {
      CHECK(batch.packed());
      CHECK(batch.value_size() == sizeof(std::uint64_t));
      CHECK(batch.topic() == "t");
      CHECK(batch.values<std::uint32_t>().empty()); // wrong width: read it record by record
      const std::span<const std::uint64_t> values = batch.values<std::uint64_t>();
      CHECK(values.size() == batch.size());
      seen.insert(seen.end(), values.begin(), values.end());
      sizes.push_back(batch.size());
    }
    CHECK(sizes == std::vector<std::size_t>{10, 5});
    std::vector<std::uint64_t> expected(15);
    std::iota(expected.begin(), expected.end(), 100);
    CHECK(seen == expected);
  }

  TEST_CASE("general_batches_yield_their_records_and_no_typed_span") {
    Fixture f;
    const std::array<ringbus::Message, 3> messages = {msg("k0", "v0"), msg("", "value-1"), msg("k2", "")};
    REQUIRE(f.producer.append_batch(messages).ok());
    REQUIRE(f.producer.append("k3", "v3").ok());
    Result<Records> polled = f.consumer.poll();
    REQUIRE(polled.ok());
    std::size_t batches = 0;
    for (const Batch& batch : polled->batches()) {
      CHECK_FALSE(batch.packed());
      CHECK(batch.value_size() == 0);
      CHECK(batch.values<std::uint64_t>().empty());
      ++batches;
    }
    CHECK(batches == 2);
    CHECK(via_batches(*polled) == via_records(*polled));
  }

  TEST_CASE("batches_start_and_end_inside_frames_when_a_poll_does") {
    Fixture f;
    append_run(f.producer, 0, 10);  // offsets 0..9
    append_run(f.producer, 10, 10); // offsets 10..19
    REQUIRE(f.consumer.seek("t", 3).ok());
    Result<Records> polled = f.consumer.poll(12); // 3..14: the end of one frame, the start of the next
    REQUIRE(polled.ok());
    std::vector<std::pair<std::uint64_t, std::size_t>> shape;
    std::vector<std::uint64_t> seen;
    for (const Batch& batch : polled->batches()) {
      shape.emplace_back(batch.first_offset(), batch.size());
      const std::span<const std::uint64_t> values = batch.values<std::uint64_t>();
      REQUIRE(values.size() == batch.size());
      seen.insert(seen.end(), values.begin(), values.end());
    }
    CHECK(shape == std::vector<std::pair<std::uint64_t, std::size_t>>{{3, 7}, {10, 5}});
    std::vector<std::uint64_t> expected(12);
    std::iota(expected.begin(), expected.end(), 3);
    CHECK(seen == expected);
    CHECK(via_batches(*polled) == via_records(*polled));
  }

  TEST_CASE("batches_cross_pad_frames_and_ring_wraps_like_records_do") {
    Fixture f(small_ring(2));
    std::uint64_t next = 0;
    // Runs of 1..40 values (40..352-byte frames) leave pads at segment ends
    // and lap the 8 KiB ring many times.
    for (int round = 0; round < 200; ++round) {
      const std::size_t count = 1 + static_cast<std::size_t>(round * 7 % 40);
      append_run(f.producer, next, count);
      next += count;
      Result<Records> polled = f.consumer.poll();
      REQUIRE(polled.ok());
      const std::vector<OwnedRecord> batched = via_batches(*polled);
      CHECK(batched == via_records(*polled));
      REQUIRE(batched.size() == count);
      std::uint64_t sum = 0;
      for (const Batch& batch : polled->batches()) {
        const std::span<const std::uint64_t> values = batch.values<std::uint64_t>();
        REQUIRE(values.size() == batch.size());
        for (const std::uint64_t v : values) sum += v;
      }
      CHECK(sum == (next - count + next - 1) * count / 2);
    }
  }

  TEST_CASE("overwrite_topic_batches_read_the_validated_copy") {
    Fixture f(small_ring(2, OverflowPolicy::overwrite));
    std::uint64_t next = 0;
    for (int i = 0; i < 50; ++i) {
      append_run(f.producer, next, 20);
      next += 20;
    }
    // Lapped: the poll reports a gap and then batches of what is still held.
    Result<Records> polled = f.consumer.poll();
    REQUIRE(polled.ok());
    CHECK(polled->lost() > 0);
    CHECK(via_batches(*polled) == via_records(*polled));
    for (const Batch& batch : polled->batches()) {
      const std::span<const std::uint64_t> values = batch.values<std::uint64_t>();
      REQUIRE(values.size() == batch.size());
      for (std::size_t i = 0; i < values.size(); ++i) CHECK(values[i] == batch.first_offset() + i);
    }
  }

  TEST_CASE("an_empty_poll_has_no_batches") {
    Fixture f;
    Result<Records> polled = f.consumer.poll();
    REQUIRE(polled.ok());
    CHECK(polled->batches().begin() == polled->batches().end());
  }
}
