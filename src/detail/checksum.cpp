#include "ringbus/detail/checksum.hpp"

#include <array>
#include <atomic>
#include <bit>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define RINGBUS_CRC32C_SSE42 1
#else
#define RINGBUS_CRC32C_SSE42 0
#endif

namespace ringbus::detail {

namespace {

constexpr std::uint32_t castagnoli_reflected = 0x82F63B78u;

// tables[0] is the classic byte-at-a-time table; tables[k][b] is the CRC of
// byte b followed by k zero bytes, so eight bytes are folded with eight lookups.
constexpr std::array<std::array<std::uint32_t, 256>, 8> make_tables() noexcept {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t crc = b;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) != 0 ? castagnoli_reflected : 0u);
    t[0][b] = crc;
  }
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::size_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xffu];
  }
  return t;
}

constexpr auto tables = make_tables();

using Implementation = std::uint32_t (*)(std::uint32_t, const void*, std::size_t) noexcept;

std::uint32_t resolve_and_run(std::uint32_t crc, const void* data, std::size_t bytes) noexcept;

// The implementation crc32c_extend calls; resolve_and_run until the first call picks one.
std::atomic<Implementation> implementation{&resolve_and_run};

Implementation best() noexcept { return crc32c_hardware_available() ? &crc32c_hardware : &crc32c_software; }

std::uint32_t resolve_and_run(std::uint32_t crc, const void* data, std::size_t bytes) noexcept {
  const Implementation chosen = best();
  // relaxed: the pointer names code, not data another thread wrote; two
  // threads racing here both store the same value.
  implementation.store(chosen, std::memory_order_relaxed);
  return chosen(crc, data, bytes);
}

#if RINGBUS_CRC32C_SSE42
__attribute__((target("sse4.2"))) std::uint32_t sse42_crc(std::uint32_t crc, const void* data,
                                                          std::size_t bytes) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = ~crc;
  // Byte steps up to an 8-byte boundary, so the word loads below are aligned.
  while (bytes > 0 && (reinterpret_cast<std::uintptr_t>(p) & 7u) != 0) {
    c = _mm_crc32_u8(c, *p++);
    --bytes;
  }
  std::uint64_t c64 = c;
  while (bytes >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    c64 = _mm_crc32_u64(c64, w);
    p += 8;
    bytes -= 8;
  }
  c = static_cast<std::uint32_t>(c64);
  while (bytes > 0) {
    c = _mm_crc32_u8(c, *p++);
    --bytes;
  }
  return ~c;
}
#endif

} // namespace

std::uint32_t crc32c_software(std::uint32_t crc, const void* data, std::size_t bytes) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = ~crc;
  if constexpr (std::endian::native == std::endian::little) {
    while (bytes >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, sizeof w);
      w ^= c;
      c = tables[7][w & 0xffu] ^ tables[6][(w >> 8) & 0xffu] ^ tables[5][(w >> 16) & 0xffu] ^
          tables[4][(w >> 24) & 0xffu] ^ tables[3][(w >> 32) & 0xffu] ^ tables[2][(w >> 40) & 0xffu] ^
          tables[1][(w >> 48) & 0xffu] ^ tables[0][w >> 56];
      p += 8;
      bytes -= 8;
    }
  }
  while (bytes > 0) {
    c = tables[0][(c ^ *p++) & 0xffu] ^ (c >> 8);
    --bytes;
  }
  return ~c;
}

std::uint32_t crc32c_hardware(std::uint32_t crc, const void* data, std::size_t bytes) noexcept {
#if RINGBUS_CRC32C_SSE42
  return sse42_crc(crc, data, bytes);
#else
  return crc32c_software(crc, data, bytes);
#endif
}

bool crc32c_hardware_available() noexcept {
#if RINGBUS_CRC32C_SSE42
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") != 0;
#else
  return false;
#endif
}

std::string_view crc32c_implementation() noexcept { return crc32c_hardware_available() ? "sse4.2" : "slicing-by-8"; }

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t bytes) noexcept {
  // relaxed: see resolve_and_run; any value loaded is a valid implementation.
  return implementation.load(std::memory_order_relaxed)(crc, data, bytes);
}

} // namespace ringbus::detail
