#include "ringbus/consumer.hpp"

#include <algorithm>
#include <cstdio>
#include <new>
#include <string>
#include <vector>

#include "detail/bus_core.hpp"
#include "detail/consumer_state.hpp"
#include "detail/topic_store.hpp"
#include "platform/platform.hpp"
#include "ringbus/detail/wait.hpp"

namespace ringbus {

namespace {

using detail::ConsumerState;
using detail::Cursor;

Status closed_status() { return Status(Errc::closed, "consumer is closed"); }

// Ok when the consumer can serve a call; else why not (closed consumer or bus).
Status check_open(const ConsumerState* s) {
  if (s == nullptr) return closed_status();
  // acquire: pairs with the store in Bus::close (a statement of fact, no data follows).
  if (s->core->closed.load(std::memory_order_acquire)) return Status(Errc::closed, "bus is closed");
  return {};
}

Status not_subscribed(std::string_view topic) {
  return Status(Errc::not_subscribed, "consumer is not subscribed to topic '" + std::string(topic) + "'");
}

// (D) release: this consumer is done with every byte below c.pos; pairs with
// (A) in the producer's roll.
void release_position(Cursor& c) noexcept {
  if (c.released == c.pos) return;
  c.log->slot(c.slot).position.store(c.pos, std::memory_order_release);
  c.released = c.pos;
  // (P) release: every frame below c.pos is passed, and so is whatever this
  // consumer did with them; pairs with (Q) in downstream consumers (gate.hpp).
  if (c.publish_gate != nullptr) c.publish_gate->passed.store(c.pos, std::memory_order_release);
}

std::uint64_t take_below(Cursor& c, std::uint64_t budget, detail::Chunk& chunk, Gap& gap,
                         std::uint64_t limit) noexcept {
  if (c.log->overwrite()) return detail::take_copied(c, budget, chunk, chunk.count == 0, gap, limit);
  return detail::take_in_place(c, budget, chunk, limit);
}

std::uint64_t take(Cursor& c, std::uint64_t budget, detail::Chunk& chunk, Gap& gap) noexcept {
  if (RINGBUS_LIKELY(c.gate_count == 0)) return take_below(c, budget, chunk, gap, UINT64_MAX);
  // Pipelines: walk up to the cached gate; reread the gates (Q) only when the
  // walk has reached it, at most once per take: one read per batch.
  if (c.pos >= c.gate_limit) c.gate_limit = detail::read_gates(c);
  std::uint64_t taken = take_below(c, budget, chunk, gap, c.gate_limit);
  if (taken < budget && c.pos >= c.gate_limit) {
    const std::uint64_t before = c.gate_limit;
    c.gate_limit = detail::read_gates(c);
    if (c.gate_limit > before) taken += take_below(c, budget - taken, chunk, gap, c.gate_limit);
  }
  return taken;
}

// Topics another process writes: catch up with what it published.
void follow_writers(ConsumerState& s) noexcept {
  for (Cursor& c : s.cursors) {
    if (c.log->follower()) c.log->follow();
  }
}

std::string_view damage_reason(detail::Log::Damage d) noexcept {
  switch (d) {
    case detail::Log::Damage::bad_type: return "its type is neither data nor padding";
    case detail::Log::Damage::bad_length: return "its length runs outside its segment";
    case detail::Log::Damage::bad_header: return "its header is short or counts no records";
    case detail::Log::Damage::offset_gap: return "its first offset does not follow the frame before";
    case detail::Log::Damage::none: break;
  }
  return "none";
}

// Nothing to read, and a followed topic's reader has reached a frame
// follow() cannot pass: the error that names it, instead of an empty poll
// that would repeat for good. With `every`, only when every subscribed
// topic is stuck so (nothing can come from any: a wait would be in vain).
// ok when there is none.
RINGBUS_NOINLINE Status follow_damage_error(const ConsumerState& s, bool every) {
  const Cursor* stuck = nullptr;
  detail::Log::FollowDamage d;
  for (const Cursor& c : s.cursors) {
    const detail::Log::FollowDamage here = c.log->follower() ? c.log->follow_damage() : detail::Log::FollowDamage{};
    if (here.reason == detail::Log::Damage::none || c.pos < here.position) {
      if (every) return {};
    } else if (stuck == nullptr) {
      stuck = &c;
      d = here;
    }
  }
  if (stuck == nullptr) return {};
  char word[19];
  std::snprintf(word, sizeof word, "0x%016llx", static_cast<unsigned long long>(d.word));
  return Status(Errc::corrupt_data,
                "topic '" + std::string(stuck->log->name()) + "': the frame at byte " + std::to_string(d.position) +
                    " of its log, where offset " + std::to_string(d.offset) +
                    " should be, is damaged: " + std::string(damage_reason(d.reason)) + " (publication word " + word +
                    "). Its writer published it whole, so the file was changed afterwards; reading stops there "
                    "until the bytes are put right or the writer drops that segment (seek cannot pass it; `ringbus "
                    "verify` names the file)");
}

// One pass over the subscriptions, fair: each poll starts at the next topic and
// gives each topic an equal share first, then what is left to whoever has more.
std::uint64_t fill(ConsumerState& s, std::uint64_t max_records) noexcept {
  const std::size_t n = s.cursors.size();
  s.gap_count = 0;
  for (std::size_t i = 0; i < n; ++i) s.chunks[i].count = 0;
  std::uint64_t budget = max_records;
  const std::size_t start = s.next_first;
  s.next_first = s.next_first + 1 == n ? 0 : s.next_first + 1;
  const std::uint64_t share = n == 1 ? budget : std::max<std::uint64_t>(1, budget / n);
  for (int pass = 0; pass < 2 && budget != 0; ++pass) {
    for (std::size_t k = 0; k < n && budget != 0; ++k) {
      const std::size_t i = start + k < n ? start + k : start + k - n;
      Gap gap{s.cursors[i].log->name(), 0, 0};
      budget -= take(s.cursors[i], pass == 0 ? std::min(share, budget) : budget, s.chunks[i], gap);
      if (gap.count != 0) s.gaps[s.gap_count++] = gap;
    }
    if (n == 1) break;
  }
  return max_records - budget;
}

// The short way's wait (ConsumerState::lone, nothing there, a timeout): a
// tight loop of a pause and a look at the cursor's next publication word
// (take), for as long as the strategy spins: busy_spin the whole timeout,
// backoff and blocking their first spin_steps pauses (the general wait then
// goes on from there: yields, then sleeps), yield not at all. The bus's
// closed flag and the clock are read every 64th round; the clock first at
// the 64th, which sets the deadline there (the wait lasts at least the
// timeout), so a record that comes sooner costs no clock read. It is seen
// one pause after it is published, not one pass of poll_general's loop
// (check_open, fill, the clock) later.
enum class Spun {
  took,
  timed_out,
  fall_back, // the spin is over, or the bus closed: the general wait goes on
};
struct SpinEnd {
  Spun how;
  std::uint32_t rounds;  // pauses made (fall_back)
  std::int64_t deadline; // when the wait ends, in monotonic ns (fall_back)
};

template <class Take>
SpinEnd spin_lone(const ConsumerState& s, std::int64_t timeout_ns, Take take) noexcept {
  const bool until_deadline = s.wait == WaitStrategy::busy_spin;
  const std::uint32_t spins = s.wait == WaitStrategy::yield ? 0 : detail::Waiter::spin_steps;
  std::int64_t deadline = 0; // not read yet
  std::uint32_t round = 1;
  for (; until_deadline || round <= spins; ++round) {
    detail::cpu_relax();
    if (take()) return {Spun::took, round, deadline};
    if ((round & 63) == 0) {
      if (deadline == 0) {
        deadline = platform::deadline_after(timeout_ns);
      } else if (platform::monotonic_ns() >= deadline) {
        return {Spun::timed_out, round, deadline};
      }
      // acquire: as in check_open; the general path then says closed.
      if (s.core->closed.load(std::memory_order_acquire)) break;
      if (round == 1U << 31) round = 0; // busy_spin's count wraps here, still a multiple of 64
    }
  }
  return {Spun::fall_back, std::min(round, spins), deadline != 0 ? deadline : platform::deadline_after(timeout_ns)};
}

// Blocking strategy: sleep on our doorbell until a producer rings it (after
// publishing) or the deadline passes. See the diagram in detail/log.hpp.
void sleep_until_data(ConsumerState& s, std::int64_t deadline) noexcept {
  std::atomic<std::uint32_t>* doorbell = s.doorbell;
  const std::uint32_t seen = doorbell->load(std::memory_order_acquire); // pairs with wake_sleepers' fetch_add
  for (Cursor& c : s.cursors) {
    c.log->slot(c.slot).sleeping.store(1, std::memory_order_seq_cst); // read by wake_sleepers (seq_cst)
    c.log->sleepers().fetch_add(1, std::memory_order_seq_cst);        // Dekker with (B') in publish
  }
  bool ready = false;
  for (Cursor& c : s.cursors) {
    std::uint64_t end = c.log->tail_for_sleeper();
    // Overwrite topics: staged frames count as had (a take drains them), except
    // behind a gate, where frames staged past the gate wait for it to move.
    const std::uint64_t have = c.log->overwrite() && c.gate_count == 0 ? std::max(c.pos, c.stage_end) : c.pos;
    if (c.gate_count != 0) end = std::min(end, detail::read_gates(c)); // (Q)
    if (end > have) ready = true;
  }
  if (!ready && !s.core->closed.load(std::memory_order_seq_cst)) { // pairs with Bus::close
    std::int64_t left = deadline - platform::monotonic_ns();
    // An upstream passing records rings no doorbell (only producers do): a
    // gated consumer sleeps in slices of at most 1 ms and looks again.
    if (s.gated) left = std::min<std::int64_t>(left, 1'000'000);
    if (left > 0) platform::futex_wait(doorbell, seen, left);
  }
  // relaxed: leaving sleep publishes nothing; a producer that still sees us
  // only rings a doorbell nobody waits on.
  for (Cursor& c : s.cursors) {
    c.log->sleepers().fetch_sub(1, std::memory_order_relaxed);
    c.log->slot(c.slot).sleeping.store(0, std::memory_order_relaxed);
  }
}

// After the subscriptions changed: whether poll can take the short way.
void refresh_lone(ConsumerState& s) noexcept {
  s.lone = s.cursors.size() == 1 && s.auto_commit_ns == 0 && s.cursors.front().gate_count == 0 &&
           !s.cursors.front().log->overwrite() && !s.cursors.front().log->follower();
}

void rewire_doorbell(ConsumerState& s) noexcept {
  if (s.cursors.empty()) {
    s.doorbell = nullptr;
    return;
  }
  Cursor& first = s.cursors.front();
  s.doorbell = &first.log->slot(first.slot).doorbell;
  for (Cursor& c : s.cursors) {
    c.log->slot(c.slot).wake_target.store(s.doorbell, std::memory_order_release); // read by wake_sleepers
  }
}

void drop_cursor(Cursor& c) noexcept {
  c.log->unregister_reader(c.slot);
  detail::heap_free(c.staging);
  c.staging = nullptr;
}

// Takes a named consumer's gate out of the bus's registry (downstreams keep theirs).
void forget_gate(ConsumerState& s, const detail::Gate* gate) noexcept {
  if (gate == nullptr || s.name.empty()) return;
  std::lock_guard lock(s.core->mutex);
  auto it = s.core->named.find(s.name);
  if (it == s.core->named.end()) return;
  detail::GateRefs& refs = it->second.gates;
  for (auto g = refs.begin(); g != refs.end(); ++g) {
    if (g->get() == gate) {
      refs.erase(g);
      return;
    }
  }
}

Cursor* find(ConsumerState& s, std::string_view topic) noexcept {
  for (Cursor& c : s.cursors) {
    if (c.log->name() == topic) return &c;
  }
  return nullptr;
}

// The cursor of `topic`, or why there is none.
Status cursor_for(ConsumerState* s, std::string_view topic, Cursor*& out) {
  if (Status st = check_open(s); !st.ok()) return st;
  out = find(*s, topic);
  return out != nullptr ? Status() : not_subscribed(topic);
}

Status out_of_range(const Cursor& c, std::uint64_t offset, std::uint64_t oldest, std::uint64_t end) {
  return Status(Errc::invalid_argument, "offset " + std::to_string(offset) + " of topic '" +
                                            std::string(c.log->name()) + "' is not held: held offsets are [" +
                                            std::to_string(oldest) + ", " + std::to_string(end) + ")");
}

// Reads the head and its offset. Under block, first moves c's slot to the head
// (R) so that nothing from there on is overwritten while c looks; the next
// poll releases it to wherever c ends up.
void hold_from_head(Cursor& c, std::uint64_t& head, std::uint64_t& oldest) noexcept {
  if (c.log->overwrite()) {
    c.log->read_head(head, oldest);
  } else {
    c.log->protect_from_head(c.slot, head, oldest);
    c.released = head;
  }
}

// A topic another process writes (a follower) knows what its writer
// published only as of the last follow(), which polls do: catch up first
// where the end or the held range is read, so that lag(), a seek's range
// check, seek_to_end and subscribing at latest count every record published
// so far, and seek_to_beginning and subscribing at earliest start at the
// writer's oldest held record (not at one it dropped since, which the first
// poll would report as a gap this consumer never had). While another
// consumer of the bus is inside follow(), this is a no-op: that one is
// catching up.
void catch_up(const Cursor& c) noexcept {
  if (c.log->follower()) c.log->follow();
}

// Positions c at the segment that holds offset, to deliver from offset on.
Status seek_cursor(Cursor& c, std::uint64_t offset) noexcept {
  detail::Log& log = *c.log;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    std::uint64_t head = 0;
    std::uint64_t oldest = 0;
    hold_from_head(c, head, oldest);
    const std::uint64_t end = log.end_offset();
    if (offset > end) return out_of_range(c, offset, oldest, end);
    std::uint64_t segment = 0;
    std::uint64_t first = 0;
    if (!log.segment_for_offset(offset, head, segment, first)) continue; // the head moved: again
    if (first > offset) return out_of_range(c, offset, first, end);
    if (detail::TopicStore* store = log.store(); store != nullptr && offset > first) {
      // The segment's sparse index: a frame start at most one interval before offset.
      if (const auto at = store->position_for_offset(segment, offset, log.tail_acquire()); at.has_value()) {
        segment = *at;
      }
    }
    c.pos = segment;
    c.skip = 0;
    c.offset = offset;
    c.skip_until = offset;
    c.stage_begin = c.stage_end = segment;
    return {};
  }
  return Status(Errc::would_block,
                "seek in topic '" + std::string(log.name()) + "' kept losing the race with the producer lapping it");
}

Status seek_cursor_to_beginning(Cursor& c) noexcept {
  catch_up(c);
  std::uint64_t head = 0;
  std::uint64_t oldest = 0;
  hold_from_head(c, head, oldest);
  c.pos = head;
  c.skip = 0;
  c.offset = oldest;
  c.skip_until = oldest;
  c.stage_begin = c.stage_end = head;
  return {};
}

Status seek_cursor_to_end(Cursor& c) noexcept {
  catch_up(c);
  return seek_cursor(c, c.log->end_offset());
}

Status seek_cursor_to_time(Cursor& c, std::int64_t t) noexcept {
  detail::Log& log = *c.log;
  catch_up(c);
  // Overwrite topics decode general-form frames from a copy (offset_at_time).
  struct Scratch {
    std::byte* bytes = nullptr;
    ~Scratch() { detail::heap_free(bytes); }
  } scratch;
  if (log.overwrite()) {
    try {
      scratch.bytes = static_cast<std::byte*>(detail::heap_allocate(log.segment_bytes(), 64));
    } catch (const std::bad_alloc&) {
      return Status(Errc::out_of_memory, "seek_to_time in topic '" + std::string(log.name()) + "' needs " +
                                             std::to_string(log.segment_bytes()) + " bytes of scratch memory");
    }
  }
  for (int attempt = 0; attempt < 1000; ++attempt) {
    std::uint64_t head = 0;
    std::uint64_t oldest = 0;
    hold_from_head(c, head, oldest);
    // acquire, pairs with the writer's release of it, stored before the tail:
    // no record past what the tail read next shows is counted in it.
    const std::uint64_t end = log.end_offset();
    const std::uint64_t tail = log.tail_acquire();
    std::uint64_t pos = head;
    std::uint64_t first = oldest; // the first offset at pos
    if (detail::TopicStore* store = log.store(); store != nullptr) {
      const auto at = store->position_for_time(t, head, tail);
      if (!at.has_value()) return seek_cursor(c, std::max(end, oldest)); // nothing held: every record is older
      pos = at->first;
      first = at->second;
    } else if (!log.segment_for_time(t, head, pos, first)) {
      continue; // the head moved: again
    }
    std::uint64_t offset = 0;
    if (!log.offset_at_time(t, pos, first, tail, scratch.bytes, offset)) continue;
    Status st = seek_cursor(c, std::max(offset, oldest));
    if (st.code() == Errc::invalid_argument) continue; // lapped meanwhile
    return st;
  }
  return Status(Errc::would_block,
                "seek in topic '" + std::string(log.name()) + "' kept losing the race with the producer lapping it");
}

// The named consumer's offset store, opened (created) on first use; null with
// why when this consumer cannot have one.
detail::OffsetStore* offsets_of(ConsumerState& s, Status& why) {
  if (s.offsets) return &*s.offsets;
  const detail::BusDirectory* disk = s.core->disk.get();
  if (s.name.empty()) {
    why = Status(Errc::invalid_argument, "durable offsets need a named consumer (ConsumerOptions::name)");
    return nullptr;
  }
  if (disk == nullptr || disk->read_only || !disk->consumers.valid()) {
    why = Status(Errc::invalid_argument, "consumer '" + std::string(s.name) +
                                             "': durable offsets need a bus opened on a directory, not read-only");
    return nullptr;
  }
  Result<detail::OffsetStore> store =
      detail::OffsetStore::open(disk->consumers, std::string(std::string_view(s.name)) + ".offsets");
  if (!store.ok()) {
    why = store.status();
    return nullptr;
  }
  s.offsets.emplace(std::move(*store));
  return &*s.offsets;
}

Status commit_all(ConsumerState& s) {
  Status why;
  detail::OffsetStore* store = offsets_of(s, why);
  if (store == nullptr) return why;
  std::vector<detail::OffsetUpdate> updates;
  for (const Cursor& c : s.cursors) {
    if (c.log->store() == nullptr) continue;
    updates.push_back({c.log->name(), std::max(c.offset, c.skip_until), false});
  }
  s.last_commit_ns = platform::monotonic_ns();
  if (updates.empty()) return {};
  return store->commit(updates);
}

} // namespace

