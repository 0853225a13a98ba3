// Bus::stats and append_rate (src/stats.cpp, the counters in detail/log.hpp):
// the counters equal what happened, exactly; waits and laps are counted
// where they happen; unknown topics are named.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "persist_support.hpp"
#include "test_support.hpp"

namespace ringbus::test {
namespace {

constexpr auto deadline_after = std::chrono::seconds(60);

TopicStats stats_of(const Bus& bus, std::string_view topic) {
  Result<TopicStats> s = bus.stats(topic);
  REQUIRE_MESSAGE(s.ok(), s.message());
  return *s;
}

} // namespace

TEST_SUITE("stats") {
  TEST_CASE("stats_count_every_appended_record_and_its_exact_frame_bytes") {
    Bus bus;
    bus.create_topic("t", small_ring(4)).check();
    TopicStats before = stats_of(bus, "t");
    CHECK(before.records_appended == 0);
    CHECK(before.bytes_appended == 0);
    CHECK(!before.has_producer);
    CHECK(before.open_consumers == 0);

    Consumer c1 = bus.consumer("t").value();
    Consumer c2 = bus.consumer("t").value();
    Producer p = bus.producer("t").value();
    append_numbered(p, 150); // 64-byte frames: 64 per segment, no pad
    TopicStats s = stats_of(bus, "t");
    CHECK(s.records_appended == 150);
    CHECK(s.end_offset == 150);
    CHECK(s.bytes_appended == 150 * packed_frame_bytes(even_value_bytes));
    CHECK(s.has_producer);
    CHECK(s.open_consumers == 2);
    CHECK(s.producer_waits == 0);
    CHECK(s.segment_rolls == 0); // in memory: rolls cost no system call and are not timed
    CHECK(s.lapped_consumers == 0);
    CHECK(s.sampled_at >= before.sampled_at);
    c2.close().check();
    CHECK(stats_of(bus, "t").open_consumers == 1);

    // Frames that do not divide a segment: the pad frame that ends a segment counts too.
    bus.create_topic("odd", small_ring(4)).check();
    Producer q = bus.producer("odd").value();
    constexpr std::size_t frame = packed_frame_bytes(40); // 72 bytes: 56 fill 4032 of 4096
    static_assert(frame == 72);
    append_numbered(q, 60, 40);
    const TopicStats odd = stats_of(bus, "odd");
    CHECK(odd.records_appended == 60);
    CHECK(odd.bytes_appended == small_segment_bytes + 4 * frame); // 56 frames + the 64-byte pad, then 4
  }

  TEST_CASE("a_producer_blocked_by_a_slow_consumer_counts_one_wait_and_its_time") {
    Bus bus;
    bus.create_topic("t", small_ring(2)).check();
    Consumer slow = bus.consumer("t").value(); // holds offset 0
    Producer p = bus.producer("t").value();
    std::uint64_t appended = 0;
    while (p.try_append(value_for(appended, even_value_bytes)).ok()) ++appended;
    REQUIRE(appended == 2 * records_per_small_segment);
    CHECK(stats_of(bus, "t").producer_waits == 0); // a refused try_append is not a wait

    std::thread producer([&] { p.append(value_for(appended, even_value_bytes)).value(); });
    // The wait is counted when it begins: once it shows, the producer is waiting.
    const auto deadline = std::chrono::steady_clock::now() + deadline_after;
    while (stats_of(bus, "t").producer_waits == 0) {
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the producer never waited");
      std::this_thread::yield();
    }
    const std::vector<OwnedRecord> got = drain(slow); // releases the first segment
    producer.join();
    CHECK(got.size() >= appended); // and the waiting record when it was in by then
    const TopicStats s = stats_of(bus, "t");
    CHECK(s.producer_waits == 1);
    CHECK(s.producer_wait_ns > 0);
    CHECK(s.records_appended == appended + 1);
  }

  TEST_CASE("an_overwrite_topics_lapped_consumer_counts_each_lap_and_exactly_the_records_it_was_told_it_lost") {
    Bus bus;
    bus.create_topic("feed", small_ring(4, OverflowPolicy::overwrite)).check(); // a ring of 256 records
    Consumer lapped = bus.consumer("feed").value();
    Consumer current = bus.consumer("feed").value();
    Producer p = bus.producer("feed").value();
    std::uint64_t gaps = 0;
    std::uint64_t lost = 0;
    std::uint64_t received = 0;
    for (int round = 0; round < 3; ++round) {
      for (int k = 0; k < 10; ++k) { // 320 records: `current` keeps up, `lapped` falls a ring behind
        append_numbered(p, 32);
        drain(current);
      }
      for (;;) {
        Result<Records> r = lapped.poll();
        REQUIRE(r.ok());
        gaps += r->gaps().size();
        lost += r->lost();
        received += r->size();
        if (r->empty() && r->gaps().empty()) break;
      }
    }
    const TopicStats s = stats_of(bus, "feed");
    REQUIRE(gaps >= 3);
    CHECK(s.lapped_consumers == gaps);
    CHECK(s.records_lost_by_lapped_consumers == lost);
    CHECK(lost == lapped.lost("feed").value());
    CHECK(received + lost == s.records_appended);
    CHECK(current.lost("feed").value() == 0);
    CHECK(s.producer_waits == 0); // overwrite: the producer never waits
  }

  TEST_CASE("stats_of_an_unknown_topic_is_an_error_naming_it") {
    Bus bus;
    bus.create_topic("real").check();
    const Result<TopicStats> none = bus.stats("nope");
    CHECK(none.code() == Errc::topic_not_found);
    CHECK(contains(none.message(), "topic 'nope' does not exist"));
    bus.close();
    CHECK(bus.stats("real").code() == Errc::closed);
  }

  TEST_CASE("append_rate_is_the_difference_of_two_samples_over_the_time_between_them") {
    TopicStats a;
    a.sampled_at = std::chrono::steady_clock::time_point(std::chrono::seconds(10));
    a.records_appended = 1000;
    a.bytes_appended = 64'000;
    TopicStats b = a;
    b.sampled_at += std::chrono::milliseconds(250);
    b.records_appended = 1500;
    b.bytes_appended = 96'000;
    const AppendRate r = append_rate(a, b);
    CHECK(r.seconds == doctest::Approx(0.25));
    CHECK(r.records_per_second == doctest::Approx(2000.0));
    CHECK(r.bytes_per_second == doctest::Approx(128'000.0));
    const AppendRate backwards = append_rate(b, a);
    CHECK(backwards.seconds == 0);
    CHECK(backwards.records_per_second == 0);
    CHECK(append_rate(a, a).records_per_second == 0);
  }

  TEST_CASE("a_persistent_topic_counts_its_rolls_and_counts_appends_from_where_this_bus_opened_it") {
    TempBusDir dir;
    BusOptions options;
    options.flusher_thread = false;
    TopicOptions o = small_ring(4);
    o.storage = Storage::persistent;
    {
      Bus bus = open_bus(dir.path(), options);
      bus.create_topic("t", o).check();
      Producer p = bus.producer("t").value();
      append_numbered(p, 100); // rolls once, into the second segment
      const TopicStats s = stats_of(bus, "t");
      CHECK(s.records_appended == 100);
      CHECK(s.bytes_appended == 100 * packed_frame_bytes(even_value_bytes));
      CHECK(s.segment_rolls == 1);
      CHECK(s.segment_roll_ns > 0);
    }
    Bus bus = open_bus(dir.path(), options);
    TopicStats s = stats_of(bus, "t");
    CHECK(s.end_offset == 100);
    CHECK(s.records_appended == 0); // recovered records were appended by another bus
    CHECK(s.bytes_appended == 0);
    Producer p = bus.producer("t").value();
    append_numbered(p, 5);
    s = stats_of(bus, "t");
    CHECK(s.end_offset == 105);
    CHECK(s.records_appended == 5);
    CHECK(s.bytes_appended == 5 * packed_frame_bytes(even_value_bytes));
  }
}

} // namespace ringbus::test
