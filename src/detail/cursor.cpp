// The overwrite policy's read path: copy, then validate against the head.
#include "ringbus/detail/cursor.hpp"

namespace ringbus::detail {

bool refill(Cursor& c, Gap& gap) noexcept {
  Log& log = *c.log;
  for (;;) {
    const std::uint64_t tail = log.tail_acquire(); // (C) pairs with (B)
    if (c.pos >= tail) return false;
    const std::uint64_t head = log.head_acquire(); // (F) pairs with (E)
    std::uint64_t from = c.pos;
    const bool lapped = from < head;
    if (lapped) from = head; // the oldest segment still held
    // Descheduled between the two loads, we may see the producer a whole ring
    // further on in head than in our (older) tail: look again, unless the
    // tail really is behind the head (a follower in the middle of a jump, see
    // Log::follow): nothing to read yet.
    if (from >= tail) {
      if (log.tail_acquire() <= tail) return false;
      continue;
    }
    const std::uint64_t to = std::min(tail, log.segment_start(from) + log.segment_bytes());
    Log::copy_acquire(c.staging, log.ring_at(from), to - from);
    // (F) again: if the producer started overwriting the copied segment while
    // we copied, some words may be from the next lap. Throw the copy away.
    if (log.head_acquire() > from) continue;
    c.stage_begin = from;
    c.stage_end = to;
    if (lapped) {
      // A segment start is always a data frame: its base offset is where
      // delivery resumes. Everything before it that we had not delivered is lost.
      FrameHeader first;
      std::memcpy(&first, c.staging, sizeof first);
      const std::uint64_t expected = std::max(c.offset, c.skip_until);
      if (first.base_offset > expected) {
        if (gap.count == 0) gap.first_lost = expected;
        gap.count += first.base_offset - expected;
        c.lost += first.base_offset - expected;
        // Statistics (relaxed, see LogCounters): only here, where a lap is found.
        LogCounters::add(log.counters().laps, 1);
        LogCounters::add(log.counters().records_lost, first.base_offset - expected);
      }
      c.pos = from;
      c.skip = 0;
      if (first.base_offset > c.offset) c.offset = first.base_offset;
    }
    return true;
  }
}

} // namespace ringbus::detail
