// ringbus topics DIR: every topic with its offsets, files and settings.
#include <algorithm>
#include <ostream>

#include "cli/cli.hpp"
#include "detail/topic_store.hpp"
#include "platform/files.hpp"

namespace ringbus::cli {

namespace {

// Sizes of every regular file in the topic's directory.
void add_file_sizes(const platform::FileDescriptor& topics, TopicSummary& s) {
  Result<platform::FileDescriptor> dir = platform::open_directory_at(topics, s.name);
  if (!dir.ok()) return;
  Result<std::vector<platform::DirectoryEntry>> entries = platform::list_directory(*dir);
  if (!entries.ok()) return;
  for (const platform::DirectoryEntry& e : *entries) {
    if (e.type != platform::EntryType::regular) continue;
    Result<platform::FileDescriptor> f = platform::open_file_at(*dir, e.name, platform::Access::read_only);
    if (!f.ok()) continue; // deleted meanwhile (retention), or not ours to read
    Result<platform::FileInfo> info = platform::file_info(*f);
    if (!info.ok()) continue;
    s.file_bytes += info->size;
    s.disk_bytes += info->allocated;
  }
}

std::string retention_text(const Retention& r) {
  if (r.max_bytes == 0 && r.max_age.count() == 0 && r.max_segments == 0) return "none (the ring bounds the topic)";
  std::string out;
  const auto add = [&out](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (r.max_bytes != 0) add("max_bytes " + std::to_string(r.max_bytes));
  if (r.max_age.count() != 0) add("max_age " + std::to_string(r.max_age.count()) + " ns");
  if (r.max_segments != 0) add("max_segments " + std::to_string(r.max_segments));
  return out;
}

std::string durability_text(const TopicOptions& o) {
  std::string out(to_string(o.durability));
  if (o.durability == Durability::interval) {
    out += " (every " + std::to_string(o.flush_interval.count()) + " ms";
    if (o.flush_bytes != 0) out += " or " + std::to_string(o.flush_bytes) + " bytes";
    out += ')';
  }
  return out;
}

} // namespace

std::vector<TopicSummary> summarize_topics(const std::string& dir, const std::string& topic) {
  const TopicListing listing = list_topics(dir, topic);
  std::vector<TopicSummary> out;
  for (const std::string& name : listing.names) {
    TopicSummary s;
    s.name = name;
    Result<std::unique_ptr<detail::TopicStore>> store =
        detail::TopicStore::open(listing.topics, name, true, listing.check_every_segment);
    if (store.code() == Errc::topic_not_found) continue; // a creation a crash cut short: not a topic
    if (!store.ok()) {
      s.error = std::string(store.message());
    } else {
      const detail::TopicStore& t = **store;
      s.options = t.options();
      s.first_offset = t.restored().head_offset;
      s.end_offset = t.restored().next_offset;
      s.segments = t.segment_count();
      s.tail_cut = t.recovery().cut_reason;
    }
    add_file_sizes(listing.topics, s);
    out.push_back(std::move(s));
  }
  return out;
}

int run_topics(const TopicsArgs& args, std::ostream& out) {
  const std::vector<TopicSummary> topics = summarize_topics(args.dir);
  const std::optional<long> writer = writer_pid(args.dir);
  bool failed = false;
  if (args.format == Format::json) {
    for (const TopicSummary& t : topics) {
      const TopicOptions& o = t.options;
      out << "{\"topic\":" << json_string(t.name);
      if (!t.error.empty()) {
        out << ",\"error\":" << json_string(t.error);
        failed = true;
      } else {
        out << ",\"first_offset\":" << t.first_offset << ",\"last_offset\":";
        if (t.end_offset > t.first_offset) {
          out << t.end_offset - 1;
        } else {
          out << "null";
        }
        out << ",\"end_offset\":" << t.end_offset << ",\"records\":" << t.end_offset - t.first_offset
            << ",\"segments\":" << t.segments << ",\"segment_bytes\":" << o.segment_bytes
            << ",\"segment_count\":" << o.segment_count << ",\"overflow\":" << json_string(to_string(o.overflow))
            << ",\"durability\":" << json_string(to_string(o.durability))
            << ",\"flush_interval_ms\":" << o.flush_interval.count() << ",\"flush_bytes\":" << o.flush_bytes
            << ",\"retention_max_bytes\":" << o.retention.max_bytes
            << ",\"retention_max_age_ns\":" << o.retention.max_age.count()
            << ",\"retention_max_segments\":" << o.retention.max_segments
            << ",\"tail_cut\":" << json_string(t.tail_cut);
      }
      out << ",\"file_bytes\":" << t.file_bytes << ",\"disk_bytes\":" << t.disk_bytes << ",\"writer_pid\":";
      if (writer) {
        out << *writer;
      } else {
        out << "null";
      }
      out << "}\n";
    }
    return failed ? exit_error : exit_ok;
  }
  out << "bus " << args.dir << ": " << topics.size() << (topics.size() == 1 ? " topic" : " topics") << ", ";
  if (writer) {
    out << "writer pid " << *writer << " holds " << args.dir << "/LOCK\n";
  } else {
    out << "no writer\n";
  }
  for (const TopicSummary& t : topics) {
    const TopicOptions& o = t.options;
    out << "\ntopic " << t.name << '\n';
    if (!t.error.empty()) {
      out << "  error       " << t.error << '\n';
      failed = true;
    } else {
      out << "  offsets     ";
      if (t.end_offset > t.first_offset) {
        out << t.first_offset << " .. " << t.end_offset - 1 << " (" << t.end_offset - t.first_offset << " records)\n";
      } else {
        out << "none (empty; the next record gets offset " << t.end_offset << ")\n";
      }
      out << "  segments    " << t.segments << " of a ring of " << o.segment_count << " x " << o.segment_bytes
          << " bytes\n";
      out << "  overflow    " << to_string(o.overflow) << '\n';
      out << "  durability  " << durability_text(o) << '\n';
      out << "  retention   " << retention_text(o.retention) << '\n';
      if (!t.tail_cut.empty()) out << "  tail        the next writer cuts it: " << t.tail_cut << '\n';
    }
    out << "  disk        " << t.disk_bytes << " bytes allocated (" << t.file_bytes << " bytes of files)\n";
    out << "  writer      " << (writer ? "pid " + std::to_string(*writer) : std::string("none")) << '\n';
  }
  return failed ? exit_error : exit_ok;
}

} // namespace ringbus::cli