Consumer::Consumer(Consumer&& other) noexcept : state_(other.state_) { other.state_ = nullptr; }

Consumer& Consumer::operator=(Consumer&& other) noexcept {
  if (this != &other) {
    close();
    state_ = other.state_;
    other.state_ = nullptr;
  }
  return *this;
}

Consumer::~Consumer() { close(); }

Status Consumer::close() noexcept {
  if (state_ == nullptr) return closed_status(); // works on a closed bus too: frees the slots
  Status committed;
  if (state_->auto_commit_ns != 0) {
    try {
      committed = commit_all(*state_);
    } catch (const std::bad_alloc&) {
      committed = Status(Errc::out_of_memory, "auto-commit at close ran out of memory");
    }
  }
  for (Cursor& c : state_->cursors) drop_cursor(c);
  if (!state_->name.empty()) {
    // Its gates stay with the consumers that run after it, at their last position.
    std::lock_guard lock(state_->core->mutex);
    state_->core->named.erase(state_->name);
  }
  detail::heap_delete(state_);
  state_ = nullptr;
  return committed;
}

Result<Records> Consumer::poll(std::size_t max_records, std::chrono::nanoseconds timeout) noexcept {
  ConsumerState* const s = state_;
  // The short way (ConsumerState::lone): what fill does for one block-policy
  // cursor, without its loops. acquire: as in check_open.
  if (RINGBUS_LIKELY(s != nullptr && s->lone) && !s->core->closed.load(std::memory_order_acquire)) {
    Cursor& c = s->cursors.front();
    release_position(c);
    detail::Chunk& chunk = s->chunks.front();
    chunk.count = 0;
    s->gap_count = 0;
    const std::uint64_t taken = detail::take_in_place(c, max_records, chunk);
    if (taken != 0 || timeout.count() <= 0 || max_records == 0) {
      return Records(std::span<const detail::Chunk>(&chunk, 1), taken, std::span<const Gap>());
    }
    return poll_spin(s, max_records, timeout);
  }
  return poll_general(s, max_records, timeout);
}

