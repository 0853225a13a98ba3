// Producer and Claim: appends, batches, packed values, zero-copy claims, the
// block policy's would_block, and refusals that lose nothing.
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "persist_support.hpp"
#include "ringbus/detail/clock.hpp"
#include "ringbus/detail/frame.hpp"
#include "ringbus/producer.hpp"
#include "test_support.hpp"

using ringbus::Bus;
using ringbus::ByteView;
using ringbus::Claim;
using ringbus::Consumer;
using ringbus::Errc;
using ringbus::Header;
using ringbus::Message;
using ringbus::OverflowPolicy;
using ringbus::Producer;
using ringbus::Record;
using ringbus::Records;
using ringbus::Result;
using ringbus::TimestampSource;
using ringbus::TopicOptions;
using ringbus::test::append_numbered;
using ringbus::test::contains;
using ringbus::test::drain;
using ringbus::test::even_value_bytes;
using ringbus::test::key_for;
using ringbus::test::msg;
using ringbus::test::OwnedRecord;
using ringbus::test::poll_once;
using ringbus::test::records_per_small_segment;
using ringbus::test::small_ring;
using ringbus::test::str;
using ringbus::test::value_for;

namespace {

// A bus with topic "t", its producer and one consumer from the beginning.
struct Fixture {
  explicit Fixture(TopicOptions options = small_ring()) {
    REQUIRE(bus.create_topic("t", options).ok());
    consumer = bus.consumer("t").value();
    producer = bus.producer("t").value();
  }
  Bus bus;
  Consumer consumer;
  Producer producer;
};

// Where a packed record's frame starts: its value follows the frame's
// 32-byte header. (Rings are page-aligned, so an address's offset in a small
// segment is its position's.)
std::uintptr_t frame_at(const Record& r) { return reinterpret_cast<std::uintptr_t>(r.value.data()) - 32; }

TopicOptions untimed(TopicOptions o) {
  o.timestamps = TimestampSource::none;
  return o;
}

// On a ring of 4 small segments: 2 segments and 56 records of 64-byte frames
// (512 bytes left in segment 2); then a batch of 700 `fill` values, refused:
// 60 fill segment 2, 508 segment 3, the rest needs segment 0's slot, which
// the consumer (at offset 0) still holds; then `after` records. The consumer
// reads exactly the appended records, nothing of the refused batch.
void refuse_batch_then_append(const TopicOptions& o, std::uint64_t fill, std::size_t after) {
  Fixture f(o);
  const std::uint64_t per_segment = records_per_small_segment;
  append_numbered(f.producer, 2 * per_segment + 56);
  std::vector<std::uint64_t> values(700, fill);
  CHECK(f.producer.try_append_values(std::span<const std::uint64_t>(values)).code() == Errc::would_block);
  append_numbered(f.producer, after);
  const std::vector<OwnedRecord> got = drain(f.consumer);
  REQUIRE(got.size() == 2 * per_segment + 56 + after);
  for (std::uint64_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].offset == i);
    CHECK(got[i].value == value_for(i, even_value_bytes));
  }
}

// Appends values whose every word is a plausible header of the next lap at
// any position (2 x 4 KiB: every 8 KiB is a new lap), one at a time: each
// poll gives exactly the record appended, nothing made of old bytes, and an
// empty poll at the frontier stays empty. With line-aligned appends, the word
// after each frame is the start of the next line.
void never_take_old_payload(bool line_aligned, int rounds) {
  TopicOptions o = small_ring(2);
  o.line_aligned_appends = line_aligned;
  Bus bus;
  REQUIRE(bus.create_topic("t", o).ok());
  auto p = bus.producer("t").value();
  auto c = bus.consumer("t").value();
  const std::uint64_t capacity = o.segment_bytes * o.segment_count;
  const std::uint8_t flags =
      ringbus::detail::frame_flags::packed | (line_aligned ? ringbus::detail::frame_flags::line_end : std::uint8_t{0});
  const std::size_t alignment = line_aligned ? 64 : 8;
  std::uint64_t expected = 0;
  std::uint64_t position = 0; // byte position of the next frame
  for (int round = 0; round < rounds; ++round) {
    const std::size_t value_bytes = 8 * static_cast<std::size_t>(1 + round % 23);
    std::string value(value_bytes, '\0');
    const std::uint64_t next_lap = ((position / capacity) + 1) & 0xffff;
    const std::uint64_t fake =
        ringbus::detail::frame_word0(40, ringbus::detail::frame_type::data, flags) | (next_lap << 48);
    for (std::size_t i = 0; i < value_bytes; i += 8) std::memcpy(value.data() + i, &fake, 8);
    REQUIRE(p.append(value).value() == expected);
    const std::vector<OwnedRecord> got = drain(c);
    REQUIRE(got.size() == 1);
    CHECK(got[0].offset == expected);
    CHECK(got[0].value == value);
    ++expected;
    const std::uint64_t frame = ringbus::detail::align_up(32 + value_bytes, alignment);
    const std::uint64_t segment_left = o.segment_bytes - position % o.segment_bytes;
    position += frame <= segment_left ? frame : segment_left + frame;
    CHECK(c.poll(16).value().empty());
  }
}

std::int64_t wall_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Tick {
  std::int64_t price;
  std::uint32_t quantity;
  std::uint32_t sequence;
};

} // namespace

