// Frame encoding: varints, zigzag, record bodies, frame headers and padding.
#include "ringbus/detail/frame.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "ringbus/detail/frame_layout.hpp"
#include "test_support.hpp"

using ringbus::ByteView;
using ringbus::Header;
using ringbus::Message;
using ringbus::Record;
using ringbus::test::msg;
using ringbus::test::str;
namespace detail = ringbus::detail;

namespace {

const std::array<std::uint64_t, 16> varint_edges{0,
                                                 1,
                                                 127,
                                                 128,
                                                 255,
                                                 16383,
                                                 16384,
                                                 (1ull << 21) - 1,
                                                 1ull << 21,
                                                 (1ull << 35) + 5,
                                                 (1ull << 56) - 1,
                                                 1ull << 56,
                                                 (1ull << 63) - 1,
                                                 1ull << 63,
                                                 UINT64_MAX - 1,
                                                 UINT64_MAX};

const std::array<std::int64_t, 11> signed_edges{0, 1, -1, 63, -64, 64, -65, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};

std::vector<std::byte> encode(const Message& m, std::int64_t ts_delta) {
  std::vector<std::byte> out(detail::record_body_bytes(m, ts_delta));
  const std::byte* end = detail::encode_record(out.data(), m, ts_delta);
  REQUIRE(end == out.data() + out.size()); // the size function and the encoder agree
  return out;
}

} // namespace

