// A benchmark run (run_bench.hpp): the rows of every scenario, registered
// with Google Benchmark; progress lines; the summary, the results file and
// the chart. harness.hpp describes the scenarios, config.hpp what every impl
// shares, impls/ how each one is driven.

#include "run_bench.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <regex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "affinity.hpp"
#include "chart.hpp"
#include "config.hpp"
#include "fanout.hpp"
#include "group.hpp"
#include "grouping.hpp"
#include "harness.hpp"
#include "impls/atomic_queue.hpp"
#include "impls/boost_spsc.hpp"
#include "impls/floor.hpp"
#include "impls/moodycamel_cq.hpp"
#include "impls/moodycamel_group.hpp"
#include "impls/moodycamel_mpsc.hpp"
#include "impls/ringbus.hpp"
#include "impls/ringbus_fanout.hpp"
#include "impls/ringbus_group.hpp"
#include "impls/ringbus_persist.hpp"
#include "impls/ringbus_shared.hpp"
#include "impls/rwq.hpp"
#include "impls/rwq_copies.hpp"
#include "mpsc.hpp"
#include "persist.hpp"
#include "run_info.hpp"
#include "summary.hpp"
#include "temp_dir.hpp"

namespace ringbus::bench {

namespace {

// --- rows and progress ------------------------------------------------------------

// A registered row as Google Benchmark names it: "<scenario>/<impl>/iterations:N/manual_time".
struct RegisteredRow {
  std::string name; // "<scenario>/<impl>"
  std::int64_t iterations = 0;
  [[nodiscard]] std::string full_name() const {
    return name + "/iterations:" + std::to_string(iterations) + "/manual_time";
  }
};
std::vector<RegisteredRow> registered_rows;

// One line per row run (per repetition) on stderr: "[ 7/31] rtt/ringbus ... done (2.1 s)".
struct Progress {
  bool enabled = false;
  int total = 0;      // selected rows × repetitions, known before the first one starts
  int started = 0;    // rows begun so far
  int name_width = 0; // the longest selected row name: the "..." line up
  int number_width = 1;
};
Progress progress;

std::chrono::steady_clock::time_point progress_begin(const std::string& name) {
  if (progress.enabled) {
    ++progress.started;
    const int total = std::max(progress.total, progress.started);
    std::fprintf(stderr, "[%*d/%d] %-*s ... ", progress.number_width, progress.started, total, progress.name_width,
                 name.c_str());
    std::fflush(stderr);
  }
  return std::chrono::steady_clock::now();
}

void progress_end(std::chrono::steady_clock::time_point start, bool failed) {
  if (!progress.enabled) return;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "%s (%.1f s)\n", failed ? "FAILED" : "done", seconds);
  std::fflush(stderr);
}

// Every row: a fixed number of timed iterations, manual time, milliseconds.
// Google Benchmark calls run once per repetition (the iteration count is
// explicit, so it never runs a row to estimate one).
void add_row(const std::string& name, std::int64_t iterations, std::function<void(benchmark::State&)> run) {
  registered_rows.push_back(RegisteredRow{name, iterations});
  benchmark::RegisterBenchmark(name.c_str(),
                               [name, run = std::move(run)](benchmark::State& state) {
                                 const auto start = progress_begin(name);
                                 run(state);
                                 progress_end(start, state.error_occurred());
                               })
      ->Iterations(iterations)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

// --- the scenarios ------------------------------------------------------------------

RunConfig config_for(const BenchOptions& options, int cpus) {
  const bool quick = options.quick;
  const std::string& persist_dir = options.persist_dir;
  RunConfig c;
  c.quick = quick;
  c.one_core_below_ns = options.one_core_below_ns;
  // Undisturbed, a full run takes about 40 s per repetition (most of it in
  // the append rows, ~10 M records/s), --quick about 5 s.
  c.items_per_iteration = quick ? std::uint64_t{1} << 21 : std::uint64_t{1} << 23;
  c.iterations = quick ? 3 : 5;
  c.warmup_items = 4 * peer_slots;
  c.rtt_samples = quick ? 200'000 : 1'000'000;
  c.rtt_warmup = quick ? 20'000 : 100'000;
  c.fanout_items_per_iteration = quick ? std::uint64_t{1} << 21 : std::uint64_t{1} << 23;
  c.fanout_iterations = quick ? 3 : 5;
  c.cpus = cpus;
  // persist_append moves as much as spsc_64B; sync waits for the disk at every
  // commit (a few ms each here), so it moves far less.
  c.persist_items_per_iteration = c.items_per_iteration;
  c.persist_sync_items_per_iteration = quick ? std::uint64_t{1} << 14 : std::uint64_t{1} << 16;
  c.persist_sync_iterations = 3;
  c.persist_sync_warmup_items = 4 * batch_values;
  c.persist_log_bytes = quick ? std::uint64_t{128} << 20 : std::uint64_t{1} << 30;
  c.replay_iterations = 3;
  c.persist_dir = persist_dir;
  c.persist_filesystem = filesystem_name(persist_dir);
  return c;
}

template <class Impl>
void add_spsc(const std::string& scenario, std::string_view impl, const RunConfig& config) {
  add_row(scenario + "/" + std::string(impl), config.iterations,
          [config](benchmark::State& state) { spsc_throughput<Impl>(state, config); });
}

template <class P>
void add_spsc_scenario(const RunConfig& config) {
  const std::string scenario = "spsc_" + std::string(payload_label<P>);
  add_spsc<RingbusSpsc<P, RingbusWrite::batch>>(scenario, "ringbus_batch", config);
  add_spsc<RingbusSpsc<P, RingbusWrite::append>>(scenario, "ringbus_append", config);
  add_spsc<RingbusSpsc<P, RingbusWrite::append_nots>>(scenario, "ringbus_append_nots", config);
  add_spsc<RwqSpsc<P>>(scenario, "rwq", config);
  add_spsc<MoodycamelCqSpsc<P>>(scenario, "moodycamel_cq", config);
  add_spsc<AtomicQueueSpsc<P>>(scenario, "atomic_queue", config);
  add_spsc<BoostSpsc<P>>(scenario, "boost_spsc", config);
}

template <class Impl>
void add_rtt(std::string_view impl, const RunConfig& config) {
  add_row("rtt/" + std::string(impl), 1, [config](benchmark::State& state) { round_trip<Impl>(state, config); });
}

void add_rtt_scenario(const RunConfig& config) {
  add_rtt<RingbusRtt<ringbus::TimestampSource::wall_clock>>("ringbus", config);
  add_rtt<RingbusRtt<ringbus::TimestampSource::none>>("ringbus_nots", config);
  add_rtt<RwqRtt>("rwq", config);
  add_rtt<MoodycamelCqRtt>("moodycamel_cq", config);
  add_rtt<AtomicQueueRtt>("atomic_queue", config);
  add_rtt<BoostSpscRtt>("boost_spsc", config);
  add_rtt<FloorRtt>("floor", config);
  add_rtt<FloorStampedRtt>("floor_stamped", config);
}

template <class Impl>
void add_fanout(const std::string& scenario, std::string_view impl, std::size_t consumers, const RunConfig& config) {
  add_row(scenario + "/" + std::string(impl), config.fanout_iterations,
          [config, consumers](benchmark::State& state) { fanout_throughput<Impl>(state, config, consumers); });
}

// fanout_1to{1,2,3}: one producer to N consumers, each receiving every item.
void add_fanout_scenario(const RunConfig& config) {
  for (std::size_t consumers = 1; consumers <= 3; ++consumers) {
    const std::string scenario = "fanout_1to" + std::to_string(consumers);
    add_fanout<RingbusFanout>(scenario, "ringbus", consumers, config);
    add_fanout<RwqCopiesFanout>(scenario, "rwq_copies", consumers, config);
  }
}

template <class Impl>
void add_group(std::string_view impl, std::size_t consumers, const RunConfig& config) {
  add_row("group_" + std::to_string(consumers) + "C/" + std::string(impl), config.fanout_iterations,
          [config, consumers](benchmark::State& state) { group_throughput<Impl>(state, config, consumers); });
}

template <class Impl>
void add_mpsc(std::string_view impl, const RunConfig& config) {
  add_row("mpsc_4P/" + std::string(impl), config.iterations,
          [config](benchmark::State& state) { mpsc_throughput<Impl>(state, config); });
}

// mpsc_4P: four producer threads into one consumer, 8 B items (SharedProducer against ConcurrentQueue).
void add_mpsc_scenario(const RunConfig& config) {
  add_mpsc<RingbusSharedMpsc>("ringbus_shared", config);
  add_mpsc<MoodycamelCqMpsc>("moodycamel_cq", config);
}

// group_3C: one producer, 3 competing consumers, each item delivered once.
void add_group_scenario(const RunConfig& config) {
  add_group<RingbusGroup>("ringbus", 3, config);
  add_group<MoodycamelCqGroup>("moodycamel_cq", 3, config);
}

template <class Impl>
void add_persist_append(std::string_view impl, const RunConfig& config) {
  add_row("persist_append/" + std::string(impl), config.iterations,
          [config](benchmark::State& state) { spsc_throughput<Impl>(state, config); });
}

void add_log_row(const std::string& name, void (*run)(benchmark::State&, const RunConfig&), std::int64_t iterations,
                 const RunConfig& config) {
  add_row(name, iterations, [config, run](benchmark::State& state) { run(state, config); });
}

// persist_append/{memory,none,interval,sync}: spsc_64B/ringbus_batch on an
// in-memory topic and on persistent topics of each durability (see
// impls/ringbus_persist.hpp). replay/{ringbus,memcpy_floor} and
// recover/ringbus: a topic of persist_log_bytes read from offset 0, and
// opened after a SIGKILL (see persist.hpp).
void add_persist_scenarios(const RunConfig& config) {
  RunConfig append = config;
  append.items_per_iteration = config.persist_items_per_iteration;
  add_persist_append<RingbusPersistSpsc<PersistMode::memory>>("memory", append);
  add_persist_append<RingbusPersistSpsc<PersistMode::none>>("none", append);
  add_persist_append<RingbusPersistSpsc<PersistMode::interval>>("interval", append);
  RunConfig sync = config;
  sync.items_per_iteration = config.persist_sync_items_per_iteration;
  sync.iterations = config.persist_sync_iterations;
  sync.warmup_items = config.persist_sync_warmup_items;
  add_persist_append<RingbusPersistSpsc<PersistMode::sync>>("sync", sync);
  add_log_row("replay/ringbus", replay_ringbus, config.replay_iterations, config);
  add_log_row("replay/memcpy_floor", replay_memcpy_floor, config.replay_iterations, config);
  add_log_row("recover/ringbus", recover_ringbus, 1, config);
}

void add_every_scenario(const RunConfig& config) {
  add_spsc_scenario<Payload8>(config);
  add_spsc_scenario<Payload64>(config);
  add_rtt_scenario(config);
  add_fanout_scenario(config);
  add_group_scenario(config);
  add_mpsc_scenario(config);
  add_persist_scenarios(config);
}

void add_context(const RunInfo& info, const RunConfig& config, bool quick) {
  if (static_cast<std::size_t>(info.allowed_cpus) < mpsc_producers + 1) {
    benchmark::AddCustomContext("mpsc", "threads outnumber the " + std::to_string(info.allowed_cpus) +
                                            " CPUs in mpsc_4P (" + std::to_string(mpsc_producers) +
                                            " producers + 1 consumer); every wait yields");
  }
  benchmark::AddCustomContext("timing", "manual wall time per iteration (see the summary)");
  benchmark::AddCustomContext("persist_dir", config.persist_dir + " (" + config.persist_filesystem + ")" +
                                                 (quick ? "; --quick: replay and recover use a 128 MiB log"
                                                        : "; replay and recover use a 1 GiB log"));
  benchmark::AddCustomContext("pinning",
                              "producer CPU 0, consumer CPU 1; fanout_1toN: consumer i on CPU (1 + i) mod "
                              "CPUs allowed");
  if (info.allowed_cpus < 4) {
    benchmark::AddCustomContext("fanout", "threads outnumber the " + std::to_string(info.allowed_cpus) +
                                              " CPUs from fanout_1to" + std::to_string(std::max(info.allowed_cpus, 1)) +
                                              " on (N + 1 threads); every wait yields");
  }
}

// --- the filter ----------------------------------------------------------------------

// The rows a filter selects, by Google Benchmark 1.7's rule (FindBenchmarks):
// "" and "all" select every row, a leading '-' negates, otherwise an extended
// regular expression searched for in the full name. Throws std::regex_error.
std::vector<const RegisteredRow*> selected_rows(std::string filter) {
  if (filter.empty() || filter == "all") filter = ".";
  bool negative = false;
  if (filter.front() == '-') {
    negative = true;
    filter.erase(0, 1);
  }
  const std::regex re(filter, std::regex::extended);
  std::vector<const RegisteredRow*> out;
  for (const RegisteredRow& row : registered_rows) {
    if (std::regex_search(row.full_name(), re) != negative) out.push_back(&row);
  }
  return out;
}

// --benchmark_repetitions=N among the flags (the last one wins); 1 without it.
int repetitions_in(const std::vector<std::string>& flags) {
  int repetitions = 1;
  for (const std::string& flag : flags) {
    for (const std::string_view prefix : {"--benchmark_repetitions=", "-benchmark_repetitions="}) {
      if (flag.starts_with(prefix)) repetitions = std::max(1, std::atoi(flag.c_str() + prefix.size()));
    }
  }
  return repetitions;
}

// --- output ----------------------------------------------------------------------------

// Shows nothing: ringbus bench prints progress lines and the summary instead.
class SilentReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

// Written next to its final name first, then renamed: never half a file.
bool write_file(const std::filesystem::path& path, const std::string& text) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) return false;
  }
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

