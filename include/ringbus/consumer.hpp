// Consumer: a reader with its own offset in each topic it subscribes to.
// Every consumer sees every record (fan-out). poll() hands out zero-copy
// views, valid until the next poll on the same consumer; a consumer is used
// by one thread at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "ringbus/options.hpp"
#include "ringbus/records.hpp"
#include "ringbus/status.hpp"

namespace ringbus {

namespace detail {
class BusCore;
struct ConsumerState;
} // namespace detail

class Consumer {
 public:
  Consumer() noexcept = default; // not open; every call says closed
  Consumer(Consumer&& other) noexcept;
  Consumer& operator=(Consumer&& other) noexcept;
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  ~Consumer();

  // Up to max_records records from the subscribed topics, fair across topics:
  // each poll starts one topic later and first gives every topic
  // max(1, max_records / topics), then what is left in the same order. Waits up
  // to timeout (by the wait strategy) when nothing is there; zero means no
  // wait, nanoseconds::max() waits for good. With one block-policy topic (no
  // auto-commit, no `after`, not a follower) the spinning part of the wait
  // (busy_spin: all of it) looks at the next publication word between
  // pauses, and every 64th pause at the clock and the bus's closed flag.
  // Records from the previous poll become invalid (so do they on
  // subscribe/unsubscribe). From an overwrite topic a poll returns at most
  // one segment's worth of records (what it copied and validated at once);
  // a segment's closing padding alone does not make it come back empty when
  // records are published past it.
  // Errc::corrupt_data instead of an empty result when a topic of a
  // read-only bus has been read up to a frame changed in its file after the
  // writer published it (the error names the topic, byte and offset): at
  // once when no wait can help (no timeout, or every subscribed topic is
  // stuck so), else when the wait ends empty. Reading that topic goes on
  // once the bytes are put right; seek cannot pass them. It also goes on
  // (within about a millisecond) once the writer drops that segment: its
  // records are gone as after a lap, and each reader gets a gap from where
  // it was to the oldest segment held.
  Result<Records> poll(std::size_t max_records = SIZE_MAX,
                       std::chrono::nanoseconds timeout = std::chrono::nanoseconds::zero()) noexcept;

  // The next record alone, decoded straight into `out`: poll(1) without a
  // Records range, the shortest path from a publication to a reader that
  // takes one record at a time (a reply, a tick). Fair across topics, and
  // waiting up to timeout, like poll. Returns:
  //   ok           `out` holds the record; its views are valid until the next
  //                poll or poll_one (which, like poll, ends the previous
  //                call's views before it looks: keep nothing across calls)
  //   would_block  no record there, and timeout is zero
  //   timed_out    none arrived within timeout
  //   closed, not_subscribed, corrupt_data: as poll says them
  // `out` is only written when the result is ok, so
  //   while (consumer.poll_one(record).ok()) handle(record);
  // drains what is there. Records lost to lapping (overwrite topics) are
  // not reported as gaps: lost(topic) counts them.
  Status poll_one(Record& out, std::chrono::nanoseconds timeout = std::chrono::nanoseconds::zero()) noexcept;

  // Starts reading a topic (cold path: may allocate).
  Status subscribe(std::string_view topic, StartPosition start = StartPosition::earliest);
  Status unsubscribe(std::string_view topic);
  [[nodiscard]] std::size_t subscription_count() const noexcept;

  // The next poll delivers `offset` onward. Errors name the held range when
  // the offset is older than the oldest record held or past the end.
  Status seek(std::string_view topic, std::uint64_t offset) noexcept;
  Status seek_to_beginning(std::string_view topic) noexcept;
  Status seek_to_end(std::string_view topic) noexcept;
  Status seek_to_beginning() noexcept; // every subscribed topic
  Status seek_to_end() noexcept;       // every subscribed topic
  // The next poll delivers the first record (in offset order) whose timestamp
  // is >= timestamp_ns, or the end when there is none. Persistent topics use
  // each segment's sparse time index (logarithmic); in-memory topics binary-
  // search the segments by their first record's timestamp, then scan one
  // segment, which finds that record when timestamps do not decrease.
  Status seek_to_time(std::string_view topic, std::int64_t timestamp_ns) noexcept;

  // Durable offsets: stores this consumer's position in every subscribed
  // persistent topic (two checksummed slots + fdatasync: after a crash the
  // stored offsets are the old or the new ones). Needs a named consumer on a
  // bus opened on a directory (not read-only). Cold path.
  Status commit();
  // The offset last committed for topic by a consumer of this name; not_found
  // ("topic_not_found") when none was.
  Result<std::uint64_t> committed(std::string_view topic) const;

  // Offset of the next record this consumer will get from topic.
  Result<std::uint64_t> position(std::string_view topic) const noexcept;
  // Records published to topic that this consumer has not been given yet.
  Result<std::uint64_t> lag(std::string_view topic) const noexcept;
  // Records of topic lost to lapping since subscribe (overwrite topics).
  Result<std::uint64_t> lost(std::string_view topic) const noexcept;

  // Releases the reader slots: the producer is no longer held back by this consumer.
  Status close() noexcept;
  [[nodiscard]] bool is_open() const noexcept { return state_ != nullptr; }

 private:
  friend class Bus;
  explicit Consumer(detail::ConsumerState* state) noexcept : state_(state) {}
  // poll's every case but the short way's (one block-policy subscription:
  // ConsumerState::lone) with data or no wait, and the rest of the short
  // way's wait after its spin (spun: the pauses it made).
  static Result<Records> poll_general(detail::ConsumerState* s, std::size_t max_records,
                                      std::chrono::nanoseconds timeout, std::uint32_t spun = 0) noexcept;
  static Status poll_one_general(detail::ConsumerState* s, Record& out, std::chrono::nanoseconds timeout,
                                 std::uint32_t spun = 0) noexcept;
  // The one-subscription short ways' wait: a tight spin, then the general wait.
  static Result<Records> poll_spin(detail::ConsumerState* s, std::size_t max_records,
                                   std::chrono::nanoseconds timeout) noexcept;
  static Status poll_one_spin(detail::ConsumerState* s, Record& out, std::chrono::nanoseconds timeout) noexcept;
  detail::ConsumerState* state_ = nullptr;
};

} // namespace ringbus
