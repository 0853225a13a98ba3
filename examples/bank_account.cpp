// Event sourcing: the log of events is the source of truth and a balance is
// only a view of it, which can be thrown away and rebuilt by replaying the log.
//
// Commands are checked against the domain rule (no overdraft) when they are
// given; an accepted command becomes an event on the topic: key = account id,
// value = the amount, a "type" header = Deposited or Withdrawn. A refused
// command leaves no event behind. The view (account -> balance) is built by a
// consumer, thrown away, and rebuilt from offset 0 to the same balances.

#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "ringbus/ringbus.hpp"

namespace {

using namespace std::chrono_literals;

constexpr std::string_view topic = "account-events";
constexpr std::string_view deposited = "Deposited";
constexpr std::string_view withdrawn = "Withdrawn";

// Prints what failed and why; true if s (a Status or a Result) is an error.
template <class StatusOrResult>
bool failed(const StatusOrResult& s, std::string_view what) {
  if (s.ok()) return false;
  std::cerr << what << ": " << s.message() << '\n';
  return true;
}

using Balances = std::map<std::string, std::int64_t, std::less<>>;

// How an event changes a balance: the one function both sides share.
std::int64_t evolve(std::int64_t balance, std::string_view type, std::int64_t amount) {
  return type == deposited ? balance + amount : balance - amount;
}

// The command side: decides, then records what it decided as an event.
class Bank {
 public:
  explicit Bank(ringbus::Producer producer) : producer_(std::move(producer)) {}

  // False only if the bus refused the event (said on stderr).
  bool deposit(std::string_view account, std::int64_t amount) { return record(account, deposited, amount); }

  // The domain rule, checked at command time: no overdraft. A refused
  // withdrawal is not an event, so a replay never sees it.
  bool withdraw(std::string_view account, std::int64_t amount) {
    const std::int64_t balance = balance_of(account);
    if (amount > balance) {
      std::cout << "  command   " << account << " withdraw " << amount << ": REJECTED, insufficient funds (balance "
                << balance << ")\n";
      ++rejected_;
      return true;
    }
    return record(account, withdrawn, amount);
  }

  [[nodiscard]] int rejected() const { return rejected_; }

 private:
  bool record(std::string_view account, std::string_view type, std::int64_t amount) {
    const ringbus::Header headers[] = {{"type", type}};
    // In one process the amount can travel in native byte order.
    const ringbus::Message event{.key = account, .value = ringbus::bytes_of(amount), .headers = headers};
    ringbus::Result<std::uint64_t> offset = producer_.append(event);
    if (failed(offset, "append " + std::string(type))) return false;
    auto [it, added] = balances_.try_emplace(std::string(account), 0);
    it->second = evolve(it->second, type, amount);
    std::cout << "  command   " << account << ' ' << type << '(' << amount << ") -> offset " << *offset << '\n';
    return true;
  }

  [[nodiscard]] std::int64_t balance_of(std::string_view account) const {
    auto it = balances_.find(account);
    return it == balances_.end() ? 0 : it->second;
  }

  ringbus::Producer producer_;
  Balances balances_; // what the command side's decisions need, from its own events
  int rejected_ = 0;
};

// The read side: applies one event to the view; false (said on stderr) if the
// record is not an event it understands.
bool apply(const ringbus::Record& r, Balances& view) {
  const std::optional<ringbus::ByteView> type = r.headers.find("type");
  const std::optional<std::int64_t> amount = r.value.as<std::int64_t>();
  if (!type || (type->str() != deposited && type->str() != withdrawn) || !amount) {
    std::cerr << "offset " << r.offset << ": not a Deposited or Withdrawn event\n";
    return false;
  }
  // The key is a view into the ring: the map keeps its own copy.
  auto [it, added] = view.try_emplace(std::string(r.key.str()), 0);
  it->second = evolve(it->second, type->str(), *amount);
  std::cout << "  view      offset=" << r.offset << ' ' << r.key.str() << ' ' << type->str() << '(' << *amount
            << ") -> balance " << it->second << '\n';
  return true;
}

// Applies records until the consumer has seen everything published so far.
bool catch_up(ringbus::Consumer& consumer, Balances& view) {
  for (;;) {
    ringbus::Result<std::uint64_t> lag = consumer.lag(topic);
    if (failed(lag, "lag")) return false;
    if (*lag == 0) return true;
    ringbus::Result<ringbus::Records> polled = consumer.poll(SIZE_MAX, 1s);
    if (failed(polled, "poll")) return false;
    if (polled->empty()) {
      std::cerr << "poll: " << *lag << " records published but none arrived within 1 s\n";
      return false;
    }
    for (const ringbus::Record& r : *polled) {
      if (!apply(r, view)) return false;
    }
  }
}

bool expect_balance(const Balances& view, std::string_view account, std::int64_t expected, std::string_view when) {
  auto it = view.find(account);
  const std::int64_t balance = it == view.end() ? 0 : it->second;
  std::cout << when << ": " << account << " = " << balance << '\n';
  if (balance == expected) return true;
  std::cerr << "MISMATCH " << when << ": " << account << " has " << balance << ", expected " << expected << '\n';
  return false;
}

} // namespace

int main() {
  ringbus::Bus bus;
  if (failed(bus.create_topic(topic), "create_topic")) return 1;
  ringbus::Result<ringbus::Producer> producer = bus.producer(topic);
  if (failed(producer, "producer")) return 1;
  ringbus::Result<ringbus::Consumer> consumer = bus.consumer(topic, ringbus::StartPosition::earliest);
  if (failed(consumer, "consumer")) return 1;

  std::cout << "commands:\n";
  Bank bank(std::move(*producer));
  const bool recorded = bank.deposit("alice", 500) && bank.deposit("alice", 200) && bank.deposit("bob", 100) &&
                        bank.withdraw("alice", 300) && bank.withdraw("alice", 1000); // the last is refused
  if (!recorded) return 1;

  std::cout << "building the view:\n";
  Balances view;
  if (!catch_up(*consumer, view)) return 1;
  bool ok = expect_balance(view, "alice", 400, "view");
  ok = expect_balance(view, "bob", 100, "view") && ok;

  std::cout << "throwing the view away and replaying from offset 0:\n";
  view.clear();
  if (failed(consumer->seek(topic, 0), "seek")) return 1;
  if (!catch_up(*consumer, view)) return 1;
  ok = expect_balance(view, "alice", 400, "rebuilt view") && ok;
  ok = expect_balance(view, "bob", 100, "rebuilt view") && ok;

  // Four events, not five: the refused withdrawal left nothing in the log.
  ringbus::Result<ringbus::TopicInfo> info = bus.describe(topic);
  if (failed(info, "describe")) return 1;
  std::cout << "events in the log: " << info->end_offset << ", commands rejected: " << bank.rejected() << '\n';
  if (info->end_offset != 4 || bank.rejected() != 1) {
    std::cerr << "MISMATCH: expected 4 events and 1 rejected command\n";
    ok = false;
  }
  std::cout << (ok ? "bank_account: OK\n" : "bank_account: FAILED\n");
  return ok ? 0 : 1;
}
