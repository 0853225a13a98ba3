// SharedProducer: senders -> moodycamel::ConcurrentQueue (one ProducerToken
// per sender slot) -> one sequencer -> the topic's Producer. The protocol and
// its memory orders are drawn at the top of include/ringbus/shared_producer.hpp;
// the labels (K1..K5, Q1/Q2, T1/T2, S1, H1..H4, U1/U2, P1/P2) are used below.
#include "ringbus/shared_producer.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <mutex>
#include <new>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

// Debian installs concurrentqueue/concurrentqueue.h, upstream
// concurrentqueue/moodycamel/concurrentqueue.h (CMakeLists.txt finds either).
#if __has_include(<concurrentqueue/moodycamel/concurrentqueue.h>)
#include <concurrentqueue/moodycamel/concurrentqueue.h>
#else
#include <concurrentqueue/concurrentqueue.h>
#endif

#include "detail/bus_core.hpp"
#include "detail/topic_store.hpp"
#include "platform/platform.hpp"
#include "ringbus/bus.hpp"
#include "ringbus/detail/config.hpp"
#include "ringbus/detail/frame.hpp"
#include "ringbus/detail/frame_layout.hpp"
#include "ringbus/detail/log.hpp"
#include "ringbus/detail/memory.hpp"
#include "ringbus/detail/wait.hpp"
#include "ringbus/producer.hpp"

namespace ringbus {

namespace detail {

// --- queue slots ("cells") -----------------------------------------------------------
//
// Head cell of a record (16 bytes):
//
//   byte  0       4      5      6        8             12            16
//         +-------+------+------+--------+-------------+-------------+
//         | value | kind | 0    | header | inline: the value (<= 8 B)|
//         | bytes | u8   |      | count  +-------------+-------------+
//         | u32   |      |      | u16    | key_bytes   | body_cells  |  (kind general)
//         +-------+------+------+--------+-------------+-------------+
//
// A general record's body follows in body_cells cells, as one byte stream:
//   i64 timestamp | key | value | per header: u32 name bytes, u32 value bytes, name, value
// padded with zeros to a whole cell.
//
// A packed run (send_values: `count` values of `value bytes` each, no key,
// no headers) has the same head with kind packed, count in bytes 8..11 and
// body_cells in 12..15; its body is the values back to back. The sequencer
// appends it with one append_values (the log's packed form), so a run costs
// the sequencer no per-record work but the offset it reports.
struct Cell {
  alignas(8) std::byte bytes[16];
};
static_assert(sizeof(Cell) == 16 && std::is_trivially_copyable_v<Cell>);

inline constexpr std::size_t cell_bytes = sizeof(Cell);
inline constexpr std::size_t head_value_bytes_at = 0;
inline constexpr std::size_t head_kind_at = 4;
inline constexpr std::size_t head_header_count_at = 6;
inline constexpr std::size_t head_inline_value_at = 8;
inline constexpr std::size_t head_key_bytes_at = 8;
inline constexpr std::size_t head_body_cells_at = 12;
inline constexpr std::size_t inline_value_max = 8;
// A packed run carries at most this many bytes of values (one value more
// when a single value is larger): 512 8-byte values per run.
inline constexpr std::size_t packed_run_bytes = 4096;
// Cells of the largest packed run: its head and packed_run_bytes of values.
inline constexpr std::size_t packed_run_cells = 1 + (packed_run_bytes + cell_bytes - 1) / cell_bytes;
// A slot's staging cells, rounded up to whole cache lines (each slot's on
// lines of its own: two senders never write one line).
inline constexpr std::size_t cells_per_line = 64 / sizeof(Cell);
inline constexpr std::size_t staging_stride = (packed_run_cells + cells_per_line - 1) / cells_per_line * cells_per_line;
enum : std::uint8_t { kind_inline = 1, kind_general = 2, kind_packed = 3 };
inline constexpr std::size_t head_count_at = 8;

// Bytes a record counts against max_record_bytes.
inline std::size_t record_bytes(const Message& m) noexcept {
  std::size_t n = m.key.size() + m.value.size();
  for (const Header& h : m.headers) n += 8 + h.name.size() + h.value.size();
  return n;
}
inline bool inline_form(const Message& m) noexcept {
  return m.key.empty() && m.headers.empty() && m.timestamp_ns == timestamp_now && m.value.size() <= inline_value_max;
}
inline std::size_t body_cells_for(std::size_t record_bytes) noexcept {
  return (8 + record_bytes + cell_bytes - 1) / cell_bytes;
}
inline std::size_t cells_for(const Message& m) noexcept {
  return inline_form(m) ? 1 : 1 + body_cells_for(record_bytes(m));
}
// Upper bound of a record's frame body bytes in the general form plus the
// 9 bytes append_batch adds for a timestamp delta (Producer::append_many).
inline std::size_t worst_encoded_bytes(std::size_t record_bytes) noexcept {
  return record_bytes + record_bytes / 4 + 48;
}

inline Cell inline_cell(const void* value, std::size_t size) noexcept {
  Cell c{};
  const auto n = static_cast<std::uint32_t>(size);
  std::memcpy(c.bytes + head_value_bytes_at, &n, 4);
  c.bytes[head_kind_at] = std::byte{kind_inline};
  if (size != 0) std::memcpy(c.bytes + head_inline_value_at, value, size);
  return c;
}

// The cells of a run of records, one at a time: moodycamel's enqueue_bulk
// pulls them through CellIterator, so a batch needs no staging buffer.
// Source: Message operator()(std::size_t i) const.
template <class Source>
class CellStream {
 public:
  CellStream(Source source, std::size_t count) noexcept : source_(source), count_(count) {}

  Cell next() noexcept {
    if (body_left_ == 0) return next_head();
    Cell c{};
    std::size_t at = 0;
    while (at < cell_bytes && left_ != 0) {
      const std::size_t take = std::min(cell_bytes - at, left_);
      std::memcpy(c.bytes + at, cur_, take);
      at += take;
      cur_ += take;
      left_ -= take;
      if (left_ == 0) load_piece(piece_ + 1);
    }
    if (--body_left_ == 0) ++index_;
    return c;
  }

 private:
  Cell next_head() noexcept {
    if (index_ >= count_) return Cell{}; // past the end: enqueue_bulk's last ++ reads one more
    m_ = source_(index_);
    if (inline_form(m_)) {
      ++index_;
      return inline_cell(m_.value.data(), m_.value.size());
    }
    Cell c{};
    const auto value_bytes = static_cast<std::uint32_t>(m_.value.size());
    const auto key_bytes = static_cast<std::uint32_t>(m_.key.size());
    const auto header_count = static_cast<std::uint16_t>(m_.headers.size());
    const auto body_cells = static_cast<std::uint32_t>(body_cells_for(record_bytes(m_)));
    std::memcpy(c.bytes + head_value_bytes_at, &value_bytes, 4);
    c.bytes[head_kind_at] = std::byte{kind_general};
    std::memcpy(c.bytes + head_header_count_at, &header_count, 2);
    std::memcpy(c.bytes + head_key_bytes_at, &key_bytes, 4);
    std::memcpy(c.bytes + head_body_cells_at, &body_cells, 4);
    body_left_ = body_cells;
    timestamp_ = m_.timestamp_ns;
    pieces_ = 3 + 4 * m_.headers.size();
    load_piece(0);
    return c;
  }

  // Piece p of the body stream: timestamp, key, value, then four per header.
  // Skips empty pieces; left_ == 0 at the end.
  void load_piece(std::size_t p) noexcept {
    for (piece_ = p; piece_ < pieces_; ++piece_) {
      ByteView v;
      if (piece_ == 0) {
        v = ByteView(&timestamp_, 8);
      } else if (piece_ == 1) {
        v = m_.key;
      } else if (piece_ == 2) {
        v = m_.value;
      } else {
        const Header& h = m_.headers[(piece_ - 3) / 4];
        switch ((piece_ - 3) % 4) {
          case 0:
            length_ = static_cast<std::uint32_t>(h.name.size());
            v = ByteView(&length_, 4);
            break;
          case 1:
            length_ = static_cast<std::uint32_t>(h.value.size());
            v = ByteView(&length_, 4);
            break;
          case 2: v = h.name; break;
          default: v = h.value; break;
        }
      }
      if (!v.empty()) {
        cur_ = v.data();
        left_ = v.size();
        return;
      }
    }
    left_ = 0;
  }

