// The log of one topic: a ring of segments in one mapping, one writer, many
// readers. The hot path (reserve, publish, read) is inline here; rolls,
// registration, seeks and sleeping live in src/detail/log.cpp.
//
// Positions are byte positions in the unbounded log; the ring byte of position
// p is ring[p & (capacity - 1)]. Segment k is [k*S, (k+1)*S) with S =
// segment_bytes; frames never straddle a segment end (a pad frame fills the
// tail), so every segment start is a frame boundary.
//
// Invariants (C = capacity = S * segment_count):
//   head <= every active reader's position <= tail <= writer.pos
//   the word at a frame boundary in [tail, writer.pos] is not published for this
//   lap until publish(): zero, last lap's header, or held back (pending)
//   writer.pos <= head + C                    (block policy; overwrite moves head)
//   head = max(0, end of writer's segment - C) and head % S == 0
//   bytes in [head, tail) are whole, published frames of the current lap.
//
// Who writes what, and which accesses pair (the letters are used at each site):
//
//   producer (one thread)                    consumer (each)
//   ---------------------------------------  -----------------------------------------
//   write frames (plain stores), all but     block policy: at its position, (C) an
//   the first one's publication word;        acquire load of the publication word;
//   zero the word after the last frame;      a frame is there when its type is set
//   (B) store the first frame's word         and its lap tag is this lap's. Then
//       (release): one store publishes       read on to the next word. Never reads
//       the whole batch.  --------------->   the tail line.
//   then tail.store(release) (lag, seek,     overwrite policy: (C) tail.load(acquire),
//       overwrite readers, sleepers)         then copy and validate (below)
//                                            ... done with views of [old, new)
//   (A) slot.position.load(seq_cst)  <-----  (D) slot.position.store(release)
//       on roll: overwrite the old lap only
//       when every active reader is past it
//   (A) scan: every reader past the old lap?
//   (H) head.store(seq_cst) then (A) scan    (R) registration: position.store(seq_cst),
//       again: a Dekker pair with (R), so a       state.store(seq_cst), then head.load
//       reader that registers at an old head      (seq_cst); retry if head moved. Either
//       is either seen by the producer or sees    the producer sees the new reader or
//       the new head. (A refused roll puts        the reader sees the new head. A slot
//       the old head back: nothing was            only moves back to the head, never
//       overwritten.)                             forward past bytes it holds.
//
//   overwrite policy: the producer never reads reader slots. It stores
//   (E) head.store(release) before it overwrites a segment, then writes frames
//   with release stores; a reader copies frames with acquire loads and then
//   rereads (F) head.load(acquire): if the head passed the copied bytes, the copy
//   may be torn and is thrown away (a seqlock on the head; no fences needed:
//   a copied word from the new lap synchronizes with its release store, which
//   follows the head store, so the reread sees the new head).
//
//   Why the publication word and not the tail: a reader polling the tail pulls
//   the tail's cache line from the producer on every record it waits for, then
//   misses again on the frame; with the word it misses once, on the frame it
//   needs anyway. (Measured in ringbus-bench rtt: one quick run 789 -> 617 ns
//   p50, a 3-repetition run 789 -> 758 ns: inside this VM's run-to-run noise,
//   so not yet demonstrated.) The lap tag replaces Aeron's cleaning of the
//   ring: last lap's header at a frame boundary has the wrong lap, and the
//   zeroed word after each publish keeps a reader from taking old payload
//   bytes for a header. (Line-aligned appends may zero that word one append
//   early, after the previous (B): still before this frame's (B), which is
//   what a reader synchronizes with before it loads the word.)
//
//   persistent topics: the producer maps the next segment's file into its
//   slot at the roll, before the first store of the slot's frames. A block
//   reader at a slot's start first loads the tail (C, acquire) and reads the
//   slot only once the tail is past its start (published_word0), so the
//   mapping happens-before every read of it: a read racing the mmap would find
//   zeros or last lap's tag, but no checker can tell it from a data race. Once
//   per segment, so the no-tail-line rule above holds per record.
//
//   blocking wait: the producer's publish is (B') tail.store(seq_cst) then
//   sleepers.load(seq_cst); a sleeping consumer does sleepers.fetch_add(seq_cst)
//   then tail.load(seq_cst) before futex_wait: a Dekker pair, so either the
//   consumer sees the data or the producer sees the sleeper and rings its doorbell.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

#include "ringbus/detail/checksum.hpp"
#include "ringbus/detail/clock.hpp"
#include "ringbus/detail/config.hpp"
#include "ringbus/detail/frame.hpp"
#include "ringbus/detail/frame_layout.hpp"
#include "ringbus/detail/memory.hpp"
#include "ringbus/detail/segment.hpp"
#include "ringbus/options.hpp"
#include "ringbus/status.hpp"

namespace ringbus {
class Claim;
}

