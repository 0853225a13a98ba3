// The sparse segment index: rebuilt from frames, fed frame by frame, looked up
// by offset and by time at and between entries and at the segment's edges,
// stopping at the first invalid frame, and persisted with a checksum that a
// damaged or foreign index fails.
#include "ringbus/detail/segment_index.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ringbus/detail/checksum.hpp"
#include "ringbus/detail/frame.hpp"
#include "ringbus/detail/frame_layout.hpp"
#include "test_support.hpp"

using ringbus::Errc;
using ringbus::Message;
using ringbus::test::contains;
using ringbus::test::msg;
namespace detail = ringbus::detail;

namespace {

constexpr std::size_t segment_bytes = 1 << 14;
constexpr std::uint32_t interval = 256;

// What the test wrote: one entry per record.
struct Written {
  std::uint64_t offset;
  std::int64_t timestamp;
  std::uint32_t frame_position; // where the record's frame starts
};

// Writes frames into a segment the way a persistent topic's producer does:
// header, body, zero padding, checksum, then the publication word with its lap.
class SegmentWriter {
 public:
  explicit SegmentWriter(std::uint64_t base_offset, std::uint16_t lap = 3)
      : data_(segment_bytes), next_offset_(base_offset), lap_(lap) {}

  // A general-form frame of the given records; false when it does not fit.
  bool append(const std::vector<Message>& records, std::int64_t base_ts) {
    std::size_t length = detail::frame_header_bytes;
    for (const Message& m : records) length += detail::record_body_bytes(m, m.timestamp_ns - base_ts);
    return place(length, 0, static_cast<std::uint32_t>(records.size()), base_ts, [&](std::byte* body) {
      for (const Message& m : records) body = detail::encode_record(body, m, m.timestamp_ns - base_ts);
    });
  }

  // A packed frame of count values of value_bytes each.
  bool append_packed(std::uint32_t count, std::size_t value_bytes, std::int64_t ts) {
    const std::size_t length = detail::frame_header_bytes + count * value_bytes;
    return place(length, detail::frame_flags::packed, count, ts,
                 [&](std::byte* body) { std::memset(body, 0x42, count * value_bytes); });
  }

  // A general-form frame whose body is given byte by byte (to write malformed records).
  bool append_raw(const std::vector<std::uint8_t>& body, std::uint32_t count, std::int64_t ts) {
    return place(detail::frame_header_bytes + body.size(), 0, count, ts,
                 [&](std::byte* out) { std::memcpy(out, body.data(), body.size()); });
  }

  // Closes the segment with a pad frame (only its first word is written).
  void pad() {
    const std::uint64_t word =
        detail::frame_word0(static_cast<std::uint32_t>(segment_bytes - position_), detail::frame_type::pad, 0) |
        (std::uint64_t{lap_} << 48);
    std::memcpy(data_.data() + position_, &word, 8);
    position_ = segment_bytes;
  }

  std::vector<std::byte>& data() { return data_; }
  [[nodiscard]] std::span<const std::byte> bytes() const { return data_; }
  [[nodiscard]] const std::vector<Written>& written() const { return written_; }
  [[nodiscard]] std::uint32_t position() const { return static_cast<std::uint32_t>(position_); }
  [[nodiscard]] std::uint64_t next_offset() const { return next_offset_; }
  [[nodiscard]] const std::vector<std::uint32_t>& frames() const { return frames_; }

