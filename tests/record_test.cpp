// ByteView, bytes_of, Message and HeadersView: the record types at the API edge.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ringbus/detail/frame.hpp"
#include "ringbus/record.hpp"
#include "test_support.hpp"

using ringbus::ByteView;
using ringbus::Header;
using ringbus::HeadersView;
using ringbus::Message;
using ringbus::Record;
using ringbus::test::str;

namespace {

// Encodes a record holding `headers` and returns the decoded view's headers
// (the frame bytes live in `storage`).
HeadersView encoded_headers(std::span<const Header> headers, std::vector<std::byte>& storage) {
  Message m;
  m.value = "v";
  m.headers = headers;
  storage.assign(ringbus::detail::record_body_bytes(m, 0), std::byte{0});
  const std::byte* end = ringbus::detail::encode_record(storage.data(), m, 0);
  REQUIRE(end == storage.data() + storage.size());
  Record r;
  REQUIRE(ringbus::detail::decode_record(storage.data(), end, 0, r) == end);
  return r.headers;
}

} // namespace

TEST_SUITE("record") {
  TEST_CASE("byte_view_is_built_from_strings_spans_and_raw_bytes") {
    const std::string s = "hello";
    const std::string_view sv = "view";
    const std::array<std::byte, 3> bytes{std::byte{1}, std::byte{2}, std::byte{3}};
    const std::array<unsigned char, 2> uchars{9, 8};

    CHECK(ByteView(s).str() == "hello");
    CHECK(ByteView(sv).str() == "view");
    CHECK(ByteView("literal").size() == 7);
    CHECK(ByteView(std::span<const std::byte>(bytes)).size() == 3);
    CHECK(ByteView(std::span<const std::byte>(bytes)).data() == bytes.data());
    CHECK(ByteView(std::span<const unsigned char>(uchars)).size() == 2);
    CHECK(static_cast<unsigned char>(ByteView(std::span<const unsigned char>(uchars)).data()[1]) == 8);
    const ByteView raw(static_cast<const void*>(s.data()), 3);
    CHECK(raw.str() == "hel");
    CHECK(raw.span().size() == 3);
    CHECK(raw.span().data() == reinterpret_cast<const std::byte*>(s.data()));
  }

  TEST_CASE("empty_byte_views_are_equal_whatever_they_point_at") {
    const ByteView none;
    CHECK(none.empty());
    CHECK(none.size() == 0);
    CHECK(none.data() == nullptr);
    CHECK(none.str().empty());
    CHECK(none == ByteView(""));
    CHECK(ByteView("abc") == ByteView(std::string("abc")));
    CHECK_FALSE(ByteView("abc") == ByteView("abd"));
    CHECK_FALSE(ByteView("abc") == ByteView("ab"));
  }

  TEST_CASE("byte_view_keeps_embedded_nul_bytes") {
    const std::string with_nul("a\0b", 3);
    const ByteView v(with_nul);
    CHECK(v.size() == 3);
    CHECK(v.str() == with_nul);
  }

  TEST_CASE("bytes_of_a_value_reads_back_with_as") {
    struct Tick {
      std::int64_t price;
      std::uint32_t qty;
      std::uint32_t side;
    };
    const Tick t{-12345, 7, 1};
    const ByteView v = ringbus::bytes_of(t);
    CHECK(v.size() == sizeof(Tick));
    REQUIRE(v.as<Tick>().has_value());
    const Tick back = *v.as<Tick>();
    CHECK(back.price == -12345);
    CHECK(back.qty == 7);
    CHECK(back.side == 1);
    const double d = 2.5;
    CHECK(ringbus::bytes_of(d).as<double>() == std::optional<double>(2.5));
  }

  TEST_CASE("as_is_empty_unless_the_size_matches_exactly") {
    const std::array<unsigned char, 2> two{0x34, 0x12};
    const ByteView v{std::span<const unsigned char>(two)};
    CHECK(v.as<std::uint16_t>() == std::optional<std::uint16_t>(0x1234)); // little-endian
    CHECK_FALSE(v.as<std::uint32_t>().has_value());                       // too short
    CHECK_FALSE(v.as<std::uint8_t>().has_value());                        // too long
    CHECK_FALSE(ByteView().as<std::uint64_t>().has_value());
  }

  TEST_CASE("wall_clock_ns_is_the_system_clock_in_nanoseconds") {
    const auto now = [] {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    const std::int64_t before = now();
    const std::int64_t t = ringbus::wall_clock_ns();
    const std::int64_t after = now();
    CHECK(t >= before);
    CHECK(t <= after);
  }

  TEST_CASE("message_defaults_to_taking_the_time_at_append") {
    const Message m;
    CHECK(m.key.empty());
    CHECK(m.value.empty());
    CHECK(m.timestamp_ns == ringbus::timestamp_now);
    CHECK(m.headers.empty());
  }

  TEST_CASE("headers_view_iterates_every_header_in_order") {
    const std::string binary("\0\xff\x01", 3);
    const std::array<Header, 4> headers{Header{"trace-id", "abc123"}, Header{"empty", ""}, Header{"bin", binary},
                                        Header{"trace-id", "second"}};
    std::vector<std::byte> storage;
    const HeadersView view = encoded_headers(headers, storage);
    CHECK(view.size() == 4);
    CHECK_FALSE(view.empty());

    std::vector<std::pair<std::string, std::string>> seen;
    for (const Header h : view) seen.emplace_back(str(h.name), str(h.value));
    REQUIRE(seen.size() == 4);
    CHECK(seen[0] == std::pair<std::string, std::string>("trace-id", "abc123"));
    CHECK(seen[1] == std::pair<std::string, std::string>("empty", ""));
    CHECK(seen[2] == std::pair<std::string, std::string>("bin", binary));
    CHECK(seen[3] == std::pair<std::string, std::string>("trace-id", "second"));

    auto it = view.begin();
    auto old = it++;
    CHECK(str((*old).name) == "trace-id");
    CHECK(str((*it).name) == "empty");
    ++it;
    ++it;
    ++it;
    CHECK(it == view.end());
  }

  TEST_CASE("headers_view_find_returns_the_first_header_of_that_name") {
    const std::array<Header, 3> headers{Header{"a", "1"}, Header{"b", ""}, Header{"a", "2"}};
    std::vector<std::byte> storage;
    const HeadersView view = encoded_headers(headers, storage);

    const std::optional<ByteView> a = view.find("a");
    REQUIRE(a.has_value());
    CHECK(str(*a) == "1");
    const std::optional<ByteView> b = view.find("b");
    REQUIRE(b.has_value());
    CHECK(b->empty());
    CHECK_FALSE(view.find("missing").has_value());
    CHECK_FALSE(view.find("").has_value());
    CHECK_FALSE(view.find("aa").has_value());
  }

  TEST_CASE("default_headers_view_is_empty") {
    const HeadersView view;
    CHECK(view.empty());
    CHECK(view.size() == 0);
    CHECK(view.begin() == view.end());
    CHECK_FALSE(view.find("x").has_value());
  }

  TEST_CASE("malformed_headers_end_the_iteration_without_reading_past_the_record") {
    // Two headers claimed, but the second's name length runs past the end.
    std::vector<std::byte> bytes{std::byte{1},   std::byte{'n'}, std::byte{1},
                                 std::byte{'v'}, std::byte{100}, std::byte{'x'}};
    const HeadersView view(bytes.data(), bytes.data() + bytes.size(), 2);
    int seen = 0;
    for (const Header h : view) {
      CHECK(str(h.name) == "n");
      CHECK(str(h.value) == "v");
      ++seen;
    }
    CHECK(seen == 1);
    CHECK_FALSE(view.find("x").has_value());

    // A value length past the end stops at once.
    std::vector<std::byte> bad_value{std::byte{1}, std::byte{'n'}, std::byte{5}, std::byte{'v'}};
    const HeadersView broken(bad_value.data(), bad_value.data() + bad_value.size(), 1);
    CHECK(broken.begin() == broken.end());
  }

} // TEST_SUITE
