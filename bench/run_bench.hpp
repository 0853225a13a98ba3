// One entry point for a benchmark run, shared by `ringbus-bench` (main.cpp)
// and the `ringbus bench` subcommand (src/cli/bench.cpp): it registers every
// scenario with every impl, runs those the filter selects (Google
// Benchmark), prints the summary (summary.hpp), writes the results file and,
// when asked, the chart (chart.hpp). This header needs no Google Benchmark.
#pragma once

#include <string>
#include <vector>

#include "config.hpp"

namespace ringbus::bench {

// Who runs it; what differs:
//  - bench_tool (ringbus-bench): Google Benchmark's display on stdout, then
//    the summary; a filter that matches nothing runs nothing (exit 0).
//  - cli (ringbus bench): no Google Benchmark display; one progress line per
//    row run on stderr; stdout holds the summary alone; file paths on
//    stderr; a filter that is not a regular expression or matches no row is
//    an error.
enum class Frontend { bench_tool, cli };

struct BenchOptions {
  Frontend frontend = Frontend::bench_tool;
  std::string program = "ringbus-bench"; // error messages begin with it
  std::string command;                   // the command line, recorded in the results file
  bool quick = false;
  bool write_results = true;
  std::string results_dir; // "" = default_results_dir()
  std::string persist_dir = "/tmp";
  // spsc_* and rtt runs whose placement probe reads less are set aside as
  // run on one core (placement.hpp); 0 sets none aside.
  double one_core_below_ns = default_one_core_below_ns;
  // The chart (SVG): chart_path when not empty, else next to the results
  // file (same stem, .svg) when chart_next_to_results and results are written.
  std::string chart_path;
  bool chart_next_to_results = false;
  // What the filter selects, for the results file's name: "" = decide from
  // the filter (none: the full set, no suffix; any other: "_partial"); or a
  // name for a set the frontend chose, e.g. "headline" (ringbus bench's
  // default). --quick adds "_quick" ("_headline-quick"), except to "_partial".
  std::string selection;
  // Google Benchmark's flags (--benchmark_filter=..., --benchmark_repetitions=N, ...).
  std::vector<std::string> benchmark_flags;
  void (*print_help)() = nullptr; // for --help among benchmark_flags
};

enum class BenchStatus {
  ok,            // every selected row ran and passed its checks
  rows_failed,   // a row FAILED its check (the summary says which)
  bad_arguments, // a flag Google Benchmark does not know, a bad filter, a filter that matches nothing (cli)
  cannot_write,  // the results file or the chart
};

// Where results files go by default: bench/results of the source tree.
std::string default_results_dir();

// Runs once per process (Google Benchmark keeps global state).
BenchStatus run_bench(const BenchOptions& options);

} // namespace ringbus::bench
