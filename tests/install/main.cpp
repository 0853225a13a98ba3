// Uses an installed ringbus from outside its tree: one topic, one record
// appended and polled back. Exits non-zero, saying what differed, when the
// installed headers, library and link flags do not make a working program.
#include <ringbus/ringbus.hpp>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string_view>

namespace {

int failures = 0;

template <typename A, typename B>
void expect_equal(std::string_view what, const A& actual, const B& expected) {
  if (actual == expected) return;
  std::cerr << "install consumer: " << what << " is " << actual << ", expected " << expected << '\n';
  ++failures;
}

} // namespace

int main() {
  ringbus::Bus bus;
  if (auto created = bus.create_topic("orders"); !created.ok()) {
    std::cerr << "install consumer: create_topic failed: " << created.message() << '\n';
    return EXIT_FAILURE;
  }
  auto producer = bus.producer("orders");
  auto consumer = bus.consumer("orders");
  if (!producer.ok() || !consumer.ok()) {
    std::cerr << "install consumer: could not open a producer and a consumer\n";
    return EXIT_FAILURE;
  }

  auto appended = producer.value().append("order-1", "42 widgets");
  if (!appended.ok()) {
    std::cerr << "install consumer: append failed: " << appended.message() << '\n';
    return EXIT_FAILURE;
  }
  expect_equal("offset returned by append", appended.value(), std::uint64_t{0});

  auto polled = consumer.value().poll();
  if (!polled.ok()) {
    std::cerr << "install consumer: poll failed: " << polled.message() << '\n';
    return EXIT_FAILURE;
  }
  std::size_t seen = 0;
  for (const ringbus::Record& record : polled.value()) {
    ++seen;
    expect_equal("record topic", record.topic, std::string_view{"orders"});
    expect_equal("record offset", record.offset, std::uint64_t{0});
    expect_equal("record key", record.key.str(), std::string_view{"order-1"});
    expect_equal("record value", record.value.str(), std::string_view{"42 widgets"});
  }
  expect_equal("records polled", seen, std::size_t{1});

  if (failures != 0) return EXIT_FAILURE;
  std::cout << "install consumer: appended and polled one record (heap: " << ringbus::heap_backend() << ")\n";
  return EXIT_SUCCESS;
}
