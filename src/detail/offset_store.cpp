#include "ringbus/detail/offset_store.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include "platform/files.hpp"
#include "ringbus/detail/checksum.hpp"

namespace ringbus::detail {

namespace {

constexpr std::array<char, 8> offset_magic{'R', 'B', 'U', 'S', '-', 'O', 'F', 'S'};
constexpr std::size_t checksum_field = offsetof(OffsetSlotHeader, checksum);

std::uint32_t slot_checksum(const std::byte* slot, std::size_t payload_bytes) noexcept {
  const std::uint32_t crc = crc32c_extend(0, slot, checksum_field);
  return crc32c_extend(crc, slot + offset_slot_header_bytes, payload_bytes);
}

Status bad_slot(const std::string& why) { return Status(Errc::corrupt_data, why); }

bool name_fits(std::string_view name) noexcept { return !name.empty() && name.size() <= offset_store_max_name_bytes; }

} // namespace

std::vector<std::byte> encode_offset_slot(const OffsetStore::Entries& entries, std::uint64_t sequence) {
  std::size_t payload = 0;
  for (const auto& [name, offset] : entries) payload += 1 + name.size() + sizeof offset;
  std::vector<std::byte> slot(offset_slot_header_bytes + payload);
  OffsetSlotHeader h{};
  std::memcpy(h.magic, offset_magic.data(), offset_magic.size());
  h.format_version = offset_store_format_version;
  h.entry_count = static_cast<std::uint32_t>(entries.size());
  h.sequence = sequence;
  h.payload_bytes = static_cast<std::uint32_t>(payload);
  std::memcpy(slot.data(), &h, sizeof h);
  std::byte* p = slot.data() + offset_slot_header_bytes;
  for (const auto& [name, offset] : entries) {
    *p++ = static_cast<std::byte>(name.size());
    std::memcpy(p, name.data(), name.size());
    p += name.size();
    std::memcpy(p, &offset, sizeof offset);
    p += sizeof offset;
  }
  const std::uint32_t checksum = slot_checksum(slot.data(), payload);
  std::memcpy(slot.data() + checksum_field, &checksum, sizeof checksum);
  return slot;
}

Status decode_offset_slot(std::span<const std::byte> slot, OffsetStore::Entries& entries, std::uint64_t& sequence) {
  if (slot.size() < offset_slot_header_bytes) {
    return bad_slot("slot of " + std::to_string(slot.size()) + " bytes is shorter than its header");
  }
  OffsetSlotHeader h{};
  std::memcpy(&h, slot.data(), sizeof h);
  if (std::memcmp(h.magic, offset_magic.data(), offset_magic.size()) != 0) {
    return bad_slot("magic is not \"RBUS-OFS\" (never written, torn, or not an offset store)");
  }
  if (h.format_version != offset_store_format_version) {
    return bad_slot("format_version " + std::to_string(h.format_version) + ", this build reads " +
                    std::to_string(offset_store_format_version));
  }
  if (h.payload_bytes > slot.size() - offset_slot_header_bytes ||
      h.payload_bytes > offset_slot_bytes - offset_slot_header_bytes) {
    return bad_slot("payload_bytes " + std::to_string(h.payload_bytes) + " runs past the slot's " +
                    std::to_string(std::min(slot.size(), offset_slot_bytes) - offset_slot_header_bytes) +
                    " payload bytes");
  }
  const std::uint32_t computed = slot_checksum(slot.data(), h.payload_bytes);
  if (computed != h.checksum) return bad_slot("checksum mismatch (torn or damaged write)");
  if (h.entry_count > offset_store_max_entries) {
    return bad_slot("entry_count " + std::to_string(h.entry_count) + " is over the limit " +
                    std::to_string(offset_store_max_entries));
  }
  OffsetStore::Entries out;
  out.reserve(h.entry_count);
  const std::byte* p = slot.data() + offset_slot_header_bytes;
  const std::byte* const end = p + h.payload_bytes;
  for (std::uint32_t i = 0; i < h.entry_count; ++i) {
    if (p == end) return bad_slot("entry " + std::to_string(i) + " is missing");
    const auto length = static_cast<std::size_t>(*p++);
    if (length == 0 || static_cast<std::size_t>(end - p) < length + sizeof(std::uint64_t)) {
      return bad_slot("entry " + std::to_string(i) + " runs past the payload or has an empty name");
    }
    HeapString name(reinterpret_cast<const char*>(p), length);
    p += length;
    std::uint64_t offset = 0;
    std::memcpy(&offset, p, sizeof offset);
    p += sizeof offset;
    if (!out.empty() && !(out.back().first < name)) {
      return bad_slot("entry " + std::to_string(i) + " is out of order or repeated");
    }
    out.emplace_back(std::move(name), offset);
  }
  if (p != end) return bad_slot("payload has bytes after its last entry");
  entries = std::move(out);
  sequence = h.sequence;
  return {};
}

OffsetStore::OffsetStore() noexcept = default;
OffsetStore::OffsetStore(OffsetStore&&) noexcept = default;
OffsetStore& OffsetStore::operator=(OffsetStore&&) noexcept = default;
OffsetStore::~OffsetStore() = default;

std::string_view OffsetStore::path() const noexcept { return file_ ? std::string_view(file_->path()) : ""; }

Result<OffsetStore> OffsetStore::open(const platform::FileDescriptor& dir, std::string_view file_name) {
  if (Status s = platform::check_component(file_name); !s.ok()) return s;
  OffsetStore store;
  Result<bool> exists = platform::entry_exists_at(dir, file_name);
  if (!exists.ok()) return exists.status();
  if (!*exists) {
    // Create: the full file under a temporary name, then rename it into
    // place, so the store's name never shows a half-made file.
    const std::string temporary = std::string(file_name) + ".tmp";
    if (Status s = platform::check_component(temporary); !s.ok()) return s;
    Result<bool> stale = platform::entry_exists_at(dir, temporary);
    if (!stale.ok()) return stale.status();
    if (*stale) {
      // Left by a crash during an earlier creation; the name was never published.
      if (Status s = platform::remove_file_at(dir, temporary); !s.ok()) return s;
    }
    Result<platform::FileDescriptor> created = platform::create_file_at(dir, temporary);
    if (!created.ok()) return created.status();
    platform::FileDescriptor& file = *created;
    if (Status s = platform::preallocate(file, 2 * offset_slot_bytes); !s.ok()) return s;
    const std::vector<std::byte> initial = encode_offset_slot(Entries{}, 1);
    if (Status s = platform::write_at(file, 0, initial); !s.ok()) return s;
    if (Status s = platform::sync_file_data(file); !s.ok()) return s;
    if (Status s = platform::rename_at(dir, temporary, file_name); !s.ok()) return s;
    if (Status s = platform::sync_directory(dir); !s.ok()) return s;
    std::string final_path = dir.path();
    if (final_path.empty() || final_path.back() != '/') final_path += '/';
    final_path += file_name;
    file.set_path(std::move(final_path));
    store.file_.reset(heap_new<platform::FileDescriptor>(std::move(file)));
    store.sequence_ = 1;
    store.current_slot_ = 0;
    return store;
  }

  Result<platform::FileDescriptor> opened = platform::open_file_at(dir, file_name, platform::Access::read_write);
  if (!opened.ok()) return opened.status();
  // The name may not be durable yet: a creator that crashed (or whose fsync
  // failed) after the rename but before its directory fsync. Commits made
  // through a name a power loss can undo would be lost with it (the next open
  // would find only the .tmp and start empty), so make it durable first.
  if (Status s = platform::sync_directory(dir); !s.ok()) return s;
  store.file_.reset(heap_new<platform::FileDescriptor>(std::move(*opened)));
  std::vector<std::byte> buffer(offset_slot_bytes);
  std::string reasons;
  bool found = false;
  for (unsigned slot = 0; slot < 2; ++slot) {
    Result<std::size_t> got = platform::read_at(*store.file_, std::uint64_t{slot} * offset_slot_bytes, buffer);
    if (!got.ok()) return got.status();
    Entries entries;
    std::uint64_t sequence = 0;
    Status s = decode_offset_slot(std::span<const std::byte>(buffer.data(), *got), entries, sequence);
    if (!s.ok()) {
      reasons += " slot " + std::to_string(slot) + ": " + std::string(s.message()) + ";";
      continue;
    }
    if (!found || sequence > store.sequence_) {
      found = true;
      store.entries_ = std::move(entries);
      store.sequence_ = sequence;
      store.current_slot_ = slot;
    }
  }
  if (!found) {
    reasons.pop_back();
    return Status(Errc::corrupt_data, "offset store " + store.file_->path() + " has no valid slot:" + reasons);
  }
  return store;
}

std::optional<std::uint64_t> OffsetStore::committed(std::string_view name) const noexcept {
  const auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                                   [](const Entry& e, std::string_view n) { return std::string_view(e.first) < n; });
  if (it == entries_.end() || std::string_view(it->first) != name) return std::nullopt;
  return it->second;
}

