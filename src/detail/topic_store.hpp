// The files behind a persistent topic: its directory, its segment files mapped
// into the ring, recovery, flushing, retention and the per-segment indexes.
// The log (log.hpp) calls in at the cold points only: a segment roll, a
// published range under Durability::sync, a seek. Appends and polls never
// enter here.
//
// Layout on disk (README "Persistence"):
//
//   <bus>/LOCK                     held by the one writable Bus (pid inside)
//   <bus>/topics/<name>/topic.meta  the topic's options (text, CRC32C-sealed)
//   <bus>/topics/<name>/NNNNNNNNNNNNNNNNNNNN.seg   segment files (segment_layout.hpp)
//   <bus>/topics/<name>/NNNNNNNNNNNNNNNNNNNN.idx   sparse indexes of sealed segments (segment_index.hpp)
//   <bus>/topics/<name>/next-N.tmp  a segment prepared ahead of the roll
//   <bus>/consumers/<name>.offsets  durable offsets of a named consumer (offset_store.hpp)
//
// The ring: one address range of the ring's capacity is reserved (readable
// zero pages); ring slot k (positions p with (p & mask) / S == k) maps the
// data of the segment file whose base_position is p. A roll maps the next
// file over the slot with MAP_FIXED (one replacement, never a hole); a
// deleted segment's slot goes back to zero pages. Frames are the in-memory
// frames with their CRC32C filled, so readers run the same code.
//
// Threads: the producer (roll, sync_published), the bus's flusher (prepare,
// flush, write_indexes), consumers (seek lookups) and the Bus (flush). The
// segment list and the indexes are guarded by mutex_ (cold paths only); the
// prepared file is handed over through an atomic pointer.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "platform/files.hpp"
#include "ringbus/detail/segment.hpp"
#include "ringbus/detail/segment_index.hpp"
#include "ringbus/detail/segment_layout.hpp"
#include "ringbus/options.hpp"
#include "ringbus/status.hpp"

namespace ringbus::detail {

class Log;

// Where a recovered log stands (positions in the unbounded log).
struct LogRestore {
  std::uint64_t head = 0;        // start of the oldest segment kept
  std::uint64_t head_offset = 0; // its first offset
  std::uint64_t pos = 0;         // where the writer resumes
  std::uint64_t segment_end = 0; // end of the segment the writer is in
  std::uint64_t next_offset = 0; // offset of the next record
};

// What recovery did, for describe() and tests.
struct RecoveryReport {
  std::size_t segments = 0;
  std::uint64_t records_kept_in_tail = 0;
  std::uint64_t cut_at_position = 0; // where the tail segment's valid frames end (relative)
  std::string cut_reason;            // "" for a clean end; else why the log was cut there
  bool dropped_unpublished_segment = false;
  // Every held segment was checked frame by frame with its checksums (the
  // machine rebooted since the directory's last writer, see recover()).
  bool checked_every_segment = false;
  // Segments below the tail whose frames were walked to prove them sealed;
  // one with a seal the flusher wrote in this boot needs no walk.
  std::size_t segments_walked = 0;
  std::size_t dropped_damaged_segments = 0; // after the first damaged one (the log was cut there)
  // After a reboot: oldest segments set aside for damage (a bad frame or
  // header, not sealed); the head moved past them, as retention would.
  std::size_t dropped_oldest_segments = 0;
  // After a reboot: the first damage found below the tail ("<file>: why"),
  // "" when none; and the files set aside for it (renamed <name>.damaged,
  // never deleted: they may hold records a sync acknowledged).
  std::string damage;
  std::vector<std::string> set_aside;

  // One sentence for TopicInfo::recovery: "" when the open found nothing to repair.
  [[nodiscard]] std::string summary() const;
};

class TopicStore {
 public:
  // The flusher seals segments of at least this size (segment_layout.hpp),
  // so that recovery need not walk them; smaller ones are walked. Tests
  // lower it (testing::seal_segments_from).
  static constexpr std::uint64_t seal_min_segment_bytes = std::uint64_t{4} << 20;
  // Creates topic `name` under topics_dir: its directory (0700), topic.meta
  // and its first segment (base offset 0). topic_exists when a directory of
  // that name is there.
  static Result<std::unique_ptr<TopicStore>> create(const platform::FileDescriptor& topics_dir, std::string_view name,
                                                    const TopicOptions& options);
  // Opens and recovers an existing topic directory (options from topic.meta).
  // topic_not_found when the directory is a creation a crash interrupted (no
  // topic.meta, nothing in it but topic.meta.tmp): not a topic; unless
  // read_only, it is removed so the name is free again.
  // check_every_segment: check every held segment frame by frame, with its
  // checksums, not the tail alone (the machine rebooted since the last
  // writer: see recover()).
  static Result<std::unique_ptr<TopicStore>> open(const platform::FileDescriptor& topics_dir, std::string_view name,
                                                  bool read_only, bool check_every_segment);