// poll's short way found nothing and may wait: spin_lone, then the general wait.
RINGBUS_NOINLINE Result<Records> Consumer::poll_spin(ConsumerState* s, std::size_t max_records,
                                                     std::chrono::nanoseconds timeout) noexcept {
  Cursor& c = s->cursors.front();
  detail::Chunk& chunk = s->chunks.front();
  const SpinEnd end = spin_lone(*s, timeout.count(), [&] { return detail::take_in_place(c, max_records, chunk) != 0; });
  if (end.how != Spun::fall_back) {
    return Records(std::span<const detail::Chunk>(&chunk, 1), chunk.count, std::span<const Gap>());
  }
  // What is left of the timeout; none left: one last look, or closed.
  const std::int64_t left = std::max<std::int64_t>(end.deadline - platform::monotonic_ns(), 0);
  return poll_general(s, max_records, std::chrono::nanoseconds(left), end.rounds);
}

Status Consumer::poll_one(Record& out, std::chrono::nanoseconds timeout) noexcept {
  ConsumerState* const s = state_;
  // The short way, as in poll. acquire: as in check_open.
  if (RINGBUS_LIKELY(s != nullptr && s->lone) && !s->core->closed.load(std::memory_order_acquire)) {
    Cursor& c = s->cursors.front();
    release_position(c);
    if (detail::take_one_in_place(c, out)) return {};
    if (timeout.count() <= 0) return Status(Errc::would_block);
    return poll_one_spin(s, out, timeout);
  }
  return poll_one_general(s, out, timeout);
}

