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
  platform::FileLock lock;            // <dir>/LOCK, held by a writable bus
  bool read_only = false;
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

  std::mutex mutex; // guards registry, named and groups (cold path only)
  Registry registry;
  Named named;   // open consumers that have a name
  Groups groups; // consumer groups, one entry per (group, topic); live as long as the core
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

  Log* find(std::string_view name) {
    std::lock_guard lock(mutex);
    auto it = registry.find(name);
    return it == registry.end() ? nullptr : it->second.get();
  }
};

} // namespace ringbus::detail
