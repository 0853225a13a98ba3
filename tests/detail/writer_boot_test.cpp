// The boot a bus directory's last writer ran in, and what recovery does with
// it: in the same boot the page cache kept every write; after a reboot every
// segment is checked frame by frame with its checksums, and the log is cut at
// the first damage (a power loss's unwritten page), never handing out a torn
// record or stopping readers short of the end.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
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

// What a power loss and the reboot after it leave: writer.boot names another boot.
void pretend_reboot(const TempBusDir& dir) { write_text(dir.path() + "/writer.boot", "not-this-boot"); }

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

} // namespace

TEST_CASE("a writable open records this boot and a read-only open records nothing") {
  const std::string boot = platform::boot_id();
  if (boot.empty()) return; // no boot id here: every open checks everything (tested below)
  TempBusDir dir;
  const std::string file = dir.path() + "/writer.boot";
  { Bus bus = open_bus(dir.path(), no_flusher()); }
  CHECK(read_text(file) == boot);
  CHECK(detail::same_boot_as_last_writer(open_dir(dir.path())));

  pretend_reboot(dir);
  CHECK_FALSE(detail::same_boot_as_last_writer(open_dir(dir.path())));
  { Bus reader = open_reader(dir.path()); }
  CHECK(read_text(file) == "not-this-boot"); // a follower does not vouch for the writer's pages
  { Bus bus = open_bus(dir.path(), no_flusher()); }
  CHECK(read_text(file) == boot);

  std::filesystem::remove(file);
  CHECK_FALSE(detail::same_boot_as_last_writer(open_dir(dir.path())));
  std::filesystem::remove(file + ".tmp"); // (none: a crash's leftover would be replaced)
  write_text(file + ".tmp", "half-written");
  { Bus bus = open_bus(dir.path(), no_flusher()); }
  CHECK(read_text(file) == boot);
  CHECK_FALSE(std::filesystem::exists(file + ".tmp"));
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
  // The page lost lies inside record 1's value, its header untouched: only
  // the checksum can tell.
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
      append_numbered(*p, 7, value_bytes); // segment 0: 0-2, segment 1: 3-5, the tail: 6
    }
    std::vector<std::string> segments = dir.segments("t");
    REQUIRE(segments.size() == 3);
    const std::uint64_t record_1 = packed_frame_bytes(value_bytes);
    damage_segment_data(segments[0], record_1 + 4096, 4096, fill);
    pretend_reboot(dir);
    {
      const std::unique_ptr<detail::TopicStore> store = recover_after_reboot(dir, "t", true);
      CHECK(store->recovery().dropped_damaged_segments == 2);
      CHECK(contains(store->recovery().cut_reason, "checksum"));
      CHECK(store->restored().next_offset == 1);
      CHECK(dir.segments("t").size() == 3); // read-only: nothing on disk changes
    }
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      CHECK(dir.segments("t").size() == 1); // the segments after the cut are gone from the disk
      Result<TopicInfo> info = bus.describe("t");
      REQUIRE(info.ok());
      CHECK(info->end_offset == 1);
      check_numbered(read_topic(bus, "t"), 0, 1, value_bytes);
      // The log goes on from the cut, and a reopen (this boot now) keeps it.
      Result<Producer> p = bus.producer("t");
      REQUIRE(p.ok());
      append_numbered(*p, 5, value_bytes);
    }
    Bus again = open_bus(dir.path(), no_flusher());
    check_numbered(read_topic(again, "t"), 0, 6, value_bytes);
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
  Result<TopicInfo> info = bus.describe("t");
  REQUIRE(info.ok());
  CHECK(info->oldest_offset == 0);
  CHECK(info->end_offset == records_per_small_segment);
  Result<Consumer> c = bus.consumer("t");
  REQUIRE(c.ok());
  check_numbered(drain(*c), 0, records_per_small_segment, even_value_bytes);
  Result<std::uint64_t> lost = c->lost("t");
  REQUIRE(lost.ok());
  CHECK(*lost == 0);
}

TEST_CASE("in the same boot recovery trusts the page cache and checks the tail alone") {
  if (platform::boot_id().empty()) return; // every open checks everything here
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
