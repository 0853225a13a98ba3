// The boot a bus directory's last writer ran in, and what recovery does with
// it: in the same boot the page cache kept every write; after a reboot every
// segment is checked frame by frame with its checksums, and the log is cut at
// the first damage (a power loss's unwritten page), never handing out a torn
// record or stopping readers short of the end.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "detail/topic_store.hpp"
#include "detail/writer_boot.hpp"
#include "persist_support.hpp"
#include "platform/files.hpp"
#include "platform/platform.hpp"
#include "test_support.hpp"

using namespace ringbus;
using namespace ringbus::test;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  REQUIRE(f.good());
}

// Overwrites `bytes` bytes of a segment's data at `at` (the file's first page is its header).
void damage_segment_data(const std::string& segment, std::uint64_t at, std::size_t bytes, char fill = 0) {
  const std::vector<char> data(bytes, fill);
  std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f.good());
  f.seekp(static_cast<std::streamoff>(platform::system_page_size() + at));
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  REQUIRE(f.good());
}

platform::FileDescriptor open_dir(const std::string& path) {
  Result<platform::FileDescriptor> dir = platform::open_directory(path);
  REQUIRE_MESSAGE(dir.ok(), dir.message());
  return std::move(*dir);
}

// The topic recovered as Bus::open after a reboot would, through the store itself, to read its report.
std::unique_ptr<detail::TopicStore> recover_after_reboot(const TempBusDir& dir, const std::string& topic,
                                                         bool read_only) {
  const platform::FileDescriptor topics = open_dir(dir.path() + "/topics");
  Result<std::unique_ptr<detail::TopicStore>> store = detail::TopicStore::open(topics, topic, read_only, true);
  REQUIRE_MESSAGE(store.ok(), store.message());
  return std::move(*store);
}

// Every record of the topic, read by a fresh consumer from the oldest.
std::vector<OwnedRecord> read_topic(Bus& bus, const std::string& topic) {
  Result<Consumer> c = bus.consumer(topic);
  REQUIRE_MESSAGE(c.ok(), c.message());
  return drain(*c);
}

void check_numbered(const std::vector<OwnedRecord>& records, std::uint64_t first, std::uint64_t end, std::size_t size) {
  REQUIRE(records.size() == end - first);
  for (std::size_t i = 0; i < records.size(); ++i) {
    CAPTURE(i);
    CHECK(records[i].offset == first + i);
    CHECK(records[i].value == value_for(first + i, size));
  }
}

// The writer.boot a writable open of dir records now: this boot, and which directory it is.
std::string this_boot_of(const TempBusDir& dir) {
  const std::string boot = platform::boot_id();
  Result<platform::FileInfo> info = platform::file_info(open_dir(dir.path()));
  REQUIRE(info.ok());
  return boot + " " + std::to_string(info->device) + ":" + std::to_string(info->inode);
}

// Overwrites `bytes` bytes of a file at `at` with zeros.
void zero_file_bytes(const std::string& path, std::uint64_t at, std::size_t bytes) {
  const std::vector<char> zeros(bytes, 0);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f.good());
  f.seekp(static_cast<std::streamoff>(at));
  f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  REQUIRE(f.good());
}

// The files recovery set aside in the topic's directory (<segment>.damaged...).
std::vector<std::string> set_aside_files(const TempBusDir& dir, const std::string& topic) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir.topic_dir(topic))) {
    if (contains(e.path().filename().string(), ".seg.damaged")) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// `segments` full segments of numbered records and a tail of `tail` more, on a persistent ring of 8.
void write_segments(const TempBusDir& dir, std::uint64_t segments, std::uint64_t tail) {
  Bus bus = open_bus(dir.path(), no_flusher());
  REQUIRE(bus.create_topic("t", persistent_small_ring(8)).ok());
  Result<Producer> p = bus.producer("t");
  REQUIRE(p.ok());
  append_numbered(*p, records_per_small_segment * segments + tail);
}

} // namespace

