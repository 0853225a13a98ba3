// The shared state behind a Bus and its handles. Logs live as long as the
// core, so reader slots (and the doorbells in them) never dangle.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>

#include <vector>

#include "detail/group_state.hpp"
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

  Log* find(std::string_view name) {
    std::lock_guard lock(mutex);
    auto it = registry.find(name);
    return it == registry.end() ? nullptr : it->second.get();
  }
};

} // namespace ringbus::detail
