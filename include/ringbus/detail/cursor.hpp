// A consumer's read position in one topic, and the inline walk that turns the
// published frames past it into a Chunk of zero-copy records.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ringbus/detail/config.hpp"
#include "ringbus/detail/frame_layout.hpp"
#include "ringbus/detail/gate.hpp"
#include "ringbus/detail/log.hpp"
#include "ringbus/records.hpp"

namespace ringbus::detail {

struct Cursor {
  Log* log = nullptr;
  int slot = -1;
  std::uint64_t pos = 0;        // frame the next record is in
  std::uint32_t skip = 0;       // records of that frame already delivered
  std::uint64_t offset = 0;     // next offset to deliver (Kafka's position)
  std::uint64_t skip_until = 0; // after a seek: records below are not delivered
  std::uint64_t released = 0;   // last value stored to the slot's position
  // overwrite policy: published frames are copied here, validated, then read.
  std::byte* staging = nullptr;
  std::uint64_t stage_begin = 0;
  std::uint64_t stage_end = 0;
  std::uint64_t lost = 0; // records lost to lapping, in total
  // Pipelines (see gate.hpp). publish_gate: this consumer's gate for the topic
  // (named consumers only). gates/gate_count: the upstreams it runs after in
  // this topic; gate_limit: their minimum as last read (frames at or past it
  // are not taken until a reread moves it).
  Gate* publish_gate = nullptr;
  Gate* const* gates = nullptr;
  std::uint32_t gate_count = 0;
  std::uint64_t gate_limit = 0; // 0: read the gates on the first take
  // take_one_in_place, reading a general-form frame one record at a time:
  // where the record with offset one_offset starts, so that each record is
  // decoded once (not after skipping all before it). An offset names one
  // record for good, and its frame never changes while the cursor holds it.
  std::uint64_t one_offset = UINT64_MAX;
  const std::byte* one_at = nullptr;
};

// (Q) acquire: rereads the upstreams' gates; pairs with (P) in consumer.cpp.
// Called only when the walk reaches the cached limit: once per batch.
RINGBUS_ALWAYS_INLINE std::uint64_t read_gates(const Cursor& c) noexcept {
  std::uint64_t limit = UINT64_MAX;
  for (std::uint32_t i = 0; i < c.gate_count; ++i) {
    limit = std::min(limit, c.gates[i]->passed.load(std::memory_order_acquire)); // (Q) pairs with (P)
  }
  return limit;
}

// Walks frames from c.pos through `at(pos)` addresses, adding up to `budget`
// records to chunk. Pads are skipped; records below c.skip_until are passed
// over. The walk stops at `limit`, and where `published` says no: for the
// ring (block policy) at the first frame whose publication word is not the
// one of this lap, read by (C) an acquire load that pairs with (B) in Log::publish.
template <class AddressOf, class Published>
RINGBUS_ALWAYS_INLINE std::uint64_t walk_frames(Cursor& c, std::uint64_t limit, std::uint64_t budget, Chunk& chunk,
                                                AddressOf at, Published published) noexcept {
  std::uint64_t p = c.pos;
  std::uint32_t skip = c.skip;
  std::uint64_t taken = 0;
  while (p < limit && taken < budget) {
    const std::byte* f = at(p);
    std::uint64_t word0;
    if (!published(p, f, word0)) break;
    const std::uint32_t length = word0_length(word0);
    if (RINGBUS_UNLIKELY(word0_type(word0) != frame_type::data)) {
      if (length < pad_frame_min_bytes) break; // not a frame (a copied zero word): stop, never loop
      p += length;                             // pad frame: runs to the segment end
      skip = 0;
      continue;
    }
    std::uint32_t count;
    std::uint64_t base;
    std::memcpy(&count, f + offsetof(FrameHeader, record_count), sizeof count);
    std::memcpy(&base, f + offsetof(FrameHeader, base_offset), sizeof base);
    const std::uint64_t next = frame_end(p, word0);
    if (RINGBUS_UNLIKELY(base + skip < c.skip_until)) {
      if (base + count <= c.skip_until) {
        p = next;
        skip = 0;
        continue;
      }
      skip = static_cast<std::uint32_t>(c.skip_until - base);
    }
    if (chunk.count == 0 && taken == 0) {
      chunk.frame = f;
      chunk.first_skip = skip;
    }
    const std::uint64_t n = std::min<std::uint64_t>(count - skip, budget - taken);
    taken += n;
    c.offset = base + skip + n;
    if (skip + n == count) {
      p = next;
      skip = 0;
    } else {
      skip += static_cast<std::uint32_t>(n);
    }
  }
  c.pos = p;
  c.skip = skip;
  chunk.count += taken;
  return taken;
}

// Block policy: frames are read in place in the ring. The reader never reads
// the shared tail line: a frame is there when its publication word says so.
// `limit`: no frame at or past it is taken (a pipeline gate, a group's claim).
RINGBUS_ALWAYS_INLINE std::uint64_t take_in_place(Cursor& c, std::uint64_t budget, Chunk& chunk,
                                                  std::uint64_t limit = UINT64_MAX) noexcept {
  Log& log = *c.log;
  chunk.wrap_begin = log.ring();
  chunk.wrap_end = log.ring() + log.capacity();
  return walk_frames(
      c, limit, budget, chunk, [&log](std::uint64_t p) { return log.ring_at(p); },
      [&log](std::uint64_t p, const std::byte*, std::uint64_t& word0) { return log.published_word0(p, word0); });
}

// Record `skip` of a packed frame at f (values of `size` bytes, the first
// record's offset `base`) into `out`.
RINGBUS_ALWAYS_INLINE void read_packed(const Log& log, const std::byte* f, std::uint64_t base, std::uint32_t skip,
                                       std::uint32_t size, Record& out) noexcept {
  out.topic = log.name();
  out.offset = base + skip;
  out.timestamp_ns = header_base_timestamp(f);
  out.key = ByteView();
  out.headers = HeadersView();
  out.value = ByteView(f + frame_header_bytes + std::size_t{skip} * size, size);
}

// Block policy, one record, decoded straight into `out` (Consumer::poll_one):
// the per-record append's frame read at once, else take_in_place for a
// budget of one and the record it took read where it lies; never a Records
// range for an iterator to decode again. False, with nothing taken, when no
// published record is at the cursor.
RINGBUS_ALWAYS_INLINE bool take_one_in_place(Cursor& c, Record& out) noexcept {
  // The per-record append's frame, where a reply or a tick is: at the
  // cursor's frame start, a packed frame of one record, past any seek target.
  // Read without the walk's loop (a third of poll_one's instructions).
  // Anything else, and a frame not yet published, goes the walk's way.
  if (RINGBUS_LIKELY(c.skip == 0)) {
    const Log& log = *c.log;
    std::uint64_t word0;
    if (!log.published_word0(c.pos, word0)) return false; // (C): as the walk's first look
    // The type first: a pad frame at the ring's end may be shorter than a
    // header, so its count and base are not there to read.
    if (RINGBUS_LIKELY(word0_type(word0) == frame_type::data && (word0_flags(word0) & frame_flags::packed) != 0)) {
      const std::byte* const f = log.ring_at(c.pos);
      const std::uint64_t base = header_base_offset(f);
      if (RINGBUS_LIKELY(header_record_count(f) == 1 && base >= c.skip_until)) {
        read_packed(log, f, base, 0, packed_value_bytes(word0_length(word0), 1), out);
        c.pos = frame_end(c.pos, word0);
        c.offset = base + 1;
        return true;
      }
    }
  }
  Chunk chunk;
  if (take_in_place(c, 1, chunk) == 0) return false;
  const std::byte* const f = chunk.frame; // published: take_in_place's (C) covers it
  std::uint64_t word0;
  std::memcpy(&word0, f, sizeof word0);
  const std::uint32_t length = word0_length(word0);
  const std::uint32_t count = header_record_count(f);
  const std::uint64_t base = header_base_offset(f);
  const std::uint32_t skip = chunk.first_skip;
  const std::byte* const body = f + frame_header_bytes;
  if (RINGBUS_LIKELY((word0_flags(word0) & frame_flags::packed) != 0)) {
    read_packed(*c.log, f, base, skip, packed_value_bytes(length, count), out);
    return true;
  }
  const std::int64_t base_ts = header_base_timestamp(f);
  out.topic = c.log->name();
  out.offset = base + skip;
  const std::byte* const end = f + length;
  const std::byte* at = body;
  if (skip != 0 && c.one_offset == out.offset) {
    at = c.one_at;
  } else {
    for (std::uint32_t i = 0; i < skip && at != nullptr; ++i) at = skip_record(at, end);
  }
  const std::byte* next = nullptr;
  if (RINGBUS_LIKELY(at != nullptr)) next = decode_record(at, end, base_ts, out);
  if (RINGBUS_UNLIKELY(next == nullptr)) { // malformed: an empty record, never a read past the frame
    out.timestamp_ns = base_ts;
    out.key = ByteView();
    out.value = ByteView();
    out.headers = HeadersView();
  }
  c.one_offset = next != nullptr && skip + 1 < count ? out.offset + 1 : UINT64_MAX;
  c.one_at = next;
  return true;
}

// Overwrite policy: copies the next published run of frames into staging and
// validates it (see refill in cursor.cpp); may report a gap.
bool refill(Cursor& c, Gap& gap) noexcept;

// A staged run ends at a segment's end, so a run can be a pad frame alone
// (a frame that did not fit the rest of the segment went to the next one):
// then the next run is staged at once, and a poll with records published
// past the pad does not come back empty.
RINGBUS_ALWAYS_INLINE std::uint64_t take_copied(Cursor& c, std::uint64_t budget, Chunk& chunk, bool may_refill,
                                                Gap& gap, std::uint64_t limit = UINT64_MAX) noexcept {
  for (;;) {
    if (c.pos >= limit) return 0;
    if (c.pos >= c.stage_end) {
      if (!may_refill || !refill(c, gap)) return 0;
    }
    chunk.wrap_begin = c.staging;
    chunk.wrap_end = nullptr; // a staged run never wraps
    const std::byte* base = c.staging;
    const std::uint64_t begin = c.stage_begin;
    const std::uint64_t taken = walk_frames(
        c, std::min(c.stage_end, limit), budget, chunk, [base, begin](std::uint64_t p) { return base + (p - begin); },
        [](std::uint64_t, const std::byte* f, std::uint64_t& word0) {
          std::memcpy(&word0, f, sizeof word0); // a validated private copy
          return true;
        });
    // Nothing taken and the run passed: padding only. No view points into
    // the staging yet (the chunk is empty), so it may be refilled.
    if (taken != 0 || chunk.count != 0 || c.pos < c.stage_end || !may_refill) return taken;
  }
}

} // namespace ringbus::detail
