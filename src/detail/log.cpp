// Cold paths of the log: construction, the single-writer token, segment rolls,
// reader registration, seeks and waking sleepers. The letters refer to the
// pairing diagram at the top of ringbus/detail/log.hpp.
#include "ringbus/detail/log.hpp"

#include <algorithm>
#include <new>

#include "detail/topic_store.hpp"
#include "platform/platform.hpp"
#include "ringbus/detail/wait.hpp"

namespace ringbus::detail {

Log::Log(std::string_view name, const TopicOptions& options, RingMapping mapping)
    : name_(name),
      options_(options),
      mapping_(std::move(mapping)),
      ring_(mapping_.data()),
      capacity_(options.capacity_bytes()),
      mask_(options.capacity_bytes() - 1),
      segment_bytes_(options.segment_bytes),
      capacity_shift_(static_cast<unsigned>(__builtin_ctzll(options.capacity_bytes()))),
      overwrite_(options.overflow == OverflowPolicy::overwrite),
      blocking_(options.wait == WaitStrategy::blocking),
      line_appends_(options.line_aligned_appends && options.overflow == OverflowPolicy::block),
      pair_batches_(options.overflow == OverflowPolicy::block),
      slots_(nullptr),
      slot_count_(options.max_consumers),
      hold_word0_(options.overflow != OverflowPolicy::overwrite) {
  slots_ = static_cast<ReaderSlot*>(heap_allocate(sizeof(ReaderSlot) * slot_count_, alignof(ReaderSlot)));
  for (std::size_t i = 0; i < slot_count_; ++i) ::new (&slots_[i]) ReaderSlot();
  writer_.segment_end = segment_bytes_;
  if (overwrite_) writer_.scratch = static_cast<std::byte*>(heap_allocate(segment_bytes_, 64));
}

// Delegation evaluates both arguments before the store is moved in below.
Log::Log(std::string_view name, std::unique_ptr<TopicStore> store) : Log(name, store->options(), store->take_ring()) {
  store_ = std::move(store);
  store_->attach(&refusing_);
  sync_durability_ = options_.durability == Durability::sync && !store_->read_only();
  follower_ = store_->read_only();
  hold_word0_ = true;
  pair_batches_ = false; // segment files keep the 8-byte layout recovery reads
  if (follower_) {
    overwrite_ = true;                                // readers copy and validate: see follower()
    refusing_.store(true, std::memory_order_relaxed); // no producer here; not shared yet
  }
  restore(store_->restored());
}

void Log::follow() noexcept {
  // acquire/release: the follower state (writer_) passes from one consumer to the next.
  if (following_.exchange(true, std::memory_order_acquire)) return;
  WriterState& w = writer_;
  std::uint64_t p = w.pos;
  std::uint64_t next = w.next_offset;
  Damage damage = Damage::none;
  std::uint64_t damaged_word = 0;
  const auto damaged = [&](Damage why, std::uint64_t word) {
    damage = why;
    damaged_word = word;
  };
  const auto scan = [&] {
    for (;;) {
      if (p == w.segment_end) {
        // The writer's next segment file, once it exists: first make its ring
        // slot free. (E) The head moves past the old lap before the slot is remapped.
        if (!store_->follow_next(p, next, *this)) break; // may jump p and next ahead (lapped)
        w.segment_end = p + segment_bytes_;
      }
      const std::byte* f = ring_at(p);
      const std::uint64_t word = load_word_acquire(f); // (C) pairs with the writer's (B)
      // Not published yet: the writer zeroes the word past its last frame
      // before it publishes that frame, and a segment start holds last lap's.
      if (word0_type(word) == frame_type::none || word0_lap_bits(word) != lap_bits(p)) break;
      // Published, so whole (the word is stored last): anything wrong from
      // here on was done to the file, and no later call gets past it (unless
      // the writer drops the segment: below).
      const std::uint32_t length = word0_length(word);
      if (word0_type(word) != frame_type::data && word0_type(word) != frame_type::pad) {
        damaged(Damage::bad_type, word);
        break;
      }
      if (length < pad_frame_min_bytes || length > w.segment_end - p) {
        damaged(Damage::bad_length, word);
        break;
      }
      if (word0_type(word) == frame_type::pad) {
        p += length;
        continue;
      }
      const std::uint64_t counts = load_word_acquire(f + 8);
      const std::uint64_t base = load_word_acquire(f + offsetof(FrameHeader, base_offset));
      const auto records = static_cast<std::uint32_t>(counts);
      if (length < frame_header_bytes || records == 0) {
        damaged(Damage::bad_header, word);
        break;
      }
      if (base != next) {
        damaged(Damage::offset_gap, word);
        break;
      }
      p = frame_end(p, word);
      next = base + records;
    }
  };
  scan();
  // Damage in a segment the writer has since dropped (deleted its file: it
  // lapped this reader, or retention) is gone with the segment's records:
  // go on from the oldest newer segment, as after a lap (readers see the gap).
  while (damage != Damage::none && store_->follow_past_dropped(w.segment_end - segment_bytes_, p, next, *this)) {
    w.segment_end = p + segment_bytes_;
    damage = Damage::none;
    scan();
  }
  if (p != w.pos) {
    w.pos = p;
    w.next_offset = next;
    published_.end_offset.store(next, std::memory_order_release); // pairs with end_offset()
    published_.tail.store(p, std::memory_order_release);          // (B) pairs with (C) in refill
  }
  // relaxed: only follow() stores these; the release below publishes them.
  if (damage != Damage::none || damage_.load(std::memory_order_relaxed) != Damage::none) {
    damage_word_.store(damaged_word, std::memory_order_relaxed);
    damage_position_.store(p, std::memory_order_relaxed);
    damage_offset_.store(next, std::memory_order_relaxed);
    damage_.store(damage, std::memory_order_release); // pairs with follow_damage()
  }
  following_.store(false, std::memory_order_release); // pairs with the exchange above
}

Log::FollowDamage Log::follow_damage() const noexcept {
  FollowDamage d;
  d.reason = damage_.load(std::memory_order_acquire); // pairs with the release in follow()
  if (d.reason == Damage::none) return d;
  // relaxed: ordered by the acquire above. A later follow() may store the
  // next finding meanwhile: then the fields mix two findings, all of them
  // true a moment apart (the message is the only use).
  d.word = damage_word_.load(std::memory_order_relaxed);
  d.position = damage_position_.load(std::memory_order_relaxed);
  d.offset = damage_offset_.load(std::memory_order_relaxed);
  return d;
}

void Log::make_room(std::uint64_t segment) noexcept {
  if (segment + segment_bytes_ <= capacity_) return;
  const std::uint64_t need = segment + segment_bytes_ - capacity_;
  // relaxed: in a follower only follow() stores the head.
  if (head_.load(std::memory_order_relaxed) < need) store_head(need, offset_at_segment(need));
}

// Single-threaded (the log is not shared yet): plain-order stores suffice;
// publication to other threads is by the registry's mutex.
void Log::restore(const LogRestore& r) noexcept {
  writer_.pos = r.pos;
  writer_.published = r.pos;
  writer_.next_offset = r.next_offset;
  writer_.segment_end = r.segment_end;
  synced_ = r.pos;
  published_.tail.store(r.pos, std::memory_order_relaxed);
  published_.end_offset.store(r.next_offset, std::memory_order_relaxed);
  head_.store(r.head, std::memory_order_relaxed);
  head_offset_.store(r.head_offset, std::memory_order_relaxed);
  stats_base_offset_ = r.next_offset;
  stats_base_position_ = r.pos;
}

Status Log::sync_published() noexcept {
  const std::uint64_t to = writer_.published;
  if (to <= synced_) return {};
  Status st = store_->sync_published(synced_, to);
  if (st.ok()) synced_ = to;
  return st;
}

Status Log::roll_error() const {
  if (store_ != nullptr && store_->failed()) return store_->failure();
  return roll_error_;
}

Log::~Log() {
  for (std::size_t i = 0; i < slot_count_; ++i) slots_[i].~ReaderSlot();
  heap_free(slots_);
  heap_free(writer_.scratch);
}

bool Log::open_writer() noexcept {
  std::uint32_t expected = 0;
  // acquire: takes over WriterState from the previous producer's release in close_writer.
  return writer_open_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed);
}

