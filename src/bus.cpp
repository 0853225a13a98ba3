#include "ringbus/bus.hpp"

#include <algorithm>

#include <string>
#include <utility>
#include <vector>

#include "detail/bus_core.hpp"
#include "detail/consumer_state.hpp"
#include "detail/stats_file.hpp"
#include "detail/topic_store.hpp"
#include "detail/writer_boot.hpp"
#include "platform/platform.hpp"
#include "ringbus/detail/offset_store.hpp"

namespace ringbus {

namespace {
Status bus_closed() { return Status(Errc::closed, "bus is closed"); }
} // namespace

Bus::Bus() : core_(std::allocate_shared<detail::BusCore>(detail::HeapAllocator<detail::BusCore>())) {}

namespace {

Status in_directory(const std::string& path, const Status& st) {
  return Status(st.code(), "bus directory " + path + ": " + std::string(st.message()));
}

// Opens sub-directory name of dir, creating it (0700, then the parent synced) when writable.
Result<platform::FileDescriptor> sub_directory(const platform::FileDescriptor& dir, std::string_view name,
                                               bool read_only) {
  Result<bool> exists = platform::entry_exists_at(dir, name);
  if (!exists.ok()) return exists.status();
  if (!*exists && !read_only) {
    if (Status st = platform::make_directory_at(dir, name); !st.ok()) return st;
    if (Status st = platform::sync_directory(dir); !st.ok()) return st;
  }
  if (!*exists && read_only) return platform::FileDescriptor();
  return platform::open_directory_at(dir, name);
}

// A recovery that cut a topic's tail (a power loss took pages the kernel had
// not written back) leaves its end below what consumers and groups committed.
// Resuming there is clamped to the end, but records appended after this open
// would take those offsets, and a later resume at the old commit would skip
// them. So each stored position above its topic's end is set to the end, one
// atomic commit per store file. A store that does not open is left to report
// itself when its consumer or group uses it.
Status clamp_committed_positions(detail::BusCore& core, const platform::FileDescriptor& dir, std::string_view what) {
  if (!dir.valid()) return {};
  Result<std::vector<platform::DirectoryEntry>> files = platform::list_directory(dir);
  if (!files.ok()) return files.status();
  constexpr std::string_view suffix = ".offsets";
  for (const platform::DirectoryEntry& e : *files) {
    if (e.type != platform::EntryType::regular || !e.name.ends_with(suffix) || e.name.size() == suffix.size()) continue;
    Result<detail::OffsetStore> store = detail::OffsetStore::open(dir, e.name);
    if (!store.ok()) continue;
    std::vector<detail::OffsetUpdate> updates;
    for (const auto& [topic, committed] : store->entries()) {
      const detail::Log* log = core.find(std::string_view(topic));
      if (log == nullptr || committed <= log->end_offset()) continue;
      updates.push_back(detail::OffsetUpdate{std::string_view(topic), log->end_offset(), false});
    }
    if (updates.empty()) continue;
    if (Status st = store->commit(updates); !st.ok()) {
      return Status(st.code(), "setting the positions in " + std::string(what) + " file " + e.name +
                                   " back to their topics' recovered ends failed: " + std::string(st.message()));
    }
  }
  return {};
}

// The flusher: prepares the next segment of every persistent topic ahead of
// its roll, flushes Durability::interval topics when due, persists the
// indexes of sealed segments and, every stats_interval, rewrites the topics'
// stats files. Wakes every millisecond.
void run_flusher(detail::BusCore* core) {
  std::vector<detail::Log*> logs;
  std::vector<detail::StatsPublisher*> publishers;
  const std::int64_t stats_interval = core->disk ? core->disk->stats_interval_ns : 0;
  std::int64_t stats_due = platform::monotonic_ns() + stats_interval;
  // acquire: pairs with stop_flusher_thread's release.
  while (!core->stop_flusher.load(std::memory_order_acquire)) {
    logs.clear();
    publishers.clear();
    {
      std::lock_guard lock(core->mutex);
      for (auto& [name, log] : core->registry) {
        if (log->store() != nullptr) logs.push_back(log.get());
      }
      for (auto& p : core->stats_publishers) publishers.push_back(p.get());
    }
    const std::int64_t now = platform::monotonic_ns();
    for (detail::Log* log : logs) log->store()->maintain(log->tail_acquire(), now);
    if (stats_interval > 0 && now >= stats_due) {
      for (detail::StatsPublisher* p : publishers) p->file.publish(detail::sample_stats(*p->log), false);
      stats_due = now + stats_interval;
    }
    platform::sleep_ns(1'000'000);
  }
}

// A persistent topic's stats file, when the bus is writable and keeps them
// (under core.mutex). Best effort: the topic works without one, and
// `ringbus stat` then says it has none.
void start_stats_file(detail::BusCore& core, detail::Log* log) {
  const detail::BusDirectory* disk = core.disk.get();
  if (disk == nullptr || disk->read_only || disk->stats_interval_ns == 0 || log->store() == nullptr) return;
  Result<platform::FileDescriptor> dir = platform::open_directory_at(disk->topics, log->name());
  if (!dir.ok()) return;
  Result<detail::StatsFileWriter> file =
      detail::StatsFileWriter::create(*dir, log->name(), detail::wall_clock_ns(), detail::sample_stats(*log));
  if (!file.ok()) return;
  try {
    std::unique_ptr<detail::StatsPublisher, detail::HeapDeleter> p(detail::heap_new<detail::StatsPublisher>());
    p->log = log;
    p->file = std::move(*file);
    core.stats_publishers.push_back(std::move(p));
  } catch (const std::bad_alloc&) {
    // no stats file for this topic: see above
  }
}

} // namespace

namespace detail {

bool BusCore::topics_directory_locked() {
  if (disk->topics.valid()) return true;
  // Read-only: the writer had not made topics/ yet when this bus opened.
  Result<platform::FileDescriptor> topics = sub_directory(disk->dir, "topics", true);
  if (!topics.ok() || !topics->valid()) return false;
  disk->topics = std::move(*topics);
  return true;
}

Log* BusCore::discover_locked(std::string_view name, Status& why) {
  if (!validate_topic_name(name).ok() || !topics_directory_locked()) return nullptr;
  // Only a directory is a topic (Bus::open skips anything else in topics/).
  Result<std::vector<platform::DirectoryEntry>> entries = platform::list_directory(disk->topics);
  if (!entries.ok()) {
    why = in_directory(disk->path, entries.status());
    return nullptr;
  }
  const bool there = std::any_of(entries->begin(), entries->end(), [name](const platform::DirectoryEntry& e) {
    return e.type == platform::EntryType::directory && e.name == name;
  });
  if (!there) return nullptr;
  // topic_not_found: the writer is creating it (TopicStore::open); a later
  // call looks again. Anything else is reported as Bus::open reports it.
  // The boot check again, not Bus::open's: the writer may have recorded
  // this boot since (or the directory was replaced by a copy).
  Result<std::unique_ptr<TopicStore>> store =
      TopicStore::open(disk->topics, std::string(name), true, !detail::same_boot_as_last_writer(disk->dir));
  if (store.code() == Errc::topic_not_found) return nullptr;
  if (!store.ok()) {
    why = in_directory(disk->path, store.status());
    return nullptr;
  }
  try {
    LogPtr log(heap_new<Log>(name, std::move(*store)));
    Log* raw = log.get();
    registry.emplace(HeapString(name), std::move(log));
    return raw;
  } catch (const std::bad_alloc&) {
    why = Status(Errc::out_of_memory, "topic '" + std::string(name) + "': out of memory");
    return nullptr;
  }
}

} // namespace detail

Result<Bus> Bus::open(std::string_view directory, const BusOptions& options) {
  Bus bus;
  auto disk = std::make_unique<detail::BusDirectory>();
  disk->path = std::string(directory);
  disk->read_only = options.read_only;
  if (disk->path.empty()) return Status(Errc::invalid_argument, "bus directory path is empty");
  if (Status st = validate_interval("stats_interval", options.stats_interval); !st.ok()) return st;
  disk->stats_interval_ns = std::chrono::nanoseconds(options.stats_interval).count();
  if (!options.read_only) {
    if (Status st = platform::make_directory(disk->path); !st.ok()) return st;
  }
  Result<platform::FileDescriptor> dir = platform::open_directory(disk->path);
  if (!dir.ok()) return dir.status();
  disk->dir = std::move(*dir);
  if (!options.read_only) {
    Result<platform::FileLock> lock = platform::lock_exclusive(disk->dir, "LOCK");
    if (!lock.ok()) {
      return Status(lock.code(), "bus directory " + disk->path + " is open for writing by another Bus (" +
                                     std::string(lock.message()) + "); open it with BusOptions::read_only to read");
    }
    disk->lock = std::move(*lock);
  }
  // No record that the directory's last writer ran in this boot
  // (writer_boot.hpp): recovery checks every segment, checksums included.
  const bool check_every_segment = !detail::same_boot_as_last_writer(disk->dir);
  Result<platform::FileDescriptor> topics = sub_directory(disk->dir, "topics", options.read_only);
  if (!topics.ok()) return in_directory(disk->path, topics.status());
  disk->topics = std::move(*topics);
  Result<platform::FileDescriptor> consumers = sub_directory(disk->dir, "consumers", options.read_only);
  if (!consumers.ok()) return in_directory(disk->path, consumers.status());
  disk->consumers = std::move(*consumers);
  Result<platform::FileDescriptor> groups = sub_directory(disk->dir, "groups", options.read_only);
  if (!groups.ok()) return in_directory(disk->path, groups.status());
  disk->groups = std::move(*groups);
  if (disk->topics.valid()) {
    Result<std::vector<platform::DirectoryEntry>> entries = platform::list_directory(disk->topics);
    if (!entries.ok()) return in_directory(disk->path, entries.status());
    for (const platform::DirectoryEntry& e : *entries) {
      if (e.type != platform::EntryType::directory) continue;
      if (!validate_topic_name(e.name).ok()) continue;
      Result<std::unique_ptr<detail::TopicStore>> store =
          detail::TopicStore::open(disk->topics, e.name, options.read_only, check_every_segment);
      // topic_not_found: a topic whose creation a crash cut short; not a topic (TopicStore::open).
      if (store.code() == Errc::topic_not_found) continue;
      if (!store.ok()) return in_directory(disk->path, store.status());
      try {
        detail::BusCore::LogPtr log(detail::heap_new<detail::Log>(e.name, std::move(*store)));
        bus.core_->registry.emplace(detail::HeapString(std::string_view(e.name)), std::move(log));
      } catch (const std::bad_alloc&) {
        return Status(Errc::out_of_memory, "topic '" + e.name + "': out of memory");
      }
    }
  }
  if (!options.read_only) {
    for (const auto& [dir_of, what] :
         {std::pair{&disk->consumers, "consumer offsets"}, {&disk->groups, "group offsets"}}) {
      if (Status st = clamp_committed_positions(*bus.core_, *dir_of, what); !st.ok()) {
        return in_directory(disk->path, st);
      }
    }
  }
  if (!options.read_only) {
    // Every topic is recovered (cut where a crash or a reboot left damage):
    // from here on this boot's page cache holds what the log holds.
    if (Status st = detail::record_writer_boot(disk->dir); !st.ok()) return in_directory(disk->path, st);
  }
  bus.core_->disk = std::move(disk);
  {
    std::lock_guard lock(bus.core_->mutex);
    for (auto& [name, log] : bus.core_->registry) start_stats_file(*bus.core_, log.get());
  }
  if (!options.read_only && options.flusher_thread) {
    for (auto& [name, log] : bus.core_->registry) log->store()->close_deleted_files_in_maintain();
    // The tag the flusher seals segments with, read here: its first reading
    // builds the boot id's string, which the flusher's first pass would
    // otherwise do at whatever time it runs, perhaps amid the writer's steady state.
    (void)detail::seal_boot_tag();
    try {
      bus.core_->flusher = std::thread(run_flusher, bus.core_.get());
    } catch (const std::system_error& e) {
      return Status(Errc::system_error, std::string("starting the flusher thread failed: ") + e.what());
    }
  }
  return bus;
}

std::string Bus::directory() const { return core_ && core_->disk ? core_->disk->path : std::string(); }

bool Bus::read_only() const noexcept { return core_ && core_->disk && core_->disk->read_only; }

Status Bus::flush(std::string_view topic) {
  if (!is_open()) return bus_closed();
  Result<detail::Log*> found = core_->lookup(topic);
  if (!found.ok()) return found.status();
  detail::Log* log = *found;
  if (log->store() == nullptr) return {};
  return log->store()->flush(log->tail_acquire());
}

Status Bus::flush() {
  if (!is_open()) return bus_closed();
  for (const std::string& name : topic_names()) {
    if (Status st = flush(name); !st.ok()) return st;
  }
  return {};
}
Bus::Bus(Bus&&) noexcept = default;
Bus& Bus::operator=(Bus&& other) noexcept {
  if (this != &other) {
    close();
    core_ = std::move(other.core_);
  }
  return *this;
}
Bus::~Bus() { close(); }

void Bus::close() noexcept {
  if (!core_) return;
  core_->stop_flusher_thread();
  std::lock_guard lock(core_->mutex);
  if (core_->closed.load(std::memory_order_relaxed)) return; // under the mutex: only close() stores it
  // seq_cst: a Dekker pair with a blocking consumer going to sleep (it sets
  // `sleeping`, then rereads `closed`); log->close() then rings its doorbell.
  core_->closed.store(true, std::memory_order_seq_cst);
  for (auto& [name, log] : core_->registry) log->close();
  // A final flush of what the persistent topics promise to keep. A producer
  // still inside an append finishes it (its next call sees closed), so this
  // flushes what was published when close() was called.
  for (auto& [name, log] : core_->registry) {
    detail::TopicStore* store = log->store();
    if (store != nullptr && store->options().durability != Durability::none) (void)store->flush(log->tail_acquire());
  }
  // The final values, for `ringbus stat` after this process is gone (the flusher has stopped).
  for (auto& p : core_->stats_publishers) p->file.publish(detail::sample_stats(*p->log), true);
  if (core_->disk) core_->disk->lock.release();
}

// acquire: pairs with the store in close().
bool Bus::is_open() const noexcept { return core_ && !core_->closed.load(std::memory_order_acquire); }

Status Bus::create_topic(std::string_view name, const TopicOptions& options) {
  if (!is_open()) return bus_closed();
  if (Status st = validate_topic_name(name); !st.ok()) return st;
  if (Status st = options.validate(); !st.ok()) {
    return Status(st.code(), "topic '" + std::string(name) + "': " + std::string(st.message()));
  }
  std::lock_guard lock(core_->mutex);
  if (core_->registry.find(name) != core_->registry.end()) {
    return Status(Errc::topic_exists, "topic '" + std::string(name) + "' already exists");
  }
  const bool persistent =
      options.storage == Storage::persistent || (options.storage == Storage::bus_default && core_->disk != nullptr);
  if (persistent) {
    if (!core_->disk) {
      return Status(Errc::invalid_argument, "topic '" + std::string(name) +
                                                "': storage persistent needs a bus opened on a directory (Bus::open)");
    }
    if (core_->disk->read_only) {
      return Status(Errc::invalid_argument, "topic '" + std::string(name) + "': bus directory " + core_->disk->path +
                                                " is open read-only; topics cannot be created");
    }
    if (options.line_aligned_appends) {
      return Status(Errc::invalid_argument, "topic '" + std::string(name) +
                                                "': line_aligned_appends is for in-memory topics (segment files keep "
                                                "the 8-byte frame layout that recovery reads)");
    }
    Result<std::unique_ptr<detail::TopicStore>> store = detail::TopicStore::create(core_->disk->topics, name, options);
    if (!store.ok()) return store.status();
    try {
      if (core_->flusher.joinable()) (*store)->close_deleted_files_in_maintain();
      detail::BusCore::LogPtr log(detail::heap_new<detail::Log>(name, std::move(*store)));
      detail::Log* created = log.get();
      core_->registry.emplace(detail::HeapString(name), std::move(log));
      start_stats_file(*core_, created);
    } catch (const std::bad_alloc&) {
      return Status(Errc::out_of_memory, "topic '" + std::string(name) + "': out of memory");
    }
    return {};
  }
  Result<detail::RingMapping> mapping =
      detail::RingMapping::anonymous(options.capacity_bytes(), options.huge_pages, options.prefault);
  if (!mapping.ok()) {
    return Status(mapping.code(), "topic '" + std::string(name) + "': " + std::string(mapping.message()));
  }
  try {
    detail::BusCore::LogPtr log(detail::heap_new<detail::Log>(name, options, std::move(*mapping)));
    core_->registry.emplace(detail::HeapString(name), std::move(log));
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "topic '" + std::string(name) + "': out of memory");
  }
  return {};
}

