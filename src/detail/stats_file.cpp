// The stats file: its writer (the flusher thread of the writing process) and
// its reader (`ringbus stat`). Layout and the seqlock's pairing:
// ringbus/detail/stats_layout.hpp.
#include "detail/stats_file.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "platform/platform.hpp"
#include "ringbus/detail/checksum.hpp"
#include "ringbus/detail/log.hpp"
#include "ringbus/detail/stats_layout.hpp"

namespace ringbus::detail {

namespace {

constexpr std::string_view temp_name = "stats.tmp";
// Reader retries while the sequence is odd or moves: an update takes well
// under a microsecond, so a live writer never holds a reader for long.
constexpr int read_attempts = 1000;

std::atomic_ref<std::uint64_t> word_at(std::byte* snapshot, std::size_t index) noexcept {
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(snapshot + index * 8));
}

std::uint32_t identity_checksum(const StatsIdentity& id) noexcept {
  const std::uint32_t crc = crc32c_extend(0, &id, stats_ident_checked_bytes);
  return crc32c_extend(crc, id.topic_name, std::min<std::size_t>(id.name_length, stats_topic_name_capacity));
}

// The words updated_mono_ns .. consumers_and_flags of a snapshot, as one checksum.
std::uint32_t snapshot_checksum(const std::uint64_t (&words)[stats_word::count]) noexcept {
  return crc32c(&words[stats_word::updated_mono_ns],
                (stats_word::checksum - stats_word::updated_mono_ns) * sizeof(std::uint64_t));
}

void fill_words(std::uint64_t (&w)[stats_word::count], const TopicStats& s, std::int64_t real_ns,
                bool closed) noexcept {
  w[stats_word::updated_mono_ns] =
      static_cast<std::uint64_t>(std::chrono::nanoseconds(s.sampled_at.time_since_epoch()).count());
  w[stats_word::updated_real_ns] = static_cast<std::uint64_t>(real_ns);
  w[stats_word::end_offset] = s.end_offset;
  w[stats_word::records_appended] = s.records_appended;
  w[stats_word::bytes_appended] = s.bytes_appended;
  w[stats_word::producer_waits] = s.producer_waits;
  w[stats_word::producer_wait_ns] = s.producer_wait_ns;
  w[stats_word::segment_rolls] = s.segment_rolls;
  w[stats_word::segment_roll_ns] = s.segment_roll_ns;
  w[stats_word::lapped_consumers] = s.lapped_consumers;
  w[stats_word::records_lost_by_lapped_consumers] = s.records_lost_by_lapped_consumers;
  const std::uint32_t flags = (s.has_producer ? stats_flags::has_producer : 0) | (closed ? stats_flags::closed : 0);
  w[stats_word::consumers_and_flags] = s.open_consumers | (std::uint64_t{flags} << 32);
  w[stats_word::checksum] = snapshot_checksum(w);
}

Status bad(const std::string& path, const std::string& what) {
  return Status(Errc::corrupt_data, "stats file " + path + ": " + what);
}

} // namespace

TopicStats sample_stats(const Log& log) noexcept {
  TopicStats s;
  s.sampled_at = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(platform::monotonic_ns()));
  s.end_offset = log.end_offset();
  const std::uint64_t tail = log.tail_acquire();
  s.records_appended = s.end_offset - std::min(s.end_offset, log.stats_base_offset());
  s.bytes_appended = tail - std::min(tail, log.stats_base_position());
  const LogCounters& c = log.counters();
  s.producer_waits = LogCounters::read(c.producer_waits);
  s.producer_wait_ns = LogCounters::read(c.producer_wait_ns);
  s.segment_rolls = LogCounters::read(c.segment_rolls);
  s.segment_roll_ns = LogCounters::read(c.segment_roll_ns);
  s.lapped_consumers = LogCounters::read(c.laps);
  s.records_lost_by_lapped_consumers = LogCounters::read(c.records_lost);
  s.open_consumers = log.active_readers();
  s.has_producer = log.has_writer();
  return s;
}