void Log::close_writer() noexcept {
  writer_.open_claim = nullptr;
  writer_open_.store(0, std::memory_order_release); // hands WriterState to the next open_writer
}

std::uint64_t Log::min_reader_position() const noexcept {
  std::uint64_t lowest = no_reader;
  const std::uint32_t used = slots_used_.load(std::memory_order_seq_cst); // (A) see register_reader
  for (std::uint32_t i = 0; i < used; ++i) {
    const ReaderSlot& s = slots_[i];
    if (s.state.load(std::memory_order_seq_cst) != slot_active) continue;  // (A) pairs with (R)
    lowest = std::min(lowest, s.position.load(std::memory_order_seq_cst)); // (A) pairs with (D), (R)
  }
  return lowest;
}

bool Log::roll(bool wait, Errc& err) noexcept {
  WriterState& w = writer_;
  const std::uint64_t next_start = w.segment_end;
  const std::uint64_t next_end = next_start + segment_bytes_;
  if (next_end > capacity_) {
    // Writing [next_start, next_end) overwrites the previous lap's copy of this
    // segment, [next_start - C, need). Every reader must be at or past need.
    const std::uint64_t need = next_end - capacity_;
    if (overwrite_) {
      // (E): invalidates the old lap before a byte of it is overwritten.
      // relaxed: only this thread (the writer) stores head.
      if (head_.load(std::memory_order_relaxed) < need) store_head(need, offset_at_segment(need));
    } else if (head_.load(std::memory_order_relaxed) < need && !reclaim(need, wait, err)) {
      // (relaxed: only this thread stores the head. At or past need, reclaim_for_batch
      // reclaimed this slot for the batch rolling now: a reader that came
      // since reads from the head, and nothing behind it is held.)
      return false;
    }
  }
  if (store_ != nullptr) {
    // Statistics: two clock reads per roll of a persistent topic (once per segment).
    const std::int64_t started = platform::monotonic_ns();
    if (!roll_files(next_start, err)) return false;
    LogCounters::add(counters_.segment_rolls, 1);
    LogCounters::add(counters_.segment_roll_ns, static_cast<std::uint64_t>(platform::monotonic_ns() - started));
  }
  if (w.pos < next_start) {
    // Pad frame: only its first word. Published with the next tail store.
    const std::uint64_t word =
        frame_word0(static_cast<std::uint32_t>(next_start - w.pos), frame_type::pad, 0) | lap_bits(w.pos);
    if (!hold_word0_) {
      std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(ring_at(w.pos)))
          .store(word, std::memory_order_release); // (E') like copy_release
    } else {
      place_word0(w.pos, word);
    }
  }
  w.pos = next_start;
  w.segment_end = next_end;
  return true;
}

