// ringbus-bench: ringbus against moodycamel::ReaderWriterQueue,
// moodycamel::ConcurrentQueue, atomic_queue and boost::lockfree::spsc_queue,
// in one executable and one run. harness.hpp describes the scenarios,
// config.hpp what every impl shares, impls/ how each one is driven.
//
//   ringbus-bench [--quick] [--results_dir=DIR | --no_results] [--persist_dir=DIR] [Google Benchmark flags]
//
// e.g. ringbus-bench --benchmark_repetitions=5, or --benchmark_filter=rtt.
// At the end it prints a summary (ratios to the best peer, the targets) and
// writes it to bench/results/<commit>_<cpu>_<compiler>.md.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "affinity.hpp"
#include "config.hpp"
#include "fanout.hpp"
#include "group.hpp"
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

namespace {

using namespace ringbus::bench;

struct Options {
  bool quick = false;
  bool write_results = true;
  std::string results_dir = RINGBUS_BENCH_RESULTS_DIR;
  std::string persist_dir = "/tmp";
  std::string command;
};

// Takes our own flags out of argv (Google Benchmark rejects flags it does not know).
Options take_own_flags(int& argc, char** argv) {
  Options options;
  for (int i = 0; i < argc; ++i) {
    if (i != 0) options.command += ' ';
    options.command += argv[i];
  }
  int kept = argc > 0 ? 1 : 0;
  for (int i = kept; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--quick") {
      options.quick = true;
    } else if (arg == "--no_results") {
      options.write_results = false;
    } else if (arg.rfind("--persist_dir=", 0) == 0) {
      options.persist_dir = std::string(arg.substr(std::strlen("--persist_dir=")));
    } else if (arg.rfind("--results_dir=", 0) == 0) {
      options.results_dir = std::string(arg.substr(std::strlen("--results_dir=")));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  argv[argc] = nullptr;
  return options;
}

void print_help() {
  std::printf(
      "ringbus-bench: ringbus against its peers (rwq, moodycamel_cq, atomic_queue, boost_spsc).\n"
      "  --quick              fewer items and round trips: the whole run takes under a minute\n"
      "  --results_dir=DIR    where the results file goes (default %s)\n"
      "  --persist_dir=DIR    where persist_append, replay and recover make their bus directories (default /tmp;\n"
      "                       each run's is removed after it)\n"
      "  --no_results         write no results file\n"
      "Google Benchmark flags pass through, e.g. --benchmark_repetitions=5, --benchmark_filter=rtt,\n"
      "--benchmark_enable_random_interleaving=true (spreads repetitions over time on a shared machine).\n"
      "Filters see the full names, which end in /iterations:N/manual_time: --benchmark_filter='spsc_8B/rwq/'.\n\n",
      RINGBUS_BENCH_RESULTS_DIR);
  benchmark::PrintDefaultHelp();
}

RunConfig config_for(bool quick, int cpus, const std::string& persist_dir) {
  RunConfig c;
  c.quick = quick;
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
  benchmark::RegisterBenchmark((scenario + "/" + std::string(impl)).c_str(),
                               [config](benchmark::State& state) { spsc_throughput<Impl>(state, config); })
      ->Iterations(config.iterations)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
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
  benchmark::RegisterBenchmark(("rtt/" + std::string(impl)).c_str(),
                               [config](benchmark::State& state) { round_trip<Impl>(state, config); })
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

void add_rtt_scenario(const RunConfig& config) {
  add_rtt<RingbusRtt<ringbus::TimestampSource::wall_clock>>("ringbus", config);
  add_rtt<RingbusRtt<ringbus::TimestampSource::none>>("ringbus_nots", config);
  add_rtt<RwqRtt>("rwq", config);
  add_rtt<MoodycamelCqRtt>("moodycamel_cq", config);
  add_rtt<AtomicQueueRtt>("atomic_queue", config);
  add_rtt<BoostSpscRtt>("boost_spsc", config);
  add_rtt<FloorRtt>("floor", config);
}

template <class Impl>
void add_fanout(const std::string& scenario, std::string_view impl, std::size_t consumers, const RunConfig& config) {
  benchmark::RegisterBenchmark(
      (scenario + "/" + std::string(impl)).c_str(),
      [config, consumers](benchmark::State& state) { fanout_throughput<Impl>(state, config, consumers); })
      ->Iterations(config.fanout_iterations)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
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
  benchmark::RegisterBenchmark(
      ("group_" + std::to_string(consumers) + "C/" + std::string(impl)).c_str(),
      [config, consumers](benchmark::State& state) { group_throughput<Impl>(state, config, consumers); })
      ->Iterations(config.fanout_iterations)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

template <class Impl>
void add_mpsc(std::string_view impl, const RunConfig& config) {
  benchmark::RegisterBenchmark(("mpsc_4P/" + std::string(impl)).c_str(),
                               [config](benchmark::State& state) { mpsc_throughput<Impl>(state, config); })
      ->Iterations(config.iterations)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
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
  benchmark::RegisterBenchmark(("persist_append/" + std::string(impl)).c_str(),
                               [config](benchmark::State& state) { spsc_throughput<Impl>(state, config); })
      ->Iterations(config.iterations)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

void add_log_row(const std::string& name, void (*run)(benchmark::State&, const RunConfig&), std::int64_t iterations,
                 const RunConfig& config) {
  benchmark::RegisterBenchmark(name.c_str(), [config, run](benchmark::State& state) { run(state, config); })
      ->Iterations(iterations)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
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

} // namespace

int main(int argc, char** argv) {
  const Options options = take_own_flags(argc, argv);
  benchmark::Initialize(&argc, argv, print_help);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  const std::string load_before = load_average();
  RunInfo info = collect_run_info(); // before pinning: it records the CPUs the process may use
  pin_this_thread(producer_cpu);
  persist_root = options.persist_dir;
  const RunConfig config = config_for(options.quick, info.allowed_cpus, options.persist_dir);
  ns_per_tick = measure_ns_per_tick(std::chrono::milliseconds(options.quick ? 20 : 100));

  add_spsc_scenario<Payload8>(config);
  add_spsc_scenario<Payload64>(config);
  add_rtt_scenario(config);
  add_fanout_scenario(config);
  add_group_scenario(config);
  add_mpsc_scenario(config);
  add_persist_scenarios(config);
  if (static_cast<std::size_t>(info.allowed_cpus) < mpsc_producers + 1) {
    benchmark::AddCustomContext("mpsc", "threads outnumber the " + std::to_string(info.allowed_cpus) +
                                            " CPUs in mpsc_4P (" + std::to_string(mpsc_producers) +
                                            " producers + 1 consumer); every wait yields");
  }
  benchmark::AddCustomContext("timing", "manual wall time per iteration (see the summary)");
  benchmark::AddCustomContext("persist_dir", config.persist_dir + " (" + config.persist_filesystem + ")" +
                                                 (options.quick ? "; --quick: replay and recover use a 128 MiB log"
                                                                : "; replay and recover use a 1 GiB log"));
  benchmark::AddCustomContext("pinning",
                              "producer CPU 0, consumer CPU 1; fanout_1toN: consumer i on CPU (1 + i) mod "
                              "CPUs allowed");
  if (info.allowed_cpus < 4) {
    benchmark::AddCustomContext("fanout", "threads outnumber the " + std::to_string(info.allowed_cpus) +
                                              " CPUs from fanout_1to" + std::to_string(std::max(info.allowed_cpus, 1)) +
                                              " on (N + 1 threads); every wait yields");
  }

  benchmark::BenchmarkReporter* display = benchmark::CreateDefaultDisplayReporter();
  CollectingReporter reporter(display);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  if (reporter.runs().empty()) return 0; // e.g. --benchmark_list_tests

  SummaryInput input;
  input.info = std::move(info);
  input.command = options.command;
  input.load_before = load_before;
  input.load_after = load_average();
  input.config = config;
  input.ns_per_tick = ns_per_tick;
  input.pin_failures = pin_failures();
  const std::string summary = render_summary(reporter.runs(), input);
  // Keep a JSON or CSV display (--benchmark_format) parseable: the summary then goes to stderr.
  std::ostream& out = dynamic_cast<benchmark::ConsoleReporter*>(display) != nullptr ? std::cout : std::cerr;
  out << '\n' << summary << std::flush;

  if (options.write_results) {
    const std::string filter = benchmark::GetBenchmarkFilter();
    const bool partial = !filter.empty() && filter != "." && filter != "all";
    const std::string_view variant = partial ? "partial" : (options.quick ? "quick" : "");
    const std::filesystem::path path =
        std::filesystem::path(options.results_dir) / results_file_name(input.info, variant);
    if (write_file(path, summary)) {
      out << "\nresults written to " << path.string() << '\n';
    } else {
      std::cerr << "ringbus-bench: cannot write " << path.string() << '\n';
      return 1;
    }
  }
  return 0;
}
