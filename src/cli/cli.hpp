// The `ringbus` command-line tool: what its subcommands share. main.cpp parses
// the arguments (CLI11) and calls one run_* function; each returns the exit
// code, or throws Failure (printed as "ringbus: error: ..." with exit_error).
//
// Exit codes (like grep and cmp): 0 done (verify: clean), 1 verify found
// damage, 2 trouble: bad arguments, a missing directory, an unknown topic, a
// foreign or unreadable file, a writer in the way.
//
// Every subcommand but produce and verify --repair is read-only: it opens the
// bus with BusOptions::read_only (no lock, nothing created or written), so it
// can run next to a live writer in another process.
#pragma once

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "platform/files.hpp"
#include "ringbus/bus.hpp"
#include "ringbus/record.hpp"

namespace ringbus::cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_damaged = 1;
inline constexpr int exit_error = 2;

// An error the tool reports and exits on; the message names the thing.
class Failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Format : std::uint8_t { text, json, hex };

// --- subcommands (one file each) ----------------------------------------------

struct TopicsArgs {
  std::string dir;
  Format format = Format::text;
};
int run_topics(const TopicsArgs& args, std::ostream& out);

struct StatArgs {
  std::string dir;
  std::string topic; // "" = every topic
  Format format = Format::text;
  std::int64_t interval_ms = 200; // between the two samples of a live writer's counters (0: no rate)
};
int run_stat(const StatArgs& args, std::ostream& out);

struct DumpArgs {
  std::string dir;
  std::string topic;
  std::optional<std::uint64_t> from_offset;
  std::optional<std::string> from_time; // ISO-8601 or ns since the epoch
  std::optional<std::uint64_t> count;
  Format format = Format::text;
};
int run_dump(const DumpArgs& args, std::ostream& out);

struct TailArgs {
  std::string dir;
  std::string topic;
  std::uint64_t last = 10; // -n
  bool follow = false;     // -f
  Format format = Format::text;
};
int run_tail(const TailArgs& args, std::ostream& out);

struct VerifyArgs {
  std::string dir;
  std::string topic; // "" = every topic
  bool repair = false;
  Format format = Format::text;
};
int run_verify(const VerifyArgs& args, std::ostream& out);

struct ProduceArgs {
  std::string dir;
  std::string topic;
  std::optional<char> key_separator;
  bool create = false;
  std::size_t segment_bytes = 0; // --create: 0 = the default
  std::size_t segment_count = 0;
};
int run_produce(const ProduceArgs& args, std::istream& in, std::ostream& out);

// bench.cpp: the benchmark run of ringbus-bench (bench/run_bench.hpp), when
// this build has it (RINGBUS_BUILD_BENCH); else exit_error and how to get it.
struct BenchArgs {
  bool quick = false;
  std::string filter; // "" = the headline scenarios (bench_headline_filter)
  int repetitions = 1;
  std::string results_dir; // "" = the source tree's bench/results
  bool no_results = false;
  std::string persist_dir = "/tmp";
  std::string chart;                       // "" = next to the results file, same stem, .svg
  std::optional<double> one_core_below_ns; // none = bench::default_one_core_below_ns
  std::string command;
};
// bench --one-core-below: its default and its largest value (bench/config.hpp's
// default_one_core_below_ns and max_one_core_below_ns; bench.cpp checks they agree).
inline constexpr double bench_default_one_core_below_ns = 150;
inline constexpr double bench_max_one_core_below_ns = 1e9;
// spsc_8B, spsc_64B, rtt, fanout_1to{1,2,3}, persist_append, replay, recover.
extern const char* const bench_headline_filter;
// "" when the text is a valid extended regular expression (as Google Benchmark reads a filter), else why not.
std::string bench_filter_problem(const std::string& filter);
int run_bench(const BenchArgs& args);

// --- shared helpers (common.cpp, topics.cpp) ------------------------------------

