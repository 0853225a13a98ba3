#include "ringbus/detail/checksum.hpp"

#include <array>
#include <atomic>
#include <bit>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <nmmintrin.h>
#include <wmmintrin.h>
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

// Long inputs: carry-less multiplication folding (Intel, "Fast CRC Computation
// for Generic Polynomials Using PCLMULQDQ", 2009), four 16-byte lanes 64 bytes
// apart, then the crc32 instruction over the folded 16 bytes and the tail.
// One crc32q stream is bound by its 3-cycle latency (~8 bytes per 3 cycles,
// ~7 GB/s here); the folds are independent multiplies (~4x that). The
// constants are x^n mod P, bit-reflected, shifted left by one (reflected
// domain), for n = 4*128 +- 32 (fold by 64 bytes) and 128 +- 32 (by 16):
// the same values as ISA-L's crc32_iscsi and the Linux kernel's.
constexpr std::uint64_t fold_64_lo = 0x740eef02;  // x^(512+32) mod P
constexpr std::uint64_t fold_64_hi = 0x9e4addf8;  // x^(512-32) mod P
constexpr std::uint64_t fold_16_lo = 0xf20c0dfe;  // x^(128+32) mod P
constexpr std::uint64_t fold_16_hi = 0x14cd00bd6; // x^(128-32) mod P
constexpr std::size_t fold_min_bytes = 256;       // below: one crc32q stream is as fast

__attribute__((target("sse4.2,pclmul"))) inline __m128i fold(__m128i x, __m128i k, __m128i next) noexcept {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next);
}

// x followed by the tail (bytes of it at p) has the message's CRC with a zero start.
__attribute__((target("sse4.2,pclmul"))) inline std::uint32_t finish(__m128i x, const unsigned char* p,
                                                                     std::size_t bytes) noexcept {
  std::uint64_t c64 = _mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(x)));
  c64 = _mm_crc32_u64(c64, static_cast<std::uint64_t>(_mm_extract_epi64(x, 1)));
  return sse42_crc(~static_cast<std::uint32_t>(c64), p, bytes);
}

__attribute__((target("sse4.2,pclmul"))) std::uint32_t clmul_crc(std::uint32_t crc, const void* data,
                                                                 std::size_t bytes) noexcept {
  if (bytes < fold_min_bytes) return sse42_crc(crc, data, bytes);
  const auto* p = static_cast<const unsigned char*>(data);
  const auto load = [](const unsigned char* at) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(at)); };
  // The running CRC (raw, pre-inverted) enters as the first 4 bytes' xor.
  __m128i x0 = _mm_xor_si128(load(p), _mm_cvtsi32_si128(static_cast<int>(~crc)));
  __m128i x1 = load(p + 16);
  __m128i x2 = load(p + 32);
  __m128i x3 = load(p + 48);
  p += 64;
  bytes -= 64;
  const __m128i k64 = _mm_set_epi64x(static_cast<long long>(fold_64_hi), static_cast<long long>(fold_64_lo));
  while (bytes >= 64) {
    x0 = fold(x0, k64, load(p));
    x1 = fold(x1, k64, load(p + 16));
    x2 = fold(x2, k64, load(p + 32));
    x3 = fold(x3, k64, load(p + 48));
    p += 64;
    bytes -= 64;
  }
  const __m128i k16 = _mm_set_epi64x(static_cast<long long>(fold_16_hi), static_cast<long long>(fold_16_lo));
  __m128i x = fold(fold(fold(x0, k16, x1), k16, x2), k16, x3);
  while (bytes >= 16) {
    x = fold(x, k16, load(p));
    p += 16;
    bytes -= 16;
  }
  return finish(x, p, bytes);
}

// The same with 512-bit registers (VPCLMULQDQ, AVX-512): four registers of
// four 16-byte lanes each fold 256 bytes per step; at the end the registers
// fold into one (64 bytes apart) and its lanes into one (48, 32, 16 bytes).
constexpr std::uint64_t fold_256_lo = 0xdcb17aa4; // x^(2048+32) mod P
constexpr std::uint64_t fold_256_hi = 0xb9e02b86; // x^(2048-32) mod P
constexpr std::uint64_t fold_48_lo = 0x1c291d04;  // x^(384+32) mod P
constexpr std::uint64_t fold_48_hi = 0x1d82c63da; // x^(384-32) mod P
constexpr std::uint64_t fold_32_lo = 0x1384aa63a; // x^(256+32) mod P
constexpr std::uint64_t fold_32_hi = 0xba4fc28e;  // x^(256-32) mod P
constexpr std::size_t wide_fold_min_bytes = 1024; // below: the 128-bit folds

