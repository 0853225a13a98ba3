// Segment file headers: encoding, and the refusal of every field that does
// not belong to this build, this topic or this file; segment file names.
#include "ringbus/detail/segment_layout.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ringbus/detail/checksum.hpp"
#include "test_support.hpp"

using ringbus::Errc;
using ringbus::test::contains;
namespace detail = ringbus::detail;

namespace {

constexpr std::uint64_t segment_bytes = 1 << 16;
const std::string file_name = "00000000000000000128.seg";

std::vector<std::byte> valid_header() {
  std::vector<std::byte> bytes(detail::segment_header_bytes, std::byte{0x5a});
  detail::SegmentHeaderFields fields;
  fields.page_size = 4096;
  fields.segment_bytes = segment_bytes;
  fields.base_offset = 128;
  fields.created_ns = 1'700'000'000'123'456'789;
  fields.topic = "orders";
  fields.base_position = 3 * segment_bytes;
  fields.ring_capacity = 8 * segment_bytes;
  fields.flags = detail::segment_flags::opened_mid_batch;
  REQUIRE(detail::encode_segment_header(bytes, fields).ok());
  return bytes;
}

template <class T>
void put(std::vector<std::byte>& bytes, std::size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

// Recomputes the header checksum after a test changed a field, so the field
// itself (not the checksum) is what gets refused.
void reseal(std::vector<std::byte>& bytes) {
  put(bytes, offsetof(detail::SegmentHeader, header_checksum),
      detail::crc32c(bytes.data(), detail::segment_header_checked_bytes));
}

ringbus::Status check(const std::vector<std::byte>& bytes, std::string_view name = file_name) {
  return detail::validate_segment_header(bytes, name, "orders", segment_bytes);
}

} // namespace

TEST_SUITE("segment_layout") {
  TEST_CASE("an_encoded_header_validates_and_reads_back_every_field") {
    const auto bytes = valid_header();
    detail::SegmentHeaderFields out;
    const auto s = detail::validate_segment_header(bytes, file_name, "orders", segment_bytes, &out);
    REQUIRE(s.ok());
    CHECK(out.page_size == 4096);
    CHECK(out.segment_bytes == segment_bytes);
    CHECK(out.base_offset == 128);
    CHECK(out.created_ns == 1'700'000'000'123'456'789);
    CHECK(out.topic == "orders");
    CHECK(out.base_position == 3 * segment_bytes);
    CHECK(out.ring_capacity == 8 * segment_bytes);
    CHECK(out.flags == detail::segment_flags::opened_mid_batch);
    CHECK(detail::segment_data_offset(out) == 4096);
    CHECK(std::memcmp(bytes.data(), "RBUS-SEG", 8) == 0);
    // The rest of the page is zero, whatever was in the buffer before.
    for (std::size_t i = detail::segment_header_checked_bytes + 4; i < bytes.size(); ++i) {
      REQUIRE(bytes[i] == std::byte{0});
    }
    // A name that does not parse as a segment file name skips the base offset check.
    CHECK(check(bytes, "copy-of-a-segment").ok());
  }

  TEST_CASE("each_bad_field_is_refused_with_the_file_and_the_field_named") {
    struct Case {
      const char* field;
      std::function<void(std::vector<std::byte>&)> spoil;
      const char* says;
    };
    const std::vector<Case> cases{
        {"magic", [](auto& b) { std::memcpy(b.data(), "SQLite f", 8); }, "magic \"SQLite f\" is not \"RBUS-SEG\""},
        {"format_version",
         [](auto& b) {
           put<std::uint32_t>(b, offsetof(detail::SegmentHeader, format_version), 7);
           reseal(b);
         },
         "format_version 7, this build reads 1"},
        {"header_checksum", [](auto& b) { b[offsetof(detail::SegmentHeader, topic_name)] = std::byte{'O'}; },
         "header_checksum"},
        {"page_size too small",
         [](auto& b) {
           put<std::uint32_t>(b, offsetof(detail::SegmentHeader, page_size), 2048);
           reseal(b);
         },
         "page_size 2048"},
        {"page_size not a power of two",
         [](auto& b) {
           put<std::uint32_t>(b, offsetof(detail::SegmentHeader, page_size), 3 * 4096);
           reseal(b);
         },
         "page_size 12288"},
        {"segment_bytes",
         [](auto& b) {
           put<std::uint64_t>(b, offsetof(detail::SegmentHeader, segment_bytes), 1 << 20);
           reseal(b);
         },
         "segment_bytes 1048576, the topic's segments are 65536"},
        {"frame_checksum",
         [](auto& b) {
           put<std::uint32_t>(b, offsetof(detail::SegmentHeader, frame_checksum), 2);
           reseal(b);
         },
         "frame_checksum 2"},
        {"ring_capacity",
         [](auto& b) {
           put<std::uint64_t>(b, offsetof(detail::SegmentHeader, ring_capacity), 3 * segment_bytes);
           reseal(b);
         },
         "ring_capacity 196608"},
        {"flags",
         [](auto& b) {
           put<std::uint32_t>(b, offsetof(detail::SegmentHeader, flags), 0x80);
           reseal(b);
         },
         "flags 0x00000080 has bits"},
        {"base_position",
         [](auto& b) {
           put<std::uint64_t>(b, offsetof(detail::SegmentHeader, base_position), 100);
           reseal(b);
         },
         "base_position 100 is not a multiple"},
        {"name_length zero",
         [](auto& b) {
           put<std::uint32_t>(b, offsetof(detail::SegmentHeader, name_length), 0);
           reseal(b);
         },
         "name_length 0"},
        {"name_length too long",
         [](auto& b) {
           put<std::uint32_t>(b, offsetof(detail::SegmentHeader, name_length), 256);
           reseal(b);
         },
         "name_length 256"},
        {"topic_name tail",
         [](auto& b) {
           b[offsetof(detail::SegmentHeader, topic_name) + 200] = std::byte{'x'};
           reseal(b);
         },
         "topic_name has non-zero bytes"},
        {"topic_name",
         [](auto& b) {
           std::memcpy(b.data() + offsetof(detail::SegmentHeader, topic_name), "trades", 6);
           reseal(b);
         },
         "topic_name \"trades\", this directory holds topic \"orders\""},
        {"base_offset",
         [](auto& b) {
           put<std::uint64_t>(b, offsetof(detail::SegmentHeader, base_offset), 64);
           reseal(b);
         },
         "base_offset 64 does not match the file name's 128"},
    };
    for (const Case& c : cases) {
      CAPTURE(c.field);
      auto bytes = valid_header();
      c.spoil(bytes);
      const auto s = check(bytes);
      REQUIRE_FALSE(s.ok());
      CHECK(s.code() == Errc::corrupt_data);
      CHECK(contains(s.message(), "segment " + file_name + ": "));
      CHECK(contains(s.message(), c.says));
    }
  }

  TEST_CASE("a_file_shorter_than_a_header_is_refused") {
    const auto bytes = valid_header();
    const auto s = detail::validate_segment_header(std::span(bytes).first(100), file_name, "orders", segment_bytes);
    CHECK(s.code() == Errc::corrupt_data);
    CHECK(contains(s.message(), "file is 100 bytes"));
  }

  TEST_CASE("encoding_refuses_fields_out_of_their_limits") {
    std::vector<std::byte> bytes(detail::segment_header_bytes);
    detail::SegmentHeaderFields fields;
    fields.segment_bytes = segment_bytes;
    fields.topic = "orders";
    fields.ring_capacity = 2 * segment_bytes;
    CHECK(detail::encode_segment_header(bytes, fields).ok());
    auto bad = fields;
    bad.ring_capacity = 3 * segment_bytes;
    CHECK(detail::encode_segment_header(bytes, bad).code() == Errc::invalid_argument);
    bad = fields;
    bad.base_position = segment_bytes / 2;
    CHECK(detail::encode_segment_header(bytes, bad).code() == Errc::invalid_argument);
    bad = fields;
    bad.page_size = 1000;
    CHECK(detail::encode_segment_header(bytes, bad).code() == Errc::invalid_argument);
    bad = fields;
    bad.segment_bytes = 3000;
    CHECK(detail::encode_segment_header(bytes, bad).code() == Errc::invalid_argument);
    bad = fields;
    bad.topic = "../etc";
    CHECK(detail::encode_segment_header(bytes, bad).code() == Errc::invalid_argument);
    bad = fields;
    bad.topic = std::string(256, 't');
    CHECK(detail::encode_segment_header(bytes, bad).code() == Errc::invalid_argument);
    CHECK(detail::encode_segment_header(std::span(bytes).first(4095), fields).code() == Errc::invalid_argument);
    fields.topic = std::string(255, 't');
    REQUIRE(detail::encode_segment_header(bytes, fields).ok());
    CHECK(detail::validate_segment_header(bytes, "x", fields.topic, segment_bytes).ok());
  }

  TEST_CASE("a_seal_reads_back_from_its_place_in_the_header_page_and_nothing_else_reads_as_one") {
    std::vector<std::byte> page = valid_header();
    CHECK(!detail::decode_segment_seal(page).has_value()); // zeros there: none written
    const detail::SegmentSeal seal{3 * segment_bytes, 4242, 0x0123'4567'89ab'cdef};
    const auto bytes = detail::encode_segment_seal(seal);
    std::memcpy(page.data() + detail::segment_seal_at, bytes.data(), bytes.size());
    const std::optional<detail::SegmentSeal> back = detail::decode_segment_seal(page);
    REQUIRE(back.has_value());
    CHECK(back->base_position == seal.base_position);
    CHECK(back->end_offset == seal.end_offset);
    CHECK(back->boot == seal.boot);
    // The header around it still validates: the seal is outside its checksum.
    CHECK(detail::validate_segment_header(page, file_name, "orders", segment_bytes).ok());
    for (std::size_t at = 0; at < detail::segment_seal_bytes; ++at) {
      CAPTURE(at);
      std::vector<std::byte> flipped = page;
      flipped[detail::segment_seal_at + at] ^= std::byte{0x10}; // a torn or damaged byte anywhere in it
      CHECK(!detail::decode_segment_seal(flipped).has_value());
    }
    CHECK(!detail::decode_segment_seal(std::span(page).first(detail::segment_seal_at + detail::segment_seal_bytes - 1))
               .has_value());
  }

  TEST_CASE("segment_file_names_are_twenty_digits_and_dot_seg") {
    CHECK(detail::segment_file_name(0) == "00000000000000000000.seg");
    CHECK(detail::segment_file_name(4096) == "00000000000000004096.seg");
    CHECK(detail::segment_file_name(UINT64_MAX) == "18446744073709551615.seg");
    for (std::uint64_t v : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{4096}, UINT64_MAX - 1, UINT64_MAX}) {
      CHECK(detail::parse_segment_file_name(detail::segment_file_name(v)) == v);
    }
    for (const char* name : {"0000000000000000000.seg", "000000000000000000000.seg", "00000000000000000000.idx",
                             "00000000000000000000.seg.tmp", "0000000000000000000a.seg", "+0000000000000000000.seg",
                             "-0000000000000000001.seg", "18446744073709551616.seg", "99999999999999999999.seg",
                             " 0000000000000000000.seg", "", ".seg", "LOCK"}) {
      CAPTURE(name);
      CHECK_FALSE(detail::parse_segment_file_name(name).has_value());
    }
  }
}