  Source source_;
  std::size_t count_;
  std::size_t index_ = 0;
  Message m_{};
  std::size_t body_left_ = 0; // cells of the current body still to produce
  std::size_t piece_ = 0;
  std::size_t pieces_ = 0;
  const std::byte* cur_ = nullptr;
  std::size_t left_ = 0;
  std::int64_t timestamp_ = 0;
  std::uint32_t length_ = 0;
};

// Values cut into packed runs of at most per_run values: a head cell per run,
// then the run's bytes, 16 at a time.
class PackedRunStream {
 public:
  PackedRunStream(const void* data, std::size_t value_bytes, std::size_t count, std::size_t per_run) noexcept
      : p_(static_cast<const std::byte*>(data)), value_bytes_(value_bytes), left_(count), per_run_(per_run) {}
  RINGBUS_ALWAYS_INLINE Cell next() noexcept {
    if (RINGBUS_LIKELY(body_left_ >= cell_bytes)) { // the common case: one fixed-size copy, no zeroing
      Cell full;
      std::memcpy(full.bytes, p_, cell_bytes);
      p_ += cell_bytes;
      body_left_ -= cell_bytes;
      return full;
    }
    Cell c{};
    if (body_left_ != 0) {
      std::memcpy(c.bytes, p_, body_left_);
      p_ += body_left_;
      body_left_ = 0;
      return c;
    }
    if (left_ == 0) return c; // past the end: enqueue_bulk's last ++ reads one more
    const std::size_t k = std::min(left_, per_run_);
    left_ -= k;
    body_left_ = k * value_bytes_;
    return head_cell(value_bytes_, k);
  }
  // Writes one run of k values (k <= per_run) into out: its head cell, then
  // the values back to back, the last cell's tail zeroed. Returns the cells.
  static std::size_t write_run(Cell* out, const void* data, std::size_t value_bytes, std::size_t k) noexcept {
    const std::size_t body = k * value_bytes;
    const std::size_t body_cells = (body + cell_bytes - 1) / cell_bytes;
    out[0] = head_cell(value_bytes, k);
    if (body_cells != 0) {
      out[body_cells] = Cell{}; // the last cell's tail
      std::memcpy(out[1].bytes, data, body);
    }
    return 1 + body_cells;
  }
  // The head cell of a run of k values of value_bytes each.
  static Cell head_cell(std::size_t value_bytes, std::size_t k) noexcept {
    Cell c{};
    const auto bytes = static_cast<std::uint32_t>(value_bytes);
    const auto count = static_cast<std::uint32_t>(k);
    const auto body_cells = static_cast<std::uint32_t>((k * value_bytes + cell_bytes - 1) / cell_bytes);
    std::memcpy(c.bytes + head_value_bytes_at, &bytes, 4);
    c.bytes[head_kind_at] = std::byte{kind_packed};
    std::memcpy(c.bytes + head_count_at, &count, 4);
    std::memcpy(c.bytes + head_body_cells_at, &body_cells, 4);
    return c;
  }
  // Cells of `count` values in runs of per_run.
  static std::size_t cells_for(std::size_t value_bytes, std::size_t count, std::size_t per_run) noexcept {
    const std::size_t full = count / per_run;
    const std::size_t rest = count % per_run;
    const auto run_cells = [value_bytes](std::size_t k) { return 1 + (k * value_bytes + cell_bytes - 1) / cell_bytes; };
    return full * run_cells(per_run) + (rest != 0 ? run_cells(rest) : 0);
  }

 private:
  const std::byte* p_;
  std::size_t value_bytes_;
  std::size_t left_;
  std::size_t per_run_;
  std::size_t body_left_ = 0; // bytes of the current run still to produce
};

// The input iterator enqueue_bulk reads: `T(*it++)` once per cell. Its
// post-increment hands back the current cell in a proxy. Pulls one cell past
// the end (the streams give a blank one there).
template <class Stream>
class CellIterator {
 public:
  explicit CellIterator(Stream& stream) noexcept : stream_(&stream), current_(stream.next()) {}
  struct Proxy {
    Cell cell;
    Cell operator*() const noexcept { return cell; }
  };
  Cell operator*() const noexcept { return current_; }
  CellIterator& operator++() noexcept {
    current_ = stream_->next();
    return *this;
  }
  Proxy operator++(int) noexcept {
    Proxy p{current_};
    current_ = stream_->next();
    return p;
  }

 private:
  Stream* stream_;
  Cell current_;
};

// The queue's blocks and producers come from the library heap (mimalloc).
struct IngestQueueTraits : moodycamel::ConcurrentQueueDefaultTraits {
  // 256 cells = 4 KiB blocks. Explicit producers only: no implicit-producer hash.
  static constexpr std::size_t BLOCK_SIZE = 256;
  static constexpr std::size_t INITIAL_IMPLICIT_PRODUCER_HASH_SIZE = 0;
  static void* malloc(std::size_t bytes) noexcept {
    try {
      return heap_allocate(bytes);
    } catch (const std::bad_alloc&) {
      return nullptr; // moodycamel checks for nullptr
    }
  }
  static void free(void* p) noexcept { heap_free(p); }
};
using IngestQueue = moodycamel::ConcurrentQueue<Cell, IngestQueueTraits>;

// SenderSlot::state: free, open, or held for the thread that closed its
// last Sender (SenderSlot::holder) until the sequencer has taken the `end`
// cells that Sender left queued: held_state(end), end >= 1, so every held
// value is at least 2.
inline constexpr std::uint64_t sender_free = 0;
inline constexpr std::uint64_t sender_open = 1;
constexpr std::uint64_t held_state(std::uint64_t end_cells) noexcept { return end_cells << 1; }
constexpr bool is_held(std::uint64_t state) noexcept { return state > sender_open; }
constexpr std::uint64_t held_end(std::uint64_t state) noexcept { return state >> 1; }

// A number for the calling thread, unique in the process (a std::thread::id
// may be reused once its thread has ended): whom a held slot is kept for.
inline std::uint64_t this_thread_token() noexcept {
  static std::atomic<std::uint64_t> next{1};
  // relaxed: only the uniqueness of each fetch_add's value matters.
  thread_local const std::uint64_t token = next.fetch_add(1, std::memory_order_relaxed);
  return token;
}

// A stretch of one slot's records that got consecutive offsets: the record
// with ticket first_sequence got first_offset, the next one first_offset + 1,
// and so on up to the next entry's first_sequence (or the slot's sequenced
// count). Relaxed fields: written by the sequencer before the release store
// of the slot's run count (T1), read by the sender after its acquire (T2).
struct OffsetRun {
  std::atomic<std::uint64_t> first_sequence{0};
  std::atomic<std::uint64_t> first_offset{0};
};

struct SenderSlot {
  // Fixed at creation; read by both sides.
  alignas(cache_line) SharedCore* core = nullptr;
  moodycamel::ProducerToken* token = nullptr;
  Cell* staging = nullptr;          // send_values of one run: its cells are built here (the Sender's)
  OffsetRun* offset_runs = nullptr; // the slot's offset runs, by run number & offset_runs_mask
  std::uint64_t offset_runs_mask = 0;
  std::uint64_t window = 0; // offset_window(): tickets a sender can still resolve
  std::uint64_t quota = 0;  // cells outstanding at most (sender_queue_slots)

  // The open Sender's line; its plain fields are handed to the next Sender
  // of the slot through `state` (S1).
  alignas(cache_line) std::atomic<std::uint32_t> busy{0}; // (K1)/(K3) inside a send
  std::atomic<std::uint64_t> state{sender_free};          // (S1) free, open or held_state(end)
  std::atomic<std::uint64_t> holder{0};                   // (H2) whom a held slot is kept for (this_thread_token)
  std::uint64_t sent_records = 0;                         // tickets issued
  std::uint64_t sent_cells = 0;                           // cells enqueued
  std::uint64_t cached_drained = 0;                       // last drained_cells read (Q2)

