// ringbus produce DIR TOPIC: one record per line of standard input.
#include <iostream>
#include <istream>
#include <ostream>

#include "cli/cli.hpp"
#include "platform/files.hpp"

namespace ringbus::cli {

int run_produce(const ProduceArgs& args, std::istream& in, std::ostream& out) {
  if (!args.create) require_bus_directory(args.dir); // without --create, nothing is made
  if (Status st = validate_topic_name(args.topic); !st.ok()) throw Failure(std::string(st.message()));
  TopicOptions topic_options;
  if (args.segment_bytes != 0) topic_options.segment_bytes = args.segment_bytes;
  if (args.segment_count != 0) topic_options.segment_count = args.segment_count;
  // Bad --segment-* options are refused before the bus directory is made.
  if (Status st = topic_options.validate(); !st.ok()) throw Failure(std::string(st.message()));
  BusOptions options;
  options.flusher_thread = true; // Durability::interval topics keep their promise while we run
  Result<Bus> opened = Bus::open(args.dir, options);
  if (!opened.ok()) throw Failure(std::string(opened.message()));
  Bus& bus = *opened;
  if (!bus.has_topic(args.topic)) {
    if (!args.create) {
      std::string known;
      for (const std::string& name : bus.topic_names()) known += (known.empty() ? "" : ", ") + name;
      throw Failure("topic '" + args.topic + "' does not exist in " + args.dir +
                    " (topics: " + (known.empty() ? "none" : known) + "); --create creates it");
    }
    if (Status st = bus.create_topic(args.topic, topic_options); !st.ok()) throw Failure(std::string(st.message()));
  }
  Result<Producer> producer = bus.producer(args.topic);
  if (!producer.ok()) throw Failure(std::string(producer.message()));

  std::uint64_t first = producer->next_offset();
  std::uint64_t appended = 0;
  std::string line;
  while (!stop_requested() && std::getline(in, line)) {
    Result<std::uint64_t> offset = Errc::ok;
    const std::size_t cut = args.key_separator ? line.find(*args.key_separator) : std::string::npos;
    if (cut != std::string::npos) {
      offset = producer->append(std::string_view(line).substr(0, cut), std::string_view(line).substr(cut + 1));
    } else {
      offset = producer->append(std::string_view(line));
    }
    if (!offset.ok()) {
      (void)bus.flush(args.topic);
      throw Failure("line " + std::to_string(appended + 1) + " of standard input: " + std::string(offset.message()) +
                    " (" + std::to_string(appended) + " records before it were appended)");
    }
    if (appended == 0) first = *offset;
    ++appended;
  }
  if (in.bad()) throw Failure("reading standard input failed after " + std::to_string(appended) + " records");
  // Whatever the topic's durability, the records are on disk when the tool says so.
  if (Status st = bus.flush(args.topic); !st.ok()) throw Failure(std::string(st.message()));
  (void)producer->close();
  bus.close();
  out << "appended " << appended << (appended == 1 ? " record" : " records") << " to topic '" << args.topic << "'";
  if (appended != 0) out << ", offsets " << first << " .. " << first + appended - 1;
  out << '\n';
  return exit_ok;
}

} // namespace ringbus::cli
