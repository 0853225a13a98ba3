// CRC32C: known vectors (RFC 3720), the hardware and portable implementations
// agreeing on every length and alignment, and the frame checksum's coverage.
#include "ringbus/detail/checksum.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <string_view>
#include <vector>

#include "ringbus/detail/frame.hpp"
#include "test_support.hpp"

namespace detail = ringbus::detail;

namespace {

std::uint32_t of(std::string_view text) { return detail::crc32c(text.data(), text.size()); }

std::array<unsigned char, 32> filled(int first, int step) {
  std::array<unsigned char, 32> a{};
  for (int i = 0; i < 32; ++i) a[static_cast<std::size_t>(i)] = static_cast<unsigned char>(first + step * i);
  return a;
}

} // namespace

TEST_SUITE("checksum") {
  TEST_CASE("crc32c_matches_the_published_check_values") {
    CHECK(of("123456789") == 0xE3069283u);
    CHECK(of("") == 0u);
    const auto zeros = filled(0, 0);
    const auto ones = filled(0xff, 0);
    const auto up = filled(0, 1);
    const auto down = filled(31, -1);
    for (auto implementation : {&detail::crc32c_software, &detail::crc32c_hardware}) {
      if (implementation == &detail::crc32c_hardware && !detail::crc32c_hardware_available()) continue;
      CHECK(implementation(0, "123456789", 9) == 0xE3069283u);
      CHECK(implementation(0, zeros.data(), 32) == 0x8A9136AAu); // RFC 3720 B.4
      CHECK(implementation(0, ones.data(), 32) == 0x62A8AB43u);
      CHECK(implementation(0, up.data(), 32) == 0x46DD794Eu);
      CHECK(implementation(0, down.data(), 32) == 0x113FDB5Cu);
      CHECK(implementation(0, nullptr, 0) == 0u);
    }
  }

  TEST_CASE("hardware_and_software_agree_on_every_length_and_alignment") {
    if (!detail::crc32c_hardware_available()) {
      MESSAGE("skipped: this CPU has no SSE4.2 crc32 instruction");
      return;
    }
    std::mt19937_64 random(20240611);
    std::vector<unsigned char> buffer(1024 + 16);
    for (auto& b : buffer) b = static_cast<unsigned char>(random());
    for (std::size_t start = 0; start < 8; ++start) {
      for (std::size_t length = 0; length <= 1024; ++length) {
        const std::uint32_t seed = static_cast<std::uint32_t>(random());
        const auto* p = buffer.data() + start;
        const std::uint32_t soft = detail::crc32c_software(seed, p, length);
        const std::uint32_t hard = detail::crc32c_hardware(seed, p, length);
        if (soft != hard) {
          CAPTURE(start);
          CAPTURE(length);
          CHECK(soft == hard);
        }
      }
    }
    CHECK(detail::crc32c_implementation() == "sse4.2+pclmul");
  }

  TEST_CASE("hardware_and_software_agree_on_long_inputs_past_every_fold_width") {
    // The hardware path folds 64 bytes at a time from 256 bytes on and 256
    // at a time from 1 KiB on (AVX-512): lengths around and far past those,
    // at random alignments and starting CRCs.
    if (!detail::crc32c_hardware_available()) {
      MESSAGE("skipped: this CPU has no SSE4.2 crc32 instruction");
      return;
    }
    std::mt19937_64 random(20261127);
    std::vector<unsigned char> buffer((1 << 17) + 64);
    for (auto& b : buffer) b = static_cast<unsigned char>(random());
    std::vector<std::size_t> lengths;
    for (std::size_t edge : {256u, 320u, 1024u, 1280u, 16416u, 65536u}) {
      for (std::size_t d = 0; d < 80; ++d) lengths.push_back(edge - 40 + d);
    }
    for (int i = 0; i < 400; ++i) lengths.push_back(random() % (1 << 17));
    for (const std::size_t length : lengths) {
      const std::size_t start = random() % 64;
      const auto seed = static_cast<std::uint32_t>(random());
      const auto* p = buffer.data() + start;
      if (detail::crc32c_software(seed, p, length) != detail::crc32c_hardware(seed, p, length)) {
        CAPTURE(start);
        CAPTURE(length);
        CHECK(detail::crc32c_software(seed, p, length) == detail::crc32c_hardware(seed, p, length));
      }
    }
  }

  TEST_CASE("extending_a_crc_equals_the_crc_of_the_whole") {
    const std::string_view text = "The quick brown fox jumps over the lazy dog, twice over, for good measure.";
    const std::uint32_t whole = of(text);
    for (std::size_t split = 0; split <= text.size(); ++split) {
      const std::uint32_t first = detail::crc32c(text.data(), split);
      CHECK(detail::crc32c_extend(first, text.data() + split, text.size() - split) == whole);
      CHECK(detail::crc32c_software(detail::crc32c_software(0, text.data(), split), text.data() + split,
                                    text.size() - split) == whole);
    }
  }

  TEST_CASE("frame_checksum_covers_everything_but_the_lap_tag_and_itself") {
    std::array<std::byte, 72> frame{};
    const std::string value = "payload of a packed record...";
    const std::uint32_t length = static_cast<std::uint32_t>(detail::frame_header_bytes + value.size());
    const std::uint64_t word0 =
        detail::write_header(frame.data(), length, detail::frame_flags::packed, 1, 4096, 1'700'000'000'000'000'000);
    std::memcpy(frame.data(), &word0, 8);
    std::memcpy(frame.data() + detail::frame_header_bytes, value.data(), value.size());
    const std::uint32_t sum = detail::frame_checksum(frame.data(), length);

    auto changed = [&](std::size_t at) {
      auto copy = frame;
      copy[at] ^= std::byte{0x01};
      return detail::frame_checksum(copy.data(), length) != sum;
    };
    CHECK_FALSE(changed(6)); // lap tag
    CHECK_FALSE(changed(7));
    for (std::size_t at = 12; at < 16; ++at) CHECK_FALSE(changed(at)); // the checksum field
    CHECK(changed(4));                                                 // type
    CHECK(changed(5));                                                 // flags
    CHECK(changed(8));                                                 // record_count
    CHECK(changed(16));                                                // base_offset
    CHECK(changed(24));                                                // base_timestamp
    CHECK(changed(length - 1));                                        // last body byte
    CHECK_FALSE(changed(length));                                      // padding
  }

  // Run with: ringbus-tests -tc='crc32c_throughput*' --no-skip
  TEST_CASE("crc32c_throughput_of_both_implementations" * doctest::skip()) {
    std::vector<unsigned char> buffer(std::size_t{1} << 20);
    std::mt19937_64 random(7);
    for (auto& b : buffer) b = static_cast<unsigned char>(random());
    auto measure = [&](auto implementation, std::size_t chunk) {
      std::uint32_t crc = 0;
      std::size_t bytes = 0;
      const auto start = std::chrono::steady_clock::now();
      for (int round = 0; round < 64; ++round) {
        for (std::size_t at = 0; at + chunk <= buffer.size(); at += chunk) {
          crc = implementation(crc, buffer.data() + at, chunk);
          bytes += chunk;
        }
      }
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      volatile std::uint32_t sink = crc;
      (void)sink;
      return static_cast<double>(bytes) / took.count() / 1e9;
    };
    for (std::size_t chunk : {64u, 1024u, 65536u}) {
      MESSAGE("chunk " << chunk << " B: software " << measure(&detail::crc32c_software, chunk) << " GB/s, hardware "
                       << (detail::crc32c_hardware_available() ? measure(&detail::crc32c_hardware, chunk) : 0.0)
                       << " GB/s");
    }
  }
}