// poll_one's short way found nothing and may wait: spin_lone, then the general wait.
RINGBUS_NOINLINE Status Consumer::poll_one_spin(ConsumerState* s, Record& out,
                                                std::chrono::nanoseconds timeout) noexcept {
  Cursor& c = s->cursors.front();
  const SpinEnd end = spin_lone(*s, timeout.count(), [&] { return detail::take_one_in_place(c, out); });
  switch (end.how) {
    case Spun::took: return {};
    case Spun::timed_out: return Status(Errc::timed_out);
    case Spun::fall_back: break;
  }
  const std::int64_t left = end.deadline - platform::monotonic_ns();
  if (left > 0) return poll_one_general(s, out, std::chrono::nanoseconds(left), end.rounds);
  Status last = poll_one_general(s, out, std::chrono::nanoseconds::zero()); // a record, or closed
  return last.code() == Errc::would_block ? Status(Errc::timed_out) : last;
}

RINGBUS_NOINLINE Status Consumer::poll_one_general(detail::ConsumerState* s, Record& out,
                                                   std::chrono::nanoseconds timeout, std::uint32_t spun) noexcept {
  const std::int64_t deadline = timeout.count() > 0 ? platform::deadline_after(timeout.count()) : 0;
  for (;;) {
    Result<Records> polled = poll_general(s, 1, timeout, spun);
    spun = 0;
    if (!polled.ok()) return std::move(polled).status();
    if (!polled->empty()) {
      const Records::iterator first = polled->begin();
      out = *first;
      return {};
    }
    if (timeout.count() <= 0) return Status(Errc::would_block);
    // poll also returns early with a gap and no record (an overwrite topic
    // behind a gate): wait on for the rest of the timeout.
    const std::int64_t left = deadline - platform::monotonic_ns();
    if (left <= 0 || polled->gaps().empty()) return Status(Errc::timed_out);
    timeout = std::chrono::nanoseconds(left);
  }
}

