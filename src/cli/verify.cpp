// ringbus verify DIR [TOPIC] [--repair]: every segment header, every frame
// (length, type, offsets, record encoding, lap tag, CRC32C) and every
// persisted index, read-only; damage is reported by file and byte position.
//
// What counts as damage:
//   - topic.meta that does not decode, a segment header that does not
//     validate, segments that do not follow one another, a truncated file;
//   - an invalid frame anywhere (the tail segment legitimately ends in zeros:
//     end_of_data is not damage, but a frame that fails a check is);
//   - a segment before the tail that is not sealed (a pad frame or full);
//   - a seal in a segment's header page (segment_layout.hpp) that its frames
//     do not bear out: recovery in the boot that wrote it takes the seal
//     instead of walking the frames;
//   - more segments than the ring holds;
//   - a .idx that does not decode or does not match its segment, or has no segment.
//
// --repair does what a writer's recovery does, and only that: it opens the
// bus writable (TopicStore::recover cuts the tail segment at its first
// invalid frame and zeroes the rest, drops segments that were never published
// because the one before them is not sealed, deletes segments older than the
// ring) and deletes damaged .idx files (indexes are rebuilt from the segments
// on demand). Damage anywhere else (headers, topic.meta, an invalid frame in
// a sealed segment) is refused before anything is touched: cutting there
// would drop later segments whose records are intact, and that is for a
// person to decide. The classification mirrors recover(); when recover()
// changes, this must follow.
//
// Except when the next writer's recovery checks every segment (writer.boot
// names another boot or directory: a reboot, a copy; list_topics()'s
// check_every_segment): then that recovery acts on damage in any segment
// (an oldest one is set aside and the head moves; a later one cuts the log
// there and sets the segments after it aside), whatever verify says. So such
// damage is described as what that recovery will do, found by running it
// read-only (TopicStore::open, which changes nothing), and --repair lets it
// do that (Repair::reboot_recovery).
#include <algorithm>
#include <cstring>
#include <iostream>
#include <map>
#include <ostream>

#include "cli/cli.hpp"
#include "detail/topic_store.hpp"
#include "platform/files.hpp"
#include "ringbus/detail/config.hpp"
#include "ringbus/detail/frame_layout.hpp"
#include "ringbus/detail/segment_index.hpp"
#include "ringbus/detail/segment_layout.hpp"

