// Sensor log: a persistent topic survives the crash of the process writing it.
//
// A sensor process (a forked child) samples four sensors, one reading a
// millisecond, and appends each reading (sensor id, value, sample time) to a
// persistent topic on a bus opened on a directory. In the same process an
// `alerts` consumer, a named one, checks the readings against a threshold
// every 50 readings and commits its offset every 250. After a few commits the
// parent kills the sensor process with SIGKILL, in the middle of its writing.
//
// The parent then restarts the application on the same directory:
//
//   recovery   Bus::open checks the tail segment frame by frame and cuts it at
//              the first torn frame; every reading appended before the kill is
//              there (Durability::none: the page cache survives a process
//              crash; a machine crash would need interval or sync).
//   replay     a consumer replays the last second of readings by time
//              (Consumer::seek_to_time, through each segment's time index).
//   resume     the `alerts` consumer, opened again by name, resumes at its
//              committed offset: the readings it handled after its last commit
//              are delivered again (at-least-once), none is skipped.
//
// Every claim is checked; the exit code is 1 on a mismatch.
//
//   sensor_log [--dir DIR]     bus directory (default: a fresh one under /tmp, removed at the end)

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "ringbus/ringbus.hpp"

namespace {

using namespace std::chrono_literals;

constexpr std::string_view topic = "readings";
constexpr std::string_view alerts_name = "alerts";
constexpr std::uint32_t sensors = 4;
constexpr std::uint64_t handle_every = 50;  // readings between two polls of `alerts`
constexpr std::uint64_t commit_every = 250; // readings between two commits of `alerts`
constexpr std::uint64_t commits_before_kill = 5;
constexpr std::int64_t replay_window_ns = 1'000'000'000; // the last second

// One reading, carried as the record's value in native byte order (one
// machine); the record's key is the sensor's name, its timestamp the sample time.
struct Reading {
  std::uint32_t sensor = 0;
  std::uint32_t flags = 0;     // unused here; keeps the struct free of padding
  std::uint64_t sequence = 0;  // the sensor process's numbering: 0, 1, 2, ... (= the record's offset)
  double celsius = 0;          // the measured value
  std::int64_t sampled_ns = 0; // wall clock at sampling (also the record's timestamp)
};
static_assert(sizeof(Reading) == 32);

// The value sensor s reads at `sequence`: a pure function, so that the
// restarted application can check every reading without a copy of them.
double celsius_for(std::uint64_t sequence) {
  const auto s = static_cast<double>(sequence % sensors);
  return 20.0 + 2.5 * s + 0.01 * static_cast<double>((sequence * 7919) % 1000);
}
bool is_alert(const Reading& r) { return r.celsius > 29.0; }

std::string sensor_name(std::uint32_t sensor) { return "sensor-" + std::to_string(sensor); }

// Prints what failed and why; true if s (a Status or a Result) is an error.
template <class StatusOrResult>
bool failed(const StatusOrResult& s, std::string_view what) {
  if (s.ok()) return false;
  std::cerr << what << ": " << s.message() << '\n';
  return true;
}

// What the sensor process tells the parent after each poll of `alerts`.
struct Progress {
  std::uint64_t appended = 0;  // readings appended so far
  std::uint64_t handled = 0;   // readings `alerts` has handled (its position)
  std::uint64_t committed = 0; // the offset `alerts` last committed
};

// --- the sensor process: runs until it is killed --------------------------------

[[noreturn]] void run_sensor_process(const std::string& dir, int report) {
  ringbus::Result<ringbus::Bus> bus = ringbus::Bus::open(dir);
  if (failed(bus, "sensor: open the bus")) ::_exit(2);
  ringbus::TopicOptions options;
  options.segment_bytes = 16 * 1024; // small segments: the log spans several files
  options.segment_count = 64;
  options.durability = ringbus::Durability::none;
  if (failed(bus->create_topic(topic, options), "sensor: create the topic")) ::_exit(2);
  ringbus::Result<ringbus::Producer> producer = bus->producer(topic);
  ringbus::ConsumerOptions alerts_options;
  alerts_options.topics = {std::string(topic)};
  alerts_options.name = std::string(alerts_name);
  ringbus::Result<ringbus::Consumer> alerts = bus->consumer(alerts_options);
  if (failed(producer, "sensor: producer") || failed(alerts, "sensor: alerts consumer")) ::_exit(2);

  std::uint64_t committed = 0;
  for (std::uint64_t sequence = 0;; ++sequence) {
    Reading r;
    r.sensor = static_cast<std::uint32_t>(sequence % sensors);
    r.sequence = sequence;
    r.celsius = celsius_for(sequence);
    r.sampled_ns = ringbus::wall_clock_ns();
    const std::string key = sensor_name(r.sensor);
    if (failed(producer->append(ringbus::Message{key, ringbus::bytes_of(r), r.sampled_ns, {}}), "sensor: append")) {
      ::_exit(2);
    }
    if ((sequence + 1) % handle_every == 0) {
      // The alerts consumer handles what is there, and now and then commits its position.
      ringbus::Result<ringbus::Records> records = alerts->poll();
      if (failed(records, "sensor: alerts poll")) ::_exit(2);
      const std::uint64_t handled = alerts->position(topic).value();
      if ((sequence + 1) % commit_every == 0) {
        if (failed(alerts->commit(), "sensor: alerts commit")) ::_exit(2);
        committed = handled;
      }
      const Progress p{sequence + 1, handled, committed};
      if (::write(report, &p, sizeof p) != static_cast<ssize_t>(sizeof p)) ::_exit(2);
    }
    std::this_thread::sleep_for(1ms); // one reading a millisecond
  }
}

// --- the restarted application ---------------------------------------------------

// Reads every record of topic from `consumer`'s position to the end; calls
// visit(record, reading) for each one. False (said on stderr) on an error or
// a record that is not a well-formed reading at its offset.
template <class Visit>
bool read_to_end(ringbus::Consumer& consumer, std::uint64_t end, Visit visit) {
  std::uint64_t next = consumer.position(topic).value();
  while (next < end) {
    ringbus::Result<ringbus::Records> records = consumer.poll(SIZE_MAX, 100ms);
    if (failed(records, "poll")) return false;
    if (records->empty()) {
      std::cerr << "MISMATCH: no record at offset " << next << ", the topic ends at " << end << '\n';
      return false;
    }
    for (const ringbus::Record& record : *records) {
      Reading r;
      if (record.value.size() != sizeof r || record.offset != next) {
        std::cerr << "MISMATCH: record at offset " << record.offset << " (expected " << next << ") is malformed\n";
        return false;
      }
      std::memcpy(&r, record.value.data(), sizeof r);
      if (r.sequence != record.offset || r.celsius != celsius_for(r.sequence) || r.sampled_ns != record.timestamp_ns ||
          record.key.size() != sensor_name(r.sensor).size()) {
        std::cerr << "MISMATCH: reading at offset " << record.offset << " is not the one the sensor wrote\n";
        return false;
      }
      visit(record, r);
      ++next;
    }
  }
  return true;
}

int restart_and_check(const std::string& dir, const Progress& last_report) {
  bool ok = true;
  const auto check = [&ok](bool claim, std::string_view what) {
    std::cout << (claim ? "  ok        " : "  MISMATCH  ") << what << '\n';
    ok = ok && claim;
  };

  const auto open_start = std::chrono::steady_clock::now();
  ringbus::Result<ringbus::Bus> bus = ringbus::Bus::open(dir);
  const auto open_time = std::chrono::steady_clock::now() - open_start;
  if (failed(bus, "restart: open the bus")) return 1;
  const ringbus::TopicInfo info = bus->describe(topic).value();
  std::cout << "restart: Bus::open recovered '" << topic << "' in " << std::fixed << std::setprecision(1)
            << std::chrono::duration<double, std::milli>(open_time).count() << " ms: offsets " << info.oldest_offset
            << " .. " << info.end_offset << " in " << info.segment_files << " segment files\n";
  check(info.end_offset >= last_report.appended, "every reading appended before the kill is there (" +
                                                     std::to_string(info.end_offset) +
                                                     " >= " + std::to_string(last_report.appended) + ")");

  // 1. Every reading, intact and in order; the last one's sample time.
  ringbus::Result<ringbus::Consumer> all = bus->consumer(topic);
  if (failed(all, "restart: consumer")) return 1;
  std::int64_t last_sampled = 0;
  std::int64_t previous = INT64_MIN;
  bool ordered = true;
  ok = read_to_end(*all, info.end_offset,
                   [&](const ringbus::Record&, const Reading& r) {
                     ordered = ordered && r.sampled_ns >= previous;
                     previous = last_sampled = r.sampled_ns;
                   }) &&
       ok;
  check(ordered, "all " + std::to_string(info.end_offset) + " readings are intact, in order, times never decrease");

  // 2. Replay the last second by time.
  const std::int64_t cutoff = last_sampled - replay_window_ns;
  ringbus::Result<ringbus::Consumer> replay = bus->consumer(topic);
  if (failed(replay, "restart: replay consumer") || failed(replay->seek_to_time(topic, cutoff), "seek_to_time")) {
    return 1;
  }
  const std::uint64_t first = replay->position(topic).value();
  std::uint64_t replayed = 0;
  bool in_window = true;
  double sums[sensors] = {};
  std::uint64_t counts[sensors] = {};
  ok = read_to_end(*replay, info.end_offset,
                   [&](const ringbus::Record& record, const Reading& r) {
                     in_window = in_window && record.timestamp_ns >= cutoff;
                     sums[r.sensor] += r.celsius;
                     ++counts[r.sensor];
                     ++replayed;
                   }) &&
       ok;
  std::cout << "replay: the last " << replay_window_ns / 1'000'000 << " ms of readings, offsets " << first << " .. "
            << info.end_offset << " (" << replayed << " readings); mean per sensor:";
  for (std::uint32_t s = 0; s < sensors; ++s) {
    std::cout << ' ' << sensor_name(s) << '=' << (counts[s] != 0 ? sums[s] / static_cast<double>(counts[s]) : 0.0);
  }
  std::cout << '\n';
  // The reading just before the window must be older than the cut-off.
  bool starts_at_cutoff = first == 0;
  if (first > 0) {
    ringbus::Result<ringbus::Consumer> before = bus->consumer(topic);
    if (failed(before, "restart: consumer") || failed(before->seek(topic, first - 1), "seek")) return 1;
    ringbus::Result<ringbus::Records> one = before->poll(1, 100ms);
    starts_at_cutoff = one.ok() && one->size() == 1 && (*one->begin()).timestamp_ns < cutoff;
  }
  check(in_window && starts_at_cutoff && replayed > 0,
        "seek_to_time gave exactly the readings sampled in the last second");

  // 3. The alerts consumer resumes at its committed offset.
  ringbus::ConsumerOptions alerts_options;
  alerts_options.topics = {std::string(topic)};
  alerts_options.name = std::string(alerts_name);
  ringbus::Result<ringbus::Consumer> alerts = bus->consumer(alerts_options);
  if (failed(alerts, "restart: alerts consumer")) return 1;
  const std::uint64_t committed = alerts->committed(topic).value();
  const std::uint64_t resumed_at = alerts->position(topic).value();
  std::cout << "resume: '" << alerts_name << "' committed offset " << committed << " and had handled up to "
            << last_report.handled << " before the kill; it resumes at " << resumed_at << ": the "
            << last_report.handled - committed
            << " readings handled after its last commit come again (at-least-once)\n";
  check(committed == last_report.committed && resumed_at == committed,
        "the named consumer resumes at the offset it last committed (" + std::to_string(last_report.committed) + ")");
  std::uint64_t handled = 0;
  std::uint64_t raised = 0;
  ok = read_to_end(*alerts, info.end_offset,
                   [&](const ringbus::Record&, const Reading& r) {
                     ++handled;
                     raised += is_alert(r) ? 1 : 0;
                   }) &&
       ok;
  check(handled == info.end_offset - committed, "it then handles every later reading once (" + std::to_string(handled) +
                                                    ", " + std::to_string(raised) + " alerts)");
  if (failed(alerts->commit(), "restart: alerts commit")) return 1;
  check(alerts->committed(topic).value() == info.end_offset, "its new commit is the end of the topic");

  std::cout << (ok ? "OK: recovery, replay by time and resume from the committed offset all check out\n"
                   : "FAILED: see the mismatches above\n");
  return ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  std::string dir;
  bool remove_after = false;
  if (argc == 3 && std::string_view(argv[1]) == "--dir") {
    dir = argv[2];
  } else if (argc == 1) {
    std::string pattern = (std::filesystem::temp_directory_path() / "ringbus-sensor-log-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::cerr << "cannot make a directory like " << pattern << ": " << std::strerror(errno) << '\n';
      return 1;
    }
    dir = pattern;
    remove_after = true;
  } else {
    std::cerr << "usage: sensor_log [--dir DIR]\n";
    return 2;
  }
  std::cout << "bus directory: " << dir << '\n';

  // The sensor process. Forked before this process opens any bus or starts any thread.
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return 1;
  const pid_t sensor = ::fork();
  if (sensor < 0) return 1;
  if (sensor == 0) {
    ::close(pipe_fds[0]);
    run_sensor_process(dir, pipe_fds[1]);
  }
  ::close(pipe_fds[1]);
  Progress last{};
  for (std::uint64_t commits = 0; commits < commits_before_kill;) {
    const std::uint64_t committed_before = last.committed;
    if (::read(pipe_fds[0], &last, sizeof last) != static_cast<ssize_t>(sizeof last)) {
      std::cerr << "the sensor process stopped early\n";
      ::kill(sensor, SIGKILL);
      ::waitpid(sensor, nullptr, 0);
      return 1;
    }
    if (last.committed == committed_before) continue;
    ++commits;
    std::cout << "sensor:  " << last.appended << " readings appended, '" << alerts_name << "' committed offset "
              << last.committed << '\n';
  }
  std::this_thread::sleep_for(120ms); // between two commits, in the middle of appending
  ::kill(sensor, SIGKILL);
  int status = 0;
  ::waitpid(sensor, &status, 0);
  // A report written after the last one read (a slow machine) is still in the pipe.
  for (Progress p; ::read(pipe_fds[0], &p, sizeof p) == static_cast<ssize_t>(sizeof p);) last = p;
  ::close(pipe_fds[0]);
  std::cout << "sensor:  killed (" << (WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exited")
            << ") after at least " << last.appended << " readings\n";

  const int result = restart_and_check(dir, last);
  if (remove_after) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  return result;
}