// Persistent topics, at a roll into [next_start, next_start + S): retention
// first (the head moves past the segments that go, with the same protocol as
// the ring's reclaim but never waiting: a reader still in one keeps it for
// now), then the files behind the head are deleted and the next segment file
// is mapped into the slot.
bool Log::roll_files(std::uint64_t next_start, Errc& err) noexcept {
  const std::uint64_t head = head_.load(std::memory_order_relaxed); // only this thread writes it
  // Never past the segment of the first unpublished frame: a batch that
  // rolls through several segments publishes its first frame's word last
  // (publish()), so the segment it began in is no sealed segment yet, and its
  // slot must stay mapped for that store.
  const std::uint64_t want = std::min(store_->retention_head(head, next_start), segment_start(writer_.published));
  if (want > head) {
    if (overwrite_) {
      store_head(want, offset_at_segment(want)); // (E) before the files go
    } else {
      Errc ignored = Errc::ok;
      (void)reclaim(want, false, ignored); // refused: a reader is behind, keep the segments
    }
  }
  // The segment leaving the slot the writer enters is recycled as the next one
  // when it can be. A batch's reclaim_for_batch may have moved the head past
  // the segments of the slots its later rolls enter: those stay (below the
  // head, unread) until their own roll recycles them, as single appends'
  // rolls do. Segments retention moved the head past go now. relaxed: only
  // this thread stores the head.
  const std::uint64_t now_head = head_.load(std::memory_order_relaxed);
  const std::uint64_t ring_need = next_start + segment_bytes_ > capacity_ ? next_start + segment_bytes_ - capacity_ : 0;
  store_->drop_below(now_head > head ? now_head : std::min(now_head, ring_need), next_start);
  if (Status st = store_->begin_segment(next_start, writer_.next_offset, writer_.has_pending); !st.ok()) {
    // The head may be past segments no roll reached yet (a batch's
    // reclaim_for_batch takes the slots of all its rolls at once): they are
    // still held and whole, so the head goes back to the oldest of them and
    // the refused call loses only the slots it entered, as a single append's
    // failed roll does. The segments held run without a hole up to the one
    // before next_start (none was begun here). Under overwrite, and for a
    // single append, the oldest held is the head already.
    const std::uint64_t held = store_->segment_count() * segment_bytes_;
    // relaxed: only this thread stores the head.
    if (held != 0 && held <= next_start && next_start - held < head_.load(std::memory_order_relaxed)) {
      const std::uint64_t oldest = next_start - held;
      store_head(oldest, offset_at_segment(oldest)); // (H) as reclaim's refusal: nothing was overwritten there
    }
    roll_error_ = std::move(st);
    err = roll_error_.code();
    return false;
  }
  return true;
}