namespace ringbus::cli {

namespace {

constexpr std::uint32_t index_interval_bytes = 4096; // only the scan's bookkeeping: any valid interval checks the same

enum class Repair : std::uint8_t {
  cut_tail,     // a writable open cuts the tail segment here
  drop_after,   // a writable open drops the segments after an unsealed one (never published)
  drop_old,     // a writable open deletes a segment older than the ring (a deletion a power loss undid)
  delete_index, // --repair deletes the .idx file
  // After a reboot (or in a copy of the directory) the next writer's recovery
  // checks every segment and acts on this: it sets the segment aside and
  // moves the head (an oldest one), or cuts the log here and sets the later
  // segments aside. --repair opens the bus writable, which does just that.
  reboot_recovery,
  manual, // --repair refuses
};

std::string_view to_string(Repair r) {
  switch (r) {
    case Repair::cut_tail: return "cut_tail";
    case Repair::drop_after: return "drop_unpublished_segments";
    case Repair::drop_old: return "delete_stale_segment";
    case Repair::delete_index: return "delete_index";
    case Repair::reboot_recovery: return "recovery_after_reboot";
    case Repair::manual: return "manual";
  }
  return "?";
}

struct Finding {
  std::string topic;
  std::string file;             // path
  std::uint64_t file_begin = 0; // damaged bytes [file_begin, file_end) of file
  std::uint64_t file_end = 0;
  std::optional<std::uint64_t> position; // data position of the damaged frame (file offset - page size)
  std::optional<std::uint64_t> offset;   // first record offset it should hold
  std::string problem;
  Repair repair = Repair::manual;
};

struct TopicReport {
  std::string name;
  std::size_t segments = 0;
  std::size_t indexes = 0;
  std::uint64_t records = 0;
  std::uint64_t first_offset = 0;
  std::uint64_t end_offset = 0;
  std::vector<std::string> notes; // not damage, worth saying
};

struct ScannedSegment {
  std::uint64_t base_offset = 0;
  std::string file_name;
  std::string path;
  detail::SegmentHeaderFields header;
  std::optional<detail::SegmentSeal> seal; // a valid one of this boot naming this segment's position
  platform::FileDescriptor fd;
  platform::FileMapping data; // read-only map of the data
  std::optional<detail::SegmentIndex> index;
  detail::ScanStop stop = detail::ScanStop::end_of_data;
  bool readable = false; // header valid and data mapped
};

std::uint16_t lap_of(std::uint64_t position, std::uint64_t capacity) noexcept {
  return static_cast<std::uint16_t>((position >> __builtin_ctzll(capacity)) & 0xffff);
}

// Where the frame at position ends, if its length word can be believed; else the segment's end.
std::uint64_t damaged_frame_end(std::span<const std::byte> data, std::uint64_t position) {
  std::uint64_t word0 = 0;
  std::memcpy(&word0, data.data() + position, sizeof word0);
  const std::uint64_t length = detail::align_up(detail::word0_length(word0), detail::frame_alignment);
  if (length >= detail::frame_header_bytes && position + length <= data.size()) return position + length;
  return data.size();
}

// Bytes that are not zero after the end of the log in a tail segment: an
// unpublished batch (a crash mid-append) or a frame whose first word was zeroed.
std::optional<std::uint64_t> first_nonzero_after(std::span<const std::byte> data, std::uint64_t from) {
  for (std::uint64_t i = from; i < data.size(); ++i) {
    if (data[i] != std::byte{0}) return i;
  }
  return std::nullopt;
}

// What recovery calls sealed (TopicStore::sealed): the frames' first words
// alone walk to the segment's end (a pad frame or exactly full), checksums aside.
bool sealed_by_words(std::span<const std::byte> data, std::uint16_t lap) {
  const std::uint64_t lap_bits = std::uint64_t{lap} << 48;
  std::uint64_t p = 0;
  while (p < data.size()) {
    std::uint64_t word = 0;
    std::memcpy(&word, data.data() + p, sizeof word);
    const std::uint32_t length = detail::word0_length(word);
    if (detail::word0_type(word) == detail::frame_type::none || detail::word0_lap_bits(word) != lap_bits ||
        length < detail::pad_frame_min_bytes || length > data.size() - p) {
      return false;
    }
    if (detail::word0_type(word) == detail::frame_type::pad) return p + length == data.size();
    p += detail::align_up(length, detail::frame_alignment);
  }
  return p == data.size();
}

// What the next writer's recovery keeps of a topic when it checks every
// segment (after a reboot, or in a copy of the directory): TopicStore::open
// read-only runs that very recovery and changes nothing.
struct RebootPlan {
  std::uint64_t head_offset = 0; // the first offset it keeps
  std::uint64_t end_offset = 0;  // the offset its next append gets
  std::size_t segments = 0;      // segments it keeps, from the one at head_offset
  std::string refused;           // not "": what its open does instead of opening the topic
};

RebootPlan plan_reboot_recovery(const platform::FileDescriptor& topics, const std::string& name) {
  RebootPlan plan;
  Result<std::unique_ptr<detail::TopicStore>> store = detail::TopicStore::open(topics, name, true, true);
  if (!store.ok()) {
    // Read-only, a topic left with no segment reads as one being created;
    // a writer refuses it (README "Recovery").
    plan.refused = store.code() == Errc::topic_not_found
                       ? "it sets every segment aside (renamed .damaged), none being whole, and refuses the topic "
                         "until those files are moved out"
                       : "it refuses the topic: " + std::string(store.message());
    return plan;
  }
  plan.head_offset = (*store)->restored().head_offset;
  plan.end_offset = (*store)->restored().next_offset;
  plan.segments = (*store)->segment_count();
  return plan;
}

class Verifier {
 public:
  Verifier(std::string dir, bool check_every_segment)
      : dir_(std::move(dir)), check_every_segment_(check_every_segment) {
    page_size_ = std::max<std::uint64_t>(detail::segment_header_bytes, platform::system_page_size());
  }

