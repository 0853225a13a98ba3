#include "detail/topic_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <vector>

#include "platform/platform.hpp"
#include "ringbus/detail/checksum.hpp"
#include "ringbus/detail/log.hpp"
#include "ringbus/detail/segment_layout.hpp"

namespace ringbus::detail {

namespace {

constexpr std::string_view meta_file = "topic.meta";
constexpr std::string_view meta_temp_file = "topic.meta.tmp";
constexpr std::string_view prepared_prefix = "next-";
constexpr std::string_view temp_suffix = ".tmp";
constexpr std::string_view index_temp_suffix = ".idx.tmp"; // maintain writes an index here, then renames it
// Recovery after a reboot sets damaged segment files aside as <name>.damaged
// (.damaged.1, ...), writing a copy as <name>.copy.tmp before its rename.
constexpr std::string_view damaged_suffix = ".damaged";
constexpr std::string_view damaged_copy_temp_suffix = ".copy.tmp";
constexpr std::size_t max_meta_bytes = 4096;
constexpr std::uint32_t index_interval_bytes = 4096;

bool any_nonzero(std::span<const std::byte> bytes) noexcept {
  return std::any_of(bytes.begin(), bytes.end(), [](std::byte b) { return b != std::byte{0}; });
}

Status in_topic(std::string_view topic, const Status& st) {
  return Status(st.code(), "topic '" + std::string(topic) + "': " + std::string(st.message()));
}

std::uint16_t lap_of(std::uint64_t position, std::uint64_t capacity) noexcept {
  return static_cast<std::uint16_t>((position >> __builtin_ctzll(capacity)) & 0xffff);
}

bool is_prepared_name(std::string_view name) noexcept {
  return name.size() > prepared_prefix.size() + temp_suffix.size() && name.starts_with(prepared_prefix) &&
         name.ends_with(temp_suffix);
}

// --- topic.meta -------------------------------------------------------------------

template <class E>
std::string_view enum_name(E value, std::initializer_list<std::pair<E, std::string_view>> names) {
  for (const auto& [e, n] : names) {
    if (e == value) return n;
  }
  return "?";
}

const std::initializer_list<std::pair<OverflowPolicy, std::string_view>> overflow_names{
    {OverflowPolicy::block, "block"}, {OverflowPolicy::overwrite, "overwrite"}};
const std::initializer_list<std::pair<WaitStrategy, std::string_view>> wait_names{
    {WaitStrategy::busy_spin, "busy_spin"},
    {WaitStrategy::yield, "yield"},
    {WaitStrategy::backoff, "backoff"},
    {WaitStrategy::blocking, "blocking"}};
const std::initializer_list<std::pair<TimestampSource, std::string_view>> timestamp_names{
    {TimestampSource::wall_clock, "wall_clock"}, {TimestampSource::none, "none"}};
const std::initializer_list<std::pair<Durability, std::string_view>> durability_names{
    {Durability::none, "none"}, {Durability::interval, "interval"}, {Durability::sync, "sync"}};

} // namespace

std::string encode_topic_meta(std::string_view name, const TopicOptions& o) {
  std::string text = "ringbus-topic 1\n";
  const auto line = [&text](std::string_view key, const std::string& value) {
    text.append(key);
    text += ' ';
    text += value;
    text += '\n';
  };
  line("name", std::string(name));
  line("segment_bytes", std::to_string(o.segment_bytes));
  line("segment_count", std::to_string(o.segment_count));
  line("overflow", std::string(enum_name(o.overflow, overflow_names)));
  line("wait", std::string(enum_name(o.wait, wait_names)));
  line("timestamps", std::string(enum_name(o.timestamps, timestamp_names)));
  line("max_consumers", std::to_string(o.max_consumers));
  line("huge_pages", o.huge_pages ? "1" : "0");
  line("prefault", o.prefault ? "1" : "0");
  line("durability", std::string(enum_name(o.durability, durability_names)));
  line("flush_interval_ms", std::to_string(o.flush_interval.count()));
  line("flush_bytes", std::to_string(o.flush_bytes));
  line("retention_max_bytes", std::to_string(o.retention.max_bytes));
  line("retention_max_age_ns", std::to_string(o.retention.max_age.count()));
  line("retention_max_segments", std::to_string(o.retention.max_segments));
  char sum[32];
  std::snprintf(sum, sizeof sum, "checksum %08x\n", crc32c(text.data(), text.size()));
  return text + sum;
}

Result<TopicOptions> decode_topic_meta(std::string_view text, std::string_view path, std::string_view name) {
  const auto bad = [&](const std::string& why) { return Status(Errc::corrupt_data, std::string(path) + ": " + why); };
  const std::size_t sum_at = text.rfind("checksum ");
  if (!text.starts_with("ringbus-topic "))
    return bad("does not start with \"ringbus-topic\": not a ringbus topic file");
  if (!text.starts_with("ringbus-topic 1\n")) return bad("format version is not 1, the one this build reads");
  if (sum_at == std::string_view::npos || !text.ends_with("\n")) return bad("has no checksum line");
  unsigned stored = 0;
  if (std::sscanf(std::string(text.substr(sum_at)).c_str(), "checksum %8x", &stored) != 1) {
    return bad("checksum line is not 8 hex digits");
  }
  if (stored != crc32c(text.data(), sum_at)) return bad("checksum does not match its contents: the file is damaged");
  TopicOptions o;
  std::size_t seen = 0;
  std::vector<std::string_view> keys_seen;
  std::string_view rest = text.substr(16, sum_at - 16);
  while (!rest.empty()) {
    const std::size_t eol = rest.find('\n');
    if (eol == std::string_view::npos) return bad("last line has no newline");
    const std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol + 1);
    const std::size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return bad("line \"" + std::string(line) + "\" is not \"key value\"");
    const std::string_view key = line.substr(0, sp);
    if (std::find(keys_seen.begin(), keys_seen.end(), key) != keys_seen.end()) {
      return bad("key \"" + std::string(key) + "\" appears twice");
    }
    keys_seen.push_back(key);
    const std::string value(line.substr(sp + 1));
    const auto number = [&](auto& out) -> bool {
      char* end = nullptr;
      errno = 0;
      const long long v = std::strtoll(value.c_str(), &end, 10);
      if (errno != 0 || end == value.c_str() || *end != '\0' || v < 0) return false;
      out = static_cast<std::remove_reference_t<decltype(out)>>(v);
      return true;
    };
    const auto pick = [&](auto& out, const auto& names) -> bool {
      for (const auto& [e, n] : names) {
        if (n == value) {
          out = e;
          return true;
        }
      }
      return false;
    };
    bool ok = true;
    std::int64_t count = 0;
    if (key == "name") {
      ok = value == name;
      if (!ok) return bad("names topic '" + value + "', its directory is '" + std::string(name) + "'");
    } else if (key == "segment_bytes") {
      ok = number(o.segment_bytes);
    } else if (key == "segment_count") {
      ok = number(o.segment_count);
    } else if (key == "overflow") {
      ok = pick(o.overflow, overflow_names);
    } else if (key == "wait") {
      ok = pick(o.wait, wait_names);
    } else if (key == "timestamps") {
      ok = pick(o.timestamps, timestamp_names);
    } else if (key == "max_consumers") {
      ok = number(o.max_consumers);
    } else if (key == "huge_pages") {
      ok = value == "0" || value == "1";
      o.huge_pages = value == "1";
    } else if (key == "prefault") {
      ok = value == "0" || value == "1";
      o.prefault = value == "1";
    } else if (key == "durability") {
      ok = pick(o.durability, durability_names);
    } else if (key == "flush_interval_ms") {
      ok = number(count);
      o.flush_interval = std::chrono::milliseconds(count);
    } else if (key == "flush_bytes") {
      ok = number(o.flush_bytes);
    } else if (key == "retention_max_bytes") {
      ok = number(o.retention.max_bytes);
    } else if (key == "retention_max_age_ns") {
      ok = number(count);
      o.retention.max_age = std::chrono::nanoseconds(count);
    } else if (key == "retention_max_segments") {
      ok = number(o.retention.max_segments);
    } else {
      return bad("unknown key \"" + std::string(key) + "\"");
    }
    if (!ok) return bad("value \"" + value + "\" of " + std::string(key) + " is not valid");
    ++seen;
  }
  if (seen != 15) return bad("has " + std::to_string(seen) + " of its 15 keys");
  o.storage = Storage::persistent;
  if (Status st = o.validate(); !st.ok()) return bad(std::string(st.message()));
  return o;
}

// --- construction -------------------------------------------------------------------

TopicStore::TopicStore(std::string name, const TopicOptions& options, bool read_only)
    : name_(std::move(name)),
      options_(options),
      read_only_(read_only),
      segment_bytes_(options.segment_bytes),
      capacity_(options.capacity_bytes()) {
  page_size_ = std::max<std::uint64_t>(segment_header_bytes, platform::system_page_size());
}

void TopicStore::close_deleted_files_in_maintain() noexcept {
  std::lock_guard lock(mutex_);
  try {
    graveyard_.reserve(options_.segment_count); // its room: no allocation when a file is parked
  } catch (const std::bad_alloc&) {
    // no room: the files close where they are deleted, as without a flusher
  }
}