void Log::abandon_segments_from(std::uint64_t start) noexcept { store_->abandon_from(start); }

void Log::store_head(std::uint64_t pos, std::uint64_t offset) noexcept {
  const std::uint64_t seq = head_seq_.load(std::memory_order_relaxed); // only this thread writes it
  head_seq_.store(seq + 1, std::memory_order_relaxed);                 // odd: pair being written
  // release: orders the odd sequence before these stores for read_head.
  head_offset_.store(offset, std::memory_order_release);
  // (H) seq_cst pairs with (R) in register_reader; (E) it is also a release
  // that pairs with (F) in readers of overwrite topics.
  head_.store(pos, std::memory_order_seq_cst);
  head_seq_.store(seq + 2, std::memory_order_release); // pairs with read_head's first load
}

void Log::read_head(std::uint64_t& pos, std::uint64_t& offset) const noexcept {
  for (;;) {
    const std::uint64_t before = head_seq_.load(std::memory_order_acquire); // pairs with the even store
    if ((before & 1) != 0) {
      cpu_relax();
      continue;
    }
    pos = head_.load(std::memory_order_seq_cst);           // (R) pairs with (H)
    offset = head_offset_.load(std::memory_order_acquire); // pairs with the release in store_head
    // relaxed reread, after the acquire loads above: a changed sequence means
    // store_head ran meanwhile (its head/offset release stores follow the odd one).
    if (head_seq_.load(std::memory_order_relaxed) == before) return;
  }
}