Result<StatsFileWriter> StatsFileWriter::create(const platform::FileDescriptor& topic_dir, std::string_view topic,
                                                std::int64_t started_ns, const TopicStats& first) {
  if (topic.size() >= stats_topic_name_capacity) {
    return Status(Errc::invalid_argument, "topic name of " + std::to_string(topic.size()) + " bytes is too long");
  }
  // A stats.tmp left by a writer that died while making it: never read by anyone.
  Result<bool> stale = platform::entry_exists_at(topic_dir, temp_name);
  if (!stale.ok()) return stale.status();
  if (*stale) {
    if (Status st = platform::remove_file_at(topic_dir, temp_name); !st.ok()) return st;
  }
  Result<platform::FileDescriptor> fd = platform::create_file_at(topic_dir, temp_name);
  if (!fd.ok()) return fd.status();
  if (Status st = platform::preallocate(*fd, stats_file_bytes); !st.ok()) {
    (void)platform::remove_file_at(topic_dir, temp_name);
    return st;
  }
  Result<platform::FileMapping> m = platform::map_file(*fd, 0, stats_file_bytes, platform::Access::read_write);
  if (!m.ok()) {
    (void)platform::remove_file_at(topic_dir, temp_name);
    return m.status();
  }
  // Nobody else can see the file before its rename: plain stores.
  StatsIdentity id{};
  std::memcpy(id.magic, stats_magic.data(), sizeof id.magic);
  id.format_version = stats_format_version;
  id.file_bytes = static_cast<std::uint32_t>(stats_file_bytes);
  id.writer_pid = platform::process_id();
  id.started_ns = started_ns;
  id.name_length = static_cast<std::uint32_t>(topic.size());
  std::memcpy(id.topic_name, topic.data(), topic.size());
  id.ident_checksum = identity_checksum(id);
  std::memcpy(m->data(), &id, sizeof id);
  StatsFileWriter w;
  w.mapping_ = std::move(*m);
  w.publish(first, false);
  if (Status st = platform::rename_at(topic_dir, temp_name, stats_file_name); !st.ok()) {
    (void)platform::remove_file_at(topic_dir, temp_name);
    return st;
  }
  return w;
}

void StatsFileWriter::publish(const TopicStats& stats, bool closed) noexcept {
  if (mapping_.data() == nullptr) return;
  std::uint64_t words[stats_word::count] = {};
  fill_words(words, stats, detail::wall_clock_ns(), closed);
  std::byte* const snapshot = mapping_.data() + stats_snapshot_offset;
  // Odd: an update is under way. relaxed: the release stores below order it
  // before themselves for a reader (stats_layout.hpp).
  word_at(snapshot, stats_word::sequence).store(sequence_ + 1, std::memory_order_relaxed);
  for (std::size_t i = stats_word::sequence + 1; i < stats_word::count; ++i) {
    word_at(snapshot, i).store(words[i], std::memory_order_release); // pairs with the reader's acquire loads
  }
  sequence_ += 2;
  word_at(snapshot, stats_word::sequence).store(sequence_, std::memory_order_release); // pairs with the first load
}