TopicStore::~TopicStore() {
  Prepared* p = prepared_.exchange(nullptr, std::memory_order_acquire); // pairs with the release in maintain
  if (p != nullptr) {
    if (!read_only_) (void)platform::remove_file_at(dir_, p->name);
    delete p;
  }
  if (recycled_ && !read_only_) (void)platform::remove_file_at(dir_, recycled_->name);
  // ring_ (if not taken) unmaps the whole reservation; segment fds close with segments_.
}

Status TopicStore::open_directory_and_ring(const platform::FileDescriptor& topics_dir, bool create) {
  Result<platform::FileDescriptor> dir = platform::open_directory_at(topics_dir, name_);
  if (!dir.ok()) return dir.status();
  dir_ = std::move(*dir);
  if (create) {
    const std::string meta = encode_topic_meta(name_, options_);
    Result<platform::FileDescriptor> f = platform::create_file_at(dir_, meta_temp_file);
    if (!f.ok()) return f.status();
    const auto bytes = std::as_bytes(std::span(meta.data(), meta.size()));
    if (Status st = platform::write_at(*f, 0, bytes); !st.ok()) return st;
    if (Status st = platform::sync_file_data(*f); !st.ok()) return st;
    if (Status st = platform::rename_at(dir_, meta_temp_file, meta_file); !st.ok()) return st;
    if (Status st = platform::sync_directory(dir_); !st.ok()) return st;
  }
  // The ring and a guard page after it, as for an in-memory topic.
  const std::size_t guard = page_size_;
  Result<void*> ring = platform::reserve_readable_zeros(capacity_ + guard);
  if (!ring.ok()) return ring.status();
  ring_base_ = static_cast<std::byte*>(*ring);
  ring_ = RingMapping::adopt(ring_base_, capacity_, guard);
  if (!platform::protect_none(ring_base_ + capacity_, guard)) {
    return Status(Errc::system_error, "topic '" + name_ + "': could not protect the guard page after its " +
                                          std::to_string(capacity_) + "-byte ring (mprotect)");
  }
  return {};
}

namespace {

// Removes a topic directory TopicStore::create made and failed to finish,
// with whatever it holds (topic.meta, its temporary, a segment file begun):
// all of it was made by that call. Best effort: what cannot go now is a
// creation a crash cut short for the next open (discard_unfinished_creation),
// or damage it names.
void remove_failed_creation(const platform::FileDescriptor& topics_dir, std::string_view name) noexcept {
  try {
    if (Result<platform::FileDescriptor> dir = platform::open_directory_at(topics_dir, name); dir.ok()) {
      if (Result<std::vector<platform::DirectoryEntry>> entries = platform::list_directory(*dir); entries.ok()) {
        for (const platform::DirectoryEntry& e : *entries) {
          if (e.type == platform::EntryType::regular) (void)platform::remove_file_at(*dir, e.name);
        }
      }
    }
    (void)platform::remove_directory_at(topics_dir, name);
    (void)platform::sync_directory(topics_dir);
  } catch (const std::bad_alloc&) {
  }
}

} // namespace

Result<std::unique_ptr<TopicStore>> TopicStore::create(const platform::FileDescriptor& topics_dir,
                                                       std::string_view name, const TopicOptions& options) {
  try {
    std::unique_ptr<TopicStore> store(new TopicStore(std::string(name), options, false));
    Result<bool> exists = platform::entry_exists_at(topics_dir, name);
    if (!exists.ok()) return in_topic(name, exists.status());
    if (*exists) {
      return Status(Errc::topic_exists, "topic '" + std::string(name) + "' already exists in " + topics_dir.path());
    }
    if (Status st = platform::make_directory_at(topics_dir, name); !st.ok()) return in_topic(name, st);
    // From here a failure (a full disk, an I/O error) takes the directory
    // back out, so that the name is free: the caller was told the topic does
    // not exist, and a retry on this bus, or the next open, must agree.
    Status st = platform::sync_directory(topics_dir);
    if (st.ok()) st = store->open_directory_and_ring(topics_dir, true);
    if (st.ok()) st = store->begin_segment(0, 0, false);
    if (!st.ok()) {
      store.reset(); // its files closed and unmapped first
      remove_failed_creation(topics_dir, name);
      return in_topic(name, st);
    }
    store->restore_ = LogRestore{0, 0, 0, store->segment_bytes_, 0};
    store->report_.segments = 1;
    return store;
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "topic '" + std::string(name) + "': out of memory");
  }
}

namespace {

// create() makes the topic's directory first and renames topic.meta into it
// last (before any segment), so a directory without topic.meta that holds
// nothing but topic.meta.tmp is a creation a crash cut short: no record was
// ever appended to it. True when it is one; unless read_only, it is removed
// so the name can be created again. Anything else in it (a segment) means real
// damage: false, and the caller reports the missing topic.meta.
Result<bool> discard_unfinished_creation(const platform::FileDescriptor& topics_dir,
                                         const platform::FileDescriptor& dir, std::string_view name, bool read_only) {
  Result<bool> has_meta = platform::entry_exists_at(dir, meta_file);
  if (!has_meta.ok()) return has_meta.status();
  if (*has_meta) return false;
  Result<std::vector<platform::DirectoryEntry>> entries = platform::list_directory(dir);
  if (!entries.ok()) return entries.status();
  for (const platform::DirectoryEntry& e : *entries) {
    if (e.name != meta_temp_file || e.type != platform::EntryType::regular) return false;
  }
  if (read_only) return true;
  for (const platform::DirectoryEntry& e : *entries) {
    if (Status st = platform::remove_file_at(dir, e.name); !st.ok()) return st;
  }
  if (Status st = platform::remove_directory_at(topics_dir, name); !st.ok()) return st;
  if (Status st = platform::sync_directory(topics_dir); !st.ok()) return st;
  return true;
}

} // namespace

Result<std::unique_ptr<TopicStore>> TopicStore::open(const platform::FileDescriptor& topics_dir, std::string_view name,
                                                     bool read_only, bool check_every_segment) {
  try {
    Result<platform::FileDescriptor> dir = platform::open_directory_at(topics_dir, name);
    if (!dir.ok()) {
      // Read-only: the writer's Bus::open removes a creation a crash cut
      // short; one gone since the caller saw it is not a topic.
      if (Result<bool> there = platform::entry_exists_at(topics_dir, name); read_only && there.ok() && !*there) {
        return Status(Errc::topic_not_found, "topic '" + std::string(name) + "' in " + topics_dir.path() + " is gone");
      }
      return in_topic(name, dir.status());
    }
    Result<platform::FileDescriptor> meta = platform::open_file_at(*dir, meta_file, platform::Access::read_only);
    if (!meta.ok()) {
      if (Result<bool> unfinished = discard_unfinished_creation(topics_dir, *dir, name, read_only);
          unfinished.ok() && *unfinished) {
        return Status(Errc::topic_not_found, "topic '" + std::string(name) + "' in " + topics_dir.path() +
                                                 " is not finished (being created, or a crash cut its creation short)");
      }
      // Read-only: the writer may have renamed topic.meta in since the open
      // (its creation's last step before the first segment): once more.
      if (Result<bool> has_meta = platform::entry_exists_at(*dir, meta_file); read_only && has_meta.ok() && *has_meta) {
        meta = platform::open_file_at(*dir, meta_file, platform::Access::read_only);
      }
      if (!meta.ok()) return in_topic(name, meta.status());
    }
    std::string text(max_meta_bytes, '\0');
    Result<std::size_t> got = platform::read_at(*meta, 0, std::as_writable_bytes(std::span(text.data(), text.size())));
    if (!got.ok()) return in_topic(name, got.status());
    if (*got == max_meta_bytes) {
      return Status(Errc::corrupt_data, meta->path() + ": larger than " + std::to_string(max_meta_bytes) + " bytes");
    }
    text.resize(*got);
    Result<TopicOptions> options = decode_topic_meta(text, meta->path(), name);
    if (!options.ok()) return options.status();
    if (read_only && options->wait == WaitStrategy::blocking) {
      options->wait = WaitStrategy::backoff; // the writer is another process: no doorbell reaches us
    }
    std::unique_ptr<TopicStore> store(new TopicStore(std::string(name), *options, read_only));
    if (Status st = store->open_directory_and_ring(topics_dir, false); !st.ok()) return in_topic(name, st);
    if (Status st = store->recover(check_every_segment); !st.ok()) return st;
    return store;
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "topic '" + std::string(name) + "': out of memory");
  }
}

// --- mapping ----------------------------------------------------------------------------

std::span<const std::byte> TopicStore::data_of(const Segment& s) const noexcept {
  return {ring_base_ + (s.position & (capacity_ - 1)), segment_bytes_};
}

Status TopicStore::map_segment(Segment& s, bool prefault) noexcept {
  const auto access = read_only_ ? platform::Access::read_only : platform::Access::read_write;
  std::byte* at = ring_base_ + (s.position & (capacity_ - 1));
  Result<platform::FileMapping> m = platform::map_file_into(at, s.fd, page_size_, segment_bytes_, access);
  if (!m.ok()) return m.status();
  m->forget(); // the ring reservation owns the range from here
  if (prefault && !platform::prefault_shared(at, segment_bytes_, access)) {
    (void)platform::map_zeros_into(at, segment_bytes_);
    return Status(Errc::no_space, "could not fault in the pages of " + s.fd.path() +
                                      " (the file system may be full or the file was truncated)");
  }
  return {};
}

// --- recovery -------------------------------------------------------------------------------

