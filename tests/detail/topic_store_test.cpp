// Persistent topics through the public API: reopen and replay, seeks by offset
// and time across segments, durability modes, retention, durable offsets, and
// the errors for foreign files, other versions, planted links, a second writer
// and a full disk.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "detail/topic_store.hpp"
#include "persist_support.hpp"
#include "platform/files.hpp"
#include "ringbus/detail/checksum.hpp"
#include "ringbus/detail/frame_layout.hpp"
#include "ringbus/detail/segment_layout.hpp"
#include "test_support.hpp"

using namespace ringbus;
using namespace ringbus::test;
using namespace std::chrono_literals;

namespace {

TopicOptions persistent_ring(std::size_t segment_count = 8, Durability durability = Durability::none) {
  TopicOptions o = small_ring(segment_count);
  o.durability = durability;
  return o;
}

// Appends count records with values value_for(offset, size) and timestamps 1000 * (offset + 1).
void append_timed(Producer& p, std::size_t count, std::size_t size = even_value_bytes) {
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t offset = p.next_offset();
    const std::string value = value_for(offset, size);
    const std::string key = key_for(offset);
    Result<std::uint64_t> r = p.append(msg(key, value, static_cast<std::int64_t>(1000 * (offset + 1))));
    REQUIRE_MESSAGE(r.ok(), r.message());
    REQUIRE(*r == offset);
  }
}

void check_numbered(const std::vector<OwnedRecord>& records, std::uint64_t first, std::size_t count,
                    std::size_t size = even_value_bytes) {
  REQUIRE(records.size() == count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t offset = first + i;
    REQUIRE(records[i].offset == offset);
    REQUIRE(records[i].value == value_for(offset, size));
    REQUIRE(records[i].key == key_for(offset));
    REQUIRE(records[i].timestamp_ns == static_cast<std::int64_t>(1000 * (offset + 1)));
  }
}

// One poll of a follower of numbered records (append_timed): every gap starts
// where the records stopped and every record is the next one, whole. Moves
// next past both and adds the gaps to lost; false when the poll was empty.
bool check_follower_poll(const Records& r, std::uint64_t& next, std::uint64_t& lost) {
  for (const Gap& g : r.gaps()) {
    CHECK(g.first_lost == next);
    next += g.count;
    lost += g.count;
  }
  for (const Record& rec : r) {
    REQUIRE(rec.offset == next);
    REQUIRE(str(rec.value) == value_for(next, even_value_bytes));
    REQUIRE(str(rec.key) == key_for(next));
    ++next;
  }
  return !r.empty();
}

std::vector<OwnedRecord> read_all(Bus& bus, const std::string& topic) {
  Result<Consumer> c = bus.consumer(topic);
  REQUIRE_MESSAGE(c.ok(), c.message());
  return drain(*c);
}

// The inode numbers of files: a recycled segment file keeps its inode under its new name.
std::set<ino_t> inodes_of(const std::vector<std::string>& files) {
  std::set<ino_t> out;
  for (const std::string& f : files) {
    struct stat st {};
    REQUIRE(::stat(f.c_str(), &st) == 0);
    out.insert(st.st_ino);
  }
  return out;
}

std::vector<std::string> temp_files(const TempBusDir& dir, const std::string& topic) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir.topic_dir(topic))) {
    if (e.path().extension() == ".tmp") out.push_back(e.path().filename().string());
  }
  return out;
}

// A persistent topic with 20 records (append_timed), and a consumer of a
// read-only bus on its directory that has read them.
struct FollowedTopic {
  FollowedTopic() {
    REQUIRE(writer.create_topic("t", persistent_ring()).ok());
    producer = writer.producer("t").value();
    append_timed(producer, 20);
    reader = open_reader(dir.path());
    consumer = reader.consumer("t").value();
    check_numbered(drain(consumer), 0, 20);
    segment = dir.segments("t").front();
  }
  TempBusDir dir;
  Bus writer = open_bus(dir.path(), no_flusher());
  Producer producer;
  Bus reader;
  Consumer consumer;
  std::string segment; // its first segment file
};

// The byte of a segment file where its frame number `index` starts (0: the
// first), walking the frames before it.
std::size_t frame_in_file(const std::string& segment, int index) {
  const std::vector<std::byte> bytes = file_bytes(segment);
  std::uint32_t page = 0;
  std::memcpy(&page, bytes.data() + offsetof(detail::SegmentHeader, page_size), sizeof page);
  std::size_t at = page;
  for (int i = 0; i < index; ++i) {
    std::uint64_t word0 = 0;
    std::memcpy(&word0, bytes.data() + at, sizeof word0);
    at += detail::align_up(detail::word0_length(word0), detail::frame_alignment);
  }
  return at;
}

std::uint64_t word_in_file(const std::string& path, std::size_t at) {
  std::uint64_t word = 0;
  std::memcpy(&word, file_bytes(path).data() + at, sizeof word);
  return word;
}

// Writes through the file, under the writer's and the follower's mappings.
void put_word_in_file(const std::string& path, std::size_t at, std::uint64_t word) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(reinterpret_cast<const char*>(&word), sizeof word);
}

// `word` with the lap tag of the publication word `lap_word`.
std::uint64_t with_lap_of(std::uint64_t lap_word, std::uint64_t word) {
  const std::uint64_t lap = detail::word0_lap_bits(~std::uint64_t{0});
  return (word & ~lap) | (lap_word & lap);
}

// count messages numbered as append_timed numbers them (key, value, timestamp), from offset first.
struct NumberedBatch {
  NumberedBatch(std::uint64_t first, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      keys.push_back(key_for(first + i));
      values.push_back(value_for(first + i, even_value_bytes));
    }
    for (std::size_t i = 0; i < count; ++i) {
      messages.push_back(msg(keys[i], values[i], static_cast<std::int64_t>(1000 * (first + i + 1))));
    }
  }
  std::vector<std::string> keys;
  std::vector<std::string> values;
  std::vector<Message> messages;
};

// A topic of persistent_ring(8) filled until its 8 segment files exist and
// the last is nearly full (the next roll enters the ring slot of the oldest),
// with an open descriptor on each file so that no inode of theirs is reused
// by a new file while it lives.
struct FullRing {
  explicit FullRing(const std::string& topic) : name(topic) {
    REQUIRE(bus.create_topic(name, persistent_ring(8)).ok());
    producer = bus.producer(name).value();
    while (dir.segments(name).size() < 8) append_timed(producer, 1);
    append_timed(producer, 45); // 46 of the 51 records a segment holds: near its end
    for (const std::string& f : dir.segments(name)) {
      const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
      REQUIRE(fd >= 0);
      held.push_back(fd);
    }
    first_lap = inodes_of(dir.segments(name));
  }
  ~FullRing() {
    for (const int fd : held) ::close(fd);
  }
  FullRing(const FullRing&) = delete;
  FullRing& operator=(const FullRing&) = delete;

  // Every numbered record from the oldest held to the last appended, read
  // live, then the same range after closing the bus and reopening it. Closes bus.
  void check_every_record_live_and_after_a_reopen() {
    const std::uint64_t end = producer.next_offset();
    const std::vector<OwnedRecord> live = read_all(bus, name);
    REQUIRE(!live.empty());
    check_numbered(live, live.front().offset, static_cast<std::size_t>(end - live.front().offset));
    bus.close();
    Bus reopened = open_bus(dir.path());
    const std::vector<OwnedRecord> recovered = read_all(reopened, name);
    REQUIRE(!recovered.empty());
    CHECK(recovered.front().offset == live.front().offset);
    check_numbered(recovered, recovered.front().offset, static_cast<std::size_t>(end - recovered.front().offset));
  }

  std::string name;
  TempBusDir dir;
  Bus bus = open_bus(dir.path(), no_flusher());
  Producer producer;
  std::vector<int> held;
  std::set<ino_t> first_lap;
};

// An OFD read lock on a file, as a read-only follower takes on each segment
// file it maps (the writer then cannot recycle the file). Released by closing
// the descriptor returned.
int hold_read_lock(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  struct flock request {};
  request.l_type = F_RDLCK;
  request.l_whence = SEEK_SET;
  REQUIRE(::fcntl(fd, F_OFD_SETLK, &request) == 0);
  return fd;
}

std::uint64_t base_offset_of(const std::string& segment) {
  return std::stoull(std::filesystem::path(segment).stem().string());
}

} // namespace