__attribute__((target("sse4.2,pclmul,avx512f,avx512vl,vpclmulqdq"))) inline __m512i fold_wide(__m512i x, __m512i k,
                                                                                              __m512i next) noexcept {
  // next ^ (x.lo64 * k.lo64) ^ (x.hi64 * k.hi64), lane by lane (0x96: a ^ b ^ c).
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11), next,
                                   0x96);
}

__attribute__((target("sse4.2,pclmul,avx512f,avx512vl,vpclmulqdq"))) std::uint32_t wide_crc(
    std::uint32_t crc, const void* data, std::size_t bytes) noexcept {
  if (bytes < wide_fold_min_bytes) return clmul_crc(crc, data, bytes);
  const auto* p = static_cast<const unsigned char*>(data);
  __m512i x0 =
      _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, static_cast<long long>(~crc)));
  __m512i x1 = _mm512_loadu_si512(p + 64);
  __m512i x2 = _mm512_loadu_si512(p + 128);
  __m512i x3 = _mm512_loadu_si512(p + 192);
  p += 256;
  bytes -= 256;
  const __m512i k256 = _mm512_set_epi64(static_cast<long long>(fold_256_hi), static_cast<long long>(fold_256_lo),
                                        static_cast<long long>(fold_256_hi), static_cast<long long>(fold_256_lo),
                                        static_cast<long long>(fold_256_hi), static_cast<long long>(fold_256_lo),
                                        static_cast<long long>(fold_256_hi), static_cast<long long>(fold_256_lo));
  while (bytes >= 256) {
    x0 = fold_wide(x0, k256, _mm512_loadu_si512(p));
    x1 = fold_wide(x1, k256, _mm512_loadu_si512(p + 64));
    x2 = fold_wide(x2, k256, _mm512_loadu_si512(p + 128));
    x3 = fold_wide(x3, k256, _mm512_loadu_si512(p + 192));
    p += 256;
    bytes -= 256;
  }
  const __m512i k64 = _mm512_set_epi64(static_cast<long long>(fold_64_hi), static_cast<long long>(fold_64_lo),
                                       static_cast<long long>(fold_64_hi), static_cast<long long>(fold_64_lo),
                                       static_cast<long long>(fold_64_hi), static_cast<long long>(fold_64_lo),
                                       static_cast<long long>(fold_64_hi), static_cast<long long>(fold_64_lo));
  __m512i x = fold_wide(fold_wide(fold_wide(x0, k64, x1), k64, x2), k64, x3);
  while (bytes >= 64) {
    x = fold_wide(x, k64, _mm512_loadu_si512(p));
    p += 64;
    bytes -= 64;
  }
  // Lanes 0..2 fold 48, 32 and 16 bytes forward onto lane 3.
  const __m128i k48 = _mm_set_epi64x(static_cast<long long>(fold_48_hi), static_cast<long long>(fold_48_lo));
  const __m128i k32 = _mm_set_epi64x(static_cast<long long>(fold_32_hi), static_cast<long long>(fold_32_lo));
  const __m128i k16 = _mm_set_epi64x(static_cast<long long>(fold_16_hi), static_cast<long long>(fold_16_lo));
  // (Through memory: GCC 12's lane-extract intrinsics trip -Wmaybe-uninitialized.)
  alignas(64) __m128i lanes[4];
  _mm512_store_si512(lanes, x);
  __m128i lane = lanes[3];
  lane = fold(lanes[0], k48, lane);
  lane = fold(lanes[1], k32, lane);
  lane = fold(lanes[2], k16, lane);
  while (bytes >= 16) {
    lane = fold(lane, k16, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    p += 16;
    bytes -= 16;
  }
  return finish(lane, p, bytes);
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
  // Decided once (a thread-safe static): AVX-512 with VPCLMULQDQ, else 128-bit folds.
  static const bool wide = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("avx512vl") != 0 &&
           __builtin_cpu_supports("vpclmulqdq") != 0;
  }();
  return wide ? wide_crc(crc, data, bytes) : clmul_crc(crc, data, bytes);
#else
  return crc32c_software(crc, data, bytes);
#endif
}

bool crc32c_hardware_available() noexcept {
#if RINGBUS_CRC32C_SSE42
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") != 0 && __builtin_cpu_supports("pclmul") != 0;
#else
  return false;
#endif
}

std::string_view crc32c_implementation() noexcept {
  return crc32c_hardware_available() ? "sse4.2+pclmul" : "slicing-by-8";
}

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t bytes) noexcept {
  // relaxed: see resolve_and_run; any value loaded is a valid implementation.
  return implementation.load(std::memory_order_relaxed)(crc, data, bytes);
}

} // namespace ringbus::detail