// Out of line, so that the short way above saves no registers it does not use.
RINGBUS_NOINLINE Result<Records> Consumer::poll_general(detail::ConsumerState* s, std::size_t max_records,
                                                        std::chrono::nanoseconds timeout, std::uint32_t spun) noexcept {
  if (Status st = check_open(s); RINGBUS_UNLIKELY(!st.ok())) return st;
  if (RINGBUS_UNLIKELY(s->cursors.empty())) {
    return Status(Errc::not_subscribed, "consumer has no subscriptions: subscribe() to a topic first");
  }
  for (Cursor& c : s->cursors) release_position(c);
  if (RINGBUS_UNLIKELY(s->auto_commit_ns != 0) && platform::monotonic_ns() - s->last_commit_ns >= s->auto_commit_ns) {
    // The positions before this poll: everything given out so far was handled.
    try {
      if (Status st = commit_all(*s); !st.ok()) return st;
    } catch (const std::bad_alloc&) {
      return Status(Errc::out_of_memory, "auto-commit ran out of memory");
    }
  }
  if (RINGBUS_UNLIKELY(s->followers)) follow_writers(*s);
  std::uint64_t total = fill(*s, max_records);
  const bool waits = total == 0 && timeout.count() > 0 && max_records != 0;
  if (RINGBUS_UNLIKELY(s->followers) && total == 0 && s->gap_count == 0) {
    // Said at once when no wait can help: no timeout, or every topic stuck.
    if (Status st = follow_damage_error(*s, waits); !st.ok()) return st;
  }
  if (waits) {
    const std::int64_t deadline = platform::deadline_after(timeout.count());
    // spun: pauses already made by the short way's spin (spin_lone); the
    // strategy goes on from there.
    detail::Waiter waiter(s->wait, spun);
    for (std::uint32_t round = spun + 1;; ++round) {
      // blocking: spin and yield a while first (backoff's first phases), so a
      // consumer that keeps up does not cost its producer a futex wake per publish.
      if (s->wait == WaitStrategy::blocking && round > detail::Waiter::spin_steps + detail::Waiter::yield_steps) {
        sleep_until_data(*s, deadline);
      } else {
        waiter.idle();
      }
      if (RINGBUS_UNLIKELY(s->followers)) follow_writers(*s);
      total = fill(*s, max_records);
      if (total != 0 || s->gap_count != 0) break;
      if (RINGBUS_UNLIKELY(s->followers)) {
        if (Status st = follow_damage_error(*s, true); !st.ok()) return st;
      }
      // The clock is read every round except when spinning (every 64th).
      if ((s->wait != WaitStrategy::busy_spin || (round & 63) == 0) && platform::monotonic_ns() >= deadline) break;
      if (Status st = check_open(s); !st.ok()) return st;
    }
    // The wait ended empty: a topic stuck at damage says so now.
    if (RINGBUS_UNLIKELY(s->followers) && total == 0 && s->gap_count == 0) {
      if (Status st = follow_damage_error(*s, false); !st.ok()) return st;
    }
  }
  return Records(std::span<const detail::Chunk>(s->chunks.data(), s->cursors.size()), total,
                 std::span<const Gap>(s->gaps.data(), s->gap_count));
}

