// SharedProducer: many threads publish to one topic.
//
// A topic has one writer (DESIGN.md: single writer is enforced). A
// SharedProducer takes that writer and puts a multi-producer ingest queue in
// front of it: each thread holds a Sender, whose records go into its own
// sub-queue of a moodycamel::ConcurrentQueue (one ProducerToken per Sender
// slot); one sequencer drains the sub-queues in bulk and appends what it
// drained with the Producer's batch API, so many records share one
// publication. Each Sender's records keep their order in the log, and so do
// each thread's across the Senders it uses one after another; records of
// different threads interleave (see Guarantees).
//
//   Bus bus; bus.create_topic("events").check();
//   SharedProducer shared = bus.shared_producer("events").value(); // sequencer thread started
//   // on each thread:
//   SharedProducer::Sender sender = shared.sender().value();
//   Ticket t = sender.send("key", "value").value();                // accepted, not yet in the log
//   std::uint64_t offset = sender.wait_offset(t, 1s).value();      // the offset it got
//   ...
//   shared.close().check();   // flushes everything accepted into the log
//
// The sequencer runs on a thread the SharedProducer owns
// (SequencerMode::thread, the default: it spins, yields, then sleeps when
// idle, by `idle_wait`), or on the caller's thread (SequencerMode::caller:
// nothing moves until someone calls pump()).
//
// Guarantees
//   - A send that returned a Ticket was accepted: close() puts it in the log
//     (unless the bus is closed first, which drops whatever is not yet there).
//     A send after close() began fails with Errc::closed; a send racing with
//     close() either fails or is flushed, never lost silently.
//   - Append errors. Only a closed bus is reported as one (Errc::closed,
//     "the bus was closed"). Another error (a full disk at a segment roll:
//     Errc::no_space) keeps the records queued, in order: pump() returns it,
//     naming the topic (and how many records it appended before it), and the
//     next pump retries; the sequencer thread backs off (1 ms doubling to
//     64 ms) and retries. While it lasts, append_error() returns it, a send
//     that finds its Sender's queue slots full returns it at once instead of
//     waiting (or saying would_block), and wait_offset's timeout names it.
//     close() retries 8 times (about 0.2 s) before it gives up. A persistent
//     topic whose store failed (a failed sync: it "failed and takes no more
//     appends") stops the sequencer for good: sends, pumps and close report
//     that error, not Errc::closed. A record a sync failure left in the log
//     keeps its offset. Whatever close() could not append it counts in its
//     error ("N accepted records were not appended"), and the ticket of a
//     record that never got in never resolves: offset_of says why (with the
//     failure's code) as soon as the sequencer has given up, instead of
//     would_block.
//   - Order. Per Sender, offsets increase with the tickets. Per thread,
//     across the Senders it uses one after another: the records a thread
//     sent through a Sender it then closed (or destroyed) come before those
//     it sends through the next one it opens, in both sequencer modes.
//     Closing never waits for the sequencer (a caller-mode thread that pumps
//     for itself cannot deadlock): a closed Sender whose records are not all
//     drained yet leaves its slot held for its thread, whose next Sender
//     takes it and queues behind them; another thread gets a held slot only
//     once the sequencer has drained them (until then, with no slot free,
//     sender() says Errc::too_many_senders). A Sender counts for the thread
//     that closes it. Two Senders a thread keeps open at once are two
//     streams: their records interleave.
//   - Back-pressure, not unbounded memory: each Sender slot may have at most
//     `sender_queue_slots` queue slots outstanding (sent, not yet drained).
//     When the log is full under OverflowPolicy::block the sequencer stops
//     draining, the slots fill, and try_send says Errc::would_block while
//     send waits (by `send_wait`). The queue's blocks are allocated once, at
//     creation, from the library heap (mimalloc); nothing on the send, pump or
//     offset path allocates.
//   - Timestamps: a record sent without one (timestamp_now) is stamped by
//     the sequencer when it drains the record's batch, just before appending
//     it (log-append time, Kafka's LogAppendTime; one clock read per drain),
//     so timestamps in the log never go backwards because of queueing; a
//     record sent with a timestamp keeps it.
//
// Queue slots. The queue carries fixed 16-byte slots. A record whose value
// is at most 8 bytes, with no key, no headers and no timestamp, takes one slot
// (value inline). Any other record takes a head slot plus its body (8-byte
// timestamp, key, value, and per header 8 bytes of lengths plus name and
// value) in 16-byte continuation slots, enqueued in one bulk operation so
// they are contiguous in the sub-queue. send_values sends packed runs: a head
// slot, then up to 4 KiB of values back to back (512 8-byte values in 257
// slots), which the sequencer appends with one append_values (the log's
// packed form) and no per-record work but the offset it reports. A
// send_values of one run (at most 4 KiB of values) builds its cells in the
// Sender slot's own staging cells (a head, then one memcpy of the values) and
// enqueues them from that array: moodycamel's copy loop over a plain array,
// not a generating iterator (one thread's send + pump + poll of 8-byte
// values: 3.4 -> 2.7 ns per item). No per-record allocation, no shared byte
// arena.
//
// The sequencer drains each sender slot with try_dequeue_bulk_from_producer
// (not the ConsumerToken's try_dequeue_bulk): it must know whose records it
// took, to keep a record's slots together and to tell each sender its offsets.
//
// Offsets (tickets). send returns a Ticket: the record's sequence number
// within its Sender slot. One append gives a slot's records in it
// consecutive offsets, so the sequencer records offsets per stretch, not per
// record: after appending a chunk it writes an offset run (first ticket,
// first offset) for each slot whose records in it do not simply follow that
// slot's last record in the log, then publishes how many of the slot's
// records are sequenced. The runs sit in a ring of 2 * offset_window()
// entries per slot (offset_window() = sender_queue_slots rounded up to a
// power of two). Sender::offset_of(ticket) binary-searches the runs: would_block
// while the record is not yet in the log, the offset once it is; a ticket
// more than offset_window() records older than the Sender's newest is
// refused (its run may have been reused). Before, every record's offset had
// a ring entry of its own: the stores cost ~0.8 ns per 8-byte record, a
// fifth of a one-thread send + pump + poll.
//
// Memory orders (labels used at each site in src/shared_producer.cpp):
//
//   sender (one thread per Sender)           sequencer (one thread at a time)
//   ---------------------------------------  ----------------------------------------
//   (K1) busy.store(1, seq_cst)              close(): (K4) closing.store(seq_cst),
//   (K2) closing.load(seq_cst): closed ->         then (K5) busy.load(seq_cst) until 0
//        refuse. Dekker pair with K4/K5:          for every slot, then drain to empty.
//        either the sender sees closing or        (K3) release pairs with K5: the
//        close sees it busy and waits.            enqueue is visible to the drain.
//   enqueue (moodycamel: release of its      dequeue (moodycamel: acquire of its tail)
//        tail index)
//   (K3) busy.store(0, release)
//   (Q2) drained.load(acquire), only when    (Q1) drained.store(release) after each
//        the cached value says the slot is        dequeue: the blocks it emptied are
//        full: pairs with Q1                      free for this sender again
//   (T2) sequenced.load(acquire), then       (T1) a new run's fields (relaxed), then
//        offset_run_count.load(acquire), then      offset_run_count.store(release), then
//        the runs (relaxed): pairs with T1         sequenced.store(release), after each
//        (the runs searched are not reused         appended chunk
//        during the call: offset_of says why)
//   (T3) not sequenced yet: stopped.load     (T3) stopped.store(release) once nothing more
//        (acquire), then sequenced again:          will be sequenced (a failure, or the end
//        pairs with T3; still not: never           of close()), after the last (T1)
//   (S1) state CAS free/held->open (acquire) sender(): slots_used CAS (release) (U1);
//        on sender(); state.store(free or         gather: slots_used.load(acquire) (U2)
//        held, release) on close: hands the
//        slot's counters to the next Sender
//   (H1) close: drained.load(acquire), pairs (Q1) as above: the take of a Sender's last
//        with Q1: all taken -> free the slot;     cell happens before an H1 or H4 that
//        else (H2) holder.store(release), then    sees it taken
//        state = held(end) (S1): kept for this
//        thread's next sender()
//   (H4) another thread's sender():
//        drained.load(acquire) >= end, then
//        (H3) state CAS held->open (acq_rel):
//        the holder's next sender() reads the
//        state, or (H2) holder, with acquire:
//        its sends follow that take. Why this
//        keeps each thread's order: the comment
//        above take_slot in the .cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <type_traits>