TEST_CASE("a writable open records this boot and a read-only open records nothing") {
  const std::string boot = platform::boot_id();
  if (boot.empty()) {
    MESSAGE("this system gives no boot id: every open checks everything (the other cases test that)");
    return;
  }
  TempBusDir dir;
  const std::string file = dir.path() + "/writer.boot";
  { Bus bus = open_bus(dir.path(), no_flusher()); }
  CHECK(read_text(file) == this_boot_of(dir));
  CHECK(detail::same_boot_as_last_writer(open_dir(dir.path())));

  pretend_reboot(dir);
  CHECK_FALSE(detail::same_boot_as_last_writer(open_dir(dir.path())));
  { Bus reader = open_reader(dir.path()); }
  CHECK(read_text(file) == "not-this-boot"); // a follower does not vouch for the writer's pages
  { Bus bus = open_bus(dir.path(), no_flusher()); }
  CHECK(read_text(file) == this_boot_of(dir));

  std::filesystem::remove(file);
  CHECK_FALSE(detail::same_boot_as_last_writer(open_dir(dir.path())));
  std::filesystem::remove(file + ".tmp"); // (none: a crash's leftover would be replaced)
  write_text(file + ".tmp", "half-written");
  { Bus bus = open_bus(dir.path(), no_flusher()); }
  CHECK(read_text(file) == this_boot_of(dir));
  CHECK_FALSE(std::filesystem::exists(file + ".tmp"));
}

TEST_CASE("a copy of a bus directory is checked whole in the boot its original was written in") {
  if (platform::boot_id().empty()) {
    MESSAGE("this system gives no boot id: every open checks everything");
    return;
  }
  TempBusDir dir;
  write_segments(dir, 2, 1);
  CHECK(detail::same_boot_as_last_writer(open_dir(dir.path())));
  // A restored backup or a copy: what a crash left at any point, not this page cache's.
  TempBusDir copy;
  std::filesystem::copy(dir.path(), copy.path(),
                        std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
  CHECK(read_text(copy.path() + "/writer.boot") == read_text(dir.path() + "/writer.boot"));
  CHECK_FALSE(detail::same_boot_as_last_writer(open_dir(copy.path())));
  const std::unique_ptr<detail::TopicStore> store = recover_after_reboot(copy, "t", true);
  CHECK(store->recovery().checked_every_segment);
  CHECK(store->restored().next_offset == records_per_small_segment * 2 + 1);
  { Bus bus = open_bus(copy.path(), no_flusher()); } // and its first writer vouches for it from here
  CHECK(detail::same_boot_as_last_writer(open_dir(copy.path())));
}

TEST_CASE("after a reboot a whole log is kept whole, recycled segments included") {
  TempBusDir dir;
  std::uint64_t end = 0;
  {
    Bus bus = open_bus(dir.path(), no_flusher());
    REQUIRE(bus.create_topic("laps", persistent_small_ring(4)).ok());
    Result<Producer> p = bus.producer("laps");
    REQUIRE(p.ok());
    append_numbered(*p, records_per_small_segment * 10 + 5); // two and a half laps, the tail part-full
    end = p->next_offset();
  }
  pretend_reboot(dir);
  {
    const std::unique_ptr<detail::TopicStore> store = recover_after_reboot(dir, "laps", true);
    CHECK(store->recovery().checked_every_segment);
    CHECK(store->recovery().dropped_damaged_segments == 0);
    CHECK(store->recovery().cut_reason.empty());
    CHECK(store->restored().next_offset == end);
  }
  Bus bus = open_bus(dir.path(), no_flusher());
  Result<TopicInfo> info = bus.describe("laps");
  REQUIRE(info.ok());
  CHECK(info->end_offset == end);
  check_numbered(read_topic(bus, "laps"), info->oldest_offset, end, even_value_bytes);
}

TEST_CASE("after a reboot a page lost inside a sealed segment's record cuts the log before that record") {
  // 32 KiB segments of 10000-byte records: three in a segment, then a pad.
  // The page lost lies inside record 4's value (segment 1, between the
  // oldest and the tail), its header untouched: only the checksum can tell.
  constexpr std::size_t value_bytes = 10000;
  TopicOptions o;
  o.storage = Storage::persistent;
  o.segment_bytes = 32 * 1024;
  o.segment_count = 4;
  for (const char fill : {'\0', 'x'}) { // a page never written back; a page of older bytes
    CAPTURE(static_cast<int>(fill));
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      REQUIRE(bus.create_topic("t", o).ok());
      Result<Producer> p = bus.producer("t");
      REQUIRE(p.ok());
      append_numbered(*p, 10, value_bytes); // segment 0: 0-2, segment 1: 3-5, segment 2: 6-8, the tail: 9
    }
    std::vector<std::string> segments = dir.segments("t");
    REQUIRE(segments.size() == 4);
    const std::uint64_t record_1 = packed_frame_bytes(value_bytes); // the second record of its segment
    damage_segment_data(segments[1], record_1 + 4096, 4096, fill);
    pretend_reboot(dir);
    {
      const std::unique_ptr<detail::TopicStore> store = recover_after_reboot(dir, "t", true);
      CHECK(store->recovery().dropped_damaged_segments == 2);
      CHECK(store->recovery().dropped_oldest_segments == 0);
      CHECK(contains(store->recovery().cut_reason, "checksum"));
      CHECK(store->restored().head_offset == 0);
      CHECK(store->restored().next_offset == 4);
      CHECK(dir.segments("t").size() == 4); // read-only: nothing on disk changes
    }
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      CHECK(dir.segments("t").size() == 2); // the segments after the cut left the log
      // ... but nothing is deleted: the later segments were renamed aside,
      // and the damaged one was copied before its tail was cut and zeroed.
      const std::vector<std::string> aside = set_aside_files(dir, "t");
      REQUIRE(aside.size() == 3);
      CHECK(aside[0] == std::filesystem::path(segments[1]).filename().string() + ".damaged");
      CHECK(aside[2] == std::filesystem::path(segments[3]).filename().string() + ".damaged");
      CHECK(std::filesystem::file_size(dir.topic_dir("t") + "/" + aside[0]) == std::filesystem::file_size(segments[1]));
      Result<TopicInfo> info = bus.describe("t");
      REQUIRE(info.ok());
      CHECK(info->oldest_offset == 0);
      CHECK(info->end_offset == 4);
      CHECK(contains(info->recovery, "checksum"));
      CHECK(contains(info->recovery, "2 segments after it were dropped"));
      CHECK(contains(info->recovery, aside[1]));
      check_numbered(read_topic(bus, "t"), 0, 4, value_bytes);
      // The log goes on from the cut, and a reopen (this boot now) keeps it.
      Result<Producer> p = bus.producer("t");
      REQUIRE(p.ok());
      append_numbered(*p, 5, value_bytes);
    }
    Bus again = open_bus(dir.path(), no_flusher());
    check_numbered(read_topic(again, "t"), 0, 9, value_bytes);
    CHECK(again.describe("t").value().recovery.empty()); // a clean open repaired nothing
  }
}

