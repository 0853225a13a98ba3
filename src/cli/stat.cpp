// ringbus stat DIR [TOPIC]: named consumers, their committed offsets and lag.
#include <algorithm>
#include <map>
#include <ostream>

#include "cli/cli.hpp"
#include "platform/files.hpp"
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

} // namespace

int run_stat(const StatArgs& args, std::ostream& out) {
  const std::vector<TopicSummary> topics = summarize_topics(args.dir, args.topic);
  std::map<std::string, const TopicSummary*> by_name;
  for (const TopicSummary& t : topics) by_name[t.name] = &t;
  const std::optional<long> writer = writer_pid(args.dir);

  std::vector<CommittedOffsets> consumers;
  Result<platform::FileDescriptor> bus_dir = platform::open_directory(args.dir);
  if (!bus_dir.ok()) throw Failure(std::string(bus_dir.message()));
  Result<bool> has_consumers = platform::entry_exists_at(*bus_dir, "consumers");
  if (!has_consumers.ok()) throw Failure(std::string(has_consumers.message()));
  if (*has_consumers) {
    Result<platform::FileDescriptor> dir = platform::open_directory_at(*bus_dir, "consumers");
    if (!dir.ok()) throw Failure(std::string(dir.message()));
    Result<std::vector<platform::DirectoryEntry>> entries = platform::list_directory(*dir);
    if (!entries.ok()) throw Failure(std::string(entries.message()));
    for (const platform::DirectoryEntry& e : *entries) {
      if (e.type != platform::EntryType::regular || !e.name.ends_with(offsets_suffix) ||
          e.name.size() == offsets_suffix.size()) {
        continue; // a store's .tmp left by a crashed creation, or not ours
      }
      consumers.push_back(read_offsets(*dir, e.name));
    }
  }

  bool failed = false;
  const auto lag_of = [&](const std::string& topic, std::uint64_t committed) -> std::optional<std::uint64_t> {
    const auto it = by_name.find(topic);
    if (it == by_name.end() || !it->second->error.empty()) return std::nullopt;
    const std::uint64_t end = it->second->end_offset;
    return committed >= end ? 0 : end - committed;
  };
  const auto wanted = [&](const std::string& topic) { return args.topic.empty() || topic == args.topic; };

  if (args.format == Format::json) {
    for (const CommittedOffsets& c : consumers) {
      if (!c.error.empty()) {
        out << "{\"consumer\":" << json_string(c.consumer) << ",\"error\":" << json_string(c.error) << "}\n";
        failed = true;
        continue;
      }
      for (const auto& [topic, committed] : c.offsets) {
        if (!wanted(topic)) continue;
        out << "{\"consumer\":" << json_string(c.consumer) << ",\"topic\":" << json_string(topic)
            << ",\"committed\":" << committed << ",\"sequence\":" << c.sequence;
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
    out << "{\"writer_pid\":";
    if (writer) {
      out << *writer;
    } else {
      out << "null";
    }
    out << ",\"live_counters\":\"not available\",\"groups\":\"positions are not persisted\"}\n";
    return failed ? exit_error : exit_ok;
  }

  out << "bus " << args.dir << ": " << (writer ? "writer pid " + std::to_string(*writer) : std::string("no writer"))
      << '\n';
  std::size_t shown = 0;
  for (const CommittedOffsets& c : consumers) {
    if (!c.error.empty()) {
      out << "consumer " << c.consumer << ": error: " << c.error << '\n';
      failed = true;
      continue;
    }
    const bool any = std::any_of(c.offsets.begin(), c.offsets.end(), [&](const auto& e) { return wanted(e.first); });
    if (!any) continue;
    out << "consumer " << c.consumer << " (commit " << c.sequence << ")\n";
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
  if (shown == 0) {
    out << "no committed offsets" << (args.topic.empty() ? "" : " for topic " + args.topic) << '\n';
  }
  out << "consumer groups: positions are not persisted (README \"Consumer groups\"), none to show\n";
  out << "live counters: not available\n";
  return failed ? exit_error : exit_ok;
}

} // namespace ringbus::cli