  // Written by the sequencer.
  alignas(cache_line) std::atomic<std::uint64_t> drained_cells{0}; // (Q1)
  std::atomic<std::uint64_t> sequenced{0};                         // (T1) records with an offset
  std::atomic<std::uint64_t> offset_run_count{0};                  // (T1) offset runs written
  // Sequencer-private.
  std::uint64_t dequeued_cells = 0;
  std::uint64_t published = 0;           // records with an offset (sequenced's value)
  std::uint64_t offset_runs_written = 0; // offset_run_count's value
  std::uint64_t next_offset = 0;         // the offset the slot's last record got, plus one
};

template <class T>
using HeapVector = std::vector<T, HeapAllocator<T>>;

class SharedCore {
 public:
  SharedCore(Producer producer, Log* log, const SharedProducerOptions& options)
      : options_(options),
        topic_(log->name()),
        log_(log),
        producer_(std::move(producer)),
        quota_(options.sender_queue_slots),
        max_record_cells_(longest_cells(options.max_record_bytes)),
        queue_(options.max_senders * blocks_per_sender(options.sender_queue_slots) * IngestQueueTraits::BLOCK_SIZE),
        slots_(options.max_senders),
        window_(std::bit_ceil(options.sender_queue_slots)),
        offset_runs_(options.max_senders * 2 * window_),
        staging_(options.max_senders * staging_stride + cells_per_line),
        cells_(options.sequencer_batch_slots + max_record_cells_),
        messages_(options.sequencer_batch_slots + max_record_cells_),
        packed_(options.sequencer_batch_slots + max_record_cells_),
        headers_(2 * (options.sequencer_batch_slots + max_record_cells_)),
        runs_(2 * options.max_senders) {
    tokens_.reserve(options.max_senders);
    for (std::size_t i = 0; i < options.max_senders; ++i) {
      tokens_.emplace_back(queue_);
      if (!tokens_.back().valid()) throw std::bad_alloc();
    }
    wall_clock_ = log->options().timestamps == TimestampSource::wall_clock;
    batch_limit_ = producer_.batch_limit_bytes();
    for (std::size_t i = 0; i < options.max_senders; ++i) {
      SenderSlot& s = slots_[i];
      s.core = this;
      s.token = &tokens_[i];
      s.staging = first_staging_line() + i * staging_stride;
      s.offset_runs = offset_runs_.data() + i * 2 * window_;
      s.offset_runs_mask = 2 * window_ - 1;
      s.window = window_;
      s.quota = quota_;
    }
  }
  SharedCore(const SharedCore&) = delete;
  SharedCore& operator=(const SharedCore&) = delete;
  ~SharedCore() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }

  // Each slot may hold quota cells; in the worst case they straddle
  // ceil(quota / B) + 1 blocks, and the producer keeps one more it has not
  // yet found empty.
  static std::size_t blocks_per_sender(std::size_t quota) noexcept {
    return (quota + IngestQueueTraits::BLOCK_SIZE - 1) / IngestQueueTraits::BLOCK_SIZE + 2;
  }

  void start_thread() {
    thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
  }

  // --- what senders and handles use ------------------------------------------------
  const SharedProducerOptions& options() const noexcept { return options_; }
  std::string_view topic() const noexcept { return {topic_.data(), topic_.size()}; }
  Log* log() const noexcept { return log_; }
  IngestQueue& queue() noexcept { return queue_; }
  std::size_t max_record_cells() const noexcept { return max_record_cells_; }
  // Values of value_bytes per packed run: at most packed_run_bytes of them
  // and the producer's batch limit (at least one value, which a record may
  // be: up to max_record_bytes).
  std::size_t values_per_run(std::size_t value_bytes) const noexcept {
    if (value_bytes == 0) return std::size_t{1} << 20;
    return std::max<std::size_t>(1, std::min(packed_run_bytes, batch_limit_) / value_bytes);
  }
  // The most cells one record or packed run takes: the room the sequencer's
  // buffer keeps for a record cut by a drain.
  static std::size_t longest_cells(std::size_t max_record_bytes) noexcept {
    return std::max(1 + body_cells_for(max_record_bytes), packed_run_cells);
  }
  SenderSlot& slot(std::size_t i) noexcept { return slots_[i]; }
  // The first cache-line boundary in staging_ (one line of room for the
  // shift; the data is 8-aligned, so the cells there are too).
  Cell* first_staging_line() noexcept {
    const auto at = reinterpret_cast<std::uintptr_t>(staging_.data());
    return reinterpret_cast<Cell*>(reinterpret_cast<std::byte*>(staging_.data()) + ((0 - at) & 63));
  }