  ~TopicStore();

  // A flusher thread runs maintain(): the files of deleted segments are
  // parked for it to close, off the producer's thread. Without this call
  // (no flusher), they are closed where they are deleted, so that their
  // disk space is freed at once. Before the store is shared.
  void close_deleted_files_in_maintain() noexcept;
  TopicStore(const TopicStore&) = delete;
  TopicStore& operator=(const TopicStore&) = delete;

  [[nodiscard]] const TopicOptions& options() const noexcept { return options_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const LogRestore& restored() const noexcept { return restore_; }
  [[nodiscard]] const RecoveryReport& recovery() const noexcept { return report_; }
  [[nodiscard]] bool read_only() const noexcept { return read_only_; }
  // The reserved ring with the segments mapped in; the log takes it once.
  RingMapping take_ring() noexcept { return std::move(ring_); }
  // The log's refusal flag: a failure sets it (release), so appends stop.
  void attach(std::atomic<bool>* refusing) noexcept { refusing_ = refusing; }

  // --- producer thread ---------------------------------------------------------
  // At a roll into [start, start + S): the head is already past start - C, so
  // no reader is in the slot. Maps a fresh segment file there whose first
  // record will be first_offset, names it, and (durability interval/sync)
  // syncs the directory. no_space when the disk is full; nothing published
  // before is touched.
  // mid_batch: a batch begun in an earlier segment is not published yet.
  Status begin_segment(std::uint64_t start, std::uint64_t first_offset, bool mid_batch) noexcept;
  // A batch refused after it rolled: removes the segments it began, from
  // position start on (their files too), so the next roll begins them again.
  void abandon_from(std::uint64_t start) noexcept;
  // Durability::sync: [from, to) was just published; msync it.
  Status sync_published(std::uint64_t from, std::uint64_t to) noexcept;
  // The head retention wants (a segment start >= current_head, <= the
  // writer's segment start): the oldest segments past a limit. current_head
  // when nothing is to go.
  [[nodiscard]] std::uint64_t retention_head(std::uint64_t current_head, std::uint64_t writer_segment) noexcept;
  // Deletes every segment wholly below head (readers are past it: the log
  // moved its head first). Their slots become zero pages, except the one in
  // the ring slot of position `entering` (the writer's next segment), which is
  // kept for begin_segment to recycle (renamed to a next-N.tmp name, its
  // mapping and page-cache pages left in place) when no read-only follower
  // holds it (an OFD read lock). no_recycle: none is kept.
  static constexpr std::uint64_t no_recycle = UINT64_MAX;
  void drop_below(std::uint64_t head, std::uint64_t entering = no_recycle) noexcept;

  // --- any thread ----------------------------------------------------------------
  // Writes [synced, tail) to disk: fdatasync of each segment file with data
  // in it. A failure is sticky (failure()).
  Status flush(std::uint64_t tail) noexcept;
  // Flusher work: prepare the next segment file if none is ready; persist the
  // indexes of sealed segments below tail; flush when Durability::interval is due.
  void maintain(std::uint64_t tail, std::int64_t now_ns) noexcept;
  // "" while healthy; else the error that stopped the topic.
  [[nodiscard]] Status failure() const;
  [[nodiscard]] bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  [[nodiscard]] std::size_t segment_count() const;

  // --- read-only followers --------------------------------------------------------
  // The writing process's segment starting at position with first record
  // offset: when its file exists and its header says so, frees the ring slot
  // (log.make_room, then drop_below) and maps it read-only. When the writer
  // already deleted it (it lapped this reader), takes the oldest newer
  // segment instead, moves the head there (readers see the gap) and updates
  // position and offset. false when there is nothing new yet.
  bool follow_next(std::uint64_t& position, std::uint64_t& offset, Log& log) noexcept;
  // position: where follow() stopped at damage, in the segment starting at
  // segment_start. When the writer has since dropped that segment (deleted
  // its file: it lapped this reader, or retention), its records are gone as
  // if lapped: takes the oldest newer segment as follow_next does (readers
  // see the gap) and updates position and offset. false while the file is
  // there (the damage stands), an older one is (someone else deleted it), or
  // nothing newer exists yet. Looks for the file at most every millisecond.
  bool follow_past_dropped(std::uint64_t segment_start, std::uint64_t& position, std::uint64_t& offset,
                           Log& log) noexcept;

  // --- seeks (consumers) -----------------------------------------------------
  // A frame start at or before the first frame holding `offset`, inside the
  // segment that starts at segment (a position), from its sparse index
  // brought up to tail. nullopt when that segment is no longer held.
  std::optional<std::uint64_t> position_for_offset(std::uint64_t segment, std::uint64_t offset,
                                                   std::uint64_t tail) noexcept;
  // A frame start such that every record before it (from head) is older than
  // timestamp_ns, and its first offset; nullopt when no segment is held.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> position_for_time(std::int64_t timestamp_ns,
                                                                           std::uint64_t head,
                                                                           std::uint64_t tail) noexcept;

