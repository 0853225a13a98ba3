// A topic's live counters: sampled from its log (sample_stats), and
// published to other processes through its stats file (layout in
// ringbus/detail/stats_layout.hpp). Cold code only: the flusher thread,
// Bus::stats, Bus::close and `ringbus stat`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "platform/files.hpp"
#include "ringbus/stats.hpp"
#include "ringbus/status.hpp"

namespace ringbus::detail {

class Log;

// A snapshot of log's counters now (relaxed loads: see LogCounters). Any thread.
TopicStats sample_stats(const Log& log) noexcept;

// The writing side: one per persistent topic of a writable bus.
class StatsFileWriter {
 public:
  // Makes <topic_dir>/stats for topic: builds it as stats.tmp (0600, O_EXCL,
  // O_NOFOLLOW; a stale one is removed first), writes its identity (this
  // process, started_ns) and first snapshot, then renames it over `stats`, so
  // a reader finds either the previous writer's whole file or this one.
  static Result<StatsFileWriter> create(const platform::FileDescriptor& topic_dir, std::string_view topic,
                                        std::int64_t started_ns, const TopicStats& first);

  StatsFileWriter() noexcept = default;
  StatsFileWriter(StatsFileWriter&&) noexcept = default;
  StatsFileWriter& operator=(StatsFileWriter&&) noexcept = default;

  // Rewrites the snapshot (the seqlock's writer side). One thread at a time.
  // closed: these are the final values (the bus is closing).
  void publish(const TopicStats& stats, bool closed) noexcept;

 private:
  platform::FileMapping mapping_;
  std::uint64_t sequence_ = 0; // even between updates
};

// What a stats file says.
struct StatsFileContents {
  long writer_pid = 0;
  std::int64_t started_ns = 0;      // CLOCK_REALTIME when the writer opened the topic
  std::int64_t updated_real_ns = 0; // CLOCK_REALTIME of the snapshot
  bool closed = false;              // the writer closed its bus after this snapshot
  TopicStats stats;                 // sampled_at: CLOCK_MONOTONIC of the snapshot
};

// Reads <topic_dir>/stats of topic through a read-only mapping, taking a
// whole snapshot (seqlock, bounded retries). nullopt when there is no such
// file; corrupt_data naming the file and the field when it is foreign,
// another format version, another topic's, damaged, or torn (its writer died
// inside an update, or kept changing it for the whole of the retries).
Result<std::optional<StatsFileContents>> read_stats_file(const platform::FileDescriptor& topic_dir,
                                                         std::string_view topic);

} // namespace ringbus::detail