#include "ringbus/options.hpp"
#include "ringbus/record.hpp"
#include "ringbus/status.hpp"

namespace ringbus {

class Bus;

namespace detail {
class SharedCore;
struct SenderSlot;
} // namespace detail

// Who runs the sequencer.
enum class SequencerMode : std::uint8_t {
  thread, // a thread the SharedProducer starts at creation and joins on close
  caller, // the user calls SharedProducer::pump() (one thread at a time)
};

struct SharedProducerOptions {
  SequencerMode sequencer = SequencerMode::thread;
  // Senders open at once (each holds one slot and its ProducerToken; a
  // closed one's slot stays held for its thread until the sequencer has
  // drained its records); 1..256.
  // Memory grows with its square: moodycamel sizes each producer's block
  // index for the whole block pool (16 B per pool block per sender).
  std::size_t max_senders = 16;
  // 16-byte queue slots one Sender may have outstanding (sent, not yet
  // drained): the ingest bound. A small value-only record takes one slot; see
  // the header comment. At least the slots of a max_record_bytes record, at
  // most 2^24. The queue preallocates max_senders * (this + 2 blocks of 256).
  std::size_t sender_queue_slots = 4096;
  // Largest record a Sender accepts: key + value + (8 + name + value) per
  // header, in bytes. It must fit one segment of the topic once encoded.
  std::size_t max_record_bytes = 4096;
  // Queue slots the sequencer drains per round before it appends (its buffer);
  // 64 .. 2^20.
  std::size_t sequencer_batch_slots = 2048;
  // How the sequencer thread waits when the queue is empty or the log is full.
  WaitStrategy idle_wait = WaitStrategy::backoff;
  // How Sender::send waits for room (its queue slots full).
  WaitStrategy send_wait = WaitStrategy::backoff;