Status OffsetStore::commit(std::span<const OffsetUpdate> updates) {
  if (!failed_.ok()) {
    return Status(failed_.code(), "offset store " + file_->path() + " failed earlier and takes no commits until " +
                                      "reopened: " + std::string(failed_.message()));
  }
  Entries next = entries_;
  for (const OffsetUpdate& u : updates) {
    if (!name_fits(u.name)) {
      return Status(Errc::invalid_argument, "offset store " + file_->path() + ": a name of " +
                                                std::to_string(u.name.size()) + " bytes; names are 1..255 bytes");
    }
    const auto it = std::lower_bound(next.begin(), next.end(), u.name,
                                     [](const Entry& e, std::string_view n) { return std::string_view(e.first) < n; });
    const bool present = it != next.end() && std::string_view(it->first) == u.name;
    if (u.erase) {
      if (present) next.erase(it);
    } else if (present) {
      it->second = u.offset;
    } else {
      next.emplace(it, HeapString(u.name), u.offset);
    }
  }
  if (next.size() > offset_store_max_entries) {
    return Status(Errc::invalid_argument, "offset store " + file_->path() + ": " + std::to_string(next.size()) +
                                              " entries, the limit is " + std::to_string(offset_store_max_entries));
  }
  const unsigned target = 1 - current_slot_;
  const std::vector<std::byte> slot = encode_offset_slot(next, sequence_ + 1);
  Status s = platform::write_at(*file_, std::uint64_t{target} * offset_slot_bytes, slot);
  if (s.ok()) s = platform::sync_file_data(*file_);
  if (!s.ok()) {
    failed_ = s;
    return s;
  }
  entries_ = std::move(next);
  sequence_ += 1;
  current_slot_ = target;
  return {};
}

} // namespace ringbus::detail