namespace ringbus::detail {

class TopicStore;
struct LogRestore;

inline constexpr std::uint64_t no_reader = UINT64_MAX;

enum slot_state : std::uint32_t { slot_free = 0, slot_claimed = 1, slot_active = 2 };

struct alignas(cache_line) ReaderSlot {
  // First byte position its consumer may still read. (D) release by the
  // consumer; (A) seq_cst load by the producer's roll.
  std::atomic<std::uint64_t> position{0};
  std::atomic<std::uint32_t> state{slot_free};
  // 1 while the consumer may be asleep on *wake_target (blocking wait).
  std::atomic<std::uint32_t> sleeping{0};
  // Futex word of the consumer that holds this slot (when it is the first
  // topic of that consumer).
  std::atomic<std::uint32_t> doorbell{0};
  // The doorbell that consumer sleeps on: this slot's or one in another
  // topic's slot. Slots live as long as the bus, so it never dangles.
  std::atomic<std::atomic<std::uint32_t>*> wake_target{nullptr};
};

struct alignas(cache_line) PublishedCursor {
  // (B) release by the producer: every frame below it is whole.
  std::atomic<std::uint64_t> tail{0};
  // Next offset after the published frames, stored just before tail. Frame
  // visibility comes from tail; this is for lag(), seek_to_end and range checks.
  // release/acquire so that a thread that learned an offset through other
  // synchronization also sees an end_offset past it.
  std::atomic<std::uint64_t> end_offset{0};
};

// A topic's statistics (ringbus/stats.hpp), counted only on slow paths: the
// producer's waits for room and its segment rolls (Log::roll, Log::reclaim),
// and laps where a lapped consumer learns what it lost (refill in cursor.cpp).
// relaxed: each counter is an independent number for Bus::stats and the
// flusher's stats file; nothing is read on its strength, so no ordering is
// needed. fetch_add even for the writer-only ones: off the hot path the
// locked add costs nothing measurable, and it stays right when the writer
// changes threads (producer handed over, SharedProducer's sequencer). One
// line of its own, apart from the hot ones.
struct alignas(cache_line) LogCounters {
  std::atomic<std::uint64_t> producer_waits{0};
  std::atomic<std::uint64_t> producer_wait_ns{0};
  std::atomic<std::uint64_t> segment_rolls{0};
  std::atomic<std::uint64_t> segment_roll_ns{0};
  std::atomic<std::uint64_t> laps{0};
  std::atomic<std::uint64_t> records_lost{0};

  static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
    counter.fetch_add(n, std::memory_order_relaxed); // statistics: see above
  }
  static std::uint64_t read(const std::atomic<std::uint64_t>& counter) noexcept {
    return counter.load(std::memory_order_relaxed); // statistics: see above
  }
};

// State owned by the topic's one open producer. Handed from one producer to
// the next through Log::writer_open (acquire on open, release on close).
struct WriterState {
  std::uint64_t pos = 0;         // next byte to write; [published, pos) is unpublished
  std::uint64_t published = 0;   // last value stored to tail
  std::uint64_t next_offset = 0; // offset of the next record
  std::uint64_t segment_end = 0; // end of the segment the writer owns
  std::byte* scratch = nullptr;  // overwrite policy: frames are built here
  // Block policy: the publication word of the first unpublished frame (at
  // `published`), held back until publish() stores it with release.
  bool has_pending = false;
  std::uint64_t pending_word0 = 0;
  Claim* open_claim = nullptr; // the producer's one open claim, if any
  std::uint64_t claim_frame_bytes = 0;
  // Line-aligned appends: a position whose word append_direct zeroed ahead
  // of time (see preclear_next_line); 0: none. Positions only grow, except
  // in rollback; rollback and claim_frame (a claim is filled in place before
  // the position moves) forget it.
  std::uint64_t cleared = 0;
  // TimestampSource::wall_clock: the writer's clock (clock.hpp), on a line
  // of its own after the hot fields.
  alignas(64) WallClock clock;
};

class Log {
 public:
  Log(std::string_view name, const TopicOptions& options, RingMapping mapping);
  // A persistent topic: the ring is the store's (segment files mapped into a
  // reserved range) and the log resumes where recovery left it.
  Log(std::string_view name, std::unique_ptr<TopicStore> store);
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  [[nodiscard]] std::string_view name() const noexcept { return {name_.data(), name_.size()}; }
  [[nodiscard]] const TopicOptions& options() const noexcept { return options_; }
  [[nodiscard]] std::uint64_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::uint64_t segment_bytes() const noexcept { return segment_bytes_; }
  [[nodiscard]] bool overwrite() const noexcept { return overwrite_; }
  [[nodiscard]] bool blocking() const noexcept { return blocking_; }
  [[nodiscard]] const std::byte* ring() const noexcept { return ring_; }
  [[nodiscard]] std::byte* ring_at(std::uint64_t pos) const noexcept { return ring_ + (pos & mask_); }
  [[nodiscard]] std::uint64_t segment_start(std::uint64_t pos) const noexcept { return pos & ~(segment_bytes_ - 1); }
  // Largest value a single-record frame may carry (key + value + encoding).
  [[nodiscard]] std::uint64_t max_frame_bytes() const noexcept { return segment_bytes_; }