  // Checks every field on its own; the error names the field and its limit.
  [[nodiscard]] Status validate() const;
};

namespace limits {
inline constexpr std::size_t max_senders = 256;
inline constexpr std::size_t max_sender_queue_slots = std::size_t{1} << 24;
inline constexpr std::size_t min_sequencer_batch_slots = 64;
inline constexpr std::size_t max_sequencer_batch_slots = std::size_t{1} << 20;
} // namespace limits

std::string_view to_string(SequencerMode m) noexcept;

// What a Sender hands back for an accepted record: its sequence number
// within the Sender's slot (0, 1, 2, ... over every Sender that held the slot).
struct Ticket {
  std::uint64_t sequence = 0;
  friend bool operator==(const Ticket&, const Ticket&) = default;
};

class SharedProducer {
 public:
  // One thread's way into the topic. Used by one thread at a time, like a
  // Producer. Destroying or closing it frees its slot (records it sent stay
  // accepted): at once for the next Sender its thread opens (which, while
  // some of them are still queued, takes this slot and continues its
  // tickets); for another thread's once the sequencer has drained them (the
  // order guarantee above).
  class Sender {
   public:
    Sender() noexcept = default; // not open: every call says closed
    Sender(Sender&& other) noexcept;
    Sender& operator=(Sender&& other) noexcept;
    Sender(const Sender&) = delete;
    Sender& operator=(const Sender&) = delete;
    ~Sender();

    // Accepts one record; waits (by send_wait) while this Sender's queue
    // slots are full. Errc::closed after the SharedProducer closed,
    // Errc::record_too_large over max_record_bytes; the sequencer's append
    // error (append_error()) when the slots are full while it retries one.
    Result<Ticket> send(ByteView value) noexcept { return send_one(Message{{}, value, timestamp_now, {}}, true); }
    Result<Ticket> send(ByteView key, ByteView value) noexcept {
      return send_one(Message{key, value, timestamp_now, {}}, true);
    }
    Result<Ticket> send(const Message& m) noexcept { return send_one(m, true); }
    // Never waits: Errc::would_block when this Sender's queue slots are
    // full (the sequencer's append error if it is retrying one).
    Result<Ticket> try_send(ByteView value) noexcept { return send_one(Message{{}, value, timestamp_now, {}}, false); }
    Result<Ticket> try_send(ByteView key, ByteView value) noexcept {
      return send_one(Message{key, value, timestamp_now, {}}, false);
    }
    Result<Ticket> try_send(const Message& m) noexcept { return send_one(m, false); }

    // Many records in one enqueue, all or nothing; returns the first ticket
    // (the others follow it). At most sender_queue_slots slots in all.
    Result<Ticket> send_batch(std::span<const Message> messages) noexcept { return send_many(messages, true); }
    Result<Ticket> try_send_batch(std::span<const Message> messages) noexcept { return send_many(messages, false); }
    // Fixed-size values (no key, no headers, stamped at append), the fastest
    // way in: values of at most 8 bytes take one slot each.
    template <class T>
    Result<Ticket> send_values(std::span<const T> values) noexcept {
      static_assert(std::is_trivially_copyable_v<T>, "send_values needs trivially copyable values");
      return send_packed(values.data(), sizeof(T), values.size(), true);
    }
    template <class T>
    Result<Ticket> try_send_values(std::span<const T> values) noexcept {
      static_assert(std::is_trivially_copyable_v<T>, "send_values needs trivially copyable values");
      return send_packed(values.data(), sizeof(T), values.size(), false);
    }