Status TopicStore::recover(bool check_every_segment) {
  trust_seals_ = !check_every_segment;
  Result<std::vector<platform::DirectoryEntry>> entries = platform::list_directory(dir_);
  if (!entries.ok()) return in_topic(name_, entries.status());
  const auto access = read_only_ ? platform::Access::read_only : platform::Access::read_write;
  std::vector<std::byte> header(segment_header_bytes);
  bool removed_a_file = false; // the directory is synced once at the end
  // After a reboot, damage where a segment's layout is read (a header that
  // does not validate, a file cut short, one that does not follow the one
  // before) is what a power loss leaves, not a foreign file: the log ends
  // before that file, which is set aside with every file after it. An
  // oldest file is set aside alone (the head moves past it, as retention
  // would): the next one starts the log.
  bool log_ended = false;
  const auto end_log_at = [&](std::uint64_t base_offset, std::string_view why) -> Status {
    if (report_.damage.empty()) report_.damage = segment_file_name(base_offset) + ": " + std::string(why);
    note_left_log(base_offset);
    if (!segments_.empty()) {
      log_ended = true;
    } else {
      ++report_.dropped_oldest_segments;
    }
    removed_a_file = !read_only_;
    return drop_segment_files(base_offset, true);
  };
  bool holds_set_aside_files = false; // an earlier recovery's <segment>.damaged files
  for (const platform::DirectoryEntry& e : *entries) {
    if (e.name.ends_with(damaged_copy_temp_suffix) && !read_only_) {
      (void)platform::remove_file_at(dir_, e.name); // a copy a crash cut short: keep_copy renames it in when whole
      continue;
    }
    if (e.name.find(damaged_suffix) != std::string::npos) holds_set_aside_files = true;
    if (is_prepared_name(e.name) || e.name == meta_temp_file || e.name.ends_with(index_temp_suffix)) {
      // A segment prepared ahead, a meta file or an index never renamed (a
      // crash inside maintain): never part of the log, and nothing else removes them.
      if (!read_only_ && e.type == platform::EntryType::regular) (void)platform::remove_file_at(dir_, e.name);
      continue;
    }
    const std::optional<std::uint64_t> base = parse_segment_file_name(e.name);
    if (!base) continue; // .idx files, LOCK, topic.meta, anything else: not a segment
    if (log_ended) {
      note_left_log(*base);
      if (Status st = drop_segment_files(*base, true); !st.ok()) return st;
      continue;
    }
    Result<platform::FileDescriptor> fd = platform::open_file_at(dir_, e.name, access);
    if (!fd.ok()) {
      // A follower races the writer: the file was deleted or recycled (renamed) since the listing.
      if (Result<bool> there = platform::entry_exists_at(dir_, e.name); read_only_ && there.ok() && !*there) {
        segments_.clear(); // the writer moved past it: the older ones listed so far are gone or going too
        continue;
      }
      return in_topic(name_, fd.status());
    }
    if (read_only_) {
      // A follower maps only files it holds a read lock on: the writer never
      // recycles those (drop_below), so their bytes stay this lap's. The writer
      // holds its write lock for a few system calls at most.
      Result<bool> locked = platform::try_lock_file(*fd, true);
      for (int tries = 0; locked.ok() && !*locked && tries < 10'000; ++tries) {
        platform::sleep_ns(10'000);
        locked = platform::try_lock_file(*fd, true);
      }
      if (!locked.ok()) return in_topic(name_, locked.status());
      if (!*locked) return Status(Errc::system_error, fd->path() + ": the writer held its lock for over 100 ms");
    }
    Result<std::size_t> got = platform::read_at(*fd, 0, header);
    if (!got.ok()) return in_topic(name_, got.status());
    {
      // A valid header of another base offset than its name's is a recycle.
      // Read-only: the writer recycled the file (renamed it) since the
      // listing; it is a newer segment, which follow_next maps by its new
      // name. The writer: a recycle that a power loss cut short before its
      // renames reached the disk; its old records were behind the head
      // already and its new ones were never flushed (a flush syncs the
      // directory too), so it goes.
      SegmentHeaderFields now;
      if (validate_segment_header(std::span(header).first(*got), fd->path(), name_, segment_bytes_, &now).ok() &&
          now.base_offset != *base) {
        if (read_only_) {
          segments_.clear(); // as above: every segment listed before it is older still
          continue;
        }
        if (Status st = platform::remove_file_at(dir_, e.name); !st.ok()) return in_topic(name_, st);
        removed_a_file = true;
        continue;
      }
    }
    SegmentHeaderFields fields;
    if (Status st = validate_segment_header(std::span(header).first(*got), e.name, name_, segment_bytes_, &fields);
        !st.ok()) {
      if (check_every_segment) {
        if (Status set = end_log_at(*base, st.message()); !set.ok()) return set;
        continue;
      }
      return in_topic(name_, Status(st.code(), fd->path() + ": " + std::string(st.message())));
    }
    if (fields.ring_capacity != capacity_) {
      return Status(Errc::corrupt_data, fd->path() + ": ring_capacity " + std::to_string(fields.ring_capacity) +
                                            ", topic.meta gives " + std::to_string(capacity_) +
                                            " (segment_bytes * segment_count)");
    }
    if (fields.page_size != page_size_) {
      return Status(Errc::corrupt_data, fd->path() + ": page_size " + std::to_string(fields.page_size) +
                                            ", this system uses " + std::to_string(page_size_));
    }
    Result<platform::FileInfo> info = platform::file_info(*fd);
    if (!info.ok()) return in_topic(name_, info.status());
    if (info->size < page_size_ + segment_bytes_) {
      if (check_every_segment) {
        if (Status set = end_log_at(*base, "file is " + std::to_string(info->size) + " bytes, a segment file is " +
                                               std::to_string(page_size_ + segment_bytes_));
            !set.ok()) {
          return set;
        }
        continue;
      }
      return Status(Errc::corrupt_data, fd->path() + ": file is " + std::to_string(info->size) +
                                            " bytes, a segment file is " + std::to_string(page_size_ + segment_bytes_) +
                                            " (truncated?)");
    }
    Segment s;
    s.position = fields.base_position;
    s.base_offset = fields.base_offset;
    s.created_ns = fields.created_ns;
    s.opened_mid_batch = (fields.flags & segment_flags::opened_mid_batch) != 0;
    s.checksummed = fields.frame_checksum == FrameChecksumKind::crc32c;
    if (const std::optional<SegmentSeal> seal =
            seal_of_this_boot(std::span(header).first(*got), fields.base_position)) {
      s.seal_on_disk = true;
      s.seal_end_offset = seal->end_offset;
    }
    s.may_have_index_file = true; // an earlier run may have persisted one
    s.fd = std::move(*fd);
    if (!segments_.empty()) {
      const Segment& prev = segments_.back();
      if (s.position != prev.position + segment_bytes_ || s.base_offset <= prev.base_offset) {
        if (check_every_segment) {
          if (Status set = end_log_at(*base, "base_position " + std::to_string(s.position) + " / base_offset " +
                                                 std::to_string(s.base_offset) + " do not follow the segment before");
              !set.ok()) {
            return set;
          }
          continue;
        }
        return Status(Errc::corrupt_data, s.fd.path() + ": base_position " + std::to_string(s.position) +
                                              " / base_offset " + std::to_string(s.base_offset) + " do not follow " +
                                              prev.fd.path() + " (position " + std::to_string(prev.position) +
                                              ", offset " + std::to_string(prev.base_offset) +
                                              "): a segment is missing or foreign");
      }
    }
    segments_.push_back(std::move(s));
  }
  if (segments_.empty() && !report_.set_aside.empty()) {
    return Status(Errc::corrupt_data, "topic '" + name_ + "' in " + dir_.path() +
                                          ": no segment is left after a reboot's check: " + report_.damage +
                                          " (set aside as " + report_.set_aside.front() + ")");
  }
  if (segments_.empty() && holds_set_aside_files) {
    // Starting over at offset 0 would hand out offsets the set-aside records
    // had, under consumers' committed positions: an operator decides.
    return Status(Errc::corrupt_data, "topic '" + name_ + "' in " + dir_.path() +
                                          " holds no segment, only files an earlier recovery set aside (*" +
                                          std::string(damaged_suffix) +
                                          "): move them out of the directory to start the topic over at offset 0");
  }
  if (segments_.empty()) {
    // Read-only: the writer is creating the topic (topic.meta is written
    // before the first segment): not a topic yet.
    if (read_only_) {
      return Status(Errc::topic_not_found, "topic '" + name_ + "' in " + dir_.path() + " has no segment yet");
    }
    if (Status st = begin_segment(0, 0, false); !st.ok()) return in_topic(name_, st);
    restore_ = LogRestore{0, 0, 0, segment_bytes_, 0};
    report_.segments = 1;
    return {};
  }
  // More segments than the ring holds: the oldest were deleted (a roll
  // overwrote their slot) but the deletion did not reach the disk before a
  // power loss (Durability::none does not sync the directory). They are
  // behind the head by definition: delete them again.
  while (!read_only_ && segments_.back().position - segments_.front().position >= capacity_) {
    if (Status st = drop_segment_files(segments_.front().base_offset, false); !st.ok()) return st;
    segments_.pop_front();
  }
  if (segments_.back().position - segments_.front().position >= capacity_) {
    return Status(Errc::corrupt_data, "topic '" + name_ + "' in " + dir_.path() + " holds " +
                                          std::to_string(segments_.size()) + " segments, more than its ring of " +
                                          std::to_string(options_.segment_count));
  }
  for (Segment& s : segments_) {
    if (Status st = map_segment(s, false); !st.ok()) return in_topic(name_, st);
  }

  // A batch's frames are published by its first word alone (log.hpp): if a
  // crash came before that store, its later frames may sit in newer segments
  // with their words in place. So the segment before the tail must be sealed
  // (a pad frame or full), and so must the one before any segment begun while
  // a batch was pending (opened_mid_batch), back along that chain. Everything
  // after an unsealed segment was never published: it goes (a read-only
  // opener only unmaps it; follow() maps it again once the writer publishes).
  std::size_t keep = segments_.size();
  for (std::size_t i = segments_.size() - 1; i > 0; --i) {
    if (!sealed(i - 1)) keep = i;
    if (!segments_[i].opened_mid_batch) break;
  }
  if (check_every_segment && keep < segments_.size() && report_.damage.empty()) {
    // After a reboot this is a batch a crash left unpublished, or a lost page
    // that ends the frames: the later segments are set aside, not deleted.
    report_.damage = segment_file_name(segments_[keep - 1].base_offset) +
                     ": not sealed (a batch never published, or a page lost after a reboot)";
  }
  while (segments_.size() > keep) {
    if (Status st = drop_newest_segment(check_every_segment); !st.ok()) return st;
    report_.dropped_unpublished_segment = !read_only_;
  }
  if (report_.dropped_unpublished_segment) {
    if (Status st = platform::sync_directory(dir_); !st.ok()) return in_topic(name_, st);
  }
  // Now every segment but the tail must be sealed (the rule above made the
  // segment before the tail so; every older one was sealed when the writer
  // left it). An oldest one that is not holds what no reader may take: a
  // recycle a power loss cut short (the old name and header, some of the new
  // lap's pages on disk) or pages the kernel never wrote back. It goes, as if
  // retention had taken it. (Only the oldest: damage inside a middle segment
  // is found by `ringbus verify`, not here.)
  while (segments_.size() > 1 && !sealed(0)) {
    const Segment& front = segments_.front();
    (void)platform::map_zeros_into(ring_base_ + (front.position & (capacity_ - 1)), segment_bytes_);
    if (check_every_segment) { // after a reboot: damage, set aside
      if (report_.damage.empty()) {
        report_.damage = segment_file_name(front.base_offset) + ": the oldest segment is not sealed";
      }
      ++report_.dropped_oldest_segments;
    }
    if (Status st = drop_segment_files(front.base_offset, check_every_segment); !st.ok()) return st;
    removed_a_file = !read_only_;
    segments_.pop_front();
  }
  if (removed_a_file) {
    if (Status st = platform::sync_directory(dir_); !st.ok()) return in_topic(name_, st);
  }
  if (check_every_segment) {
    if (Status st = cut_at_first_damaged_segment(); !st.ok()) return st;
  }

  // The tail: validate frame by frame, cut at the first bad one. A recycled
  // file holds last lap's frames past this lap's end: they carry last lap's
  // tag (and older offsets, which check_frame refuses anyway), and end the data.
  ScanOptions scan;
  scan.other_lap_ends_data = true;
  {
    Segment& tail = segments_.back();
    scan.lap = lap_of(tail.position, capacity_);
    scan.verify_checksums = tail.checksummed;
    Result<SegmentIndex> index = SegmentIndex::create(tail.base_offset, segment_bytes_, index_interval_bytes);
    if (!index.ok()) return in_topic(name_, index.status());
    const ScanStop stop = index->catch_up(data_of(tail), scan);
    report_.cut_at_position = index->end_position();
    if (stop == ScanStop::invalid_frame) report_.cut_reason = index->problem();
    if (report_.cut_reason.empty() && report_.dropped_damaged_segments != 0) report_.cut_reason = report_.damage;
    const bool full = stop == ScanStop::segment_full;
    if (!full && !read_only_) {
      const std::uint64_t end = index->end_position();
      // After a reboot, bytes past the cut may follow a lost page rather than
      // be a write the crash cut short: a copy keeps them before they are zeroed.
      // (cut_at_first_damaged_segment copied a tail it made: dropped_damaged_segments.)
      if (check_every_segment && report_.dropped_damaged_segments == 0 && any_nonzero(data_of(tail).subspan(end))) {
        if (report_.damage.empty()) {
          report_.damage = segment_file_name(tail.base_offset) + ": the tail's frames end at byte " +
                           std::to_string(end) + " with bytes after it";
        }
        if (Status st = keep_copy(tail); !st.ok()) return st;
        if (Status st = platform::sync_directory(dir_); !st.ok()) return in_topic(name_, st);
      }
      if (Status st = platform::zero_file_range(tail.fd, page_size_ + end, segment_bytes_ - end); !st.ok()) {
        return in_topic(name_, st);
      }
      // The tail's pages are faulted in later, off Bus::open's path: by the
      // flusher's next maintain() (else by the producer's first writes). The
      // unwritten rest was just zeroed, so faulting it in allocates fresh
      // pages: done here it took ~90 ms of a 64 MiB tail (ringbus-bench
      // recover/ringbus, 1 GiB topic: Bus::open 111 ms -> 8 ms).
      if (options_.prefault) prefault_tail_.store(tail.position, std::memory_order_relaxed);
    }
    restore_.head = segments_.front().position;
    restore_.head_offset = segments_.front().base_offset;
    restore_.pos = full ? tail.position + segment_bytes_ : tail.position + index->end_position();
    restore_.segment_end = full ? restore_.pos : tail.position + segment_bytes_;
    restore_.next_offset = index->next_offset();
    report_.records_kept_in_tail = index->next_offset() - tail.base_offset;
    tail.index = std::move(*index);
  }
  report_.segments = segments_.size();
  synced_.store(restore_.pos, std::memory_order_relaxed); // recovered bytes are what the disk holds
  return {};
}

void TopicStore::note_left_log(const platform::FileDescriptor& fd) noexcept {
  if (!read_only_) return;
  try {
    if (Result<platform::FileInfo> info = platform::file_info(fd); info.ok()) {
      left_log_.emplace_back(info->device, info->inode);
    }
  } catch (const std::bad_alloc&) {
    // not noted: a follower may take the file as a lap
  }
}

void TopicStore::note_left_log(std::uint64_t base_offset) noexcept {
  if (!read_only_) return;
  try {
    Result<platform::FileDescriptor> fd =
        platform::open_file_at(dir_, segment_file_name(base_offset), platform::Access::read_only);
    if (fd.ok()) note_left_log(*fd);
  } catch (const std::bad_alloc&) {
  }
}

bool TopicStore::left_the_log(const platform::FileDescriptor& fd) const {
  if (left_log_.empty()) return false;
  Result<platform::FileInfo> info = platform::file_info(fd);
  if (!info.ok()) return true; // not known: not taken now (follow_next tries again)
  return std::find(left_log_.begin(), left_log_.end(), std::pair{info->device, info->inode}) != left_log_.end();
}

Status TopicStore::drop_newest_segment(bool damaged) {
  Segment& dropped = segments_.back();
  (void)platform::map_zeros_into(ring_base_ + (dropped.position & (capacity_ - 1)), segment_bytes_);
  if (Status st = drop_segment_files(dropped.base_offset, damaged); !st.ok()) return st;
  segments_.pop_back();
  return {};
}

Result<std::string> TopicStore::damaged_name(const std::string& name) const {
  std::string to = name + std::string(damaged_suffix);
  for (int n = 1;; ++n) { // an older damage's file of the same name is kept too
    Result<bool> taken = platform::entry_exists_at(dir_, to);
    if (!taken.ok()) return in_topic(name_, taken.status());
    if (!*taken) return to;
    to = name + std::string(damaged_suffix) + "." + std::to_string(n);
  }
}

Status TopicStore::drop_segment_files(std::uint64_t base_offset, bool damaged) {
  if (read_only_) return {};
  const std::string name = segment_file_name(base_offset);
  if (damaged) {
    Result<std::string> to = damaged_name(name);
    if (!to.ok()) return to.status();
    if (Status st = platform::rename_at(dir_, name, *to); !st.ok()) return in_topic(name_, st);
    report_.set_aside.push_back(dir_.path() + "/" + *to);
  } else if (Status st = platform::remove_file_at(dir_, name); !st.ok()) {
    return in_topic(name_, st);
  }
  // An index is derived from the data (rebuilt if needed); most segments have none.
  (void)platform::remove_file_at(dir_, segment_index_file_name(base_offset));
  return {};
}

Status TopicStore::keep_copy(const Segment& s) {
  if (read_only_) return {};
  const std::string name = segment_file_name(s.base_offset);
  Result<std::string> to = damaged_name(name);
  if (!to.ok()) return to.status();
  std::vector<std::byte> header(page_size_);
  Result<std::size_t> got = platform::read_at(s.fd, 0, header);
  if (!got.ok()) return in_topic(name_, got.status());
  // Written under a temporary name and renamed in whole: a crash during the
  // copy leaves only the temporary, which the next recovery removes.
  const std::string temp = name + std::string(damaged_copy_temp_suffix);
  (void)platform::remove_file_at(dir_, temp);
  Result<platform::FileDescriptor> copy = platform::create_file_at(dir_, temp);
  if (!copy.ok()) return in_topic(name_, copy.status());
  Status st = platform::write_at(*copy, 0, std::span<const std::byte>(header).first(*got));
  if (st.ok()) st = platform::write_at(*copy, page_size_, data_of(s));
  if (st.ok()) st = platform::sync_file_data(*copy);
  if (st.ok()) st = platform::rename_at(dir_, temp, *to);
  if (!st.ok()) {
    (void)platform::remove_file_at(dir_, temp);
    return in_topic(name_, Status(st.code(), "keeping a copy of damaged segment " + s.fd.path() + ": " +
                                                 std::string(st.message())));
  }
  report_.set_aside.push_back(dir_.path() + "/" + *to);
  return {};
}

std::string RecoveryReport::summary() const {
  std::string out;
  const auto add = [&out](const std::string& part) { out += (out.empty() ? "" : "; ") + part; };
  if (!damage.empty()) add("the check after a reboot found damage: " + damage);
  if (dropped_oldest_segments != 0) {
    add("the head moved past the " +
        (dropped_oldest_segments == 1 ? std::string("oldest segment")
                                      : std::to_string(dropped_oldest_segments) + " oldest segments") +
        ", which left the log with their records as retention would take them");
  }
  if (dropped_damaged_segments != 0) {
    add("the log was cut there and the " + std::to_string(dropped_damaged_segments) +
        " segments after it were dropped with their records");
  }
  if (!set_aside.empty()) {
    std::string files;
    for (const std::string& f : set_aside) files += (files.empty() ? "" : ", ") + f;
    add("set aside (not deleted): " + files);
  }
  if (!cut_reason.empty() && cut_reason != damage) {
    add("the tail was cut at byte " + std::to_string(cut_at_position) + " of its segment: " + cut_reason);
  }
  if (dropped_unpublished_segment) add("a segment a crash left unpublished (a batch across a roll) was dropped");
  return out;
}

// The checks above read the segments' first words, which a crash of the
// writer's process cannot tear: its stores are in the page cache, and the
// page cache is the file. A power loss or an OS crash can: pages the kernel
// had not written back read as zeros (or old bytes) after the reboot, inside
// a record's bytes as well as at its start. So after a reboot (Bus::open
// compares the boot id the directory's last writer recorded with this one)
// every segment below the tail is checked as the tail is, frame by frame with
// its checksums (a segment without checksums: its structure and offsets),
// and must run whole to its end and hand over to the next segment's base
// offset. The first that does not becomes the tail, cut at its first bad
// frame by the scan below: the later segments go with the records in them,
// which follow the damage (offsets stay dense, and no reader is handed a torn
// record). The oldest is the exception: it leaves the log alone and the head
// moves past it, as retention would (README "Recovery"). A whole segment
// keeps the index the check built.
Status TopicStore::cut_at_first_damaged_segment() {
  report_.checked_every_segment = true;
  for (std::size_t i = 0; i + 1 < segments_.size(); ++i) {
    Segment& s = segments_[i];
    ScanOptions scan;
    scan.lap = lap_of(s.position, capacity_);
    scan.verify_checksums = s.checksummed;
    scan.other_lap_ends_data = true;
    Result<SegmentIndex> index = SegmentIndex::create(s.base_offset, segment_bytes_, index_interval_bytes);
    if (!index.ok()) return in_topic(name_, index.status());
    const ScanStop stop = index->catch_up(data_of(s), scan);
    const std::uint64_t next_base = segments_[i + 1].base_offset;
    if (stop == ScanStop::segment_full && index->next_offset() == next_base) {
      if (!s.index) s.index = std::move(*index);
      continue;
    }
    if (report_.damage.empty()) {
      const std::string file = segment_file_name(s.base_offset);
      const std::string at = " at byte " + std::to_string(index->end_position());
      report_.damage = stop == ScanStop::invalid_frame ? file + ": " + index->problem() + at
                       : stop == ScanStop::segment_full
                           ? file + ": its records end at offset " + std::to_string(index->next_offset()) +
                                 ", the next segment begins at " + std::to_string(next_base)
                           : file + ": its frames end" + at + ", before the segment's end";
    }
    if (i == 0) {
      // The oldest leaves the log alone (set aside, not deleted), as
      // retention would take it: the head moves to the next segment, whose
      // check follows. Cutting here would set aside every later segment,
      // intact, and hand their offsets to the next appends. (The loop never
      // checks the tail: an oldest that is also the tail is cut at its damage
      // by the tail's scan.)
      (void)platform::map_zeros_into(ring_base_ + (s.position & (capacity_ - 1)), segment_bytes_);
      note_left_log(s.fd);
      if (Status st = drop_segment_files(s.base_offset, true); !st.ok()) return st;
      segments_.pop_front();
      ++report_.dropped_oldest_segments;
      if (!read_only_) {
        if (Status st = platform::sync_directory(dir_); !st.ok()) return in_topic(name_, st);
      }
      i = static_cast<std::size_t>(-1); // ++i: the new oldest, 0, is checked next
      continue;
    }
    // The damaged segment stays, cut at the damage, and the tail's scan
    // zeroes what follows it: a copy of it as it was is kept first.
    if (Status st = keep_copy(s); !st.ok()) return st;
    while (segments_.size() > i + 1) {
      note_left_log(segments_.back().fd);
      if (Status st = drop_newest_segment(true); !st.ok()) return st;
      ++report_.dropped_damaged_segments;
    }
    // The new tail's frames past the cut go too: an index of them may be on disk.
    if (!read_only_ && s.may_have_index_file) {
      (void)platform::remove_file_at(dir_, segment_index_file_name(s.base_offset));
      s.may_have_index_file = false;
    }
    s.index.reset();
    s.index_on_disk = false;
    if (!read_only_) {
      if (Status st = platform::sync_directory(dir_); !st.ok()) return in_topic(name_, st);
    }
    break;
  }
  return {};
}

bool TopicStore::sealed(std::size_t i) noexcept {
  const Segment& s = segments_[i];
  // Its seal, written once the writer had published past its end, and the
  // next segment begins where the seal says this one ends: in the boot that
  // wrote it, the frames it vouches for are in the page cache as they were.
  if (trust_seals_ && seal_matches_next(i)) return true;
  ++report_.segments_walked;
  // A walk of the frames' first words (single-threaded here: no writer yet).
  const std::span<const std::byte> data = data_of(s);
  const std::uint64_t lap = std::uint64_t{lap_of(s.position, capacity_)} << 48;
  std::uint64_t p = 0;
  while (p < segment_bytes_) {
    std::uint64_t word;
    std::memcpy(&word, data.data() + p, sizeof word);
    const std::uint32_t length = word0_length(word);
    if (word0_type(word) == frame_type::none || word0_lap_bits(word) != lap || length < pad_frame_min_bytes ||
        length > segment_bytes_ - p) {
      return false;
    }
    if (word0_type(word) == frame_type::pad) return p + length == segment_bytes_;
    p += align_up(length, frame_alignment);
  }
  return p == segment_bytes_;
}

// --- producer thread ---------------------------------------------------------------------------

Result<TopicStore::Prepared*> TopicStore::prepare_segment(bool populate) noexcept {
  try {
    auto p = std::make_unique<Prepared>();
    // relaxed: the counter only makes names unique; nothing is published through it.
    p->name = std::string(prepared_prefix) + std::to_string(prepare_counter_.fetch_add(1, std::memory_order_relaxed)) +
              std::string(temp_suffix);
    Result<platform::FileDescriptor> fd = platform::create_file_at(dir_, p->name);
    if (!fd.ok()) return fd.status();
    p->fd = std::move(*fd);
    if (Status st = platform::preallocate(p->fd, page_size_ + segment_bytes_); !st.ok()) {
      p->fd.reset();
      (void)platform::remove_file_at(dir_, p->name);
      return st;
    }
    if (populate) {
      // The flusher's thread allocates the file's page-cache pages now, so
      // the roll that maps the file only installs page-table entries.
      Result<platform::FileMapping> m =
          platform::map_file(p->fd, page_size_, segment_bytes_, platform::Access::read_write);
      if (m.ok()) (void)platform::prefault_shared(m->data(), segment_bytes_, platform::Access::read_write);
    }
    return p.release();
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "preparing a segment of topic '" + name_ + "': out of memory");
  }
}