namespace {

// Statistics: times one wait of the producer for room. The clock is read only
// once the producer really waits (the first check found no room), and once more
// when it stops: a roll that finds room costs nothing. The wait is counted
// when it begins (so a wait in progress shows), its time when it ends.
class WaitTimer {
 public:
  explicit WaitTimer(LogCounters& counters) noexcept : counters_(counters) {}
  WaitTimer(const WaitTimer&) = delete;
  WaitTimer& operator=(const WaitTimer&) = delete;
  ~WaitTimer() {
    if (started_ == 0) return;
    LogCounters::add(counters_.producer_wait_ns, static_cast<std::uint64_t>(platform::monotonic_ns() - started_));
  }
  void waiting() noexcept {
    if (started_ != 0) return;
    started_ = platform::monotonic_ns();
    LogCounters::add(counters_.producer_waits, 1);
  }

 private:
  LogCounters& counters_;
  std::int64_t started_ = 0;
};

} // namespace

bool Log::reclaim(std::uint64_t need, bool wait, Errc& err) noexcept {
  Waiter waiter(options_.wait == WaitStrategy::blocking ? WaitStrategy::backoff : options_.wait);
  WaitTimer timer(counters_); // one wait per reclaim, however many rounds
  const auto wait_for_readers = [&]() {
    for (;;) {
      if (min_reader_position() >= need) return true; // (A)
      if (closed()) {
        err = Errc::closed;
        return false;
      }
      if (!wait) {
        err = Errc::would_block;
        return false;
      }
      timer.waiting();
      waiter.idle();
    }
  };
  // Every reader we can see must be past the old lap first: a refused roll
  // leaves the head (and so the range of offsets held) as it was.
  if (!wait_for_readers()) return false;
  const std::uint64_t old_head = head_.load(std::memory_order_relaxed); // only this thread writes it
  if (old_head >= need) return true;
  const std::uint64_t old_offset = head_offset_.load(std::memory_order_relaxed); // likewise writer-only
  // (H) then (A) again: a reader that registered at the old head after our
  // first scan is either seen now or has seen the new head (Dekker with (R)).
  store_head(need, offset_at_segment(need));
  if (wait_for_readers()) return true;
  // Refused: nothing was overwritten, so the old head is still true.
  store_head(old_head, old_offset);
  return false;
}

bool Log::reclaim_for_batch(std::uint64_t last_end, bool wait, Errc& err) noexcept {
  if (overwrite_ || last_end <= capacity_) return true; // overwrite rolls never wait; a first lap frees all
  const std::uint64_t need = last_end - capacity_;
  if (head_.load(std::memory_order_relaxed) >= need) return true; // only this thread stores the head
  // Within batch_limit_bytes a batch never needs room behind the published
  // tail (need <= the start of the writer's segment, which a pad frame an
  // aborted claim left pending begins before): refused, not waited for.
  if (need > writer_.published) {
    err = Errc::record_too_large;
    return false;
  }
  return reclaim(need, wait, err);
}

std::uint64_t Log::offset_at_segment(std::uint64_t pos) const noexcept {
  // A segment start is always a data frame, written by this thread: a plain read is enough.
  FrameHeader first;
  std::memcpy(&first, ring_at(pos), sizeof first);
  return first.base_offset;
}

int Log::register_reader() noexcept {
  int index = -1;
  for (std::size_t i = 0; i < slot_count_; ++i) {
    std::uint32_t expected = slot_free;
    if (slots_[i].state.compare_exchange_strong(expected, slot_claimed, std::memory_order_acq_rel,
                                                std::memory_order_relaxed)) {
      index = static_cast<int>(i);
      break;
    }
  }
  if (index < 0) return -1;
  // Make the producer's scan cover this slot before we read the head (R).
  std::uint32_t used = slots_used_.load(std::memory_order_seq_cst);
  while (used < static_cast<std::uint32_t>(index) + 1 &&
         !slots_used_.compare_exchange_weak(used, static_cast<std::uint32_t>(index) + 1, std::memory_order_seq_cst,
                                            std::memory_order_seq_cst)) {
  }
  ReaderSlot& s = slots_[index];
  s.sleeping.store(0, std::memory_order_relaxed);
  s.wake_target.store(&s.doorbell, std::memory_order_release);                        // read by wake_sleepers (acquire)
  s.position.store(head_.load(std::memory_order_seq_cst), std::memory_order_seq_cst); // (R)
  s.state.store(slot_active, std::memory_order_seq_cst);                              // (R) pairs with (A)
  std::uint64_t pos = 0;
  std::uint64_t offset = 0;
  protect_from_head(index, pos, offset);
  return index;
}