  // --- closing -------------------------------------------------------------
  // Refuses further appends and wakes consumers asleep in a blocking wait.
  void close() noexcept {
    refusing_.store(true, std::memory_order_release); // pairs with refusing()
    closed_.store(true, std::memory_order_seq_cst);   // pairs with closed() and the sleeper's recheck
    wake_sleepers();
  }
  // acquire: pairs with the store in close().
  [[nodiscard]] bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  // The producer's check: closed, or (persistent) failed. acquire: pairs with
  // the release stores in close() and in TopicStore's failure.
  [[nodiscard]] bool refusing() const noexcept { return refusing_.load(std::memory_order_acquire); }

  // --- persistence (null store: an in-memory topic) -----------------------------
  [[nodiscard]] TopicStore* store() const noexcept { return store_.get(); }
  // Durability::sync: the producer calls sync_published() after each publish.
  [[nodiscard]] bool needs_sync() const noexcept { return sync_durability_; }
  Status sync_published() noexcept;
  // Why the last roll failed (the writer's thread only): the file system's words.
  Status roll_error() const;
  // A persistent topic opened read-only while another process writes it: its
  // readers behave as under the overwrite policy (the writer cannot see them,
  // so a reader a ring behind is lapped and told what it lost).
  [[nodiscard]] bool follower() const noexcept { return follower_; }
  // Followers: reads the frames the writing process published since the last
  // call and maps its new segment files, then moves tail and end_offset on.
  // One consumer at a time does the work (a flag, no lock); others return.
  void follow() noexcept;
  // Followers, from TopicStore::follow_next: moves the head past the old lap
  // of the ring slot of `segment` (a seqlock store readers validate against).
  void make_room(std::uint64_t segment) noexcept;
  // Followers lapped by the writer: the head jumps to a newer segment.
  void jump_head(std::uint64_t segment, std::uint64_t first_offset) noexcept { store_head(segment, first_offset); }
  // Followers: why follow() cannot pass the frame at the tail, when its
  // publication word carries this lap's tag (the writer published it) but
  // is no valid frame: the file was changed under the writer (another
  // program, a disk fault). Readers caught up with the tail say so rather
  // than wait for records that never come. Once the bytes there are put
  // right, or the writer drops the segment (TopicStore::follow_past_dropped:
  // the head jumps past it, as after a lap), follow() goes on and clears it.
  enum class Damage : std::uint8_t { none, bad_type, bad_length, bad_header, offset_gap };
  struct FollowDamage {
    Damage reason = Damage::none;
    std::uint64_t position = 0; // where the frame starts (the tail follow() left)
    std::uint64_t offset = 0;   // the offset it should start with (its end_offset)
    std::uint64_t word = 0;     // its publication word
  };
  [[nodiscard]] FollowDamage follow_damage() const noexcept;

  // --- statistics (Bus::stats, the stats file) ------------------------------------
  LogCounters& counters() noexcept { return counters_; }
  [[nodiscard]] const LogCounters& counters() const noexcept { return counters_; }
  // Where the log stood when this bus created or opened the topic:
  // records_appended and bytes_appended count from here.
  [[nodiscard]] std::uint64_t stats_base_offset() const noexcept { return stats_base_offset_; }
  [[nodiscard]] std::uint64_t stats_base_position() const noexcept { return stats_base_position_; }
  // Reader slots in use (a scan of the slots: cold).
  [[nodiscard]] std::uint32_t active_readers() const noexcept;

  // --- producer side ---------------------------------------------------------
  // Takes the single-writer token; false if a producer is open.
  bool open_writer() noexcept;
  void close_writer() noexcept;
  // relaxed: a snapshot for describe(); no data is read on its strength.
  [[nodiscard]] bool has_writer() const noexcept { return writer_open_.load(std::memory_order_relaxed) != 0; }
  WriterState& writer() noexcept { return writer_; }

  // Where the next frame of frame_bytes (8-aligned, <= segment) is to be built,
  // rolling to the next segment when it does not fit. nullptr with err set
  // when it cannot (would_block, closed).
  RINGBUS_ALWAYS_INLINE std::byte* reserve(std::size_t frame_bytes, bool wait, Errc& err) noexcept {
    if (RINGBUS_UNLIKELY(writer_.pos + frame_bytes > writer_.segment_end)) {
      if (!roll(wait, err)) return nullptr;
    }
    return overwrite_ ? writer_.scratch : ring_at(writer_.pos);
  }