bool Bus::has_topic(std::string_view name) const { return core_ && core_->find(name) != nullptr; }

std::vector<std::string> Bus::topic_names() const {
  std::vector<std::string> names;
  if (!core_) return names;
  std::lock_guard lock(core_->mutex);
  if (core_->disk && core_->disk->read_only) { // topics the writing process created since: see discover_locked
    if (core_->topics_directory_locked()) {
      if (Result<std::vector<platform::DirectoryEntry>> entries = platform::list_directory(core_->disk->topics);
          entries.ok()) {
        for (const platform::DirectoryEntry& e : *entries) {
          if (e.type == platform::EntryType::directory &&
              core_->registry.find(std::string_view(e.name)) == core_->registry.end()) {
            Status ignored; // listed only when it opens; using it reports why not
            (void)core_->discover_locked(e.name, ignored);
          }
        }
      }
    }
  }
  for (const auto& [name, log] : core_->registry) names.emplace_back(name.data(), name.size());
  return names;
}

Result<TopicInfo> Bus::describe(std::string_view name) const {
  if (!is_open()) return bus_closed();
  Result<detail::Log*> found = core_->lookup(name);
  if (!found.ok()) return found.status();
  detail::Log* log = *found;
  TopicInfo info;
  info.name = std::string(name);
  info.options = log->options();
  std::uint64_t head = 0;
  log->read_head(head, info.oldest_offset);
  info.end_offset = log->end_offset();
  info.has_producer = log->has_writer();
  if (detail::TopicStore* store = log->store(); store != nullptr) {
    info.persistent = true;
    info.segment_files = store->segment_count();
    if (store->failed()) info.failure = std::string(store->failure().message());
    info.recovery = store->recovery().summary();
  }
  return info;
}

