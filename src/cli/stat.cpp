// ringbus stat DIR [TOPIC]: named consumers and consumer groups, their committed offsets and lag;
// then each topic's live counters, from the stats file its writing process
// keeps (src/detail/stats_file.hpp): with the append rate between two samples
// when that process is alive (it holds DIR/LOCK), else its last values and their age.
#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <ostream>

#include "cli/cli.hpp"
#include "detail/stats_file.hpp"
#include "platform/files.hpp"
#include "platform/platform.hpp"
#include "ringbus/detail/log.hpp"
#include "ringbus/detail/offset_store.hpp"

namespace ringbus::cli {

namespace {

constexpr std::string_view offsets_suffix = ".offsets";

struct CommittedOffsets {
  std::string consumer;
  std::uint64_t sequence = 0;
  std::vector<std::pair<std::string, std::uint64_t>> offsets; // topic -> committed offset
  std::string error;
};

// Reads a store the way OffsetStore::open does (the valid slot with the
// higher sequence), but read-only: OffsetStore::open would create a missing
// file and sync the directory.
CommittedOffsets read_offsets(const platform::FileDescriptor& dir, const std::string& file_name) {
  CommittedOffsets c;
  c.consumer = file_name.substr(0, file_name.size() - offsets_suffix.size());
  Result<platform::FileDescriptor> f = platform::open_file_at(dir, file_name, platform::Access::read_only);
  if (!f.ok()) {
    c.error = std::string(f.message());
    return c;
  }
  std::vector<std::byte> buffer(detail::offset_slot_bytes);
  std::string reasons;
  bool found = false;
  for (unsigned slot = 0; slot < 2; ++slot) {
    Result<std::size_t> got = platform::read_at(*f, std::uint64_t{slot} * detail::offset_slot_bytes, buffer);
    if (!got.ok()) {
      c.error = std::string(got.message());
      return c;
    }
    detail::OffsetStore::Entries entries;
    std::uint64_t sequence = 0;
    Status st = detail::decode_offset_slot(std::span<const std::byte>(buffer.data(), *got), entries, sequence);
    if (!st.ok()) {
      reasons += " slot " + std::to_string(slot) + ": " + std::string(st.message()) + ";";
      continue;
    }
    if (!found || sequence > c.sequence) {
      found = true;
      c.sequence = sequence;
      c.offsets.clear();
      for (const auto& [name, offset] : entries) c.offsets.emplace_back(std::string(std::string_view(name)), offset);
    }
  }
  if (!found) c.error = "offset store " + f->path() + " has no valid slot:" + reasons;
  return c;
}

// Every offset store in sub-directory `name` of the bus directory: consumers/
// (named consumers) or groups/ (consumer groups); none when it is missing.
std::vector<CommittedOffsets> read_stores(const platform::FileDescriptor& bus_dir, std::string_view name) {
  std::vector<CommittedOffsets> stores;
  Result<bool> exists = platform::entry_exists_at(bus_dir, name);
  if (!exists.ok()) throw Failure(std::string(exists.message()));
  if (!*exists) return stores;
  Result<platform::FileDescriptor> dir = platform::open_directory_at(bus_dir, name);
  if (!dir.ok()) throw Failure(std::string(dir.message()));
  Result<std::vector<platform::DirectoryEntry>> entries = platform::list_directory(*dir);
  if (!entries.ok()) throw Failure(std::string(entries.message()));
  for (const platform::DirectoryEntry& e : *entries) {
    if (e.type != platform::EntryType::regular || !e.name.ends_with(offsets_suffix) ||
        e.name.size() == offsets_suffix.size()) {
      continue; // a store's .tmp left by a crashed creation, or not ours
    }
    stores.push_back(read_offsets(*dir, e.name));
  }
  std::sort(stores.begin(), stores.end(),
            [](const CommittedOffsets& a, const CommittedOffsets& b) { return a.consumer < b.consumer; });
  return stores;
}

// One topic's live counters, as its stats file says.
struct TopicCounters {
  std::string topic;
  std::string note;                                // no file, or why it is not trusted ("" when it is)
  std::optional<detail::StatsFileContents> latest; // the newest sample read
  std::optional<AppendRate> rate;                  // between two samples of a live writer
  bool live = false;                               // its writer holds DIR/LOCK now
};

std::optional<detail::StatsFileContents> read_counters(const platform::FileDescriptor& topics_dir, TopicCounters& t) {
  Result<platform::FileDescriptor> dir = platform::open_directory_at(topics_dir, t.topic);
  if (!dir.ok()) {
    t.note = "ignored: " + std::string(dir.message());
    return std::nullopt;
  }
  Result<std::optional<detail::StatsFileContents>> read = detail::read_stats_file(*dir, t.topic);
  if (!read.ok()) {
    t.note = "ignored: " + std::string(read.message());
    return std::nullopt;
  }
  if (!read->has_value()) t.note = "none: no stats file (a writable Bus writes one; BusOptions::stats_interval)";
  return *read;
}

// Reads every topic's counters; for live writers a second sample at least
// interval_ms later (waiting up to a second more for the writer's next
// update), for the rate.
std::vector<TopicCounters> collect_counters(const std::string& dir, const std::vector<TopicSummary>& topics,
                                            std::optional<long> writer, std::int64_t interval_ms) {
  std::vector<TopicCounters> out;
  const TopicListing listing = list_topics(dir, {});
  if (!listing.topics.valid()) return out;
  std::vector<std::optional<detail::StatsFileContents>> first;
  for (const TopicSummary& s : topics) {
    TopicCounters t;
    t.topic = s.name;
    first.push_back(read_counters(listing.topics, t));
    if (first.back()) {
      t.latest = first.back();
      t.live = writer && *writer == t.latest->writer_pid && !t.latest->closed;
    }
    out.push_back(std::move(t));
  }
  const bool any_live = std::any_of(out.begin(), out.end(), [](const TopicCounters& t) { return t.live; });
  if (!any_live || interval_ms == 0) return out;
  platform::sleep_ns(interval_ms * 1'000'000);
  const std::int64_t give_up = platform::monotonic_ns() + 1'000'000'000;
  for (std::size_t i = 0; i < out.size(); ++i) {
    TopicCounters& t = out[i];
    if (!t.live) continue;
    for (;;) {
      TopicCounters again;
      again.topic = t.topic;
      std::optional<detail::StatsFileContents> second = read_counters(listing.topics, again);
      if (!second || second->writer_pid != first[i]->writer_pid) break; // gone or replaced: no rate
      if (second->stats.sampled_at != first[i]->stats.sampled_at) {
        t.latest = second;
        t.live = !second->closed;
        t.rate = append_rate(first[i]->stats, second->stats);
        break;
      }
      if (platform::monotonic_ns() >= give_up) {
        t.note = "no rate: the writer published no new sample within " + std::to_string(interval_ms + 1000) +
                 " ms (is its flusher thread off?)";
        break;
      }
      platform::sleep_ns(10'000'000);
    }
  }
  return out;
}

std::string decimal(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.3f", v);
  return text;
}

std::string seconds_text(std::int64_t ns) { return decimal(static_cast<double>(ns) / 1e9) + " s"; }

void print_counters_json(std::ostream& out, const TopicCounters& t, std::int64_t now_real_ns) {
  out << "{\"kind\":\"topic\",\"topic\":" << json_string(t.topic);
  if (!t.latest) {
    out << ",\"stats\":" << (t.note.starts_with("ignored") ? "\"ignored\"" : "\"none\"")
        << ",\"note\":" << json_string(t.note) << "}\n";
    return;
  }
  const detail::StatsFileContents& c = *t.latest;
  const TopicStats& s = c.stats;
  out << ",\"stats\":" << (t.live ? "\"live\"" : "\"last\"") << ",\"writer_pid\":" << c.writer_pid
      << ",\"writer_running\":" << (t.live ? "true" : "false")
      << ",\"started_at\":" << json_string(format_timestamp(c.started_ns))
      << ",\"sampled_at\":" << json_string(format_timestamp(c.updated_real_ns))
      << ",\"age_ns\":" << std::max<std::int64_t>(0, now_real_ns - c.updated_real_ns)
      << ",\"end_offset\":" << s.end_offset << ",\"records_appended\":" << s.records_appended
      << ",\"bytes_appended\":" << s.bytes_appended << ",\"producer_waits\":" << s.producer_waits
      << ",\"producer_wait_ns\":" << s.producer_wait_ns << ",\"segment_rolls\":" << s.segment_rolls
      << ",\"segment_roll_ns\":" << s.segment_roll_ns << ",\"lapped_consumers\":" << s.lapped_consumers
      << ",\"records_lost_by_lapped_consumers\":" << s.records_lost_by_lapped_consumers
      << ",\"open_consumers\":" << s.open_consumers << ",\"has_producer\":" << (s.has_producer ? "true" : "false");
  if (t.rate) {
    out << ",\"records_per_second\":" << decimal(t.rate->records_per_second)
        << ",\"bytes_per_second\":" << decimal(t.rate->bytes_per_second)
        << ",\"rate_interval_ns\":" << static_cast<std::int64_t>(t.rate->seconds * 1e9);
  } else {
    out << ",\"records_per_second\":null,\"bytes_per_second\":null,\"rate_interval_ns\":null";
  }
  if (!t.note.empty()) out << ",\"note\":" << json_string(t.note);
  out << "}\n";
}

void print_counters_text(std::ostream& out, const TopicCounters& t, std::int64_t now_real_ns) {
  out << "topic " << t.topic << ": ";
  if (!t.latest) {
    out << "live counters: " << t.note << '\n';
    return;
  }
  const detail::StatsFileContents& c = *t.latest;
  const TopicStats& s = c.stats;
  const std::int64_t age = std::max<std::int64_t>(0, now_real_ns - c.updated_real_ns);
  if (t.live) {
    out << "writer pid " << c.writer_pid << ", sampled " << seconds_text(age) << " ago\n";
  } else {
    out << "writer: not running; last values from pid " << c.writer_pid << ", " << seconds_text(age) << " old ("
        << format_timestamp(c.updated_real_ns) << (c.closed ? ", at its close" : "") << ")\n";
  }
  out << "  records_appended " << s.records_appended << ", bytes_appended " << s.bytes_appended << " since "
      << format_timestamp(c.started_ns) << " (end_offset " << s.end_offset << ")\n";
  if (t.rate) {
    out << "  append rate " << decimal(t.rate->records_per_second) << " records/s, "
        << decimal(t.rate->bytes_per_second) << " bytes/s (over " << decimal(t.rate->seconds) << " s)\n";
  } else if (!t.note.empty()) {
    out << "  " << t.note << '\n';
  }
  out << "  producer_waits " << s.producer_waits << ", producer_wait_ns " << s.producer_wait_ns << '\n';
  out << "  segment_rolls " << s.segment_rolls << ", segment_roll_ns " << s.segment_roll_ns << '\n';
  out << "  lapped_consumers " << s.lapped_consumers << ", records_lost_by_lapped_consumers "
      << s.records_lost_by_lapped_consumers << '\n';
  out << "  open_consumers " << s.open_consumers << ", producer " << (s.has_producer ? "open" : "closed") << '\n';
}

} // namespace

int run_stat(const StatArgs& args, std::ostream& out) {
  const std::vector<TopicSummary> topics = summarize_topics(args.dir, args.topic);
  std::map<std::string, const TopicSummary*> by_name;
  for (const TopicSummary& t : topics) by_name[t.name] = &t;
  const std::optional<long> writer = writer_pid(args.dir);

  Result<platform::FileDescriptor> bus_dir = platform::open_directory(args.dir);
  if (!bus_dir.ok()) throw Failure(std::string(bus_dir.message()));
  const std::vector<CommittedOffsets> consumers = read_stores(*bus_dir, "consumers");
  const std::vector<CommittedOffsets> groups = read_stores(*bus_dir, "groups");
  // Named consumers and consumer groups: the same store, the same lines.
  const std::array<std::pair<std::string_view, const std::vector<CommittedOffsets>*>, 2> owners{
      {{"consumer", &consumers}, {"group", &groups}}};

  const std::vector<TopicCounters> counters = collect_counters(args.dir, topics, writer, args.interval_ms);
  const std::int64_t now_real_ns = detail::wall_clock_ns();

  bool failed = false;
  const auto lag_of = [&](const std::string& topic, std::uint64_t committed) -> std::optional<std::uint64_t> {
    const auto it = by_name.find(topic);
    if (it == by_name.end() || !it->second->error.empty()) return std::nullopt;
    const std::uint64_t end = it->second->end_offset;
    return committed >= end ? 0 : end - committed;
  };
  const auto wanted = [&](const std::string& topic) { return args.topic.empty() || topic == args.topic; };

  if (args.format == Format::json) {
    for (const auto& [kind, stores] : owners) {
      for (const CommittedOffsets& c : *stores) {
        if (!c.error.empty()) {
          out << "{\"kind\":\"" << kind << "\",\"" << kind << "\":" << json_string(c.consumer)
              << ",\"error\":" << json_string(c.error) << "}\n";
          failed = true;
          continue;
        }
        for (const auto& [topic, committed] : c.offsets) {
          if (!wanted(topic)) continue;
          out << "{\"kind\":\"" << kind << "\",\"" << kind << "\":" << json_string(c.consumer)
              << ",\"topic\":" << json_string(topic) << ",\"committed\":" << committed
              << ",\"sequence\":" << c.sequence;
          const auto it = by_name.find(topic);
          if (const std::optional<std::uint64_t> lag = lag_of(topic, committed)) {
            out << ",\"first_offset\":" << it->second->first_offset << ",\"end_offset\":" << it->second->end_offset
                << ",\"lag\":" << *lag;
          } else {
            out << ",\"first_offset\":null,\"end_offset\":null,\"lag\":null";
          }
          out << "}\n";
        }
      }
    }
    for (const TopicCounters& t : counters) print_counters_json(out, t, now_real_ns);
    out << "{\"kind\":\"bus\",\"writer_pid\":";
    if (writer) {
      out << *writer;
    } else {
      out << "null";
    }
    out << "}\n";
    return failed ? exit_error : exit_ok;
  }

  out << "bus " << args.dir << ": " << (writer ? "writer pid " + std::to_string(*writer) : std::string("no writer"))
      << '\n';
  std::size_t shown = 0;
  for (const auto& [kind, stores] : owners) {
    for (const CommittedOffsets& c : *stores) {
      if (!c.error.empty()) {
        out << kind << ' ' << c.consumer << ": error: " << c.error << '\n';
        failed = true;
        continue;
      }
      const bool any = std::any_of(c.offsets.begin(), c.offsets.end(), [&](const auto& e) { return wanted(e.first); });
      if (!any) continue;
      out << kind << ' ' << c.consumer << " (commit " << c.sequence << ")\n";
      for (const auto& [topic, committed] : c.offsets) {
        if (!wanted(topic)) continue;
        ++shown;
        out << "  topic " << topic << ": committed " << committed;
        const auto it = by_name.find(topic);
        if (it == by_name.end()) {
          out << " (the topic no longer exists)\n";
        } else if (!it->second->error.empty()) {
          out << " (the topic cannot be read: " << it->second->error << ")\n";
        } else {
          const TopicSummary& t = *it->second;
          out << ", end " << t.end_offset << ", lag " << *lag_of(topic, committed);
          if (committed < t.first_offset) {
            out << " (" << t.first_offset - committed << " of them no longer held: it resumes at " << t.first_offset
                << ")";
          }
          out << '\n';
        }
      }
    }
  }
  if (shown == 0) {
    out << "no committed offsets" << (args.topic.empty() ? "" : " for topic " + args.topic) << '\n';
  }
  for (const TopicCounters& t : counters) print_counters_text(out, t, now_real_ns);
  return failed ? exit_error : exit_ok;
}

} // namespace ringbus::cli
