// The shared state behind a Bus and its handles. Logs live as long as the
// core, so reader slots (and the doorbells in them) never dangle.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>

#include "ringbus/detail/log.hpp"
#include "ringbus/detail/memory.hpp"

namespace ringbus::detail {

class BusCore {
 public:
  using LogPtr = std::unique_ptr<Log, HeapDeleter>;
  using Registry = std::map<HeapString, LogPtr, std::less<>, HeapAllocator<std::pair<const HeapString, LogPtr>>>;

  std::mutex mutex; // guards registry (cold path only)
  Registry registry;
  std::atomic<bool> closed{false};

  Log* find(std::string_view name) {
    std::lock_guard lock(mutex);
    auto it = registry.find(name);
    return it == registry.end() ? nullptr : it->second.get();
  }
};

} // namespace ringbus::detail