 private:
  template <class Body>
  bool place(std::size_t length, std::uint8_t flags, std::uint32_t count, std::int64_t base_ts, Body body) {
    const std::size_t bytes = detail::align_up(length, detail::frame_alignment);
    if (position_ + bytes > segment_bytes) return false;
    std::byte* frame = data_.data() + position_;
    std::uint64_t word =
        detail::write_header(frame, static_cast<std::uint32_t>(length), flags, count, next_offset_, base_ts);
    word |= std::uint64_t{lap_} << 48;
    body(frame + detail::frame_header_bytes);
    detail::zero_padding(frame, length);
    std::memcpy(frame, &word, 8);
    const std::uint32_t sum = detail::frame_checksum(frame, static_cast<std::uint32_t>(length));
    std::memcpy(frame + offsetof(detail::FrameHeader, checksum), &sum, 4);
    frames_.push_back(static_cast<std::uint32_t>(position_));
    for (std::uint32_t i = 0; i < count; ++i) {
      written_.push_back({next_offset_ + i, base_ts, static_cast<std::uint32_t>(position_)});
    }
    position_ += bytes;
    next_offset_ += count;
    return true;
  }

  std::vector<std::byte> data_;
  std::size_t position_ = 0;
  std::uint64_t next_offset_;
  std::uint16_t lap_;
  std::vector<Written> written_;
  std::vector<std::uint32_t> frames_;
};

// Fills a segment with frames of 1..3 records of varied sizes, timestamps
// rising by 1000 per record; record timestamps are set individually.
SegmentWriter filled_segment(std::uint64_t base_offset, bool close_with_pad) {
  SegmentWriter w(base_offset);
  std::mt19937 random(5);
  std::int64_t ts = 1'000'000;
  std::vector<std::string> values;
  for (;;) {
    const auto count = static_cast<std::uint32_t>(1 + random() % 3);
    std::vector<Message> records;
    values.clear();
    for (std::uint32_t i = 0; i < count; ++i) values.push_back(std::string(random() % 120, 'v'));
    for (std::uint32_t i = 0; i < count; ++i) records.push_back(msg({}, values[i], ts + 1000 * i));
    if (!w.append(records, ts)) break;
    ts += 1000 * count;
  }
  if (close_with_pad) w.pad();
  // Timestamps of each record, for the checks (the writer recorded base_ts).
  return w;
}

// Scans frames from an index position the way a reader would, returning the
// position of the frame holding offset (or the end).
std::uint32_t scan_to_offset(std::span<const std::byte> data, detail::IndexPosition from, std::uint64_t offset,
                             std::size_t& frames_read) {
  std::uint32_t position = from.position;
  std::uint64_t first = from.offset;
  frames_read = 0;
  while (position < data.size()) {
    detail::FrameHeader h{};
    std::memcpy(&h, data.data() + position, sizeof h);
    if (h.type != static_cast<std::uint8_t>(detail::frame_type::data)) break;
    ++frames_read;
    REQUIRE(h.base_offset == first);
    if (offset < first + h.record_count) return position;
    first += h.record_count;
    position += static_cast<std::uint32_t>(detail::align_up(h.length, detail::frame_alignment));
  }
  return position;
}

} // namespace

