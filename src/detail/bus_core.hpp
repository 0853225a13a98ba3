// The shared state behind a Bus and its handles. Logs live as long as the
// core, so reader slots (and the doorbells in them) never dangle.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "detail/group_state.hpp"
#include "detail/stats_file.hpp"
#include "platform/files.hpp"
#include "ringbus/detail/gate.hpp"
#include "ringbus/detail/log.hpp"
#include "ringbus/detail/memory.hpp"

namespace ringbus::detail {

using GateRef = std::shared_ptr<Gate>;
using GateRefs = std::vector<GateRef, HeapAllocator<GateRef>>;

// An open named consumer: its gate in each topic it reads (see gate.hpp).
struct NamedConsumer {
  GateRefs gates;
};

// A bus opened on a directory (Bus::open).
struct BusDirectory {
  std::string path;
  platform::FileDescriptor dir;       // the bus directory
  platform::FileDescriptor topics;    // <dir>/topics: one sub-directory per persistent topic
  platform::FileDescriptor consumers; // <dir>/consumers: durable offsets of named consumers
  platform::FileDescriptor groups;    // <dir>/groups: durable positions of consumer groups
  platform::FileLock lock;            // <dir>/LOCK, held by a writable bus
  bool read_only = false;
  std::int64_t stats_interval_ns = 0; // BusOptions::stats_interval; 0: no stats files
};

// A persistent topic's stats file and the log it reports (stats_file.hpp).
// Written by the flusher thread, then once by Bus::close after the flusher
// stopped: one writer at a time.
struct StatsPublisher {
  Log* log = nullptr;
  StatsFileWriter file;
};

class BusCore {
 public:
  using LogPtr = std::unique_ptr<Log, HeapDeleter>;
  using Registry = std::map<HeapString, LogPtr, std::less<>, HeapAllocator<std::pair<const HeapString, LogPtr>>>;
  using Named =
      std::map<HeapString, NamedConsumer, std::less<>, HeapAllocator<std::pair<const HeapString, NamedConsumer>>>;
  using GroupPtr = std::unique_ptr<GroupState, HeapDeleter>;
  // Keyed by group_key(group, topic).
  using Groups = std::map<HeapString, GroupPtr, std::less<>, HeapAllocator<std::pair<const HeapString, GroupPtr>>>;
  using GroupOffsetsPtr = std::unique_ptr<GroupOffsets, HeapDeleter>;
  // Keyed by group name: one store per name, shared by the group's topics.
  using GroupOffsetsMap =
      std::map<HeapString, GroupOffsetsPtr, std::less<>, HeapAllocator<std::pair<const HeapString, GroupOffsetsPtr>>>;

  std::mutex mutex; // guards registry, named, groups and group_offsets (cold path only)
  Registry registry;
  Named named;                   // open consumers that have a name
  Groups groups;                 // consumer groups, one entry per (group, topic); live as long as the core
  GroupOffsetsMap group_offsets; // durable group positions (guarded by mutex); live as long as the core
  // Stats files of the persistent topics of a writable bus (guarded by mutex;
  // each publisher's address is stable: the flusher uses it outside the lock).
  std::vector<std::unique_ptr<StatsPublisher, HeapDeleter>, HeapAllocator<std::unique_ptr<StatsPublisher, HeapDeleter>>>
      stats_publishers;
  std::atomic<bool> closed{false};
  std::unique_ptr<BusDirectory> disk; // null: an in-memory bus
  // Durability::interval flushing and segment preparation (Bus::open with
  // BusOptions::flusher_thread). Stopped and joined by Bus::close.
  std::thread flusher;
  std::atomic<bool> stop_flusher{false};

  ~BusCore() { stop_flusher_thread(); }
  void stop_flusher_thread() noexcept {
    stop_flusher.store(true, std::memory_order_release); // pairs with the flusher's loop check
    if (flusher.joinable()) flusher.join();
  }

  // The topic, or nullptr (no message built: has_topic and the like).
  Log* find(std::string_view name) {
    std::lock_guard lock(mutex);
    Status ignored; // set only when a topic there does not open
    return find_locked(name, ignored);
  }
  // The topic, or why not: topic_not_found ("topic 'x' does not exist"), or,
  // on a read-only bus, what kept a topic the directory holds from opening
  // (a foreign or damaged file, a permission): the caller reports that.
  Result<Log*> lookup(std::string_view name) {
    std::lock_guard lock(mutex);
    Status why;
    if (Log* log = find_locked(name, why)) return log;
    if (!why.ok()) return why;
    return Status(Errc::topic_not_found, "topic '" + std::string(name) + "' does not exist");
  }
  // find and lookup, with mutex held: the registry, then (read-only) discovery.
  Log* find_locked(std::string_view name, Status& why) {
    auto it = registry.find(name);
    if (it != registry.end()) return it->second.get();
    return disk && disk->read_only ? discover_locked(name, why) : nullptr;
  }
  // A read-only bus follows another process, which may create topics after
  // this bus opened: such a topic is opened from the directory on first use.
  // nullptr when the directory has no complete topic of that name (not
  // there, or the writer is still creating it: a later call looks again) or
  // when it does not open; then `why` says what failed, as Bus::open would.
  // Called with mutex held.
  Log* discover_locked(std::string_view name, Status& why);
  // disk->topics, opened now if the writer made it after this bus opened.
  bool topics_directory_locked();
};

} // namespace ringbus::detail
