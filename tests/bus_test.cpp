// Bus: the registry of topics, the factory of handles, and what closing it does.
#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "ringbus/bus.hpp"
#include "ringbus/detail/memory.hpp"
#include "test_support.hpp"

using ringbus::Bus;
using ringbus::ConsumerOptions;
using ringbus::Errc;
using ringbus::Message;
using ringbus::OverflowPolicy;
using ringbus::Status;
using ringbus::TopicOptions;
using ringbus::test::contains;
using ringbus::test::msg;
using ringbus::test::small_ring;

TEST_SUITE("bus") {
  TEST_CASE("created_topic_is_listed_and_described") {
    Bus bus;
    CHECK(bus.is_open());
    CHECK(bus.topic_names().empty());
    CHECK_FALSE(bus.has_topic("orders"));

    TopicOptions options = small_ring(4, OverflowPolicy::overwrite);
    options.max_consumers = 3;
    REQUIRE(bus.create_topic("orders", options).ok());
    REQUIRE(bus.create_topic("fills").ok()); // default options
    CHECK(bus.has_topic("orders"));
    CHECK(bus.has_topic("fills"));
    CHECK_FALSE(bus.has_topic("order"));

    std::vector<std::string> names = bus.topic_names();
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"fills", "orders"});

    auto info = bus.describe("orders");
    REQUIRE(info.ok());
    CHECK(info->name == "orders");
    CHECK(info->options.segment_bytes == 4096);
    CHECK(info->options.segment_count == 4);
    CHECK(info->options.overflow == OverflowPolicy::overwrite);
    CHECK(info->options.max_consumers == 3);
    CHECK(info->oldest_offset == 0);
    CHECK(info->end_offset == 0);
    CHECK_FALSE(info->has_producer);
    CHECK(bus.describe("fills")->options.segment_bytes == TopicOptions{}.segment_bytes);
  }

  TEST_CASE("describe_follows_appends_and_the_producer") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    {
      auto producer = bus.producer("t").value();
      CHECK(bus.describe("t")->has_producer);
      for (int i = 0; i < 5; ++i) REQUIRE(producer.append("x").ok());
      CHECK(bus.describe("t")->end_offset == 5);
      CHECK(bus.describe("t")->oldest_offset == 0);
    }
    CHECK_FALSE(bus.describe("t")->has_producer);
    CHECK(bus.describe("t")->end_offset == 5);
  }

  TEST_CASE("describe_of_an_unknown_topic_says_topic_not_found_naming_it") {
    Bus bus;
    auto info = bus.describe("nope");
    CHECK(info.code() == Errc::topic_not_found);
    CHECK(contains(info.message(), "'nope'"));
  }

  TEST_CASE("create_topic_twice_is_refused_with_topic_exists_and_keeps_the_first") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring(2)).ok());
    const Status again = bus.create_topic("t", small_ring(2));
    CHECK(again.code() == Errc::topic_exists);
    CHECK(contains(again.message(), "'t'"));
    CHECK(contains(again.message(), "exists"));

    const Status other = bus.create_topic("t", small_ring(8));
    CHECK(other.code() == Errc::topic_exists);
    CHECK(bus.describe("t")->options.segment_count == 2);
    CHECK(bus.topic_names().size() == 1);
  }

  TEST_CASE("create_topic_refuses_bad_names_and_creates_nothing") {
    Bus bus;
    const std::array<std::string, 7> bad{"", "a/b", "..", "a..b", std::string("a\0b", 3), std::string(256, 'n'), "."};
    for (const std::string& name : bad) {
      CAPTURE(name);
      const Status s = bus.create_topic(name, small_ring());
      CHECK(s.code() == Errc::invalid_argument);
      CHECK_FALSE(bus.has_topic(name));
    }
    CHECK(bus.topic_names().empty());
    CHECK(bus.create_topic(std::string(255, 'n'), small_ring()).ok());
  }

  TEST_CASE("create_topic_refuses_bad_options_naming_the_topic_and_the_limit") {
    Bus bus;
    TopicOptions o = small_ring();
    o.segment_bytes = 3000;
    Status s = bus.create_topic("prices", o);
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "topic 'prices'"));
    CHECK(contains(s.message(), "segment_bytes 3000"));
    CHECK(contains(s.message(), "4096"));

    o = small_ring(3);
    s = bus.create_topic("prices", o);
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "segment_count 3"));

    o = small_ring();
    o.max_consumers = 5000;
    s = bus.create_topic("prices", o);
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(contains(s.message(), "max_consumers 5000"));
    CHECK(contains(s.message(), "4096"));
    CHECK_FALSE(bus.has_topic("prices"));
  }

  TEST_CASE("producer_for_an_unknown_topic_is_refused_naming_it") {
    Bus bus;
    auto p = bus.producer("ghost");
    CHECK(p.code() == Errc::topic_not_found);
    CHECK(contains(p.message(), "'ghost'"));
  }

  TEST_CASE("second_producer_is_refused_until_the_first_closes") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto first = bus.producer("t");
    REQUIRE(first.ok());
    REQUIRE(first->append("a").ok());

    auto second = bus.producer("t");
    CHECK(second.code() == Errc::producer_exists);
    CHECK(contains(second.message(), "'t'"));
    CHECK(contains(second.message(), "producer"));

    REQUIRE(first->close().ok());
    auto third = bus.producer("t");
    REQUIRE(third.ok());
    CHECK(third->next_offset() == 1); // the log continues where the first producer left it
    CHECK(third->append("b").value() == 1);
  }

  TEST_CASE("destroying_a_producer_releases_the_single_writer_token") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    { auto p = bus.producer("t").value(); }
    CHECK(bus.producer("t").ok());
  }

  TEST_CASE("moved_producer_keeps_the_single_writer_token") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    ringbus::Producer moved(std::move(p));
    CHECK_FALSE(p.is_open()); // NOLINT(bugprone-use-after-move): the moved-from state is the point
    CHECK(p.append("x").code() == Errc::closed);
    CHECK(moved.is_open());
    CHECK(moved.append("x").value() == 0);
    CHECK(bus.producer("t").code() == Errc::producer_exists);

    ringbus::Producer assigned;
    assigned = std::move(moved);
    CHECK(assigned.append("y").value() == 1);
    CHECK(bus.producer("t").code() == Errc::producer_exists);
  }

  TEST_CASE("move_assigning_over_an_open_producer_closes_it") {
    Bus bus;
    REQUIRE(bus.create_topic("a", small_ring()).ok());
    REQUIRE(bus.create_topic("b", small_ring()).ok());
    auto pa = bus.producer("a").value();
    auto pb = bus.producer("b").value();
    pa = std::move(pb);
    CHECK(pa.topic() == "b");
    CHECK(bus.producer("a").ok()); // a's token was released
    CHECK(bus.producer("b").code() == Errc::producer_exists);
  }

  TEST_CASE("consumer_for_an_unknown_topic_is_refused_naming_it") {
    Bus bus;
    auto c = bus.consumer("ghost");
    CHECK(c.code() == Errc::topic_not_found);
    CHECK(contains(c.message(), "'ghost'"));
  }

  // The library's heap is mimalloc's, which LeakSanitizer does not see: a
  // consumer refused for its options must not have taken anything from it.
  TEST_CASE("consumer_refused_for_its_auto_commit_options_takes_nothing_from_the_heap") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    ConsumerOptions negative;
    negative.topics = {"t"};
    negative.name = "alerts";
    negative.auto_commit_interval = std::chrono::milliseconds(-5);
    ConsumerOptions unnamed;
    unnamed.topics = {"t"};
    unnamed.auto_commit_interval = std::chrono::milliseconds(10);
    const std::uint64_t before = ringbus::detail::heap_allocation_count();
    auto a = bus.consumer(negative);
    CHECK(a.code() == Errc::invalid_argument);
    CHECK(contains(a.message(), "auto_commit_interval -5 ms is negative"));
    auto b = bus.consumer(unnamed);
    CHECK(b.code() == Errc::invalid_argument);
    CHECK(contains(b.message(), "needs a named consumer"));
    ConsumerOptions forever = negative;
    forever.auto_commit_interval = std::chrono::milliseconds::max();
    auto c = bus.consumer(forever);
    CHECK(c.code() == Errc::invalid_argument);
    CHECK(contains(c.message(), "auto_commit_interval 9223372036854775807 ms exceeds the limit"));
    CHECK(ringbus::detail::heap_allocation_count() == before);
  }

  TEST_CASE("consumer_options_subscribe_to_every_listed_topic") {
    Bus bus;
    REQUIRE(bus.create_topic("a", small_ring()).ok());
    REQUIRE(bus.create_topic("b", small_ring()).ok());
    auto pa = bus.producer("a").value();
    REQUIRE(pa.append("a0").ok());
    ConsumerOptions options;
    options.topics = {"a", "b"};
    options.start = ringbus::StartPosition::latest;
    auto c = bus.consumer(options);
    REQUIRE(c.ok());
    CHECK(c->subscription_count() == 2);
    CHECK(c->position("a").value() == 1); // latest: after the existing record
    CHECK(c->position("b").value() == 0);

    auto empty = bus.consumer(ConsumerOptions{});
    REQUIRE(empty.ok());
    CHECK(empty->subscription_count() == 0);
  }

  TEST_CASE("consumer_options_naming_an_unknown_topic_fail_whole_and_free_their_slots") {
    Bus bus;
    TopicOptions one_slot = small_ring();
    one_slot.max_consumers = 1;
    REQUIRE(bus.create_topic("a", one_slot).ok());
    ConsumerOptions options;
    options.topics = {"a", "missing"};
    auto c = bus.consumer(options);
    CHECK(c.code() == Errc::topic_not_found);
    CHECK(contains(c.message(), "'missing'"));
    CHECK(bus.consumer("a").ok()); // the failed consumer's slot on "a" was released
  }

  TEST_CASE("max_consumers_limits_open_consumers_and_a_closed_one_frees_its_slot") {
    Bus bus;
    TopicOptions o = small_ring();
    o.max_consumers = 2;
    REQUIRE(bus.create_topic("t", o).ok());
    auto c1 = bus.consumer("t");
    auto c2 = bus.consumer("t");
    REQUIRE(c1.ok());
    REQUIRE(c2.ok());
    auto c3 = bus.consumer("t");
    CHECK(c3.code() == Errc::too_many_consumers);
    CHECK(contains(c3.message(), "'t'"));
    CHECK(contains(c3.message(), "2"));
    CHECK(contains(c3.message(), "max_consumers"));

    REQUIRE(c1->close().ok());
    CHECK(bus.consumer("t").ok());
  }

  TEST_CASE("closed_bus_refuses_new_topics_producers_and_consumers_with_closed") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    bus.close();
    CHECK_FALSE(bus.is_open());
    CHECK(bus.create_topic("u", small_ring()).code() == Errc::closed);
    CHECK(bus.producer("t").code() == Errc::closed);
    CHECK(bus.consumer("t").code() == Errc::closed);
    CHECK(bus.consumer(ConsumerOptions{}).code() == Errc::closed);
    CHECK(contains(bus.producer("t").message(), "closed"));
    bus.close(); // idempotent
    CHECK_FALSE(bus.is_open());
  }

  TEST_CASE("describe_on_a_closed_bus_says_closed") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    bus.close();
    CHECK(bus.describe("t").code() == Errc::closed);
  }

  TEST_CASE("closing_the_bus_makes_every_producer_call_say_closed") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    REQUIRE(p.append("before").ok());
    bus.close();

    const std::array<Message, 2> batch{msg("", "a"), msg("", "b")};
    const std::array<std::uint64_t, 2> values{1, 2};
    CHECK(p.append("x").code() == Errc::closed);
    CHECK(p.append("k", "x").code() == Errc::closed);
    CHECK(p.append(msg("k", "x")).code() == Errc::closed);
    CHECK(p.try_append("x").code() == Errc::closed);
    CHECK(p.try_append("k", "x").code() == Errc::closed);
    CHECK(p.try_append(msg("k", "x")).code() == Errc::closed);
    CHECK(p.append_batch(batch).code() == Errc::closed);
    CHECK(p.try_append_batch(batch).code() == Errc::closed);
    CHECK(p.append_values(std::span<const std::uint64_t>(values)).code() == Errc::closed);
    CHECK(p.try_append_values(std::span<const std::uint64_t>(values)).code() == Errc::closed);
    CHECK(p.append_values(values.data(), sizeof(std::uint64_t), values.size()).code() == Errc::closed);
    CHECK(p.claim(8).code() == Errc::closed);
    CHECK(p.try_claim(8, 2).code() == Errc::closed);
    CHECK(p.claim_values(8, 4).code() == Errc::closed);
    CHECK(p.try_claim_values(8, 4).code() == Errc::closed);
    CHECK(p.claim_values_up_to(8, 4).code() == Errc::closed);
    CHECK(p.try_claim_values_up_to(8, 4).code() == Errc::closed);
    CHECK(contains(p.append("x").message(), "closed"));
    CHECK(p.next_offset() == 1);
  }

  TEST_CASE("closing_the_bus_makes_every_consumer_call_say_closed") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    REQUIRE(bus.create_topic("u", small_ring()).ok());
    auto c = bus.consumer("t").value();
    bus.close();
    CHECK(c.poll().code() == Errc::closed);
    CHECK(c.poll(10, std::chrono::milliseconds(1)).code() == Errc::closed);
    CHECK(c.seek("t", 0).code() == Errc::closed);
    CHECK(c.seek_to_beginning("t").code() == Errc::closed);
    CHECK(c.seek_to_end("t").code() == Errc::closed);
    CHECK(c.seek_to_beginning().code() == Errc::closed);
    CHECK(c.seek_to_end().code() == Errc::closed);
    CHECK(c.position("t").code() == Errc::closed);
    CHECK(c.lag("t").code() == Errc::closed);
    CHECK(c.lost("t").code() == Errc::closed);
    CHECK(c.subscribe("u").code() == Errc::closed);
    CHECK(c.unsubscribe("t").code() == Errc::closed); // last: it would change what the others see
  }

  TEST_CASE("open_claim_cannot_commit_after_the_bus_closes") {
    Bus bus;
    REQUIRE(bus.create_topic("t", small_ring()).ok());
    auto p = bus.producer("t").value();
    auto claim = p.claim(8).value();
    bus.close();
    auto committed = claim.commit();
    CHECK(committed.code() == Errc::closed);
    CHECK_FALSE(claim.is_open());
  }

  TEST_CASE("handles_outlive_the_bus_object_and_say_closed") {
    ringbus::Producer p;
    ringbus::Consumer c;
    {
      Bus bus;
      REQUIRE(bus.create_topic("t", small_ring()).ok());
      p = bus.producer("t").value();
      c = bus.consumer("t").value();
      REQUIRE(p.append("x").ok());
    } // ~Bus closes; the handles keep its memory alive
    CHECK(p.is_open());
    CHECK(p.append("y").code() == Errc::closed);
    CHECK(p.topic() == "t");
    CHECK(c.poll().code() == Errc::closed);
    CHECK(p.close().ok());
    CHECK(c.close().ok());
  }

  TEST_CASE("moved_from_bus_is_closed_and_the_moved_to_bus_works") {
    Bus a;
    REQUIRE(a.create_topic("t", small_ring()).ok());
    Bus b(std::move(a));
    CHECK_FALSE(a.is_open()); // NOLINT(bugprone-use-after-move): the moved-from state is the point
    CHECK(a.create_topic("u").code() == Errc::closed);
    CHECK(a.producer("t").code() == Errc::closed);
    CHECK(a.consumer("t").code() == Errc::closed);
    CHECK(a.describe("t").code() == Errc::closed);
    CHECK_FALSE(a.has_topic("t"));
    CHECK(a.topic_names().empty());
    a.close(); // harmless
    CHECK(b.is_open());
    CHECK(b.has_topic("t"));
    CHECK(b.producer("t").ok());
  }

  TEST_CASE("move_assigning_a_bus_closes_the_one_it_replaces") {
    Bus a;
    REQUIRE(a.create_topic("old", small_ring()).ok());
    auto p = a.producer("old").value();
    Bus b;
    REQUIRE(b.create_topic("new", small_ring()).ok());
    a = std::move(b);
    CHECK(p.append("x").code() == Errc::closed); // the replaced bus was closed
    CHECK(a.has_topic("new"));
    CHECK_FALSE(a.has_topic("old"));
    CHECK(a.producer("new").ok());
  }

  TEST_CASE("heap_backend_is_mimalloc_exactly_when_libmimalloc_can_be_loaded") {
    void* lib = ::dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) lib = ::dlopen("libmimalloc.so", RTLD_NOW | RTLD_LOCAL);
    [[maybe_unused]] const bool present = lib != nullptr && ::dlsym(lib, "mi_malloc_aligned") != nullptr;
#ifdef RINGBUS_SYSTEM_HEAP
    CHECK(ringbus::heap_backend() == "system"); // sanitizer builds
#else
    CHECK(ringbus::heap_backend() == (present ? "mimalloc" : "system"));
#endif
    if (lib != nullptr) ::dlclose(lib);
  }

} // TEST_SUITE