  void topic(const platform::FileDescriptor& topics, const std::string& name) {
    TopicReport report;
    report.name = name;
    Result<platform::FileDescriptor> dir = platform::open_directory_at(topics, name);
    if (!dir.ok()) {
      add(name, topics.path() + "/" + name, 0, 0, std::string(dir.message()), Repair::manual);
      reports_.push_back(std::move(report));
      return;
    }
    const std::string meta_path = dir->path() + "/topic.meta";
    Result<TopicOptions> options = read_meta(*dir, meta_path, name);
    if (!options.ok()) {
      add(name, meta_path, 0, 0, std::string(options.message()), Repair::manual);
      reports_.push_back(std::move(report));
      return;
    }
    const std::uint64_t segment_bytes = options->segment_bytes;
    const std::uint64_t capacity = options->capacity_bytes();
    Result<std::vector<platform::DirectoryEntry>> entries = platform::list_directory(*dir);
    if (!entries.ok()) throw Failure(std::string(entries.message()));

    std::vector<ScannedSegment> segments;
    std::map<std::uint64_t, std::string> index_files; // base offset -> file name
    for (const platform::DirectoryEntry& e : *entries) {
      if (const std::optional<std::uint64_t> base = detail::parse_segment_file_name(e.name)) {
        ScannedSegment s;
        s.base_offset = *base;
        s.file_name = e.name;
        s.path = dir->path() + "/" + e.name;
        segments.push_back(std::move(s));
      } else if (e.name.size() == detail::segment_file_name_digits + 4 && e.name.ends_with(".idx")) {
        const std::string as_seg = e.name.substr(0, detail::segment_file_name_digits) + ".seg";
        if (const std::optional<std::uint64_t> b = detail::parse_segment_file_name(as_seg)) index_files[*b] = e.name;
      }
    }
    std::sort(segments.begin(), segments.end(),
              [](const ScannedSegment& a, const ScannedSegment& b) { return a.base_offset < b.base_offset; });
    report.segments = segments.size();
    std::optional<RebootPlan> plan;
    std::size_t plan_tail = 0; // the index in segments of the tail that recovery keeps
    if (check_every_segment_ && !segments.empty()) {
      plan = plan_reboot_recovery(topics, name);
      while (plan_tail < segments.size() && segments[plan_tail].base_offset < plan->head_offset) ++plan_tail;
      plan_tail = std::min(plan_tail + std::max<std::size_t>(plan->segments, 1) - 1, segments.size() - 1);
    }
    // Damage a recovery in the same boot does not look at, but the next
    // writer's does when it checks every segment (the directory's last
    // writer ran in another boot, or this is a copy): what it will do with
    // segments[i], and repair Repair::reboot_recovery. nullopt in the same
    // boot, or when that recovery keeps segments[i] as it is.
    const auto after_reboot = [&](std::size_t i) -> std::optional<std::pair<std::string, Repair>> {
      if (!plan) return std::nullopt;
      const std::string intro =
          "; writer.boot names another boot or directory, so the next writer's recovery checks every segment "
          "frame by frame: ";
      if (!plan->refused.empty()) {
        return std::pair{intro + plan->refused + "; --repair leaves that to you", Repair::manual};
      }
      const std::uint64_t base = segments[i].base_offset;
      if (base < plan->head_offset) {
        return std::pair{intro + "it sets this segment aside (renamed .damaged) and moves the head past it to offset " +
                             std::to_string(plan->head_offset) +
                             ", as retention would; the later segments stay; --repair does that now",
                         Repair::reboot_recovery};
      }
      const std::size_t tail = plan_tail;
      const std::size_t after = segments.size() - 1 - tail;
      const std::string later_segments =
          (after == 1 ? std::string("the segment") : "the " + std::to_string(after) + " segments") + " after it";
      std::string later;
      if (after != 0) {
        later = ", and sets " + later_segments + " aside (renamed .damaged; offsets " +
                std::to_string(segments[tail + 1].base_offset) + " on)";
      }
      if (i == tail) {
        return std::pair{intro + "it cuts the log here, at offset " + std::to_string(plan->end_offset) +
                             " (a copy of this segment kept as .damaged)" + later +
                             "; the next appends take offsets from " + std::to_string(plan->end_offset) +
                             " on; --repair does that now",
                         Repair::reboot_recovery};
      }
      if (i > tail) {
        return std::pair{intro + "it ends the log at offset " + std::to_string(plan->end_offset) + ", with " +
                             segments[tail].file_name + ", and sets " + later_segments +
                             ", this one included, aside (renamed .damaged; offsets " +
                             std::to_string(segments[tail + 1].base_offset) + " on); --repair does that now",
                         Repair::reboot_recovery};
      }
      return std::nullopt;
    };
    if (segments.empty()) add(name, dir->path(), 0, 0, "the topic has no segment file", Repair::manual);

    // Every segment: header, then every frame.
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const std::size_t found = findings_.size();
      scan_segment(*dir, name, segment_bytes, capacity, segments[i], report);
      // A header that does not validate, a file cut short: in the same boot a
      // writer's open refuses the file; after a reboot it is damage recovery acts on.
      if (const auto reboot = after_reboot(i); reboot && findings_.size() > found) {
        findings_.back().problem += reboot->first;
        findings_.back().repair = reboot->second;
      }
    }
    // A finding on segments[i] (follow, seal) recovery in the same boot refuses or passes by.
    const auto add_segment_damage = [&](std::size_t i, std::uint64_t begin, std::uint64_t end, std::string problem,
                                        std::optional<std::uint64_t> position = std::nullopt,
                                        std::optional<std::uint64_t> offset = std::nullopt) {
      Repair repair = Repair::manual;
      if (const auto reboot = after_reboot(i)) {
        problem += reboot->first;
        repair = reboot->second;
      }
      add(name, segments[i].path, begin, end, std::move(problem), repair, position, offset);
    };