// What the files of one topic say (read-only, the way Bus::open recovers it).
struct TopicSummary {
  std::string name;
  TopicOptions options;
  std::uint64_t first_offset = 0; // oldest record held
  std::uint64_t end_offset = 0;   // offset the next record will get
  std::size_t segments = 0;       // segment files
  std::uint64_t file_bytes = 0;   // sizes of every file in the topic's directory
  std::uint64_t disk_bytes = 0;   // what the file system allocated for them
  std::string tail_cut;           // why recovery would cut the tail ("" when it ends cleanly)
  std::string error;              // the topic could not be read ("" when it could)
};
// Every topic of the bus directory dir (only `topic` when not empty: Failure when
// it does not exist), sorted by name.
std::vector<TopicSummary> summarize_topics(const std::string& dir, const std::string& topic = {});

// Set by SIGINT/SIGTERM (installed by main): long-running loops stop and exit 0.
// While a StopSignalsHeld lives, it also takes a signal held pending.
bool stop_requested() noexcept;
void install_stop_handlers();

// Holds SIGINT and SIGTERM pending (blocked in the calling thread, the tool's
// only one) while a loop polls and sleeps: stop_requested and
// sleep_unless_stopped then take them synchronously, so no handler has to
// run. Under ThreadSanitizer, which defers a handler to a call it
// intercepts, a `tail -f` lost the handler of its SIGTERM in some runs on a
// loaded machine (1 in 136 while it waited in poll, 6 in 138 while it slept
// in nanosleep) and never stopped. Released (release(), or the end of its
// scope) around output, so that a signal still ends a write blocked on a
// full pipe.
class StopSignalsHeld {
 public:
  StopSignalsHeld();
  ~StopSignalsHeld() { release(); }
  StopSignalsHeld(const StopSignalsHeld&) = delete;
  StopSignalsHeld& operator=(const StopSignalsHeld&) = delete;
  // Restores the mask from before (a signal still pending goes to the handler now).
  void release() noexcept;

 private:
  sigset_t old_mask_;
  bool held_ = true;
};
// While a StopSignalsHeld lives: sleeps for d, less when a stop signal
// comes; whether one did (or the handler's flag was already set).
bool sleep_unless_stopped(std::chrono::microseconds d) noexcept;

// Throws Failure unless dir is a directory holding a ringbus bus (a topics/
// directory or a LOCK file): a missing path, a file or a foreign directory is named.
void require_bus_directory(const std::string& dir);
// The bus on dir, read-only (no lock, nothing written).
Bus open_read_only(const std::string& dir);
// The topic directories of bus directory dir, sorted, narrowed to `topic`
// when given (Failure naming the topics there when it is not one of them).
// A creation a crash cut short (nothing but topic.meta.tmp) is not a topic.
// `topics` is not valid when the bus has no topics directory.
struct TopicListing {
  platform::FileDescriptor topics;
  std::vector<std::string> names;
  bool check_every_segment = true; // as Bus::open would recover them (detail/writer_boot.hpp)
};
TopicListing list_topics(const std::string& dir, const std::string& topic);
// Throws Failure naming the topic and the topics there are when bus lacks it.
void require_topic(const Bus& bus, const std::string& dir, const std::string& topic);
// The pid of the process holding dir's writer lock (DIR/LOCK), or nullopt when none does.
std::optional<long> writer_pid(const std::string& dir);

// 2024-05-01T12:34:56.123456789Z (UTC, nanoseconds).
std::string format_timestamp(std::int64_t ns);
// ns since the epoch from "1714566896123456789" or ISO-8601: YYYY-MM-DD, optionally
// followed by T (or a space) HH:MM[:SS[.fraction]], optionally Z or +HH:MM / -HH:MM
// (no zone: UTC). nullopt when it is neither.
std::optional<std::int64_t> parse_time(std::string_view text);
// Valid UTF-8 without control characters (bytes < 0x20, 0x7f): shown as text.
bool printable(ByteView bytes) noexcept;
std::string to_hex(ByteView bytes);
// A JSON string literal of text (quotes included; ", \ and control characters escaped).
std::string json_string(std::string_view text);

// One record in the format (text: one line; json: one object per line; hex:
// a heading line and a hexdump of key, headers and value).
void print_record(std::ostream& out, const Record& record, Format format);

} // namespace ringbus::cli