Status TopicStore::begin_segment(std::uint64_t start, std::uint64_t first_offset, bool mid_batch) noexcept {
  if (failed()) {
    discard_recycled(); // its write lock must not outlive the roll (a follower would wait on it)
    return failure();
  }
  try {
    SegmentHeaderFields fields;
    fields.page_size = static_cast<std::uint32_t>(page_size_);
    fields.segment_bytes = segment_bytes_;
    fields.base_offset = first_offset;
    fields.created_ns = wall_clock_ns();
    fields.flags = mid_batch ? segment_flags::opened_mid_batch : 0;
    // Every frame, whatever the durability: not even a `none` topic may hand
    // out a torn record after a power loss (README "Checksums").
    fields.frame_checksum = FrameChecksumKind::crc32c;
    fields.base_position = start;
    fields.ring_capacity = capacity_;
    fields.topic = name_;
    if (recycled_) {
      if (recycled_->slot == (start & (capacity_ - 1))) return recycle_segment(start, fields);
      discard_recycled();
    }
    std::unique_ptr<Prepared> p(
        prepared_.exchange(nullptr, std::memory_order_acquire)); // pairs with maintain's release
    if (!p) {
      Result<Prepared*> made = prepare_segment(false);
      if (!made.ok()) return made.status();
      p.reset(*made);
    }
    std::array<std::byte, segment_header_bytes> header{};
    if (Status st = encode_segment_header(header, fields); !st.ok()) return st;
    if (Status st = platform::write_at(p->fd, 0, header); !st.ok()) return st;
    const bool durable = options_.durability == Durability::sync;
    if (durable) {
      if (Status st = platform::sync_file_data(p->fd); !st.ok()) {
        set_failure(st);
        return st;
      }
    }
    const std::string final_name = segment_file_name(first_offset);
    if (Status st = platform::rename_at(dir_, p->name, final_name); !st.ok()) {
      (void)platform::remove_file_at(dir_, p->name);
      return st;
    }
    p->fd.set_path(dir_.path() + "/" + final_name);
    if (durable) {
      if (Status st = platform::sync_directory(dir_); !st.ok()) {
        set_failure(st);
        return st;
      }
    }
    Segment s;
    s.position = start;
    s.base_offset = first_offset;
    s.created_ns = fields.created_ns;
    s.opened_mid_batch = mid_batch;
    s.checksummed = fields.frame_checksum == FrameChecksumKind::crc32c;
    s.fd = std::move(p->fd);
    if (Status st = map_segment(s, options_.prefault); !st.ok()) {
      (void)platform::remove_file_at(dir_, final_name);
      return st;
    }
    std::lock_guard lock(mutex_);
    segments_.push_back(std::move(s));
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "rolling topic '" + name_ + "' to a new segment: out of memory");
  }
  return {};
}