  // (K2) seq_cst: the Dekker pair with (K4); see the header.
  bool closing() const noexcept { return closing_.load(std::memory_order_seq_cst); }
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); } // pairs with close()'s exchange
  // (T3) acquire: pairs with the release in stop_sequencing(), which follows
  // the sequencer's last (T1); a sequenced count read after this one is final.
  bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }
  std::uint64_t sequenced_total() const noexcept {
    return sequenced_total_.load(std::memory_order_relaxed); // a statistic; no data is read on its strength
  }

  // What keeps accepted records out of the log: the failure that stopped
  // the sequencer (fail()), else the append error it retries (set by a
  // round that met one, cleared by the next round that does not); ok when
  // neither. Cold: read by a send that finds no room, by wait_offset's
  // timeout and by append_error().
  bool retrying() const noexcept { return retrying_.load(std::memory_order_acquire); } // pairs with set_retry_error
  Status retry_error() const {
    if (failed_.load(std::memory_order_acquire)) return failure_; // pairs with fail(): failure_ is set
    std::lock_guard lock(retry_mutex_);
    return retry_error_;
  }
  // A send that found this sender's queue slots full while the sequencer
  // retries: the error, or ok when it cleared meanwhile (room is coming).
  Status no_room_error(std::string_view what) const noexcept {
    try {
      const Status why = retry_error();
      if (why.ok()) return why;
      return Status(why.code(), std::string(what) + ": this record was not accepted: the sender's queue slots are " +
                                    "full while the sequencer retries an append (" + std::string(why.message()) + ")");
    } catch (const std::bad_alloc&) {
      return Status(Errc::out_of_memory);
    }
  }

  // Each thread's order across the Senders it uses one after another.
  //
  // A slot's sub-queue is FIFO, and the sequencer appends in the order it
  // takes cells (the takes of a gather in turn; a gather only once the last
  // one's records are appended). So a thread's records keep their order if
  // its next Sender either
  //   (a) enqueues into the slot of its last one, behind that one's cells, or
  //   (b) enqueues only after the take of the last cell its last Sender
  //       enqueued happened (happens-before): the take that finds the new
  //       cells cannot come before that one (it would happen before its own
  //       enqueue), so it comes after, and so does their append.
  // release_slot() and take_slot() make one of them hold without waiting
  // for the sequencer (a caller-mode thread that pumps for itself cannot
  // deadlock, and closing a Sender never blocks):
  //   - A closing Sender whose cells are all taken ((H1) sees drained_cells
  //     at sent_cells) frees its slot: (b) holds through H1's acquire and
  //     what follows it on this thread.
  //   - Otherwise the slot is held for the closing thread: holder = its
  //     token (H2), state = held_state(sent_cells) (S1). That thread's next
  //     sender() looks for a slot held for it first and takes it: (a).
  //   - Another thread takes a held slot only once (H4) sees the sequencer
  //     has taken its `end` cells, with an acq_rel CAS (H3). The holder's
  //     next sender() then reads the slot's state with acquire (it reads
  //     every slot's, and its own store of held_state(end) was earlier, so
  //     it reads H3's value or a later one, which heads or continues a
  //     release sequence back to a taker that saw the cells taken): (b).
  //     (If that read still finds its own held_state(end) but a later
  //     holder, H2's acquire gives it (b) the same way.)
  //     A taker that sent nothing frees the slot again (H1: all taken), so
  //     held_state(end) is never stored again once H3 took it, and a CAS
  //     from it by the holder fails: no ABA.
  // The cost: sender() on a thread that finds every slot open or held for
  // another thread gets too_many_senders until the sequencer drains one.
  Result<SenderSlot*> take_slot() {
    if (closing()) return closed_error("cannot open a sender");
    const std::uint64_t me = this_thread_token();
    // (a): the slot this thread's last Sender left held.
    for (SenderSlot& s : slots_) {
      // (S1) acquire: pairs with the release stores of state (release_slot) and (H3).
      std::uint64_t state = s.state.load(std::memory_order_acquire);
      if (is_held(state) && s.holder.load(std::memory_order_acquire) == me && // (H2) pairs with H2's store
          s.state.compare_exchange_strong(state, sender_open, std::memory_order_acquire,
                                          std::memory_order_acquire)) { // (S1) both: as the load above
        return opened(s);
      }
    }
    // Then a free slot, or one held for another thread whose cells are all taken.
    std::uint32_t held = 0;
    for (SenderSlot& s : slots_) {
      std::uint64_t state = s.state.load(std::memory_order_acquire); // (S1) as above
      if (state == sender_free) {
        // (S1) acquire: takes over the counters the last Sender of the slot released.
        if (s.state.compare_exchange_strong(state, sender_open, std::memory_order_acquire, std::memory_order_relaxed)) {
          return opened(s);
        }
      } else if (is_held(state)) {
        // (H4) acquire: pairs with (Q1); the take of the holder's last cell
        // happens before what follows here.
        if (s.drained_cells.load(std::memory_order_acquire) < held_end(state)) {
          ++held;
          continue;
        }
        // (H3) acq_rel: acquire as (S1); release hands H4 on to the holder's
        // next sender(), whose (S1) loads and CAS read this value or a later one.
        if (s.state.compare_exchange_strong(state, sender_open, std::memory_order_acq_rel, std::memory_order_relaxed)) {
          return opened(s);
        }
      }
    }
    std::string m = "all " + std::to_string(slots_.size()) + " sender slots of the shared producer of topic '" +
                    std::string(topic()) + "' are ";
    if (held == 0) {
      m += "open";
    } else {
      m += "taken: " + std::to_string(held) +
           " of them keep the records of a closed sender, not yet drained, for the next sender its thread opens";
    }
    return Status(Errc::too_many_senders, m + " (SharedProducerOptions::max_senders)");
  }

  // Sender::close(): frees the slot, or holds it for this thread while the
  // sequencer has not taken every cell it holds (see take_slot).
  void release_slot(SenderSlot& s) noexcept {
    // (H1) acquire: pairs with (Q1); the take of the last cell sent happens before what follows.
    if (s.drained_cells.load(std::memory_order_acquire) >= s.sent_cells) {
      s.state.store(sender_free, std::memory_order_release); // (S1) hands the counters on
      return;
    }
    // (H2) release: a thread that reads this holder (take_slot's acquire
    // load) after another thread took the slot (H3) reads a later holder,
    // and so learns that its cells were taken.
    s.holder.store(this_thread_token(), std::memory_order_release);
    s.state.store(held_state(s.sent_cells), std::memory_order_release); // (S1) hands the counters and H2 on
  }

  // take_slot() got slot s.
  SenderSlot* opened(SenderSlot& s) noexcept {
    // (U1) seq_cst: before this Sender's first (K1) in the seq_cst order,
    // so a close() that missed its busy flag has seen the slot count; see (U2).
    std::uint32_t used = slots_used_.load(std::memory_order_relaxed);
    const auto need = static_cast<std::uint32_t>(&s - slots_.data() + 1);
    while (used < need &&
           !slots_used_.compare_exchange_weak(used, need, std::memory_order_seq_cst, std::memory_order_relaxed)) {
    }
    return &s;
  }

  // Why `what` is refused: the failure that stopped the sequencer (a closed
  // bus, a failed store: its code), else Errc::closed.
  Status closed_error(std::string_view what) const {
    if (failed_.load(std::memory_order_acquire)) { // pairs with fail(): failure_ is set
      return Status(failure_.code(), std::string(what) + ": " + std::string(failure_.message()));
    }
    return Status(Errc::closed,
                  std::string(what) + ": the shared producer of topic '" + std::string(topic()) + "' is closed");
  }

  // offset_of: ticket t of the slot has no offset and the sequencer stopped
  // (called after (T3) and a reread of sequenced).
  Status never_appended(std::uint64_t t) const {
    const std::string head = "ticket " + std::to_string(t) + " of the shared producer of topic '" +
                             std::string(topic()) + "': its record was not appended: ";
    if (failed_.load(std::memory_order_acquire)) return Status(failure_.code(), head + std::string(failure_.message()));
    if (close_error_set_.load(std::memory_order_acquire)) { // pairs with finish(): close_error_ is set
      return Status(close_error_.code(), head + std::string(close_error_.message()));
    }
    return Status(Errc::closed, head + "the shared producer was closed");
  }

  // --- the sequencer ---------------------------------------------------------------------

  struct Round {
    std::size_t moved = 0; // records appended
    bool blocked = false;  // the log had no room (block policy)
    bool error = false;    // an append failed (last_error_); its records stay pending for the next round
    bool failed = false;   // the bus was closed or the topic's store failed: nothing more will be appended
  };

  // Appends what is pending, then drains and appends more, up to max records
  // and at most gathers_per_round batches (so a round ends while senders
  // keep sending).
  static constexpr int gathers_per_round = 16;
  Round round(std::size_t max) noexcept {
    Round r;
    // relaxed: written only by the sequencer, whose turns are ordered by
    // (P1)/(P2) or the thread's join.
    if (RINGBUS_UNLIKELY(failed_.load(std::memory_order_relaxed))) {
      r.failed = true;
      return r;
    }
    int gathers = 0;
    while (r.moved < max) {
      if (next_ == count_) {
        if (gathers++ == gathers_per_round) break;
        gather();
        if (count_ == 0) break;
      }
      const Errc err = append_pending(max, r.moved);
      if (RINGBUS_LIKELY(err == Errc::ok)) continue;
      if (err == Errc::would_block) {
        r.blocked = true;
      } else if (stops_for_good(err)) {
        r.failed = true;
      } else {
        r.error = true;
      }
      break;
    }
    if (r.moved == 0 && !r.failed && log_->closed()) {
      fail(bus_closed());
      r.failed = true;
    }
    note_round(r);
    return r;
  }

  // Keeps retry_error_ current: set by a round that met an append error,
  // cleared by the next one that meets none (it appended, or found the log
  // full, which is then what holds the records back). After a failure
  // retry_error() reads failure_ instead. The relaxed load: only the
  // sequencer stores the flag.
  void note_round(const Round& r) noexcept {
    if (RINGBUS_UNLIKELY(r.error)) {
      Status why(last_error_.code()); // the code alone if the message cannot be had
      try {
        why = append_error("", "the sequencer retries them", 0);
      } catch (const std::bad_alloc&) {
      }
      set_retry_error(std::move(why), true);
    } else if (RINGBUS_UNLIKELY(!r.failed && retrying_.load(std::memory_order_relaxed))) {
      set_retry_error(Status(), false);
    }
  }

  void set_retry_error(Status why, bool retrying) noexcept {
    std::lock_guard lock(retry_mutex_);
    retry_error_ = std::move(why);
    retrying_.store(retrying, std::memory_order_release); // pairs with retrying()
  }

  // After an append error the sequencer waits 1 ms, doubling up to 64 ms,
  // before it tries again; close() tries close_retries times before it gives
  // up (about 0.2 s).
  static constexpr int first_retry_ms = 1;
  static constexpr int last_retry_ms = 64;
  static constexpr int close_retries = 8;
  static int next_retry_ms(int ms) noexcept { return ms == 0 ? first_retry_ms : std::min(2 * ms, last_retry_ms); }

  // Thread mode: the sequencer thread's body.
  void run(std::stop_token stop) noexcept {
    Waiter waiter(options_.idle_wait);
    int retry_ms = 0;
    for (;;) {
      // Read before the round: a stop requested after every sender went quiet
      // (close(): K5, then request_stop) sees the round drain all they sent.
      const bool stopping = stop.stop_requested();
      const Round r = round(SIZE_MAX);
      if (r.failed) return;
      if (RINGBUS_UNLIKELY(r.error)) {
        if (stopping) return; // close() retries what is left
        // The records stay pending; try again later (a full disk may clear).
        retry_ms = next_retry_ms(retry_ms);
        for (int ms = 0; ms < retry_ms && !stop.stop_requested(); ++ms) thread_sleep_ns(1'000'000);
        continue;
      }
      retry_ms = 0;
      if (r.moved != 0) {
        waiter.reset();
        continue;
      }
      if (!r.blocked && stopping) return;
      waiter.idle();
    }
  }

  // Caller mode.
  Result<std::size_t> pump(std::size_t max) noexcept {
    if (options_.sequencer != SequencerMode::caller) {
      return Status(Errc::invalid_argument, "pump() on the shared producer of topic '" + std::string(topic()) +
                                                "': its sequencer runs on its own thread (SequencerMode::thread)");
    }
    if (closed()) return closed_error("pump");
    // (P1) acquire: takes the sequencer state from the last pumping thread (P2).
    if (pumping_.exchange(1, std::memory_order_acquire) != 0) return Status(Errc::would_block);
    const Round r = round(max);
    Result<std::size_t> out = r.moved;
    if (r.failed) {
      out = closed_error("pump");
    } else if (RINGBUS_UNLIKELY(r.error)) {
      // Reads last_error_: before (P2).
      out = append_error("pump", "they stay queued and the next pump() retries them", r.moved);
    }
    pumping_.store(0, std::memory_order_release); // (P2)
    return out;
  }

  Status close() noexcept {
    // acq_rel: one close wins; a later closed() sees it.
    if (closed_.exchange(true, std::memory_order_acq_rel)) return closed_error("close");
    closing_.store(true, std::memory_order_seq_cst); // (K4)
    // (K5): wait until no send is between its (K1) and (K3). Each one sees
    // closing on its next step, so this wait is short and bounded.
    const std::uint32_t used = slots_used_.load(std::memory_order_seq_cst); // (U2)
    for (std::uint32_t i = 0; i < used; ++i) {
      Waiter waiter(WaitStrategy::backoff);
      while (slots_[i].busy.load(std::memory_order_seq_cst) != 0) waiter.idle(); // (K5) pairs with (K1)/(K3)
    }
    if (options_.sequencer == SequencerMode::thread) {
      thread_.request_stop();
      thread_.join(); // the sequencer's state is this thread's now
    } else {
      Waiter waiter(WaitStrategy::backoff);
      while (pumping_.exchange(1, std::memory_order_acquire) != 0) waiter.idle(); // (P1); never released
    }
    Status st = finish();
    stop_sequencing();
    (void)producer_.close();
    return st;
  }

 private:
  struct Run {
    SenderSlot* slot;
    std::size_t begin; // messages [begin, end) came from slot, in its order
    std::size_t end;
  };

  // --- when appends fail (cold) ----------------------------------------------------------

  Status bus_closed() const {
    return Status(Errc::closed, "the bus was closed under the shared producer of topic '" + std::string(topic()) + "'");
  }

  // The sequencer stops for good: `why` is what every later send, pump,
  // close and unresolved ticket reports.
  void fail(Status why) noexcept {
    failure_ = std::move(why);
    failed_.store(true, std::memory_order_release);  // pairs with closed_error's and never_appended's acquire
    closing_.store(true, std::memory_order_seq_cst); // senders now refuse (K2)
    stop_sequencing();
  }

  // Nothing more will be sequenced: a ticket without an offset now never gets one.
  void stop_sequencing() noexcept {
    stopped_.store(true, std::memory_order_release); // (T3) after the last (T1); pairs with stopped()
  }

  // An append failed with err (not would_block; last_error_ says why). A
  // closed bus, or a persistent topic whose store failed and takes no more
  // appends, stops the sequencer (fail(); true). Anything else (a full disk
  // at a roll: the next append retries it, as with a plain Producer) keeps
  // the records pending (false).
  RINGBUS_NOINLINE bool stops_for_good(Errc err) noexcept {
    if (err == Errc::closed || log_->closed()) {
      fail(bus_closed());
      return true;
    }
    if (log_->store() != nullptr && log_->store()->failed()) {
      const Status cause = log_->store()->failure(); // "topic 'x' failed and takes no more appends: ..."
      const Status& why = cause.ok() ? last_error_ : cause;
      fail(Status(why.code(), "the shared producer of topic '" + std::string(topic()) +
                                  "' stopped: " + std::string(why.message())));
      return true;
    }
    return false;
  }

  // pump() and the retry state: last_error_, naming the topic, the records
  // the round appended before it (`moved`) and the fate of those it did not.
  Status append_error(std::string_view what, std::string_view then, std::size_t moved) const {
    std::string m(what);
    if (!m.empty()) m += ": ";
    m += "appending to topic '" + std::string(topic()) + "' failed";
    if (moved != 0) m += " after " + std::to_string(moved) + " records were appended";
    m += ": " + std::string(last_error_.message()) + "; the records not appended were kept: " + std::string(then);
    return Status(last_error_.code(), std::move(m));
  }

  // close(): appends everything still queued (waiting for room under block,
  // as append does; retrying an append error close_retries times). What is
  // left after a failure or the last retry is dropped and counted.
  Status finish() noexcept {
    Waiter waiter(WaitStrategy::backoff);
    int retries = 0;
    int retry_ms = 0;
    for (;;) {
      const Round r = round(SIZE_MAX);
      if (r.failed) break;
      if (r.error) {
        if (retries++ == close_retries) break;
        retry_ms = next_retry_ms(retry_ms);
        thread_sleep_ns(std::int64_t{retry_ms} * 1'000'000);
        continue;
      }
      retries = 0;
      retry_ms = 0;
      if (r.moved != 0) {
        waiter.reset();
      } else if (!r.blocked) {
        break; // everything accepted is in the log
      } else {
        waiter.idle(); // the log is full: wait for consumers, as append does
      }
    }
    const std::uint64_t lost = discard_pending();
    const bool failed = failed_.load(std::memory_order_relaxed); // relaxed: this thread is the sequencer
    if (lost == 0) return failed ? closed_error("close") : Status();
    const std::string count = std::to_string(lost) + " accepted records were not appended";
    if (failed) {
      return Status(failure_.code(), "close: " + std::string(failure_.message()) + "; " + count);
    }
    close_error_ = Status(last_error_.code(), "close of the shared producer of topic '" + std::string(topic()) +
                                                  "' gave up after " + std::to_string(close_retries) +
                                                  " retries: " + count + ": " + std::string(last_error_.message()));
    close_error_set_.store(true, std::memory_order_release); // pairs with never_appended's acquire
    return close_error_;
  }

  // Drops every record not yet appended (pending and still queued: sends
  // have stopped, K5); returns how many there were.
  std::uint64_t discard_pending() noexcept {
    std::uint64_t lost = 0;
    for (;;) {
      for (std::size_t i = next_; i < count_; ++i) lost += packed_[i] != 0 ? packed_[i] : 1;
      next_ = count_;
      gather();
      if (count_ == 0) return lost;
    }
  }

  // Takes cells from every slot and decodes them into messages_: first a
  // fair share from each (starting one slot later each time), then, if
  // room is left, more from each in the same order. A slot's cells stay in
  // its order (its second run follows its first).
  void gather() noexcept {
    count_ = 0;
    next_ = 0;
    run_count_ = 0;
    run_cursor_ = 0;
    std::size_t used_cells = 0;
    std::size_t header_count = 0;
    const std::size_t batch = options_.sequencer_batch_slots;
    const std::uint32_t slots = slots_used_.load(std::memory_order_acquire); // (U2) pairs with (U1)
    if (slots == 0) return;
    stamped_ = false;
    const std::size_t share = std::max<std::size_t>(batch / slots, 64);
    for (int pass = 0; pass < 2; ++pass) {
      for (std::uint32_t k = 0; k < slots && used_cells < batch; ++k) {
        SenderSlot& s = slots_[(rotation_ + k) % slots];
        const std::size_t want = pass == 0 ? std::min(share, batch - used_cells) : batch - used_cells;
        used_cells += take(s, cells_.data() + used_cells, want, header_count);
      }
      if (used_cells == 0 || used_cells >= batch) break;
    }
    rotation_ = (rotation_ + 1) % slots;
  }

  // Dequeues up to `want` cells of slot s (more if the last record needs
  // them) to `first`, decodes them into messages_ as one run; returns the
  // cells taken.
  std::size_t take(SenderSlot& s, Cell* first, std::size_t want, std::size_t& header_count) noexcept {
    std::size_t got = queue_.try_dequeue_bulk_from_producer(*s.token, first, want);
    if (got == 0) return 0;
    if (!stamped_) {
      // One clock read per gather that found something, not per append:
      // records sent without a timestamp get the time their batch was
      // drained. The sequencer is the topic's writer: the writer's clock.
      now_ = wall_clock_ ? log_->writer().clock.now() : 0;
      stamped_ = true;
    }
    const std::size_t run_begin = count_;
    std::size_t at = 0;
    while (at < got) {
      const Cell& head = first[at];
      std::uint32_t body_cells = 0;
      if (head.bytes[head_kind_at] != std::byte{kind_inline}) {
        std::memcpy(&body_cells, head.bytes + head_body_cells_at, 4);
      }
      const std::size_t need = 1 + body_cells;
      // A record cut by `want`: the rest is in the queue already (one bulk
      // enqueue made all its cells visible with one store).
      while (at + need > got) {
        const std::size_t more = queue_.try_dequeue_bulk_from_producer(*s.token, first + got, at + need - got);
        if (more == 0) cpu_relax();
        got += more;
      }
      messages_[count_++] = decode(first + at, header_count);
      at += need;
    }
    s.dequeued_cells += got;
    s.drained_cells.store(s.dequeued_cells, std::memory_order_release); // (Q1) pairs with (Q2), (H1), (H4)
    runs_[run_count_++] = Run{&s, run_begin, count_};
    return got;
  }

  Message decode(const Cell* c, std::size_t& header_count) noexcept {
    std::uint32_t value_bytes = 0;
    std::memcpy(&value_bytes, c->bytes + head_value_bytes_at, 4);
    packed_[count_] = 0;
    if (c->bytes[head_kind_at] == std::byte{kind_inline}) {
      return Message{ByteView(), ByteView(c->bytes + head_inline_value_at, value_bytes), now_, {}};
    }
    if (c->bytes[head_kind_at] == std::byte{kind_packed}) {
      std::uint32_t count = 0;
      std::memcpy(&count, c->bytes + head_count_at, 4);
      packed_[count_] = count;
      return Message{ByteView(), ByteView(c[1].bytes, std::size_t{value_bytes} * count), now_, {}};
    }
    std::uint32_t key_bytes = 0;
    std::uint16_t headers = 0;
    std::memcpy(&key_bytes, c->bytes + head_key_bytes_at, 4);
    std::memcpy(&headers, c->bytes + head_header_count_at, 2);
    const std::byte* p = c[1].bytes;
    Message m;
    std::memcpy(&m.timestamp_ns, p, 8);
    if (m.timestamp_ns == timestamp_now) m.timestamp_ns = now_;
    p += 8;
    m.key = ByteView(p, key_bytes);
    p += key_bytes;
    m.value = ByteView(p, value_bytes);
    p += value_bytes;
    Header* const first = headers_.data() + header_count;
    for (std::uint16_t h = 0; h < headers; ++h) {
      std::uint32_t name_bytes = 0;
      std::uint32_t header_value_bytes = 0;
      std::memcpy(&name_bytes, p, 4);
      std::memcpy(&header_value_bytes, p + 4, 4);
      p += 8;
      first[h].name = ByteView(p, name_bytes);
      p += name_bytes;
      first[h].value = ByteView(p, header_value_bytes);
      p += header_value_bytes;
    }
    header_count += headers;
    m.headers = std::span<const Header>(first, headers);
    return m;
  }

  // Appends messages [next_, count_): a packed run with one append_values,
  // a stretch of other records in chunks that fit the producer's batch limit
  // with append_batch (a record larger than the limit alone, with append: up
  // to a segment). All or nothing per call. Stops once max records moved (a
  // packed run is not split, so it may go past max).
  Errc append_pending(std::size_t max, std::size_t& moved) noexcept {
    const std::size_t limit = producer_.batch_limit_bytes();
    while (next_ < count_ && moved < max) {
      // The sequencer is the topic's writer: its own state, read inline.
      const std::uint64_t before = log_->writer().next_offset;
      std::size_t end = next_;
      std::size_t records = 0;
      Result<std::uint64_t> first = std::uint64_t{0};
      if (const std::uint32_t values = packed_[next_]; values != 0) {
        const Message& run = messages_[next_];
        const std::size_t value_bytes = run.value.size() / values;
        first = run.value.size() > limit ? producer_.try_append(run) // one value larger than a batch
                                         : producer_.try_append_values(run.value.data(), value_bytes, values, now_);
        end = next_ + 1;
        records = values;
      } else {
        std::size_t bytes = 0;
        const std::size_t stop = next_ + std::min(count_ - next_, max - moved);
        while (end < stop && packed_[end] == 0) {
          const std::size_t one = record_body_bytes(messages_[end], 0) + max_delta_growth;
          if (bytes + one > limit && end > next_) break;
          bytes += one;
          ++end;
        }
        first = bytes > limit
                    ? producer_.try_append(messages_[next_])
                    : producer_.try_append_batch(std::span<const Message>(messages_.data() + next_, end - next_));
        records = end - next_;
      }
      if (RINGBUS_UNLIKELY(!first.ok())) return append_failed(std::move(first).status(), before, end, records, moved);
      publish_offsets(next_, end, *first);
      moved += records;
      next_ = end;
    }
    return Errc::ok;
  }

  // An append of messages [next_, end) (records in all) failed. Under
  // Durability::sync the producer publishes, then syncs: a failed sync
  // reports its error with the records in the log, where readers see them.
  // If the log moved, they keep their offsets and count as moved. The error
  // goes to last_error_ (would_block carries none).
  RINGBUS_NOINLINE Errc append_failed(Status st, std::uint64_t before, std::size_t end, std::size_t records,
                                      std::size_t& moved) noexcept {
    const std::uint64_t after = log_->writer().next_offset;
    if (after != before) { // all of it: an append is all or nothing up to its publication
      publish_offsets(next_, end, before);
      moved += records;
      next_ = end;
    }
    const Errc err = st.code();
    if (err != Errc::would_block) last_error_ = std::move(st);
    return err;
  }

  // (T1): the offsets of the slot's records in [lo, hi), which one append
  // gave consecutive offsets: a new offset run unless they follow the slot's
  // last record in the log too (fields relaxed, then the run count with
  // release), then the slot's sequenced count with release. One entry per
  // stretch, not per record: a run of 512 values costs two stores.
  void publish_offsets(std::size_t begin, std::size_t end, std::uint64_t first_offset) noexcept {
    std::uint64_t offset = first_offset;
    while (run_cursor_ < run_count_) {
      Run& run = runs_[run_cursor_];
      const std::size_t lo = std::max(run.begin, begin);
      const std::size_t hi = std::min(run.end, end);
      if (lo >= end) break;
      SenderSlot& s = *run.slot;
      std::uint64_t records = 0;
      for (std::size_t i = lo; i < hi; ++i) records += packed_[i] != 0 ? packed_[i] : 1;
      if (records != 0) {
        if (s.offset_runs_written == 0 || offset != s.next_offset) {
          OffsetRun& entry = s.offset_runs[s.offset_runs_written & s.offset_runs_mask];
          entry.first_sequence.store(s.published, std::memory_order_relaxed); // (T1) published by the count below
          entry.first_offset.store(offset, std::memory_order_relaxed);        // (T1) likewise
          s.offset_runs_written += 1;
          s.offset_run_count.store(s.offset_runs_written, std::memory_order_release); // (T1) pairs with (T2)
        }
        s.published += records;
        offset += records;
        s.next_offset = offset;
      }
      s.sequenced.store(s.published, std::memory_order_release); // (T1) pairs with (T2)
      if (run.end > end) break;                                  // the rest of this run goes with the next chunk
      ++run_cursor_;
    }
    sequenced_total_.store(sequenced_total_.load(std::memory_order_relaxed) + (offset - first_offset),
                           std::memory_order_relaxed); // one writer; a statistic
  }

  SharedProducerOptions options_;
  HeapString topic_;
  Log* log_;
  Producer producer_;
  std::size_t quota_;
  std::size_t max_record_cells_; // longest_cells(): a max record, or a packed run
  std::size_t batch_limit_ = 0;  // producer_.batch_limit_bytes(), fixed
  IngestQueue queue_;
  HeapVector<SenderSlot> slots_;
  // Offset windows: window_ tickets per slot, resolved through 2 * window_
  // offset runs (why twice: Sender::offset_of).
  std::uint64_t window_;
  HeapVector<OffsetRun> offset_runs_;
  HeapVector<Cell> staging_;                     // staging_stride per slot, from a line boundary (SenderSlot::staging)
  HeapVector<moodycamel::ProducerToken> tokens_; // after queue_: destroyed before it

  // Sequencer state: one thread at a time (the sequencer thread, or whoever
  // holds pumping_). Views in messages_ point into cells_.
  HeapVector<Cell> cells_;
  HeapVector<Message> messages_;
  HeapVector<std::uint32_t> packed_; // per message: 0, or the values of a packed run (its value is all of them)
  HeapVector<Header> headers_;
  HeapVector<Run> runs_;
  std::size_t count_ = 0; // messages gathered
  std::size_t next_ = 0;  // first not yet appended
  std::size_t run_count_ = 0;
  std::size_t run_cursor_ = 0;
  std::uint32_t rotation_ = 0;
  std::int64_t now_ = 0; // the time of the last gather (wall clock, or 0 for TimestampSource::none)
  bool wall_clock_ = true;
  bool stamped_ = false;

  alignas(cache_line) std::atomic<bool> closing_{false}; // (K4); read by every send (K2)
  alignas(cache_line) std::atomic<std::uint32_t> slots_used_{0};
  std::atomic<std::uint32_t> pumping_{0};
  std::atomic<bool> closed_{false};
  std::atomic<bool> failed_{false};  // failure_ is set (release by fail())
  std::atomic<bool> stopped_{false}; // (T3) nothing more will be sequenced
  std::atomic<bool> close_error_set_{false};
  Status failure_;                    // why the sequencer stopped for good; set once, before failed_
  Status close_error_;                // what close() gave up on; set once, before close_error_set_
  Status last_error_;                 // sequencer-private: the last append error other than would_block
  std::atomic<bool> retrying_{false}; // retry_error_ is set (set_retry_error)
  mutable std::mutex retry_mutex_;    // guards retry_error_ (cold: set and read on errors only)
  Status retry_error_;
  std::atomic<std::uint64_t> sequenced_total_{0};
  std::jthread thread_; // last: stopped and joined before anything else goes
};

} // namespace detail