TEST_CASE("after a reboot a checksum-damaged oldest segment moves the head and keeps the rest") {
  TempBusDir dir;
  write_segments(dir, 4, 3); // segments 0-3 full, a tail of 3
  const std::vector<std::string> segments = dir.segments("t");
  REQUIRE(segments.size() == 5);
  damage_segment_data(segments[0], 3 * 64 + 40, 1, '#'); // one byte inside record 3's value
  pretend_reboot(dir);
  {
    const std::unique_ptr<detail::TopicStore> store = recover_after_reboot(dir, "t", true);
    CHECK(store->recovery().dropped_oldest_segments == 1);
    CHECK(store->recovery().dropped_damaged_segments == 0);
    CHECK(store->restored().head_offset == records_per_small_segment);
    CHECK(store->restored().next_offset == records_per_small_segment * 4 + 3);
  }
  Bus bus = open_bus(dir.path(), no_flusher());
  const TopicInfo info = bus.describe("t").value();
  INFO("recovery: " << info.recovery);
  CHECK(info.end_offset == records_per_small_segment * 4 + 3);
  CHECK(info.oldest_offset == records_per_small_segment);
  CHECK(dir.segments("t").size() == 4);
  CHECK(set_aside_files(dir, "t") ==
        std::vector<std::string>{std::filesystem::path(segments[0]).filename().string() + ".damaged"});
  CHECK(contains(info.recovery, "checksum"));
  CHECK(contains(info.recovery, "the head moved past the oldest segment"));
  check_numbered(read_topic(bus, "t"), records_per_small_segment, records_per_small_segment * 4 + 3, even_value_bytes);
  // New appends take new offsets: none already read is handed out again.
  Result<Producer> p = bus.producer("t");
  REQUIRE(p.ok());
  CHECK(p->next_offset() == records_per_small_segment * 4 + 3);
}