Status Consumer::subscribe(std::string_view topic, StartPosition start) {
  ConsumerState* const s = state_;
  if (Status st = check_open(s); !st.ok()) return st;
  Result<detail::Log*> found = s->core->lookup(topic);
  if (!found.ok()) return found.status();
  detail::Log* log = *found;
  if (find(*s, topic) != nullptr) {
    return Status(Errc::invalid_argument, "consumer is already subscribed to topic '" + std::string(topic) + "'");
  }
  const WaitStrategy wait = s->override_wait ? s->wait : (s->cursors.empty() ? log->options().wait : s->wait);
  if (wait == WaitStrategy::blocking && !log->blocking()) {
    return Status(Errc::invalid_argument, "wait strategy 'blocking' needs topic '" + std::string(topic) +
                                              "' to be created with TopicOptions::wait = blocking (its producer "
                                              "then checks for sleepers); it was created with '" +
                                              std::string(to_string(log->options().wait)) + "'");
  }
  for (Cursor& c : s->cursors) {
    if (wait == WaitStrategy::blocking && !c.log->blocking()) {
      return Status(Errc::invalid_argument, "wait strategy 'blocking' needs every subscribed topic to be blocking; '" +
                                                std::string(c.log->name()) + "' is not");
    }
  }
  // Pipelines: the gates of the upstreams that read this topic, resolved now.
  ConsumerState::CursorGates gates;
  detail::GateRef own_gate;
  try {
    std::lock_guard lock(s->core->mutex);
    for (const detail::HeapString& upstream : s->after) {
      auto it = s->core->named.find(upstream);
      if (it == s->core->named.end()) {
        return Status(Errc::invalid_argument,
                      "consumer '" + std::string(upstream) + "' (in ConsumerOptions::after) is not an open consumer");
      }
      for (const detail::GateRef& g : it->second.gates) {
        if (g->log == log) gates.refs.push_back(g);
      }
    }
    for (const detail::GateRef& g : gates.refs) gates.raw.push_back(g.get());
    if (!s->name.empty()) {
      own_gate = std::allocate_shared<detail::Gate>(detail::HeapAllocator<detail::Gate>());
      own_gate->log = log;
    }
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "subscribing to topic '" + std::string(topic) + "' ran out of memory");
  }
  // Room for one more subscription in every per-cursor array first, so that
  // nothing below fails half-way through adding it.
  try {
    const std::size_t n = s->cursors.size() + 1;
    s->cursors.reserve(n);
    s->chunks.reserve(n);
    s->gaps.reserve(2 * n);
    s->gates.reserve(n);
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "subscribing to topic '" + std::string(topic) + "' ran out of memory");
  }
  const int slot = log->register_reader();
  if (slot < 0) {
    return Status(Errc::too_many_consumers, "topic '" + std::string(topic) + "' has all its " +
                                                std::to_string(log->options().max_consumers) +
                                                " reader slots taken (TopicOptions::max_consumers)");
  }
  Cursor c;
  c.log = log;
  c.slot = slot;
  try {
    if (log->overwrite()) c.staging = static_cast<std::byte*>(detail::heap_allocate(log->segment_bytes(), 64));
    c.publish_gate = own_gate.get();
    c.gates = gates.raw.data();
    c.gate_count = static_cast<std::uint32_t>(gates.raw.size());
    if (own_gate) {
      std::lock_guard lock(s->core->mutex);
      s->core->named[s->name].gates.push_back(own_gate);
    }
    s->gates.push_back(std::move(gates)); // moving keeps raw.data(): c.gates stays valid
    s->cursors.push_back(c);
    s->chunks.resize(s->cursors.size());
    s->gaps.resize(2 * s->cursors.size());
  } catch (...) {
    drop_cursor(c);
    if (s->gates.size() > s->cursors.size()) s->gates.pop_back();
    forget_gate(*s, own_gate.get());
    return Status(Errc::out_of_memory, "subscribing to topic '" + std::string(topic) + "' ran out of memory");
  }
  Cursor& added = s->cursors.back();
  s->chunks.back().topic = log->name();
  s->wait = wait;
  s->gated = s->gated || added.gate_count != 0;
  s->followers = s->followers || log->follower();
  refresh_lone(*s);
  rewire_doorbell(*s);
  seek_cursor_to_beginning(added);
  Status st;
  std::optional<std::uint64_t> resume;
  if (log->store() != nullptr && !s->name.empty() && s->core->disk && !s->core->disk->read_only) {
    // A named consumer resumes at its committed offset (clamped to what the
    // log holds: retention may have deleted it, a crash may have cut the tail).
    Status why;
    detail::OffsetStore* offsets = offsets_of(*s, why);
    if (offsets == nullptr) {
      st = why;
    } else {
      resume = offsets->committed(topic);
    }
  }
  if (st.ok() && resume.has_value()) {
    const std::uint64_t at = std::min(*resume, log->end_offset());
    if (at > added.offset) st = seek_cursor(added, at);
  } else if (st.ok() && start == StartPosition::latest) {
    st = seek_cursor_to_end(added);
  }
  // The gate starts where this consumer starts: nothing is passed yet.
  if (added.publish_gate != nullptr) added.publish_gate->passed.store(added.pos, std::memory_order_release); // (P)
  return st;
}