// --- options ---------------------------------------------------------------------------

Status SharedProducerOptions::validate() const {
  const auto bad = [](std::string m) { return Status(Errc::invalid_argument, std::move(m)); };
  if (sequencer != SequencerMode::thread && sequencer != SequencerMode::caller) {
    return bad("sequencer mode " + std::to_string(static_cast<unsigned>(sequencer)) + " is not thread or caller");
  }
  if (max_senders == 0 || max_senders > limits::max_senders) {
    return bad("max_senders " + std::to_string(max_senders) + " must be between 1 and " +
               std::to_string(limits::max_senders));
  }
  const std::size_t record_cells = 1 + detail::body_cells_for(max_record_bytes);
  if (sender_queue_slots > limits::max_sender_queue_slots || sender_queue_slots < record_cells) {
    return bad("sender_queue_slots " + std::to_string(sender_queue_slots) + " must be between " +
               std::to_string(record_cells) + " (the slots of a max_record_bytes record of " +
               std::to_string(max_record_bytes) + " bytes) and " + std::to_string(limits::max_sender_queue_slots));
  }
  if (sequencer_batch_slots < limits::min_sequencer_batch_slots ||
      sequencer_batch_slots > limits::max_sequencer_batch_slots) {
    return bad("sequencer_batch_slots " + std::to_string(sequencer_batch_slots) + " must be between " +
               std::to_string(limits::min_sequencer_batch_slots) + " and " +
               std::to_string(limits::max_sequencer_batch_slots));
  }
  if (static_cast<unsigned>(idle_wait) > static_cast<unsigned>(WaitStrategy::blocking) ||
      static_cast<unsigned>(send_wait) > static_cast<unsigned>(WaitStrategy::blocking)) {
    return bad("idle_wait and send_wait must each be one of the four wait strategies");
  }
  return {};
}

