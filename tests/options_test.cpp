// TopicOptions::validate and validate_topic_name: every limit, with an error
// that names the field, its value and the limit.
#include <chrono>
#include <string>

#include "ringbus/options.hpp"
#include "test_support.hpp"

using ringbus::Errc;
using ringbus::OverflowPolicy;
using ringbus::Status;
using ringbus::TopicOptions;
using ringbus::WaitStrategy;
using ringbus::test::contains;
namespace limits = ringbus::limits;

namespace {

TopicOptions with_segments(std::size_t bytes, std::size_t count) {
  TopicOptions o;
  o.segment_bytes = bytes;
  o.segment_count = count;
  return o;
}

} // namespace

TEST_SUITE("options") {
  // Up to 366 days; longer ones would overflow on their way to nanoseconds.
  TEST_CASE("interval_options_longer_than_366_days_are_refused_naming_the_option_and_the_limit") {
    CHECK(ringbus::validate_interval("x", std::chrono::milliseconds(0)).ok());
    CHECK(ringbus::validate_interval("x", limits::max_interval).ok());
    const Status longer =
        ringbus::validate_interval("stats_interval", limits::max_interval + std::chrono::milliseconds(1));
    CHECK(longer.code() == Errc::invalid_argument);
    CHECK(contains(longer.message(), "stats_interval 31622400001 ms exceeds the limit of 31622400000 ms"));
    CHECK(contains(ringbus::validate_interval("y", std::chrono::milliseconds(-1)).message(), "y -1 ms is negative"));

    TopicOptions topic;
    topic.flush_interval = std::chrono::milliseconds::max();
    const Status flush = topic.validate();
    CHECK(flush.code() == Errc::invalid_argument);
    CHECK(contains(flush.message(), "flush_interval 9223372036854775807 ms exceeds the limit"));
    ringbus::GroupOptions group;
    group.auto_commit_interval = std::chrono::milliseconds::max();
    CHECK(contains(group.validate().message(), "auto_commit_interval 9223372036854775807 ms exceeds the limit"));
  }

  TEST_CASE("default_topic_options_are_valid") {
    const TopicOptions o;
    CHECK(o.validate().ok());
    CHECK(o.capacity_bytes() == o.segment_bytes * o.segment_count);
    CHECK(o.overflow == OverflowPolicy::block);
    CHECK(o.wait == WaitStrategy::backoff);
    CHECK(o.timestamps == ringbus::TimestampSource::wall_clock);
  }

  TEST_CASE("segment_sizes_and_counts_at_their_limits_are_accepted") {
    CHECK(with_segments(limits::min_segment_bytes, limits::min_segment_count).validate().ok());
    CHECK(with_segments(limits::max_segment_bytes, 2).validate().ok());
    // Exactly the largest ring: 1 GiB * 64 = 64 GiB (validated only, never mapped).
    CHECK(with_segments(limits::max_segment_bytes, limits::max_capacity_bytes / limits::max_segment_bytes)
              .validate()
              .ok());
    CHECK(with_segments(4096, 1024).capacity_bytes() == 4096u * 1024u);
  }

  TEST_CASE("segment_bytes_not_a_power_of_two_is_refused_naming_the_value") {
    const Status s = with_segments(5000, 2).validate();
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "segment_bytes"));
    CHECK(contains(s.message(), "5000"));
    CHECK(contains(s.message(), "power of two"));
  }

  TEST_CASE("segment_bytes_below_4_KiB_is_refused_naming_the_minimum") {
    for (std::size_t bytes : {std::size_t{0}, std::size_t{2048}, std::size_t{64}}) {
      CAPTURE(bytes);
      const Status s = with_segments(bytes, 2).validate();
      CHECK(s.code() == Errc::invalid_argument);
      CHECK(contains(s.message(), "segment_bytes " + std::to_string(bytes)));
      CHECK(contains(s.message(), "4096"));
    }
  }

  TEST_CASE("segment_bytes_above_1_GiB_is_refused_naming_the_maximum") {
    const Status s = with_segments(limits::max_segment_bytes * 2, 2).validate();
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), std::to_string(limits::max_segment_bytes * 2)));
    CHECK(contains(s.message(), "1073741824"));
  }

  TEST_CASE("segment_count_not_a_power_of_two_or_below_two_is_refused_naming_the_limit") {
    for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{6}}) {
      CAPTURE(count);
      const Status s = with_segments(4096, count).validate();
      CHECK(s.code() == Errc::invalid_argument);
      CHECK(contains(s.message(), "segment_count " + std::to_string(count)));
      CHECK(contains(s.message(), "power of two"));
      CHECK(contains(s.message(), "at least 2"));
    }
  }

  TEST_CASE("ring_capacity_above_64_GiB_is_refused_naming_both_factors_and_the_limit") {
    const Status s = with_segments(limits::max_segment_bytes, 128).validate();
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "1073741824 * 128"));
    CHECK(contains(s.message(), "68719476736"));
  }

  TEST_CASE("max_consumers_must_be_between_one_and_4096") {
    TopicOptions o;
    o.max_consumers = 0;
    Status s = o.validate();
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "max_consumers 0"));
    CHECK(contains(s.message(), "4096"));

    o.max_consumers = limits::max_consumers + 1;
    s = o.validate();
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "max_consumers 4097"));
    CHECK(contains(s.message(), "4096"));

    o.max_consumers = 1;
    CHECK(o.validate().ok());
    o.max_consumers = limits::max_consumers;
    CHECK(o.validate().ok());
  }

  TEST_CASE("unknown_overflow_policy_or_wait_strategy_is_refused") {
    TopicOptions o;
    o.overflow = static_cast<OverflowPolicy>(7);
    Status s = o.validate();
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "overflow"));
    CHECK(contains(s.message(), "7"));

    o = TopicOptions{};
    o.wait = static_cast<WaitStrategy>(9);
    s = o.validate();
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "wait"));
    CHECK(contains(s.message(), "9"));
  }

  TEST_CASE("line_aligned_appends_on_an_overwrite_topic_are_refused_naming_both") {
    TopicOptions o;
    o.line_aligned_appends = true;
    CHECK(o.validate().ok());
    o.overflow = OverflowPolicy::overwrite;
    const Status s = o.validate();
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "line_aligned_appends"));
    CHECK(contains(s.message(), "block"));
  }

  TEST_CASE("topic_names_of_one_to_255_plain_bytes_are_accepted") {
    CHECK(ringbus::validate_topic_name("t").ok());
    CHECK(ringbus::validate_topic_name("orders.eu-west_1").ok());
    CHECK(ringbus::validate_topic_name(".hidden").ok());
    CHECK(ringbus::validate_topic_name("a.b.c").ok());
    CHECK(ringbus::validate_topic_name(std::string(limits::max_topic_name_bytes, 'n')).ok());
  }

  TEST_CASE("empty_topic_name_is_refused") {
    const Status s = ringbus::validate_topic_name("");
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "empty"));
    CHECK(contains(s.message(), "255"));
  }

  TEST_CASE("topic_name_over_255_bytes_is_refused_naming_its_size_and_the_limit") {
    const Status s = ringbus::validate_topic_name(std::string(256, 'n'));
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "256"));
    CHECK(contains(s.message(), "255"));
  }

  TEST_CASE("topic_name_with_a_slash_is_refused_naming_it") {
    for (const char* name : {"a/b", "/", "/abs", "trailing/"}) {
      CAPTURE(name);
      const Status s = ringbus::validate_topic_name(name);
      CHECK(s.code() == Errc::invalid_argument);
      CHECK(contains(s.message(), name));
      CHECK(contains(s.message(), "'/'"));
    }
  }

  TEST_CASE("topic_name_with_dot_dot_or_a_single_dot_is_refused") {
    for (const char* name : {"..", ".", "a..b", "...", "x.."}) {
      CAPTURE(name);
      const Status s = ringbus::validate_topic_name(name);
      CHECK(s.code() == Errc::invalid_argument);
      CHECK(contains(s.message(), "'..'"));
    }
  }

  TEST_CASE("topic_name_with_a_nul_byte_is_refused") {
    const Status s = ringbus::validate_topic_name(std::string("a\0b", 3));
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "NUL"));
    CHECK(ringbus::validate_topic_name(std::string(1, '\0')).code() == Errc::invalid_argument);
  }

  TEST_CASE("policies_and_strategies_have_names") {
    CHECK(ringbus::to_string(OverflowPolicy::block) == "block");
    CHECK(ringbus::to_string(OverflowPolicy::overwrite) == "overwrite");
    CHECK(ringbus::to_string(static_cast<OverflowPolicy>(5)) == "unknown");
    CHECK(ringbus::to_string(WaitStrategy::busy_spin) == "busy_spin");
    CHECK(ringbus::to_string(WaitStrategy::yield) == "yield");
    CHECK(ringbus::to_string(WaitStrategy::backoff) == "backoff");
    CHECK(ringbus::to_string(WaitStrategy::blocking) == "blocking");
    CHECK(ringbus::to_string(static_cast<WaitStrategy>(5)) == "unknown");
  }

  TEST_CASE("consumer_options_default_to_earliest_and_the_topic_wait_strategy") {
    const ringbus::ConsumerOptions o;
    CHECK(o.topics.empty());
    CHECK(o.start == ringbus::StartPosition::earliest);
    CHECK_FALSE(o.override_wait);
  }

} // TEST_SUITE
