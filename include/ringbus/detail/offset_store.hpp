// Durable consumer offsets: a small file mapping names to offsets that a
// crash leaves holding the last committed map or the one before it, never a
// mix and never garbage.
//
// The file holds two fixed-size slots. A commit writes the whole map into the
// slot that does NOT hold the newest valid state, with a sequence number one
// higher, then fdatasyncs. Loading checks both slots and takes the valid one
// with the higher sequence; a slot torn by a crash mid-write fails its
// checksum and is ignored, so the other slot (the previous commit) wins.
//
//   file offset 0              offset_slot_bytes           2 * offset_slot_bytes
//   +--------------------------+--------------------------+
//   | slot 0                   | slot 1                   |
//   +--------------------------+--------------------------+
//
// One slot (unused bytes after the payload are ignored):
//
//   0                     8               12              16
//   +---------------------+---------------+---------------+
//   | magic "RBUS-OFS"    | format_version| entry_count   |
//   +---------------------+---------------+---------------+
//   16                                    24              28              32
//   +-------------------------------------+---------------+---------------+
//   | sequence (u64)                      | payload_bytes | checksum      |
//   +-------------------------------------+---------------+---------------+
//   32 payload: entry_count entries, sorted by name, names unique:
//   +-------------+------------------------+----------------+
//   | name_length | name (name_length)     | offset (u64)   |  ...
//   | (u8, 1..255)|                        | (unaligned)    |
//   +-------------+------------------------+----------------+
//
//   checksum   CRC32C of bytes [0, 28) and of the payload [32, 32 + payload_bytes)
//   sequence   1 for the map written at creation (empty), +1 per commit
//
// Limits: at most offset_store_max_entries names of at most
// offset_store_max_name_bytes bytes each, so the largest payload fits a slot.
//
// Not thread-safe: one thread commits at a time, and one process owns a store
// file (the caller holds the directory's writer lock). Commits are cold: each
// is a pwrite and an fdatasync.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "ringbus/detail/config.hpp"
#include "ringbus/detail/memory.hpp"
#include "ringbus/status.hpp"

namespace ringbus::platform {
class FileDescriptor;
}

namespace ringbus::detail {

// The bytes are the in-memory structs, copied: this layout is little-endian only.
static_assert(std::endian::native == std::endian::little);

inline constexpr std::size_t offset_store_max_entries = 256;
inline constexpr std::size_t offset_store_max_name_bytes = 255;
inline constexpr std::uint32_t offset_store_format_version = 1;
inline constexpr std::size_t offset_slot_header_bytes = 32;
inline constexpr std::size_t offset_slot_bytes =
    align_up(offset_slot_header_bytes + offset_store_max_entries * (1 + offset_store_max_name_bytes + 8), 4096);
static_assert(offset_slot_bytes == 69632);

struct OffsetSlotHeader {
  char magic[8];
  std::uint32_t format_version;
  std::uint32_t entry_count;
  std::uint64_t sequence;
  std::uint32_t payload_bytes;
  std::uint32_t checksum;
};
static_assert(offsetof(OffsetSlotHeader, magic) == 0);
static_assert(offsetof(OffsetSlotHeader, format_version) == 8);
static_assert(offsetof(OffsetSlotHeader, entry_count) == 12);
static_assert(offsetof(OffsetSlotHeader, sequence) == 16);
static_assert(offsetof(OffsetSlotHeader, payload_bytes) == 24);
static_assert(offsetof(OffsetSlotHeader, checksum) == 28);
static_assert(sizeof(OffsetSlotHeader) == offset_slot_header_bytes);

// One change of a commit: set name to offset, or erase name.
struct OffsetUpdate {
  std::string_view name;
  std::uint64_t offset = 0;
  bool erase = false;
};

class OffsetStore {
 public:
  using Entry = std::pair<HeapString, std::uint64_t>;
  using Entries = std::vector<Entry, HeapAllocator<Entry>>;

  // Opens store file_name in dir, or creates it holding an empty map (written
  // under a temporary name, synced, renamed into place, directory synced).
  // An existing store's directory is synced too, so its name is durable before
  // the first commit. corrupt_data when neither slot is valid; the message
  // names the file and why.
  static Result<OffsetStore> open(const platform::FileDescriptor& dir, std::string_view file_name);

  OffsetStore(OffsetStore&&) noexcept;
  OffsetStore& operator=(OffsetStore&&) noexcept;
  OffsetStore(const OffsetStore&) = delete;
  OffsetStore& operator=(const OffsetStore&) = delete;
  ~OffsetStore();

  // The committed offset of name, if any.
  [[nodiscard]] std::optional<std::uint64_t> committed(std::string_view name) const noexcept;
  // Every committed entry, sorted by name.
  [[nodiscard]] const Entries& entries() const noexcept { return entries_; }
  // Sequence number of the committed map (1 after creation).
  [[nodiscard]] std::uint64_t sequence() const noexcept { return sequence_; }
  [[nodiscard]] std::string_view path() const noexcept;

  // Applies updates to the committed map and makes the result durable before
  // returning: all of them or none. invalid_argument for a name out of limits
  // or too many entries (nothing written). A failed write or fdatasync leaves
  // the store failed: this and every later commit return that error, and the
  // committed map stays the old one. Reopening shows the old or the new map:
  // after a failed fdatasync the page cache may still show the new slot even
  // though the disk does not hold it (never assume it is durable).
  Status commit(std::span<const OffsetUpdate> updates);
  Status commit(std::string_view name, std::uint64_t offset) {
    const OffsetUpdate update{name, offset, false};
    return commit(std::span<const OffsetUpdate>(&update, 1));
  }

 private:
  OffsetStore() noexcept;

  std::unique_ptr<platform::FileDescriptor, HeapDeleter> file_;
  Entries entries_;
  std::uint64_t sequence_ = 0;
  unsigned current_slot_ = 0; // the slot holding entries_ (the other one is written next)
  Status failed_;             // ok until a commit fails
};

// Encodes entries (sorted, unique, within limits) as a slot with sequence;
// returns the slot's bytes (header + payload). Exposed for tests.
std::vector<std::byte> encode_offset_slot(const OffsetStore::Entries& entries, std::uint64_t sequence);
// Decodes one slot's bytes; corrupt_data says why the slot is not valid.
Status decode_offset_slot(std::span<const std::byte> slot, OffsetStore::Entries& entries, std::uint64_t& sequence);

} // namespace ringbus::detail
