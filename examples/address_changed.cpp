// Event-carried state transfer: an event carries the state its readers need,
// so they never call back the service that published it.
//
// The customer service owns customers' addresses; on every change it publishes
// AddressChanged carrying the old and the new address. The tax service, in its
// own thread, keeps its own copy (customer -> address and tax region) from
// those events alone: it is built from a consumer and nothing else, so it has
// no way to query the customer service. At the end its view must equal the
// customer service's state.

#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

#include "ringbus/ringbus.hpp"

namespace {

using namespace std::chrono_literals;

constexpr std::string_view topic = "customer-address-changed";

// Prints what failed and why; true if s (a Status or a Result) is an error.
template <class StatusOrResult>
bool failed(const StatusOrResult& s, std::string_view what) {
  if (s.ok()) return false;
  std::cerr << what << ": " << s.message() << '\n';
  return true;
}

std::mutex print_mutex; // whole lines from the two services' threads

struct Address {
  std::string street, city, region, country;
  bool operator==(const Address&) const = default;
  [[nodiscard]] bool empty() const { return country.empty(); }
};

// Where a customer pays tax, e.g. "US-CA"; "" for no address.
std::string tax_region(const Address& a) { return a.empty() ? "" : a.country + "-" + a.region; }

// --- AddressChanged on the wire: key = customer id, value = the old then the
// new address, each field as a 4-byte length and its bytes. A new customer's
// old address is empty.
void put(std::string& out, std::string_view field) {
  const auto size = static_cast<std::uint32_t>(field.size());
  out.append(reinterpret_cast<const char*>(&size), sizeof size).append(field);
}
void put(std::string& out, const Address& a) {
  for (const std::string* field : {&a.street, &a.city, &a.region, &a.country}) put(out, *field);
}
bool take(std::string_view& in, std::string& field) {
  std::uint32_t size = 0;
  if (in.size() < sizeof size) return false;
  std::memcpy(&size, in.data(), sizeof size);
  in.remove_prefix(sizeof size);
  if (in.size() < size) return false;
  field.assign(in.substr(0, size));
  in.remove_prefix(size);
  return true;
}
bool take(std::string_view& in, Address& a) {
  return take(in, a.street) && take(in, a.city) && take(in, a.region) && take(in, a.country);
}

// --- the customer service: the source of truth for addresses.
class CustomerService {
 public:
  explicit CustomerService(ringbus::Producer producer) : producer_(std::move(producer)) {}

  // Records the new address and publishes AddressChanged; false if the bus refused.
  bool change_address(std::string_view customer, const Address& address) {
    auto it = addresses_.find(customer);
    std::string event;
    put(event, it == addresses_.end() ? Address{} : it->second);
    put(event, address);
    ringbus::Result<std::uint64_t> offset = producer_.append(customer, event);
    if (failed(offset, "publish AddressChanged for " + std::string(customer))) return false;
    addresses_.insert_or_assign(std::string(customer), address);
    std::scoped_lock lock(print_mutex);
    std::cout << "customer-service  " << customer << " now lives at " << address.street << ", " << address.city
              << "  (AddressChanged at offset " << *offset << ")" << std::endl;
    return true;
  }

  [[nodiscard]] const std::map<std::string, Address, std::less<>>& addresses() const { return addresses_; }

 private:
  ringbus::Producer producer_;
  std::map<std::string, Address, std::less<>> addresses_;
};

// --- the tax service: its own view, from the events alone.
struct TaxRecord {
  Address address;
  std::string region;
};

class TaxService {
 public:
  explicit TaxService(ringbus::Consumer consumer) : consumer_(std::move(consumer)) {}

  // Applies events until stop is requested and it has caught up; false on an error.
  bool run(const std::stop_token& stop) {
    for (;;) {
      // Read before polling: whatever was published before the stop request
      // is then within this poll's or the next ones' reach.
      const bool stopping = stop.stop_requested();
      ringbus::Result<ringbus::Records> polled = consumer_.poll(256, 50ms);
      if (failed(polled, "tax-service: poll")) return false;
      for (const ringbus::Record& r : *polled) {
        if (!apply(r)) return false;
      }
      if (stopping) {
        ringbus::Result<std::uint64_t> lag = consumer_.lag(topic);
        if (failed(lag, "tax-service: lag")) return false;
        if (*lag == 0) return true;
      }
    }
  }