  // Per-record appends: reserve() for a one-record frame of `length` bytes;
  // frame_bytes: what it takes where it landed (TopicOptions::
  // line_aligned_appends: to the end of its 64-byte line, which a roll moves).
  RINGBUS_ALWAYS_INLINE std::byte* reserve_append(std::size_t length, bool wait, Errc& err,
                                                  std::size_t& frame_bytes) noexcept {
    std::byte* const p = reserve(append_frame_bytes(length), wait, err);
    frame_bytes = append_frame_bytes(length);
    return p;
  }
  // The flag a per-record append's word carries.
  [[nodiscard]] std::uint8_t append_flags() const noexcept { return line_appends_ ? frame_flags::line_end : 0; }

  // Batch frames (append_values, append_batch, claim_values): reserve() for a
  // frame of `length` bytes; frame_bytes: what it takes where it landed. In
  // an in-memory block-policy topic a frame of batch_pair_min_bytes or more
  // runs to the next 128-byte boundary (frame_flags::pair_end, batch_flags),
  // so the next batch starts a line pair of its own: while the writer fills
  // it, readers of this one's last line, and the adjacent-line prefetch that
  // read brings along, touch none of its lines. Shorter frames, and segment
  // files and overwrite topics, keep the 8-byte layout.
  RINGBUS_ALWAYS_INLINE std::byte* reserve_batch(std::size_t length, bool wait, Errc& err,
                                                 std::size_t& frame_bytes) noexcept {
    std::byte* const p = reserve(batch_frame_bytes(length), wait, err);
    frame_bytes = batch_frame_bytes(length);
    return p;
  }
  // batch_frame_bytes for a frame at `pos`: a batch's layout planned ahead.
  [[nodiscard]] std::size_t batch_frame_bytes_at(std::uint64_t pos, std::size_t length) const noexcept {
    if (batch_flags(length) == 0) return align_up(length, frame_alignment);
    return align_up(pos + length, frame_pair_bytes) - pos;
  }
  // A batch whose frames run into later segments, the last of which ends at
  // last_end, before it writes a byte: block policy, every segment slot it
  // will take is reclaimed now, with one wait (or refusal) for the readers,
  // so a batch refused mid-way has overwritten nothing and the head stays
  // where it was; its rolls then find their room. Room behind the published
  // tail can never come (readers stop there): false with record_too_large.
  bool reclaim_for_batch(std::uint64_t last_end, bool wait, Errc& err) noexcept;
  // The flag a batch frame of `length` bytes carries.
  [[nodiscard]] std::uint8_t batch_flags(std::size_t length) const noexcept {
    return pair_batches_ && length >= batch_pair_min_bytes ? frame_flags::pair_end : 0;
  }
  // How many of `count` packed values of value_bytes each (a frame that fits
  // a segment) a batch frame reserved next should carry so that it ends
  // exactly on a 128-byte boundary, with no padding: count less the values
  // that would spill into a last, partly filled line pair; or, when the
  // whole frame would not fit the rest of the writer's segment, as many as
  // fill that rest exactly (no pad frame, no roll). count itself when the
  // frame would not end on a pair (batch_flags), or no shorter frame of
  // batch_pair_min_bytes or more ends exactly on one (values whose size
  // does not divide the bytes left). Producer::claim_values_up_to.
  [[nodiscard]] std::size_t pair_filling_count(std::size_t value_bytes, std::size_t count) const noexcept {
    const std::size_t length = frame_header_bytes + count * value_bytes;
    if (value_bytes == 0 || batch_flags(length) == 0) return count;
    // Here, up to the segment's end at most; else where a roll puts the frame.
    const std::uint64_t pos = writer_.pos;
    if (const std::size_t n = values_to_pair(pos, std::min(pos + length, writer_.segment_end), value_bytes); n != 0) {
      return n;
    }
    if (pos + batch_frame_bytes(length) > writer_.segment_end) {
      const std::uint64_t at = writer_.segment_end;
      if (const std::size_t n = values_to_pair(at, at + length, value_bytes); n != 0) return n;
    }
    return count;
  }

  // The lap tag of a position, as it stands in a publication word.
  [[nodiscard]] std::uint64_t lap_bits(std::uint64_t pos) const noexcept {
    return ((pos >> capacity_shift_) & 0xffff) << 48;
  }

  // Accepts the frame built at the reserved place, whose publication word
  // (from write_header) is word0; not yet visible to readers.
  RINGBUS_ALWAYS_INLINE void advance(std::size_t frame_bytes, std::uint32_t records, std::uint64_t word0) noexcept {
    if (RINGBUS_UNLIKELY(store_ != nullptr)) {
      prefetch_next_frame(frame_bytes);
      stamp_checksum(overwrite_ ? writer_.scratch : ring_at(writer_.pos), word0);
    }
    word0 |= lap_bits(writer_.pos);
    if (overwrite_) {
      if (!hold_word0_) {
        std::memcpy(writer_.scratch, &word0, sizeof word0);
        copy_release(ring_at(writer_.pos), writer_.scratch, frame_bytes);
        writer_.pos += frame_bytes;
        writer_.next_offset += records;
        return;
      }
      copy_release(ring_at(writer_.pos) + 8, writer_.scratch + 8, frame_bytes - 8);
    }
    place_word0(writer_.pos, word0);
    writer_.pos += frame_bytes;
    writer_.next_offset += records;
  }