 private:
  struct Segment {
    std::uint64_t position = 0;
    std::uint64_t base_offset = 0;
    std::int64_t created_ns = 0;
    platform::FileDescriptor fd;
    std::optional<SegmentIndex> index; // built on demand (seek) or by the flusher
    bool index_on_disk = false;
    bool may_have_index_file = false; // an .idx may exist (recovered, or persisted): removed with the segment
    bool opened_mid_batch = false;    // segment_flags::opened_mid_batch in its header
    bool checksummed = true;          // FrameChecksumKind::crc32c in its header (else none)
    // Its seal (segment_layout.hpp): recover() found a valid one of this
    // boot naming this segment, and what it gives as the next segment's
    // base_offset; or the flusher wrote it (maintain).
    bool seal_on_disk = false;
    std::uint64_t seal_end_offset = 0;
  };
  struct Prepared {
    platform::FileDescriptor fd;
    std::string name;
  };
  // A dropped segment's file kept for the next roll into its ring slot: its
  // data is still mapped there (last lap's frames, which carry last lap's tag).
  struct Recycled {
    platform::FileDescriptor fd;
    std::string name;       // its next-N.tmp name
    std::uint64_t slot = 0; // position & (capacity - 1) of its mapping
    bool lock_held = false; // the writer's OFD write lock (no follower has it)
  };

  TopicStore(std::string name, const TopicOptions& options, bool read_only);

  Status open_directory_and_ring(const platform::FileDescriptor& topics_dir, bool create);
  Status recover(bool check_every_segment);
  // recover(), after a reboot: the first segment below the tail that is not
  // whole (checksums included) becomes the tail, and the ones after it go;
  // an oldest one that is not goes alone (the head moves past it).
  Status cut_at_first_damaged_segment();
  // Drops the newest segment (recovery: it and everything after it was never
  // published, or follows damage): unmapped, and unless read_only its index
  // removed and its file removed, or set aside when `damaged`.
  Status drop_newest_segment(bool damaged);
  // Removes the segment file of base_offset, or when `damaged` renames it to
  // <name>.damaged (.damaged.1, ... when taken) and notes it in report_; its
  // index goes either way. Read-only: nothing.
  Status drop_segment_files(std::uint64_t base_offset, bool damaged);
  // A copy of segment s's file as <name>.damaged (before recovery cuts it at
  // its damage and zeroes the rest); noted in report_. Read-only: nothing.
  Status keep_copy(const Segment& s);
  // <name>.damaged, or .damaged.1, ... : the first name not taken.
  Result<std::string> damaged_name(const std::string& name) const;
  // Read-only, recovery after a reboot: the segment file fd (or named
  // base_offset's) leaves the log for damage, as a writer's recovery sets it
  // aside; follow_next never takes that file (by identity: the writer
  // renames it aside and new files of its name are other files). Else nothing.
  void note_left_log(const platform::FileDescriptor& fd) noexcept;
  void note_left_log(std::uint64_t base_offset) noexcept;
  [[nodiscard]] bool left_the_log(const platform::FileDescriptor& fd) const;
  // populate: fault the file's pages into the page cache now (the flusher).
  Result<Prepared*> prepare_segment(bool populate) noexcept;
  // begin_segment's cheap path: recycled_ becomes the segment at start.
  Status recycle_segment(std::uint64_t start, const SegmentHeaderFields& fields) noexcept;
  // Gives up recycled_: its file is removed and its slot becomes zero pages.
  void discard_recycled() noexcept;
  Status map_segment(Segment& s, bool prefault) noexcept;
  // Whether the frames of segments_[i] run to its end (a pad frame or
  // exactly full): its seal when trusted (trust_seals_) and it gives the
  // next segment's base_offset, else a walk of its frames' first words.
  [[nodiscard]] bool sealed(std::size_t i) noexcept;
  // Whether segments_[i] has a seal that gives the next segment's base_offset.
  [[nodiscard]] bool seal_matches_next(std::size_t i) const noexcept {
    return segments_[i].seal_on_disk && i + 1 < segments_.size() &&
           segments_[i + 1].base_offset == segments_[i].seal_end_offset;
  }
  // maintain(): writes the seals of up to `most` segments the writer has
  // published past (their ends at or below tail), in topics whose segments
  // have seal_min_segment_bytes or more. Under mutex_.
  void write_seals(std::uint64_t tail, std::size_t most) noexcept;
  void set_failure(Status st) noexcept;
  std::span<const std::byte> data_of(const Segment& s) const noexcept;
  SegmentIndex* index_of(Segment& s, std::uint64_t tail) noexcept; // under mutex_
  Segment* segment_at(std::uint64_t position) noexcept;            // under mutex_
  // The smallest first offset of a segment file in the directory that is at least first.
  std::optional<std::uint64_t> oldest_segment_from(std::uint64_t first) const;
  // Maps the writer's segment file fd (named name) as the next one followed:
  // the segment starting at position, or (lapped) any newer than after,
  // moving the head to it. false when its lock or header refuse it.
  bool take_followed(platform::FileDescriptor fd, const std::string& name, bool lapped, std::uint64_t after,
                     std::uint64_t& position, std::uint64_t& offset, Log& log);