TEST_SUITE("frame") {
  TEST_CASE("varint_sizes_grow_by_one_byte_every_seven_bits") {
    CHECK(detail::varint_size(0) == 1);
    CHECK(detail::varint_size(127) == 1);
    CHECK(detail::varint_size(128) == 2);
    CHECK(detail::varint_size(16383) == 2);
    CHECK(detail::varint_size(16384) == 3);
    CHECK(detail::varint_size((1ull << 63) - 1) == 9);
    CHECK(detail::varint_size(1ull << 63) == 10);
    CHECK(detail::varint_size(UINT64_MAX) == 10);
  }

  TEST_CASE("varints_round_trip_at_every_edge") {
    for (std::uint64_t v : varint_edges) {
      CAPTURE(v);
      std::array<std::byte, 16> buf{};
      std::byte* end = detail::put_varint(buf.data(), v);
      CHECK(static_cast<std::size_t>(end - buf.data()) == detail::varint_size(v));
      std::uint64_t back = 0;
      const std::byte* after = detail::get_varint(buf.data(), end, back);
      CHECK(after == end);
      CHECK(back == v);
    }
  }

  TEST_CASE("truncated_varint_is_rejected") {
    for (std::uint64_t v : varint_edges) {
      CAPTURE(v);
      std::array<std::byte, 16> buf{};
      std::byte* end = detail::put_varint(buf.data(), v);
      std::uint64_t out = 12345;
      for (const std::byte* cut = buf.data(); cut < end; ++cut) {
        CHECK(detail::get_varint(buf.data(), cut, out) == nullptr);
      }
    }
  }

  TEST_CASE("varint_longer_than_ten_bytes_is_rejected") {
    std::array<std::byte, 12> buf{};
    buf.fill(std::byte{0x80});
    buf[11] = std::byte{0x01};
    std::uint64_t out = 0;
    CHECK(detail::get_varint(buf.data(), buf.data() + buf.size(), out) == nullptr);
  }

  TEST_CASE("zigzag_round_trips_and_keeps_small_magnitudes_small") {
    CHECK(detail::zigzag(0) == 0);
    CHECK(detail::zigzag(-1) == 1);
    CHECK(detail::zigzag(1) == 2);
    CHECK(detail::zigzag(-2) == 3);
    CHECK(detail::zigzag(INT64_MAX) == UINT64_MAX - 1);
    CHECK(detail::zigzag(INT64_MIN) == UINT64_MAX);
    for (std::int64_t v : signed_edges) {
      CAPTURE(v);
      CHECK(detail::unzigzag(detail::zigzag(v)) == v);
    }
    CHECK(detail::varint_size(detail::zigzag(-64)) == 1);
    CHECK(detail::varint_size(detail::zigzag(-65)) == 2);
  }

  TEST_CASE("encoded_record_size_matches_record_body_bytes") {
    const std::string big(300, 'b');
    const std::string key127(127, 'k'); // varint length edges: 127 takes one byte, 128 two
    const std::string value128(128, 'v');
    const std::string huge(20000, 'x');
    const std::array<Header, 3> headers{Header{"a", "1"}, Header{"", ""}, Header{"long", big}};
    const std::array<Message, 6> messages{Message{},
                                          msg("k", "v"),
                                          msg("", big),
                                          msg(big, "", 0, headers),
                                          msg(key127, value128),
                                          msg("key", huge, 0, headers)};
    for (const Message& m : messages) {
      for (std::int64_t delta : signed_edges) {
        CAPTURE(delta);
        const std::vector<std::byte> bytes = encode(m, delta);
        CHECK(bytes.size() == detail::record_body_bytes(m, delta));
      }
    }
  }

  // Batches size their records at delta 0 plus max_delta_growth before the
  // frame's base timestamp is known. A record whose length prefix crosses a
  // varint edge as the delta grows grows by 10: key "k" and 122 value bytes
  // are 127 bytes after the prefix at delta 0 (a one-byte prefix), 136 at the
  // largest delta (a two-byte one).
  TEST_CASE("a_timestamp_delta_grows_a_record_by_at_most_max_delta_growth") {
    const std::string key127(127, 'k');
    const std::array<Message, 5> messages{Message{}, msg("k", std::string(122, 'v')), msg("", std::string(16378, 'v')),
                                          msg(key127, ""), msg("k", "v")};
    std::size_t most = 0;
    for (const Message& m : messages) {
      for (std::int64_t delta : signed_edges) {
        CAPTURE(delta);
        const std::size_t grown = detail::record_body_bytes(m, delta) - detail::record_body_bytes(m, 0);
        CHECK(grown <= detail::max_delta_growth);
        most = std::max(most, grown);
      }
    }
    CHECK(most == detail::max_delta_growth); // the bound is reached: it is the least that holds
  }

  TEST_CASE("encoded_record_decodes_to_the_same_record") {
    const std::string binary("\0\x80\xff", 3);
    const std::array<Header, 2> headers{Header{"trace", binary}, Header{"e", ""}};
    const Message m{"the-key", "the value", 0, headers};
    for (std::int64_t delta : {std::int64_t{0}, std::int64_t{-5}, std::int64_t{1'000'000'007}}) {
      const std::vector<std::byte> bytes = encode(m, delta);
      Record r;
      const std::byte* next = detail::decode_record(bytes.data(), bytes.data() + bytes.size(), 1000, r);
      CHECK(next == bytes.data() + bytes.size());
      CHECK(r.timestamp_ns == 1000 + delta);
      CHECK(str(r.key) == "the-key");
      CHECK(str(r.value) == "the value");
      REQUIRE(r.headers.size() == 2);
      const std::optional<ByteView> trace = r.headers.find("trace");
      REQUIRE(trace.has_value());
      CHECK(str(*trace) == binary);
      CHECK(detail::skip_record(bytes.data(), bytes.data() + bytes.size()) == next);
    }
  }

  TEST_CASE("consecutive_records_decode_one_after_another") {
    std::vector<std::byte> body;
    const std::array<Message, 3> messages{msg("a", "1"), msg("", ""), msg("ccc", "333")};
    for (const Message& m : messages) {
      const std::vector<std::byte> one = encode(m, 2);
      body.insert(body.end(), one.begin(), one.end());
    }
    const std::byte* p = body.data();
    const std::byte* end = body.data() + body.size();
    for (const Message& m : messages) {
      Record r;
      p = detail::decode_record(p, end, 0, r);
      REQUIRE(p != nullptr);
      CHECK(r.key == m.key);
      CHECK(r.value == m.value);
      CHECK(r.timestamp_ns == 2);
    }
    CHECK(p == end);
  }

  TEST_CASE("decode_rejects_a_record_cut_short_anywhere") {
    const std::array<Header, 1> headers{Header{"h", "v"}};
    const std::vector<std::byte> bytes = encode(msg("key", std::string(200, 'v'), 0, headers), 300);
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
      CAPTURE(cut);
      Record r;
      CHECK(detail::decode_record(bytes.data(), bytes.data() + cut, 0, r) == nullptr);
      CHECK(detail::skip_record(bytes.data(), bytes.data() + cut) == nullptr);
    }
  }

  TEST_CASE("decode_rejects_lengths_that_run_past_the_record") {
    // rest = 4 bytes: ts delta 0, key length 9 (but only 2 bytes follow).
    const std::array<std::byte, 5> bad_key{std::byte{4}, std::byte{0}, std::byte{9}, std::byte{'a'}, std::byte{'b'}};
    Record r;
    CHECK(detail::decode_record(bad_key.data(), bad_key.data() + bad_key.size(), 0, r) == nullptr);
    // rest = 4: ts 0, key 0, value length 5 (1 byte follows).
    const std::array<std::byte, 5> bad_value{std::byte{4}, std::byte{0}, std::byte{0}, std::byte{5}, std::byte{'x'}};
    CHECK(detail::decode_record(bad_value.data(), bad_value.data() + bad_value.size(), 0, r) == nullptr);
  }

  TEST_CASE("packable_means_value_only") {
    const std::array<Header, 1> headers{Header{"h", "v"}};
    CHECK(detail::packable(msg("", "v")));
    CHECK(detail::packable(Message{}));
    CHECK(detail::packable(msg("", "v", 55)));
    CHECK_FALSE(detail::packable(msg("k", "v")));
    CHECK_FALSE(detail::packable(msg("", "v", 0, headers)));
  }

  TEST_CASE("frame_header_is_written_at_its_documented_offsets_and_its_first_word_returned") {
    std::array<std::byte, 64> frame{};
    frame.fill(std::byte{0xee});
    const std::uint64_t word0 =
        detail::write_header(frame.data(), 45, detail::frame_flags::packed, 3, 0x1122334455667788ull, -9);
    std::uint32_t u32 = 0;
    std::uint64_t u64 = 0;
    std::int64_t i64 = 0;
    // Bytes [0, 8) are the publication word: left for the log to store last.
    for (int i = 0; i < 8; ++i) CHECK(frame[static_cast<std::size_t>(i)] == std::byte{0xee});
    std::memcpy(&u32, frame.data() + 8, 4);
    CHECK(u32 == 3);
    std::memcpy(&u32, frame.data() + 12, 4);
    CHECK(u32 == 0); // no checksum in memory
    std::memcpy(&u64, frame.data() + 16, 8);
    CHECK(u64 == 0x1122334455667788ull);
    std::memcpy(&i64, frame.data() + 24, 8);
    CHECK(i64 == -9);
    CHECK(frame[32] == std::byte{0xee}); // the body is not touched

    CHECK(detail::word0_length(word0) == 45);
    CHECK(detail::word0_type(word0) == detail::frame_type::data);
    CHECK(detail::word0_flags(word0) == detail::frame_flags::packed);
    CHECK(detail::word0_lap_bits(word0) == 0); // the log adds the lap
  }

  TEST_CASE("frame_word0_packs_length_type_and_flags") {
    const std::uint64_t w = detail::frame_word0(4096, detail::frame_type::pad, 0x7f);
    CHECK(detail::word0_length(w) == 4096);
    CHECK(detail::word0_type(w) == detail::frame_type::pad);
    CHECK(detail::word0_flags(w) == 0x7f);
    const std::uint64_t max = detail::frame_word0(UINT32_MAX, detail::frame_type::data, 0);
    CHECK(detail::word0_length(max) == UINT32_MAX);
    CHECK(detail::word0_type(max) == detail::frame_type::data);
  }

  TEST_CASE("zero_padding_clears_up_to_the_next_eight_byte_boundary_only") {
    std::array<std::byte, 24> frame{};
    frame.fill(std::byte{0xaa});
    detail::zero_padding(frame.data(), 13);
    for (std::size_t i = 0; i < 13; ++i) CHECK(frame[i] == std::byte{0xaa});
    for (std::size_t i = 13; i < 16; ++i) CHECK(frame[i] == std::byte{0});
    for (std::size_t i = 16; i < 24; ++i) CHECK(frame[i] == std::byte{0xaa});
    detail::zero_padding(frame.data(), 16); // already aligned: nothing to clear
    CHECK(frame[16] == std::byte{0xaa});
  }

  TEST_CASE("align_up_rounds_up_to_the_alignment_and_powers_of_two_are_recognised") {
    CHECK(detail::align_up(0, 8) == 0);
    CHECK(detail::align_up(1, 8) == 8);
    CHECK(detail::align_up(8, 8) == 8);
    CHECK(detail::align_up(33, 8) == 40);
    CHECK(detail::is_power_of_two(1));
    CHECK(detail::is_power_of_two(4096));
    CHECK_FALSE(detail::is_power_of_two(0));
    CHECK_FALSE(detail::is_power_of_two(6));
    CHECK(detail::cache_line == 128);
  }

  TEST_CASE("put_value_padded_copies_every_size_exactly_and_zeroes_only_the_padding") {
    std::array<std::byte, 64> src{};
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::byte>(0xA0 + i);
    for (std::size_t n = 0; n <= 40; ++n) {
      CAPTURE(n);
      std::array<std::byte, 64> body;
      body.fill(std::byte{0xEE}); // stale bytes of an earlier lap
      ringbus::detail::put_value_padded(body.data(), src.data(), n);
      const std::size_t padded = ringbus::detail::align_up(n, 8);
      for (std::size_t i = 0; i < n; ++i) CHECK(body[i] == src[i]);
      for (std::size_t i = n; i < padded; ++i) CHECK(body[i] == std::byte{0});
      for (std::size_t i = padded; i < body.size(); ++i) CHECK(body[i] == std::byte{0xEE}); // nothing past the frame
    }
  }
} // TEST_SUITE