std::string_view to_string(SequencerMode m) noexcept {
  return m == SequencerMode::thread ? "thread" : m == SequencerMode::caller ? "caller" : "unknown";
}

// --- the bus's factory -------------------------------------------------------------------

Result<SharedProducer> Bus::shared_producer(std::string_view topic, const SharedProducerOptions& options) {
  if (Status st = options.validate(); !st.ok()) {
    return Status(st.code(), "shared producer of topic '" + std::string(topic) + "': " + std::string(st.message()));
  }
  Result<Producer> producer = this->producer(topic); // the topic's one writer
  if (!producer.ok()) return producer.status();
  detail::Log* log = core_->find(topic);
  const std::size_t worst = detail::frame_header_bytes + detail::worst_encoded_bytes(options.max_record_bytes);
  if (worst > log->segment_bytes()) {
    return Status(Errc::record_too_large, "shared producer of topic '" + std::string(topic) + "': max_record_bytes " +
                                              std::to_string(options.max_record_bytes) + " needs up to " +
                                              std::to_string(worst) +
                                              " bytes in a frame, more than a segment of the topic holds (" +
                                              std::to_string(log->segment_bytes()) + " bytes)");
  }
  try {
    auto core = std::allocate_shared<detail::SharedCore>(detail::HeapAllocator<detail::SharedCore>(),
                                                         std::move(*producer), log, options);
    if (options.sequencer == SequencerMode::thread) core->start_thread();
    return SharedProducer(std::move(core));
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "shared producer of topic '" + std::string(topic) +
                                           "': out of memory for its ingest queue (" +
                                           std::to_string(options.max_senders) + " senders x " +
                                           std::to_string(options.sender_queue_slots) + " slots)");
  } catch (const std::system_error& e) {
    return Status(Errc::system_error, "shared producer of topic '" + std::string(topic) +
                                          "': cannot start its sequencer thread: " + e.what());
  }
}