    // The offset the ticket's record got: Errc::would_block while it is not
    // in the log yet; Errc::invalid_argument for a ticket this Sender's slot
    // never issued or one older than offset_window() records. Once the
    // sequencer has stopped (closed, or given up on an error) a record not in
    // the log never gets there: the error says why (Errc::closed for a closed
    // bus or producer, else the failure's code).
    [[nodiscard]] Result<std::uint64_t> offset_of(Ticket ticket) const noexcept;
    // offset_of, waiting (backoff) up to timeout for the sequencer
    // (nanoseconds::max(): for good); Errc::timed_out when it did not come;
    // at once offset_of's error when the sequencer gave the record up.
    [[nodiscard]] Result<std::uint64_t> wait_offset(Ticket ticket, std::chrono::nanoseconds timeout) const noexcept;
    // How many of its newest tickets a Sender can still resolve.
    [[nodiscard]] std::uint64_t offset_window() const noexcept;
    // The ticket the next accepted record will get.
    [[nodiscard]] Ticket next_ticket() const noexcept;

    Status close() noexcept;
    [[nodiscard]] bool is_open() const noexcept { return slot_ != nullptr; }

   private:
    friend class SharedProducer;
    Sender(std::shared_ptr<detail::SharedCore> core, detail::SenderSlot* slot) noexcept;
    Result<Ticket> send_one(const Message& m, bool wait) noexcept;
    Result<Ticket> send_many(std::span<const Message> messages, bool wait) noexcept;
    Result<Ticket> send_packed(const void* data, std::size_t value_bytes, std::size_t count, bool wait) noexcept;

    std::shared_ptr<detail::SharedCore> core_;
    detail::SenderSlot* slot_ = nullptr;
  };

  SharedProducer() noexcept = default; // not open
  SharedProducer(SharedProducer&& other) noexcept;
  SharedProducer& operator=(SharedProducer&& other) noexcept;
  SharedProducer(const SharedProducer&) = delete;
  SharedProducer& operator=(const SharedProducer&) = delete;
  ~SharedProducer(); // close()

  // A Sender for the calling thread (cold: takes the slot this thread's last
  // Sender left held, else a free one). Errc::too_many_senders when
  // max_senders are open or held for other threads (see Sender).
  Result<Sender> sender();

  // SequencerMode::caller: moves up to max_records accepted records into the
  // log, appending them in batches; never waits. Returns how many it moved (0
  // when nothing was queued, or the log is full under block). One thread at a
  // time: a concurrent pump() gets Errc::would_block. Errc::invalid_argument in
  // thread mode; Errc::closed after close or when the bus was closed (records
  // not yet in the log are then dropped). Another append error (e.g.
  // Errc::no_space at a roll) is returned naming the topic and how many
  // records this pump appended before it; the records not appended stay
  // queued and the next pump retries them (those it did append keep their
  // offsets). A topic whose store failed for good: its error, and
  // nothing more is appended.
  Result<std::size_t> pump(std::size_t max_records = SIZE_MAX) noexcept;

  // Refuses further sends, flushes every accepted record into the log
  // (waiting for room under block, like Producer::append: consumers must make
  // progress), stops the sequencer thread and releases the topic's producer.
  // Errc::closed if the bus was closed first (what was not in the log is lost)
  // or this was already closed. An append error it still meets after 8
  // retries (about 0.2 s), or a topic whose store failed for good: that
  // error, saying how many accepted records were not appended (dropped).
  Status close() noexcept;
  [[nodiscard]] bool is_open() const noexcept;
  [[nodiscard]] std::string_view topic() const noexcept;
  [[nodiscard]] const SharedProducerOptions& options() const noexcept;
  // Records the sequencer has put in the log so far.
  [[nodiscard]] std::uint64_t sequenced() const noexcept;
  // What keeps accepted records out of the log: the append error the
  // sequencer is retrying (a full disk at a segment roll: Errc::no_space,
  // naming the topic; its next round without one clears it), or the failure
  // that stopped it for good; ok when neither. In thread mode this is how
  // the error is seen before close(); caller mode gets it from pump() as
  // well. Cold: takes a lock and copies the message.
  [[nodiscard]] Status append_error() const;

 private:
  friend class Bus;
  explicit SharedProducer(std::shared_ptr<detail::SharedCore> core) noexcept : core_(std::move(core)) {}
  std::shared_ptr<detail::SharedCore> core_;
};

} // namespace ringbus