Status Consumer::unsubscribe(std::string_view topic) {
  ConsumerState* const s = state_;
  Cursor* c = nullptr;
  if (Status st = cursor_for(s, topic, c); !st.ok()) return st;
  drop_cursor(*c);
  forget_gate(*s, c->publish_gate); // it stays, at its last position, with whoever runs after us
  const std::ptrdiff_t index = c - s->cursors.data();
  s->gates.erase(s->gates.begin() + index);
  s->cursors.erase(s->cursors.begin() + index);
  s->gated = false;
  s->followers = false;
  for (const Cursor& k : s->cursors) {
    s->gated = s->gated || k.gate_count != 0;
    s->followers = s->followers || k.log->follower();
  }
  s->chunks.resize(s->cursors.size());
  for (std::size_t i = 0; i < s->cursors.size(); ++i) s->chunks[i].topic = s->cursors[i].log->name();
  s->next_first = 0;
  refresh_lone(*s);
  rewire_doorbell(*s);
  return {};
}

std::size_t Consumer::subscription_count() const noexcept { return state_ == nullptr ? 0 : state_->cursors.size(); }

Status Consumer::seek(std::string_view topic, std::uint64_t offset) noexcept {
  Cursor* c = nullptr;
  if (Status st = cursor_for(state_, topic, c); !st.ok()) return st;
  catch_up(*c);
  return seek_cursor(*c, offset);
}