  [[nodiscard]] const std::map<std::string, TaxRecord>& view() const { return view_; }

 private:
  bool apply(const ringbus::Record& r) {
    std::string_view value = r.value.str();
    Address before;
    Address after;
    if (!take(value, before) || !take(value, after) || !value.empty()) {
      std::cerr << "tax-service: offset " << r.offset << " is not an AddressChanged event\n";
      return false;
    }
    // The old address says what this view should already hold; a mismatch
    // means an event was missed, and nothing here can ask for the truth.
    TaxRecord& mine = view_[std::string(r.key.str())];
    if (mine.address != before) {
      std::cerr << "tax-service: " << r.key.str() << " was at '" << before.street << "', this view has '"
                << mine.address.street << "': an event was missed\n";
      return false;
    }
    const std::string old_region = mine.region;
    mine = {after, tax_region(after)};
    std::scoped_lock lock(print_mutex);
    std::cout << "tax-service       " << r.key.str() << " tax region "
              << (old_region.empty() ? "(new customer)" : old_region) << " -> " << mine.region
              << (old_region == mine.region ? " (unchanged)" : "") << std::endl;
    return true;
  }

  ringbus::Consumer consumer_;
  std::map<std::string, TaxRecord> view_; // customer -> address and tax region
};

// The tax service's view equals the source's final state, customer by customer.
bool same_state(const std::map<std::string, Address, std::less<>>& source,
                const std::map<std::string, TaxRecord>& view) {
  bool ok = source.size() == view.size();
  if (!ok) std::cerr << "MISMATCH: " << source.size() << " customers, the tax view has " << view.size() << '\n';
  for (const auto& [customer, address] : source) {
    auto it = view.find(customer);
    const bool same = it != view.end() && it->second.address == address && it->second.region == tax_region(address);
    std::cout << "  " << customer << "  source: " << tax_region(address)
              << "  tax view: " << (it == view.end() ? "(missing)" : it->second.region) << (same ? "" : "  MISMATCH")
              << '\n';
    ok = ok && same;
  }
  return ok;
}

} // namespace

int main() {
  ringbus::Bus bus;
  if (failed(bus.create_topic(topic), "create_topic")) return 1;
  ringbus::Result<ringbus::Producer> producer = bus.producer(topic);
  if (failed(producer, "producer")) return 1;
  ringbus::Result<ringbus::Consumer> consumer = bus.consumer(topic, ringbus::StartPosition::earliest);
  if (failed(consumer, "consumer")) return 1;

  CustomerService customers(std::move(*producer));
  TaxService tax(std::move(*consumer));
  bool tax_ok = false;
  std::jthread tax_thread([&tax, &tax_ok](const std::stop_token& stop) { tax_ok = tax.run(stop); });

  const std::pair<std::string_view, Address> changes[] = {
      {"cust-1", {"1 Market St", "San Francisco", "CA", "US"}},
      {"cust-2", {"Karl-Marx-Allee 1", "Berlin", "BE", "DE"}},
      {"cust-3", {"5 Rue de Rivoli", "Paris", "IDF", "FR"}},
      {"cust-1", {"350 5th Ave", "New York", "NY", "US"}},
      {"cust-2", {"Unter den Linden 5", "Berlin", "BE", "DE"}},
      {"cust-3", {"Marienplatz 1", "Munich", "BY", "DE"}},
      {"cust-4", {"Nyhavn 1", "Copenhagen", "84", "DK"}},
      {"cust-1", {"1 Infinite Loop", "Cupertino", "CA", "US"}},
  };
  bool published = true;
  for (const auto& [customer, address] : changes) {
    published = customers.change_address(customer, address);
    if (!published) break;
    std::this_thread::sleep_for(10ms); // lets the two services' lines alternate
  }
  tax_thread.request_stop();
  tax_thread.join();

  std::cout << "final state, customer service vs tax service:\n";
  const bool ok = published && tax_ok && same_state(customers.addresses(), tax.view());
  std::cout << (ok ? "address_changed: OK\n" : "address_changed: FAILED\n");
  return ok ? 0 : 1;
}
