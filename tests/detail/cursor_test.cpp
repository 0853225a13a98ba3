// Cursor: a reader's walk over published frames (in place for block topics,
// copied and validated for overwrite topics), and Records decoding the Chunks
// the walk produces.
#include "ringbus/detail/cursor.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/detail/memory.hpp"
#include "test_support.hpp"

using ringbus::Errc;
using ringbus::Gap;
using ringbus::OverflowPolicy;
using ringbus::Record;
using ringbus::Records;
using ringbus::TopicOptions;
using ringbus::test::small_ring;
using ringbus::test::str;
using ringbus::test::value_for;
namespace detail = ringbus::detail;

namespace {

constexpr std::uint64_t S = 4096;

struct TestLog {
  explicit TestLog(const TopicOptions& o)
      : log("t", o, detail::RingMapping::anonymous(o.capacity_bytes(), false, true).value()) {}
  detail::Log log;
};

// Appends one frame of `values` (all the same size) in the packed form, the
// way append_values does, or each value as its own frame.
void put_frame(detail::Log& log, const std::vector<std::string>& values) {
  const std::size_t size = values.front().size();
  const std::size_t length = detail::frame_header_bytes + size * values.size();
  const std::size_t bytes = detail::align_up(length, detail::frame_alignment);
  Errc err = Errc::ok;
  std::byte* p = log.reserve(bytes, false, err);
  REQUIRE(p != nullptr);
  const std::uint64_t word0 =
      detail::write_header(p, static_cast<std::uint32_t>(length), detail::frame_flags::packed,
                           static_cast<std::uint32_t>(values.size()), log.writer().next_offset, 5);
  std::byte* out = p + detail::frame_header_bytes;
  for (const std::string& v : values) {
    std::memcpy(out, v.data(), size);
    out += size;
  }
  detail::zero_padding(p, length);
  log.advance(bytes, static_cast<std::uint32_t>(values.size()), word0);
  log.publish();
}

// n single-record frames of 32-byte values (64 bytes each), values keyed by offset.
void put_singles(detail::Log& log, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) put_frame(log, {value_for(log.writer().next_offset, 32)});
}

detail::Chunk chunk_for(std::string_view topic) {
  detail::Chunk c;
  c.topic = topic;
  return c;
}

Gap gap_for(std::string_view topic) {
  Gap g;
  g.topic = topic;
  return g;
}

detail::Cursor cursor_at(detail::Log& log, std::uint64_t pos, std::uint64_t offset) {
  detail::Cursor c;
  c.log = &log;
  c.slot = -1; // the walk never touches the slot
  c.pos = pos;
  c.offset = offset;
  c.skip_until = offset;
  c.stage_begin = c.stage_end = pos;
  return c;
}

// Decodes chunk through Records and checks offsets and values.
void check_chunk(const detail::Chunk& chunk, std::uint64_t first_offset, std::size_t value_size) {
  const Records records(std::span<const detail::Chunk>(&chunk, 1), chunk.count, {});
  std::uint64_t expected = first_offset;
  for (const Record& r : records) {
    CHECK(r.offset == expected);
    CHECK(r.topic == "t");
    CHECK(str(r.value) == value_for(expected, value_size));
    CHECK(r.timestamp_ns == 5);
    ++expected;
  }
  CHECK(expected == first_offset + chunk.count);
}

} // namespace