// The segment file dropped from this ring slot (drop_below) becomes the new
// segment: header rewritten, renamed from its next-N.tmp name to the new base
// offset, its mapping and page-cache pages kept (no mmap, no page faults, no
// page allocation). Its data still holds last lap's frames: they carry last
// lap's tag, so no reader takes them for this lap's (the same as an in-memory
// ring), and recovery's scan ends at the first of them (other_lap_ends_data).
// Crash points: before the rename the file is a next-N.tmp that recovery
// deletes (its records were behind the head already); after it, the segment
// holds no frame of its lap yet.
Status TopicStore::recycle_segment(std::uint64_t start, const SegmentHeaderFields& fields) noexcept {
  Recycled& r = *recycled_;
  try {
    std::array<std::byte, segment_header_bytes> header{};
    if (Status st = encode_segment_header(header, fields); !st.ok()) {
      discard_recycled();
      return st;
    }
    if (Status st = platform::write_at(r.fd, 0, header); !st.ok()) {
      discard_recycled();
      return st;
    }
    const bool durable = options_.durability == Durability::sync;
    if (durable) {
      if (Status st = platform::sync_file_data(r.fd); !st.ok()) {
        set_failure(st);
        discard_recycled();
        return st;
      }
    }
    const std::string final_name = segment_file_name(fields.base_offset);
    if (Status st = platform::rename_at(dir_, r.name, final_name); !st.ok()) {
      discard_recycled();
      return st;
    }
    r.fd.set_path(dir_.path() + "/" + final_name);
    if (r.lock_held) platform::unlock_file(r.fd); // a follower may map it from now on
    Segment s;
    s.position = start;
    s.base_offset = fields.base_offset;
    s.created_ns = fields.created_ns;
    s.opened_mid_batch = (fields.flags & segment_flags::opened_mid_batch) != 0;
    s.checksummed = fields.frame_checksum == FrameChecksumKind::crc32c;
    s.fd = std::move(r.fd);
    recycled_.reset();
    if (durable) {
      if (Status st = platform::sync_directory(dir_); !st.ok()) {
        set_failure(st);
        (void)platform::map_zeros_into(ring_base_ + (start & (capacity_ - 1)), segment_bytes_);
        return st;
      }
    }
    std::lock_guard lock(mutex_);
    segments_.push_back(std::move(s));
  } catch (const std::bad_alloc&) {
    discard_recycled();
    return Status(Errc::out_of_memory, "rolling topic '" + name_ + "' to a recycled segment: out of memory");
  }
  return {};
}