Result<std::optional<StatsFileContents>> read_stats_file(const platform::FileDescriptor& topic_dir,
                                                         std::string_view topic) {
  Result<bool> there = platform::entry_exists_at(topic_dir, stats_file_name);
  if (!there.ok()) return there.status();
  if (!*there) return std::optional<StatsFileContents>();
  const std::string path = topic_dir.path() + "/" + std::string(stats_file_name);
  Result<platform::FileDescriptor> fd = platform::open_file_at(topic_dir, stats_file_name, platform::Access::read_only);
  if (!fd.ok()) return fd.status();
  Result<platform::FileInfo> info = platform::file_info(*fd);
  if (!info.ok()) return info.status();
  if (info->size != stats_file_bytes) {
    return bad(path,
               "size " + std::to_string(info->size) + " bytes, a stats file has " + std::to_string(stats_file_bytes));
  }
  Result<platform::FileMapping> m = platform::map_file(*fd, 0, stats_file_bytes, platform::Access::read_only);
  if (!m.ok()) return m.status();
  StatsIdentity id{};
  std::memcpy(&id, m->data(), sizeof id); // written before the file had its name
  if (std::memcmp(id.magic, stats_magic.data(), sizeof id.magic) != 0) {
    return bad(path, "magic is not \"RBUS-STA\": not a ringbus stats file");
  }
  if (id.format_version != stats_format_version) {
    return bad(path, "format_version " + std::to_string(id.format_version) + ", this build reads " +
                         std::to_string(stats_format_version));
  }
  if (id.file_bytes != stats_file_bytes || id.name_length >= stats_topic_name_capacity) {
    return bad(path, "file_bytes " + std::to_string(id.file_bytes) + " or name_length " +
                         std::to_string(id.name_length) + " out of range");
  }
  if (id.ident_checksum != identity_checksum(id)) return bad(path, "ident_checksum does not match: damaged");
  if (std::string_view(id.topic_name, id.name_length) != topic) {
    return bad(path, "it belongs to topic '" + std::string(id.topic_name, id.name_length) + "', not '" +
                         std::string(topic) + "'");
  }
  std::byte* const snapshot = m->data() + stats_snapshot_offset;
  std::uint64_t w[stats_word::count] = {};
  bool whole = false;
  bool checksum_ok = false;
  for (int attempt = 0; attempt < read_attempts && !whole; ++attempt) {
    if (attempt != 0) platform::sleep_ns(1'000);
    // acquire: pairs with the release store that ends an update.
    const std::uint64_t before = word_at(snapshot, stats_word::sequence).load(std::memory_order_acquire);
    if ((before & 1) != 0) continue;
    for (std::size_t i = stats_word::sequence + 1; i < stats_word::count; ++i) {
      w[i] = word_at(snapshot, i).load(std::memory_order_acquire); // pairs with the writer's release stores
    }
    // relaxed reread after the acquire loads: a word from a later update makes it see that update's odd sequence.
    if (word_at(snapshot, stats_word::sequence).load(std::memory_order_relaxed) != before) continue;
    whole = true;
    checksum_ok = static_cast<std::uint32_t>(w[stats_word::checksum]) == snapshot_checksum(w) &&
                  (w[stats_word::checksum] >> 32) == 0;
  }
  if (!whole) {
    return bad(
        path, "torn: its writer (pid " + std::to_string(id.writer_pid) + ") died inside an update or kept changing it");
  }
  if (!checksum_ok) return bad(path, "snapshot_checksum does not match: damaged");
  StatsFileContents c;
  c.writer_pid = static_cast<long>(id.writer_pid);
  c.started_ns = id.started_ns;
  c.updated_real_ns = static_cast<std::int64_t>(w[stats_word::updated_real_ns]);
  const auto flags = static_cast<std::uint32_t>(w[stats_word::consumers_and_flags] >> 32);
  c.closed = (flags & stats_flags::closed) != 0;
  TopicStats& s = c.stats;
  s.sampled_at = std::chrono::steady_clock::time_point(
      std::chrono::nanoseconds(static_cast<std::int64_t>(w[stats_word::updated_mono_ns])));
  s.end_offset = w[stats_word::end_offset];
  s.records_appended = w[stats_word::records_appended];
  s.bytes_appended = w[stats_word::bytes_appended];
  s.producer_waits = w[stats_word::producer_waits];
  s.producer_wait_ns = w[stats_word::producer_wait_ns];
  s.segment_rolls = w[stats_word::segment_rolls];
  s.segment_roll_ns = w[stats_word::segment_roll_ns];
  s.lapped_consumers = w[stats_word::lapped_consumers];
  s.records_lost_by_lapped_consumers = w[stats_word::records_lost_by_lapped_consumers];
  s.open_consumers = static_cast<std::uint32_t>(w[stats_word::consumers_and_flags]);
  s.has_producer = (flags & stats_flags::has_producer) != 0;
  return std::optional<StatsFileContents>(std::move(c));
}

} // namespace ringbus::detail
