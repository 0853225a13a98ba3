// Log: the single-writer ring of one topic, driven directly (no Bus), one
// thread. Concurrency of the same code is in log_concurrency_test.cpp.
#include "ringbus/detail/log.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "test_support.hpp"

using ringbus::Errc;
using ringbus::OverflowPolicy;
using ringbus::TopicOptions;
using ringbus::WaitStrategy;
using ringbus::test::small_ring;
namespace detail = ringbus::detail;

namespace {

constexpr std::uint64_t S = 4096; // segment bytes of every log here

detail::RingMapping mapping_for(const TopicOptions& o) {
  return detail::RingMapping::anonymous(o.capacity_bytes(), false, true).value();
}

// Appends one value-only record the way Producer::append does.
Errc put(detail::Log& log, std::string_view value, bool wait = false) {
  const std::size_t length = detail::frame_header_bytes + value.size();
  const std::size_t bytes = detail::align_up(length, detail::frame_alignment);
  Errc err = Errc::ok;
  std::byte* p = log.reserve(bytes, wait, err);
  if (p == nullptr) return err;
  const std::uint64_t word0 = detail::write_header(p, static_cast<std::uint32_t>(length), detail::frame_flags::packed,
                                                   1, log.writer().next_offset, 0);
  if (!value.empty()) std::memcpy(p + detail::frame_header_bytes, value.data(), value.size());
  detail::zero_padding(p, length);
  log.advance(bytes, 1, word0);
  log.publish();
  return Errc::ok;
}

// Appends n 64-byte frames (32-byte values): 64 per segment.
void put_even(detail::Log& log, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) REQUIRE(put(log, std::string(32, 'e')) == Errc::ok);
}

std::uint64_t word_at(const detail::Log& log, std::uint64_t pos) {
  std::uint64_t w = 0;
  std::memcpy(&w, log.ring_at(pos), sizeof w);
  return w;
}

std::uint64_t base_offset_at(const detail::Log& log, std::uint64_t pos) {
  detail::FrameHeader h{};
  std::memcpy(&h, log.ring_at(pos), sizeof h);
  return h.base_offset;
}

} // namespace

