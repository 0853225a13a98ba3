// The summary at the end of a run: per scenario, each impl's median and
// min-max over repetitions and its ratio to the best peer, the targets, and
// the results file named by commit, CPU and compiler.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config.hpp"
#include "run_info.hpp"

namespace ringbus::bench {

// One run (one repetition) of one benchmark, as the summary needs it.
struct RunRecord {
  std::string name;              // "<scenario>/<impl>", e.g. "spsc_8B/ringbus_batch"
  std::int64_t family_index = 0; // registration order
  bool failed = false;
  std::string error;
  std::map<std::string, double> counters; // items_per_second, bytes_per_second, p50_ns, ...
};

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

// The whole summary as Markdown (it reads as plain text on a terminal too).
std::string render_summary(const std::vector<RunRecord>& runs, const SummaryInput& input);

} // namespace ringbus::bench
