// ringbus-bench: ringbus against moodycamel::ReaderWriterQueue,
// moodycamel::ConcurrentQueue, atomic_queue and boost::lockfree::spsc_queue,
// in one executable and one run. The run itself is run_bench.cpp, shared
// with `ringbus bench` (src/cli/bench.cpp); this file reads the flags.
//
//   ringbus-bench [--quick] [--results_dir=DIR | --no_results] [--persist_dir=DIR] [--chart=FILE]
//                 [--one_core_below_ns=NS] [Google Benchmark flags]
//
// e.g. ringbus-bench --benchmark_repetitions=5, or --benchmark_filter=rtt.
// At the end it prints a summary (ratios to the best peer, the targets) and
// writes it to bench/results/<commit>_<cpu>_<compiler>.md.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "run_bench.hpp"

namespace {

using namespace ringbus::bench;

// Our own flags; everything else is Google Benchmark's (it rejects flags it
// does not know). nullopt, having said why, when one of ours is malformed.
std::optional<BenchOptions> take_own_flags(int argc, char** argv) {
  BenchOptions options;
  options.frontend = Frontend::bench_tool;
  options.program = "ringbus-bench";
  for (int i = 0; i < argc; ++i) {
    if (i != 0) options.command += ' ';
    options.command += argv[i];
  }
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--quick") {
      options.quick = true;
    } else if (arg == "--no_results") {
      options.write_results = false;
    } else if (arg.rfind("--persist_dir=", 0) == 0) {
      options.persist_dir = std::string(arg.substr(std::strlen("--persist_dir=")));
    } else if (arg.rfind("--results_dir=", 0) == 0) {
      options.results_dir = std::string(arg.substr(std::strlen("--results_dir=")));
    } else if (arg.rfind("--chart=", 0) == 0) {
      options.chart_path = std::string(arg.substr(std::strlen("--chart=")));
    } else if (arg.rfind("--one_core_below_ns=", 0) == 0) {
      const std::string text(arg.substr(std::strlen("--one_core_below_ns=")));
      char* end = nullptr;
      const double ns = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !(ns >= 0 && ns <= max_one_core_below_ns)) {
        std::fprintf(stderr,
                     "ringbus-bench: --one_core_below_ns: '%s' is not a number of ns from 0 to 1e9 (0 sets nothing "
                     "aside)\n",
                     text.c_str());
        return std::nullopt;
      }
      options.one_core_below_ns = ns;
    } else {
      options.benchmark_flags.emplace_back(arg);
    }
  }
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
      "  --chart=FILE         also draw the chart of the run (SVG) into FILE (`ringbus bench` draws it by default)\n"
      "  --one_core_below_ns=NS\n"
      "                       set aside spsc and rtt runs whose placement probe (a bare round trip between the two\n"
      "                       CPUs) takes less than NS ns, as run on one physical core (default %.0f; 0: none)\n"
      "Google Benchmark flags pass through, e.g. --benchmark_repetitions=5, --benchmark_filter=rtt,\n"
      "--benchmark_enable_random_interleaving=true (spreads repetitions over time on a shared machine).\n"
      "Filters see the full names, which end in /iterations:N/manual_time: --benchmark_filter='spsc_8B/rwq/'.\n\n",
      default_results_dir().c_str(), default_one_core_below_ns);
  benchmark::PrintDefaultHelp();
}

} // namespace

int main(int argc, char** argv) {
  std::optional<BenchOptions> options = take_own_flags(argc, argv);
  if (!options) return 1;
  options->print_help = print_help;
  switch (run_bench(*options)) {
    case BenchStatus::ok:
    case BenchStatus::rows_failed: return 0; // the summary says FAILED on the row
    case BenchStatus::bad_arguments:
    case BenchStatus::cannot_write: return 1;
  }
  return 1;
}
