// Status, Result<T> and Error: how every ringbus call reports failure.
#include <memory>
#include <string>
#include <utility>

#include "ringbus/status.hpp"
#include "test_support.hpp"

using ringbus::Errc;
using ringbus::Error;
using ringbus::Result;
using ringbus::Status;

namespace {

// Counts live instances, to prove Result constructs and destroys its value exactly once.
struct Counted {
  static inline int live = 0;
  static inline int constructed = 0;
  int value = 0;
  explicit Counted(int v) : value(v) {
    ++live;
    ++constructed;
  }
  Counted(const Counted& o) : value(o.value) {
    ++live;
    ++constructed;
  }
  Counted(Counted&& o) noexcept : value(o.value) {
    ++live;
    ++constructed;
  }
  Counted& operator=(const Counted&) = default;
  Counted& operator=(Counted&&) noexcept = default;
  ~Counted() { --live; }
};

} // namespace

TEST_SUITE("status") {
  TEST_CASE("every_error_code_has_its_name") {
    CHECK(ringbus::to_string(Errc::ok) == "ok");
    CHECK(ringbus::to_string(Errc::would_block) == "would_block");
    CHECK(ringbus::to_string(Errc::timed_out) == "timed_out");
    CHECK(ringbus::to_string(Errc::invalid_argument) == "invalid_argument");
    CHECK(ringbus::to_string(Errc::record_too_large) == "record_too_large");
    CHECK(ringbus::to_string(Errc::topic_not_found) == "topic_not_found");
    CHECK(ringbus::to_string(Errc::topic_exists) == "topic_exists");
    CHECK(ringbus::to_string(Errc::producer_exists) == "producer_exists");
    CHECK(ringbus::to_string(Errc::too_many_consumers) == "too_many_consumers");
    CHECK(ringbus::to_string(Errc::not_subscribed) == "not_subscribed");
    CHECK(ringbus::to_string(Errc::closed) == "closed");
    CHECK(ringbus::to_string(Errc::no_claim) == "no_claim");
    CHECK(ringbus::to_string(Errc::out_of_memory) == "out_of_memory");
    CHECK(ringbus::to_string(Errc::system_error) == "system_error");
    CHECK(ringbus::to_string(Errc::no_space) == "no_space");
    CHECK(ringbus::to_string(Errc::corrupt_data) == "corrupt_data");
    CHECK(ringbus::to_string(Errc::too_many_senders) == "too_many_senders");
    CHECK(ringbus::to_string(static_cast<Errc>(200)) == "unknown");
  }

  TEST_CASE("default_status_is_ok") {
    const Status s;
    CHECK(s.ok());
    CHECK(static_cast<bool>(s));
    CHECK(s.code() == Errc::ok);
    CHECK(s.message() == "ok");
    CHECK_NOTHROW(s.check());
  }

  TEST_CASE("status_without_a_message_reports_its_code_name") {
    const Status s(Errc::would_block);
    CHECK_FALSE(s.ok());
    CHECK_FALSE(static_cast<bool>(s));
    CHECK(s.code() == Errc::would_block);
    CHECK(s.message() == "would_block");
  }

  TEST_CASE("status_keeps_its_message_through_copies_and_moves") {
    Status original(Errc::invalid_argument, "segment_bytes 5000 must be a power of two");
    Status copy(original);
    CHECK(copy.code() == Errc::invalid_argument);
    CHECK(copy.message() == original.message());
    CHECK(copy.message().data() != original.message().data()); // a deep copy, not shared

    Status assigned(Errc::closed);
    assigned = original;
    CHECK(assigned.code() == Errc::invalid_argument);
    CHECK(assigned.message() == "segment_bytes 5000 must be a power of two");

    Status& self = assigned;
    assigned = self; // self-assignment keeps the message
    CHECK(assigned.message() == "segment_bytes 5000 must be a power of two");

    Status moved(std::move(original));
    CHECK(moved.code() == Errc::invalid_argument);
    CHECK(moved.message() == "segment_bytes 5000 must be a power of two");

    Status without(Errc::timed_out);
    Status copy_of_without(without);
    CHECK(copy_of_without.message() == "timed_out");
  }

  TEST_CASE("check_throws_an_error_carrying_code_and_message") {
    const Status s(Errc::topic_exists, "topic 'x' already exists");
    try {
      s.check();
      FAIL("check() did not throw");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::topic_exists);
      CHECK(std::string(e.what()) == "topic 'x' already exists");
    }
    try {
      Status(Errc::no_claim).check();
      FAIL("check() did not throw");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::no_claim);
      CHECK(std::string(e.what()) == "no_claim");
    }
  }

  TEST_CASE("result_holds_a_value") {
    Result<int> r(42);
    CHECK(r.ok());
    CHECK(static_cast<bool>(r));
    CHECK(r.code() == Errc::ok);
    CHECK(r.status().ok());
    CHECK(r.value() == 42);
    CHECK(*r == 42);
    *r = 7;
    CHECK(r.value() == 7);
    const Result<int>& cr = r;
    CHECK(cr.value() == 7);
    CHECK(*cr == 7);

    Result<std::string> s(std::string("hello"));
    CHECK(s->size() == 5);
    const Result<std::string>& cs = s;
    CHECK(cs->size() == 5);
    std::string taken = std::move(s).value();
    CHECK(taken == "hello");
  }

  TEST_CASE("result_holds_an_error_and_value_throws_it") {
    Result<int> from_code(Errc::closed);
    CHECK_FALSE(from_code.ok());
    CHECK_FALSE(static_cast<bool>(from_code));
    CHECK(from_code.code() == Errc::closed);
    CHECK(from_code.message() == "closed");

    Result<int> from_status(Status(Errc::record_too_large, "record of 5000 bytes does not fit 4096"));
    CHECK(from_status.code() == Errc::record_too_large);
    CHECK(from_status.message() == "record of 5000 bytes does not fit 4096");
    CHECK(from_status.status().code() == Errc::record_too_large);
    try {
      (void)from_status.value();
      FAIL("value() did not throw");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::record_too_large);
      CHECK(ringbus::test::contains(e.what(), "5000"));
    }
    const Result<int>& cr = from_code;
    CHECK_THROWS_AS((void)cr.value(), Error);
    CHECK_THROWS_AS((void)std::move(from_code).value(), Error);
  }

  TEST_CASE("result_built_from_an_ok_status_has_no_value_and_value_throws") {
    Result<int> r(Status{});
    CHECK_FALSE(r.ok());
    CHECK_THROWS_AS((void)r.value(), Error);
  }

  TEST_CASE("result_moves_a_move_only_value") {
    Result<std::unique_ptr<int>> a(std::make_unique<int>(5));
    Result<std::unique_ptr<int>> b(std::move(a));
    REQUIRE(b.ok());
    CHECK(**b == 5);

    Result<std::unique_ptr<int>> c(Errc::closed);
    c = std::move(b);
    REQUIRE(c.ok());
    CHECK(**c == 5);

    Result<std::unique_ptr<int>> d(std::make_unique<int>(9));
    d = Result<std::unique_ptr<int>>(Errc::timed_out); // an error replaces a value
    CHECK_FALSE(d.ok());
    CHECK(d.code() == Errc::timed_out);
  }

  TEST_CASE("result_constructs_and_destroys_its_value_exactly_once_per_copy") {
    Counted::live = 0;
    {
      Result<Counted> a(Counted(1));
      CHECK(Counted::live == 1);
      Result<Counted> b(std::move(a));
      CHECK(Counted::live == 2); // the moved-from value lives until its Result dies
      Result<Counted> c(Errc::closed);
      CHECK(Counted::live == 2);
      c = std::move(b);
      CHECK(Counted::live == 3);
      c = Result<Counted>(Errc::would_block);
      CHECK(Counted::live == 2);
      auto& self = a;
      a = std::move(self); // self-move keeps the value
      CHECK(a.ok());
      CHECK(a->value == 1);
    }
    CHECK(Counted::live == 0);
  }

} // TEST_SUITE