    // Segments follow one another; all but the last are sealed.
    const ScannedSegment* prev = nullptr;
    for (std::size_t i = 0; i < segments.size(); ++i) {
      ScannedSegment& s = segments[i];
      if (!s.readable) {
        prev = nullptr;
        continue;
      }
      const bool last = i + 1 == segments.size();
      if (prev != nullptr) {
        if (s.header.base_position != prev->header.base_position + segment_bytes) {
          add_segment_damage(i, 0, page_size_,
                             "base_position " + std::to_string(s.header.base_position) + " does not follow " +
                                 prev->file_name + " (base_position " + std::to_string(prev->header.base_position) +
                                 " + " + std::to_string(segment_bytes) + "): a segment is missing or foreign");
        } else if (prev->index && prev->index->sealed() && prev->index->next_offset() != s.base_offset) {
          add_segment_damage(i, 0, page_size_,
                             "base_offset " + std::to_string(s.base_offset) + ", but " + prev->file_name +
                                 " ends at offset " + std::to_string(prev->index->next_offset()));
        }
      }
      const std::span<const std::byte> data(s.data.data(), s.data.size());
      const std::uint64_t end = s.index->end_position();
      // Recovery drops every segment after an unsealed one when that one is
      // just before the tail, or before a chain of segments begun mid-batch
      // (segment_flags::opened_mid_batch) reaching the tail: their frames were
      // never published.
      const auto unpublished_after = [&]() -> std::size_t {
        if (last || sealed_by_words(data, lap_of(s.header.base_position, capacity))) return 0;
        for (std::size_t k = i + 2; k < segments.size(); ++k) {
          if (!segments[k].readable || (segments[k].header.flags & detail::segment_flags::opened_mid_batch) == 0) {
            return 0;
          }
        }
        return segments.size() - i - 1;
      };
      if (s.seal && !last && segments[i + 1].readable && s.seal->end_offset == segments[i + 1].base_offset &&
          (!sealed_by_words(data, lap_of(s.header.base_position, capacity)) ||
           s.index->next_offset() != s.seal->end_offset)) {
        // Recovery in the boot that wrote the seal takes it for this segment
        // instead of the walk that would find what follows: no repair of its own.
        add(name, s.path, detail::segment_seal_at, detail::segment_seal_at + detail::segment_seal_bytes,
            "the segment's seal says it is sealed and ends before offset " + std::to_string(s.seal->end_offset) +
                ", but its frames end at position " + std::to_string(end) + " (offset " +
                std::to_string(s.index->next_offset()) +
                (s.stop == detail::ScanStop::invalid_frame ? ", an invalid frame)" : ")"),
            Repair::manual);
      }
      if (s.stop == detail::ScanStop::invalid_frame) {
        std::string problem = s.index->problem();
        Repair repair = Repair::manual;
        if (const auto reboot = after_reboot(i); reboot && (!last || i != plan_tail)) {
          problem += reboot->first;
          repair = reboot->second;
        } else if (last) {
          repair = Repair::cut_tail;
          problem += "; repair cuts the log here, dropping offsets " + std::to_string(s.index->next_offset()) + " on";
        } else if (const std::size_t dropped = unpublished_after(); dropped != 0) {
          problem += "; a writer's recovery would drop the " + std::to_string(dropped) +
                     " segments after it and cut here; --repair leaves that to you";
        } else {
          problem +=
              "; in a sealed segment, which a writer's recovery does not scan while the directory's last "
              "writer ran in this boot (after a reboot, or in a copy of the directory, it checks every segment "
              "and acts on it)";
        }
        add(name, s.path, page_size_ + end, page_size_ + damaged_frame_end(data, end), std::move(problem), repair, end,
            s.index->next_offset());
      } else if (!last && s.stop != detail::ScanStop::segment_full && segments[i + 1].readable) {
        // A clean end of data before the segment's end, and more segments after it.
        if (const std::size_t dropped = unpublished_after(); dropped != 0) {
          add(name, s.path, page_size_ + end, page_size_ + segment_bytes,
              "the segment ends at position " + std::to_string(end) + " without being sealed, so the " +
                  std::to_string(dropped) +
                  " segments after it were never published (a crash during a batch across a roll); repair " +
                  (plan ? "sets them aside (renamed .damaged), as the next writer's recovery does after a reboot"
                        : "drops them"),
              Repair::drop_after, end, s.index->next_offset());
        } else {
          add_segment_damage(i, page_size_ + end, page_size_ + segment_bytes,
                             "the segment ends at position " + std::to_string(end) + " without being sealed, but " +
                                 std::to_string(segments.size() - i - 1) + " segments follow it",
                             end, s.index->next_offset());
        }
      } else if (last && s.stop == detail::ScanStop::end_of_data) {
        if (const std::optional<std::uint64_t> at = first_nonzero_after(data, end)) {
          report.notes.push_back(s.path + ": bytes after the end of the log (file offset " +
                                 std::to_string(page_size_ + end) + ") are not zero from file offset " +
                                 std::to_string(page_size_ + *at) +
                                 ": an unpublished batch (a crash mid-append; the next writer zeroes it), the "
                                 "previous lap's frames of a recycled segment file, or a frame whose first word "
                                 "was wiped");
        }
      }
      report.records += s.index->next_offset() - s.base_offset;
      prev = &s;
    }
    // More segments than the ring holds: a deletion a power loss undid (recovery deletes them again).
    for (const ScannedSegment& s : segments) {
      const ScannedSegment& newest = segments.back();
      if (!s.readable || !newest.readable || newest.header.base_position - s.header.base_position < capacity) continue;
      add(name, s.path, 0, 0,
          "older than the ring of " + std::to_string(options->segment_count) + " segments allows (" + newest.file_name +
              " is the newest): a deletion a power loss undid; repair deletes it",
          Repair::drop_old);
    }
    if (!segments.empty()) {
      report.first_offset = segments.front().base_offset;
      const ScannedSegment& tail = segments.back();
      report.end_offset = tail.readable ? tail.index->next_offset() : tail.base_offset;
    }