TEST_SUITE("segment_index") {
  TEST_CASE("rebuild_indexes_every_frame_and_lookups_land_at_or_before_the_record") {
    auto w = filled_segment(5000, true);
    auto index = detail::SegmentIndex::rebuild(w.bytes(), 5000, interval);
    REQUIRE(index.ok());
    CHECK(index->problem().empty());
    CHECK(index->sealed());
    CHECK(index->end_position() == segment_bytes);
    CHECK(index->next_offset() == w.next_offset());
    REQUIRE_FALSE(index->entries().empty());
    CHECK(index->entries().front().position == 0);
    CHECK(index->entries().front().offset == 5000);
    CHECK(index->entries().size() <= segment_bytes / interval + 1);
    CHECK(index->entries().size() >= w.position() / (interval + 400)); // sparse, but not empty-handed

    std::size_t worst_frames = 0;
    for (const Written& r : w.written()) {
      const auto at = index->lookup_offset(r.offset);
      CHECK(at.offset <= r.offset);
      std::size_t frames_read = 0;
      CHECK(scan_to_offset(w.bytes(), at, r.offset, frames_read) == r.frame_position);
      worst_frames = std::max(worst_frames, frames_read);
    }
    // A scan from the index covers at most one interval plus a frame.
    CHECK(worst_frames <= interval / detail::frame_header_bytes + 2);
  }

  TEST_CASE("offset_lookups_at_the_segment_edges") {
    auto w = filled_segment(100, false);
    auto index = detail::SegmentIndex::rebuild(w.bytes(), 100, interval);
    REQUIRE(index.ok());
    CHECK(index->lookup_offset(0).position == 0); // before the segment: its start
    CHECK(index->lookup_offset(99).offset == 100);
    CHECK(index->lookup_offset(100).position == 0);
    const auto last = index->entries().back();
    CHECK(index->lookup_offset(w.next_offset() - 1).position == last.position);
    CHECK(index->lookup_offset(w.next_offset()).position == last.position); // past the end: last entry
    CHECK(index->lookup_offset(UINT64_MAX).position == last.position);
    for (std::size_t i = 1; i < index->entries().size(); ++i) {
      const auto e = index->entries()[i];
      CHECK(index->lookup_offset(e.offset).position == e.position);
      CHECK(index->lookup_offset(e.offset - 1).position == index->entries()[i - 1].position);
    }
  }

  TEST_CASE("time_lookups_find_a_start_before_the_first_record_at_or_after_t") {
    // Timestamps not in order: a frame's records go back and forth in time.
    SegmentWriter w(0);
    std::mt19937_64 random(11);
    std::vector<std::int64_t> record_ts;
    std::int64_t clock = 10'000;
    for (;;) {
      std::vector<Message> records;
      const std::int64_t base = clock;
      std::vector<std::int64_t> ts;
      for (int i = 0; i < 2; ++i) ts.push_back(clock + static_cast<std::int64_t>(random() % 5000) - 2000);
      for (auto t : ts) records.push_back(msg("k", "value", t));
      if (!w.append(records, base)) break;
      record_ts.insert(record_ts.end(), ts.begin(), ts.end());
      clock += 1000;
    }
    auto index = detail::SegmentIndex::rebuild(w.bytes(), 0, interval);
    REQUIRE(index.ok());
    CHECK(index->max_timestamp() == *std::max_element(record_ts.begin(), record_ts.end()));
    for (std::int64_t t = 0; t <= clock + 5000; t += 97) {
      // Brute force: the first record with timestamp >= t.
      const auto first = std::find_if(record_ts.begin(), record_ts.end(), [t](std::int64_t ts) { return ts >= t; });
      const auto at = index->lookup_time(t);
      if (first == record_ts.end()) continue; // nothing to find; any start is fine
      const auto offset = static_cast<std::uint64_t>(first - record_ts.begin());
      CAPTURE(t);
      CHECK(at.offset <= offset);
    }
    CHECK(index->lookup_time(INT64_MIN).position == 0);
    CHECK(index->lookup_time(0).position == 0);
  }

  TEST_CASE("time_lookups_with_rising_timestamps_stay_within_one_interval") {
    auto w = filled_segment(0, true);
    auto index = detail::SegmentIndex::rebuild(w.bytes(), 0, interval);
    REQUIRE(index.ok());
    for (const Written& r : w.written()) {
      const auto at = index->lookup_time(r.timestamp);
      CHECK(at.position <= r.frame_position);
      CHECK(r.frame_position - at.position <= interval + 512);
    }
  }

  TEST_CASE("add_frame_builds_the_same_index_as_a_rebuild") {
    auto w = filled_segment(77, true);
    auto rebuilt = detail::SegmentIndex::rebuild(w.bytes(), 77, interval);
    auto fed = detail::SegmentIndex::create(77, segment_bytes, interval);
    REQUIRE(rebuilt.ok());
    REQUIRE(fed.ok());
    fed->reserve_all();
    const auto frames = w.frames();
    for (std::size_t i = 0; i < frames.size(); ++i) {
      detail::FrameHeader h{};
      std::memcpy(&h, w.bytes().data() + frames[i], sizeof h);
      const std::uint32_t end = i + 1 < frames.size() ? frames[i + 1] : w.position();
      // Max timestamp of the frame's records: the writer gave each +1000 per record.
      fed->add_frame(frames[i], end - frames[i], h.base_offset, h.record_count,
                     h.base_timestamp + 1000 * (h.record_count - 1));
    }
    fed->seal();
    REQUIRE(fed->entries().size() == rebuilt->entries().size());
    for (std::size_t i = 0; i < fed->entries().size(); ++i) {
      CHECK(fed->entries()[i].position == rebuilt->entries()[i].position);
      CHECK(fed->entries()[i].offset == rebuilt->entries()[i].offset);
      CHECK(fed->entries()[i].max_timestamp_before == rebuilt->entries()[i].max_timestamp_before);
    }
    CHECK(fed->next_offset() == rebuilt->next_offset());
    CHECK(fed->max_timestamp() == rebuilt->max_timestamp());
    CHECK(fed->sealed());
  }

  TEST_CASE("catch_up_stops_at_a_limit_and_resumes_where_it_stopped") {
    auto w = filled_segment(0, false);
    auto index = detail::SegmentIndex::create(0, segment_bytes, interval);
    REQUIRE(index.ok());
    const auto frames = w.frames();
    // A limit inside a frame stops before that frame.
    const std::uint32_t mid = frames[frames.size() / 2] + 8;
    CHECK(index->catch_up(w.bytes(), {}, mid) == detail::ScanStop::limit);
    CHECK(index->end_position() == frames[frames.size() / 2]);
    CHECK(index->catch_up(w.bytes()) == detail::ScanStop::end_of_data);
    CHECK(index->end_position() == w.position());
    CHECK(index->next_offset() == w.next_offset());
    auto rebuilt = detail::SegmentIndex::rebuild(w.bytes(), 0, interval);
    CHECK(rebuilt->entries().size() == index->entries().size());
    // A live tail: after more frames are appended, catching up indexes them.
    auto live = detail::SegmentIndex::create(0, segment_bytes, interval);
    SegmentWriter grow(0);
    for (int round = 0; round < 40; ++round) {
      REQUIRE(grow.append_packed(3, 16, round));
      CHECK(live->catch_up(grow.bytes(), {}, grow.position()) == detail::ScanStop::limit);
      CHECK(live->end_position() == grow.position());
      CHECK(live->next_offset() == grow.next_offset());
      CHECK(live->catch_up(grow.bytes()) == detail::ScanStop::end_of_data);
    }
    CHECK(live->max_timestamp() == 39);
  }

  TEST_CASE("frames_filling_the_segment_exactly_need_no_pad") {
    SegmentWriter w(0);
    while (w.append_packed(1, 32, 1)) {
    }
    REQUIRE(w.position() == segment_bytes);
    auto index = detail::SegmentIndex::create(0, segment_bytes, interval);
    CHECK(index->catch_up(w.bytes()) == detail::ScanStop::segment_full);
    CHECK(index->next_offset() == segment_bytes / 64);
    CHECK(index->sealed());
    // Zero-byte packed values: any count fits in a 32-byte frame.
    SegmentWriter zeros(0);
    REQUIRE(zeros.append_packed(1000, 0, 5));
    auto z = detail::SegmentIndex::rebuild(zeros.bytes(), 0, interval);
    CHECK(z->next_offset() == 1000);
  }

  TEST_CASE("the_scan_stops_at_the_first_invalid_frame_and_names_it") {
    struct Case {
      const char* what;
      std::size_t at; // byte inside the damaged frame to change
      std::function<void(std::byte*)> spoil;
      const char* says;
    };
    const std::vector<Case> cases{
        {"checksum", 40, [](std::byte* f) { f[40] ^= std::byte{1}; }, "checksum"},
        {"type", 4, [](std::byte* f) { f[4] = std::byte{9}; }, "type 9"},
        {"length too long", 0,
         [](std::byte* f) {
           const std::uint32_t huge = 1 << 20;
           std::memcpy(f, &huge, 4);
         },
         "length 1048576"},
        {"length too short", 0,
         [](std::byte* f) {
           const std::uint32_t tiny = 16;
           std::memcpy(f, &tiny, 4);
         },
         "length 16"},
        {"flags", 5, [](std::byte* f) { f[5] = std::byte{0x80}; }, "flags"},
        {"lap", 6, [](std::byte* f) { f[6] = std::byte{4}; }, "lap tag 4"},
        {"record_count", 8, [](std::byte* f) { std::memset(f + 8, 0, 4); }, "record_count 0"},
        {"base_offset", 16, [](std::byte* f) { f[16] ^= std::byte{0x40}; }, "base_offset"},
    };
    for (const Case& c : cases) {
      CAPTURE(c.what);
      auto w = filled_segment(0, true);
      const std::uint32_t victim = w.frames()[7];
      c.spoil(w.data().data() + victim);
      if (std::string(c.what) != "checksum") {
        // Keep the checksum right where the field is covered, so the field check itself is what fails.
        detail::FrameHeader h{};
        std::memcpy(&h, w.data().data() + victim, sizeof h);
        if (h.length >= 32 && victim + h.length <= segment_bytes) {
          const std::uint32_t sum = detail::frame_checksum(w.data().data() + victim, h.length);
          std::memcpy(w.data().data() + victim + 12, &sum, 4);
        }
      }
      auto index = detail::SegmentIndex::create(0, segment_bytes, interval);
      CHECK(index->catch_up(w.bytes()) == detail::ScanStop::invalid_frame);
      CHECK(index->end_position() == victim);
      CHECK(index->next_offset() ==
            w.written()[0].offset +
                static_cast<std::uint64_t>(std::count_if(w.written().begin(), w.written().end(),
                                                         [&](const Written& r) { return r.frame_position < victim; })));
      CHECK(contains(index->problem(), "frame at position " + std::to_string(victim)));
      CHECK(contains(index->problem(), c.says));
      CHECK_FALSE(index->sealed());
    }
  }

  TEST_CASE("a_malformed_record_body_is_an_invalid_frame") {
    SegmentWriter w(0);
    const std::string value(40, 'x');
    REQUIRE(w.append({msg("key", value, 5)}, 5));
    REQUIRE(w.append({msg("key", value, 6)}, 6));
    // The second frame's record claims a longer value than the frame holds.
    std::byte* frame = w.data().data() + w.frames()[1];
    frame[detail::frame_header_bytes + 1 + 1 + 1 + 3] = std::byte{100}; // value_len varint
    detail::FrameHeader h{};
    std::memcpy(&h, frame, sizeof h);
    const std::uint32_t sum = detail::frame_checksum(frame, h.length);
    std::memcpy(frame + 12, &sum, 4);
    auto index = detail::SegmentIndex::rebuild(w.bytes(), 0, interval);
    CHECK(index->end_position() == w.frames()[1]);
    CHECK(contains(index->problem(), "record 0 is malformed"));
    // Packed frames whose body does not split evenly.
    SegmentWriter p(0);
    REQUIRE(p.append_packed(3, 8, 1));
    std::byte* pf = p.data().data();
    const std::uint32_t odd = detail::frame_header_bytes + 23;
    std::memcpy(pf, &odd, 4);
    const std::uint32_t psum = detail::frame_checksum(pf, odd);
    std::memcpy(pf + 12, &psum, 4);
    auto pindex = detail::SegmentIndex::rebuild(p.bytes(), 0, interval);
    CHECK(pindex->end_position() == 0);
    CHECK(contains(pindex->problem(), "does not split"));
  }

  TEST_CASE("a_record_claiming_more_headers_than_the_decoder_reads_is_an_invalid_frame") {
    // header_count 2^63: doubled it wraps to 0, so a count of header fields
    // would accept the record while decode_record refuses it (> 2^32 - 1).
    SegmentWriter w(0);
    REQUIRE(w.append({msg("key", "value", 5)}, 5));
    const std::vector<std::uint8_t> body{13, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    // rest 13, ts_delta 0, key_len 0, value_len 0, header_count varint(2^63) in 10 bytes
    REQUIRE(w.append_raw(body, 1, 6));
    const std::byte* second = w.bytes().data() + w.frames()[1];
    ringbus::Record decoded{};
    CHECK(detail::decode_record(second + detail::frame_header_bytes, second + detail::frame_header_bytes + body.size(),
                                6, decoded) == nullptr); // the reader refuses it
    auto index = detail::SegmentIndex::rebuild(w.bytes(), 0, interval);
    CHECK(index->end_position() == w.frames()[1]);
    CHECK(index->next_offset() == 1);
    CHECK(contains(index->problem(), "record 0 is malformed"));
  }

  TEST_CASE("a_first_frame_with_another_base_offset_is_refused") {
    auto w = filled_segment(0, true);
    auto index = detail::SegmentIndex::rebuild(w.bytes(), 64, interval); // a stale file under another name
    CHECK(index->end_position() == 0);
    CHECK(index->entries().empty());
    CHECK(contains(index->problem(), "base_offset 0, the previous frames end at offset 64"));
    // A lap given by the caller is enforced from the first frame.
    auto other_lap = detail::SegmentIndex::create(0, segment_bytes, interval);
    detail::ScanOptions options;
    options.lap = 2;
    CHECK(other_lap->catch_up(w.bytes(), options) == detail::ScanStop::invalid_frame);
    CHECK(contains(other_lap->problem(), "lap tag 3"));
    // In-memory frames carry no checksum: skipping the check accepts them.
    std::memset(w.data().data() + 12, 0, 4);
    CHECK(detail::SegmentIndex::rebuild(w.bytes(), 0, interval)->end_position() == 0);
    options = {};
    options.verify_checksums = false;
    CHECK(detail::SegmentIndex::rebuild(w.bytes(), 0, interval, options)->sealed());
  }

  TEST_CASE("a_pad_frame_that_does_not_end_the_segment_is_invalid") {
    SegmentWriter w(0);
    REQUIRE(w.append_packed(1, 8, 1));
    const std::uint64_t word =
        detail::frame_word0(64, detail::frame_type::pad, 0) | (std::uint64_t{3} << 48); // 64 bytes: too short
    std::memcpy(w.data().data() + w.position(), &word, 8);
    auto index = detail::SegmentIndex::rebuild(w.bytes(), 0, interval);
    CHECK(index->end_position() == w.position());
    CHECK(contains(index->problem(), "pad frame of length 64"));
  }

  TEST_CASE("index_options_out_of_limits_are_refused") {
    CHECK(detail::SegmentIndex::create(0, segment_bytes, 32).code() == Errc::invalid_argument);
    CHECK(detail::SegmentIndex::create(0, 3000, interval).code() == Errc::invalid_argument);
    CHECK(detail::SegmentIndex::create(0, std::size_t{2} << 30, interval).code() == Errc::invalid_argument);
  }

  TEST_CASE("a_persisted_index_round_trips_and_verifies_against_its_segment") {
    for (bool sealed : {true, false}) {
      CAPTURE(sealed);
      auto w = filled_segment(4096, sealed);
      auto index = detail::SegmentIndex::rebuild(w.bytes(), 4096, interval);
      REQUIRE(index.ok());
      const auto bytes = index->encode();
      CHECK(bytes.size() == 64 + 24 * index->entries().size());
      auto decoded = detail::SegmentIndex::decode(bytes, detail::segment_index_file_name(4096), 4096, segment_bytes);
      REQUIRE(decoded.ok());
      CHECK(decoded->verify(w.bytes(), "x.idx").ok());
      CHECK(decoded->end_position() == index->end_position());
      CHECK(decoded->next_offset() == index->next_offset());
      CHECK(decoded->max_timestamp() == index->max_timestamp());
      CHECK(decoded->sealed() == sealed);
      for (const Written& r : w.written()) {
        CHECK(decoded->lookup_offset(r.offset).position == index->lookup_offset(r.offset).position);
      }
    }
    CHECK(detail::segment_index_file_name(4096) == "00000000000000004096.idx");
  }

  TEST_CASE("a_damaged_or_foreign_persisted_index_is_refused") {
    auto w = filled_segment(4096, true);
    auto index = detail::SegmentIndex::rebuild(w.bytes(), 4096, interval);
    const auto good = index->encode();
    const std::string name = "00000000000000004096.idx";

    for (std::size_t at : {std::size_t{0}, std::size_t{9}, std::size_t{20}, std::size_t{50}, std::size_t{61},
                           good.size() - 1, good.size() / 2}) {
      CAPTURE(at);
      auto bad = good;
      bad[at] ^= std::byte{0x10};
      const auto d = detail::SegmentIndex::decode(bad, name, 4096, segment_bytes);
      REQUIRE_FALSE(d.ok());
      CHECK(d.code() == Errc::corrupt_data);
      CHECK(contains(d.message(), name));
    }
    auto truncated = good;
    truncated.resize(good.size() - 24);
    CHECK(contains(detail::SegmentIndex::decode(truncated, name, 4096, segment_bytes).message(), "entry_count"));
    CHECK(contains(detail::SegmentIndex::decode(good, name, 0, segment_bytes).message(), "base_offset 4096"));
    CHECK(contains(detail::SegmentIndex::decode(good, name, 4096, segment_bytes * 2).message(), "segment_bytes"));
    CHECK(contains(detail::SegmentIndex::decode(std::span(good).first(10), name, 4096, segment_bytes).message(),
                   "shorter than its 64-byte header"));
  }

  TEST_CASE("a_well_formed_index_of_other_data_fails_verification") {
    // The index of one segment, checked against a segment with other frames
    // at the same name (e.g. rewritten after the index was saved).
    auto w = filled_segment(0, true);
    auto index = detail::SegmentIndex::rebuild(w.bytes(), 0, interval);
    SegmentWriter other(0);
    while (other.append_packed(2, 24, 7)) {
    }
    other.pad();
    auto decoded = detail::SegmentIndex::decode(index->encode(), "0.idx", 0, segment_bytes);
    REQUIRE(decoded.ok());
    const auto s = decoded->verify(other.bytes(), "0.idx");
    CHECK(s.code() == Errc::corrupt_data);
    CHECK(contains(s.message(), "does not match its segment"));

    // An empty index that claims its segment is sealed (a pad at 0) would hide
    // every record of a segment that has frames: it is walked and refused too.
    auto empty = detail::SegmentIndex::create(0, segment_bytes, interval);
    REQUIRE(empty.ok());
    empty->seal();
    auto claimed = detail::SegmentIndex::decode(empty->encode(), "0.idx", 0, segment_bytes);
    REQUIRE(claimed.ok());
    REQUIRE(claimed->entries().empty());
    CHECK(claimed->verify(w.bytes(), "0.idx").code() == Errc::corrupt_data);
    SegmentWriter only_pad(0);
    only_pad.pad();
    CHECK(claimed->verify(only_pad.bytes(), "0.idx").ok());

    // A segment cut after its index was written (a crash lost its tail).
    auto cut = filled_segment(0, false);
    auto full = detail::SegmentIndex::rebuild(cut.bytes(), 0, interval);
    const auto saved = full->encode();
    std::memset(cut.data().data() + cut.frames().back(), 0, segment_bytes - cut.frames().back());
    auto stale = detail::SegmentIndex::decode(saved, "0.idx", 0, segment_bytes);
    REQUIRE(stale.ok());
    CHECK(stale->verify(cut.bytes(), "0.idx").code() == Errc::corrupt_data);
  }
}