TEST_CASE("after a reboot checksum-damaged oldest segments all leave and an only segment is cut like a tail") {
  SUBCASE("the two oldest damaged: the head moves past both") {
    TempBusDir dir;
    write_segments(dir, 4, 3);
    const std::vector<std::string> segments = dir.segments("t");
    REQUIRE(segments.size() == 5);
    damage_segment_data(segments[0], 3 * 64 + 40, 1, '#');
    damage_segment_data(segments[1], 5 * 64 + 40, 1, '#');
    pretend_reboot(dir);
    Bus bus = open_bus(dir.path(), no_flusher());
    const TopicInfo info = bus.describe("t").value();
    INFO("recovery: " << info.recovery);
    CHECK(info.oldest_offset == 2 * records_per_small_segment);
    CHECK(info.end_offset == records_per_small_segment * 4 + 3);
    CHECK(set_aside_files(dir, "t").size() == 2);
    CHECK(contains(info.recovery, "the head moved past the 2 oldest segments"));
  }
  SUBCASE("the oldest is the only segment: cut at the damage, a copy kept") {
    TempBusDir dir;
    write_segments(dir, 0, 10);
    const std::vector<std::string> segments = dir.segments("t");
    REQUIRE(segments.size() == 1);
    damage_segment_data(segments[0], 3 * 64 + 40, 1, '#');
    pretend_reboot(dir);
    Bus bus = open_bus(dir.path(), no_flusher());
    const TopicInfo info = bus.describe("t").value();
    INFO("recovery: " << info.recovery);
    CHECK(info.oldest_offset == 0);
    CHECK(info.end_offset == 3);
    CHECK(dir.segments("t").size() == 1);
    CHECK(set_aside_files(dir, "t").size() == 1); // the copy made before the cut
    CHECK(contains(info.recovery, "checksum"));
    CHECK_FALSE(contains(info.recovery, "head moved"));
  }
}

TEST_CASE("after a reboot a page lost in a middle segment ends the log there instead of stalling readers") {
  TempBusDir dir;
  {
    Bus bus = open_bus(dir.path(), no_flusher());
    REQUIRE(bus.create_topic("t", persistent_small_ring(8)).ok());
    Result<Producer> p = bus.producer("t");
    REQUIRE(p.ok());
    append_numbered(*p, records_per_small_segment * 4 + 3); // four full segments and a tail of 3
  }
  std::vector<std::string> segments = dir.segments("t");
  REQUIRE(segments.size() == 5);
  damage_segment_data(segments[1], 0, small_segment_bytes); // the whole of segment 1's one page
  pretend_reboot(dir);
  Bus bus = open_bus(dir.path(), no_flusher());
  CHECK(dir.segments("t").size() == 2);
  CHECK(set_aside_files(dir, "t").size() == 4); // a copy of segment 1, and segments 2-4
  Result<TopicInfo> info = bus.describe("t");
  REQUIRE(info.ok());
  CHECK(contains(info->recovery, "its frames end at byte 0"));
  CHECK(info->oldest_offset == 0);
  CHECK(info->end_offset == records_per_small_segment);
  Result<Consumer> c = bus.consumer("t");
  REQUIRE(c.ok());
  check_numbered(drain(*c), 0, records_per_small_segment, even_value_bytes);
  Result<std::uint64_t> lost = c->lost("t");
  REQUIRE(lost.ok());
  CHECK(*lost == 0);
}

TEST_CASE("after a reboot a segment whose header was lost ends the log before it and an oldest one moves the head") {
  for (const std::size_t lost : {std::size_t{2}, std::size_t{0}}) {
    CAPTURE(lost);
    TempBusDir dir;
    write_segments(dir, 4, 3); // segments 0-3 full, a tail of 3
    const std::vector<std::string> segments = dir.segments("t");
    REQUIRE(segments.size() == 5);
    zero_file_bytes(segments[lost], 0, 64); // the header page never written back
    // In the same boot a header cannot be torn: it is a foreign or broken file, named.
    {
      Result<Bus> refused = Bus::open(dir.path(), no_flusher());
      if (!platform::boot_id().empty()) {
        REQUIRE_FALSE(refused.ok());
        CHECK(refused.code() == Errc::corrupt_data);
        CHECK(contains(refused.message(), std::filesystem::path(segments[lost]).filename().string()));
      }
    }
    pretend_reboot(dir);
    Bus bus = open_bus(dir.path(), no_flusher());
    Result<TopicInfo> info = bus.describe("t");
    REQUIRE(info.ok());
    CHECK(contains(info->recovery, std::filesystem::path(segments[lost]).filename().string()));
    if (lost == 2) { // the log ends with segment 1; segments 2-4 are set aside
      CHECK(set_aside_files(dir, "t").size() == 3);
      CHECK(info->oldest_offset == 0);
      CHECK(info->end_offset == 2 * records_per_small_segment);
      check_numbered(read_topic(bus, "t"), 0, 2 * records_per_small_segment, even_value_bytes);
    } else { // the oldest alone goes, as retention would take it
      CHECK(set_aside_files(dir, "t").size() == 1);
      CHECK(info->oldest_offset == records_per_small_segment);
      CHECK(info->end_offset == 4 * records_per_small_segment + 3);
      check_numbered(read_topic(bus, "t"), records_per_small_segment, 4 * records_per_small_segment + 3,
                     even_value_bytes);
    }
    // Appends go on from the end, and the set-aside files stay out of the log.
    Result<Producer> p = bus.producer("t");
    REQUIRE(p.ok());
    const std::uint64_t end = info->end_offset;
    append_numbered(*p, records_per_small_segment + 1);
    CHECK(p->next_offset() == end + records_per_small_segment + 1);
  }
}