Result<TopicStats> Bus::stats(std::string_view topic) const {
  if (!is_open()) return bus_closed();
  Result<detail::Log*> found = core_->lookup(topic);
  if (!found.ok()) return found.status();
  detail::Log* log = *found;
  return detail::sample_stats(*log);
}

Result<Producer> Bus::producer(std::string_view topic) {
  if (!is_open()) return bus_closed();
  Result<detail::Log*> found = core_->lookup(topic);
  if (!found.ok()) return found.status();
  detail::Log* log = *found;
  if (read_only()) {
    return Status(Errc::invalid_argument, "topic '" + std::string(topic) + "': bus directory " + core_->disk->path +
                                              " is open read-only; it has no producers");
  }
  if (!log->open_writer()) {
    return Status(Errc::producer_exists,
                  "topic '" + std::string(topic) + "' already has its one producer; close it before opening another");
  }
  return Producer(core_, log);
}

Result<Consumer> Bus::consumer(const ConsumerOptions& options) {
  if (!is_open()) return bus_closed();
  if (!options.name.empty()) {
    if (Status st = validate_consumer_name(options.name); !st.ok()) return st;
  }
  // Checked before the state exists: nothing owns it until Consumer(state).
  if (Status st = validate_interval("auto_commit_interval", options.auto_commit_interval); !st.ok()) return st;
  if (options.auto_commit_interval.count() > 0 && options.name.empty()) {
    return Status(Errc::invalid_argument, "auto_commit_interval needs a named consumer (ConsumerOptions::name)");
  }
  Consumer consumer;
  try {
    auto* state = detail::heap_new<detail::ConsumerState>();
    state->core = core_;
    state->override_wait = options.override_wait;
    state->wait = options.wait;
    state->auto_commit_ns = std::chrono::nanoseconds(options.auto_commit_interval).count();
    state->last_commit_ns = platform::monotonic_ns();
    consumer = Consumer(state);
    std::lock_guard lock(core_->mutex);
    for (const std::string& upstream : options.after) {
      if (upstream == options.name) {
        return Status(Errc::invalid_argument, "consumer '" + upstream + "' cannot run after itself");
      }
      if (core_->named.find(std::string_view(upstream)) == core_->named.end()) {
        return Status(Errc::invalid_argument,
                      "consumer '" + upstream + "' (in ConsumerOptions::after) is not an open consumer");
      }
      state->after.emplace_back(std::string_view(upstream));
    }
    if (!options.name.empty()) {
      if (!core_->named.try_emplace(detail::HeapString(std::string_view(options.name))).second) {
        return Status(Errc::invalid_argument,
                      "consumer name '" + options.name + "' is taken by an open consumer of this bus");
      }
      state->name.assign(options.name.data(), options.name.size());
    }
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "creating a consumer ran out of memory");
  }
  for (const std::string& topic : options.topics) {
    if (Status st = consumer.subscribe(topic, options.start); !st.ok()) return st;
  }
  return consumer;
}

Result<Consumer> Bus::consumer(std::string_view topic, StartPosition start) {
  ConsumerOptions options;
  options.topics.emplace_back(topic);
  options.start = start;
  return consumer(options);
}

std::string_view heap_backend() noexcept { return detail::heap_backend(); }

} // namespace ringbus