    // Persisted indexes: each must decode and match its segment.
    for (const auto& [base, file_name] : index_files) {
      ++report.indexes;
      const std::string path = dir->path() + "/" + file_name;
      const auto seg = std::find_if(segments.begin(), segments.end(),
                                    [b = base](const ScannedSegment& s) { return s.base_offset == b; });
      if (seg == segments.end()) {
        add(name, path, 0, 0, "an index without its segment " + detail::segment_file_name(base), Repair::delete_index);
        continue;
      }
      if (!seg->readable) continue; // the segment's damage is reported already
      Result<platform::FileDescriptor> fd = platform::open_file_at(*dir, file_name, platform::Access::read_only);
      if (!fd.ok()) {
        add(name, path, 0, 0, std::string(fd.message()), Repair::delete_index);
        continue;
      }
      Result<platform::FileInfo> info = platform::file_info(*fd);
      if (!info.ok()) throw Failure(std::string(info.message()));
      std::vector<std::byte> bytes(std::min<std::uint64_t>(info->size, std::uint64_t{1} << 28));
      Result<std::size_t> got = platform::read_at(*fd, 0, bytes);
      if (!got.ok()) throw Failure(std::string(got.message()));
      bytes.resize(*got);
      Result<detail::SegmentIndex> decoded = detail::SegmentIndex::decode(bytes, file_name, base, segment_bytes);
      Status st = decoded.ok()
                      ? decoded->verify(std::span<const std::byte>(seg->data.data(), seg->data.size()), file_name,
                                        seg->header.frame_checksum == detail::FrameChecksumKind::crc32c)
                      : decoded.status();
      if (!st.ok()) {
        add(name, path, 0, bytes.size(),
            std::string(st.message()) + "; indexes are rebuilt from their segment, repair deletes it",
            Repair::delete_index);
      }
    }
    reports_.push_back(std::move(report));
  }