  // Persistent topics, before the CRC of a frame: the lines where a frame of
  // the same size would go next are asked for in a writable state, so their
  // ownership moves here (from the reader's cache, which holds last lap's
  // bytes) while the CRC runs, not while the next frame is filled. Only lines
  // past this frame's last one, within its segment, at most 32 KiB. Measured
  // on persist_append/none (16 KiB frames; ringbus-bench, 5 alternations of
  // 7 interleaved repetitions against the build without it, a noisy shared
  // machine): median 146 -> 164 M items/s, 0.59x -> 0.70x of memory.
  RINGBUS_ALWAYS_INLINE void prefetch_next_frame(std::size_t frame_bytes) const noexcept {
    constexpr std::uint64_t line = 64;
    constexpr std::uint64_t most = 32 * 1024;
    const std::uint64_t end = writer_.pos + frame_bytes;
    const std::uint64_t to =
        std::min<std::uint64_t>(end + std::min<std::uint64_t>(frame_bytes, most), writer_.segment_end);
    for (std::uint64_t q = (end + line - 1) & ~(line - 1); q < to; q += line) prefetch_for_write(ring_at(q));
  }

  // Persistent topics: the frame's CRC32C (frame_checksum() in checksum.hpp)
  // into its checksum field. word0 is the publication word without the lap
  // tag; its bytes [0, 6) are the frame's, which may not be in place yet.
  // Every persistent topic's frames carry it, whatever the durability.
  static void stamp_checksum(std::byte* frame, std::uint64_t word0) noexcept {
    std::uint32_t crc = crc32c_extend(0, &word0, 6);
    crc = crc32c_extend(crc, frame + 8, 4);
    crc = crc32c_extend(crc, frame + 16, word0_length(word0) - 16);
    std::memcpy(frame + offsetof(FrameHeader, checksum), &crc, sizeof crc);
  }

