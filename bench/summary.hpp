// The summary at the end of a run: per scenario, each impl's median and
// min-max over repetitions and its ratio to the best peer, the targets, and
// the results file named by commit, CPU and compiler.
#pragma once

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "config.hpp"
#include "grouping.hpp"
#include "run_info.hpp"

namespace ringbus::bench {

// Wraps the display reporter Google Benchmark would have used (so
// --benchmark_format still works), keeps every run for the summary, and
// shows each benchmark under its plain "<scenario>/<impl>" name (Google
// Benchmark would append "/iterations:N/manual_time").
class CollectingReporter : public benchmark::BenchmarkReporter {
 public:
  explicit CollectingReporter(benchmark::BenchmarkReporter* display) : display_(display) {}
  bool ReportContext(const Context& context) override;
  void ReportRuns(const std::vector<Run>& runs) override;
  void Finalize() override;
  [[nodiscard]] const std::vector<RunRecord>& runs() const noexcept { return runs_; }

 private:
  benchmark::BenchmarkReporter* display_;
  std::vector<RunRecord> runs_;
};

struct SummaryInput {
  RunInfo info;
  std::string command;     // the command line as given
  std::string load_before; // /proc/loadavg when the run started
  std::string load_after;  // and when it ended
  RunConfig config;
  double ns_per_tick = 1.0;
  int pin_failures = 0;
};

// The whole summary as Markdown (it reads as plain text on a terminal too),
// from the runs grouped by group_runs (grouping.hpp).
std::string render_summary(const std::vector<Scenario>& scenarios, const SummaryInput& input);

} // namespace ringbus::bench