TEST_SUITE("producer") {
  // --- single appends -------------------------------------------------------------

  TEST_CASE("append_returns_dense_offsets_from_zero") {
    Fixture f;
    CHECK(f.producer.next_offset() == 0);
    for (std::uint64_t i = 0; i < 20; ++i) {
      CHECK(f.producer.append(value_for(i, 10)).value() == i);
      CHECK(f.producer.next_offset() == i + 1);
    }
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 20);
    for (std::uint64_t i = 0; i < 20; ++i) {
      CHECK(got[i].offset == i);
      CHECK(got[i].topic == "t");
      CHECK(got[i].key.empty());
      CHECK(got[i].value == value_for(i, 10));
      CHECK(got[i].headers.empty());
    }
  }

  TEST_CASE("every_append_form_reads_back_key_value_and_offset") {
    Fixture f(untimed(small_ring()));
    CHECK(f.producer.append("v0").value() == 0);
    CHECK(f.producer.append("k1", "v1").value() == 1);
    CHECK(f.producer.append(msg("k2", "v2")).value() == 2);
    CHECK(f.producer.try_append("v3").value() == 3);
    CHECK(f.producer.try_append("k4", "v4").value() == 4);
    CHECK(f.producer.try_append(msg("k5", "v5")).value() == 5);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 6);
    const std::array<const char*, 6> keys{"", "k1", "k2", "", "k4", "k5"};
    for (std::size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].offset == i);
      CHECK(got[i].key == keys[i]);
      CHECK(got[i].value == "v" + std::to_string(i));
    }
  }

  TEST_CASE("empty_keys_and_empty_values_are_records_too") {
    Fixture f(untimed(small_ring()));
    const std::array<Header, 1> header{Header{"h", "x"}};
    CHECK(f.producer.append("").value() == 0);                     // nothing at all
    CHECK(f.producer.append("key-only", "").value() == 1);         // key, empty value
    CHECK(f.producer.append("", "value-only").value() == 2);       // empty key, value
    CHECK(f.producer.append(msg("", "", 9, header)).value() == 3); // headers only
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 4);
    CHECK(got[0].key.empty());
    CHECK(got[0].value.empty());
    CHECK(got[1].key == "key-only");
    CHECK(got[1].value.empty());
    CHECK(got[2].key.empty());
    CHECK(got[2].value == "value-only");
    CHECK(got[3].key.empty());
    CHECK(got[3].value.empty());
    CHECK(got[3].timestamp_ns == 9);
    CHECK(got[3].headers == std::vector<std::pair<std::string, std::string>>{{"h", "x"}});
  }

  TEST_CASE("binary_keys_and_values_keep_every_byte") {
    Fixture f;
    std::string all_bytes;
    for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
    REQUIRE(f.producer.append(all_bytes, all_bytes).ok());
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 1);
    CHECK(got[0].key == all_bytes);
    CHECK(got[0].value == all_bytes);
  }

  TEST_CASE("timestamp_set_by_the_producer_is_kept_exactly") {
    Fixture f; // wall_clock topic: an explicit timestamp still wins
    const std::array<std::int64_t, 5> stamps{0, 1, -5, 1'700'000'000'123'456'789, INT64_MAX};
    for (std::int64_t ts : stamps) {
      REQUIRE(f.producer.append(msg("", "packed", ts)).ok()); // value only: packed frame
      REQUIRE(f.producer.append(msg("k", "general", ts)).ok());
    }
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 2 * stamps.size());
    for (std::size_t i = 0; i < stamps.size(); ++i) {
      CHECK(got[2 * i].timestamp_ns == stamps[i]);
      CHECK(got[2 * i + 1].timestamp_ns == stamps[i]);
    }
  }

  TEST_CASE("timestamp_is_taken_from_the_wall_clock_at_append") {
    Fixture f;
    const std::int64_t before = wall_now();
    REQUIRE(f.producer.append("v").ok());
    REQUIRE(f.producer.append("k", "v").ok());
    const std::int64_t after = wall_now();
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 2);
    for (const OwnedRecord& r : got) {
      CHECK(r.timestamp_ns >= before);
      CHECK(r.timestamp_ns <= after);
    }
  }

  TEST_CASE("wall_clock_timestamps_of_one_producer_never_decrease_and_stay_near_clock_realtime") {
    // 20 ms of appends: past the clock's first baseline and about 20 of its
    // anchors (detail/clock.hpp), through append, keyed append and claims.
    // Off the TSC every stamp is a clock_gettime between before and after;
    // on it, within the 100 us clock_test allows around them.
    const std::int64_t slack = ringbus::detail::tsc_clock_usable() ? 100'000 : 0;
    Fixture f;
    std::int64_t last = 0;
    std::uint64_t n = 0;
    const std::int64_t end = wall_now() + 20'000'000;
    std::int64_t before = 0;
    do {
      before = wall_now();
      if (n % 3 == 0) {
        REQUIRE(f.producer.append("v").ok());
      } else if (n % 3 == 1) {
        REQUIRE(f.producer.append("k", "v").ok());
      } else {
        auto claim = f.producer.claim(1);
        REQUIRE(claim.ok());
        claim->value()[0] = std::byte{'c'};
        REQUIRE(claim->commit().ok());
      }
      const std::int64_t after = wall_now();
      const std::vector<OwnedRecord> got = drain(f.consumer);
      REQUIRE(got.size() == 1);
      REQUIRE(got[0].offset == n);
      REQUIRE(got[0].timestamp_ns >= before - slack);
      REQUIRE(got[0].timestamp_ns <= after + slack);
      REQUIRE(got[0].timestamp_ns >= last);
      last = got[0].timestamp_ns;
      ++n;
    } while (before < end);
  }

  TEST_CASE("timestamp_source_none_gives_zero_unless_the_producer_sets_one") {
    Fixture f(untimed(small_ring()));
    REQUIRE(f.producer.append("v").ok());
    REQUIRE(f.producer.append("k", "v").ok());
    REQUIRE(f.producer.append(msg("k", "v", 77)).ok());
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 3);
    CHECK(got[0].timestamp_ns == 0);
    CHECK(got[1].timestamp_ns == 0);
    CHECK(got[2].timestamp_ns == 77);
  }

  TEST_CASE("headers_are_delivered_in_order_and_found_by_name") {
    Fixture f;
    const std::string binary("\0\x01\xfe", 3);
    const std::array<Header, 4> headers{Header{"content-type", "json"}, Header{"trace", binary}, Header{"empty", ""},
                                        Header{"content-type", "second"}};
    REQUIRE(f.producer.append(msg("k", "v", ringbus::timestamp_now, headers)).ok());
    auto records = f.consumer.poll();
    REQUIRE(records.ok());
    REQUIRE(records->size() == 1);
    const Record r = *records->begin(); // a copy of the view: the iterator is a temporary
    CHECK(r.headers.size() == 4);
    CHECK_FALSE(r.headers.empty());
    std::vector<std::pair<std::string, std::string>> seen;
    for (const Header h : r.headers) seen.emplace_back(str(h.name), str(h.value));
    CHECK(seen == std::vector<std::pair<std::string, std::string>>{
                      {"content-type", "json"}, {"trace", binary}, {"empty", ""}, {"content-type", "second"}});
    const std::optional<ByteView> first = r.headers.find("content-type");
    REQUIRE(first.has_value());
    CHECK(str(*first) == "json"); // the first of two
    const std::optional<ByteView> trace = r.headers.find("trace");
    REQUIRE(trace.has_value());
    CHECK(str(*trace) == binary);
    const std::optional<ByteView> empty = r.headers.find("empty");
    REQUIRE(empty.has_value());
    CHECK(empty->empty());
    CHECK_FALSE(r.headers.find("absent").has_value());
  }

  TEST_CASE("largest_value_that_fits_a_segment_is_accepted") {
    Fixture f(small_ring(4)); // room for three segments before the unread consumer holds the producer
    CHECK(f.producer.max_value_bytes() == 4096 - ringbus::detail::frame_header_bytes);
    const std::string biggest = value_for(0, f.producer.max_value_bytes());
    REQUIRE(f.producer.append("small").ok());
    CHECK(f.producer.append(biggest).value() == 1); // rolls to a fresh segment
    CHECK(f.producer.append(biggest).value() == 2);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 3);
    CHECK(got[1].value == biggest);
    CHECK(got[2].value == biggest);
  }

  TEST_CASE("record_larger_than_a_segment_is_refused_naming_both_sizes") {
    Fixture f;
    const std::string too_big(f.producer.max_value_bytes() + 1, 'x'); // 4065 B value: 4097 B encoded
    auto r = f.producer.append(too_big);
    CHECK(r.code() == Errc::record_too_large);
    CHECK(contains(r.message(), "4097"));
    CHECK(contains(r.message(), "4096"));
    CHECK(contains(r.message(), "'t'"));
    CHECK(f.producer.try_append(too_big).code() == Errc::record_too_large);

    auto keyed = f.producer.append(std::string(100, 'k'), std::string(4000, 'v'));
    CHECK(keyed.code() == Errc::record_too_large);
    CHECK(contains(keyed.message(), "key 100 B"));
    CHECK(contains(keyed.message(), "value 4000 B"));
    CHECK(contains(keyed.message(), "4096"));

    const std::string long_value(2100, 'h'); // two of them overflow a segment
    const std::array<Header, 3> headers{Header{"a", long_value}, Header{"b", long_value}, Header{"c", "x"}};
    auto with_headers = f.producer.append(msg("", "v", ringbus::timestamp_now, headers));
    CHECK(with_headers.code() == Errc::record_too_large);
    CHECK(contains(with_headers.message(), "3 headers"));
  }

  // A value of 4 GiB or more: its encoded length no longer fits the frame's
  // u32 length field, and must not wrap into a small frame (the ByteView's
  // bytes are never read: only 8 of them exist).
  TEST_CASE("value_of_4_GiB_or_more_is_refused_on_every_topic_kind_without_reading_it") {
    for (const bool line_aligned : {false, true}) {
      CAPTURE(line_aligned);
      TopicOptions o = small_ring();
      o.line_aligned_appends = line_aligned;
      Fixture f(o);
      const std::array<std::byte, 8> bytes{};
      for (const std::size_t size : {std::size_t{1} << 32, (std::size_t{1} << 32) - 32 + 8}) {
        CHECK(f.producer.append(ByteView(bytes.data(), size)).code() == Errc::record_too_large);
        CHECK(f.producer.append(msg("k", ByteView(bytes.data(), size))).code() == Errc::record_too_large);
      }
      REQUIRE(f.producer.append("after").value() == 0);
      const std::vector<OwnedRecord> got = drain(f.consumer);
      REQUIRE(got.size() == 1);
      CHECK(got[0].value == "after");
    }
  }

  TEST_CASE("refused_too_large_append_loses_nothing_and_offsets_continue") {
    Fixture f(untimed(small_ring()));
    append_numbered(f.producer, 10, 50);
    REQUIRE(f.producer.append(std::string(5000, 'x')).code() == Errc::record_too_large);
    CHECK(f.producer.next_offset() == 10);
    for (std::uint64_t i = 10; i < 20; ++i) CHECK(f.producer.append(value_for(i, 50)).value() == i);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 20);
    for (std::uint64_t i = 0; i < 20; ++i) {
      CHECK(got[i].offset == i);
      CHECK(got[i].value == value_for(i, 50));
    }
  }

  TEST_CASE("record_with_more_than_65535_headers_is_refused_naming_the_limit") {
    TopicOptions big = small_ring();
    big.segment_bytes = std::size_t{1} << 20; // room for 70000 empty headers: the count is what is refused
    Fixture f(big);
    const std::vector<Header> headers(ringbus::limits::max_headers + 1, Header{"", ""});
    const Message m{"", "v", ringbus::timestamp_now, headers};
    auto single = f.producer.append(m);
    CHECK(single.code() == Errc::invalid_argument);
    CHECK(contains(single.message(), "65536"));
    CHECK(contains(single.message(), "65535"));
    auto batch = f.producer.append_batch(std::span<const Message>(&m, 1));
    CHECK(batch.code() == Errc::invalid_argument);
    CHECK(contains(batch.message(), "65536"));
    CHECK(contains(batch.message(), "65535"));
    CHECK(f.producer.next_offset() == 0);
  }

  // --- block policy: would_block ------------------------------------------------------

  TEST_CASE("try_append_says_would_block_while_an_unread_consumer_holds_a_full_ring") {
    Fixture f;
    append_numbered(f.producer, 2 * records_per_small_segment); // exactly fills both segments
    auto refused = f.producer.try_append(value_for(128, even_value_bytes));
    CHECK(refused.code() == Errc::would_block);
    CHECK(refused.message() == "would_block"); // steady-state refusal: no message is built
    CHECK(f.producer.try_append("k", "v").code() == Errc::would_block);
    CHECK(f.producer.try_append(msg("k", "v")).code() == Errc::would_block);
    CHECK(f.producer.next_offset() == 128);
  }

  TEST_CASE("try_append_succeeds_after_the_consumer_polls_twice") {
    Fixture f;
    append_numbered(f.producer, 2 * records_per_small_segment);
    REQUIRE(f.producer.try_append("x").code() == Errc::would_block);

    auto first = f.consumer.poll();
    REQUIRE(first.ok());
    REQUIRE(first->size() == 128);
    // The first poll's views are still in use: they hold the ring until the next poll.
    CHECK(f.producer.try_append("x").code() == Errc::would_block);
    std::uint64_t expected = 0;
    for (const Record& r : *first) {
      CHECK(r.offset == expected);
      CHECK(str(r.value) == value_for(expected, even_value_bytes));
      ++expected;
    }

    auto second = f.consumer.poll();
    REQUIRE(second.ok());
    CHECK(second->empty());
    CHECK(f.producer.try_append(value_for(128, even_value_bytes)).value() == 128);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 1);
    CHECK(got[0].offset == 128);
    CHECK(got[0].value == value_for(128, even_value_bytes));
  }

  TEST_CASE("refused_try_append_leaves_the_held_range_unchanged") {
    Fixture f;
    append_numbered(f.producer, 2 * records_per_small_segment);
    REQUIRE(f.producer.try_append("x").code() == Errc::would_block);
    // Nothing was overwritten: record 0 is still held, for old and new consumers alike.
    CHECK(f.bus.describe("t")->oldest_offset == 0);
    auto late = f.bus.consumer("t", ringbus::StartPosition::earliest);
    REQUIRE(late.ok());
    CHECK(late->position("t").value() == 0);
    const std::vector<OwnedRecord> got = poll_once(*late);
    REQUIRE_FALSE(got.empty());
    CHECK(got.front().offset == 0);
  }

  TEST_CASE("producer_without_consumers_never_blocks") {
    Fixture f;
    REQUIRE(f.consumer.close().ok());
    for (std::uint64_t i = 0; i < 20 * records_per_small_segment; ++i) {
      REQUIRE(f.producer.try_append(value_for(i, even_value_bytes)).value() == i);
    }
    // The last record filled segment 19 exactly: the ring holds segments 18 and 19.
    auto info = f.bus.describe("t");
    CHECK(info->end_offset == 20 * records_per_small_segment);
    CHECK(info->oldest_offset == 18 * records_per_small_segment);
  }

  // --- overwrite policy -------------------------------------------------------------------

  TEST_CASE("overwrite_producer_never_says_would_block") {
    Fixture f(small_ring(2, OverflowPolicy::overwrite)); // its consumer never polls
    for (std::uint64_t i = 0; i < 10 * records_per_small_segment; ++i) {
      auto r = f.producer.try_append(value_for(i, even_value_bytes));
      REQUIRE_MESSAGE(r.ok(), r.message());
      CHECK(*r == i);
    }
    const std::array<std::uint64_t, 200> many{};
    CHECK(f.producer.try_append_values(std::span<const std::uint64_t>(many)).ok());
    CHECK(f.producer.try_claim(100).ok());
  }

  // --- frames never straddle a segment end -----------------------------------------------

  TEST_CASE("records_never_straddle_a_segment_end_across_many_laps") {
    for (std::size_t segments : {std::size_t{2}, std::size_t{4}}) {
      CAPTURE(segments);
      Fixture f(small_ring(segments));
      const std::size_t max_value = f.producer.max_value_bytes();
      // Sizes chosen so frames rarely fill a segment exactly: pad frames of many lengths.
      const std::array<std::size_t, 13> sizes{0, 1, 7, 8, 9, 100, 255, 1000, 2047, 3000, max_value, 13, 4000};
      const std::array<Header, 2> headers{Header{"n", "1"}, Header{"trace", "abcdef"}};
      std::vector<OwnedRecord> expected;
      std::vector<OwnedRecord> got;
      std::uint64_t ring_bytes_written = 0;

      const auto take = [&] {
        for (;;) {
          auto records = f.consumer.poll();
          REQUIRE(records.ok());
          if (records->empty()) return;
          for (const Record& r : *records) {
            CHECK(ringbus::test::within_one_block(r.value.data(), r.value.size(), 4096));
            CHECK(ringbus::test::within_one_block(r.key.data(), r.key.size(), 4096));
            got.push_back(ringbus::test::own(r));
          }
        }
      };

      for (std::uint64_t i = 0; i < 1500; ++i) {
        const bool keyed = i % 3 == 1;
        const bool with_headers = i % 5 == 0;
        // A key or headers take room too: those records stay below a segment.
        const std::size_t size =
            keyed || with_headers ? std::min<std::size_t>(sizes[i % sizes.size()], 3000) : sizes[i % sizes.size()];
        const std::string key = keyed ? ringbus::test::key_for(i) : std::string();
        const std::string value = value_for(i, size);
        Message m = msg(key, value, static_cast<std::int64_t>(i * 1000 + 7));
        if (with_headers) m.headers = headers;
        OwnedRecord e{"t", i, m.timestamp_ns, key, value, {}};
        if (with_headers) e.headers = {{"n", "1"}, {"trace", "abcdef"}};
        expected.push_back(e);
        ring_bytes_written += ringbus::test::packed_frame_bytes(size);
        auto r = f.producer.try_append(m);
        if (r.code() == Errc::would_block) {
          take();
          r = f.producer.try_append(m);
        }
        REQUIRE_MESSAGE(r.ok(), r.message());
        REQUIRE(*r == i);
      }
      take();
      CHECK(ring_bytes_written > 20 * 4096 * segments); // many laps
      REQUIRE(got.size() == expected.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CHECK(got[i] == expected[i]);
      }
    }
  }

  // --- batches --------------------------------------------------------------------------

  TEST_CASE("append_batch_publishes_every_message_with_dense_offsets") {
    Fixture f(untimed(small_ring(4)));
    REQUIRE(f.producer.append("before").ok());
    std::vector<std::string> values;
    for (int i = 0; i < 30; ++i) values.push_back(value_for(static_cast<std::uint64_t>(i), 20 + i));
    std::vector<Message> batch;
    for (const std::string& v : values) batch.push_back(msg("", v));
    CHECK(f.producer.append_batch(batch).value() == 1);
    CHECK(f.producer.next_offset() == 31);
    CHECK(f.producer.try_append_batch(batch).value() == 31);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 61);
    for (std::size_t i = 0; i < 60; ++i) {
      CHECK(got[i + 1].offset == i + 1);
      CHECK(got[i + 1].value == values[i % 30]);
    }
  }

  TEST_CASE("append_batch_mixing_keys_headers_and_timestamps_reads_back_exactly") {
    Fixture f(untimed(small_ring(4)));
    const std::array<Header, 2> h{Header{"trace", "abc"}, Header{"empty", ""}};
    const std::string long_value(300, 'z');
    const std::vector<Message> batch{
        msg("", "plain"),                             // value only, time taken at append (0 here)
        msg("k1", "v1", 100),                         // key and timestamp
        msg("", "", 5, h),                            // headers only
        msg("k3", "", ringbus::timestamp_now),        // key only
        msg("", "negative time", -42),                //
        msg("k5", long_value, 1'700'000'000'000'000), // large timestamp delta
        msg("k6", "same", 100, h),                    //
    };
    CHECK(f.producer.append_batch(batch).value() == 0);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    const std::vector<std::pair<std::string, std::string>> hv{{"trace", "abc"}, {"empty", ""}};
    const std::vector<OwnedRecord> expected{
        {"t", 0, 0, "", "plain", {}},
        {"t", 1, 100, "k1", "v1", {}},
        {"t", 2, 5, "", "", hv},
        {"t", 3, 0, "k3", "", {}},
        {"t", 4, -42, "", "negative time", {}},
        {"t", 5, 1'700'000'000'000'000, "k5", long_value, {}},
        {"t", 6, 100, "k6", "same", hv},
    };
    CHECK(got == expected);
  }

  TEST_CASE("batch_keeps_extreme_timestamps_exactly") {
    Fixture f(untimed(small_ring(4)));
    const std::array<std::int64_t, 5> stamps{INT64_MAX, INT64_MIN + 1, 0, -1, INT64_MAX - 1};
    std::vector<Message> batch;
    for (std::int64_t ts : stamps) batch.push_back(msg("k", "v", ts));
    REQUIRE(f.producer.append_batch(batch).ok());
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == stamps.size());
    for (std::size_t i = 0; i < stamps.size(); ++i) CHECK(got[i].timestamp_ns == stamps[i]);
  }

  TEST_CASE("batch_takes_one_wall_clock_time_for_messages_without_one") {
    Fixture f;
    const std::int64_t before = wall_now();
    const std::vector<Message> batch{msg("a", "1"), msg("b", "2"), msg("c", "3", 5)};
    REQUIRE(f.producer.append_batch(batch).ok());
    const std::int64_t after = wall_now();
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 3);
    CHECK(got[0].timestamp_ns >= before);
    CHECK(got[0].timestamp_ns <= after);
    CHECK(got[1].timestamp_ns == got[0].timestamp_ns);
    CHECK(got[2].timestamp_ns == 5);
  }

  TEST_CASE("batch_of_equal_size_values_reads_back_whole") {
    // No keys, no headers, one size, one time: the packed form.
    Fixture f(untimed(small_ring(4)));
    std::vector<std::string> values;
    for (std::uint64_t i = 0; i < 100; ++i) values.push_back(value_for(i, 24));
    std::vector<Message> batch;
    for (const std::string& v : values) batch.push_back(msg("", v, 3));
    CHECK(f.producer.append_batch(batch).value() == 0);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 100);
    for (std::size_t i = 0; i < 100; ++i) {
      CHECK(got[i].offset == i);
      CHECK(got[i].value == values[i]);
      CHECK(got[i].timestamp_ns == 3);
    }
  }

  TEST_CASE("batch_spanning_a_segment_end_is_split_into_frames_and_reads_back_whole") {
    Fixture f(untimed(small_ring(4)));
    append_numbered(f.producer, 60); // 3840 of 4096 bytes: the batch cannot fit the rest
    std::vector<std::string> keys;
    std::vector<std::string> values;
    std::vector<Message> batch;
    for (std::uint64_t i = 0; i < 40; ++i) keys.push_back(ringbus::test::key_for(60 + i));
    for (std::uint64_t i = 0; i < 40; ++i) values.push_back(value_for(60 + i, 40 + i % 7));
    for (std::uint64_t i = 0; i < 40; ++i) batch.push_back(msg(keys[i], values[i]));
    CHECK(f.producer.append_batch(batch).value() == 60);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 100);
    for (std::uint64_t i = 0; i < 40; ++i) {
      CHECK(got[60 + i].offset == 60 + i);
      CHECK(got[60 + i].key == ringbus::test::key_for(60 + i));
      CHECK(got[60 + i].value == values[i]);
    }
  }

  TEST_CASE("batch_accepts_every_record_that_append_accepts") {
    Fixture f(untimed(small_ring(8))); // a batch limit (14336 bytes) well above one segment
    const std::string largest_value(f.producer.max_value_bytes(), 'v'); // packed: exactly one segment
    const std::string keyed_value(4056, 'w'); // general form, key "k": exactly one segment too
    REQUIRE(f.producer.append(largest_value).ok());
    REQUIRE(f.producer.append("k", keyed_value).ok());
    const std::array<Message, 1> packed{msg("", largest_value)};
    const std::array<Message, 1> keyed{msg("k", keyed_value)};
    auto a = f.producer.append_batch(packed);
    CHECK_MESSAGE(a.ok(), a.message());
    auto b = f.producer.append_batch(keyed);
    CHECK_MESSAGE(b.ok(), b.message());
  }

  TEST_CASE("empty_batch_is_refused_with_invalid_argument") {
    Fixture f;
    auto r = f.producer.append_batch({});
    CHECK(r.code() == Errc::invalid_argument);
    CHECK(contains(r.message(), "no messages"));
    CHECK(f.producer.try_append_batch({}).code() == Errc::invalid_argument);
  }

  TEST_CASE("batch_holding_a_record_larger_than_a_segment_is_refused_whole") {
    Fixture f(untimed(small_ring(4)));
    const std::string huge(5000, 'x');
    const std::vector<Message> batch{msg("", "a"), msg("k", huge), msg("", "c")};
    auto r = f.producer.append_batch(batch);
    CHECK(r.code() == Errc::record_too_large);
    CHECK(contains(r.message(), "value 5000 B"));
    CHECK(contains(r.message(), "4096"));
    CHECK(f.producer.next_offset() == 0);
    CHECK(f.producer.append("after").value() == 0);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 1);
    CHECK(got[0].value == "after");
  }

  TEST_CASE("batch_above_the_batch_limit_is_refused_naming_the_limit") {
    Fixture f; // 2 x 4 KiB: the limit is (8192 - 4096) / 2
    CHECK(f.producer.batch_limit_bytes() == 2048);
    std::vector<std::string> values(100, std::string(32, 'v'));
    std::vector<Message> batch;
    for (const std::string& v : values) batch.push_back(msg("", v));
    auto r = f.producer.append_batch(batch);
    CHECK(r.code() == Errc::record_too_large);
    CHECK(contains(r.message(), "2048"));
    CHECK(contains(r.message(), "'t'"));
    CHECK(f.producer.next_offset() == 0);
  }

  TEST_CASE("refused_batch_leaves_nothing_behind_and_the_retry_gets_the_same_offsets") {
    Fixture f(untimed(small_ring(4)));
    // Three full segments and 40 records of the fourth: 1536 bytes left before
    // the ring is full, and the consumer has read nothing.
    append_numbered(f.producer, 3 * records_per_small_segment + 40);
    const std::uint64_t first = f.producer.next_offset();
    std::vector<std::string> values;
    std::vector<Message> batch;
    for (std::uint64_t i = 0; i < 40; ++i) values.push_back(value_for(1000 + i, 40));
    for (std::uint64_t i = 0; i < 40; ++i) batch.push_back(msg("k", values[i]));
    REQUIRE(ringbus::detail::record_body_bytes(batch[0], 0) * batch.size() > 1536); // must cross into a lap

    CHECK(f.producer.try_append_batch(batch).code() == Errc::would_block);
    CHECK(f.producer.next_offset() == first);

    // A single record still fits; it takes the batch's first offset, and nothing
    // of the refused batch shows up around it.
    CHECK(f.producer.try_append("single").value() == first);
    std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == first + 1);
    for (std::uint64_t i = 0; i < first; ++i) CHECK(got[i].value == value_for(i, even_value_bytes));
    CHECK(got.back().offset == first);
    CHECK(got.back().value == "single");

    CHECK(f.producer.try_append_batch(batch).value() == first + 1);
    got = drain(f.consumer);
    REQUIRE(got.size() == 40);
    for (std::uint64_t i = 0; i < 40; ++i) {
      CHECK(got[i].offset == first + 1 + i);
      CHECK(got[i].key == "k");
      CHECK(got[i].value == values[i]);
    }
  }

  // A batch that rolls through several segments and is refused at a later
  // one must not have taken the earlier ones from the oldest records.
  TEST_CASE("batch_refused_after_rolling_through_free_segments_keeps_the_oldest_records") {
    Fixture f(untimed(small_ring(8))); // 8 x 4 KiB, 64 records of 64-byte frames a segment
    append_numbered(f.producer, 7 * records_per_small_segment + 32);
    // The consumer releases segments 0 and 1 and stops in segment 2.
    std::uint64_t read = 0;
    while (read < 2 * records_per_small_segment + 8) {
      Result<Records> r = f.consumer.poll(2 * records_per_small_segment + 8 - read);
      REQUIRE(r.ok());
      read += r->size();
    }
    REQUIRE(f.consumer.poll(0).ok());
    REQUIRE(f.bus.describe("t")->oldest_offset == 0);
    // The rest of segment 7, then 8 and 9 (slots 0 and 1, released), then 10 (slot 2, held).
    const std::vector<std::uint64_t> values((2016 + 4064 + 4064 + 512) / 8, 1);
    REQUIRE(values.size() * 8 <= f.producer.batch_limit_bytes());
    CHECK(f.producer.try_append_values(std::span<const std::uint64_t>(values)).code() == Errc::would_block);
    CHECK(f.bus.describe("t")->oldest_offset == 0);
    Consumer late = f.bus.consumer("t").value();
    CHECK(late.position("t").value() == 0);
    const std::vector<OwnedRecord> got = drain(late);
    REQUIRE(got.size() == 7 * records_per_small_segment + 32);
    for (std::uint64_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i].offset == i);
      CHECK(got[i].value == value_for(i, even_value_bytes));
    }
  }

  // The limit is one every layout fits: here 256 small segments, values of
  // just over half a segment (one a segment, the rest of it padding) and a
  // batch that cannot start in the writer's segment.
  TEST_CASE("batch_at_the_limit_fits_a_ring_of_many_small_segments_whatever_its_layout") {
    Fixture f(untimed(small_ring(256))); // 256 x 4 KiB
    const std::size_t limit = f.producer.batch_limit_bytes();
    CHECK(limit == 256 / 2 * (4096 - 32));                   // under (C - S) / 2 = 522240
    REQUIRE(f.producer.append(std::string(2100, 'a')).ok()); // 1960 bytes left in segment 0
    REQUIRE(drain(f.consumer).size() == 1);
    REQUIRE(f.consumer.poll(0).ok());
    const std::size_t value_bytes = 2033; // (4096 - 32) / 2 + 1: one a segment
    const std::size_t fitting = limit / value_bytes;
    std::vector<std::byte> values((fitting + 1) * value_bytes, std::byte{7});
    const auto over = f.producer.try_append_values(values.data(), value_bytes, fitting + 1);
    CHECK(over.code() == Errc::record_too_large);
    CHECK(contains(over.message(), std::to_string(limit)));
    CHECK(f.producer.try_append_values(values.data(), value_bytes, fitting).value() == 1);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == fitting);
    for (std::uint64_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i].offset == 1 + i);
      CHECK(got[i].value == std::string(value_bytes, '\x07'));
    }
  }

  // --- packed values -----------------------------------------------------------------

  TEST_CASE("append_values_publishes_one_record_per_value") {
    Fixture f(untimed(small_ring(4)));
    std::vector<Tick> ticks;
    for (std::uint32_t i = 0; i < 300; ++i) ticks.push_back(Tick{1000 - i, i * 3, i}); // spans two segments
    CHECK(f.producer.append_values(std::span<const Tick>(ticks)).value() == 0);
    CHECK(f.producer.next_offset() == 300);
    auto records = f.consumer.poll();
    REQUIRE(records.ok());
    REQUIRE(records->size() == 300);
    std::uint32_t i = 0;
    for (const Record& r : *records) {
      CHECK(r.offset == i);
      CHECK(r.key.empty());
      CHECK(r.headers.empty());
      CHECK(r.timestamp_ns == 0);
      REQUIRE(r.value.size() == sizeof(Tick));
      REQUIRE(r.value.as<Tick>().has_value());
      const Tick t = *r.value.as<Tick>();
      CHECK(t.price == 1000 - static_cast<std::int64_t>(i));
      CHECK(t.quantity == i * 3);
      CHECK(t.sequence == i);
      ++i;
    }
  }

  TEST_CASE("append_values_takes_one_timestamp_for_all") {
    Fixture f;
    const std::array<std::uint64_t, 4> v{10, 20, 30, 40};
    CHECK(f.producer.append_values(std::span<const std::uint64_t>(v), 777).value() == 0);
    const std::int64_t before = wall_now();
    CHECK(f.producer.try_append_values(std::span<const std::uint64_t>(v)).value() == 4);
    const std::int64_t after = wall_now();
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 8);
    for (std::size_t i = 0; i < 4; ++i) CHECK(got[i].timestamp_ns == 777);
    for (std::size_t i = 4; i < 8; ++i) {
      CHECK(got[i].timestamp_ns >= before);
      CHECK(got[i].timestamp_ns <= after);
      CHECK(got[i].timestamp_ns == got[4].timestamp_ns);
    }
    for (std::size_t i = 0; i < 8; ++i) {
      std::uint64_t value = 0;
      REQUIRE(got[i].value.size() == sizeof value);
      std::memcpy(&value, got[i].value.data(), sizeof value);
      CHECK(value == v[i % 4]);
    }
  }

  TEST_CASE("untyped_append_values_reads_back_odd_sized_values") {
    Fixture f(untimed(small_ring(4)));
    std::string raw;
    for (std::uint64_t i = 0; i < 10; ++i) raw += value_for(i, 12);
    CHECK(f.producer.append_values(raw.data(), 12, 10).value() == 0);
    CHECK(f.producer.append_values(raw.data(), 0, 3).value() == 10); // empty values
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 13);
    for (std::uint64_t i = 0; i < 10; ++i) CHECK(got[i].value == value_for(i, 12));
    for (std::uint64_t i = 10; i < 13; ++i) {
      CHECK(got[i].offset == i);
      CHECK(got[i].value.empty());
    }
  }

  TEST_CASE("append_values_refuses_no_values_too_large_values_and_batches_over_the_limit") {
    Fixture f;
    const std::array<std::uint64_t, 1> one{1};
    auto none = f.producer.append_values(std::span<const std::uint64_t>(one.data(), 0));
    CHECK(none.code() == Errc::invalid_argument);
    CHECK(contains(none.message(), "no values"));

    const std::string big(5000, 'x');
    auto too_large = f.producer.append_values(big.data(), big.size(), 1);
    CHECK(too_large.code() == Errc::record_too_large);
    CHECK(contains(too_large.message(), "5032"));
    CHECK(contains(too_large.message(), "4096"));

    const std::vector<std::uint64_t> many(300, 7); // 2400 bytes > the 2048-byte batch limit
    auto over = f.producer.append_values(std::span<const std::uint64_t>(many));
    CHECK(over.code() == Errc::record_too_large);
    CHECK(contains(over.message(), "2400"));
    CHECK(contains(over.message(), "2048"));
    CHECK(f.producer.next_offset() == 0);
  }

  TEST_CASE("try_append_values_says_would_block_on_a_full_ring_and_leaves_nothing") {
    Fixture f;
    append_numbered(f.producer, 2 * records_per_small_segment - 1); // one 64-byte frame free
    const std::vector<std::uint64_t> values(20, 9);                 // 192 bytes: needs the next lap
    CHECK(f.producer.try_append_values(std::span<const std::uint64_t>(values)).code() == Errc::would_block);
    CHECK(f.producer.next_offset() == 127);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    CHECK(got.size() == 127);
    CHECK(f.producer.try_append_values(std::span<const std::uint64_t>(values)).value() == 127);
  }

  // --- claims -----------------------------------------------------------------------------

  TEST_CASE("claim_commit_publishes_the_bytes_written_in_place") {
    Fixture f(untimed(small_ring()));
    REQUIRE(f.producer.append("first").ok());
    auto claim = f.producer.claim(16);
    REQUIRE(claim.ok());
    CHECK(claim->is_open());
    CHECK(claim->key().empty());
    REQUIRE(claim->value().size() == 16);
    CHECK(claim->count() == 1);
    const std::string payload = value_for(1, 16);
    std::memcpy(claim->value().data(), payload.data(), payload.size());
    CHECK(poll_once(f.consumer).size() == 1); // nothing of the claim is visible before commit
    CHECK(claim->commit().value() == 1);
    CHECK_FALSE(claim->is_open());
    CHECK(f.producer.next_offset() == 2);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 1);
    CHECK(got[0].offset == 1);
    CHECK(got[0].value == payload);
    CHECK(got[0].key.empty());
    CHECK(got[0].timestamp_ns == 0);
  }

  TEST_CASE("claim_with_a_key_publishes_key_and_value") {
    Fixture f(untimed(small_ring()));
    auto claim = f.producer.claim(5, 3);
    REQUIRE(claim.ok());
    REQUIRE(claim->key().size() == 3);
    REQUIRE(claim->value().size() == 5);
    std::memcpy(claim->key().data(), "key", 3);
    std::memcpy(claim->value().data(), "value", 5);
    claim->set_timestamp(4242);
    CHECK(claim->commit().value() == 0);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 1);
    CHECK(got[0].key == "key");
    CHECK(got[0].value == "value");
    CHECK(got[0].timestamp_ns == 4242);
    CHECK(got[0].headers.empty());
  }

  TEST_CASE("claim_of_an_empty_value_publishes_an_empty_record") {
    Fixture f;
    auto claim = f.producer.try_claim(0);
    REQUIRE(claim.ok());
    CHECK(claim->value().empty());
    CHECK(claim->commit().value() == 0);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 1);
    CHECK(got[0].value.empty());
  }

  TEST_CASE("claim_takes_the_wall_clock_time_at_commit_unless_set") {
    Fixture f;
    auto claim = f.producer.claim(1);
    REQUIRE(claim.ok());
    claim->value()[0] = std::byte{'x'};
    const std::int64_t before = wall_now();
    REQUIRE(claim->commit().ok());
    const std::int64_t after = wall_now();
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 1);
    CHECK(got[0].timestamp_ns >= before);
    CHECK(got[0].timestamp_ns <= after);
  }

  TEST_CASE("claim_values_publishes_count_records_of_the_written_values") {
    Fixture f(untimed(small_ring()));
    REQUIRE(f.producer.append("first").ok());
    auto claim = f.producer.claim_values(sizeof(std::uint64_t), 10);
    REQUIRE(claim.ok());
    CHECK(claim->count() == 10);
    std::span<std::uint64_t> values = claim->values<std::uint64_t>();
    REQUIRE(values.size() == 10);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = 100 + i;
    claim->set_timestamp(31);
    CHECK(claim->commit().value() == 1);
    CHECK(f.producer.next_offset() == 11);
    auto records = f.consumer.poll();
    REQUIRE(records.ok());
    REQUIRE(records->size() == 11);
    std::uint64_t offset = 0;
    for (const Record& r : *records) {
      CHECK(r.offset == offset);
      if (offset > 0) {
        CHECK(r.value.as<std::uint64_t>() == std::optional<std::uint64_t>(100 + offset - 1));
        CHECK(r.timestamp_ns == 31);
      }
      ++offset;
    }
  }

  TEST_CASE("aborted_claim_leaves_nothing_and_the_next_append_takes_its_offset") {
    Fixture f;
    REQUIRE(f.producer.append("a").ok());
    auto claim = f.producer.claim(100, 4);
    REQUIRE(claim.ok());
    std::memset(claim->value().data(), 'z', 100);
    claim->abort();
    CHECK_FALSE(claim->is_open());
    CHECK(f.producer.next_offset() == 1);
    CHECK(f.producer.append("b").value() == 1);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 2);
    CHECK(got[0].value == "a");
    CHECK(got[1].value == "b");
    claim->abort(); // twice: harmless
    CHECK(claim->commit().code() == Errc::no_claim);
  }

  // A claim that does not fit the rest of a segment rolls when it is taken:
  // the pad frame closing the segment waits to be published with the next
  // frame. Aborting the claim must not strand it.
  TEST_CASE("aborted_claim_that_rolled_the_segment_leaves_the_log_readable") {
    Fixture f;
    append_numbered(f.producer, records_per_small_segment - 1);
    auto claim = f.producer.claim(1000);
    REQUIRE(claim.ok());
    claim->abort();
    const std::uint64_t next = records_per_small_segment - 1;
    CHECK(f.producer.append(value_for(next, even_value_bytes)).value() == next);
    CHECK(f.producer.append(value_for(next + 1, even_value_bytes)).value() == next + 1);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == next + 2);
    for (std::uint64_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i].offset == i);
      CHECK(got[i].value == value_for(i, even_value_bytes));
    }
  }

  // A refused batch that had rolled into a new segment wrote a frame at its
  // start; records that later end exactly at that start must not lead the
  // consumer into the refused batch's frames.
  TEST_CASE("refused_batch_across_a_segment_start_leaves_no_frame_there") {
    refuse_batch_then_append(small_ring(4), 0xabababababababab, 8); // the 8 end exactly at segment 3's start
  }

  TEST_CASE("destroying_an_open_claim_aborts_it") {
    Fixture f;
    {
      auto claim = f.producer.claim_values(8, 4);
      REQUIRE(claim.ok());
      std::memset(claim->value().data(), 1, claim->value().size());
    }
    CHECK(f.producer.append("after").value() == 0);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 1);
    CHECK(got[0].value == "after");
  }

  TEST_CASE("second_append_or_claim_while_a_claim_is_open_is_refused_with_no_claim") {
    Fixture f;
    auto claim = f.producer.claim(8);
    REQUIRE(claim.ok());
    const std::array<Message, 1> batch{msg("", "b")};
    const std::array<std::uint64_t, 1> values{1};
    auto refused = f.producer.append("x");
    CHECK(refused.code() == Errc::no_claim);
    CHECK(contains(refused.message(), "open claim"));
    CHECK(contains(refused.message(), "'t'"));
    CHECK(f.producer.try_append("x").code() == Errc::no_claim);
    CHECK(f.producer.append("k", "x").code() == Errc::no_claim);
    CHECK(f.producer.append_batch(batch).code() == Errc::no_claim);
    CHECK(f.producer.append_values(std::span<const std::uint64_t>(values)).code() == Errc::no_claim);
    CHECK(f.producer.claim(8).code() == Errc::no_claim);
    CHECK(f.producer.claim_values(8, 2).code() == Errc::no_claim);
    CHECK(f.producer.claim_values_up_to(8, 2).code() == Errc::no_claim);
    std::memset(claim->value().data(), 'c', 8);
    CHECK(claim->commit().value() == 0); // the open claim is unharmed by the refusals
    CHECK(f.producer.append("x").value() == 1);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 2);
    CHECK(got[0].value == "cccccccc");
    CHECK(got[1].value == "x");
  }

  TEST_CASE("committing_twice_or_a_default_claim_says_no_claim") {
    Fixture f;
    auto claim = f.producer.claim(1);
    REQUIRE(claim.ok());
    claim->value()[0] = std::byte{'1'};
    REQUIRE(claim->commit().ok());
    CHECK(claim->commit().code() == Errc::no_claim);
    claim->abort(); // after commit: nothing to undo
    CHECK(f.producer.next_offset() == 1);

    Claim empty;
    CHECK_FALSE(empty.is_open());
    CHECK(empty.key().empty());
    CHECK(empty.value().empty());
    CHECK(empty.count() == 0);
    auto r = empty.commit();
    CHECK(r.code() == Errc::no_claim);
    CHECK(contains(r.message(), "not open"));
  }

  TEST_CASE("claim_sizes_that_would_wrap_size_t_are_refused_and_leave_the_log_as_it_was") {
    Fixture f;
    REQUIRE(f.producer.append("kept").ok());
    // key + value + their encoding would add up to a few bytes modulo 2^64
    for (const auto& [value_bytes, key_bytes] : {std::pair<std::size_t, std::size_t>{SIZE_MAX - 8, 1},
                                                 {1, SIZE_MAX - 8},
                                                 {SIZE_MAX, SIZE_MAX},
                                                 {SIZE_MAX / 2, SIZE_MAX / 2 + 2}}) {
      CAPTURE(value_bytes);
      CAPTURE(key_bytes);
      Result<Claim> c = f.producer.claim(value_bytes, key_bytes);
      CHECK(c.code() == Errc::record_too_large);
      CHECK(contains(c.message(), "does not fit a segment"));
      CHECK(contains(c.message(), "4096"));
    }
    // A packed claim (no key) whose header + value wraps: the size it names is "more than", not the wrapped sum.
    for (const std::size_t value_bytes : {SIZE_MAX - 8, SIZE_MAX - 31, SIZE_MAX / 2}) {
      CAPTURE(value_bytes);
      Result<Claim> c = f.producer.claim(value_bytes);
      CHECK(c.code() == Errc::record_too_large);
      CHECK(contains(c.message(), "claim of more than " + std::to_string(SIZE_MAX / 4) + " bytes"));
      CHECK(contains(c.message(), std::to_string(value_bytes) + " B values"));
    }
    CHECK(f.producer.next_offset() == 1);
    Result<Claim> fits = f.producer.claim(2, 1);
    REQUIRE(fits.ok());
    fits->key()[0] = std::byte{'k'};
    fits->value()[0] = std::byte{'v'};
    fits->value()[1] = std::byte{'w'};
    REQUIRE(fits->commit().ok());
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 2);
    CHECK(got[0].value == "kept");
    CHECK(got[1].key == "k");
    CHECK(got[1].value == "vw");
  }

  TEST_CASE("moved_claim_commits_once_from_its_new_owner") {
    Fixture f;
    auto result = f.producer.claim(3);
    REQUIRE(result.ok());
    Claim moved(std::move(*result));
    CHECK_FALSE(result->is_open());
    CHECK(moved.is_open());
    std::memcpy(moved.value().data(), "abc", 3);
    Claim assigned;
    assigned = std::move(moved);
    CHECK_FALSE(moved.is_open()); // NOLINT(bugprone-use-after-move): the moved-from state is the point
    CHECK(assigned.commit().value() == 0);
    CHECK(result->commit().code() == Errc::no_claim);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 1);
    CHECK(got[0].value == "abc");
  }

  TEST_CASE("move_assigning_over_an_open_claim_aborts_it") {
    Fixture f;
    auto claim = f.producer.claim(3);
    REQUIRE(claim.ok());
    *claim = Claim{};
    CHECK_FALSE(claim->is_open());
    CHECK(f.producer.append("x").value() == 0);
  }

  TEST_CASE("closing_the_producer_aborts_its_open_claim") {
    Fixture f;
    auto claim = f.producer.claim(4);
    REQUIRE(claim.ok());
    std::memcpy(claim->value().data(), "gone", 4);
    REQUIRE(f.producer.close().ok());
    CHECK_FALSE(claim->is_open());
    CHECK(claim->commit().code() == Errc::no_claim);
    auto next = f.bus.producer("t").value();
    CHECK(next.next_offset() == 0);
    CHECK(next.append("kept").value() == 0);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 1);
    CHECK(got[0].value == "kept");
  }

  TEST_CASE("stale_claim_of_a_closed_producer_cannot_commit_into_the_next_producers_claim") {
    Fixture f;
    auto stale = f.producer.claim(4);
    REQUIRE(stale.ok());
    REQUIRE(f.producer.close().ok());
    auto next = f.bus.producer("t").value();
    auto fresh = next.claim(4);
    REQUIRE(fresh.ok());
    std::memcpy(fresh->value().data(), "new!", 4);
    CHECK(stale->commit().code() == Errc::no_claim);
    stale->abort(); // must not abort the fresh claim either
    CHECK(fresh->is_open());
    CHECK(fresh->commit().value() == 0);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 1);
    CHECK(got[0].value == "new!");
  }

  TEST_CASE("claim_outliving_its_producer_and_bus_is_inert") {
    Claim claim;
    {
      Bus bus;
      REQUIRE(bus.create_topic("t", small_ring()).ok());
      auto p = bus.producer("t").value();
      claim = p.claim(8).value();
    } // the producer (and with it the claim) is closed, and the bus is gone
    CHECK_FALSE(claim.is_open());
    CHECK(claim.commit().code() == Errc::no_claim);
  }

  TEST_CASE("claim_larger_than_a_segment_is_refused_naming_both_sizes") {
    Fixture f;
    auto too_big = f.producer.claim(5000);
    CHECK(too_big.code() == Errc::record_too_large);
    CHECK(contains(too_big.message(), "5032"));
    CHECK(contains(too_big.message(), "4096"));
    CHECK(contains(too_big.message(), "'t'"));

    auto too_many = f.producer.claim_values(8, 600); // 4832 bytes
    CHECK(too_many.code() == Errc::record_too_large);
    CHECK(contains(too_many.message(), "600 x 8"));
    CHECK(contains(too_many.message(), "4096"));
    CHECK(f.producer.try_claim(5000, 10).code() == Errc::record_too_large);

    auto exact = f.producer.claim(f.producer.max_value_bytes()); // exactly one segment
    REQUIRE(exact.ok());
    std::memset(exact->value().data(), 'e', exact->value().size());
    CHECK(exact->commit().value() == 0);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 1);
    CHECK(got[0].value == std::string(f.producer.max_value_bytes(), 'e'));
  }

  TEST_CASE("claim_values_of_zero_values_is_refused") {
    Fixture f;
    auto r = f.producer.claim_values(8, 0);
    CHECK(r.code() == Errc::invalid_argument);
    CHECK(contains(r.message(), "count 0"));
    CHECK(f.producer.try_claim_values(8, 0).code() == Errc::invalid_argument);
  }

  TEST_CASE("try_claim_says_would_block_on_a_full_ring") {
    Fixture f;
    append_numbered(f.producer, 2 * records_per_small_segment);
    CHECK(f.producer.try_claim(8).code() == Errc::would_block);
    CHECK(f.producer.try_claim(8, 2).code() == Errc::would_block);
    CHECK(f.producer.try_claim_values(8, 2).code() == Errc::would_block);
    CHECK(f.producer.try_claim_values_up_to(8, 2).code() == Errc::would_block);
    CHECK(f.producer.try_append("still refused, not no_claim").code() == Errc::would_block);
    drain(f.consumer);
    auto claim = f.producer.try_claim_values(8, 2);
    REQUIRE(claim.ok());
    std::memset(claim->value().data(), 0, 16);
    CHECK(claim->commit().value() == 128);
  }

  TEST_CASE("claim_that_does_not_fit_the_segment_rest_moves_to_the_next_segment") {
    Fixture f(untimed(small_ring(4)));
    append_numbered(f.producer, 60); // 256 bytes left in segment 0
    auto claim = f.producer.claim(1000, 10);
    REQUIRE(claim.ok());
    CHECK(ringbus::test::within_one_block(claim->value().data(), 1000, 4096));
    std::memcpy(claim->key().data(), "0123456789", 10);
    std::memset(claim->value().data(), 'q', 1000);
    CHECK(claim->commit().value() == 60);
    CHECK(f.producer.append("after").value() == 61);
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 62);
    CHECK(got[60].key == "0123456789");
    CHECK(got[60].value == std::string(1000, 'q'));
    CHECK(got[61].value == "after");
  }

  // --- handle state --------------------------------------------------------------------------

  TEST_CASE("producer_reports_its_topic_next_offset_and_limits") {
    Fixture f(small_ring(4));
    CHECK(f.producer.is_open());
    CHECK(f.producer.topic() == "t");
    CHECK(f.producer.next_offset() == 0);
    CHECK(f.producer.max_value_bytes() == 4096 - 32);
    CHECK(f.producer.batch_limit_bytes() == (4 * 4096 - 4096) / 2);
    REQUIRE(f.producer.close().ok());
    CHECK_FALSE(f.producer.is_open());
    CHECK(f.producer.topic().empty());
    CHECK(f.producer.next_offset() == 0);
    CHECK(f.producer.max_value_bytes() == 0);
    CHECK(f.producer.batch_limit_bytes() == 0);
  }

  TEST_CASE("closed_or_default_producer_says_closed_to_every_call") {
    Producer never_opened;
    Fixture f;
    REQUIRE(f.producer.close().ok());
    for (Producer* p : {&never_opened, &f.producer}) {
      const std::array<Message, 1> batch{msg("", "b")};
      const std::array<std::uint64_t, 1> values{1};
      CHECK_FALSE(p->is_open());
      CHECK(p->append("x").code() == Errc::closed);
      CHECK(p->append("k", "x").code() == Errc::closed);
      CHECK(p->try_append(msg("k", "x")).code() == Errc::closed);
      CHECK(p->append_batch(batch).code() == Errc::closed);
      CHECK(p->append_values(std::span<const std::uint64_t>(values)).code() == Errc::closed);
      CHECK(p->claim(1).code() == Errc::closed);
      CHECK(p->claim_values(8, 1).code() == Errc::closed);
      CHECK(p->claim_values_up_to(8, 1).code() == Errc::closed);
      auto again = p->close();
      CHECK(again.code() == Errc::closed);
      CHECK(contains(again.message(), "closed"));
    }
  }

  // Last lap's payload sits where this lap's frames will start. Values made of
  // words that look exactly like a published header of the next lap must
  // never be taken for a frame by a reader waiting at the write frontier.
  TEST_CASE("reader_never_takes_old_payload_for_a_new_frame") { never_take_old_payload(false, 400); }

  // TopicOptions::line_aligned_appends: a per-record append's frame runs to
  // the end of its 64-byte line, so the frame after it starts a line. Mixed
  // with batches, claims and keyed records over many laps of a small ring,
  // every record arrives intact and in order, and a replay from the oldest
  // held record reads the same records again.
  TEST_CASE("line_aligned_appends_start_the_frame_after_each_append_on_a_cache_line") {
    TopicOptions o = small_ring(2);
    o.line_aligned_appends = true;
    Fixture f(o);
    std::vector<OwnedRecord> expected;
    bool follows_append = true; // the ring's first frame starts a line
    std::uint64_t checked_lines = 0;
    for (int round = 0; round < 1200; ++round) {
      const std::uint64_t offset = expected.size();
      const std::size_t size = static_cast<std::size_t>(round * 7) % 121;
      std::vector<std::uint64_t> batch;
      switch (round % 5) {
        case 0:
        case 1: { // a value alone: Log::append_direct (or its slow path at a segment's end)
          const std::string value = value_for(offset, size);
          REQUIRE(f.producer.append(value).value() == offset);
          expected.push_back(OwnedRecord{"t", offset, 0, "", value, {}});
          break;
        }
        case 2: { // a keyed record: Producer::append_one
          const std::string key = key_for(offset);
          const std::string value = value_for(offset, size);
          REQUIRE(f.producer.append(msg(key, value)).value() == offset);
          expected.push_back(OwnedRecord{"t", offset, 0, key, value, {}});
          break;
        }
        case 3: { // a batch: 8-byte layout
          batch = {offset * 3, offset * 5, offset * 7};
          REQUIRE(f.producer.append_values(std::span<const std::uint64_t>(batch)).value() == offset);
          for (std::size_t i = 0; i < batch.size(); ++i) {
            std::string value(8, '\0');
            std::memcpy(value.data(), &batch[i], 8);
            expected.push_back(OwnedRecord{"t", offset + i, 0, "", value, {}});
          }
          break;
        }
        default: { // a claim: 8-byte layout
          const std::string value = value_for(offset, size + 1);
          Result<Claim> claim = f.producer.claim(value.size());
          REQUIRE(claim.ok());
          std::memcpy(claim->value().data(), value.data(), value.size());
          REQUIRE(claim->commit().value() == offset);
          expected.push_back(OwnedRecord{"t", offset, 0, "", value, {}});
          break;
        }
      }
      Result<Records> polled = f.consumer.poll();
      REQUIRE(polled.ok());
      std::size_t got = 0;
      for (const Record& r : *polled) {
        REQUIRE(r.offset < expected.size());
        const OwnedRecord& want = expected[r.offset];
        CHECK(r.offset == offset + got);
        CHECK(str(r.key) == want.key);
        CHECK(str(r.value) == want.value);
        ++got;
      }
      CHECK(got == expected.size() - offset);
      // A packed frame's first value starts right after its 32-byte header
      // (every kind but the keyed record of round 5k + 2).
      if (follows_append && round % 5 != 2) {
        const Records::iterator first = polled->begin(); // (the record lives in the iterator)
        CHECK((reinterpret_cast<std::uintptr_t>(first->value.data()) - 32) % 64 == 0);
        ++checked_lines;
      }
      follows_append = round % 5 < 3;
    }
    // Round 0 (the ring start), rounds 5k + 1 (after a value) and 5k + 3 (after a keyed record).
    CHECK(checked_lines == 481);
    // Replay what the ring still holds: the same records again.
    REQUIRE(f.consumer.seek_to_beginning().ok());
    const std::vector<OwnedRecord> replayed = drain(f.consumer);
    REQUIRE_FALSE(replayed.empty());
    CHECK(replayed.back().offset == expected.size() - 1);
    for (const OwnedRecord& r : replayed) {
      CHECK(r.key == expected[r.offset].key);
      CHECK(r.value == expected[r.offset].value);
    }
    // The same, a frame at a time (Records::batches walks frames on its own).
    REQUIRE(f.consumer.seek_to_beginning().ok());
    std::uint64_t next = replayed.front().offset;
    for (;;) {
      Result<Records> again = f.consumer.poll();
      REQUIRE(again.ok());
      if (again->empty()) break;
      for (const ringbus::Batch& b : again->batches()) {
        CHECK(b.first_offset() == next);
        if (b.packed()) {
          const std::string& want = expected[next].value;
          CHECK(b.value_size() == want.size());
        }
        next += b.size();
      }
    }
    CHECK(next == expected.size());
    // And from a time: the first record at or after a held record's timestamp.
    const OwnedRecord& middle = replayed[replayed.size() / 2];
    REQUIRE(f.consumer.seek_to_time("t", middle.timestamp_ns).ok());
    const std::vector<OwnedRecord> from_time = poll_once(f.consumer, 1);
    REQUIRE(from_time.size() == 1);
    CHECK(from_time[0].offset <= middle.offset);
    CHECK(from_time[0].timestamp_ns >= middle.timestamp_ns);
  }

  // In-memory block-policy topics: a batch frame (append_values, claim_values,
  // append_batch) of 1 KiB or more runs to the next 128-byte boundary, so the
  // frame after it starts a line pair; a shorter one keeps the 8-byte layout,
  // as a per-record append does (40 bytes for an 8 B value). Batches of each
  // kind on both sides of 1 KiB, each followed by two appends, over many laps
  // of a small ring: every record arrives intact and in order, and the frames
  // lie where the layout says.
  TEST_CASE("batch_frames_of_1_KiB_or_more_end_on_a_128_byte_boundary") {
    Fixture f(small_ring(4)); // batches up to 6 KiB
    constexpr std::size_t counts[] = {1, 3, 9, 123, 124, 125, 140, 200};
    std::uint64_t next = 0;
    std::uint64_t paired = 0;
    std::uint64_t dense_batches = 0;
    std::uint64_t dense = 0;
    const int rounds = 1200;
    for (int round = 0; round < rounds; ++round) {
      const std::uint64_t first = next;
      const std::size_t n = counts[static_cast<std::size_t>(round / 3) % std::size(counts)];
      // append_batch: keyed (the general form) and unkeyed (packed) in turn,
      // a whole cycle of counts each.
      const bool keyed = round % 3 == 2 && (round / 24) % 2 == 0;
      std::vector<std::uint64_t> values(n);
      for (std::size_t i = 0; i < n; ++i) values[i] = (first + i) * 0x9e3779b97f4a7c15ULL;
      std::vector<std::string> keys;
      std::vector<std::string> payloads;
      std::vector<Message> messages;
      if (round % 3 == 0) {
        REQUIRE(f.producer.append_values(std::span<const std::uint64_t>(values)).value() == first);
      } else if (round % 3 == 1) {
        Result<Claim> claim = f.producer.claim_values(8, n);
        REQUIRE(claim.ok());
        std::memcpy(claim->value().data(), values.data(), n * 8);
        REQUIRE(claim->commit().value() == first);
      } else {
        for (std::size_t i = 0; i < n; ++i) {
          keys.push_back(keyed ? key_for(first + i) : std::string());
          payloads.emplace_back(reinterpret_cast<const char*>(&values[i]), 8);
        }
        for (std::size_t i = 0; i < n; ++i) messages.push_back(msg(keys[i], payloads[i]));
        REQUIRE(f.producer.append_batch(messages).value() == first);
      }
      const std::uint64_t marks[2] = {first + n, ~(first + n)};
      REQUIRE(f.producer.append(ringbus::bytes_of(marks[0])).value() == first + n);
      REQUIRE(f.producer.append(ringbus::bytes_of(marks[1])).value() == first + n + 1);
      next = first + n + 2;

      Result<Records> polled = f.consumer.poll();
      REQUIRE(polled.ok());
      REQUIRE(polled->size() == n + 2);
      std::uintptr_t batch_frame = 0;
      std::size_t batch_length = 0;
      std::uintptr_t after_batch = 0;
      std::uintptr_t after_append = 0;
      std::size_t i = 0;
      for (const Record& r : *polled) {
        CHECK(r.offset == first + i);
        if (i < n) {
          CHECK(str(r.key) == (keyed ? key_for(first + i) : std::string()));
          CHECK(str(r.value) == std::string(reinterpret_cast<const char*>(&values[i]), 8));
          if (i == 0 && !keyed) batch_frame = frame_at(r);
          if (i == 0) batch_length = keyed ? 0 : 32 + 8 * n;
        } else {
          CHECK(str(r.value) == std::string(reinterpret_cast<const char*>(&marks[i - n]), 8));
          (i == n ? after_batch : after_append) = frame_at(r);
        }
        ++i;
      }
      // Where the batch went into one frame (append_values and append_batch
      // split a batch at a segment's end), the frame after it: at a 128-byte
      // boundary after one of 1 KiB or more (a keyed record of 8 B takes more
      // than 8 bytes: past 1 KiB from 124 records on too), else right after it.
      const bool one_frame = polled->batches().begin()->size() == n;
      if (one_frame && n >= 124) {
        CHECK(after_batch % 128 == 0);
        ++paired;
      } else if (one_frame && !keyed && after_batch % ringbus::test::small_segment_bytes != 0) {
        CHECK(after_batch - batch_frame == batch_length); // 8-aligned already
        ++dense_batches;
      }
      // 40 bytes on, unless the second append rolled to the next segment.
      if (after_append % ringbus::test::small_segment_bytes != 0) {
        CHECK(after_append - after_batch == 40);
        ++dense;
      }
    }
    // Most rounds were checked (the rest split or rolled at a segment's end).
    INFO("paired ", paired, ", dense batches ", dense_batches, ", dense appends ", dense);
    CHECK(paired > rounds / 4);
    CHECK(dense_batches > rounds / 4);
    CHECK(dense > rounds * 9 / 10);
  }

  // Segment files keep the 8-byte layout recovery reads: batch frames of
  // 1 KiB or more are not padded there, and a bus opened again on the
  // directory reads every record back. (Overwrite topics pad none either; their
  // readers read validated copies, whose addresses say nothing of the ring's.)
  TEST_CASE("batch_frames_keep_the_8_byte_layout_in_segment_files") {
    ringbus::test::TempBusDir dir;
    std::vector<std::uint64_t> values(200);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = i * 3 + 1;
    const std::uint64_t mark = 4;
    const auto value_of = [](std::uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); };
    {
      Result<Bus> bus = Bus::open(dir.path(), ringbus::test::no_flusher());
      REQUIRE(bus.ok());
      REQUIRE(bus->create_topic("t", ringbus::test::persistent_small_ring(2)).ok());
      Consumer consumer = bus->consumer("t").value();
      Producer producer = bus->producer("t").value();
      // 32 + 1600 = 1632 bytes each, 8-aligned already: [0, 1632), [1632, 3264).
      REQUIRE(producer.append_values(std::span<const std::uint64_t>(values)).value() == 0);
      Result<Claim> claim = producer.claim_values(8, values.size());
      REQUIRE(claim.ok());
      std::memcpy(claim->value().data(), values.data(), values.size() * 8);
      REQUIRE(claim->commit().value() == 200);
      REQUIRE(producer.append(ringbus::bytes_of(mark)).value() == 400); // [3264, 3304)
      Result<Records> polled = consumer.poll();
      REQUIRE(polled.ok());
      REQUIRE(polled->size() == 401);
      std::uintptr_t frames[3] = {};
      for (const Record& r : *polled) {
        if (r.offset % 200 == 0) frames[r.offset / 200] = frame_at(r);
      }
      CHECK(frames[1] - frames[0] == 1632);
      CHECK(frames[2] - frames[1] == 1632);
    }
    Result<Bus> again = Bus::open(dir.path(), ringbus::test::no_flusher());
    REQUIRE(again.ok());
    Consumer consumer = again->consumer("t").value();
    const std::vector<OwnedRecord> got = drain(consumer);
    REQUIRE(got.size() == 401);
    for (std::size_t i = 0; i < 400; ++i) CHECK(got[i].value == value_of(values[i % 200]));
    CHECK(got[400].value == value_of(mark));
  }

  // claim_values_up_to in an in-memory block-policy topic: the frame ends on
  // a 128-byte boundary with no padding, dropping the fewest values that
  // does (fewer than a pair's worth), wherever the writer stands: per-record
  // appends before it (40 bytes each) move the frame's start off the pair.
  // Where the whole frame would not fit the rest of a segment, it fills that
  // rest exactly instead (1 KiB or more of it). A frame under 1 KiB keeps
  // every value asked, and so does one that no shorter frame of 1 KiB or more
  // ends on a pair (it runs to the pair, padded, as claim_values does). Over
  // many laps of a small ring, every record arrives intact and in order.
  TEST_CASE("claim_values_up_to_ends_its_frame_on_a_line_pair_with_no_padding") {
    Fixture f(small_ring(4));
    constexpr std::size_t maxima[] = {256, 300, 500, 130, 100, 127};
    const int rounds = 720;
    struct {
      std::uint64_t trimmed = 0, segment_rest = 0, padded = 0, whole = 0; // rounds of each case below
    } seen;
    std::uint64_t next = 0;
    for (int round = 0; round < rounds; ++round) {
      const std::size_t before = static_cast<std::size_t>(round) % 4;
      for (std::size_t i = 0; i < before; ++i, ++next) {
        REQUIRE(f.producer.append(ringbus::bytes_of(next)).value() == next);
      }
      const std::size_t most = maxima[static_cast<std::size_t>(round / 4) % std::size(maxima)];
      Result<Claim> claim = f.producer.claim_values_up_to(8, most);
      REQUIRE(claim.ok());
      const std::size_t n = claim->count();
      REQUIRE(claim->values<std::uint64_t>().size() == n);
      const std::uint64_t first = next;
      for (std::size_t i = 0; i < n; ++i) claim->values<std::uint64_t>()[i] = (first + i) * 0x9e3779b97f4a7c15ULL;
      REQUIRE(claim->commit().value() == first);
      const std::uint64_t mark = ~first;
      REQUIRE(f.producer.append(ringbus::bytes_of(mark)).value() == first + n);
      next = first + n + 1;

      Result<Records> polled = f.consumer.poll();
      REQUIRE(polled.ok());
      REQUIRE(polled->size() == before + n + 1);
      std::uintptr_t batch_frame = 0;
      std::uintptr_t mark_frame = 0;
      std::uint64_t offset = first - before;
      for (const Record& r : *polled) {
        CAPTURE(offset);
        REQUIRE(r.offset == offset);
        std::uint64_t want = offset;
        if (offset >= first && offset < first + n) want = offset * 0x9e3779b97f4a7c15ULL;
        if (offset == first + n) want = mark;
        CHECK(r.value.as<std::uint64_t>() == std::optional<std::uint64_t>(want));
        if (offset == first) batch_frame = frame_at(r);
        if (offset == first + n) mark_frame = frame_at(r);
        ++offset;
      }
      REQUIRE(f.consumer.poll()->size() == 0); // lets go of the round: the next never waits for room
      CAPTURE(most);
      CAPTURE(n);
      constexpr std::uintptr_t segment = ringbus::test::small_segment_bytes;
      const std::uintptr_t end = batch_frame + 32 + 8 * n;
      const std::uintptr_t segment_end = (batch_frame / segment + 1) * segment; // of the frame's segment
      // Where the mark is, unless it went on to the next segment (or the frame reached the end).
      const auto mark_is_at = [&](std::uintptr_t where) {
        if (mark_frame % segment != 0) CHECK(mark_frame == where);
      };
      if (32 + 8 * most < 1024) {
        CHECK(n == most); // the 8-byte layout: nothing to gain
        mark_is_at((end + 7) & ~std::uintptr_t{7});
        ++seen.whole;
      } else if (n == most) {
        // Not one value less ends a frame of 1 KiB or more on a pair here:
        // the frame runs to the pair, padded, as claim_values does.
        if (end % 128 != 0) CHECK(((batch_frame + 32 + 8 * most) & ~std::uintptr_t{127}) - batch_frame < 1024);
        mark_is_at((end + 127) & ~std::uintptr_t{127});
        ++seen.padded;
      } else {
        CHECK(end % 128 == 0);
        CHECK(32 + 8 * n >= 1024);
        mark_is_at(end); // no padding
        if (n > most - 128 / 8) {
          ++seen.trimmed; // the values that spilled into a last pair left out
        } else {
          CHECK(end == segment_end); // the rest of a segment, filled exactly
          ++seen.segment_rest;
        }
      }
    }
    INFO("trimmed ", seen.trimmed, ", segment rest ", seen.segment_rest, ", padded ", seen.padded, ", whole ",
         seen.whole);
    CHECK(seen.trimmed > rounds / 3);
    CHECK(seen.segment_rest > 0);
    CHECK(seen.padded > 0);
    CHECK(seen.whole > rounds / 10);
  }

  // Where batch frames keep the 8-byte layout (overwrite topics, segment
  // files), and where no shorter frame would end exactly on a pair (values
  // whose size does not divide the bytes to it), claim_values_up_to gives
  // every value asked that a segment holds.
  TEST_CASE("claim_values_up_to_gives_every_value_asked_where_no_shorter_frame_ends_on_a_pair") {
    const auto fill_and_read = [](Producer& producer, Consumer& consumer, std::size_t most) {
      for (int round = 0; round < 3; ++round) {
        const std::uint64_t first = producer.next_offset();
        Result<Claim> claim = producer.claim_values_up_to(8, most);
        REQUIRE(claim.ok());
        CHECK(claim->count() == most);
        for (std::size_t i = 0; i < claim->count(); ++i) claim->values<std::uint64_t>()[i] = first + i;
        REQUIRE(claim->commit().value() == first);
        const std::vector<OwnedRecord> got = drain(consumer);
        REQUIRE(got.size() == most);
        for (std::size_t i = 0; i < most; ++i) {
          CHECK(got[i].offset == first + i);
          CHECK(got[i].value == std::string(reinterpret_cast<const char*>(&got[i].offset), 8));
        }
      }
    };
    SUBCASE("overwrite topic") {
      Fixture f(small_ring(4, OverflowPolicy::overwrite));
      fill_and_read(f.producer, f.consumer, 256);
    }
    SUBCASE("values that leave no shorter frame exactly on a pair") {
      // 200 B: 32 + 10 x 200 = 2,032 bytes; to the pair before (1,920) are
      // 1,888 bytes of values, not a whole number of them: all 10, padded to
      // 2,048. 96 B at 2,048: 1,952 bytes, 1,888 to the pair again: all 20,
      // to 4,096. 32 B at 4,096: 1,312 bytes; 1,248 to the pair: 39 of 40.
      Fixture f(small_ring(4));
      const std::size_t sizes[] = {200, 96, 32};
      const std::size_t maxima[] = {10, 20, 40};
      const std::size_t expected[] = {10, 20, 39};
      for (std::size_t k = 0; k < 3; ++k) {
        CAPTURE(sizes[k]);
        const std::uint64_t first = f.producer.next_offset();
        Result<Claim> claim = f.producer.claim_values_up_to(sizes[k], maxima[k]);
        REQUIRE(claim.ok());
        CHECK(claim->count() == expected[k]);
        for (std::size_t i = 0; i < claim->count(); ++i) {
          std::memset(claim->value().data() + i * sizes[k], static_cast<int>(first + i), sizes[k]);
        }
        REQUIRE(claim->commit().value() == first);
        const std::vector<OwnedRecord> got = drain(f.consumer);
        REQUIRE(got.size() == expected[k]);
        for (std::size_t i = 0; i < got.size(); ++i) {
          CHECK(got[i].value == std::string(sizes[k], static_cast<char>(first + i)));
        }
      }
    }
    SUBCASE("segment files") {
      ringbus::test::TempBusDir dir;
      Result<Bus> bus = Bus::open(dir.path(), ringbus::test::no_flusher());
      REQUIRE(bus.ok());
      REQUIRE(bus->create_topic("t", ringbus::test::persistent_small_ring(4)).ok());
      Consumer consumer = bus->consumer("t").value();
      Producer producer = bus->producer("t").value();
      fill_and_read(producer, consumer, 256);
    }
  }

  // A whole segment from its start (508 values of 8 B in 4 KiB); from 40
  // bytes into the next, the rest of it exactly (503), not a pad frame and
  // a roll.
  TEST_CASE("claim_values_up_to_takes_what_one_segment_holds_and_refuses_only_a_value_larger_than_a_segment") {
    Fixture f(small_ring(4));
    const std::size_t claimed[] = {(ringbus::test::small_segment_bytes - 32) / 8,
                                   (ringbus::test::small_segment_bytes - 40 - 32) / 8};
    std::uint64_t next = 0;
    for (const std::size_t expected : claimed) {
      Result<Claim> claim = f.producer.claim_values_up_to(8, 1'000'000);
      REQUIRE(claim.ok());
      CHECK(claim->count() == expected);
      for (std::size_t i = 0; i < claim->count(); ++i) claim->values<std::uint64_t>()[i] = 7 * (next + i);
      REQUIRE(claim->commit().value() == next);
      next += claim->count();
      const std::uint64_t mark = 7 * next;
      REQUIRE(f.producer.append(ringbus::bytes_of(mark)).value() == next); // into the next segment
      ++next;
    }
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == next);
    for (std::uint64_t i = 0; i < got.size(); ++i) {
      const std::uint64_t want = 7 * i;
      CHECK(got[i].value == std::string(reinterpret_cast<const char*>(&want), 8));
    }
    CHECK(f.consumer.position("t").value() == next);

    Result<Claim> too_big = f.producer.claim_values_up_to(5000, 3);
    CHECK(too_big.code() == Errc::record_too_large);
    CHECK(contains(too_big.message(), "5032"));
    CHECK(contains(too_big.message(), "4096"));
    CHECK(contains(too_big.message(), "'t'"));
    CHECK(f.producer.try_claim_values_up_to(5000, 1).code() == Errc::record_too_large);

    Result<Claim> none = f.producer.claim_values_up_to(8, 0);
    CHECK(none.code() == Errc::invalid_argument);
    CHECK(contains(none.message(), "claim_values_up_to max_count"));
    CHECK(f.producer.try_claim_values_up_to(8, 0).code() == Errc::invalid_argument);
    CHECK(f.producer.append("last").value() == next); // nothing refused took an offset
  }

  // A line-aligned append zeroes the word the next one-line frame would end
  // at ahead of time; a claim filled over it and aborted must not let the
  // next append skip that zero.
  TEST_CASE("line_aligned_append_after_an_aborted_claim_publishes_exactly_itself") {
    TopicOptions o = small_ring(2);
    o.line_aligned_appends = true;
    Fixture f(o);
    REQUIRE(f.producer.append(std::string(8, 'a')).value() == 0); // frame [0, 64)
    {
      Result<Claim> claim = f.producer.claim(200); // filled from 96 on, over 128
      REQUIRE(claim.ok());
      const std::uint64_t fake =
          ringbus::detail::frame_word0(40, ringbus::detail::frame_type::data, ringbus::detail::frame_flags::packed);
      for (std::size_t i = 0; i + 8 <= claim->value().size(); i += 8) {
        std::memcpy(claim->value().data() + i, &fake, 8); // a header of this lap at every word
      }
      claim->abort();
    }
    REQUIRE(f.producer.append(std::string(8, 'b')).value() == 1); // frame [64, 128)
    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 2);
    CHECK(got[0].value == std::string(8, 'a'));
    CHECK(got[1].value == std::string(8, 'b'));
  }

  // The same for a refused batch that wrote over that word (every value a
  // header of this lap); the one append after it ends there.
  TEST_CASE("line_aligned_append_after_a_refused_batch_publishes_exactly_itself") {
    TopicOptions o = small_ring(4);
    o.line_aligned_appends = true;
    refuse_batch_then_append(
        o, ringbus::detail::frame_word0(40, ringbus::detail::frame_type::data, ringbus::detail::frame_flags::packed),
        1);
  }

  // reader_never_takes_old_payload_for_a_new_frame with line-aligned appends:
  // the word at the start of the line after each frame was, a lap earlier,
  // payload shaped like a header of the coming lap.
  TEST_CASE("line_aligned_reader_never_takes_old_payload_for_a_new_frame") { never_take_old_payload(true, 600); }

} // TEST_SUITE
