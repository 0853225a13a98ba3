#include "ringbus/bus.hpp"

#include <string>

#include "detail/bus_core.hpp"
#include "detail/consumer_state.hpp"

namespace ringbus {

namespace {
Status bus_closed() { return Status(Errc::closed, "bus is closed"); }
Status no_topic(std::string_view name) {
  return Status(Errc::topic_not_found, "topic '" + std::string(name) + "' does not exist");
}
} // namespace

Bus::Bus() : core_(std::allocate_shared<detail::BusCore>(detail::HeapAllocator<detail::BusCore>())) {}
Bus::Bus(Bus&&) noexcept = default;
Bus& Bus::operator=(Bus&& other) noexcept {
  if (this != &other) {
    close();
    core_ = std::move(other.core_);
  }
  return *this;
}
Bus::~Bus() { close(); }

void Bus::close() noexcept {
  if (!core_) return;
  std::lock_guard lock(core_->mutex);
  // seq_cst: a Dekker pair with a blocking consumer going to sleep (it sets
  // `sleeping`, then rereads `closed`); log->close() then rings its doorbell.
  core_->closed.store(true, std::memory_order_seq_cst);
  for (auto& [name, log] : core_->registry) log->close();
}

// acquire: pairs with the store in close().
bool Bus::is_open() const noexcept { return core_ && !core_->closed.load(std::memory_order_acquire); }

Status Bus::create_topic(std::string_view name, const TopicOptions& options) {
  if (!is_open()) return bus_closed();
  if (Status st = validate_topic_name(name); !st.ok()) return st;
  if (Status st = options.validate(); !st.ok()) {
    return Status(st.code(), "topic '" + std::string(name) + "': " + std::string(st.message()));
  }
  std::lock_guard lock(core_->mutex);
  if (core_->registry.find(name) != core_->registry.end()) {
    return Status(Errc::topic_exists, "topic '" + std::string(name) + "' already exists");
  }
  Result<detail::RingMapping> mapping =
      detail::RingMapping::anonymous(options.capacity_bytes(), options.huge_pages, options.prefault);
  if (!mapping.ok()) {
    return Status(mapping.code(), "topic '" + std::string(name) + "': " + std::string(mapping.message()));
  }
  try {
    detail::BusCore::LogPtr log(detail::heap_new<detail::Log>(name, options, std::move(*mapping)));
    core_->registry.emplace(detail::HeapString(name), std::move(log));
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "topic '" + std::string(name) + "': out of memory");
  }
  return {};
}

bool Bus::has_topic(std::string_view name) const { return core_ && core_->find(name) != nullptr; }

std::vector<std::string> Bus::topic_names() const {
  std::vector<std::string> names;
  if (!core_) return names;
  std::lock_guard lock(core_->mutex);
  for (const auto& [name, log] : core_->registry) names.emplace_back(name.data(), name.size());
  return names;
}

Result<TopicInfo> Bus::describe(std::string_view name) const {
  if (!is_open()) return bus_closed();
  detail::Log* log = core_->find(name);
  if (log == nullptr) return no_topic(name);
  TopicInfo info;
  info.name = std::string(name);
  info.options = log->options();
  std::uint64_t head = 0;
  log->read_head(head, info.oldest_offset);
  info.end_offset = log->end_offset();
  info.has_producer = log->has_writer();
  return info;
}

Result<Producer> Bus::producer(std::string_view topic) {
  if (!is_open()) return bus_closed();
  detail::Log* log = core_->find(topic);
  if (log == nullptr) return no_topic(topic);
  if (!log->open_writer()) {
    return Status(Errc::producer_exists,
                  "topic '" + std::string(topic) + "' already has its one producer; close it before opening another");
  }
  return Producer(core_, log);
}

Result<Consumer> Bus::consumer(const ConsumerOptions& options) {
  if (!is_open()) return bus_closed();
  if (!options.name.empty()) {
    if (Status st = validate_consumer_name(options.name); !st.ok()) return st;
  }
  Consumer consumer;
  try {
    auto* state = detail::heap_new<detail::ConsumerState>();
    state->core = core_;
    state->override_wait = options.override_wait;
    state->wait = options.wait;
    consumer = Consumer(state);
    std::lock_guard lock(core_->mutex);
    for (const std::string& upstream : options.after) {
      if (upstream == options.name) {
        return Status(Errc::invalid_argument, "consumer '" + upstream + "' cannot run after itself");
      }
      if (core_->named.find(std::string_view(upstream)) == core_->named.end()) {
        return Status(Errc::invalid_argument,
                      "consumer '" + upstream + "' (in ConsumerOptions::after) is not an open consumer");
      }
      state->after.emplace_back(std::string_view(upstream));
    }
    if (!options.name.empty()) {
      if (!core_->named.try_emplace(detail::HeapString(std::string_view(options.name))).second) {
        return Status(Errc::invalid_argument,
                      "consumer name '" + options.name + "' is taken by an open consumer of this bus");
      }
      state->name.assign(options.name.data(), options.name.size());
    }
  } catch (const std::bad_alloc&) {
    return Status(Errc::out_of_memory, "creating a consumer ran out of memory");
  }
  for (const std::string& topic : options.topics) {
    if (Status st = consumer.subscribe(topic, options.start); !st.ok()) return st;
  }
  return consumer;
}

Result<Consumer> Bus::consumer(std::string_view topic, StartPosition start) {
  ConsumerOptions options;
  options.topics.emplace_back(topic);
  options.start = start;
  return consumer(options);
}

std::string_view heap_backend() noexcept { return detail::heap_backend(); }

} // namespace ringbus
