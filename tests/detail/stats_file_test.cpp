// The stats file (src/detail/stats_file.cpp): what a writable bus publishes
// for other processes, read back whole; a damaged, foreign or torn file is
// refused with its name and the field, and recovery passes over it.
#include "detail/stats_file.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "persist_support.hpp"
#include "ringbus/detail/stats_layout.hpp"
#include "test_support.hpp"

namespace ringbus::test {
namespace {

// What the topic's stats file says; nullopt when there is none; the error message otherwise.
Result<std::optional<detail::StatsFileContents>> read_stats(const TempBusDir& dir, const std::string& topic) {
  Result<platform::FileDescriptor> d = platform::open_directory(dir.topic_dir(topic));
  REQUIRE_MESSAGE(d.ok(), d.message());
  return detail::read_stats_file(*d, topic);
}

detail::StatsFileContents must_read(const TempBusDir& dir, const std::string& topic) {
  Result<std::optional<detail::StatsFileContents>> r = read_stats(dir, topic);
  REQUIRE_MESSAGE(r.ok(), r.message());
  REQUIRE(r->has_value());
  return **r;
}

void write_at(const std::string& path, std::uint64_t at, const void* bytes, std::size_t n) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f.good());
  f.seekp(static_cast<std::streamoff>(at));
  f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
  REQUIRE(f.good());
}

} // namespace

TEST_SUITE("stats_file") {
  TEST_CASE("a_writable_bus_publishes_its_counters_at_open_and_its_final_values_at_close") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      bus.create_topic("t", persistent_small_ring(4)).check();
      const detail::StatsFileContents first = must_read(dir, "t");
      CHECK(first.writer_pid == ::getpid());
      CHECK(!first.closed);
      CHECK(first.stats.records_appended == 0);
      CHECK(std::filesystem::status(dir.topic_dir("t") + "/stats").permissions() ==
            (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
      Producer p = bus.producer("t").value();
      append_numbered(p, 70);
    }
    const detail::StatsFileContents last = must_read(dir, "t");
    CHECK(last.closed);
    CHECK(last.writer_pid == ::getpid());
    CHECK(last.stats.records_appended == 70);
    CHECK(last.stats.end_offset == 70);
    CHECK(last.stats.bytes_appended == 70 * packed_frame_bytes(even_value_bytes));
    CHECK(last.stats.segment_rolls == 1);
    CHECK(!std::filesystem::exists(dir.topic_dir("t") + "/stats.tmp"));
    // A read-only bus writes none: the writer's file stays as it was.
    BusOptions ro;
    ro.read_only = true;
    { Bus reader = open_bus(dir.path(), ro); }
    CHECK(must_read(dir, "t").closed);
  }

  TEST_CASE("a_stats_interval_longer_than_366_days_is_refused_and_the_bus_not_opened") {
    TempBusDir dir;
    BusOptions options;
    options.stats_interval = std::chrono::milliseconds::max();
    Result<Bus> bus = Bus::open(dir.path(), options);
    CHECK(bus.code() == Errc::invalid_argument);
    CHECK(ringbus::test::contains(bus.message(), "stats_interval 9223372036854775807 ms exceeds the limit"));
  }

  TEST_CASE("the_flusher_rewrites_the_stats_file_every_stats_interval_while_the_producer_appends") {
    TempBusDir dir;
    BusOptions options;
    options.stats_interval = std::chrono::milliseconds(1);
    Bus bus = open_bus(dir.path(), options);
    bus.create_topic("t", persistent_small_ring(4)).check();
    Producer p = bus.producer("t").value();
    append_numbered(p, 40);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    detail::StatsFileContents c = must_read(dir, "t");
    while (c.stats.records_appended != 40) {
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the flusher never published 40 records");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      c = must_read(dir, "t");
    }
    CHECK(c.stats.has_producer);
    CHECK(!c.closed);
    const detail::StatsFileContents later = [&] {
      for (;;) {
        detail::StatsFileContents n = must_read(dir, "t");
        if (n.stats.sampled_at != c.stats.sampled_at) return n;
        REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "no second sample");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }();
    CHECK(later.stats.sampled_at > c.stats.sampled_at);
    CHECK(append_rate(c.stats, later.stats).records_per_second == 0); // nothing appended in between
  }

  TEST_CASE("a_damaged_foreign_or_torn_stats_file_is_refused_by_name_and_recovery_passes_over_it") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      bus.create_topic("t", persistent_small_ring(4)).check();
      Producer p = bus.producer("t").value();
      append_numbered(p, 10);
    }
    const std::string path = dir.topic_dir("t") + "/stats";
    REQUIRE(must_read(dir, "t").stats.records_appended == 10);

    const std::uint64_t huge = 999'999;
    write_at(path, detail::stats_snapshot_offset + detail::stats_word::records_appended * 8, &huge, sizeof huge);
    Result<std::optional<detail::StatsFileContents>> damaged = read_stats(dir, "t");
    CHECK(damaged.code() == Errc::corrupt_data);
    CHECK(contains(damaged.message(), path));
    CHECK(contains(damaged.message(), "snapshot_checksum does not match"));

    const std::uint64_t odd = 7;
    write_at(path, detail::stats_snapshot_offset, &odd, sizeof odd); // a writer killed inside an update
    Result<std::optional<detail::StatsFileContents>> torn = read_stats(dir, "t");
    CHECK(torn.code() == Errc::corrupt_data);
    CHECK(contains(torn.message(), "torn"));

    write_at(path, 0, "NOTOURS!", 8);
    Result<std::optional<detail::StatsFileContents>> foreign = read_stats(dir, "t");
    CHECK(foreign.code() == Errc::corrupt_data);
    CHECK(contains(foreign.message(), "not a ringbus stats file"));

    std::filesystem::resize_file(path, 100);
    CHECK(contains(read_stats(dir, "t").message(), "size 100 bytes"));

    // Recovery is not bothered, and the next writer replaces the file with a good one.
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      CHECK(bus.describe("t").value().end_offset == 10);
      CHECK(must_read(dir, "t").stats.end_offset == 10);
    }
    const detail::StatsFileContents good = must_read(dir, "t");
    CHECK(good.closed);
    CHECK(good.stats.records_appended == 0);

    // A stats.tmp a crashed writer left (even a symlink) is removed, its target untouched.
    const std::string target = dir.path() + "/elsewhere";
    { std::ofstream(target) << "keep me"; }
    std::filesystem::create_symlink(target, dir.topic_dir("t") + "/stats.tmp");
    { Bus bus = open_bus(dir.path(), no_flusher()); }
    CHECK(must_read(dir, "t").closed);
    std::ifstream kept(target);
    std::string text;
    std::getline(kept, text);
    CHECK(text == "keep me");
  }

  TEST_CASE("a_bus_with_stats_interval_zero_keeps_no_stats_file") {
    TempBusDir dir;
    BusOptions options = no_flusher();
    options.stats_interval = std::chrono::milliseconds(0);
    {
      Bus bus = open_bus(dir.path(), options);
      bus.create_topic("t", persistent_small_ring(4)).check();
    }
    Result<std::optional<detail::StatsFileContents>> none = read_stats(dir, "t");
    REQUIRE(none.ok());
    CHECK(!none->has_value());
    options.stats_interval = std::chrono::milliseconds(-1);
    CHECK(contains(Bus::open(dir.path(), options).message(), "stats_interval -1 ms is negative"));
  }
}

} // namespace ringbus::test