TEST_SUITE("topic_store") {
  TEST_CASE("a_persistent_topic_with_line_aligned_appends_is_refused_and_no_file_is_made") {
    TempBusDir dir;
    Bus bus = open_bus(dir.path());
    TopicOptions o = persistent_ring();
    o.line_aligned_appends = true;
    const Status s = bus.create_topic("orders", o);
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "'orders'"));
    CHECK(contains(s.message(), "line_aligned_appends"));
    CHECK(contains(s.message(), "in-memory"));
    CHECK_FALSE(bus.has_topic("orders"));
    CHECK_FALSE(std::filesystem::exists(std::filesystem::path(dir.path()) / "topics" / "orders"));
  }

  TEST_CASE("a_reopened_bus_replays_every_record_across_segments_and_appends_after_them") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path());
      REQUIRE(bus.create_topic("orders", persistent_ring()).ok());
      Result<Producer> p = bus.producer("orders");
      REQUIRE(p.ok());
      append_timed(*p, 300);
      Result<TopicInfo> info = bus.describe("orders");
      REQUIRE(info.ok());
      CHECK(info->persistent);
      CHECK(info->segment_files >= 4);
    }
    CHECK(dir.segments("orders").size() >= 4);
    Bus bus = open_bus(dir.path());
    REQUIRE(bus.has_topic("orders"));
    check_numbered(read_all(bus, "orders"), 0, 300);
    Result<Producer> p = bus.producer("orders");
    REQUIRE(p.ok());
    CHECK(p->next_offset() == 300);
    append_timed(*p, 100);
    check_numbered(read_all(bus, "orders"), 0, 400);
  }

  // recover() leaves faulting in the tail's pages to the flusher: appends into
  // the recovered tail work without it, and while it faults them in.
  TEST_CASE("appends_into_a_recovered_tail_read_back_with_or_without_the_flusher") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path());
      REQUIRE(bus.create_topic("orders", persistent_ring()).ok());
      Result<Producer> p = bus.producer("orders");
      REQUIRE(p.ok());
      append_timed(*p, 150); // ends inside a segment: the tail is cut and zeroed at the reopen
    }
    BusOptions no_flusher;
    no_flusher.flusher_thread = false;
    {
      Bus bus = open_bus(dir.path(), no_flusher);
      Result<Producer> p = bus.producer("orders");
      REQUIRE(p.ok());
      append_timed(*p, 100);
      check_numbered(read_all(bus, "orders"), 0, 250);
    }
    Bus bus = open_bus(dir.path());
    Result<Producer> p = bus.producer("orders");
    REQUIRE(p.ok());
    append_timed(*p, 100);
    check_numbered(read_all(bus, "orders"), 0, 350);
  }

  TEST_CASE("seek_by_offset_and_by_time_lands_on_the_record_across_segment_boundaries") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path());
      REQUIRE(bus.create_topic("t", persistent_ring()).ok());
      Result<Producer> p = bus.producer("t");
      REQUIRE(p.ok());
      append_timed(*p, 400);
    }
    Bus bus = open_bus(dir.path());
    Result<Consumer> c = bus.consumer("t");
    REQUIRE(c.ok());
    for (std::uint64_t target : {0, 1, 63, 64, 65, 127, 200, 399}) {
      REQUIRE(c->seek("t", target).ok());
      std::vector<OwnedRecord> got = drain(*c);
      check_numbered(got, target, 400 - target);
      // Timestamps are 1000 * (offset + 1): a time between two records lands on the later one.
      REQUIRE(c->seek_to_time("t", static_cast<std::int64_t>(1000 * (target + 1)) - 500).ok());
      got = drain(*c);
      check_numbered(got, target, 400 - target);
    }
    REQUIRE(c->seek_to_time("t", 1'000'000'000).ok()); // after every record: the end
    CHECK(drain(*c).empty());
    CHECK(c->seek("t", 401).code() == Errc::invalid_argument);
  }

  TEST_CASE("seek_to_time_works_on_in_memory_topics_too") {
    Bus bus;
    REQUIRE(bus.create_topic("m", small_ring(8)).ok());
    Result<Producer> p = bus.producer("m");
    REQUIRE(p.ok());
    append_timed(*p, 300);
    Result<Consumer> c = bus.consumer("m");
    REQUIRE(c.ok());
    for (std::uint64_t target : {0, 64, 65, 150, 299}) {
      REQUIRE(c->seek_to_time("m", static_cast<std::int64_t>(1000 * (target + 1))).ok());
      check_numbered(drain(*c), target, 300 - target);
    }
  }

  TEST_CASE("each_durability_mode_keeps_every_appended_record_across_a_reopen") {
    for (Durability d : {Durability::none, Durability::interval, Durability::sync}) {
      CAPTURE(to_string(d));
      TempBusDir dir;
      {
        Bus bus = open_bus(dir.path());
        TopicOptions o = persistent_ring(4, d);
        o.flush_interval = std::chrono::milliseconds(1);
        REQUIRE(bus.create_topic("d", o).ok());
        Result<Producer> p = bus.producer("d");
        REQUIRE(p.ok());
        append_timed(*p, 150);
        REQUIRE(bus.flush("d").ok());
      }
      Bus bus = open_bus(dir.path());
      Result<TopicInfo> info = bus.describe("d");
      REQUIRE(info.ok());
      CHECK(info->options.durability == d);
      check_numbered(read_all(bus, "d"), 0, 150);
    }
  }

  TEST_CASE("retention_by_segment_count_deletes_the_oldest_files_and_readers_start_at_what_is_kept") {
    TempBusDir dir;
    Bus bus = open_bus(dir.path());
    TopicOptions o = persistent_ring(8);
    o.retention.max_segments = 3;
    REQUIRE(bus.create_topic("r", o).ok());
    Result<Producer> p = bus.producer("r");
    REQUIRE(p.ok());
    append_timed(*p, 64 * 10);
    CHECK(dir.segments("r").size() <= 3);
    Result<TopicInfo> info = bus.describe("r");
    REQUIRE(info.ok());
    CHECK(info->oldest_offset >= 64 * 7);
    std::vector<OwnedRecord> got = read_all(bus, "r");
    REQUIRE(!got.empty());
    check_numbered(got, info->oldest_offset, 640 - info->oldest_offset);
  }

  TEST_CASE("files_retention_deletes_are_closed_at_once_without_a_flusher_and_by_it_with_one") {
    // A deleted file's blocks are freed by its last close: one left open
    // holds a segment of disk for as long as the bus runs.
    const auto deleted_files_open_under = [](const std::string& under) {
      std::size_t n = 0;
      for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        const std::string target = std::filesystem::read_symlink(e.path(), ec).string();
        if (!ec && target.starts_with(under) && target.ends_with(" (deleted)")) ++n;
      }
      return n;
    };
    for (const bool flusher : {false, true}) {
      CAPTURE(flusher);
      TempBusDir dir;
      BusOptions options;
      options.flusher_thread = flusher;
      Bus bus = open_bus(dir.path(), options);
      TopicOptions o = persistent_ring(8);
      o.retention.max_segments = 2;
      REQUIRE(bus.create_topic("r", o).ok());
      Result<Producer> p = bus.producer("r");
      REQUIRE(p.ok());
      append_timed(*p, 64 * 6 + 1);
      CHECK(dir.segments("r").size() <= 3);
      if (!flusher) {
        CHECK(deleted_files_open_under(dir.path()) == 0);
      } else {
        // The flusher's next maintain() closes them.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (deleted_files_open_under(dir.path()) != 0 && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        CHECK(deleted_files_open_under(dir.path()) == 0);
      }
      const std::vector<OwnedRecord> got = read_all(bus, "r");
      REQUIRE(!got.empty());
      check_numbered(got, got.front().offset, 64 * 6 + 1 - got.front().offset);
    }
  }

  TEST_CASE("a_reader_inside_an_old_segment_keeps_it_from_retention_until_it_moves_on") {
    TempBusDir dir;
    Bus bus = open_bus(dir.path());
    TopicOptions o = persistent_ring(8);
    o.retention.max_segments = 2;
    REQUIRE(bus.create_topic("r", o).ok());
    Result<Producer> p = bus.producer("r");
    REQUIRE(p.ok());
    Result<Consumer> slow = bus.consumer("r");
    REQUIRE(slow.ok());
    append_timed(*p, 300);
    CHECK(dir.segments("r").size() >= 5); // the reader holds offset 0
    check_numbered(drain(*slow), 0, 300);
    REQUIRE(slow->close().ok());
    append_timed(*p, 120);
    CHECK(dir.segments("r").size() == 2);
  }

  TEST_CASE("a_named_consumer_resumes_at_its_committed_offset_after_a_restart") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path());
      REQUIRE(bus.create_topic("c", persistent_ring()).ok());
      Result<Producer> p = bus.producer("c");
      REQUIRE(p.ok());
      append_timed(*p, 200);
      ConsumerOptions co;
      co.name = "billing";
      co.topics = {"c"};
      Result<Consumer> c = bus.consumer(co);
      REQUIRE(c.ok());
      check_numbered(poll_once(*c, 120), 0, 120);
      REQUIRE(c->commit().ok());
      CHECK(*c->committed("c") == 120);
      check_numbered(poll_once(*c, 10), 120, 10); // read but not committed
    }
    Bus bus = open_bus(dir.path());
    ConsumerOptions co;
    co.name = "billing";
    co.topics = {"c"};
    Result<Consumer> c = bus.consumer(co);
    REQUIRE(c.ok());
    CHECK(*c->position("c") == 120);
    check_numbered(drain(*c), 120, 80);
    Result<Consumer> anonymous = bus.consumer("c");
    REQUIRE(anonymous.ok());
    CHECK(anonymous->commit().code() == Errc::invalid_argument);
  }

  TEST_CASE("a_read_only_bus_opens_a_topic_the_writer_created_after_it_opened") {
    TempBusDir dir;
    Bus writer = open_bus(dir.path());
    Bus reader = open_reader(dir.path());
    CHECK(!reader.has_topic("late"));
    CHECK(reader.consumer("late").code() == Errc::topic_not_found);

    REQUIRE(writer.create_topic("late", persistent_ring()).ok());
    Result<Producer> p = writer.producer("late");
    REQUIRE(p.ok());
    append_timed(*p, 40);
    const std::vector<std::string> names = reader.topic_names();
    CHECK(std::find(names.begin(), names.end(), "late") != names.end());
    CHECK(reader.has_topic("late"));
    check_numbered(read_all(reader, "late"), 0, 40);
    // It follows the writer from there like any topic of a read-only bus.
    Result<Consumer> c = reader.consumer("late");
    REQUIRE(c.ok());
    CHECK(drain(*c).size() == 40);
    append_timed(*p, 10);
    check_numbered(drain(*c), 40, 10);
  }

  // A follower at a segment's end opens the next file by name; when that
  // fails it lists the directory for a newer one (the writer lapped it). The
  // file looked for may appear between the two (a roll under load): it is
  // the next segment, not a lap, and no record is skipped.
  TEST_CASE("a_follower_whose_open_of_the_next_segment_races_its_creation_takes_it_and_skips_nothing") {
    TempBusDir dir;
    Bus writer = open_bus(dir.path(), no_flusher());
    REQUIRE(writer.create_topic("t", persistent_ring(4)).ok());
    Result<Producer> p = writer.producer("t");
    REQUIRE(p.ok());
    append_timed(*p, 5);
    Bus reader = open_reader(dir.path());
    Result<Consumer> c = reader.consumer("t");
    REQUIRE(c.ok());
    check_numbered(drain(*c), 0, 5);
    append_timed(*p, 195); // segments at offsets 64, 128 and 192 now exist too
    // The follower's open of segment 64 fails as if it ran just before the
    // writer's rename; its listing then sees 64, 128 and 192.
    platform::testing::fail_next_opens(1);
    const std::vector<OwnedRecord> got = drain(*c);
    platform::testing::fail_next_opens(0);
    check_numbered(got, 5, 195);
    CHECK(c->lost("t").value() == 0);
  }

  // A frame the writer published whole and something else then changed in
  // the file: the follower stops before it, and a reader that has caught up
  // gets an error naming it (not empty polls for good). Put right (as
  // recovery would), reading goes on.
  TEST_CASE("a_follower_reports_a_frame_damaged_in_the_file_and_goes_on_once_it_is_repaired") {
    struct Damage {
      const char* name;
      std::size_t at;      // byte of the frame changed
      std::uint64_t value; // the 8 bytes written there
      const char* reason;  // in the error
    };
    const Damage damages[] = {
        {"base offset", offsetof(detail::FrameHeader, base_offset), 999, "does not follow the frame before"},
        {"length", 0, (std::uint64_t{1} << 32) | 0xfffff, "runs outside its segment"},
        {"type", 0, (std::uint64_t{7} << 32) | 64, "neither data nor padding"},
        {"record count", 8, 0, "counts no records"},
    };
    for (const Damage& damage : damages) {
      CAPTURE(damage.name);
      FollowedTopic f;
      const std::string& segment = f.segment;
      const std::size_t at = frame_in_file(segment, 20); // where record 20's frame will start
      append_timed(f.producer, 10);
      const std::uint64_t original = word_in_file(segment, at + damage.at);
      const auto write_word = [&](std::uint64_t word) {
        // In the publication word the lap tag stays the writer's.
        put_word_in_file(segment, at + damage.at, damage.at == 0 ? with_lap_of(original, word) : word);
      };
      write_word(damage.value);

      Result<Records> polled = f.consumer.poll(SIZE_MAX, 0ms);
      REQUIRE(polled.code() == Errc::corrupt_data);
      CHECK(contains(polled.message(), "topic 't'"));
      CHECK(contains(polled.message(), "offset 20 should be"));
      CHECK(contains(polled.message(), damage.reason));
      // A waiting poll says so at once too (not when its minute is up: the
      // bound is half of it, far above any machine's delay), and so does poll_one.
      const auto start = std::chrono::steady_clock::now();
      CHECK(f.consumer.poll(SIZE_MAX, 60s).code() == Errc::corrupt_data);
      CHECK(std::chrono::steady_clock::now() - start < 30s);
      Record one;
      CHECK(f.consumer.poll_one(one, 0ms).code() == Errc::corrupt_data);
      CHECK(f.consumer.position("t").value() == 20);

      write_word(original); // repaired
      check_numbered(drain(f.consumer), 20, 10);
      append_timed(f.producer, 5);
      check_numbered(drain(f.consumer), 30, 5);
    }
  }

  // Damage stands while its segment file is there. Once the writer has
  // dropped that segment (it lapped the follower and deleted the file, which
  // the follower's read lock kept it from recycling), its records are gone as
  // after any lap: the reader is told exactly how many it lost and goes on
  // from the oldest segment, in order.
  TEST_CASE("a_follower_stuck_at_damage_goes_on_with_a_gap_once_the_writer_drops_that_segment") {
    FollowedTopic f;
    const std::size_t at = frame_in_file(f.segment, 20);
    append_timed(f.producer, 10);
    const std::uint64_t original = word_in_file(f.segment, at);
    put_word_in_file(f.segment, at, with_lap_of(original, (std::uint64_t{7} << 32) | 64));
    REQUIRE(f.consumer.poll(SIZE_MAX, 0ms).code() == Errc::corrupt_data);
    append_timed(f.producer, 64 * 4); // the first segment is still held: the damage stands
    REQUIRE(std::filesystem::exists(f.segment));
    CHECK(f.consumer.poll(SIZE_MAX, 20ms).code() == Errc::corrupt_data);

    append_timed(f.producer, 64 * 5); // laps the ring of 8: the writer deletes the first segment
    REQUIRE(!std::filesystem::exists(f.segment));
    const std::uint64_t oldest = f.writer.describe("t").value().oldest_offset;
    const std::uint64_t end = f.producer.next_offset();
    REQUIRE(oldest > 64);
    std::uint64_t next = 20;
    std::uint64_t lost = 0;
    // The follower looks for the file at most every millisecond: until then
    // the damage still stands.
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    Result<Records> first = f.consumer.poll(SIZE_MAX, 1ms);
    while (first.code() == Errc::corrupt_data && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(1ms);
      first = f.consumer.poll(SIZE_MAX, 1ms);
    }
    REQUIRE_MESSAGE(first.ok(), first.message());
    check_follower_poll(*first, next, lost);
    for (int idle = 0; next < end && idle < 5000;) {
      Result<Records> r = f.consumer.poll(SIZE_MAX, 1ms);
      REQUIRE_MESSAGE(r.ok(), r.message());
      if (!check_follower_poll(*r, next, lost)) ++idle;
    }
    CHECK(next == end);
    CHECK(lost == oldest - 20);
    CHECK(f.consumer.lost("t").value() == oldest - 20);
    append_timed(f.producer, 5);
    check_numbered(drain(f.consumer), end, 5);
  }

  // The segment file holding the damage deleted by someone else while an
  // older one is still there: the writer drops segments oldest first, so it
  // did not drop this one (the records after the damage may still be its
  // own). The damage stands; the follower does not skip ahead.
  TEST_CASE("a_follower_stuck_at_damage_in_a_file_someone_else_deleted_keeps_reporting_it") {
    FollowedTopic f;
    append_timed(f.producer, 60); // offsets 20 .. 79, into the second segment
    const std::vector<std::string> files = f.dir.segments("t");
    REQUIRE(files.size() == 2);
    const std::size_t at = frame_in_file(files[1], 6);
    const std::uint64_t damaged = word_in_file(files[1], at + offsetof(detail::FrameHeader, base_offset));
    put_word_in_file(files[1], at, with_lap_of(word_in_file(files[1], at), (std::uint64_t{7} << 32) | 64));
    std::uint64_t next = 20;
    std::uint64_t lost = 0;
    Result<Records> read = f.consumer.poll(SIZE_MAX, 0ms);
    for (int polls = 0; read.ok() && polls < 100; ++polls) { // a follower's poll stops at a segment's end
      check_follower_poll(*read, next, lost);
      read = f.consumer.poll(SIZE_MAX, 0ms);
    }
    REQUIRE(read.code() == Errc::corrupt_data);
    CHECK(next == damaged);

    REQUIRE(std::filesystem::remove(files[1]));
    append_timed(f.producer, 100); // rolls on into two more segments, laps nothing
    for (int i = 0; i < 20; ++i) {
      std::this_thread::sleep_for(2ms); // past the millisecond between looks for the file
      CHECK(f.consumer.poll(SIZE_MAX, 1ms).code() == Errc::corrupt_data);
    }
    CHECK(f.consumer.position("t").value() == damaged);
    CHECK(f.consumer.lost("t").value() == 0);
  }

  // The damage appears while a reader waits in poll: the wait ends with the
  // error, long before its timeout.
  TEST_CASE("a_follower_waiting_in_poll_is_told_of_damage_that_appears_meanwhile") {
    FollowedTopic f;
    const std::string& segment = f.segment;
    const std::size_t at = frame_in_file(segment, 20);
    const std::uint64_t lap_word = word_in_file(segment, frame_in_file(segment, 19));
    REQUIRE(word_in_file(segment, at) == 0); // the writer cleared it: nothing published there
    // A word of this lap with a type that is no frame's, written at the tail.
    std::jthread damager([&] {
      std::this_thread::sleep_for(100ms);
      put_word_in_file(segment, at, with_lap_of(lap_word, (std::uint64_t{7} << 32) | 64));
    });
    const auto start = std::chrono::steady_clock::now();
    Result<Records> polled = f.consumer.poll(SIZE_MAX, 60s);
    CHECK(std::chrono::steady_clock::now() - start < 30s); // not when its minute is up
    damager.join();
    REQUIRE(polled.code() == Errc::corrupt_data);
    CHECK(contains(polled.message(), "offset 20 should be"));
    put_word_in_file(segment, at, 0); // repaired: nothing published there again
    const Result<Records> after = f.consumer.poll(SIZE_MAX, 0ms);
    REQUIRE_MESSAGE(after.ok(), after.message());
    CHECK(after->empty());
    append_timed(f.producer, 10);
    check_numbered(drain(f.consumer), 20, 10);
  }

  // A reader's end is the writer's, not what the bus followed last: records
  // the writer published since are in lag(), a seek may land on them, and
  // subscribing at latest or seeking to the end starts after them.
  TEST_CASE("a_follower_subscribing_at_latest_or_seeking_to_the_end_starts_after_what_the_writer_published") {
    FollowedTopic f;              // f.consumer has read offsets [0, 20)
    append_timed(f.producer, 10); // [20, 30): no consumer of the reader has polled since
    CHECK(f.consumer.lag("t").value() == 10);
    ConsumerOptions latest;
    latest.topics = {"t"};
    latest.start = StartPosition::latest;
    Consumer late = f.reader.consumer(latest).value();
    CHECK(late.position("t").value() == 30);
    CHECK(late.lag("t").value() == 0);
    CHECK(poll_once(late).empty());

    append_timed(f.producer, 5); // [30, 35)
    REQUIRE(f.consumer.seek("t", 34).ok());
    CHECK(f.consumer.position("t").value() == 34);
    REQUIRE(f.consumer.seek_to_end("t").ok());
    CHECK(f.consumer.position("t").value() == 35);
    CHECK(poll_once(f.consumer).empty());
    check_numbered(drain(late), 30, 5);
  }

  // The oldest record a reader can start at is the writer's oldest held
  // one: a consumer subscribing at earliest (or seeking to the beginning)
  // after the writer lapped the ring starts there and is told of no loss,
  // as on the writer's own bus (it lost nothing since it subscribed).
  TEST_CASE("a_follower_subscribing_at_earliest_after_the_writer_lapped_starts_at_its_oldest_record_with_no_gap") {
    FollowedTopic f;                // f.consumer has read offsets [0, 20)
    append_timed(f.producer, 1000); // the writer laps its 8 segments of 64 records
    Consumer late = f.reader.consumer("t").value();
    const std::uint64_t oldest = late.position("t").value();
    CHECK(oldest > 20);
    const Result<Records> first = late.poll(SIZE_MAX, 0ms);
    REQUIRE_MESSAGE(first.ok(), first.message());
    CHECK(first->gaps().empty());
    REQUIRE_FALSE(first->empty());
    CHECK(first->begin()->offset == oldest);

    REQUIRE(f.consumer.seek_to_beginning("t").ok());
    CHECK(f.consumer.position("t").value() == oldest);
    const std::vector<OwnedRecord> all = drain(f.consumer);
    check_numbered(all, oldest, static_cast<std::size_t>(1020 - oldest));
    CHECK(f.consumer.lost("t").value() == 0);
    CHECK(late.lost("t").value() == 0);
  }

  // A record inside a published batch changed in the file (its frame's
  // header still whole, so follow() passes it): the reader gets that record
  // and the rest of its frame as empty records (offset and the frame's
  // timestamp, no key or value), as poll_one does, then the next frames
  // intact; never a read through a null record pointer.
  TEST_CASE("a_follower_reading_a_batch_with_a_record_changed_in_the_file_gets_empty_records_and_reads_on") {
    FollowedTopic f;
    const std::size_t at = frame_in_file(f.segment, 20); // the batch's frame
    std::vector<std::string> keys;
    std::vector<std::string> values;
    for (std::uint64_t offset = 20; offset < 23; ++offset) {
      keys.push_back(key_for(offset));
      values.push_back(value_for(offset, even_value_bytes));
    }
    std::vector<Message> batch;
    for (std::size_t i = 0; i < keys.size(); ++i)
      batch.push_back(msg(keys[i], values[i], static_cast<std::int64_t>(1000 * (21 + i))));
    REQUIRE(f.producer.append_batch(batch).value() == 20);
    append_timed(f.producer, 2); // offsets 23 and 24, frames of their own
    // Record 20's length prefix: continuation bytes all through, a varint
    // longer than the frame.
    put_word_in_file(f.segment, at + detail::frame_header_bytes, ~std::uint64_t{0});

    const std::vector<OwnedRecord> got = drain(f.consumer);
    REQUIRE(got.size() == 5);
    for (std::uint64_t i = 0; i < 3; ++i) {
      CAPTURE(i);
      CHECK(got[i].offset == 20 + i);
      CHECK(got[i].key.empty());
      CHECK(got[i].value.empty());
      CHECK(got[i].timestamp_ns == 21'000); // the frame's base timestamp
    }
    check_numbered({got.begin() + 3, got.end()}, 23, 2);
  }

  // One of two subscribed topics stuck at damage: a waiting poll still gets
  // what the other one publishes meanwhile; with nothing to deliver the
  // damage is said at once without a timeout, and when the wait ends empty.
  TEST_CASE("a_follower_of_two_topics_waits_for_the_healthy_one_and_reports_the_damaged_one_when_nothing_comes") {
    FollowedTopic f;
    REQUIRE(f.writer.create_topic("u", persistent_ring()).ok());
    Producer u = f.writer.producer("u").value();
    REQUIRE(f.consumer.subscribe("u").ok());
    const std::size_t at = frame_in_file(f.segment, 20);
    const std::uint64_t lap_word = word_in_file(f.segment, frame_in_file(f.segment, 19));
    put_word_in_file(f.segment, at, with_lap_of(lap_word, (std::uint64_t{7} << 32) | 64));

    CHECK(f.consumer.poll(SIZE_MAX, 0ms).code() == Errc::corrupt_data);
    const Result<Records> waited = f.consumer.poll(SIZE_MAX, 20ms);
    CHECK(waited.code() == Errc::corrupt_data);
    CHECK(contains(waited.message(), "topic 't'"));

    std::jthread appender([&] {
      std::this_thread::sleep_for(100ms);
      (void)u.append(msg(key_for(0), value_for(0, even_value_bytes), 1000));
    });
    const Result<Records> got = f.consumer.poll(SIZE_MAX, 60s);
    appender.join();
    REQUIRE_MESSAGE(got.ok(), got.message());
    REQUIRE(got->size() == 1);
    const Record r = *got->begin(); // the iterator hands out values
    CHECK(r.topic == "u");
    CHECK(r.offset == 0);
    CHECK(str(r.value) == value_for(0, even_value_bytes));
    CHECK(f.consumer.poll(SIZE_MAX, 0ms).code() == Errc::corrupt_data); // "t" is still stuck
  }

  // A topic the writer creates after the reader opened is found on first
  // use; one whose files do not open is reported with the reason, as
  // Bus::open reports it, not as a missing topic. One still being created
  // (no segment yet) is not a topic yet.
  TEST_CASE("a_read_only_bus_reports_why_a_topic_created_after_it_opened_does_not_open") {
    TempBusDir dir;
    Bus writer = open_bus(dir.path());
    Bus reader = open_reader(dir.path());
    REQUIRE(writer.create_topic("late", persistent_ring()).ok());
    REQUIRE(writer.create_topic("creating", persistent_ring()).ok());
    writer.close();
    {
      std::fstream f(dir.segments("late").front(), std::ios::in | std::ios::out | std::ios::binary);
      f.write("SQLite format 3\0", 16);
    }
    for (const std::string& segment : dir.segments("creating")) std::filesystem::remove(segment);

    Result<Consumer> c = reader.consumer("late");
    REQUIRE(!c.ok());
    CHECK(c.code() == Errc::corrupt_data);
    CHECK(contains(c.message(), "00000000000000000000.seg"));
    CHECK(contains(c.message(), "magic"));
    CHECK(reader.describe("late").code() == Errc::corrupt_data);
    CHECK(reader.stats("late").code() == Errc::corrupt_data);
    CHECK(!reader.has_topic("late"));
    const std::vector<std::string> names = reader.topic_names();
    CHECK(std::find(names.begin(), names.end(), "late") == names.end());

    Result<Consumer> creating = reader.consumer("creating");
    CHECK(creating.code() == Errc::topic_not_found);
    CHECK(contains(creating.message(), "'creating' does not exist"));
    // A directory just made (no topic.meta yet), and a stray file: not topics.
    std::filesystem::create_directory(std::filesystem::path(dir.path()) / "topics" / "just_made");
    std::ofstream(std::filesystem::path(dir.path()) / "topics" / "stray") << "x";
    CHECK(reader.consumer("just_made").code() == Errc::topic_not_found);
    CHECK(reader.consumer("stray").code() == Errc::topic_not_found);
    CHECK(reader.consumer("never").code() == Errc::topic_not_found);
    CHECK(contains(reader.consumer("never").message(), "'never' does not exist"));
  }

  TEST_CASE("a_read_only_open_skips_a_topic_whose_first_segment_is_not_there_yet") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path());
      REQUIRE(bus.create_topic("ready", persistent_ring()).ok());
      REQUIRE(bus.create_topic("creating", persistent_ring()).ok());
      Result<Producer> p = bus.producer("ready");
      REQUIRE(p.ok());
      append_timed(*p, 5);
    }
    // As a reader sees a topic the writer is creating: topic.meta written, no segment file yet.
    for (const std::string& segment : dir.segments("creating")) std::filesystem::remove(segment);
    BusOptions ro;
    ro.read_only = true;
    Result<Bus> reader = Bus::open(dir.path(), ro);
    REQUIRE_MESSAGE(reader.ok(), reader.message());
    CHECK(!reader->has_topic("creating"));
    check_numbered(read_all(*reader, "ready"), 0, 5);
  }

  TEST_CASE("a_second_writable_bus_on_the_directory_is_refused_naming_the_holder_pid") {
    TempBusDir dir;
    Bus first = open_bus(dir.path());
    Result<Bus> second = Bus::open(dir.path());
    REQUIRE(!second.ok());
    CHECK(second.code() == Errc::producer_exists);
    CHECK(contains(second.message(), "pid " + std::to_string(::getpid())));
    BusOptions ro;
    ro.read_only = true;
    Result<Bus> reader = Bus::open(dir.path(), ro);
    CHECK(reader.ok());
    first.close();
    CHECK(Bus::open(dir.path()).ok());
  }

  TEST_CASE("a_full_disk_at_a_roll_is_an_error_and_every_record_before_it_reads_back") {
    TempBusDir dir;
    Bus bus = open_bus(dir.path(), BusOptions{false, false}); // no flusher: the roll prepares the file itself
    REQUIRE(bus.create_topic("f", persistent_ring()).ok());
    Result<Producer> p = bus.producer("f");
    REQUIRE(p.ok());
    append_timed(*p, 10);
    platform::testing::fail_next_preallocations(1);
    // Appends go on until the segment is full and the roll needs a new file.
    Result<std::uint64_t> r = std::uint64_t{0};
    std::uint64_t committed = 10;
    while (r.ok()) {
      const std::string value = value_for(committed, even_value_bytes);
      const std::string key = key_for(committed);
      r = p->append(msg(key, value, static_cast<std::int64_t>(1000 * (committed + 1))));
      if (r.ok()) ++committed;
      REQUIRE(committed < 200);
    }
    CHECK(r.code() == Errc::no_space);
    CHECK(contains(r.message(), "No space"));
    CHECK(committed > 40);
    check_numbered(read_all(bus, "f"), 0, committed);
    append_timed(*p, 10); // room again: the roll succeeds
    check_numbered(read_all(bus, "f"), 0, committed + 10);
  }

  TEST_CASE("a_create_topic_refused_by_a_full_disk_or_a_failed_sync_leaves_nothing_and_can_be_retried") {
    for (const bool full_disk : {true, false}) {
      CAPTURE(full_disk);
      TempBusDir dir;
      {
        Bus bus = open_bus(dir.path(), BusOptions{false, false});
        if (full_disk) {
          platform::testing::fail_next_preallocations(1); // the first segment's file
        } else {
          platform::testing::fail_next_syncs(1, EIO); // the topics directory, after the topic's is made
        }
        const Status refused = bus.create_topic("t", persistent_ring(4));
        platform::testing::fail_next_preallocations(0);
        platform::testing::fail_next_syncs(0);
        CHECK(refused.code() == (full_disk ? Errc::no_space : Errc::system_error));
        CHECK(contains(refused.message(), "'t'"));
        CHECK_FALSE(bus.has_topic("t"));
        CHECK_FALSE(std::filesystem::exists(dir.topic_dir("t")));
        const Status again = bus.create_topic("t", persistent_ring(4));
        REQUIRE_MESSAGE(again.ok(), again.message());
        Result<Producer> p = bus.producer("t");
        REQUIRE(p.ok());
        append_timed(*p, 70); // into a second segment
      }
      Bus bus = open_bus(dir.path(), BusOptions{false, false});
      check_numbered(read_all(bus, "t"), 0, 70);
    }
  }

  TEST_CASE("a_failed_flush_stops_the_topic_with_the_error_and_never_reports_success") {
    TempBusDir dir;
    Bus bus = open_bus(dir.path(), BusOptions{false, false});
    Status created = bus.create_topic("s", persistent_ring(4, Durability::sync));
    REQUIRE_MESSAGE(created.ok(), created.message());
    Result<Producer> p = bus.producer("s");
    REQUIRE(p.ok());
    append_timed(*p, 5);
    platform::testing::fail_next_syncs(1, EIO);
    Result<std::uint64_t> r = p->append(value_for(5, 8));
    REQUIRE(!r.ok());
    CHECK(r.code() == Errc::system_error);
    CHECK(contains(r.message(), "Input/output error"));
    Result<std::uint64_t> again = p->append(value_for(6, 8));
    CHECK(!again.ok());
    CHECK(contains(again.message(), "failed and takes no more appends"));
    Result<TopicInfo> info = bus.describe("s");
    REQUIRE(info.ok());
    CHECK(!info->failure.empty());
  }

  TEST_CASE("a_foreign_file_or_another_version_at_a_segment_name_is_refused_naming_file_and_field") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path());
      REQUIRE(bus.create_topic("x", persistent_ring()).ok());
    }
    const std::string seg = dir.segments("x").front();
    SUBCASE("foreign") {
      std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
      f.write("SQLite format 3\0", 16);
    }
    SUBCASE("version") {
      std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
      const std::uint32_t v = 9;
      f.seekp(8);
      f.write(reinterpret_cast<const char*>(&v), 4);
    }
    Result<Bus> bus = Bus::open(dir.path());
    REQUIRE(!bus.ok());
    CHECK(bus.code() == Errc::corrupt_data);
    CHECK(contains(bus.message(), "00000000000000000000.seg"));
    CHECK((contains(bus.message(), "magic") || contains(bus.message(), "format_version 9")));
  }

  TEST_CASE("a_symlink_planted_at_a_segment_name_is_refused_and_its_target_untouched") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path());
      REQUIRE(bus.create_topic("x", persistent_ring()).ok());
    }
    const std::string target = dir.path() + "/victim";
    { std::ofstream(target) << "precious"; }
    const std::string planted = dir.topic_dir("x") + "/00000000000000000064.seg";
    REQUIRE(::symlink(target.c_str(), planted.c_str()) == 0);
    Result<Bus> bus = Bus::open(dir.path());
    REQUIRE(!bus.ok());
    CHECK(contains(bus.message(), "00000000000000000064.seg"));
    std::ifstream in(target);
    std::string content;
    in >> content;
    CHECK(content == "precious");
  }

  TEST_CASE("topic_meta_round_trips_every_option_and_refuses_damage") {
    TopicOptions o = persistent_ring(16, Durability::interval);
    o.overflow = OverflowPolicy::overwrite;
    o.flush_interval = std::chrono::milliseconds(7);
    o.flush_bytes = 4096;
    o.retention.max_bytes = 1 << 20;
    o.retention.max_age = std::chrono::seconds(3);
    o.retention.max_segments = 5;
    const std::string text = detail::encode_topic_meta("t", o);
    Result<TopicOptions> back = detail::decode_topic_meta(text, "t/topic.meta", "t");
    REQUIRE_MESSAGE(back.ok(), back.message());
    CHECK(back->segment_count == 16);
    CHECK(back->overflow == OverflowPolicy::overwrite);
    CHECK(back->durability == Durability::interval);
    CHECK(back->flush_interval.count() == 7);
    CHECK(back->flush_bytes == 4096);
    CHECK(back->retention.max_bytes == 1 << 20);
    CHECK(back->retention.max_age == std::chrono::seconds(3));
    CHECK(back->retention.max_segments == 5);
    std::string damaged = text;
    damaged[30] ^= 1;
    CHECK(detail::decode_topic_meta(damaged, "t/topic.meta", "t").code() == Errc::corrupt_data);
    CHECK(contains(detail::decode_topic_meta(text, "t/topic.meta", "u").message(), "names topic 't'"));
  }

  TEST_CASE("a_read_only_bus_in_another_process_tails_the_topic_live_across_rolls_and_ring_laps") {
    TempBusDir dir;
    constexpr std::uint64_t total = 2000; // ~40 segments of a ring of 4: the ring laps ten times
    int ready[2];
    int go[2];
    REQUIRE(::pipe(ready) == 0);
    REQUIRE(::pipe(go) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      // The writer: no doctest here, only _exit codes.
      ::close(ready[0]);
      ::close(go[1]);
      Result<Bus> bus = Bus::open(dir.path(), BusOptions{false, false});
      if (!bus.ok() || !bus->create_topic("live", persistent_ring(4)).ok()) ::_exit(2);
      Result<Producer> p = bus->producer("live");
      if (!p.ok()) ::_exit(3);
      char byte = 1;
      if (::write(ready[1], &byte, 1) != 1 || ::read(go[0], &byte, 1) != 1) ::_exit(4);
      for (std::uint64_t i = 0; i < total; ++i) {
        const std::string value = value_for(i, even_value_bytes);
        const std::string key = key_for(i);
        if (!p->append(msg(key, value, static_cast<std::int64_t>(1000 * (i + 1)))).ok()) ::_exit(5);
        if (i % 64 == 0) ::usleep(200); // let the reader keep up (it may still be lapped: then it is told)
      }
      ::_exit(0);
    }
    ::close(ready[1]);
    ::close(go[0]);
    char byte = 0;
    REQUIRE(::read(ready[0], &byte, 1) == 1);
    Result<Bus> second = Bus::open(dir.path()); // the writer holds the directory
    REQUIRE(!second.ok());
    CHECK(second.code() == Errc::producer_exists);
    CHECK(contains(second.message(), "pid " + std::to_string(child)));
    BusOptions ro;
    ro.read_only = true;
    Bus reader = open_bus(dir.path(), ro);
    CHECK(reader.producer("live").code() == Errc::invalid_argument);
    Result<Consumer> c = reader.consumer("live");
    REQUIRE(c.ok());
    REQUIRE(::write(go[1], &byte, 1) == 1);
    std::uint64_t next = 0;
    std::uint64_t lost = 0;
    bool stalled = false;
    for (int idle = 0; next < total && idle < 20000;) {
      if (!stalled && next >= 300) {
        stalled = true; // fall a ring behind or more: the files we were on get deleted
        ::usleep(50'000);
      }
      Result<Records> r = c->poll(SIZE_MAX, std::chrono::milliseconds(1));
      REQUIRE_MESSAGE(r.ok(), r.message());
      if (!check_follower_poll(*r, next, lost)) ++idle;
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(next == total);
    CHECK(lost > 0);
    MESSAGE("tailed " << total - lost << " records live, " << lost << " lost to lapping");
    ::close(ready[0]);
    ::close(go[1]);
  }

  TEST_CASE("a_recycle_cut_short_by_a_power_loss_costs_the_oldest_segment_only_and_the_bus_opens") {
    // What the disk may hold after a power loss in the middle of a recycle:
    // (a) the oldest file under its old name with its new header (the renames
    // never reached the disk), (b) the old name and header with the new lap's
    // first frames written over its start. Either way that file's records were
    // behind the head already: it goes, and everything after it reads back.
    // A power loss means a reboot, after which no seal the flusher wrote is
    // trusted (segment_layout.hpp): here every segment is sealed. The same
    // check runs in the boot that wrote the files when no seal was written.
    for (const bool reboot : {true, false}) {
      for (const char* damage : {"new header under the old name", "new lap's frames under the old header"}) {
        CAPTURE(reboot);
        CAPTURE(damage);
        TempBusDir dir;
        std::uint64_t appended = 0;
        {
          const SealEverySegment seal_every_segment(reboot);
          Bus bus = open_bus(dir.path(), BusOptions{false, reboot});
          REQUIRE(bus.create_topic("laps", persistent_ring(4, Durability::interval)).ok());
          Result<Producer> p = bus.producer("laps");
          REQUIRE(p.ok());
          append_timed(*p, 700); // about three laps of the ring: every file recycled
          appended = p->next_offset();
          const auto deadline = std::chrono::steady_clock::now() + 10s;
          while (reboot && !detail::decode_segment_seal(file_bytes(dir.segments("laps").front())).has_value()) {
            REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the flusher sealed no segment");
            std::this_thread::sleep_for(2ms);
          }
        }
        std::vector<std::string> segments = dir.segments("laps");
        REQUIRE(segments.size() == 4);
        const std::vector<std::byte> oldest = file_bytes(segments.front());
        const std::vector<std::byte> newest = file_bytes(segments.back());
        std::uint32_t page = 0;
        std::memcpy(&page, oldest.data() + offsetof(detail::SegmentHeader, page_size), sizeof page);
        {
          std::fstream f(segments.front(), std::ios::in | std::ios::out | std::ios::binary);
          if (std::string_view(damage).starts_with("new header")) {
            f.write(reinterpret_cast<const char*>(newest.data()), page); // the tail's header: another base offset
          } else {
            f.seekp(page);
            f.write(reinterpret_cast<const char*>(newest.data() + page), 4096); // a newer lap's frames
          }
        }
        std::uint64_t second_base = 0;
        std::memcpy(&second_base, file_bytes(segments[1]).data() + offsetof(detail::SegmentHeader, base_offset),
                    sizeof second_base);
        if (reboot) pretend_reboot(dir);
        Bus bus = open_bus(dir.path());
        Result<TopicInfo> info = bus.describe("laps");
        REQUIRE_MESSAGE(info.ok(), info.message());
        CHECK(info->end_offset == appended);
        CHECK(info->oldest_offset == second_base);
        CHECK(dir.segments("laps").size() == 3);
        check_numbered(read_all(bus, "laps"), second_base, static_cast<std::size_t>(appended - second_base));
      }
    }
  }

  TEST_CASE("a_reopen_in_the_boot_that_wrote_them_takes_the_flushers_seals_instead_of_walking_sealed_segments") {
    TempBusDir dir;
    std::uint64_t appended = 0;
    std::vector<std::string> segments;
    // Segments of the smallest size the flusher seals; records of 200 KiB, 20 a segment.
    TopicOptions options = persistent_ring(8);
    options.segment_bytes = detail::TopicStore::seal_min_segment_bytes;
    const std::size_t value_bytes = 200 * 1024;
    {
      Bus bus = open_bus(dir.path()); // with the flusher: it writes the seals
      REQUIRE(bus.create_topic("s", options).ok());
      Result<Producer> p = bus.producer("s");
      REQUIRE(p.ok());
      while (dir.segments("s").size() < 4) append_timed(*p, 1, value_bytes);
      append_timed(*p, 3, value_bytes); // the tail holds records of its own
      appended = p->next_offset();
      segments = dir.segments("s");
      // Every segment the writer has published past gets its seal, naming
      // itself and the next segment's first offset.
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      for (std::size_t i = 0; i + 1 < segments.size(); ++i) {
        CAPTURE(segments[i]);
        for (;;) {
          const std::optional<detail::SegmentSeal> seal = detail::decode_segment_seal(file_bytes(segments[i]));
          if (seal) {
            CHECK(seal->base_position == word_in_file(segments[i], offsetof(detail::SegmentHeader, base_position)));
            CHECK(seal->end_offset == word_in_file(segments[i + 1], offsetof(detail::SegmentHeader, base_offset)));
            break;
          }
          REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the flusher wrote no seal");
          std::this_thread::sleep_for(2ms);
        }
      }
      CHECK(!detail::decode_segment_seal(file_bytes(segments.back())).has_value()); // the tail: never
    }
    Result<platform::FileDescriptor> topics = platform::open_directory(dir.path() + "/topics");
    REQUIRE(topics.ok());
    const auto walks = [&](bool after_reboot) {
      Result<std::unique_ptr<detail::TopicStore>> store = detail::TopicStore::open(*topics, "s", false, after_reboot);
      REQUIRE_MESSAGE(store.ok(), store.message());
      CHECK((*store)->restored().next_offset == appended);
      return (*store)->recovery().segments_walked;
    };
    // The same boot: neither the oldest segment nor the one before the tail is walked.
    CHECK(walks(false) == 0);
    // After a reboot a seal may have reached the disk without the data: both are walked.
    CHECK(walks(true) == 2);
    // A seal that does not give the next segment's first offset, or names
    // another position (an older lap's), proves nothing: that segment is walked.
    REQUIRE(detail::seal_boot_tag() != 0); // this system gives a boot id
    const std::uint64_t position = word_in_file(segments.front(), offsetof(detail::SegmentHeader, base_position));
    const std::uint64_t end = detail::decode_segment_seal(file_bytes(segments.front()))->end_offset;
    // Nor does one of another boot: a recovery after that reboot may have cut the segment since.
    const std::uint64_t boot = detail::seal_boot_tag();
    for (const detail::SegmentSeal wrong : {detail::SegmentSeal{position, end + 1, boot},
                                            detail::SegmentSeal{position + 8 * options.segment_bytes, end, boot},
                                            detail::SegmentSeal{position, end, boot + 1}}) {
      const auto bytes = detail::encode_segment_seal(wrong);
      std::fstream f(segments.front(), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(detail::segment_seal_at);
      f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      REQUIRE(f.good());
      f.close();
      CHECK(walks(false) == 1);
    }
    Bus bus = open_bus(dir.path(), BusOptions{false, false});
    check_numbered(read_all(bus, "s"), 0, static_cast<std::size_t>(appended), value_bytes);
  }

  TEST_CASE("the_flusher_seals_a_segment_only_once_the_claim_that_rolled_past_it_is_committed") {
    // A claim that does not fit the rest of the segment rolls to the next
    // one; the pad that ends the old one is published with the claim's
    // commit. Until then the old segment's frames do not run to its end, and
    // no seal may say they do.
    TempBusDir dir;
    const SealEverySegment seal_every_segment;
    Bus bus = open_bus(dir.path());
    REQUIRE(bus.create_topic("c", persistent_ring(8)).ok()); // 4 KiB segments
    Result<Producer> p = bus.producer("c");
    REQUIRE(p.ok());
    const std::string value(96, 'v'); // 128-byte frames: 32 fill a segment
    for (int i = 0; i < 24; ++i) REQUIRE(p->append(value).ok());
    Result<Claim> claim = p->claim(2000); // does not fit the 1 KiB left
    REQUIRE_MESSAGE(claim.ok(), claim.message());
    std::vector<std::string> segments = dir.segments("c");
    REQUIRE(segments.size() == 2);
    std::this_thread::sleep_for(30ms); // thirty turns of the flusher
    CHECK(!detail::decode_segment_seal(file_bytes(segments[0])).has_value());
    std::memset(claim->value().data(), 'c', claim->value().size());
    REQUIRE(claim->commit().ok());
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::optional<detail::SegmentSeal> seal;
    while (!(seal = detail::decode_segment_seal(file_bytes(segments[0])))) {
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the flusher wrote no seal after the commit");
      std::this_thread::sleep_for(2ms);
    }
    CHECK(seal->end_offset == 24);
    CHECK(seal->boot == detail::seal_boot_tag());
  }

  TEST_CASE("the_flusher_leaves_segments_below_the_sealing_size_unsealed_and_recovery_walks_them") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path());
      REQUIRE(bus.create_topic("small", persistent_ring(8)).ok()); // 4 KiB segments
      Result<Producer> p = bus.producer("small");
      REQUIRE(p.ok());
      while (dir.segments("small").size() < 4) append_timed(*p, 1);
      std::this_thread::sleep_for(20ms); // the flusher's turns: every millisecond
    }
    for (const std::string& segment : dir.segments("small")) {
      CAPTURE(segment);
      CHECK(!detail::decode_segment_seal(file_bytes(segment)).has_value());
    }
    Result<platform::FileDescriptor> topics = platform::open_directory(dir.path() + "/topics");
    REQUIRE(topics.ok());
    Result<std::unique_ptr<detail::TopicStore>> store = detail::TopicStore::open(*topics, "small", false, false);
    REQUIRE_MESSAGE(store.ok(), store.message());
    CHECK((*store)->recovery().segments_walked == 2);
  }

  TEST_CASE("a_full_ring_recycles_its_old_laps_files_and_every_record_reads_back_after_a_reopen") {
    for (Durability durability : {Durability::none, Durability::interval, Durability::sync}) {
      const std::string durability_name(to_string(durability));
      CAPTURE(durability_name);
      TempBusDir dir;
      std::uint64_t appended = 0;
      {
        Bus bus = open_bus(dir.path());
        REQUIRE(bus.create_topic("laps", persistent_ring(4, durability)).ok());
        Result<Producer> p = bus.producer("laps");
        REQUIRE(p.ok());
        while (dir.segments("laps").size() < 4) append_timed(*p, 1);
        const std::set<ino_t> first_lap = inodes_of(dir.segments("laps"));
        append_timed(*p, 700); // about three laps of the ring
        // The same four files, renamed: each roll took the file leaving the slot it entered.
        CHECK(dir.segments("laps").size() == 4);
        CHECK(inodes_of(dir.segments("laps")) == first_lap);
        appended = p->next_offset();
        // In process, a reader of the ring gets this lap's records only.
        const std::vector<OwnedRecord> live = read_all(bus, "laps");
        REQUIRE(!live.empty());
        check_numbered(live, live.front().offset, static_cast<std::size_t>(appended - live.front().offset));
      }
      CHECK(temp_files(dir, "laps").empty());
      for (int reopen = 0; reopen < 2; ++reopen) {
        CAPTURE(reopen);
        {
          // Last lap's frames after the tail's end (the file was recycled) end the log cleanly.
          Result<platform::FileDescriptor> topics = platform::open_directory(dir.path() + "/topics");
          REQUIRE(topics.ok());
          Result<std::unique_ptr<detail::TopicStore>> store = detail::TopicStore::open(*topics, "laps", false, false);
          REQUIRE_MESSAGE(store.ok(), store.message());
          CHECK((*store)->recovery().cut_reason.empty());
          CHECK((*store)->restored().next_offset == appended);
        }
        Bus bus = open_bus(dir.path());
        Result<TopicInfo> info = bus.describe("laps");
        REQUIRE(info.ok());
        CHECK(info->end_offset == appended);
        const std::vector<OwnedRecord> records = read_all(bus, "laps");
        REQUIRE(!records.empty());
        CHECK(records.front().offset == info->oldest_offset);
        check_numbered(records, records.front().offset, static_cast<std::size_t>(appended - records.front().offset));
        Result<Producer> p = bus.producer("laps");
        REQUIRE(p.ok());
        append_timed(*p, 90); // on into the recovered tail and the next recycled files
        appended = p->next_offset();
      }
    }
  }

  TEST_CASE("readers_waiting_at_a_segment_end_take_the_next_file_only_once_the_producer_published_into_it") {
    // Values of even_value_bytes fill a segment exactly (no pad frame), so a
    // reader that drained a segment looks at the next slot's first word while
    // the producer maps the next file there. The producer waits at each
    // segment end until both readers spin there. Under ThreadSanitizer a read
    // of the slot that is not ordered after the mapping is reported.
    TempBusDir dir;
    Bus bus = open_bus(dir.path(), no_flusher());
    REQUIRE(bus.create_topic("edge", persistent_small_ring(4)).ok());
    Producer p = bus.producer("edge").value();
    Result<Consumer> c = bus.consumer("edge");
    REQUIRE(c.ok());
    Result<GroupMember> m = bus.group_member("g", "edge");
    REQUIRE(m.ok());
    const std::uint64_t total = 12 * records_per_small_segment; // three laps: fresh files, then recycled ones
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    std::atomic<std::uint64_t> read_by_consumer{0};
    std::atomic<std::uint64_t> read_by_member{0};
    std::atomic<bool> failed{false};
    // Each reader checks every record's offset and value, in order (one member
    // gets the whole topic), and publishes how far it got (release, paired
    // with the producer's acquire loads).
    const auto read = [&](auto& reader, std::atomic<std::uint64_t>& progress) {
      std::uint64_t next = 0;
      while (next < total && !failed.load(std::memory_order_relaxed)) {
        if (std::chrono::steady_clock::now() > deadline) break;
        Result<Records> r = reader.poll(records_per_small_segment);
        if (!r.ok()) break;
        for (const Record& rec : *r) {
          if (rec.offset != next || str(rec.value) != value_for(next, even_value_bytes)) {
            failed.store(true, std::memory_order_relaxed);
            return;
          }
          ++next;
        }
        progress.store(next, std::memory_order_release);
      }
    };
    std::thread consumer_thread([&] { read(*c, read_by_consumer); });
    std::thread member_thread([&] { read(*m, read_by_member); });
    for (std::uint64_t i = 0; i < total && !failed.load(std::memory_order_relaxed);) {
      Result<std::uint64_t> r = p.append(value_for(i, even_value_bytes));
      if (!r.ok()) { // no REQUIRE while the readers run
        FAIL_CHECK(r.message());
        failed.store(true, std::memory_order_relaxed);
        break;
      }
      ++i;
      if (i % records_per_small_segment != 0) continue;
      while ((read_by_consumer.load(std::memory_order_acquire) < i ||
              read_by_member.load(std::memory_order_acquire) < i) &&
             std::chrono::steady_clock::now() < deadline && !failed.load(std::memory_order_relaxed)) {
        std::this_thread::yield();
      }
      std::this_thread::sleep_for(1ms); // both readers now poll at the segment's end
    }
    consumer_thread.join();
    member_thread.join();
    CHECK(!failed.load(std::memory_order_relaxed));
    CHECK(read_by_consumer.load(std::memory_order_relaxed) == total);
    CHECK(read_by_member.load(std::memory_order_relaxed) == total);
  }

  TEST_CASE("every_durability_checksums_every_frame_and_recovery_cuts_a_frame_out_of_order_even_with_its_crc") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), BusOptions{false, false});
      REQUIRE(bus.create_topic("plain", persistent_ring(4, Durability::none)).ok());
      REQUIRE(bus.create_topic("summed", persistent_ring(4, Durability::interval)).ok());
      for (const char* topic : {"plain", "summed"}) {
        Result<Producer> p = bus.producer(topic);
        REQUIRE(p.ok());
        append_timed(*p, 10); // one record per frame, all in the first segment
      }
    }
    std::uint64_t last_frame = 0;
    std::uint32_t page = 0;
    for (const char* topic : {"plain", "summed"}) {
      CAPTURE(topic);
      const std::vector<std::byte> file = file_bytes(dir.segments(topic).front());
      std::uint32_t kind = 0;
      std::memcpy(&kind, file.data() + offsetof(detail::SegmentHeader, frame_checksum), sizeof kind);
      CHECK(kind == 1u); // CRC32C, whatever the durability
      std::memcpy(&page, file.data() + offsetof(detail::SegmentHeader, page_size), sizeof page);
      std::uint64_t pos = 0;
      for (int i = 0; i < 10; ++i) {
        detail::FrameHeader h{};
        std::memcpy(&h, file.data() + page + pos, sizeof h);
        REQUIRE(h.type == static_cast<std::uint8_t>(detail::frame_type::data));
        REQUIRE(h.base_offset == static_cast<std::uint64_t>(i));
        CHECK(h.checksum == detail::frame_checksum(file.data() + page + pos, h.length));
        last_frame = pos;
        pos += detail::align_up(h.length, detail::frame_alignment);
      }
    }
    // A frame whose CRC matches is still checked for its place: the offset it
    // carries must continue the log. A wrong one (with a CRC made to fit) ends
    // the log before it.
    const std::string plain = dir.segments("plain").front();
    {
      std::vector<std::byte> file = file_bytes(plain);
      std::byte* frame = file.data() + page + last_frame;
      const std::uint64_t wrong = 12;
      std::memcpy(frame + offsetof(detail::FrameHeader, base_offset), &wrong, sizeof wrong);
      detail::FrameHeader h{};
      std::memcpy(&h, frame, sizeof h);
      const std::uint32_t crc = detail::frame_checksum(frame, h.length);
      std::fstream f(plain, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(page + last_frame + offsetof(detail::FrameHeader, base_offset)));
      f.write(reinterpret_cast<const char*>(&wrong), sizeof wrong);
      f.seekp(static_cast<std::streamoff>(page + last_frame + offsetof(detail::FrameHeader, checksum)));
      f.write(reinterpret_cast<const char*>(&crc), sizeof crc);
    }
    {
      Result<platform::FileDescriptor> topics = platform::open_directory(dir.path() + "/topics");
      REQUIRE(topics.ok());
      Result<std::unique_ptr<detail::TopicStore>> store = detail::TopicStore::open(*topics, "plain", false, false);
      REQUIRE_MESSAGE(store.ok(), store.message());
      CHECK(contains((*store)->recovery().cut_reason, "base_offset 12"));
    }
    Bus bus = open_bus(dir.path(), BusOptions{false, false});
    Result<TopicInfo> info = bus.describe("plain");
    REQUIRE(info.ok());
    CHECK(info->end_offset == 9);
    check_numbered(read_all(bus, "plain"), 0, 9);
  }

  TEST_CASE("a_follower_keeps_the_files_it_maps_from_being_recycled_and_never_reads_a_newer_lap") {
    TempBusDir dir;
    Bus writer = open_bus(dir.path(), BusOptions{false, false});
    REQUIRE(writer.create_topic("held", persistent_ring(4)).ok());
    Result<Producer> p = writer.producer("held");
    REQUIRE(p.ok());
    append_timed(*p, 300); // the ring is full: rolls recycle
    BusOptions ro;
    ro.read_only = true;
    Bus follower = open_bus(dir.path(), ro); // maps every segment file, each under its read lock
    Result<Consumer> c = follower.consumer("held");
    REQUIRE(c.ok());
    Result<TopicInfo> opened = follower.describe("held");
    REQUIRE(opened.ok());
    const std::set<ino_t> mapped = inodes_of(dir.segments("held"));
    append_timed(*p, 700); // laps the follower (which does not poll meanwhile) three times
    // The writer could recycle none of the files the follower holds: it took fresh ones.
    std::set<ino_t> both;
    const std::set<ino_t> now = inodes_of(dir.segments("held"));
    std::set_intersection(now.begin(), now.end(), mapped.begin(), mapped.end(), std::inserter(both, both.end()));
    CHECK(both.empty());
    // The follower hands out whole records of their own offsets, or tells what it lost.
    std::uint64_t next = opened->oldest_offset;
    std::uint64_t lost = 0;
    const std::uint64_t end = p->next_offset();
    for (int idle = 0; next < end && idle < 5000;) {
      Result<Records> r = c->poll(SIZE_MAX, std::chrono::milliseconds(1));
      REQUIRE_MESSAGE(r.ok(), r.message());
      if (!check_follower_poll(*r, next, lost)) ++idle;
    }
    CHECK(next == end);
    CHECK(lost > 0);
  }

  TEST_CASE("a_batch_refused_after_it_rolled_leaves_no_segment_file_behind_and_the_topic_reopens") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), BusOptions{false, false});
      REQUIRE(bus.create_topic("b", persistent_ring(8)).ok());
      Result<Producer> p = bus.producer("b");
      REQUIRE(p.ok());
      Result<Consumer> holder = bus.consumer("b"); // never polls: holds offset 0
      REQUIRE(holder.ok());
      append_timed(*p, 250); // ~5 of the 8 segments
      const std::size_t files_before = dir.segments("b").size();
      // Needs ~4 more segments: the first rolls succeed, the one that would
      // overwrite segment 0 is refused (the holder is there): all or nothing.
      std::vector<std::uint64_t> values(1700, 7); // 13.6 KB: under the batch limit of 14 KiB
      Result<std::uint64_t> r = p->try_append_values(std::span<const std::uint64_t>(values));
      REQUIRE(!r.ok());
      CHECK(r.code() == Errc::would_block);
      CHECK(dir.segments("b").size() == files_before); // the batch's new files are gone
      CHECK(p->next_offset() == 250);
      check_numbered(drain(*holder), 0, 250);
      append_timed(*p, 10);
    }
    Bus bus = open_bus(dir.path());
    check_numbered(read_all(bus, "b"), 0, 260);
  }

  TEST_CASE("an_overwrite_topic_batch_refused_by_a_full_disk_does_not_come_back_on_reopen") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), BusOptions{false, false});
      TopicOptions o = persistent_ring(8);
      o.overflow = OverflowPolicy::overwrite;
      REQUIRE(bus.create_topic("o", o).ok());
      Result<Producer> p = bus.producer("o");
      REQUIRE(p.ok());
      append_timed(*p, 50);
      platform::testing::fail_next_preallocations(1); // the batch's roll finds the disk full
      std::vector<std::uint64_t> values(800, 9);
      Result<std::uint64_t> r = p->append_values(std::span<const std::uint64_t>(values));
      REQUIRE(!r.ok());
      CHECK(r.code() == Errc::no_space);
      CHECK(p->next_offset() == 50);
      Result<TopicInfo> info = bus.describe("o");
      REQUIRE(info.ok());
      CHECK(info->end_offset == 50);
    }
    Bus bus = open_bus(dir.path());
    Result<TopicInfo> info = bus.describe("o");
    REQUIRE(info.ok());
    CHECK(info->end_offset == 50);
    check_numbered(read_all(bus, "o"), 0, 50);
  }

  TEST_CASE("a_batch_rolling_through_three_segments_of_a_full_ring_recycles_their_files") {
    FullRing ring("laps");
    const std::uint64_t first = ring.producer.next_offset();
    const std::size_t before = ring.dir.segments("laps").size();
    NumberedBatch batch(first, 250); // ~12 KB of records: through three segments of 4 KiB or more
    Result<std::uint64_t> r = ring.producer.append_batch(batch.messages);
    REQUIRE_MESSAGE(r.ok(), r.message());
    REQUIRE(*r == first);
    std::size_t entered = 0; // segment files the batch began
    for (const std::string& f : ring.dir.segments("laps")) {
      if (std::stoull(std::filesystem::path(f).stem().string()) > first) ++entered;
    }
    REQUIRE(entered >= 3);
    // As single appends leave it: the same eight files, each roll took the
    // file leaving the slot it entered.
    CHECK(ring.dir.segments("laps").size() == before);
    CHECK(inodes_of(ring.dir.segments("laps")) == ring.first_lap);
    ring.check_every_record_live_and_after_a_reopen();
  }

  TEST_CASE("a_batch_through_a_full_ring_needs_no_new_file_so_a_full_disk_does_not_refuse_it") {
    FullRing ring("full");
    const std::uint64_t first = ring.producer.next_offset();
    std::vector<std::uint64_t> values(1500); // 12 KB: through three segments
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = first + i;
    platform::testing::fail_next_preallocations(1 << 20); // every new file would fail
    Result<std::uint64_t> r = ring.producer.append_values(std::span<const std::uint64_t>(values), 77);
    platform::testing::fail_next_preallocations(0);
    REQUIRE_MESSAGE(r.ok(), r.message());
    CHECK(*r == first);
    CHECK(inodes_of(ring.dir.segments("full")) == ring.first_lap);
    Result<Consumer> c = ring.bus.consumer("full");
    REQUIRE(c.ok());
    REQUIRE(c->seek("full", first).ok());
    const std::vector<OwnedRecord> got = drain(*c);
    REQUIRE(got.size() == values.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      REQUIRE(got[i].offset == first + i);
      REQUIRE(got[i].timestamp_ns == 77);
      std::uint64_t v = 0;
      REQUIRE(got[i].value.size() == sizeof v);
      std::memcpy(&v, got[i].value.data(), sizeof v);
      REQUIRE(v == first + i);
    }
  }

  TEST_CASE("a_batch_refused_by_a_full_disk_at_a_roll_keeps_readable_every_segment_whose_slot_it_did_not_reach") {
    // The batch takes its room (reclaim_for_batch) before it writes; a roll
    // that then fails gives up only the segments of the slots it entered.
    for (const int failing_roll : {1, 2}) {
      CAPTURE(failing_roll);
      FullRing ring("b");
      const std::vector<std::string> old = ring.dir.segments("b");
      // Rolls from failing_roll on make a new file (as with a follower holding the old one).
      std::vector<int> locks;
      for (int k = failing_roll - 1; k < 3; ++k) locks.push_back(hold_read_lock(old[static_cast<std::size_t>(k)]));
      const std::uint64_t first = ring.producer.next_offset();
      std::vector<std::uint64_t> values(1500, 5); // 12 KB: through three segments
      platform::testing::fail_next_preallocations(1);
      Result<std::uint64_t> r = ring.producer.append_values(std::span<const std::uint64_t>(values));
      platform::testing::fail_next_preallocations(0);
      REQUIRE(!r.ok());
      CHECK(r.code() == Errc::no_space);
      CHECK(contains(r.message(), "No space"));
      CHECK(ring.producer.next_offset() == first);
      // Every segment whose slot the batch did not reach is still there and read, from its first record on.
      const std::uint64_t kept_from = base_offset_of(old[static_cast<std::size_t>(failing_roll)]);
      Result<TopicInfo> info = ring.bus.describe("b");
      REQUIRE(info.ok());
      CHECK(info->oldest_offset == kept_from);
      check_numbered(read_all(ring.bus, "b"), kept_from, static_cast<std::size_t>(first - kept_from));
      for (const int fd : locks) ::close(fd);
      // The topic takes appends again, and a reopen finds what a reader found.
      append_timed(ring.producer, 100);
      ring.check_every_record_live_and_after_a_reopen();
    }
  }

  TEST_CASE("retention_at_a_later_roll_of_a_batch_keeps_the_segment_holding_the_batch_start") {
    // The batch's first frame is published last (its word, at publish()):
    // until then the segment it starts in is no sealed segment retention may take.
    TempBusDir dir;
    std::uint64_t first = 0;
    std::uint64_t end = 0;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      TopicOptions o = persistent_ring(8);
      o.retention.max_segments = 2; // the segment just sealed and the new one
      REQUIRE(bus.create_topic("r", o).ok());
      Producer p = bus.producer("r").value();
      append_timed(p, 100); // into the second segment
      first = p.next_offset();
      NumberedBatch batch(first, 250); // ~12 KB: through three segments
      Result<std::uint64_t> r = p.append_batch(batch.messages);
      REQUIRE_MESSAGE(r.ok(), r.message());
      REQUIRE(*r == first);
      end = p.next_offset();
      const std::vector<OwnedRecord> live = read_all(bus, "r");
      REQUIRE(!live.empty());
      CHECK(live.front().offset <= first);
      check_numbered(live, live.front().offset, static_cast<std::size_t>(end - live.front().offset));
      append_timed(p, 60); // the next roll applies retention again: only two segments stay
      end = p.next_offset();
      CHECK(dir.segments("r").size() == 2);
    }
    Bus bus = open_bus(dir.path());
    const std::vector<OwnedRecord> recovered = read_all(bus, "r");
    REQUIRE(!recovered.empty());
    check_numbered(recovered, recovered.front().offset, static_cast<std::size_t>(end - recovered.front().offset));
  }
}
