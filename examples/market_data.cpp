// Market data: a feed that never waits for its readers.
//
// A feed-handler thread publishes ticks (symbol, price, quantity, sequence)
// to an `overwrite` topic: the producer never waits, whoever falls a whole
// ring behind is lapped. Three consumers read the same ticks:
//
//   strategy  keeps up: it sees every tick, in order, and decides for each
//             one whether to buy; it never slows the feed.
//   risk      a pipeline stage that runs after the strategy
//             (ConsumerOptions::after = {"strategy"}): it only gets ticks the
//             strategy has passed, so it can read the strategy's decision for
//             each tick and add up the exposure the strategy is taking.
//   logger    deliberately slow (it sleeps after every few ticks, as if
//             writing to a slow disk): the feed laps it, and it reports
//             exactly which ticks it missed (Records::gaps()).
//
// At the end every claim is checked: the strategy and the risk stage got
// every tick intact and in order, the risk stage never saw a tick before the
// strategy had passed it and agrees with the strategy's exposure, and the
// logger's received + lost ticks add up to what the feed published.
//
//   market_data [--ticks N]     N ticks (default 400000)

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ringbus/ringbus.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::string_view topic = "ticks";

// One tick, carried as the record's value in native byte order (one process);
// the record's key is the symbol, as a Kafka feed would key it.
struct Tick {
  char symbol[8];          // NUL-padded
  std::uint64_t sequence;  // the feed's own numbering: 0, 1, 2, ... (= the record's offset)
  std::int64_t price_e4;   // price in 1/10000 of a currency unit
  std::int32_t quantity;   // shares
  std::uint32_t flags = 0; // unused here; keeps the struct free of padding
};
static_assert(sizeof(Tick) == 32);

constexpr std::array<std::string_view, 5> symbols = {"AAPL", "MSFT", "NVDA", "AMZN", "GOOG"};
constexpr std::array<std::int64_t, 5> base_prices_e4 = {1'890'000, 4'120'000, 4'950'000, 1'780'000, 1'410'000};

// The tick the feed publishes as number `sequence`: a pure function, so
// every reader can check what it got without a copy of the feed.
Tick tick_for(std::uint64_t sequence) {
  Tick t{};
  const std::size_t s = sequence % symbols.size();
  std::memcpy(t.symbol, symbols[s].data(), symbols[s].size());
  t.sequence = sequence;
  t.price_e4 = base_prices_e4[s] + static_cast<std::int64_t>((sequence * 7919) % 2001) - 1000;
  t.quantity = static_cast<std::int32_t>(1 + sequence % 500);
  return t;
}

std::string_view symbol_of(const Tick& t) {
  const std::string_view padded(t.symbol, sizeof t.symbol);
  return padded.substr(0, padded.find('\0'));
}

// The strategy's rule: buy when the price is in the lower tenth of its range.
bool buy_signal(const Tick& t) {
  const std::size_t s = t.sequence % symbols.size();
  return t.price_e4 < base_prices_e4[s] - 800;
}

// Prints what failed and why; true if s (a Status or a Result) is an error.
template <class StatusOrResult>
bool failed(const StatusOrResult& s, std::string_view what) {
  if (s.ok()) return false;
  std::cerr << what << ": " << s.message() << '\n';
  return true;
}

// The record as a Tick, checked against what the feed published at its
// offset; names the first difference.
bool check_tick(std::string_view who, const ringbus::Record& r, Tick& out) {
  const std::optional<Tick> tick = r.value.as<Tick>();
  const Tick want = tick_for(r.offset);
  if (!tick || std::memcmp(&*tick, &want, sizeof want) != 0 || r.key.str() != symbol_of(want)) {
    std::cerr << who << ": MISMATCH at offset " << r.offset << ": value of " << r.value.size()
              << " bytes does not hold the tick the feed published (sequence " << want.sequence << ", "
              << symbol_of(want) << ")\n";
    return false;
  }
  out = *tick;
  return true;
}

// What each reader found, for the checks at the end.
struct ReaderReport {
  std::uint64_t received = 0;          // ticks delivered
  std::uint64_t lost = 0;              // ticks lapped (Records::gaps)
  std::uint64_t gaps = 0;              // how many runs of lost ticks
  std::uint64_t lost_by_consumer = 0;  // Consumer::lost(topic) at the end
  std::int64_t exposure = 0;           // strategy, risk: shares bought on buy signals
  std::uint64_t ahead_of_strategy = 0; // risk: ticks seen before the strategy passed them
  bool ok = true;
};

// Shared between the strategy and the risk stage. The decisions are plain
// bytes: the strategy writes decision[k] before it passes tick k, and ringbus's
// gating makes that write visible to the risk stage before it gets tick k.
struct StrategyOutput {
  std::vector<std::uint8_t> decision;   // 1: buy, per tick sequence
  std::atomic<std::uint64_t> passed{0}; // ticks the strategy has finished with
};