// --- SharedProducer ------------------------------------------------------------------------

SharedProducer::SharedProducer(SharedProducer&& other) noexcept = default;
SharedProducer& SharedProducer::operator=(SharedProducer&& other) noexcept {
  if (this != &other) {
    if (is_open()) (void)close();
    core_ = std::move(other.core_);
  }
  return *this;
}
SharedProducer::~SharedProducer() {
  if (is_open()) (void)close();
}

Result<SharedProducer::Sender> SharedProducer::sender() {
  if (!core_) return Status(Errc::closed, "shared producer is not open");
  Result<detail::SenderSlot*> slot = core_->take_slot();
  if (!slot.ok()) return slot.status();
  return Sender(core_, *slot);
}

Result<std::size_t> SharedProducer::pump(std::size_t max_records) noexcept {
  if (!core_) return Status(Errc::closed, "shared producer is not open");
  return core_->pump(max_records);
}

Status SharedProducer::close() noexcept {
  if (!core_) return Status(Errc::closed, "shared producer is not open");
  return core_->close();
}

bool SharedProducer::is_open() const noexcept { return core_ && !core_->closed(); }
std::string_view SharedProducer::topic() const noexcept { return core_ ? core_->topic() : std::string_view(); }
const SharedProducerOptions& SharedProducer::options() const noexcept {
  static const SharedProducerOptions defaults;
  return core_ ? core_->options() : defaults;
}
std::uint64_t SharedProducer::sequenced() const noexcept { return core_ ? core_->sequenced_total() : 0; }
Status SharedProducer::append_error() const { return core_ ? core_->retry_error() : Status(); }

// GCC 12 reports a bogus -Wstringop-overflow inside the queue's header once
// try_enqueue_bulk is inlined here (as in bench/impls/moodycamel_cq.hpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

// --- Sender ------------------------------------------------------------------------------------

using detail::SenderSlot;

SharedProducer::Sender::Sender(std::shared_ptr<detail::SharedCore> core, SenderSlot* slot) noexcept
    : core_(std::move(core)), slot_(slot) {}

SharedProducer::Sender::Sender(Sender&& other) noexcept : core_(std::move(other.core_)), slot_(other.slot_) {
  other.slot_ = nullptr;
}

SharedProducer::Sender& SharedProducer::Sender::operator=(Sender&& other) noexcept {
  if (this != &other) {
    (void)close();
    core_ = std::move(other.core_);
    slot_ = other.slot_;
    other.slot_ = nullptr;
  }
  return *this;
}

SharedProducer::Sender::~Sender() { (void)close(); }

Status SharedProducer::Sender::close() noexcept {
  if (slot_ == nullptr) return Status(Errc::closed, "sender is already closed");
  slot_->core->release_slot(*slot_);
  slot_ = nullptr;
  core_.reset();
  return {};
}

namespace {

Status sender_closed() { return Status(Errc::closed, "sender is closed"); }

// Room for `cells` more in the slot's quota. Rereads the sequencer's drained
// count only when the cached one says no (the cached-index trick).
RINGBUS_ALWAYS_INLINE bool has_room(SenderSlot& s, std::size_t cells) noexcept {
  if (s.sent_cells + cells - s.cached_drained <= s.quota) return true;
  s.cached_drained = s.drained_cells.load(std::memory_order_acquire); // (Q2) pairs with (Q1)
  return s.sent_cells + cells - s.cached_drained <= s.quota;
}

// The send protocol around one enqueue: (K1) busy, (K2) closing?, room?,
// enqueue, (K3) not busy; retried by `wait` while there is no room.
template <class Enqueue>
Result<Ticket> send_cells(SenderSlot& s, std::size_t cells, std::size_t records, bool wait, Enqueue enqueue) noexcept {
  detail::SharedCore& core = *s.core;
  detail::Waiter waiter(core.options().send_wait);
  for (;;) {
    if (has_room(s, cells)) {
      s.busy.store(1, std::memory_order_seq_cst); // (K1)
      if (RINGBUS_UNLIKELY(core.closing())) {     // (K2)
        s.busy.store(0, std::memory_order_release);
        return core.closed_error("send");
      }
      const bool ok = enqueue();
      s.busy.store(0, std::memory_order_release); // (K3) pairs with (K5)
      if (RINGBUS_LIKELY(ok)) {
        const Ticket t{s.sent_records};
        s.sent_records += records;
        s.sent_cells += cells;
        return t;
      }
    } else if (RINGBUS_UNLIKELY(core.closing())) {
      return core.closed_error("send");
    } else if (RINGBUS_UNLIKELY(core.retrying())) {
      // No room, and none comes while the error lasts: say it, not wait.
      if (Status st = core.no_room_error("send"); !st.ok()) return st;
    }
    if (!wait) return Status(Errc::would_block);
    if (core.log()->closed()) return core.closed_error("send");
    waiter.idle();
  }
}

RINGBUS_NOINLINE Status too_large(const detail::SharedCore& core, const Message& m, std::size_t bytes) {
  if (m.headers.size() > limits::max_headers) {
    return Status(Errc::invalid_argument, "record with " + std::to_string(m.headers.size()) +
                                              " headers exceeds the limit of " + std::to_string(limits::max_headers));
  }
  return Status(Errc::record_too_large,
                "record of " + std::to_string(bytes) + " bytes (key " + std::to_string(m.key.size()) + " B, value " +
                    std::to_string(m.value.size()) + " B, " + std::to_string(m.headers.size()) +
                    " headers) exceeds the limit of " + std::to_string(core.options().max_record_bytes) +
                    " bytes of the shared producer of topic '" + std::string(core.topic()) +
                    "' (SharedProducerOptions::max_record_bytes)");
}

} // namespace

