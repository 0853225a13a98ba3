// CRC32C (Castagnoli), the checksum of everything ringbus writes to disk:
// frames of persistent topics, segment headers, offset-store slots, indexes.
//
// Parameters (the iSCSI / ext4 / Kafka CRC-32C): reflected polynomial
// 0x82F63B78, initial value ~0, final xor ~0. crc32c("123456789") == 0xE3069283.
//
// Two implementations give the same values: the hardware one (x86-64, picked at
// run time with __builtin_cpu_supports) and a portable slicing-by-8 table walk.
// crc32c() calls the best one the CPU has. The hardware one runs SSE4.2's
// crc32 instruction below 256 bytes and carry-less multiplication folds above
// (PCLMULQDQ, or VPCLMULQDQ on AVX-512 CPUs from 1 KiB on; checksum.cpp): one
// crc32 stream does ~7 GB/s here, the 512-bit folds ~75 GB/s of one core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "ringbus/detail/frame_layout.hpp"

namespace ringbus::detail {

// Continues a CRC: crc32c_extend(crc32c(a), b) == crc32c(a followed by b); crc 0 starts one.
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t bytes) noexcept;

inline std::uint32_t crc32c(const void* data, std::size_t bytes) noexcept { return crc32c_extend(0, data, bytes); }
inline std::uint32_t crc32c(std::span<const std::byte> bytes) noexcept {
  return crc32c_extend(0, bytes.data(), bytes.size());
}

// The portable implementation (slicing-by-8), same contract as crc32c_extend.
std::uint32_t crc32c_software(std::uint32_t crc, const void* data, std::size_t bytes) noexcept;
// The SSE4.2 implementation; call only when crc32c_hardware_available().
std::uint32_t crc32c_hardware(std::uint32_t crc, const void* data, std::size_t bytes) noexcept;
// True when this CPU has the crc32 instruction (and this build can use it).
bool crc32c_hardware_available() noexcept;
// "sse4.2+pclmul" or "slicing-by-8": what crc32c() uses on this machine.
std::string_view crc32c_implementation() noexcept;

// The checksum a DATA frame of a persistent topic carries in its checksum
// field: CRC32C over bytes [0, 6) (length, type, flags), [8, 12) (record_count)
// and [16, length) (base offset, base timestamp, body). Left out: the lap tag
// [6, 8), which belongs to where the frame lies in a ring, and the checksum
// field [12, 16) itself. length >= frame_header_bytes.
inline std::uint32_t frame_checksum(const std::byte* frame, std::uint32_t length) noexcept {
  std::uint32_t crc = crc32c_extend(0, frame, 6);
  crc = crc32c_extend(crc, frame + 8, 4);
  return crc32c_extend(crc, frame + 16, length - 16);
}

} // namespace ringbus::detail
