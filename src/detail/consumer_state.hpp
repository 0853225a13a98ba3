// What a Consumer handle owns: one cursor per subscribed topic and the
// preallocated arrays a poll fills (so a poll allocates nothing).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "detail/bus_core.hpp"
#include "ringbus/detail/cursor.hpp"
#include "ringbus/detail/memory.hpp"
#include "ringbus/detail/offset_store.hpp"
#include "ringbus/records.hpp"

namespace ringbus::detail {

// alignas: poll writes it on every call (see CacheLineAllocator).
struct alignas(cache_line) ConsumerState {
  std::shared_ptr<BusCore> core;
  bool override_wait = false;
  WaitStrategy wait = WaitStrategy::backoff;
  std::vector<Cursor, CacheLineAllocator<Cursor>> cursors;
  std::vector<Chunk, CacheLineAllocator<Chunk>> chunks; // one per cursor, same order
  std::vector<Gap, CacheLineAllocator<Gap>> gaps;       // up to two per cursor per poll
  std::size_t gap_count = 0;
  std::size_t next_first = 0;                     // fairness: first cursor of the next poll
  std::atomic<std::uint32_t>* doorbell = nullptr; // blocking wait: where we sleep
  // Pipelines: this consumer's name (empty: none) and the names it runs after.
  HeapString name;
  std::vector<HeapString, HeapAllocator<HeapString>> after;
  // Per cursor, same order: the upstream gates it reads (owned here, so a
  // gate outlives its upstream) and their raw pointers (Cursor::gates).
  struct CursorGates {
    GateRefs refs;
    std::vector<Gate*, HeapAllocator<Gate*>> raw;
  };
  std::vector<CursorGates, HeapAllocator<CursorGates>> gates;
  // poll can take the short way with cursors.front(): a single subscription
  // to a topic this process writes under the block policy, no upstream gates
  // and no auto-commit (Consumer::poll). Set by refresh_lone.
  bool lone = false;
  bool gated = false;     // some cursor has gates (the blocking wait then naps in short slices)
  bool followers = false; // some cursor reads a topic another process writes (Log::follow)
  // Durable offsets (named consumers of a bus on a directory): opened at the
  // first subscribe to a persistent topic or commit.
  std::optional<OffsetStore> offsets;
  std::int64_t auto_commit_ns = 0; // 0: no auto-commit
  std::int64_t last_commit_ns = 0; // monotonic clock
};

} // namespace ringbus::detail