// Polls until `count` ticks are accounted for (received or lost) or the topic
// has been quiet for 5 s; calls on_tick for each tick, in order.
template <class OnTick>
void read_all(std::string_view who, ringbus::Consumer& consumer, std::uint64_t count, std::size_t max_per_poll,
              ReaderReport& report, OnTick&& on_tick) {
  std::uint64_t next = 0; // the offset the next tick must have
  auto last_progress = Clock::now();
  while (next < count && report.ok) {
    ringbus::Result<ringbus::Records> polled = consumer.poll(max_per_poll, 100ms);
    if (failed(polled, std::string(who) + ": poll")) {
      report.ok = false;
      break;
    }
    for (const ringbus::Gap& gap : polled->gaps()) {
      if (gap.first_lost != next) {
        std::cerr << who << ": MISMATCH: a gap starts at " << gap.first_lost << ", the next tick was " << next << '\n';
        report.ok = false;
      }
      next = gap.first_lost + gap.count;
      report.lost += gap.count;
      ++report.gaps;
    }
    if (polled->empty()) {
      if (Clock::now() - last_progress > 5s) {
        std::cerr << who << ": MISMATCH: no tick for 5 s at offset " << next << " of " << count << '\n';
        report.ok = false;
      }
      continue;
    }
    last_progress = Clock::now();
    for (const ringbus::Record& r : *polled) {
      Tick tick;
      if (r.offset != next) {
        std::cerr << who << ": MISMATCH: got offset " << r.offset << ", expected " << next << '\n';
        report.ok = false;
        break;
      }
      if (!check_tick(who, r, tick)) {
        report.ok = false;
        break;
      }
      ++next;
      ++report.received;
      on_tick(tick);
    }
  }
  ringbus::Result<std::uint64_t> lost = consumer.lost(topic);
  if (!failed(lost, std::string(who) + ": lost")) report.lost_by_consumer = *lost;
}

bool parse_ticks(int argc, char** argv, std::uint64_t& ticks) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--ticks" && i + 1 < argc) {
      const std::string_view n = argv[++i];
      const auto [end, error] = std::from_chars(n.data(), n.data() + n.size(), ticks);
      if (error == std::errc() && end == n.data() + n.size() && ticks > 0) continue;
    }
    std::cerr << "usage: " << argv[0] << " [--ticks N]   (N > 0 ticks to publish; default 400000)\n";
    return false;
  }
  return true;
}

// Each check prints one line: "ok ..." or "MISMATCH ...".
bool expect(bool condition, const std::string& what) {
  std::cout << (condition ? "  ok        " : "  MISMATCH  ") << what << '\n';
  return condition;
}

} // namespace

