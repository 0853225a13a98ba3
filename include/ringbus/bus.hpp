// Bus: the registry of topics and the factory of producers and consumers.
// It owns no thread. Handles keep the bus's memory alive: closing the bus
// makes every handle's next call fail with Errc::closed, and the memory goes
// with the last handle.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/consumer.hpp"
#include "ringbus/group.hpp"
#include "ringbus/options.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/shared_producer.hpp"
#include "ringbus/stats.hpp"
#include "ringbus/status.hpp"

namespace ringbus {

namespace detail {
class BusCore;
}

// What a topic looks like from outside (a snapshot).
struct TopicInfo {
  std::string name;
  TopicOptions options;
  std::uint64_t oldest_offset = 0; // first record still held
  std::uint64_t end_offset = 0;    // offset the next record will get
  bool has_producer = false;
  bool persistent = false;       // segment files under the bus's directory
  std::size_t segment_files = 0; // persistent: segment files the topic holds now
  std::string failure;           // persistent: why the topic stopped taking appends ("" when healthy)
  // Persistent: what this bus's open repaired ("" when it found a clean
  // log): a tail cut at a torn frame, and after a reboot the damage found
  // below the tail, the segments dropped and the files set aside
  // (<segment>.damaged, never deleted). README "Recovery".
  std::string recovery;
};

class Bus {
 public:
  // An in-memory bus.
  Bus();
  // A bus on a directory (created 0700 if missing): topics are persistent by
  // default (TopicOptions::storage), and the persistent topics already there
  // are recovered now: each tail segment is checked frame by frame and cut at
  // the first torn or invalid frame (README "Recovery"). Errors name the
  // file and the field: a foreign or damaged segment, another format version.
  static Result<Bus> open(std::string_view directory, const BusOptions& options = {});
  Bus(Bus&&) noexcept;
  Bus& operator=(Bus&&) noexcept;
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;
  ~Bus(); // closes the bus

  // Creates a topic; errors name the option and its limit, or say the name is taken.
  Status create_topic(std::string_view name, const TopicOptions& options = {});
  [[nodiscard]] bool has_topic(std::string_view name) const;
  [[nodiscard]] std::vector<std::string> topic_names() const;
  [[nodiscard]] Result<TopicInfo> describe(std::string_view name) const;
  // The topic's live counters now (stats.hpp): what its producer appended and
  // waited since this bus created or opened it, and what lapping cost its
  // consumers. Cold (a few loads and a scan of the reader slots), counted on
  // slow paths only: the hot path pays nothing for it. Persistent topics of a
  // writable bus also publish them to other processes (README "Statistics").
  [[nodiscard]] Result<TopicStats> stats(std::string_view topic) const;

  // The topic's one producer; Errc::producer_exists until the open one is closed.
  Result<Producer> producer(std::string_view topic);
  // The topic's one producer behind a multi-thread ingest queue (see
  // shared_producer.hpp): takes the topic's producer, so producer() then gets
  // Errc::producer_exists until the SharedProducer is closed, and vice versa.
  Result<SharedProducer> shared_producer(std::string_view topic, const SharedProducerOptions& options = {});
  Result<Consumer> consumer(const ConsumerOptions& options);
  Result<Consumer> consumer(std::string_view topic, StartPosition start = StartPosition::earliest);
  // Joins consumer group `group` in `topic` (creating the group at
  // options.start if it is new): competing consumers, see group.hpp. Each
  // member takes one of the topic's reader slots; block topics only.
  Result<GroupMember> group_member(std::string_view group, std::string_view topic, const GroupOptions& options = {});

  // Persistent topics: writes what was appended so far to disk now
  // (fdatasync of the segment files, fsync of the directory), whatever the
  // durability. A failed
  // flush puts the topic in a failed state: appends then return that error.
  // A no-op for in-memory topics.
  Status flush(std::string_view topic);
  Status flush(); // every topic

  // The directory of a bus made by open(); empty for an in-memory bus.
  [[nodiscard]] std::string directory() const;
  [[nodiscard]] bool read_only() const noexcept;

  // Flushes topics with Durability::interval or sync (a final flush), stops the
  // flusher, then refuses further calls on every handle with Errc::closed.
  void close() noexcept;
  [[nodiscard]] bool is_open() const noexcept;

 private:
  std::shared_ptr<detail::BusCore> core_;
};

// Which heap the library's own allocations use: "mimalloc" or "system".
std::string_view heap_backend() noexcept;

} // namespace ringbus
