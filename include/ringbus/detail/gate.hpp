// Pipelines (Disruptor-style dependency gating): a named consumer publishes,
// per topic, how far it has passed in a Gate; a consumer declared to run
// `after` it reads that gate and never walks past it.
//
//   upstream (named consumer)                 downstream (runs after it)
//   -----------------------------------       ------------------------------------------
//   processes the records of its last poll    walks frames up to its cached limit (the
//   then, at the start of its next poll:      minimum of its upstreams' gates), with no
//   (D) slot.position.store(release)          shared read per record; only when it
//   (P) gate.passed.store(release) ------->   reaches the limit: (Q) gate.passed
//       the byte position of the frame it         .load(acquire) of each upstream, once per
//       is in (every frame below is passed)       batch. (Q) pairs with (P): what the upstream
//                                                 did with a record happens before the
//                                                 downstream sees that record.
//
// A gate outlives its consumer: when the upstream closes or unsubscribes, the
// gate keeps the last position it reached (its owners hold it by shared_ptr),
// so a downstream never gets a record its upstream did not pass.
#pragma once

#include <atomic>
#include <cstdint>

#include "ringbus/detail/config.hpp"

namespace ringbus::detail {

class Log;

struct alignas(cache_line) Gate {
  // (P) release by the upstream; (Q) acquire by each downstream. Byte position
  // in the topic's log; every frame wholly below it has been passed.
  std::atomic<std::uint64_t> passed{0};
  Log* log = nullptr; // the topic this gate is for
};

} // namespace ringbus::detail