void TopicStore::discard_recycled() noexcept {
  if (!recycled_) return;
  (void)platform::map_zeros_into(ring_base_ + recycled_->slot, segment_bytes_);
  (void)platform::remove_file_at(dir_, recycled_->name);
  // Its header was not rewritten: a follower that opened the old name may read it now.
  if (recycled_->lock_held) platform::unlock_file(recycled_->fd);
  std::lock_guard lock(mutex_);
  if (graveyard_.size() < graveyard_.capacity()) graveyard_.push_back(std::move(recycled_->fd));
  recycled_.reset();
}

Status TopicStore::sync_published(std::uint64_t from, std::uint64_t to) noexcept {
  if (failed()) return failure();
  const std::uint64_t page = platform::system_page_size();
  std::uint64_t p = from & ~(page - 1);
  while (p < to) {
    const std::uint64_t segment_end = (p & ~(segment_bytes_ - 1)) + segment_bytes_;
    const std::uint64_t end = std::min(to, segment_end);
    if (Status st = platform::sync_mapping(ring_base_ + (p & (capacity_ - 1)), end - p, "topic '" + name_ + "' data");
        !st.ok()) {
      set_failure(st);
      return st;
    }
    p = end;
  }
  synced_.store(to, std::memory_order_release); // read by flush/maintain (acquire)
  return {};
}

std::uint64_t TopicStore::retention_head(std::uint64_t current_head, std::uint64_t writer_segment) noexcept {
  const Retention& r = options_.retention;
  if (r.max_bytes == 0 && r.max_age.count() == 0 && r.max_segments == 0) return current_head;
  std::lock_guard lock(mutex_);
  const std::int64_t now = wall_clock_ns();
  std::uint64_t head = current_head;
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    const Segment& s = segments_[i];
    if (s.position < head) continue;
    if (s.position + segment_bytes_ >= writer_segment) break; // the segment just sealed stays
    const std::size_t kept = segments_.size() - i + 1;        // with the one the writer enters
    const bool too_many = r.max_segments != 0 && kept > r.max_segments;
    const bool too_big = r.max_bytes != 0 && kept * segment_bytes_ > r.max_bytes;
    // A sealed segment's last record was appended before the next one was created.
    const bool too_old =
        r.max_age.count() != 0 && i + 1 < segments_.size() && segments_[i + 1].created_ns < now - r.max_age.count();
    if (!too_many && !too_big && !too_old) break;
    head = s.position + segment_bytes_;
  }
  return head;
}

void TopicStore::drop_below(std::uint64_t head, std::uint64_t entering) noexcept {
  std::lock_guard lock(mutex_);
  while (!segments_.empty() && segments_.front().position + segment_bytes_ <= head) {
    Segment& s = segments_.front();
    const std::uint64_t slot = s.position & (capacity_ - 1);
    if (!read_only_ && entering != no_recycle && slot == (entering & (capacity_ - 1)) && !recycled_) {
      // Recycle it (begin_segment follows): only when no follower holds a
      // read lock on it (a follower's mapping of it must keep this lap's
      // bytes). The write lock is dropped once the file has its new name.
      Result<bool> locked = platform::try_lock_file(s.fd, false);
      if (locked.ok() && *locked) {
        try {
          std::string temp = std::string(prepared_prefix) + "r" +
                             std::to_string(prepare_counter_.fetch_add(1, std::memory_order_relaxed)) +
                             std::string(temp_suffix);
          if (s.may_have_index_file) (void)platform::remove_file_at(dir_, segment_index_file_name(s.base_offset));
          if (platform::rename_at(dir_, segment_file_name(s.base_offset), temp).ok()) {
            recycled_ = Recycled{std::move(s.fd), std::move(temp), slot, true};
            segments_.pop_front();
            continue;
          }
        } catch (const std::bad_alloc&) {
        }
        platform::unlock_file(s.fd);
      }
    }
    (void)platform::map_zeros_into(ring_base_ + slot, segment_bytes_);
    if (read_only_) {
      s.fd.reset(); // drops the follower's read lock: the writer may recycle the file
      segments_.pop_front();
      continue;
    }
    // The index goes whether or not this run wrote or loaded it
    // (may_have_index_file: an earlier run may have persisted it, and left
    // behind it would never be removed). It goes first, so a crash between the
    // two leaves a segment without its index (rebuilt on demand), never a stray
    // index. A missing file is fine.
    if (s.may_have_index_file) (void)platform::remove_file_at(dir_, segment_index_file_name(s.base_offset));
    (void)platform::remove_file_at(dir_, segment_file_name(s.base_offset));
    // The flusher closes it (maintain): the page cache of a deleted file is
    // freed by its last close, which costs ~0.3 ms per MiB. Without room
    // (no flusher running: close_deleted_files_in_maintain was not called,
    // and nothing else would ever close it), it closes here.
    if (graveyard_.size() < graveyard_.capacity()) graveyard_.push_back(std::move(s.fd));
    segments_.pop_front();
  }
  // No directory sync here: a deletion that does not reach the disk before a
  // power loss leaves a segment behind the head, which recovery deletes again
  // (more segments than the ring) or keeps (retention applies again later).
  // Under sync, begin_segment syncs the directory right after; under
  // interval, the next flush does.
}