TEST_SUITE("cursor") {
  TEST_CASE("take_in_place_finds_nothing_before_a_publish") {
    TestLog t(small_ring());
    detail::Cursor c = cursor_at(t.log, 0, 0);
    detail::Chunk chunk;
    CHECK(detail::take_in_place(c, 100, chunk) == 0);
    CHECK(chunk.count == 0);
    CHECK(c.pos == 0);
  }

  TEST_CASE("take_in_place_takes_published_records_up_to_the_budget") {
    TestLog t(small_ring());
    put_singles(t.log, 10);
    detail::Cursor c = cursor_at(t.log, 0, 0);
    detail::Chunk first = chunk_for("t");
    CHECK(detail::take_in_place(c, 4, first) == 4);
    CHECK(first.count == 4);
    CHECK(first.frame == t.log.ring());
    CHECK(first.first_skip == 0);
    CHECK(first.wrap_begin == t.log.ring());
    CHECK(first.wrap_end == t.log.ring() + t.log.capacity());
    CHECK(c.pos == 4 * 64);
    CHECK(c.offset == 4);
    check_chunk(first, 0, 32);

    detail::Chunk second = chunk_for("t");
    CHECK(detail::take_in_place(c, 100, second) == 6);
    CHECK(second.frame == t.log.ring() + 4 * 64);
    CHECK(c.offset == 10);
    check_chunk(second, 4, 32);
    detail::Chunk third = chunk_for("t");
    CHECK(detail::take_in_place(c, 100, third) == 0);
  }

  TEST_CASE("walk_stops_and_resumes_inside_a_batch_frame") {
    TestLog t(small_ring());
    std::vector<std::string> values;
    for (std::uint64_t i = 0; i < 10; ++i) values.push_back(value_for(i, 12));
    put_frame(t.log, values);
    detail::Cursor c = cursor_at(t.log, 0, 0);
    detail::Chunk first = chunk_for("t");
    CHECK(detail::take_in_place(c, 3, first) == 3);
    CHECK(c.pos == 0); // still inside the frame
    CHECK(c.skip == 3);
    CHECK(c.offset == 3);
    check_chunk(first, 0, 12);
    detail::Chunk rest = chunk_for("t");
    CHECK(detail::take_in_place(c, 100, rest) == 7);
    CHECK(rest.first_skip == 3);
    CHECK(c.skip == 0);
    CHECK(c.pos == detail::align_up(32 + 120, 8));
    check_chunk(rest, 3, 12);
  }

  TEST_CASE("walk_passes_over_records_below_skip_until") {
    TestLog t(small_ring());
    std::vector<std::string> values;
    for (std::uint64_t i = 0; i < 10; ++i) values.push_back(value_for(i, 12));
    put_frame(t.log, values); // offsets 0..9 in one frame
    put_singles(t.log, 5);    // offsets 10..14
    detail::Cursor c = cursor_at(t.log, 0, 6);
    detail::Chunk chunk = chunk_for("t");
    CHECK(detail::take_in_place(c, 3, chunk) == 3); // 6, 7, 8
    CHECK(chunk.first_skip == 6);
    check_chunk(chunk, 6, 12);

    detail::Cursor late = cursor_at(t.log, 0, 12); // the whole first frame is skipped
    detail::Chunk tail = chunk_for("t");
    CHECK(detail::take_in_place(late, 100, tail) == 3);
    CHECK(tail.frame == t.log.ring() + detail::align_up(32 + 120, 8) + 2 * 64);
    check_chunk(tail, 12, 32);
  }

  TEST_CASE("walk_skips_pad_frames_to_the_next_segment") {
    TestLog t(small_ring(4));
    put_singles(t.log, 60);                 // 3840 bytes
    put_frame(t.log, {value_for(60, 300)}); // does not fit: pad, then segment 1
    put_singles(t.log, 2);                  // offsets 61, 62
    detail::Cursor c = cursor_at(t.log, 59 * 64, 59);
    detail::Chunk chunk = chunk_for("t");
    CHECK(detail::take_in_place(c, 100, chunk) == 4);
    CHECK(c.offset == 63);
    const Records records(std::span<const detail::Chunk>(&chunk, 1), chunk.count, {});
    std::vector<std::uint64_t> offsets;
    std::vector<std::size_t> sizes;
    for (const Record& r : records) {
      offsets.push_back(r.offset);
      sizes.push_back(r.value.size());
      CHECK(str(r.value) == value_for(r.offset, r.value.size()));
    }
    CHECK(offsets == std::vector<std::uint64_t>{59, 60, 61, 62});
    CHECK(sizes == std::vector<std::size_t>{32, 300, 32, 32});
  }

  TEST_CASE("records_walk_on_across_the_end_of_the_ring") {
    TestLog t(small_ring(4));       // no readers: the writer may lap
    put_singles(t.log, 4 * 64 + 5); // segment 4 is written over segment 0's bytes
    detail::Cursor c = cursor_at(t.log, S, 64);
    detail::Chunk chunk = chunk_for("t");
    CHECK(detail::take_in_place(c, 1000, chunk) == 3 * 64 + 5); // segments 1..3, then 4 at the ring's start
    check_chunk(chunk, 64, 32);
    CHECK(c.pos == 4 * S + 5 * 64);
    CHECK(c.offset == 4 * 64 + 5);
  }

  TEST_CASE("refill_copies_the_next_run_and_reports_nothing_lost_when_not_lapped") {
    TestLog t(small_ring(2, OverflowPolicy::overwrite));
    detail::Cursor c = cursor_at(t.log, 0, 0);
    c.staging = static_cast<std::byte*>(detail::heap_allocate(S, 64));
    Gap gap = gap_for("t");
    CHECK_FALSE(detail::refill(c, gap)); // nothing published
    put_singles(t.log, 10);
    CHECK(detail::refill(c, gap));
    CHECK(gap.count == 0);
    CHECK(c.stage_begin == 0);
    CHECK(c.stage_end == 10 * 64);
    CHECK(std::memcmp(c.staging, t.log.ring(), 10 * 64) == 0);
    detail::Chunk chunk = chunk_for("t");
    CHECK(detail::take_copied(c, 100, chunk, false, gap) == 10);
    CHECK(chunk.frame == c.staging);
    CHECK(chunk.wrap_end == nullptr);
    check_chunk(chunk, 0, 32);
    detail::heap_free(c.staging);
  }

  TEST_CASE("refill_of_a_lapped_cursor_reports_the_gap_and_resumes_at_the_head") {
    TestLog t(small_ring(2, OverflowPolicy::overwrite));
    put_singles(t.log, 5 * 64); // the ring keeps segments 3 and 4
    detail::Cursor c = cursor_at(t.log, 0, 0);
    c.staging = static_cast<std::byte*>(detail::heap_allocate(S, 64));
    Gap gap = gap_for("t");
    REQUIRE(detail::refill(c, gap));
    CHECK(gap.first_lost == 0);
    CHECK(gap.count == 192);
    CHECK(c.lost == 192);
    CHECK(c.offset == 192);
    CHECK(c.pos == 3 * S);
    CHECK(c.stage_begin == 3 * S);
    CHECK(c.stage_end == 4 * S); // one segment at a time
    detail::Chunk chunk = chunk_for("t");
    Gap none = gap_for("t");
    CHECK(detail::take_copied(c, 1000, chunk, false, none) == 64);
    check_chunk(chunk, 192, 32);
    CHECK(detail::take_copied(c, 1000, chunk, false, none) == 0); // no refill allowed
    detail::heap_free(c.staging);
  }

  TEST_CASE("records_report_their_gaps_and_total_loss") {
    const std::array<Gap, 2> gaps{Gap{"a", 10, 5}, Gap{"b", 0, 7}};
    const Records records({}, 0, gaps);
    CHECK(records.empty());
    CHECK(records.gaps().size() == 2);
    CHECK(records.lost() == 12);
    CHECK(records.gaps()[1].topic == "b");
  }

} // TEST_SUITE