TEST_CASE("after a reboot pad-sealed segments and a batch across rolls are kept whole") {
  // 40-byte values: 72-byte frames, 56 in a 4 KiB segment and a 64-byte pad.
  constexpr std::size_t value_bytes = 40;
  TempBusDir dir;
  std::uint64_t end = 0;
  {
    Bus bus = open_bus(dir.path(), no_flusher());
    REQUIRE(bus.create_topic("t", persistent_small_ring(8)).ok());
    Result<Producer> p = bus.producer("t");
    REQUIRE(p.ok());
    append_numbered(*p, 100, value_bytes);
    std::vector<std::string> values;
    std::vector<Message> batch;
    for (std::uint64_t i = 0; i < 150; ++i) values.push_back(value_for(100 + i, value_bytes)); // crosses 2 rolls
    for (const std::string& v : values) batch.push_back(msg("", v));
    REQUIRE(p->append_batch(batch).value() == 100);
    append_numbered(*p, 7, value_bytes);
    end = p->next_offset();
  }
  REQUIRE(dir.segments("t").size() >= 4);
  pretend_reboot(dir);
  Bus bus = open_bus(dir.path(), no_flusher());
  Result<TopicInfo> info = bus.describe("t");
  REQUIRE(info.ok());
  CHECK(info->recovery.empty());
  CHECK(info->end_offset == end);
  CHECK(set_aside_files(dir, "t").empty());
  check_numbered(read_topic(bus, "t"), 0, end, value_bytes);
}

TEST_CASE("in the same boot recovery trusts the page cache and checks the tail alone") {
  if (platform::boot_id().empty()) {
    MESSAGE("this system gives no boot id: every open checks everything");
    return;
  }
  TempBusDir dir;
  {
    Bus bus = open_bus(dir.path(), no_flusher());
    REQUIRE(bus.create_topic("t", persistent_small_ring(4)).ok());
    Result<Producer> p = bus.producer("t");
    REQUIRE(p.ok());
    append_numbered(*p, records_per_small_segment * 2 + 1);
  }
  const platform::FileDescriptor topics = open_dir(dir.path() + "/topics");
  const bool check_every_segment = !detail::same_boot_as_last_writer(open_dir(dir.path()));
  CHECK_FALSE(check_every_segment);
  Result<std::unique_ptr<detail::TopicStore>> store = detail::TopicStore::open(topics, "t", true, check_every_segment);
  REQUIRE(store.ok());
  CHECK_FALSE((*store)->recovery().checked_every_segment);
  CHECK((*store)->restored().next_offset == records_per_small_segment * 2 + 1);
}