void Log::protect_from_head(int index, std::uint64_t& pos, std::uint64_t& offset) noexcept {
  ReaderSlot& s = slots_[index];
  // Only this consumer writes its slot. Never move it forward here: the bytes
  // it holds may be unread (a refused seek must not release them).
  const std::uint64_t held = s.position.load(std::memory_order_relaxed);
  read_head(pos, offset);
  for (;;) {
    s.position.store(std::min(pos, held), std::memory_order_seq_cst);  // (R)
    const std::uint64_t again = head_.load(std::memory_order_seq_cst); // (R) pairs with (H)
    if (again == pos) return;
    read_head(pos, offset);
  }
}

std::uint32_t Log::active_readers() const noexcept {
  std::uint32_t n = 0;
  // relaxed: a count for statistics; no slot's data is read on its strength.
  const std::uint32_t used = slots_used_.load(std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < used; ++i) {
    if (slots_[i].state.load(std::memory_order_relaxed) == slot_active) ++n;
  }
  return n;
}

void Log::unregister_reader(int index) noexcept {
  ReaderSlot& s = slots_[index];
  s.sleeping.store(0, std::memory_order_relaxed);
  // release: our reads of the ring happen before the producer reuses the bytes.
  s.state.store(slot_free, std::memory_order_release);
}