  [[nodiscard]] const std::vector<Finding>& findings() const noexcept { return findings_; }
  [[nodiscard]] const std::vector<TopicReport>& reports() const noexcept { return reports_; }

 private:
  Result<TopicOptions> read_meta(const platform::FileDescriptor& dir, const std::string& path,
                                 const std::string& name) {
    Result<platform::FileDescriptor> meta = platform::open_file_at(dir, "topic.meta", platform::Access::read_only);
    if (!meta.ok()) return meta.status();
    std::string text(4096, '\0');
    Result<std::size_t> got = platform::read_at(*meta, 0, std::as_writable_bytes(std::span(text.data(), text.size())));
    if (!got.ok()) return got.status();
    text.resize(*got);
    return detail::decode_topic_meta(text, path, name);
  }

  void scan_segment(const platform::FileDescriptor& dir, const std::string& topic, std::uint64_t segment_bytes,
                    std::uint64_t capacity, ScannedSegment& s, TopicReport& report) {
    Result<platform::FileDescriptor> fd = platform::open_file_at(dir, s.file_name, platform::Access::read_only);
    if (!fd.ok()) {
      if (Result<bool> there = platform::entry_exists_at(dir, s.file_name); there.ok() && !*there) {
        report.notes.push_back(s.path + " was deleted while this ran (retention of a live writer): not checked");
        return;
      }
      add(topic, s.path, 0, 0, std::string(fd.message()), Repair::manual);
      return;
    }
    s.fd = std::move(*fd);
    std::vector<std::byte> header(detail::segment_header_bytes);
    Result<std::size_t> got = platform::read_at(s.fd, 0, header);
    if (!got.ok()) throw Failure(std::string(got.message()));
    Status st =
        detail::validate_segment_header(std::span(header).first(*got), s.file_name, topic, segment_bytes, &s.header);
    if (st.ok() && s.header.ring_capacity != capacity) {
      st = Status(Errc::corrupt_data, "ring_capacity " + std::to_string(s.header.ring_capacity) +
                                          ", topic.meta gives " + std::to_string(capacity));
    }
    if (st.ok() && s.header.page_size != page_size_) {
      st = Status(Errc::corrupt_data, "page_size " + std::to_string(s.header.page_size) + ", this system uses " +
                                          std::to_string(page_size_));
    }
    if (!st.ok()) {
      add(topic, s.path, 0, page_size_, "header: " + std::string(st.message()), Repair::manual);
      return;
    }
    s.seal = detail::seal_of_this_boot(std::span(header).first(*got), s.header.base_position);
    Result<platform::FileInfo> info = platform::file_info(s.fd);
    if (!info.ok()) throw Failure(std::string(info.message()));
    if (info->size < page_size_ + segment_bytes) {
      add(topic, s.path, info->size, page_size_ + segment_bytes,
          "file is " + std::to_string(info->size) + " bytes, a segment file is " +
              std::to_string(page_size_ + segment_bytes) + " (truncated)",
          Repair::manual);
      return;
    }
    Result<platform::FileMapping> data =
        platform::map_file(s.fd, page_size_, static_cast<std::size_t>(segment_bytes), platform::Access::read_only);
    if (!data.ok()) throw Failure(std::string(data.message()));
    s.data = std::move(*data);
    Result<detail::SegmentIndex> index =
        detail::SegmentIndex::create(s.base_offset, segment_bytes, index_interval_bytes);
    if (!index.ok()) throw Failure(std::string(index.message()));
    detail::ScanOptions scan;
    scan.verify_checksums = s.header.frame_checksum == detail::FrameChecksumKind::crc32c;
    scan.other_lap_ends_data = true; // as recovery: a recycled file's last-lap frames end this lap's data
    scan.lap = lap_of(s.header.base_position, capacity);
    s.stop = index->catch_up(std::span<const std::byte>(s.data.data(), s.data.size()), scan);
    s.index = std::move(*index);
    s.readable = true;
  }

