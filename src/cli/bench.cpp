// ringbus bench: the headline scenarios of ringbus-bench (spsc, rtt, fan-out,
// persistence) with the peers, through the same run (bench/run_bench.hpp):
// progress lines on stderr, the summary table on stdout, the results file and
// the chart (SVG) next to it. A build without benchmarks (RINGBUS_BUILD_BENCH
// off, as in the asan and tsan presets) says so and how to get them.
#include <csignal>
#include <regex>
#include <string>

#include "cli/cli.hpp"

#if RINGBUS_CLI_HAS_BENCH
#include "run_bench.hpp"
#endif

namespace ringbus::cli {

#if RINGBUS_CLI_HAS_BENCH
static_assert(bench_default_one_core_below_ns == bench::default_one_core_below_ns);
static_assert(bench_max_one_core_below_ns == bench::max_one_core_below_ns);
#endif

const char* const bench_headline_filter = "^(spsc_8B|spsc_64B|rtt|fanout_1to[0-9]+|persist_append|replay|recover)/";

std::string bench_filter_problem(const std::string& filter) {
  // Google Benchmark's rule: a leading '-' negates the rest.
  const std::string pattern = !filter.empty() && filter.front() == '-' ? filter.substr(1) : filter;
  try {
    const std::regex re(pattern, std::regex::extended);
  } catch (const std::regex_error& e) {
    return e.what();
  }
  return {};
}

int run_bench(const BenchArgs& args) {
#if RINGBUS_CLI_HAS_BENCH
  // No loop here asks stop_requested(): Ctrl-C and SIGTERM end a run at once, as they end ringbus-bench.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  bench::BenchOptions options;
  options.frontend = bench::Frontend::cli;
  options.program = "ringbus";
  options.command = args.command;
  options.quick = args.quick;
  options.write_results = !args.no_results;
  options.results_dir = args.results_dir;
  options.persist_dir = args.persist_dir;
  options.chart_path = args.chart;
  if (args.one_core_below_ns) options.one_core_below_ns = *args.one_core_below_ns;
  options.chart_next_to_results = true;
  options.selection = args.filter.empty() ? "headline" : "";
  options.benchmark_flags = {"--benchmark_filter=" + (args.filter.empty() ? bench_headline_filter : args.filter),
                             "--benchmark_repetitions=" + std::to_string(args.repetitions)};
  switch (bench::run_bench(options)) {
    case bench::BenchStatus::ok: return exit_ok;
    case bench::BenchStatus::rows_failed: return exit_damaged;
    case bench::BenchStatus::bad_arguments:
    case bench::BenchStatus::cannot_write: return exit_error;
  }
  return exit_error;
#else
  (void)args;
  throw Failure(
      "this build of ringbus has no benchmarks (it was configured with RINGBUS_BUILD_BENCH=OFF, as the asan and "
      "tsan presets are); build one with them: `cmake --preset release && cmake --build --preset release --target "
      "ringbus-cli` (needs libbenchmark-dev, libboost-dev, libreaderwriterqueue-dev, libconcurrentqueue-dev and "
      "libatomic-queue-dev: scripts/deps.sh installs them), then build/release/ringbus bench");
#endif
}

} // namespace ringbus::cli
