#include "affinity.hpp"

#include <sched.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ringbus::bench {

namespace {
std::atomic<int> refused{0};

// The process's mask before the first pin (main pins its thread before any other runs).
const cpu_set_t& initial_mask() noexcept {
  static const cpu_set_t mask = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) CPU_SET(0u, &set);
    return set;
  }();
  return mask;
}
} // namespace

bool pin_this_thread(int cpu) noexcept {
  (void)initial_mask();
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<unsigned>(cpu), &set);
  if (sched_setaffinity(0, sizeof set, &set) == 0) return true; // 0: the calling thread
  const int error = errno;
  if (refused.fetch_add(1, std::memory_order_relaxed) == 0) {
    std::fprintf(stderr, "ringbus-bench: warning: cannot pin a thread to CPU %d (%s); running unpinned\n", cpu,
                 std::strerror(error));
  }
  return false;
}

bool unpin_this_thread() noexcept { return sched_setaffinity(0, sizeof(cpu_set_t), &initial_mask()) == 0; }

int pin_failures() noexcept { return refused.load(std::memory_order_relaxed); }

int allowed_cpu_count() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return CPU_COUNT(&set);
}

} // namespace ringbus::bench