  void add(const std::string& topic, std::string file, std::uint64_t begin, std::uint64_t end, std::string problem,
           Repair repair, std::optional<std::uint64_t> position = std::nullopt,
           std::optional<std::uint64_t> offset = std::nullopt) {
    if (problem.starts_with(file + ": ")) problem.erase(0, file.size() + 2); // the file is named once
    findings_.push_back(Finding{topic, std::move(file), begin, end, position, offset, std::move(problem), repair});
  }

  std::string dir_;
  bool check_every_segment_; // as the next writer's open recovers (writer_boot.hpp): every segment, frame by frame
  std::uint64_t page_size_ = 4096;
  std::vector<Finding> findings_;
  std::vector<TopicReport> reports_;
};

Verifier verify_all(const std::string& dir, const std::string& topic) {
  const TopicListing listing = list_topics(dir, topic);
  Verifier v(dir, listing.check_every_segment);
  for (const std::string& name : listing.names) v.topic(listing.topics, name);
  return v;
}

void print(std::ostream& out, const Verifier& v, Format format, const std::optional<long>& writer) {
  if (format == Format::json) {
    for (const Finding& f : v.findings()) {
      out << "{\"kind\":\"damage\",\"topic\":" << json_string(f.topic) << ",\"file\":" << json_string(f.file)
          << ",\"file_offset\":" << f.file_begin << ",\"file_end\":" << f.file_end << ",\"position\":";
      if (f.position) {
        out << *f.position;
      } else {
        out << "null";
      }
      out << ",\"offset\":";
      if (f.offset) {
        out << *f.offset;
      } else {
        out << "null";
      }
      out << ",\"repair\":" << json_string(to_string(f.repair)) << ",\"problem\":" << json_string(f.problem) << "}\n";
    }
    for (const TopicReport& r : v.reports()) {
      out << "{\"kind\":\"topic\",\"topic\":" << json_string(r.name) << ",\"segments\":" << r.segments
          << ",\"indexes\":" << r.indexes << ",\"records\":" << r.records << ",\"first_offset\":" << r.first_offset
          << ",\"end_offset\":" << r.end_offset << ",\"notes\":" << r.notes.size() << "}\n";
    }
    out << "{\"kind\":\"summary\",\"topics\":" << v.reports().size() << ",\"damaged\":" << v.findings().size()
        << ",\"clean\":" << (v.findings().empty() ? "true" : "false") << ",\"writer_pid\":";
    if (writer) {
      out << *writer;
    } else {
      out << "null";
    }
    out << "}\n";
    return;
  }
  if (writer) {
    out << "note: writer pid " << *writer << " holds "
        << "the bus directory: what follows is a snapshot of a live log\n";
  }
  for (const TopicReport& r : v.reports()) {
    std::size_t damaged = 0;
    for (const Finding& f : v.findings()) damaged += f.topic == r.name ? 1 : 0;
    out << "topic " << r.name << ": " << r.segments << " segments, " << r.indexes << " indexes, " << r.records
        << " records (";
    if (r.end_offset > r.first_offset) {
      out << "offsets " << r.first_offset << " .. " << r.end_offset - 1;
    } else {
      out << "none; next offset " << r.end_offset;
    }
    out << "): " << (damaged == 0 ? "ok" : std::to_string(damaged) + " damaged") << '\n';
    for (const std::string& note : r.notes) out << "  note: " << note << '\n';
  }
  for (const Finding& f : v.findings()) {
    out << "DAMAGED " << f.file;
    if (f.file_end > f.file_begin) out << " bytes " << f.file_begin << " .. " << f.file_end - 1;
    if (f.position) out << " (data position " << *f.position << ", offset " << f.offset.value_or(0) << ')';
    out << ": " << f.problem << '\n';
  }
  out << (v.findings().empty() ? "clean" : std::to_string(v.findings().size()) + " damaged") << '\n';
}

} // namespace

