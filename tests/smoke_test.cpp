#include <doctest/doctest.h>

#include "ringbus/ringbus.hpp"

TEST_CASE("appended records come back in order with their offsets") {
  ringbus::Bus bus;
  REQUIRE(bus.create_topic("t").ok());
  auto producer = bus.producer("t").value();
  auto consumer = bus.consumer("t").value();
  for (int i = 0; i < 10; ++i) CHECK(producer.append("k", std::to_string(i)).value() == static_cast<std::uint64_t>(i));
  auto records = consumer.poll().value();
  CHECK(records.size() == 10);
  int i = 0;
  for (const ringbus::Record& r : records) {
    CHECK(r.offset == static_cast<std::uint64_t>(i));
    CHECK(r.key.str() == "k");
    CHECK(r.value.str() == std::to_string(i));
    ++i;
  }
  CHECK(i == 10);
}