void TopicStore::abandon_from(std::uint64_t start) noexcept {
  std::lock_guard lock(mutex_);
  bool removed = false;
  while (!segments_.empty() && segments_.back().position >= start) {
    Segment& s = segments_.back();
    (void)platform::map_zeros_into(ring_base_ + (s.position & (capacity_ - 1)), segment_bytes_);
    (void)platform::remove_file_at(dir_, segment_file_name(s.base_offset));
    removed = true;
    segments_.pop_back();
  }
  if (removed && options_.durability != Durability::none) (void)platform::sync_directory(dir_);
}

// --- any thread ------------------------------------------------------------------------------------

void TopicStore::set_failure(Status st) noexcept {
  std::lock_guard lock(mutex_);
  if (failed_.load(std::memory_order_relaxed)) return; // the first failure is the one reported
  try {
    failure_ =
        Status(st.code(), "topic '" + name_ + "' failed and takes no more appends: " + std::string(st.message()));
  } catch (const std::bad_alloc&) {
    failure_ = Status(st.code());
  }
  failed_.store(true, std::memory_order_release);                              // pairs with failed()
  if (refusing_ != nullptr) refusing_->store(true, std::memory_order_release); // pairs with Log::refusing()
}

Status TopicStore::failure() const {
  if (!failed()) return {};
  std::lock_guard lock(mutex_);
  return failure_;
}

std::size_t TopicStore::segment_count() const {
  std::lock_guard lock(mutex_);
  return segments_.size();
}

Status TopicStore::flush(std::uint64_t tail) noexcept {
  if (read_only_) return {};
  if (failed()) return failure();
  // The descriptors are duplicated under the lock and synced outside it, so
  // a roll (which takes the lock) never waits for an fdatasync. A fixed
  // array: the flusher's steady state allocates nothing.
  constexpr std::size_t batch = 16;
  std::array<int, batch> fds{};
  std::size_t count = 0;
  const std::uint64_t from = synced_.load(std::memory_order_acquire); // pairs with the release stores of synced_
  if (tail <= from) return {};
  {
    std::lock_guard lock(mutex_);
    for (const Segment& s : segments_) {
      if (s.position + segment_bytes_ <= from || s.position >= tail) continue;
      const int fd = count == batch ? -1 : ::fcntl(s.fd.get(), F_DUPFD_CLOEXEC, 0);
      if (fd < 0) {
        tail = std::max(from, s.position); // the rest: the next flush (synced_ stops at what was synced)
        break;
      }
      fds[count++] = fd;
    }
  }
  Status st;
  for (std::size_t i = 0; i < count; ++i) {
    if (st.ok()) {
      platform::FileDescriptor dup(fds[i], std::string()); // no path: nothing allocated unless it fails
      st = platform::sync_file_data(dup);
      if (!st.ok()) st = Status(st.code(), "a segment file in " + dir_.path() + ": " + std::string(st.message()));
    } else {
      ::close(fds[i]);
    }
  }
  if (st.ok()) st = platform::sync_directory(dir_);
  if (!st.ok()) {
    set_failure(st);
    return failure();
  }
  // Never backwards: a concurrent flush (Bus::flush and the flusher) may have
  // gone further. release/acquire: pairs with the acquire load of synced_ at
  // the top of flush and in maintain.
  std::uint64_t seen = from;
  while (seen < tail &&
         !synced_.compare_exchange_weak(seen, tail, std::memory_order_release, std::memory_order_acquire)) {
  }
  return {};
}

void TopicStore::maintain(std::uint64_t tail, std::int64_t now_ns) noexcept {
  if (read_only_ || failed()) return;
  // relaxed: recover() stored it before the store was shared (the registry's
  // mutex publishes the log to the flusher); only the flusher exchanges it.
  if (const std::uint64_t at = prefault_tail_.exchange(no_prefault, std::memory_order_relaxed); at != no_prefault) {
    // The producer may have rolled on meanwhile: the slot then holds a newer
    // segment (faulting it in is harmless) or zero pages (refused: ignored).
    (void)platform::prefault_shared(ring_base_ + (at & (capacity_ - 1)), segment_bytes_, platform::Access::read_write);
  }
  // Files of deleted segments: their pages are released here, not on the
  // producer's thread (closing the last descriptor of an unlinked file frees
  // its page cache).
  {
    std::vector<platform::FileDescriptor> dead;
    {
      std::lock_guard lock(mutex_);
      dead.swap(graveyard_); // no allocation: both keep their buffers (swapped back below)
    }
    dead.clear();
    std::lock_guard lock(mutex_);
    if (graveyard_.empty()) graveyard_.swap(dead);
  }
  if (prepared_.load(std::memory_order_acquire) == nullptr) { // pairs with begin_segment's exchange
    Result<Prepared*> p = prepare_segment(options_.prefault);
    if (p.ok()) {
      Prepared* expected = nullptr;
      // release: the prepared file's state is visible to the roll that takes it.
      if (!prepared_.compare_exchange_strong(expected, *p, std::memory_order_release, std::memory_order_relaxed)) {
        (void)platform::remove_file_at(dir_, (*p)->name);
        delete *p;
      }
    }
    // A failure here (a full disk) is reported by the roll that needs the file.
  }
  if (options_.durability == Durability::interval) {
    const std::uint64_t synced = synced_.load(std::memory_order_acquire); // pairs with flush's release
    const bool due_time = options_.flush_interval.count() > 0 &&
                          now_ns - last_flush_ns_ >= std::chrono::nanoseconds(options_.flush_interval).count();
    const bool due_bytes = options_.flush_bytes != 0 && tail - synced >= options_.flush_bytes;
    if (tail > synced && (due_time || due_bytes)) {
      (void)flush(tail);
      last_flush_ns_ = now_ns;
    }
  }
  // Persist the indexes of sealed segments (so a restart need not rebuild
  // them), once sealed for a second: a ring that laps faster than that
  // recycles its segments before a restart could use their indexes, and the
  // scan and the three file calls, under mutex_, would hold up the roll.
  std::lock_guard lock(mutex_);
  write_seals(tail, 4);
  const std::int64_t settled = wall_clock_ns() - 1'000'000'000;
  for (std::size_t i = 0; i + 1 < segments_.size(); ++i) {
    Segment& s = segments_[i];
    if (s.index_on_disk || s.position + segment_bytes_ > tail || segments_[i + 1].created_ns > settled) continue;
    SegmentIndex* index = index_of(s, tail);
    if (index == nullptr || !index->sealed()) continue;
    try {
      const std::vector<std::byte> bytes = index->encode();
      const std::string name = segment_index_file_name(s.base_offset);
      const std::string temp = name + ".tmp";
      (void)platform::remove_file_at(dir_, temp);
      Result<platform::FileDescriptor> fd = platform::create_file_at(dir_, temp);
      if (!fd.ok()) continue;
      if (!platform::write_at(*fd, 0, bytes).ok() || !platform::rename_at(dir_, temp, name).ok()) {
        (void)platform::remove_file_at(dir_, temp);
        continue;
      }
      s.index_on_disk = true;
      s.may_have_index_file = true;
    } catch (const std::bad_alloc&) {
      return;
    }
    break; // one per call: the flusher comes back within a millisecond
  }
}

namespace {
// relaxed: set by a test before the flusher that reads it starts (thread
// creation orders the store before the flusher's loads).
std::atomic<std::uint64_t> sealed_from{TopicStore::seal_min_segment_bytes};
} // namespace

void testing::seal_segments_from(std::uint64_t bytes) noexcept { sealed_from.store(bytes, std::memory_order_relaxed); }

std::uint64_t seal_boot_tag() noexcept {
  static const std::uint64_t tag = [] {
    try {
      const std::string id = platform::boot_id();
      if (id.empty()) return std::uint64_t{0};
      std::uint64_t h = 0xcbf29ce484222325; // FNV-1a, 64 bits
      for (const char c : id) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3;
      return h == 0 ? 1 : h;
    } catch (const std::bad_alloc&) {
      return std::uint64_t{0};
    }
  }();
  return tag;
}

std::optional<SegmentSeal> seal_of_this_boot(std::span<const std::byte> header, std::uint64_t base_position) noexcept {
  std::optional<SegmentSeal> seal = decode_segment_seal(header);
  if (seal && (seal->base_position != base_position || seal->boot != seal_boot_tag() || seal->boot == 0)) seal.reset();
  return seal;
}

// Only segments of seal_min_segment_bytes or more: a walk of a smaller one
// is cheap, and a ring of small segments rolls thousands of times a second,
// each seal a write under mutex_ (which a roll takes too) on a thread that
// shares the cores with the writer and its readers (persist_append/none
// measured 2-5% slower sealing 1 MiB segments). A few per call, oldest
// first; one whose turn does not come before it is recycled is walked by a
// recovery instead, as without seals.
void TopicStore::write_seals(std::uint64_t tail, std::size_t most) noexcept {
  const std::uint64_t boot = seal_boot_tag();
  if (boot == 0 || segment_bytes_ < sealed_from.load(std::memory_order_relaxed)) return;
  for (std::size_t i = 0; most != 0 && i + 1 < segments_.size(); ++i) {
    Segment& s = segments_[i];
    if (seal_matches_next(i)) continue;
    if (s.position + segment_bytes_ > tail) break; // the writer has not published past it yet
    // The tail was read with acquire (the flusher's tail_acquire pairs with
    // the producer's publication): every frame word of s, its pad included,
    // was stored before this write, and the next segment's first record is
    // the one after s's last.
    const SegmentSeal seal{s.position, segments_[i + 1].base_offset, boot};
    const std::array<std::byte, segment_seal_bytes> bytes = encode_segment_seal(seal);
    // Best effort: a seal that is not written costs the next recovery a walk.
    (void)platform::write_at(s.fd, segment_seal_at, bytes);
    s.seal_on_disk = true;
    s.seal_end_offset = seal.end_offset;
    --most;
  }
}