TEST_CASE("after a reboot a page lost before the tail, in the oldest segment or in the tail deletes no record") {
  // Frames' first words lost mid-segment: the sealed-segment rules, not a
  // checksum, find it first. Whatever leaves the log is set aside.
  for (const std::size_t lost : {std::size_t{3}, std::size_t{0}, std::size_t{4}}) {
    CAPTURE(lost);
    TempBusDir dir;
    write_segments(dir, 4, 40); // segments 0-3 full, a tail of 40 (64-byte frames)
    std::vector<std::string> segments = dir.segments("t");
    REQUIRE(segments.size() == 5);
    damage_segment_data(segments[lost], 1024, 512);
    pretend_reboot(dir);
    Bus bus = open_bus(dir.path(), no_flusher());
    const std::vector<std::string> aside = set_aside_files(dir, "t");
    const TopicInfo info = bus.describe("t").value();
    CHECK(contains(info.recovery, std::filesystem::path(segments[lost]).filename().string()));
    if (lost == 0) { // the oldest, set aside: the head moves past it
      REQUIRE(aside.size() == 1);
      CHECK(dir.segments("t").size() == 4);
      CHECK(info.oldest_offset == records_per_small_segment);
      CHECK(info.end_offset == 4 * records_per_small_segment + 40);
    } else { // cut at the damage: a copy of the damaged segment, and the later ones, aside
      CHECK(aside.size() == 5 - lost);
      CHECK(dir.segments("t").size() == lost + 1);
      CHECK(info.end_offset == lost * records_per_small_segment + 1024 / 64);
    }
    check_numbered(read_topic(bus, "t"), info.oldest_offset, info.end_offset, even_value_bytes);
  }
}

TEST_CASE("a topic whose only segment lost its header after a reboot is refused until its files are moved out") {
  TempBusDir dir;
  write_segments(dir, 0, 3);
  const std::vector<std::string> segments = dir.segments("t");
  REQUIRE(segments.size() == 1);
  zero_file_bytes(segments[0], 0, 64);
  pretend_reboot(dir);
  {
    Result<Bus> refused = Bus::open(dir.path(), no_flusher());
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.code() == Errc::corrupt_data);
    CHECK(contains(refused.message(), "no segment is left"));
    CHECK(contains(refused.message(), std::filesystem::path(segments[0]).filename().string() + ".damaged"));
  }
  for (int again = 0; again < 2; ++again) { // a supervisor retrying the open, in this boot and the next
    CAPTURE(again);
    if (again == 1) pretend_reboot(dir);
    Result<Bus> refused = Bus::open(dir.path(), no_flusher());
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.code() == Errc::corrupt_data);
    CHECK(contains(refused.message(), "only files an earlier recovery set aside"));
    CHECK(contains(refused.message(), "offset 0"));
  }
  std::filesystem::rename(segments[0] + ".damaged", dir.path() + "/kept.damaged");
  Bus bus = open_bus(dir.path(), no_flusher());
  CHECK(bus.describe("t").value().end_offset == 0);
}

TEST_CASE(
    "after a reboot a follower stops where the writer's recovery ends the log and follows what the writer appends") {
  TempBusDir dir;
  write_segments(dir, 4, 3); // segments 0-3 full, a tail of 3
  const std::vector<std::string> segments = dir.segments("t");
  REQUIRE(segments.size() == 5);
  std::filesystem::remove(segments[2]); // a middle segment gone: the log ends with segment 1
  pretend_reboot(dir);
  Bus reader = open_reader(dir.path());
  const TopicInfo info = reader.describe("t").value();
  CHECK(info.oldest_offset == 0);
  CHECK(info.end_offset == 2 * records_per_small_segment);
  Result<Consumer> c = reader.consumer("t");
  REQUIRE(c.ok());
  // Not a lap: the segments after the missing one are what a writer's
  // recovery sets aside, not the log's next records.
  check_numbered(drain(*c), 0, 2 * records_per_small_segment, even_value_bytes);
  CHECK(c->lost("t").value() == 0);
  CHECK(c->poll(16, std::chrono::milliseconds(20)).value().empty());
  CHECK(c->lost("t").value() == 0);
  {
    // The writer comes: it sets those segments aside and appends from the end.
    Bus writer = open_bus(dir.path(), no_flusher());
    CHECK(writer.describe("t").value().end_offset == 2 * records_per_small_segment);
    Result<Producer> p = writer.producer("t");
    REQUIRE(p.ok());
    append_numbered(*p, records_per_small_segment + 5);
  }
  const std::uint64_t end = 3 * records_per_small_segment + 5;
  std::vector<OwnedRecord> more;
  for (int i = 0; i < 200 && (more.empty() || more.back().offset + 1 < end); ++i) {
    std::vector<OwnedRecord> got = drain(*c);
    if (got.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5)); // the follower lists files every 10 ms
    more.insert(more.end(), got.begin(), got.end());
  }
  check_numbered(more, 2 * records_per_small_segment, end, even_value_bytes);
  CHECK(c->lost("t").value() == 0);
}