Status Consumer::seek_to_beginning(std::string_view topic) noexcept {
  Cursor* c = nullptr;
  if (Status st = cursor_for(state_, topic, c); !st.ok()) return st;
  return seek_cursor_to_beginning(*c);
}

Status Consumer::seek_to_end(std::string_view topic) noexcept {
  Cursor* c = nullptr;
  if (Status st = cursor_for(state_, topic, c); !st.ok()) return st;
  return seek_cursor_to_end(*c);
}

Status Consumer::seek_to_time(std::string_view topic, std::int64_t timestamp_ns) noexcept {
  Cursor* c = nullptr;
  if (Status st = cursor_for(state_, topic, c); !st.ok()) return st;
  return seek_cursor_to_time(*c, timestamp_ns);
}

Status Consumer::commit() {
  if (Status st = check_open(state_); !st.ok()) return st;
  try {
    return commit_all(*state_);
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "commit ran out of memory");
  }
}

Result<std::uint64_t> Consumer::committed(std::string_view topic) const {
  if (Status st = check_open(state_); !st.ok()) return st;
  Status why;
  detail::OffsetStore* store = offsets_of(*state_, why);
  if (store == nullptr) return why;
  const std::optional<std::uint64_t> at = store->committed(topic);
  if (!at.has_value()) {
    return Status(Errc::topic_not_found, "consumer '" + std::string(std::string_view(state_->name)) +
                                             "' has no committed offset for topic '" + std::string(topic) + "'");
  }
  return *at;
}

Status Consumer::seek_to_beginning() noexcept {
  if (Status st = check_open(state_); !st.ok()) return st;
  for (Cursor& c : state_->cursors) seek_cursor_to_beginning(c);
  return {};
}

Status Consumer::seek_to_end() noexcept {
  if (Status st = check_open(state_); !st.ok()) return st;
  for (Cursor& c : state_->cursors) {
    Status st = seek_cursor_to_end(c);
    if (!st.ok()) return st;
  }
  return {};
}

Result<std::uint64_t> Consumer::position(std::string_view topic) const noexcept {
  Cursor* c = nullptr;
  if (Status st = cursor_for(state_, topic, c); !st.ok()) return st;
  return std::max(c->offset, c->skip_until);
}

Result<std::uint64_t> Consumer::lag(std::string_view topic) const noexcept {
  Cursor* c = nullptr;
  if (Status st = cursor_for(state_, topic, c); !st.ok()) return st;
  catch_up(*c);
  const std::uint64_t at = std::max(c->offset, c->skip_until);
  const std::uint64_t end = c->log->end_offset();
  return end > at ? end - at : 0;
}

Result<std::uint64_t> Consumer::lost(std::string_view topic) const noexcept {
  Cursor* c = nullptr;
  if (Status st = cursor_for(state_, topic, c); !st.ok()) return st;
  return c->lost;
}

} // namespace ringbus