bool Log::segment_for_offset(std::uint64_t target, std::uint64_t from, std::uint64_t& segment,
                             std::uint64_t& first) const noexcept {
  const std::uint64_t tail = tail_acquire(); // (C) pairs with (B)
  segment = from;
  first = target;
  if (tail <= from) return head_acquire() <= from;
  // Segments from + k*S for k in [0, last] hold published frames of this lap.
  std::uint64_t lo = 0;
  std::uint64_t hi = (segment_start(tail - 1) - from) / segment_bytes_;
  std::uint64_t best = 0;
  std::uint64_t best_first = 0;
  bool found = false;
  while (lo <= hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    const std::byte* frame = ring_at(from + mid * segment_bytes_);
    const std::uint64_t word = load_word_acquire(frame);
    const std::uint64_t base = load_word_acquire(frame + offsetof(FrameHeader, base_offset));
    if (word0_type(word) != frame_type::data) return false; // being overwritten
    if (base <= target || mid == 0) {
      best = mid;
      best_first = base;
      found = true;
      if (base > target) break; // even the first segment starts after target
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  // (F) after the acquire loads above: if the head has not passed `from`,
  // every word we read was of the current lap.
  if (head_acquire() > from) return false;
  segment = from + best * segment_bytes_;
  if (found) first = best_first;
  return true;
}

bool Log::segment_for_time(std::int64_t t, std::uint64_t from, std::uint64_t& segment,
                           std::uint64_t& first) const noexcept {
  const std::uint64_t tail = tail_acquire(); // (C) pairs with (B)
  segment = from;
  if (tail <= from) return head_acquire() <= from; // first: the caller's (the offset at from)
  std::uint64_t lo = 0;
  std::uint64_t hi = (segment_start(tail - 1) - from) / segment_bytes_;
  std::uint64_t best = 0;
  std::uint64_t best_first = 0;
  while (lo <= hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    const std::byte* frame = ring_at(from + mid * segment_bytes_);
    const std::uint64_t word = load_word_acquire(frame);
    const std::uint64_t base = load_word_acquire(frame + offsetof(FrameHeader, base_offset));
    const auto ts = static_cast<std::int64_t>(load_word_acquire(frame + offsetof(FrameHeader, base_timestamp)));
    if (word0_type(word) != frame_type::data) return false; // being overwritten
    if (ts < t || mid == 0) {
      best = mid;
      best_first = base;
      if (ts >= t) break; // even the first segment is not older than t
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (head_acquire() > from) return false; // (F): the words read were of this lap
  segment = from + best * segment_bytes_;
  first = best_first;
  return true;
}

bool Log::offset_at_time(std::int64_t t, std::uint64_t pos, std::uint64_t first, std::uint64_t tail, std::byte* scratch,
                         std::uint64_t& offset) const noexcept {
  // Nothing found: the offset at tail, counted through the frames read. (Not
  // end_offset(): records published after tail was read may be the ones
  // at or after t.)
  offset = first;
  std::uint64_t p = pos;
  while (p < tail) {
    const std::byte* f = ring_at(p);
    const std::uint64_t word = load_word_acquire(f); // (C) pairs with (B)
    const std::uint32_t length = word0_length(word);
    if (word0_type(word) == frame_type::none || length < pad_frame_min_bytes) break;
    if (word0_type(word) == frame_type::pad) {
      p += length;
      continue;
    }
    // Within its segment: overwrite topics may meet new-lap payload here,
    // which read as a frame would run past the segment (the last one's past
    // the ring); the head check at the end throws away what was read.
    if (length < frame_header_bytes || length > segment_start(p) + segment_bytes_ - p) break;
    FrameHeader h;
    const std::uint64_t words[4] = {word, load_word_acquire(f + 8), load_word_acquire(f + 16),
                                    load_word_acquire(f + 24)}; // acquire: like copy_acquire
    std::memcpy(&h, words, sizeof h);
    if (h.base_timestamp >= t) {
      offset = h.base_offset;
      break;
    }
    offset = h.base_offset + h.record_count;
    // Each record of a general-form frame carries its own timestamp.
    // Overwrite topics decode a copy (the writer may rewrite the frame under
    // us; what was copied is checked at the end, by the head).
    if ((h.flags & frame_flags::packed) == 0) {
      const std::byte* body = f;
      if (overwrite_) {
        copy_acquire(scratch, f, align_up(length, frame_alignment));
        body = scratch;
      }
      const std::byte* r = body + frame_header_bytes;
      const std::byte* const body_end = body + length;
      bool found = false;
      for (std::uint32_t i = 0; i < h.record_count && r != nullptr; ++i) {
        Record rec;
        r = decode_record(r, body_end, h.base_timestamp, rec);
        if (r != nullptr && rec.timestamp_ns >= t) {
          offset = h.base_offset + i;
          found = true;
          break;
        }
      }
      if (found) break;
    }
    p = frame_end(p, word);
  }
  return !overwrite_ || head_acquire() <= pos; // (F): what was read was of this lap
}

void Log::wake_sleepers() noexcept {
  const std::uint32_t used = slots_used_.load(std::memory_order_acquire);
  for (std::uint32_t i = 0; i < used; ++i) {
    ReaderSlot& s = slots_[i];
    if (s.sleeping.load(std::memory_order_seq_cst) == 0) continue; // pairs with the sleeper's store
    std::atomic<std::uint32_t>* doorbell = s.wake_target.load(std::memory_order_acquire);
    if (doorbell == nullptr) continue;
    doorbell->fetch_add(1, std::memory_order_release); // pairs with the sleeper's doorbell load
    platform::futex_wake_all(doorbell);
  }
}

void thread_yield() noexcept { platform::yield(); }
void thread_sleep_ns(std::int64_t ns) noexcept { platform::sleep_ns(ns); }

} // namespace ringbus::detail