  std::string name_;
  TopicOptions options_;
  bool read_only_;
  std::uint64_t segment_bytes_;
  std::uint64_t capacity_;
  std::uint64_t page_size_ = 4096; // header page bytes in front of each segment's data
  platform::FileDescriptor dir_;
  RingMapping ring_;
  std::byte* ring_base_ = nullptr;
  LogRestore restore_;
  RecoveryReport report_;
  // recover(): the directory's last writer ran in this boot, so seals of this
  // boot may stand in for walks (never after a reboot: writer_boot.hpp).
  bool trust_seals_ = false;

  mutable std::mutex mutex_; // segments_, indexes, synced_ bookkeeping
  std::deque<Segment> segments_;
  std::vector<platform::FileDescriptor> graveyard_; // deleted segments' files, closed by maintain()
  std::optional<Recycled> recycled_;                // producer thread only (drop_below -> begin_segment)
  std::atomic<Prepared*> prepared_{nullptr};        // exchange by the roll, set by prepare
  std::atomic<std::uint64_t> prepare_counter_{0};
  std::atomic<std::uint64_t> synced_{0}; // everything below is on disk (interval/sync)
  std::uint64_t synced_at_bytes_ = 0;    // flusher: tail at the last interval flush
  std::int64_t last_flush_ns_ = 0;       // flusher: time of the last interval flush
  std::int64_t last_listing_ns_ = 0;     // follower: last directory listing (follow_next)
  std::int64_t last_drop_check_ns_ = 0;  // follower stuck at damage: last look for its file
  // Follower: (st_dev, st_ino) of the segment files its recovery after a
  // reboot left out of the log for damage (note_left_log). Set by recover()
  // only, before the store is shared.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> left_log_;
  std::atomic<bool> failed_{false};
  // recover(): the recovered tail segment's position, for maintain() to fault in; no_prefault when none.
  static constexpr std::uint64_t no_prefault = UINT64_MAX;
  std::atomic<std::uint64_t> prefault_tail_{no_prefault};
  std::atomic<bool>* refusing_ = nullptr;
  Status failure_; // set once, before failed_ (release)
};

// topic.meta: the options a persistent topic was created with.
std::string encode_topic_meta(std::string_view name, const TopicOptions& options);
Result<TopicOptions> decode_topic_meta(std::string_view text, std::string_view path, std::string_view name);

// This boot's tag in segment seals (segment_layout.hpp): a 64-bit hash of
// the boot id; 0 when the system gives none, and then no seal is written or
// trusted.
std::uint64_t seal_boot_tag() noexcept;
// The seal in a segment's header page (bytes from file offset 0) when it is
// one recovery may take: valid, for the segment at base_position, written in
// this boot. Recovery and `ringbus verify` alike.
std::optional<SegmentSeal> seal_of_this_boot(std::span<const std::byte> header, std::uint64_t base_position) noexcept;

namespace testing {
// Tests: the flusher seals segments of `bytes` or more from now on
// (TopicStore::seal_min_segment_bytes to restore). Set it before opening a
// bus or forking a child that opens one.
void seal_segments_from(std::uint64_t bytes) noexcept;
} // namespace testing

} // namespace ringbus::detail