  // Block policy and persistent topics: the first unpublished frame's word
  // waits for publish(); a later one is stored now (no reader reaches it
  // before that release). Overwrite topics store it atomically: a lapped
  // reader may be copying the old lap's word there (copy_acquire).
  RINGBUS_ALWAYS_INLINE void place_word0(std::uint64_t pos, std::uint64_t word0) noexcept {
    if (!writer_.has_pending) {
      writer_.pending_word0 = word0;
      writer_.has_pending = true;
    } else if (overwrite_) {
      std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(ring_at(pos)))
          .store(word0, std::memory_order_release); // (E') like copy_release
    } else {
      std::memcpy(ring_at(pos), &word0, sizeof word0);
    }
  }

  // advance() + publish() for one frame when nothing else is pending (no
  // claim is open: Producer::append refuses then), the per-record append's
  // path. Topics whose readers go by the publication word (block policy, and
  // every persistent topic) store it directly; in-memory overwrite topics take
  // the general path (their frames are built in scratch and copied).
  RINGBUS_ALWAYS_INLINE void commit_one(std::size_t frame_bytes, std::uint64_t word0) noexcept {
    if (RINGBUS_UNLIKELY(overwrite_ && !hold_word0_) || RINGBUS_UNLIKELY(writer_.has_pending)) {
      advance(frame_bytes, 1, word0);
      publish();
      return;
    }
    const std::uint64_t pos = writer_.pos;
    const std::uint64_t end = pos + frame_bytes;
    std::byte* const frame = overwrite_ ? writer_.scratch : ring_at(pos);
    if (RINGBUS_UNLIKELY(store_ != nullptr)) stamp_checksum(frame, word0);
    word0 |= lap_bits(pos);
    if (overwrite_) copy_release(ring_at(pos) + 8, frame + 8, frame_bytes - 8); // persistent overwrite topics
    clear_word_after(end);
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(ring_at(pos)))
        .store(word0, std::memory_order_release); // (B) pairs with (C)
    writer_.pos = end;
    writer_.next_offset += 1;
    publish_tail();
  }

  // The per-record append of a packed value, whole, for an in-memory
  // block-policy topic: header, value, the zeroed word after it, then (B)
  // the publication word. Every field it needs is read into a local before
  // the first store into the ring, so none is loaded twice. False, with
  // nothing written, when commit_one's path must run instead: the topic is
  // overwrite (frames built in scratch) or persistent (a checksum), the frame
  // does not fit the writer's segment (a roll; or larger than a segment), or
  // a word is pending (a claim that rolled the segment and was aborted leaves
  // the closing pad frame's word unpublished: it must go out with this frame).
  // Line-aligned appends: the frame runs to its line's end, and the word
  // after it was usually zeroed by the previous append (preclear_next_line),
  // which then zeroes the next line's first word after (B).
  RINGBUS_ALWAYS_INLINE bool append_direct(std::size_t frame_bytes, std::uint32_t length, const std::byte* value,
                                           std::size_t value_bytes, std::int64_t ts, std::uint64_t& offset) noexcept {
    const std::uint64_t pos = writer_.pos;
    // (frame_bytes, not length: a value of 4 GiB or more wraps length, a u32.
    // frame_bytes is 8-aligned, so its line end is length's.)
    const std::uint64_t end = pos + append_frame_bytes(frame_bytes);
    if (RINGBUS_UNLIKELY(overwrite_ || store_ != nullptr || end > writer_.segment_end || writer_.has_pending)) {
      return false;
    }
    std::byte* const ring = ring_;
    const std::uint64_t mask = mask_;
    const std::uint64_t first = writer_.next_offset;
    const std::uint64_t lap = lap_bits(pos);
    std::byte* const frame = ring + (pos & mask);
    const std::uint64_t word0 = write_header(frame, length, frame_flags::packed | append_flags(), 1, first, ts) | lap;
    put_value_padded(frame + frame_header_bytes, value, value_bytes);
    if (end != writer_.cleared) clear_word_after(end);
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(frame))
        .store(word0, std::memory_order_release); // (B) pairs with (C)
    writer_.pos = end;
    writer_.next_offset = first + 1;
    publish_tail();
    if (line_appends_) preclear_next_line(end);
    offset = first;
    return true;
  }

  // Line-aligned appends, after a frame that ends at `end` was published:
  // zeroes the word a one-line frame starting at `end` would end at, so that
  // the next append's publication store does not wait in the store buffer
  // behind the transfer of that line (stores leave it in order). Stored after
  // (B), it still reaches readers before the next frame's (B). No reader is
  // past `end`, and the writer owns its segment up to segment_end.
  RINGBUS_ALWAYS_INLINE void preclear_next_line(std::uint64_t end) noexcept {
    const std::uint64_t next = end + frame_line_bytes;
    if (next >= writer_.segment_end) return; // a segment start needs no zero (clear_word_after)
    std::memset(ring_at(next), 0, 8);
    writer_.cleared = next;
  }

  // Makes every accepted frame visible with one store.
  RINGBUS_ALWAYS_INLINE void publish() noexcept {
    if (hold_word0_) {
      if (!writer_.has_pending) return;
      clear_word_after(writer_.pos);
      // On disk too, this word is the batch's commit point: recovery reads no
      // frame of a batch whose first word never reached the file.
      std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(ring_at(writer_.published)))
          .store(writer_.pending_word0, std::memory_order_release); // (B) pairs with (C)
      writer_.has_pending = false;
    }
    publish_tail();
  }

  // The word after the last frame reads as "nothing here" until the next frame
  // is published (old payload bytes there must never pass for a header). A
  // segment start needs none: it is a frame boundary in every lap, so it holds
  // last lap's header, whose lap tag is wrong.
  RINGBUS_ALWAYS_INLINE void clear_word_after(std::uint64_t end) noexcept {
    if ((end & (segment_bytes_ - 1)) == 0) return;
    if (overwrite_) {
      std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(ring_at(end)))
          .store(0, std::memory_order_release); // (E') a lapped reader may be copying here
    } else {
      std::memset(ring_at(end), 0, 8);
    }
  }

  // The end offset and the tail, for lag(), seek_to_end, overwrite readers and sleepers.
  RINGBUS_ALWAYS_INLINE void publish_tail() noexcept {
    writer_.published = writer_.pos;
    published_.end_offset.store(writer_.next_offset, std::memory_order_release); // pairs with end_offset()
    if (!blocking_) {
      published_.tail.store(writer_.pos, std::memory_order_release); // (B) pairs with (C)
    } else {
      published_.tail.store(writer_.pos, std::memory_order_seq_cst);       // (B') pairs with sleeper's tail load
      if (sleepers_.load(std::memory_order_seq_cst) != 0) wake_sleepers(); // (B') pairs with the fetch_add
    }
  }

  // Where the writer stands, to forget a refused batch (all or nothing).
  struct WriterMark {
    std::uint64_t pos, next_offset, segment_end, pending_word0;
    bool has_pending;
  };
  [[nodiscard]] WriterMark mark() const noexcept {
    return {writer_.pos, writer_.next_offset, writer_.segment_end, writer_.pending_word0, writer_.has_pending};
  }
  // Frames written past the mark were never published; the next publish
  // zeroes the word after its own last frame, so none of them is reachable.
  // Except at a segment start, which clear_word_after leaves alone (last
  // lap's header is there): a batch that rolled into a segment wrote a
  // publication word of this lap at its start, and a later frame ending
  // exactly at that segment's start would lead readers to it. Those words
  // are zeroed (nothing past the mark is published, so no reader is there).
  // Persistent topics remove the segment files the batch began instead.
  void rollback(const WriterMark& m) noexcept {
    if (writer_.segment_end != m.segment_end) {
      if (store_ != nullptr) {
        abandon_segments_from(m.segment_end);
      } else if (hold_word0_) {
        for (std::uint64_t s = m.segment_end; s < writer_.segment_end; s += segment_bytes_) {
          std::memset(ring_at(s), 0, 8);
        }
      }
    }
    writer_.pos = m.pos;
    writer_.next_offset = m.next_offset;
    writer_.segment_end = m.segment_end;
    writer_.cleared = 0; // the refused frames may have written over it
    writer_.pending_word0 = m.pending_word0;
    writer_.has_pending = m.has_pending;
  }

  // --- reader side -----------------------------------------------------------
  [[nodiscard]] std::uint64_t tail_acquire() const noexcept {
    return published_.tail.load(std::memory_order_acquire); // (C) pairs with (B)
  }
  // True, with word0, when a frame of this lap is published at ring position
  // p: the block reader's test (C), which pairs with (B). At a slot's start in
  // a persistent topic the tail is read first (see "persistent topics" above).
  RINGBUS_ALWAYS_INLINE bool published_word0(std::uint64_t p, std::uint64_t& word0) const noexcept {
    if (RINGBUS_UNLIKELY((p & (segment_bytes_ - 1)) == 0) && store_ != nullptr && tail_acquire() <= p) return false;
    word0 = load_word_acquire(ring_at(p)); // (C) pairs with (B)
    return word0_type(word0) != frame_type::none && word0_lap_bits(word0) == lap_bits(p);
  }
  [[nodiscard]] std::uint64_t tail_for_sleeper() const noexcept {
    return published_.tail.load(std::memory_order_seq_cst); // pairs with (B') in publish
  }
  [[nodiscard]] std::uint64_t head_acquire() const noexcept {
    return head_.load(std::memory_order_acquire); // (F) pairs with (E)
  }
  [[nodiscard]] std::uint64_t end_offset() const noexcept {
    return published_.end_offset.load(std::memory_order_acquire); // pairs with publish()
  }

  // The head and the offset of its first record, taken consistently (the
  // seqlock readers' side: acquire loads, then the sequence reread).
  void read_head(std::uint64_t& pos, std::uint64_t& offset) const noexcept;

  // Claims a reader slot and registers it at the current head (R). Returns the
  // slot index or -1 when all slots are taken.
  int register_reader() noexcept;
  void unregister_reader(int slot) noexcept;
  ReaderSlot& slot(int index) noexcept { return slots_[index]; }
  // Moves an active slot back to the current head with the (R) protocol, so
  // that everything from the head on stays readable. Returns the head and the
  // offset of its first record.
  void protect_from_head(int slot, std::uint64_t& pos, std::uint64_t& offset) noexcept;

  // Finds where to scan from to reach offset `target`: the last published
  // segment at or after `from` (a segment start >= head) whose first offset
  // <= target. Reads frame headers with acquire loads and validates them
  // against the head (overwrite topics). Sets segment and its first offset
  // (first = target when nothing is published there yet); false when the
  // head passed `from` meanwhile (the caller retries from the new head).
  bool segment_for_offset(std::uint64_t target, std::uint64_t from, std::uint64_t& segment,
                          std::uint64_t& first) const noexcept;

  // seek_to_time, in-memory topics: like segment_for_offset, the last
  // published segment at or after `from` whose first record's timestamp is
  // < t (or the first one), by a binary search on the segments' first frames;
  // first: its first offset (left as the caller set it when nothing is
  // published at from).
  bool segment_for_time(std::int64_t t, std::uint64_t from, std::uint64_t& segment,
                        std::uint64_t& first) const noexcept;
  // From the frame at pos (first offset `first`) up to tail, the offset of the
  // first record whose timestamp >= t; the offset at tail when none. Reads
  // frames with acquire loads; overwrite topics decode a general-form frame
  // from a copy in scratch (segment_bytes(), 8-aligned), and give false when
  // the head passed pos meanwhile (the caller retries).
  bool offset_at_time(std::int64_t t, std::uint64_t pos, std::uint64_t first, std::uint64_t tail, std::byte* scratch,
                      std::uint64_t& offset) const noexcept;

  // Blocking wait support.
  std::atomic<std::uint32_t>& sleepers() noexcept { return sleepers_; }
  void wake_sleepers() noexcept;

  // Word copies that are data-race free against a concurrent overwrite
  // (overwrite policy): release stores by the producer, acquire loads by readers.
  static void copy_release(std::byte* dst, const std::byte* src, std::size_t bytes) noexcept {
    for (std::size_t i = 0; i < bytes; i += 8) {
      std::uint64_t word;
      std::memcpy(&word, src + i, 8);
      std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(dst + i))
          .store(word, std::memory_order_release); // (E') pairs with copy_acquire
    }
  }
  static void copy_acquire(std::byte* dst, const std::byte* src, std::size_t bytes) noexcept {
    for (std::size_t i = 0; i < bytes; i += 8) {
      const std::uint64_t word =
          std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(const_cast<std::byte*>(src + i)))
              .load(std::memory_order_acquire); // pairs with copy_release
      std::memcpy(dst + i, &word, 8);
    }
  }
  static std::uint64_t load_word_acquire(const std::byte* p) noexcept {
    return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(const_cast<std::byte*>(p)))
        .load(std::memory_order_acquire);
  }

 private:
  // The bytes a per-record frame of `length` takes at the writer's position.
  [[nodiscard]] std::size_t append_frame_bytes(std::size_t length) const noexcept {
    if (!line_appends_) return align_up(length, frame_alignment);
    return align_up(writer_.pos + length, frame_line_bytes) - writer_.pos;
  }
  // Likewise for a batch frame (reserve_batch).
  [[nodiscard]] std::size_t batch_frame_bytes(std::size_t length) const noexcept {
    return batch_frame_bytes_at(writer_.pos, length);
  }
  // The values of value_bytes a batch frame at `at` holds when it ends on
  // the last 128-byte boundary at or before `most` with no padding; 0 when
  // that frame would be under batch_pair_min_bytes or the bytes there are
  // not a whole number of values (pair_filling_count).
  [[nodiscard]] static std::size_t values_to_pair(std::uint64_t at, std::uint64_t most,
                                                  std::size_t value_bytes) noexcept {
    const std::uint64_t end = most & ~(frame_pair_bytes - 1);
    if (end < at + batch_pair_min_bytes) return 0;
    const std::uint64_t bytes = end - at - frame_header_bytes;
    return bytes % value_bytes == 0 ? static_cast<std::size_t>(bytes / value_bytes) : 0;
  }
  bool roll(bool wait, Errc& err) noexcept;
  bool roll_files(std::uint64_t next_start, Errc& err) noexcept;
  void abandon_segments_from(std::uint64_t start) noexcept;
  // Block policy: waits until every reader is at or past need, then moves the head there.
  bool reclaim(std::uint64_t need, bool wait, Errc& err) noexcept;
  void store_head(std::uint64_t pos, std::uint64_t offset) noexcept;
  std::uint64_t offset_at_segment(std::uint64_t pos) const noexcept;
  std::uint64_t min_reader_position() const noexcept;

  void restore(const LogRestore& r) noexcept;

  HeapString name_;
  TopicOptions options_;
  std::unique_ptr<TopicStore> store_; // persistent topics only
  RingMapping mapping_;
  std::byte* ring_;
  std::uint64_t capacity_;
  std::uint64_t mask_;
  std::uint64_t segment_bytes_;
  unsigned capacity_shift_;
  bool overwrite_;
  bool blocking_;
  bool line_appends_; // TopicOptions::line_aligned_appends (in-memory block topics)
  bool pair_batches_; // long batch frames end on a line pair: in-memory block topics (see reserve_batch)
  ReaderSlot* slots_;
  std::size_t slot_count_;

  alignas(cache_line) PublishedCursor published_;
  // (H)/(E): oldest byte position still held, and the offset of its first
  // record. Written by the producer on roll under a seqlock (head_seq_ odd
  // while writing), so a reader can take the pair consistently: see read_head.
  alignas(cache_line) std::atomic<std::uint64_t> head_{0};
  std::atomic<std::uint64_t> head_offset_{0};
  std::atomic<std::uint64_t> head_seq_{0};
  // Consumers asleep in a blocking wait on this topic.
  alignas(cache_line) std::atomic<std::uint32_t> sleepers_{0};
  // Slots ever used: the producer scans [0, slots_used).
  alignas(cache_line) std::atomic<std::uint32_t> slots_used_{0};
  // Single-writer token: 1 while a producer is open. CAS 0->1 acquire, store 0 release.
  std::atomic<std::uint32_t> writer_open_{0};
  std::atomic<bool> closed_{false};
  std::atomic<bool> refusing_{false}; // closed_ or the store failed: appends are refused
  bool sync_durability_ = false;
  bool follower_ = false;
  // The first frame's word of each batch is held back until publish() (block
  // policy, and every persistent topic: it is the batch's commit point on
  // disk). In-memory overwrite topics write it with the frame (their readers
  // go by the tail).
  bool hold_word0_ = true;
  std::atomic<bool> following_{false}; // a consumer is inside follow()
  // Followers: follow()'s finding (FollowDamage). The reason is stored
  // last with release and read first with acquire; follow() alone writes.
  std::atomic<Damage> damage_{Damage::none};
  std::atomic<std::uint64_t> damage_word_{0};
  std::atomic<std::uint64_t> damage_position_{0};
  std::atomic<std::uint64_t> damage_offset_{0};
  std::uint64_t synced_ = 0;              // Durability::sync: published bytes below this were msync'ed (writer only)
  std::uint64_t stats_base_offset_ = 0;   // set before the log is shared (restore)
  std::uint64_t stats_base_position_ = 0; // likewise
  LogCounters counters_;
  Status roll_error_; // writer only
  alignas(cache_line) WriterState writer_;
};

} // namespace ringbus::detail