Result<Ticket> SharedProducer::Sender::send_one(const Message& m, bool wait) noexcept {
  SenderSlot* const s = slot_;
  if (RINGBUS_UNLIKELY(s == nullptr)) return sender_closed();
  if (detail::inline_form(m)) {
    const detail::Cell cell = detail::inline_cell(m.value.data(), m.value.size());
    return send_cells(*s, 1, 1, wait, [&] { return s->core->queue().try_enqueue(*s->token, cell); });
  }
  const std::size_t bytes = detail::record_bytes(m);
  if (RINGBUS_UNLIKELY(bytes > s->core->options().max_record_bytes || m.headers.size() > limits::max_headers)) {
    return too_large(*s->core, m, bytes);
  }
  const std::size_t cells = 1 + detail::body_cells_for(bytes);
  return send_cells(*s, cells, 1, wait, [&] {
    const auto one = [&m](std::size_t) { return m; };
    detail::CellStream<decltype(one)> stream(one, 1);
    return s->core->queue().try_enqueue_bulk(*s->token, detail::CellIterator(stream), cells);
  });
}

Result<Ticket> SharedProducer::Sender::send_many(std::span<const Message> messages, bool wait) noexcept {
  SenderSlot* const s = slot_;
  if (s == nullptr) return sender_closed();
  detail::SharedCore& core = *s->core;
  if (messages.empty()) {
    return Status(Errc::invalid_argument,
                  "send_batch to the shared producer of topic '" + std::string(core.topic()) + "' got no messages");
  }
  std::size_t cells = 0;
  for (const Message& m : messages) {
    if (detail::inline_form(m)) {
      ++cells;
      continue;
    }
    const std::size_t bytes = detail::record_bytes(m);
    if (bytes > core.options().max_record_bytes || m.headers.size() > limits::max_headers) {
      return too_large(core, m, bytes);
    }
    cells += 1 + detail::body_cells_for(bytes);
  }
  if (cells > s->quota) {
    return Status(Errc::record_too_large, "batch of " + std::to_string(messages.size()) + " records takes " +
                                              std::to_string(cells) + " queue slots, more than a sender holds (" +
                                              std::to_string(s->quota) +
                                              ", SharedProducerOptions::sender_queue_slots)");
  }
  return send_cells(*s, cells, messages.size(), wait, [&] {
    const auto at = [messages](std::size_t i) { return messages[i]; };
    detail::CellStream<decltype(at)> stream(at, messages.size());
    return core.queue().try_enqueue_bulk(*s->token, detail::CellIterator(stream), cells);
  });
}

Result<Ticket> SharedProducer::Sender::send_packed(const void* data, std::size_t value_bytes, std::size_t count,
                                                   bool wait) noexcept {
  SenderSlot* const s = slot_;
  if (s == nullptr) return sender_closed();
  detail::SharedCore& core = *s->core;
  if (count == 0) {
    return Status(Errc::invalid_argument,
                  "send_values to the shared producer of topic '" + std::string(core.topic()) + "' got no values");
  }
  if (value_bytes > core.options().max_record_bytes) {
    return too_large(core, Message{ByteView(), ByteView(data, value_bytes), timestamp_now, {}}, value_bytes);
  }
  const std::size_t per_run = core.values_per_run(value_bytes);
  // Every run takes at least its head cell: a count of more runs than the quota never fits.
  const std::size_t cells =
      count / per_run >= s->quota ? SIZE_MAX : detail::PackedRunStream::cells_for(value_bytes, count, per_run);
  if (cells > s->quota) {
    return Status(Errc::record_too_large,
                  "send_values of " + std::to_string(count) + " values of " + std::to_string(value_bytes) +
                      " bytes takes more queue slots than a "
                      "sender holds (" +
                      std::to_string(s->quota) + ", SharedProducerOptions::sender_queue_slots)");
  }
  if (count <= per_run && count * value_bytes <= detail::packed_run_bytes) {
    // One run: built in the slot's staging cells with one memcpy of the
    // values, then enqueued from a plain array (moodycamel's fast loop).
    return send_cells(*s, cells, count, wait, [&] {
      detail::PackedRunStream::write_run(s->staging, data, value_bytes, count);
      return core.queue().try_enqueue_bulk(*s->token, s->staging, cells);
    });
  }
  return send_cells(*s, cells, count, wait, [&] {
    detail::PackedRunStream stream(data, value_bytes, count, per_run);
    return core.queue().try_enqueue_bulk(*s->token, detail::CellIterator(stream), cells);
  });
}

Result<std::uint64_t> SharedProducer::Sender::offset_of(Ticket ticket) const noexcept {
  SenderSlot* const s = slot_;
  if (s == nullptr) return sender_closed();
  if (ticket.sequence >= s->sent_records) {
    return Status(Errc::invalid_argument, "ticket " + std::to_string(ticket.sequence) +
                                              " was not issued by this sender (its next ticket is " +
                                              std::to_string(s->sent_records) + ")");
  }
  const std::uint64_t t = ticket.sequence;
  const std::uint64_t sent = s->sent_records;
  if (sent - t > s->window) {
    return Status(Errc::invalid_argument, "ticket " + std::to_string(t) + " is older than the " +
                                              std::to_string(s->window) +
                                              " newest records whose offsets a sender keeps");
  }
  // (T2) acquire, sequenced then the run count: pairs with (T1); every
  // offset run of a record below `sequenced` is then visible, and n counts them.
  std::uint64_t sequenced = s->sequenced.load(std::memory_order_acquire);
  if (t >= sequenced) {
    if (RINGBUS_LIKELY(!s->core->stopped())) return Status(Errc::would_block);
    // (T3) seen: the sequencer's last (T1) is visible, so this reread is
    // final. Still not sequenced: the record never got in, and never will.
    sequenced = s->sequenced.load(std::memory_order_acquire); // (T2) again
    if (t >= sequenced) return s->core->never_appended(t);
  }
  const std::uint64_t n = s->offset_run_count.load(std::memory_order_acquire);
  // Which entries hold still. `sequenced` was loaded before the run count,
  // and the sequencer stores the count before `sequenced`, so every run at
  // index >= n starts at a record >= sequenced: at most sent - sequenced more
  // runs can be written during this call (this thread sends nothing
  // meanwhile), and entries [n + sent - sequenced - size, n) are not reused
  // while it reads them. t's run has at most sent - t - 1 runs after it (each
  // starts at a later record below sent), so it is at >= n - (sent - t). With
  // size = 2 * window, sent - t <= window (checked above) and sent - sequenced
  // < sent - t (t < sequenced), that is inside the stable range. Binary
  // search there for the last run that starts at or before t.
  const std::uint64_t size = s->offset_runs_mask + 1;
  const std::uint64_t reach = n + (sent - sequenced);
  std::uint64_t lo = reach > size ? reach - size : 0;
  std::uint64_t hi = n;
  // relaxed: ordered by (T2); not rewritten during this call (above).
  const auto first_sequence = [s](std::uint64_t i) {
    return s->offset_runs[i & s->offset_runs_mask].first_sequence.load(std::memory_order_relaxed);
  };
  if (lo >= hi || first_sequence(lo) > t) {
    return Status(Errc::invalid_argument, "ticket " + std::to_string(t) + " has no offset run in its window");
  }
  while (hi - lo > 1) { // invariant: first_sequence(lo) <= t < first_sequence(hi) (hi == n: none)
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (first_sequence(mid) <= t) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  const detail::OffsetRun& run = s->offset_runs[lo & s->offset_runs_mask];
  return run.first_offset.load(std::memory_order_relaxed) + (t - first_sequence(lo)); // relaxed: as above
}

Result<std::uint64_t> SharedProducer::Sender::wait_offset(Ticket ticket,
                                                          std::chrono::nanoseconds timeout) const noexcept {
  const std::int64_t deadline = platform::deadline_after(timeout.count());
  detail::Waiter waiter(WaitStrategy::backoff);
  for (;;) {
    Result<std::uint64_t> r = offset_of(ticket);
    if (r.code() != Errc::would_block) return r;
    if (platform::monotonic_ns() >= deadline) {
      std::string m = "ticket " + std::to_string(ticket.sequence) + " got no offset within " +
                      std::to_string(timeout.count()) + " ns";
      if (slot_->core->retrying()) {
        const Status why = slot_->core->retry_error();
        if (!why.ok()) m += "; the sequencer is retrying an append: " + std::string(why.message());
      }
      return Status(Errc::timed_out, std::move(m));
    }
    waiter.idle();
  }
}

std::uint64_t SharedProducer::Sender::offset_window() const noexcept { return slot_ != nullptr ? slot_->window : 0; }

Ticket SharedProducer::Sender::next_ticket() const noexcept {
  return Ticket{slot_ != nullptr ? slot_->sent_records : 0};
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

} // namespace ringbus