std::string results_variant(const BenchOptions& options, const std::string& filter) {
  if (!options.selection.empty()) return options.selection + (options.quick ? "-quick" : "");
  const bool partial = !filter.empty() && filter != "." && filter != "all";
  if (partial) return "partial";
  return options.quick ? "quick" : "";
}

} // namespace

std::string default_results_dir() { return RINGBUS_BENCH_RESULTS_DIR; }

BenchStatus run_bench(const BenchOptions& options) {
  const bool cli = options.frontend == Frontend::cli;
  const std::string error_prefix = options.program + (cli ? ": error: " : ": ");
  if (!(options.one_core_below_ns >= 0 && options.one_core_below_ns <= max_one_core_below_ns)) { // NaN too
    std::cerr << error_prefix << "the one-core threshold (" << (cli ? "--one-core-below" : "--one_core_below_ns")
              << ") must be a number of ns from 0 to 1e9, not " << options.one_core_below_ns << '\n';
    return BenchStatus::bad_arguments;
  }

  std::vector<std::string> arg_strings{options.program};
  arg_strings.insert(arg_strings.end(), options.benchmark_flags.begin(), options.benchmark_flags.end());
  std::vector<char*> argv;
  for (std::string& s : arg_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(arg_strings.size());
  benchmark::Initialize(&argc, argv.data(),
                        options.print_help != nullptr ? options.print_help : &benchmark::PrintDefaultHelp);
  if (benchmark::ReportUnrecognizedArguments(argc, argv.data())) return BenchStatus::bad_arguments;

  const std::string load_before = load_average();
  RunInfo info = collect_run_info(); // before pinning: it records the CPUs the process may use
  pin_this_thread(producer_cpu);
  persist_root = options.persist_dir;
  const RunConfig config = config_for(options, info.allowed_cpus);
  add_every_scenario(config);
  add_context(info, config, options.quick);

  const std::string filter = benchmark::GetBenchmarkFilter();
  if (cli) {
    std::vector<const RegisteredRow*> rows;
    try {
      rows = selected_rows(filter);
    } catch (const std::regex_error& e) {
      std::cerr << error_prefix << "the filter '" << filter << "' is not an extended regular expression: " << e.what()
                << '\n';
      return BenchStatus::bad_arguments;
    }
    if (rows.empty()) {
      std::cerr << error_prefix << "the filter '" << filter << "' matches none of the " << registered_rows.size()
                << " rows:";
      for (const RegisteredRow& row : registered_rows) std::cerr << ' ' << row.name;
      std::cerr << '\n';
      return BenchStatus::bad_arguments;
    }
    progress.enabled = true;
    progress.total = static_cast<int>(rows.size()) * repetitions_in(options.benchmark_flags);
    progress.number_width = static_cast<int>(std::to_string(progress.total).size());
    for (const RegisteredRow* row : rows) {
      progress.name_width = std::max(progress.name_width, static_cast<int>(row->name.size()));
    }
  }
  ns_per_tick = measure_ns_per_tick(std::chrono::milliseconds(options.quick ? 20 : 100));

  SilentReporter silent;
  benchmark::BenchmarkReporter* display = cli ? &silent : benchmark::CreateDefaultDisplayReporter();
  CollectingReporter reporter(display);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  if (reporter.runs().empty()) return BenchStatus::ok; // e.g. --benchmark_list_tests

  SummaryInput input;
  input.info = std::move(info);
  input.command = options.command;
  input.load_before = load_before;
  input.load_after = load_average();
  input.config = config;
  input.ns_per_tick = ns_per_tick;
  input.pin_failures = pin_failures();
  const std::vector<Scenario> scenarios = group_runs(reporter.runs(), config.one_core_below_ns);
  const std::string summary = render_summary(scenarios, input);
  // Keep a JSON or CSV display (--benchmark_format) parseable: the summary then goes to stderr.
  std::ostream& out = cli || dynamic_cast<benchmark::ConsoleReporter*>(display) != nullptr ? std::cout : std::cerr;
  out << (cli ? "" : "\n") << summary << std::flush;
  // ringbus bench: standard output holds the summary alone (it is Markdown); the rest goes to stderr.
  std::ostream& notes = cli ? std::cerr : out;

  BenchStatus status = BenchStatus::ok;
  std::filesystem::path results_path;
  if (options.write_results) {
    const std::string dir = options.results_dir.empty() ? default_results_dir() : options.results_dir;
    results_path = std::filesystem::path(dir) / results_file_name(input.info, results_variant(options, filter));
    if (write_file(results_path, summary)) {
      notes << (cli ? "" : "\n") << "results written to " << results_path.string() << '\n';
    } else {
      std::cerr << error_prefix << "cannot write " << results_path.string() << '\n';
      status = BenchStatus::cannot_write;
    }
  }
  std::filesystem::path chart_path = options.chart_path;
  if (chart_path.empty() && options.chart_next_to_results && !results_path.empty()) {
    chart_path = results_path;
    chart_path.replace_extension(".svg");
  }
  if (!chart_path.empty()) {
    ChartInput chart;
    chart.info = input.info;
    chart.quick = options.quick;
    chart.repetitions = repetitions_of(scenarios);
    if (write_file(chart_path, render_chart(scenarios, chart))) {
      notes << "chart written to " << chart_path.string() << '\n';
    } else {
      std::cerr << error_prefix << "cannot write " << chart_path.string() << '\n';
      status = BenchStatus::cannot_write;
    }
  }
  if (status != BenchStatus::ok) return status;
  const bool failed = std::any_of(scenarios.begin(), scenarios.end(), [](const Scenario& s) {
    return std::any_of(s.rows.begin(), s.rows.end(), [](const Row& r) { return !r.error.empty(); });
  });
  return failed ? BenchStatus::rows_failed : BenchStatus::ok;
}

} // namespace ringbus::bench