int main(int argc, char** argv) {
  std::uint64_t ticks = 400'000;
  if (!parse_ticks(argc, argv, ticks)) return 2;

  ringbus::Bus bus;
  // 16 MiB of ring: about 200,000 ticks (an 80-byte frame each). The feed
  // laps it about twice, but it takes the feed tens of milliseconds to go
  // round once, far longer than the strategy ever falls behind.
  const ringbus::TopicOptions options{
      .segment_bytes = std::size_t{1} << 20, .segment_count = 16, .overflow = ringbus::OverflowPolicy::overwrite};
  if (failed(bus.create_topic(topic, options), "create_topic")) return 1;
  ringbus::Result<ringbus::Producer> feed = bus.producer(topic);
  if (failed(feed, "producer")) return 1;

  // Every reader subscribes before the first tick, so each one is owed all of them.
  ringbus::ConsumerOptions strategy_options;
  strategy_options.topics = {std::string(topic)};
  strategy_options.name = "strategy";
  ringbus::Result<ringbus::Consumer> strategy = bus.consumer(strategy_options);
  if (failed(strategy, "strategy consumer")) return 1;
  ringbus::ConsumerOptions risk_options;
  risk_options.topics = {std::string(topic)};
  risk_options.after = {"strategy"}; // a pipeline stage: only ticks the strategy has passed
  ringbus::Result<ringbus::Consumer> risk = bus.consumer(risk_options);
  if (failed(risk, "risk consumer")) return 1;
  ringbus::Result<ringbus::Consumer> logger = bus.consumer(topic);
  if (failed(logger, "logger consumer")) return 1;

  StrategyOutput out;
  out.decision.assign(ticks, 0);
  std::atomic<bool> feed_done{false};
  ReaderReport strategy_report, risk_report, logger_report;

  std::thread strategy_thread([&] {
    read_all("strategy", *strategy, ticks, SIZE_MAX, strategy_report, [&](const Tick& t) {
      const bool buy = buy_signal(t);
      out.decision[t.sequence] = buy ? 1 : 0;
      if (buy) strategy_report.exposure += t.quantity;
      // After the decision is written: the risk stage checks against it.
      out.passed.store(t.sequence + 1, std::memory_order_release); // pairs with the acquire in the risk stage
    });
    // A tick counts as passed once the strategy polls again after the poll
    // that handed it out: one more poll lets the risk stage have the last ones.
    (void)strategy->poll(1);
  });

  std::thread risk_thread([&] {
    read_all("risk", *risk, ticks, SIZE_MAX, risk_report, [&](const Tick& t) {
      // pairs with the strategy's release store of its progress
      if (out.passed.load(std::memory_order_acquire) <= t.sequence) ++risk_report.ahead_of_strategy;
      if (out.decision[t.sequence] != 0) risk_report.exposure += t.quantity;
    });
  });

  std::thread logger_thread([&] {
    std::uint64_t since_sleep = 0;
    read_all("logger", *logger, ticks, 16, logger_report, [&](const Tick& t) {
      (void)t;
      // A slow disk: 2 ms for every 16 ticks while the feed runs. Once the
      // feed is done it writes at full speed, so the example ends quickly.
      if (++since_sleep == 16 && !feed_done.load(std::memory_order_relaxed)) {
        since_sleep = 0;
        std::this_thread::sleep_for(2ms);
      }
    });
  });

  // The feed handler: bursts of 1000 ticks, 100 us apart, as a busy market
  // would deliver them. Under `overwrite` an append never waits for a reader.
  std::cout << "feed: publishing " << ticks << " ticks to '" << topic << "' (overwrite, 16 MiB ring)" << std::endl;
  bool ok = true;
  const auto feed_start = Clock::now();
  Clock::duration longest_append{};
  for (std::uint64_t seq = 0; seq < ticks && ok; ++seq) {
    const Tick t = tick_for(seq);
    const auto before = Clock::now();
    ringbus::Result<std::uint64_t> offset = feed->append(symbol_of(t), ringbus::bytes_of(t));
    longest_append = std::max(longest_append, Clock::now() - before);
    if (failed(offset, "feed: append")) {
      ok = false;
    } else if (*offset != seq) {
      std::cerr << "feed: MISMATCH: tick " << seq << " got offset " << *offset << '\n';
      ok = false;
    }
    if (seq % 1000 == 999) std::this_thread::sleep_for(100us);
  }
  const std::chrono::duration<double, std::milli> feed_ms = Clock::now() - feed_start;
  feed_done.store(true, std::memory_order_relaxed);
  if (!ok) bus.close(); // the readers' next poll says `closed`, so they stop
  std::cout << "feed: done in " << feed_ms.count() << " ms; slowest append "
            << std::chrono::duration<double, std::micro>(longest_append).count()
            << " us (an append never waits for a reader; a slow one is the OS taking the CPU away)" << std::endl;

  strategy_thread.join();
  risk_thread.join();
  logger_thread.join();

  std::cout << "strategy: " << strategy_report.received << " ticks, " << strategy_report.lost << " lost, exposure "
            << strategy_report.exposure << " shares\n"
            << "risk:     " << risk_report.received << " ticks, " << risk_report.lost << " lost, exposure "
            << risk_report.exposure << " shares, " << risk_report.ahead_of_strategy
            << " seen before the strategy passed them\n"
            << "logger:   " << logger_report.received << " ticks received, missed exactly " << logger_report.lost
            << " in " << logger_report.gaps << " gap(s) (Consumer::lost says " << logger_report.lost_by_consumer
            << ")\n";

  ok = expect(strategy_report.ok && risk_report.ok && logger_report.ok,
              "every tick received was intact and in offset order") &&
       ok;
  ok = expect(strategy_report.received == ticks && strategy_report.lost == 0,
              "the strategy kept up: all " + std::to_string(ticks) + " ticks, none lost") &&
       ok;
  ok = expect(risk_report.received == ticks && risk_report.lost == 0, "the risk stage got every tick") && ok;
  ok = expect(risk_report.ahead_of_strategy == 0, "the risk stage never saw a tick the strategy had not passed") && ok;
  ok = expect(risk_report.exposure == strategy_report.exposure,
              "the risk stage's exposure matches the strategy's decisions") &&
       ok;
  ok = expect(logger_report.lost > 0, "the slow logger was lapped") && ok;
  ok = expect(logger_report.received + logger_report.lost == ticks,
              "logger: received + lost = published (" + std::to_string(logger_report.received) + " + " +
                  std::to_string(logger_report.lost) + " = " + std::to_string(ticks) + ")") &&
       ok;
  ok = expect(logger_report.lost_by_consumer == logger_report.lost, "Consumer::lost agrees with Records::gaps") && ok;
  std::cout << (ok ? "market_data: OK\n" : "market_data: FAILED\n");
  return ok ? 0 : 1;
}