int run_verify(const VerifyArgs& args, std::ostream& out) {
  Verifier v = verify_all(args.dir, args.topic);
  const std::optional<long> writer = writer_pid(args.dir);
  print(out, v, args.format, writer);
  if (v.findings().empty()) return exit_ok;
  if (!args.repair) return exit_damaged;

  std::vector<const Finding*> manual;
  for (const Finding& f : v.findings()) {
    if (f.repair == Repair::manual) manual.push_back(&f);
  }
  if (!manual.empty()) {
    std::string files;
    for (const Finding* f : manual) files += "\n  " + f->file;
    // Refused, not failed: the directory is as damaged as reported (exit 1), and untouched.
    std::cerr << "ringbus: --repair refuses: damage outside what a writer's recovery cuts needs manual action "
                 "(restore from a copy, or move the damaged files and the segments after them away); nothing "
                 "was changed. In:"
              << files << '\n';
    return exit_damaged;
  }
  if (writer) {
    throw Failure("--repair needs the bus directory to itself: writer pid " + std::to_string(*writer) + " holds " +
                  args.dir + "/LOCK; stop it first");
  }
  {
    // Recovery of every topic, as any writer would do at open.
    BusOptions options;
    options.flusher_thread = false;
    Result<Bus> bus = Bus::open(args.dir, options);
    if (!bus.ok()) throw Failure("--repair: " + std::string(bus.message()));
    for (const Finding& f : v.findings()) {
      if (f.repair != Repair::delete_index) continue;
      Result<platform::FileDescriptor> dir = platform::open_directory(args.dir + "/topics/" + f.topic);
      if (!dir.ok()) throw Failure("--repair: " + std::string(dir.message()));
      const std::string name = f.file.substr(f.file.rfind('/') + 1);
      if (Status st = platform::remove_file_at(*dir, name); !st.ok())
        throw Failure("--repair: " + std::string(st.message()));
      if (Status st = platform::sync_directory(*dir); !st.ok()) throw Failure("--repair: " + std::string(st.message()));
    }
    if (Status st = bus->flush(); !st.ok()) throw Failure("--repair: " + std::string(st.message()));
    bus->close();
  }
  Verifier after = verify_all(args.dir, args.topic);
  if (args.format == Format::text) out << "after repair:\n";
  print(out, after, args.format, std::nullopt);
  return after.findings().empty() ? exit_ok : exit_damaged;
}

} // namespace ringbus::cli
