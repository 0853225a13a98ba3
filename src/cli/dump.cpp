// ringbus dump and ringbus tail: records of a topic, read through a
// read-only Bus (the same path as any consumer in another process).
#include <algorithm>
#include <chrono>
#include <iostream>
#include <ostream>

#include "cli/cli.hpp"

namespace ringbus::cli {

namespace {

constexpr std::size_t poll_records = 4096;
constexpr int caught_up_retries = 100; // empty 10 ms polls before a snapshot read gives up on its end
// tail -f, caught up: sleeps between polls, doubling from min to max (the
// most a new record waits to be printed).
constexpr std::chrono::microseconds follow_sleep_min{100};
constexpr std::chrono::microseconds follow_sleep_max{10'000};

Consumer subscribe(Bus& bus, const std::string& topic) {
  Result<Consumer> c = bus.consumer(topic, StartPosition::earliest);
  if (!c.ok()) throw Failure(std::string(c.message()));
  return std::move(*c);
}

void check(const Status& st) {
  if (!st.ok()) throw Failure(std::string(st.message()));
}

// Who took the records of a gap: a writer that holds DIR/LOCK laps a reader
// or its retention deletes what it has yet to read; with none, the files
// were gone from the directory before this read them.
std::string gap_cause(const std::string& dir) {
  if (const std::optional<long> writer = writer_pid(dir)) {
    return "the writer (pid " + std::to_string(*writer) + ") deleted them before they were read";
  }
  return "their segment files left the directory before they were read (no writer holds " + dir + "/LOCK)";
}

// What one poll printed: how many records, and whether it met a record at or
// past end (the offset the tool announced as the end: it stops there).
struct Printed {
  std::uint64_t records = 0;
  bool reached_end = false;
  std::uint64_t first_unprinted = 0; // reached_end: the offset of the record met there
};

// Prints what one poll returned: at most `limit` records, none at or past end.
Printed print_poll(std::ostream& out, const Records& records, Format format, std::uint64_t limit, std::uint64_t end,
                   const std::string& dir) {
  for (const Gap& g : records.gaps()) {
    if (g.first_lost >= end) break; // past the announced range, as the records there
    const std::uint64_t last = std::min(g.first_lost + g.count, end) - 1;
    std::cerr << "ringbus: " << last - g.first_lost + 1 << " records lost (offsets " << g.first_lost << " .. " << last
              << "): " << gap_cause(dir) << '\n';
  }
  Printed printed;
  for (const Record& r : records) {
    if (r.offset >= end) {
      printed.reached_end = true;
      printed.first_unprinted = r.offset;
      break;
    }
    if (printed.records == limit) break;
    print_record(out, r, format);
    ++printed.records;
  }
  return printed;
}

// Prints records from the consumer's position up to end (exclusive) or until
// count were printed.
void print_until(std::ostream& out, Consumer& c, const std::string& dir, const std::string& topic, std::uint64_t end,
                 std::uint64_t count, Format format) {
  std::uint64_t printed = 0;
  int empty = 0;
  while (printed < count && !stop_requested()) {
    Result<std::uint64_t> position = c.position(topic);
    if (!position.ok()) throw Failure(std::string(position.message()));
    if (*position >= end) break;
    const std::uint64_t want = std::min<std::uint64_t>({count - printed, end - *position, poll_records});
    Result<Records> r = c.poll(static_cast<std::size_t>(want), std::chrono::milliseconds(empty == 0 ? 0 : 10));
    if (!r.ok()) throw Failure(std::string(r.message()));
    if (r->empty() && r->gaps().empty()) {
      if (++empty > caught_up_retries) {
        std::cerr << "ringbus: stopped at offset " << *position << ": records up to " << end
                  << " were announced but could not be read\n";
        break;
      }
      continue;
    }
    empty = 0;
    const Printed p = print_poll(out, *r, format, count - printed, end, dir);
    printed += p.records;
    if (!out && stop_requested()) return; // Ctrl-C or SIGTERM ended a write blocked on a full pipe
    if (!out) throw Failure("writing the output failed");
    if (p.reached_end) {
      // A record past the announced range (after a gap): not printed here.
      // tail -f goes on from it, so the consumer is put back there (a
      // seek refused because the writer lapped it meanwhile: its next poll
      // reports the gap).
      (void)c.seek(topic, p.first_unprinted);
      break;
    }
  }
  out.flush();
}

} // namespace

int run_dump(const DumpArgs& args, std::ostream& out) {
  Bus bus = open_read_only(args.dir);
  require_topic(bus, args.dir, args.topic);
  Result<TopicInfo> info = bus.describe(args.topic);
  if (!info.ok()) throw Failure(std::string(info.message()));
  Consumer c = subscribe(bus, args.topic);
  if (args.from_offset) {
    if (*args.from_offset < info->oldest_offset || *args.from_offset > info->end_offset) {
      throw Failure("--from " + std::to_string(*args.from_offset) + " is outside topic '" + args.topic +
                    "': it holds offsets " + std::to_string(info->oldest_offset) + " .. " +
                    (info->end_offset > info->oldest_offset ? std::to_string(info->end_offset - 1) : "(none)") +
                    " and the next record gets " + std::to_string(info->end_offset));
    }
    check(c.seek(args.topic, *args.from_offset));
  } else if (args.from_time) {
    const std::optional<std::int64_t> t = parse_time(*args.from_time);
    if (!t) {
      throw Failure("--from-time '" + *args.from_time +
                    "' is neither ISO-8601 (e.g. 2024-05-01T12:34:56.5Z) nor nanoseconds since the epoch");
    }
    check(c.seek_to_time(args.topic, *t));
  }
  print_until(out, c, args.dir, args.topic, info->end_offset, args.count.value_or(UINT64_MAX), args.format);
  return exit_ok;
}

int run_tail(const TailArgs& args, std::ostream& out) {
  Bus bus = open_read_only(args.dir);
  require_topic(bus, args.dir, args.topic);
  Result<TopicInfo> info = bus.describe(args.topic);
  if (!info.ok()) throw Failure(std::string(info.message()));
  Consumer c = subscribe(bus, args.topic);
  const std::uint64_t held = info->end_offset - info->oldest_offset;
  check(c.seek(args.topic, info->end_offset - std::min(held, args.last)));
  print_until(out, c, args.dir, args.topic, info->end_offset, UINT64_MAX, args.format);
  if (!args.follow) return exit_ok;
  // Caught up, the tool sleeps between polls instead of waiting in poll: the
  // writer is another process and rings no doorbell, and poll's backoff spins
  // and yields before it sleeps. Stop signals are held while it polls and
  // sleeps, and a stop signal ends the sleep at once (see StopSignalsHeld).
  std::chrono::microseconds idle{0};
  for (;;) {
    StopSignalsHeld signals;
    if (stop_requested()) break;
    Result<Records> r = c.poll(poll_records, std::chrono::milliseconds(0));
    if (!r.ok()) throw Failure(std::string(r.message()));
    if (r->empty() && r->gaps().empty()) {
      idle = std::clamp(idle * 2, follow_sleep_min, follow_sleep_max);
      if (sleep_unless_stopped(idle)) break;
      continue;
    }
    idle = std::chrono::microseconds(0);
    signals.release(); // a write blocked on a full pipe ends on Ctrl-C or SIGTERM
    print_poll(out, *r, args.format, UINT64_MAX, UINT64_MAX, args.dir);
    out.flush();
    if (!out) return exit_ok; // the reader went away (tail -f | head), or a stop signal ended the write
  }
  return exit_ok;
}

} // namespace ringbus::cli