// --- read-only followers -----------------------------------------------------------------------

bool TopicStore::follow_next(std::uint64_t& position, std::uint64_t& offset, Log& log) noexcept {
  try {
    std::string name = segment_file_name(offset);
    Result<platform::FileDescriptor> fd = platform::open_file_at(dir_, name, platform::Access::read_only);
    if (fd.ok()) return take_followed(std::move(*fd), name, false, position, position, offset, log);
    // Not rolled yet, or rolled and already deleted: the writer lapped us.
    // Look at the directory (at most every 10 ms) for a newer segment.
    const std::int64_t now = platform::monotonic_ns();
    if (now - last_listing_ns_ < 10'000'000) return false;
    last_listing_ns_ = now;
    // The segment looked for may have appeared since the open above (a
    // roll between the two): then it is the one, not a lap. Taking the
    // next one instead jumped the head past a whole segment a reader had
    // yet to read (a CI run's `ringbus tail -f` under load).
    const std::optional<std::uint64_t> oldest = oldest_segment_from(offset);
    if (!oldest) return false;
    name = segment_file_name(*oldest);
    fd = platform::open_file_at(dir_, name, platform::Access::read_only);
    if (!fd.ok()) return false; // deleted meanwhile: next time
    return take_followed(std::move(*fd), name, *oldest != offset, position, position, offset, log);
  } catch (const std::bad_alloc&) {
    return false;
  }
}

bool TopicStore::follow_past_dropped(std::uint64_t segment_start, std::uint64_t& position, std::uint64_t& offset,
                                     Log& log) noexcept {
  try {
    std::uint64_t base = 0;
    {
      std::lock_guard lock(mutex_);
      const Segment* s = segment_at(segment_start);
      if (s == nullptr) return false;
      base = s->base_offset;
    }
    // Still there, the damage stands: only the writer's dropping it ends it.
    // Looked for at most every millisecond: a consumer waiting on several
    // topics calls follow() each round of its wait.
    const std::int64_t now = platform::monotonic_ns();
    if (now - last_drop_check_ns_ < 1'000'000) return false;
    last_drop_check_ns_ = now;
    Result<bool> there = platform::entry_exists_at(dir_, segment_file_name(base));
    if (!there.ok() || *there) return false;
    // The writer drops segments oldest first: with an older file still
    // there, someone else deleted this one, and the records after the
    // damage may still be the writer's. The damage stands.
    const std::optional<std::uint64_t> oldest = oldest_segment_from(0);
    if (!oldest || *oldest <= base) return false;
    const std::string name = segment_file_name(*oldest);
    Result<platform::FileDescriptor> fd = platform::open_file_at(dir_, name, platform::Access::read_only);
    if (!fd.ok()) return false; // deleted meanwhile: next time
    return take_followed(std::move(*fd), name, true, segment_start, position, offset, log);
  } catch (const std::bad_alloc&) {
    return false;
  }
}

std::optional<std::uint64_t> TopicStore::oldest_segment_from(std::uint64_t first) const {
  Result<std::vector<platform::DirectoryEntry>> entries = platform::list_directory(dir_);
  if (!entries.ok()) return std::nullopt;
  std::optional<std::uint64_t> oldest;
  for (const platform::DirectoryEntry& e : *entries) {
    const std::optional<std::uint64_t> base = parse_segment_file_name(e.name);
    if (base && *base >= first && (!oldest || *base < *oldest)) oldest = base;
  }
  return oldest;
}

bool TopicStore::take_followed(platform::FileDescriptor fd, const std::string& name, bool lapped, std::uint64_t after,
                               std::uint64_t& position, std::uint64_t& offset, Log& log) {
  // A file this follower's recovery after a reboot left out of the log (the
  // log ends before it): a writer's recovery sets it aside, its records are
  // not the log's. Taken as the next segment, or as a lap, it would hand out
  // offsets past the log's end (a missing or damaged segment before it).
  if (left_the_log(fd)) return false;
  // Read-locked before its header is read: from here the writer cannot
  // recycle it (drop_below), so the header read below stays true for as
  // long as it is mapped here. Refused: the writer is recycling it now.
  if (Result<bool> locked = platform::try_lock_file(fd, true); !locked.ok() || !*locked) return false;
  std::array<std::byte, segment_header_bytes> header{};
  Result<std::size_t> got = platform::read_at(fd, 0, header);
  if (!got.ok()) return false;
  SegmentHeaderFields fields;
  if (!validate_segment_header(std::span(header).first(*got), name, name_, segment_bytes_, &fields).ok() ||
      fields.ring_capacity != capacity_ || (!lapped && fields.base_position != position) ||
      (lapped && fields.base_position <= after)) {
    return false;
  }
  Result<platform::FileInfo> info = platform::file_info(fd);
  if (!info.ok() || info->size < page_size_ + segment_bytes_) return false;
  if (lapped) {
    log.jump_head(fields.base_position, fields.base_offset); // readers find the gap from the head
  } else {
    log.make_room(position);
  }
  std::uint64_t head = 0;
  std::uint64_t head_offset = 0;
  log.read_head(head, head_offset);
  drop_below(head);
  Segment s;
  s.position = fields.base_position;
  s.base_offset = fields.base_offset;
  s.created_ns = fields.created_ns;
  s.checksummed = fields.frame_checksum == FrameChecksumKind::crc32c;
  s.fd = std::move(fd);
  // A failed map leaves the head past the tail: readers find nothing
  // (refill) until a later follow() maps the segment.
  if (!map_segment(s, false).ok()) return false;
  position = s.position;
  offset = s.base_offset;
  std::lock_guard lock(mutex_);
  segments_.push_back(std::move(s));
  return true;
}

// --- seeks --------------------------------------------------------------------------------

TopicStore::Segment* TopicStore::segment_at(std::uint64_t position) noexcept {
  for (Segment& s : segments_) {
    if (s.position == position) return &s;
  }
  return nullptr;
}

SegmentIndex* TopicStore::index_of(Segment& s, std::uint64_t tail) noexcept {
  try {
    const std::span<const std::byte> data = data_of(s);
    ScanOptions scan;
    scan.verify_checksums = s.checksummed;
    scan.lap = lap_of(s.position, capacity_);
    const std::uint64_t until = tail >= s.position + segment_bytes_ ? segment_bytes_ : tail - s.position;
    if (!s.index) {
      // A persisted index is used only once it is checked against the data.
      const std::string idx_name = segment_index_file_name(s.base_offset);
      Result<platform::FileDescriptor> fd = platform::open_file_at(dir_, idx_name, platform::Access::read_only);
      if (fd.ok()) {
        Result<platform::FileInfo> info = platform::file_info(*fd);
        if (info.ok() && info->size <= (std::uint64_t{1} << 26)) {
          std::vector<std::byte> bytes(info->size);
          Result<std::size_t> got = platform::read_at(*fd, 0, bytes);
          if (got.ok() && *got == bytes.size()) {
            Result<SegmentIndex> decoded = SegmentIndex::decode(bytes, idx_name, s.base_offset, segment_bytes_);
            if (decoded.ok() && decoded->end_position() <= until &&
                decoded->verify(data, idx_name, s.checksummed).ok()) {
              s.index = std::move(*decoded);
              s.index_on_disk = true;
              s.may_have_index_file = true;
            }
          }
        }
      }
      if (!s.index) {
        Result<SegmentIndex> fresh = SegmentIndex::create(s.base_offset, segment_bytes_, index_interval_bytes);
        if (!fresh.ok()) return nullptr;
        s.index = std::move(*fresh);
      }
    }
    if (!s.index->sealed() && s.index->end_position() < until) {
      s.index->catch_up(data, scan, static_cast<std::uint32_t>(until));
    }
    return &*s.index;
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

std::optional<std::uint64_t> TopicStore::position_for_offset(std::uint64_t segment, std::uint64_t offset,
                                                             std::uint64_t tail) noexcept {
  std::lock_guard lock(mutex_);
  Segment* s = segment_at(segment);
  if (s == nullptr) return std::nullopt;
  SegmentIndex* index = index_of(*s, tail);
  if (index == nullptr) return std::nullopt;
  return segment + index->lookup_offset(offset).position;
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> TopicStore::position_for_time(std::int64_t timestamp_ns,
                                                                                     std::uint64_t head,
                                                                                     std::uint64_t tail) noexcept {
  std::lock_guard lock(mutex_);
  for (Segment& s : segments_) {
    if (s.position < head || s.position >= tail) continue;
    SegmentIndex* index = index_of(s, tail);
    if (index == nullptr) return std::nullopt;
    if (index->max_timestamp() == no_timestamp || index->max_timestamp() < timestamp_ns) continue;
    const IndexPosition at = index->lookup_time(timestamp_ns);
    return std::pair{s.position + at.position, at.offset};
  }
  return std::nullopt;
}

} // namespace ringbus::detail