TEST_SUITE("log") {
  TEST_CASE("log_holds_its_name_options_and_geometry") {
    const TopicOptions o = small_ring(4);
    detail::Log log("orders", o, mapping_for(o));
    CHECK(log.name() == "orders");
    CHECK(log.options().segment_count == 4);
    CHECK(log.capacity() == 4 * S);
    CHECK(log.segment_bytes() == S);
    CHECK(log.max_frame_bytes() == S);
    CHECK_FALSE(log.overwrite());
    CHECK_FALSE(log.blocking());
    REQUIRE(log.ring() != nullptr);
    CHECK(log.ring_at(0) == log.ring());
    CHECK(log.ring_at(4 * S + 8) == log.ring() + 8); // positions wrap around the ring
    CHECK(log.ring_at(9 * S + 16) == log.ring() + S + 16);
    CHECK(log.segment_start(S - 1) == 0);
    CHECK(log.segment_start(S) == S);
    CHECK(log.segment_start(10000) == 2 * S);
    CHECK(log.tail_acquire() == 0);
    CHECK(log.end_offset() == 0);
    CHECK_FALSE(log.closed());

    TopicOptions special = small_ring(2, OverflowPolicy::overwrite);
    special.wait = WaitStrategy::blocking;
    detail::Log other("x", special, mapping_for(special));
    CHECK(other.overwrite());
    CHECK(other.blocking());
  }

  TEST_CASE("only_one_writer_token_is_handed_out_at_a_time") {
    const TopicOptions o = small_ring();
    detail::Log log("t", o, mapping_for(o));
    CHECK_FALSE(log.has_writer());
    CHECK(log.open_writer());
    CHECK(log.has_writer());
    CHECK_FALSE(log.open_writer());
    ringbus::Claim claim;
    log.writer().open_claim = &claim; // as Producer::claim records it
    log.close_writer();
    CHECK_FALSE(log.has_writer());
    CHECK(log.writer().open_claim == nullptr); // closing the writer drops its claim
    CHECK(log.open_writer());
  }

  TEST_CASE("frames_become_visible_only_when_published") {
    const TopicOptions o = small_ring();
    detail::Log log("t", o, mapping_for(o));
    Errc err = Errc::ok;
    std::byte* p = log.reserve(64, true, err);
    REQUIRE(p == log.ring());
    log.advance(64, 1, detail::write_header(p, 64, detail::frame_flags::packed, 1, 0, 0));
    CHECK(log.tail_acquire() == 0);
    CHECK(log.end_offset() == 0);
    CHECK(log.writer().pos == 64);
    CHECK(log.writer().next_offset == 1);
    log.publish();
    CHECK(log.tail_acquire() == 64);
    CHECK(log.tail_for_sleeper() == 64);
    CHECK(log.end_offset() == 1);
    CHECK(log.writer().published == 64);
  }

  TEST_CASE("reserve_pads_the_rest_of_a_segment_when_a_frame_does_not_fit") {
    const TopicOptions o = small_ring(4);
    detail::Log log("t", o, mapping_for(o));
    put_even(log, 60);                                    // 3840 bytes: 256 left in segment 0
    REQUIRE(put(log, std::string(300, 'b')) == Errc::ok); // a 336-byte frame
    const std::uint64_t pad = word_at(log, 3840);
    CHECK(detail::word0_type(pad) == detail::frame_type::pad);
    CHECK(detail::word0_length(pad) == 256);
    CHECK(detail::word0_type(word_at(log, S)) == detail::frame_type::data);
    CHECK(base_offset_at(log, S) == 60);
    CHECK(log.writer().pos == S + 336);
    CHECK(log.writer().segment_end == 2 * S);
    CHECK(log.tail_acquire() == S + 336);
  }

  TEST_CASE("frame_exactly_filling_a_segment_needs_no_pad") {
    const TopicOptions o = small_ring(4);
    detail::Log log("t", o, mapping_for(o));
    REQUIRE(put(log, std::string(S - detail::frame_header_bytes, 'f')) == Errc::ok);
    CHECK(log.writer().pos == S);
    REQUIRE(put(log, "next") == Errc::ok);
    CHECK(detail::word0_type(word_at(log, S)) == detail::frame_type::data);
    CHECK(base_offset_at(log, S) == 1);
  }

  TEST_CASE("block_log_refuses_to_lap_a_reader_and_proceeds_once_it_moves") {
    const TopicOptions o = small_ring();
    detail::Log log("t", o, mapping_for(o));
    const int reader = log.register_reader();
    REQUIRE(reader >= 0);
    CHECK(log.slot(reader).position.load() == 0);
    put_even(log, 128); // the whole ring
    CHECK(put(log, "lap") == Errc::would_block);
    CHECK(log.writer().next_offset == 128);
    log.slot(reader).position.store(S - 8); // not yet out of segment 0
    CHECK(put(log, "lap") == Errc::would_block);
    log.slot(reader).position.store(S); // the reader left segment 0
    CHECK(put(log, "lap") == Errc::ok);
    CHECK(log.writer().next_offset == 129);
  }

  TEST_CASE("unregistered_reader_no_longer_holds_the_writer") {
    const TopicOptions o = small_ring();
    detail::Log log("t", o, mapping_for(o));
    const int reader = log.register_reader();
    put_even(log, 128);
    CHECK(put(log, "lap") == Errc::would_block);
    log.unregister_reader(reader);
    CHECK(log.slot(reader).state.load() == detail::slot_free);
    CHECK(put(log, "lap") == Errc::ok);
  }

  TEST_CASE("closing_the_log_stops_a_writer_waiting_for_room") {
    const TopicOptions o = small_ring();
    detail::Log log("t", o, mapping_for(o));
    REQUIRE(log.register_reader() >= 0);
    put_even(log, 128);
    log.close();
    CHECK(log.closed());
    CHECK(put(log, "lap", /*wait=*/true) == Errc::closed); // returns instead of waiting forever
  }

  TEST_CASE("reader_slots_are_handed_out_once_each") {
    TopicOptions o = small_ring();
    o.max_consumers = 3;
    detail::Log log("t", o, mapping_for(o));
    const std::array<int, 3> slots{log.register_reader(), log.register_reader(), log.register_reader()};
    CHECK(slots == std::array<int, 3>{0, 1, 2});
    for (int s : slots) CHECK(log.slot(s).state.load() == detail::slot_active);
    CHECK(log.register_reader() == -1);
    log.unregister_reader(1);
    CHECK(log.register_reader() == 1);
    CHECK(log.register_reader() == -1);
  }

  TEST_CASE("new_reader_starts_at_the_head") {
    const TopicOptions o = small_ring();
    detail::Log log("t", o, mapping_for(o));
    put_even(log, 5 * 64); // no readers: the writer laps freely; the ring keeps segments 3 and 4
    std::uint64_t head = 0;
    std::uint64_t offset = 0;
    log.read_head(head, offset);
    CHECK(head == 3 * S);
    CHECK(offset == 192);
    CHECK(log.head_acquire() == 3 * S);
    const int reader = log.register_reader();
    CHECK(log.slot(reader).position.load() == 3 * S);
  }

  TEST_CASE("protect_from_head_moves_a_slot_back_to_the_head") {
    const TopicOptions o = small_ring();
    detail::Log log("t", o, mapping_for(o));
    const int reader = log.register_reader();
    put_even(log, 100);
    log.slot(reader).position.store(6000);
    std::uint64_t pos = 1;
    std::uint64_t offset = 1;
    log.protect_from_head(reader, pos, offset);
    CHECK(pos == 0);
    CHECK(offset == 0);
    CHECK(log.slot(reader).position.load() == 0);
  }

  TEST_CASE("overwrite_log_laps_a_lagging_reader_and_moves_the_head") {
    const TopicOptions o = small_ring(2, OverflowPolicy::overwrite);
    detail::Log log("t", o, mapping_for(o));
    const int reader = log.register_reader();
    REQUIRE(reader >= 0);
    put_even(log, 3 * 64); // never refused, though the reader is still at 0
    std::uint64_t head = 0;
    std::uint64_t offset = 0;
    log.read_head(head, offset);
    CHECK(head == S);
    CHECK(offset == 64);
    CHECK(log.tail_acquire() == 3 * S);
    CHECK(base_offset_at(log, 2 * S) == 128); // segment 2 overwrote segment 0's bytes
  }

  TEST_CASE("rollback_forgets_accepted_but_unpublished_frames") {
    const TopicOptions o = small_ring();
    detail::Log log("t", o, mapping_for(o));
    put_even(log, 3);
    const detail::WriterState saved = log.writer();
    const detail::Log::WriterMark mark = log.mark();
    for (int i = 0; i < 2; ++i) {
      Errc err = Errc::ok;
      std::byte* p = log.reserve(64, false, err);
      REQUIRE(p != nullptr);
      log.advance(64, 1, detail::write_header(p, 64, detail::frame_flags::packed, 1, log.writer().next_offset, 0));
    }
    log.rollback(mark);
    CHECK(log.writer().pos == saved.pos);
    CHECK(log.writer().next_offset == 3);
    CHECK(log.tail_acquire() == 3 * 64);
    REQUIRE(put(log, "after") == Errc::ok);
    CHECK(base_offset_at(log, 3 * 64) == 3);
    CHECK(log.end_offset() == 4);
  }

  TEST_CASE("segment_for_offset_finds_the_segment_holding_an_offset") {
    const TopicOptions o = small_ring(4);
    detail::Log log("t", o, mapping_for(o));
    std::uint64_t segment = 99;
    std::uint64_t first = 99;
    CHECK(log.segment_for_offset(0, 0, segment, first)); // nothing published yet
    CHECK(segment == 0);
    CHECK(first == 0);

    put_even(log, 3 * 64 + 10); // segments 0..2 full, 10 records in segment 3
    struct Case {
      std::uint64_t target, segment, first;
    };
    for (const Case c : {Case{0, 0, 0}, Case{63, 0, 0}, Case{64, S, 64}, Case{100, S, 64}, Case{191, 2 * S, 128},
                         Case{192, 3 * S, 192}, Case{201, 3 * S, 192}, Case{202, 3 * S, 192}}) {
      CAPTURE(c.target);
      CHECK(log.segment_for_offset(c.target, 0, segment, first));
      CHECK(segment == c.segment);
      CHECK(first == c.first);
    }
  }

  TEST_CASE("segment_for_offset_after_laps_searches_from_the_head") {
    const TopicOptions o = small_ring(4);
    detail::Log log("t", o, mapping_for(o));
    put_even(log, 6 * 64); // the ring keeps segments 2..5: offsets [128, 384)
    std::uint64_t head = 0;
    std::uint64_t oldest = 0;
    log.read_head(head, oldest);
    CHECK(head == 2 * S);
    CHECK(oldest == 128);
    std::uint64_t segment = 0;
    std::uint64_t first = 0;
    CHECK(log.segment_for_offset(300, head, segment, first));
    CHECK(segment == 4 * S);
    CHECK(first == 256);
    CHECK(log.segment_for_offset(100, head, segment, first));
    CHECK(first == 128);                                         // older than anything held: the caller refuses it
    CHECK_FALSE(log.segment_for_offset(100, 0, segment, first)); // `from` is behind the head
  }

  TEST_CASE("copy_release_and_copy_acquire_copy_whole_words") {
    std::array<std::uint64_t, 4> src{1, 0x1122334455667788ull, UINT64_MAX, 0};
    std::array<std::uint64_t, 4> mid{};
    std::array<std::uint64_t, 4> dst{};
    detail::Log::copy_release(reinterpret_cast<std::byte*>(mid.data()), reinterpret_cast<const std::byte*>(src.data()),
                              sizeof src);
    detail::Log::copy_acquire(reinterpret_cast<std::byte*>(dst.data()), reinterpret_cast<const std::byte*>(mid.data()),
                              sizeof mid);
    CHECK(dst == src);
    CHECK(detail::Log::load_word_acquire(reinterpret_cast<const std::byte*>(&src[1])) == 0x1122334455667788ull);
  }

  TEST_CASE("blocking_log_rings_a_sleeping_readers_doorbell_on_publish") {
    TopicOptions o = small_ring();
    o.wait = WaitStrategy::blocking;
    detail::Log log("t", o, mapping_for(o));
    const int reader = log.register_reader();
    detail::ReaderSlot& slot = log.slot(reader);
    CHECK(slot.wake_target.load() == &slot.doorbell);

    REQUIRE(put(log, "nobody sleeps") == Errc::ok);
    CHECK(slot.doorbell.load() == 0);

    slot.sleeping.store(1);
    log.sleepers().fetch_add(1);
    REQUIRE(put(log, "wake up") == Errc::ok);
    CHECK(slot.doorbell.load() == 1);
    log.wake_sleepers();
    CHECK(slot.doorbell.load() == 2);

    slot.sleeping.store(0);
    log.wake_sleepers(); // not asleep any more: no ring
    CHECK(slot.doorbell.load() == 2);
    log.sleepers().fetch_sub(1);
  }

  TEST_CASE("wall_clock_ns_reads_the_realtime_clock") {
    const auto now = [] {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    const std::int64_t before = now();
    const std::int64_t t = detail::wall_clock_ns();
    const std::int64_t after = now();
    CHECK(t >= before);
    CHECK(t <= after);
  }

  // A seek_to_time the producer laps mid-scan may stand at a frame start of
  // the old lap that now holds payload. A payload word that reads as a data
  // frame of a segment's length, met in the last ring slot, must not lead the
  // scan (which copies a general-form frame whole on overwrite topics) past
  // that segment: here, past the ring's end.
  TEST_CASE("offset_at_time_never_reads_a_frame_past_its_segment") {
    const TopicOptions o = small_ring(2, OverflowPolicy::overwrite);
    detail::Log log("t", o, mapping_for(o));
    REQUIRE(log.open_writer());
    const std::uint64_t word = S | (std::uint64_t{1} << 32); // length S, type data, flags 0: general form
    std::string value(32, '\0');
    for (std::size_t i = 0; i < 4; ++i) std::memcpy(value.data() + 8 * i, &word, 8);
    for (int i = 0; i < 2 * 64; ++i) REQUIRE(put(log, value) == Errc::ok);
    const std::uint64_t tail = log.tail_acquire();
    REQUIRE(tail == 2 * S);
    std::vector<std::byte> scratch(S);
    std::uint64_t offset = 99;
    const std::uint64_t pos = S + 32; // a payload word of the last slot's first frame
    CHECK(log.offset_at_time(INT64_MAX, pos, 7, tail, scratch.data(), offset));
    CHECK(offset == 7); // nothing read there: the offset given for pos
  }

} // TEST_SUITE
