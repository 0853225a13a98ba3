// Fan-out, the classic Kafka demo: one producer, three consumers, and every
// consumer sees every record, in the same order.
//
// The producer appends records whose key is an incrementing number and whose
// value is a random UUID. Three consumer threads print the first records as
// they arrive (with how long after the append they saw them) and keep a copy
// of every record; at the end each copy is checked against what was sent.
//
//   fanout_demo [--count N]     N records (default 10000); the first 20 are printed

#include <charconv>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ringbus/ringbus.hpp"

namespace {

using namespace std::chrono_literals;

constexpr std::string_view topic = "events";
constexpr int consumer_count = 3;
constexpr std::uint64_t printed_records = 20;

// Prints what failed and why; true if s (a Status or a Result) is an error.
template <class StatusOrResult>
bool failed(const StatusOrResult& s, std::string_view what) {
  if (s.ok()) return false;
  std::cerr << what << ": " << s.message() << '\n';
  return true;
}

// A random (version 4) UUID, e.g. "3f2c8a1e-5b7d-4c0e-9a61-0d4f7e2b9c35".
std::string random_uuid(std::mt19937_64& rng) {
  static constexpr char hex[] = "0123456789abcdef";
  std::uniform_int_distribution<int> nibble(0, 15);
  std::string uuid = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx";
  for (char& c : uuid) {
    if (c == 'x') c = hex[nibble(rng)];
    if (c == 'y') c = hex[8 + nibble(rng) % 4]; // the variant: binary 10xx
  }
  return uuid;
}

// Record timestamps are CLOCK_REALTIME nanoseconds, as is system_clock on Linux.
std::int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What a consumer keeps: its own copy, since polled records are views that die
// at the next poll.
struct Received {
  std::uint64_t offset;
  std::string key;
  std::string value;
};

std::mutex print_mutex; // whole lines from the three threads

// Reads until it has `expected` records; gives up if the topic is quiet for 5 s.
std::vector<Received> consume(ringbus::Consumer consumer, int id, std::uint64_t expected) {
  std::vector<Received> kept;
  kept.reserve(expected);
  auto last_progress = std::chrono::steady_clock::now();
  while (kept.size() < expected) {
    ringbus::Result<ringbus::Records> polled = consumer.poll(1024, 100ms);
    if (failed(polled, "consumer-" + std::to_string(id) + ": poll")) break;
    if (polled->empty()) {
      if (std::chrono::steady_clock::now() - last_progress < 5s) continue;
      std::cerr << "consumer-" << id << ": no record for 5 s after " << kept.size() << '\n';
      break;
    }
    last_progress = std::chrono::steady_clock::now();
    const std::int64_t now_ns = wall_clock_ns();
    for (const ringbus::Record& r : *polled) {
      if (r.offset < printed_records) {
        std::scoped_lock lock(print_mutex);
        std::cout << "consumer-" << id << "  offset=" << r.offset << " key=" << r.key.str()
                  << " value=" << r.value.str() << "  (+" << (now_ns - r.timestamp_ns) / 1000 << " us after append)"
                  << std::endl;
      }
      kept.push_back({r.offset, std::string(r.key.str()), std::string(r.value.str())});
    }
  }
  return kept;
}

// Every record, in order, identical to what was sent; names the first difference.
bool verify(int id, const std::vector<Received>& got, const std::vector<std::string>& sent) {
  for (std::size_t i = 0; i < got.size() && i < sent.size(); ++i) {
    const Received& r = got[i];
    if (r.offset != i || r.key != std::to_string(i) || r.value != sent[i]) {
      std::cerr << "consumer-" << id << ": MISMATCH at record " << i << ": sent offset=" << i << " key=" << i
                << " value=" << sent[i] << ", got offset=" << r.offset << " key=" << r.key << " value=" << r.value
                << '\n';
      return false;
    }
  }
  if (got.size() != sent.size()) {
    std::cerr << "consumer-" << id << ": MISMATCH: got " << got.size() << " records, " << sent.size() << " were sent\n";
    return false;
  }
  std::cout << "consumer-" << id << ": OK, all " << got.size() << " records in order, identical to what was sent\n";
  return true;
}

bool parse_count(int argc, char** argv, std::uint64_t& count) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--count" && i + 1 < argc) {
      const std::string_view n = argv[++i];
      const auto [end, error] = std::from_chars(n.data(), n.data() + n.size(), count);
      if (error == std::errc() && end == n.data() + n.size() && count > 0) continue;
    }
    std::cerr << "usage: " << argv[0] << " [--count N]   (N > 0 records to send; default 10000)\n";
    return false;
  }
  return true;
}

} // namespace

int main(int argc, char** argv) {
  std::uint64_t count = 10'000;
  if (!parse_count(argc, argv, count)) return 2;

  ringbus::Bus bus;
  ringbus::TopicOptions options;
  // Four threads may share fewer cores: consumers sleep in the kernel until the
  // producer wakes them, rather than spin against each other. A wake-up is a
  // system call, so this trades some throughput for latency; the default
  // (backoff) is faster in bulk but may sleep up to 1 ms between records.
  options.wait = ringbus::WaitStrategy::blocking;
  if (failed(bus.create_topic(topic, options), "create_topic")) return 1;
  ringbus::Result<ringbus::Producer> producer = bus.producer(topic);
  if (failed(producer, "producer")) return 1;

  // The consumers register before the first append, so each one gets the whole
  // stream: under the default block policy the producer waits for the slowest
  // consumer rather than overwrite what it has not read yet.
  std::vector<ringbus::Consumer> consumers;
  for (int id = 1; id <= consumer_count; ++id) {
    ringbus::Result<ringbus::Consumer> consumer = bus.consumer(topic, ringbus::StartPosition::earliest);
    if (failed(consumer, "consumer")) return 1;
    consumers.push_back(std::move(*consumer));
  }
  std::vector<std::vector<Received>> received(consumer_count);
  std::vector<std::thread> threads;
  for (int id = 1; id <= consumer_count; ++id) {
    threads.emplace_back([&, id] { received[id - 1] = consume(std::move(consumers[id - 1]), id, count); });
  }

  std::cout << "producing " << count << " records to '" << topic << "' for " << consumer_count
            << " consumers (printing the first " << printed_records << ")" << std::endl;
  std::mt19937_64 rng(std::random_device{}());
  std::vector<std::string> sent;
  sent.reserve(count);
  bool ok = true;
  const auto started = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < count && ok; ++i) {
    sent.push_back(random_uuid(rng));
    ringbus::Result<std::uint64_t> offset = producer->append(std::to_string(i), sent.back());
    if (failed(offset, "append")) {
      ok = false;
      bus.close(); // the consumers' next poll says `closed`, so they stop
    } else if (*offset != i) {
      std::cerr << "append: record " << i << " got offset " << *offset << '\n';
      ok = false;
    }
    // Pace the printed records so each shows up as a group of three lines.
    if (i < printed_records) std::this_thread::sleep_for(20ms);
  }
  for (std::thread& t : threads) t.join();
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;

  for (int id = 1; id <= consumer_count; ++id) ok = verify(id, received[id - 1], sent) && ok;
  std::cout << count << " records x " << consumer_count << " consumers in " << elapsed.count() << " s\n";
  std::cout << (ok ? "fanout_demo: OK\n" : "fanout_demo: FAILED\n");
  return ok ? 0 : 1;
}
