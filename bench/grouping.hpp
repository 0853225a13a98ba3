// The runs of a benchmark run grouped by scenario and impl, and the number
// each scenario is ranked by: what the summary's tables (summary.cpp) and the
// chart (chart.cpp) both read, so that a ratio in one is the ratio in the other.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringbus::bench {

// One run (one repetition) of one benchmark, as Google Benchmark reported it.
struct RunRecord {
  std::string name;              // "<scenario>/<impl>", e.g. "spsc_8B/ringbus_batch"
  std::int64_t family_index = 0; // registration order
  bool failed = false;
  std::string error;
  std::map<std::string, double> counters; // items_per_second, bytes_per_second, p50_ns, ...
};

struct Stats {
  double median = 0;
  double min = 0;
  double max = 0;
};

// A run whose placement probe (placement.hpp) found the two CPUs on the two
// hyperthreads of one physical core, before or after its timed region: a
// probe below one_core_below_ns (0: never).
bool on_one_core(const RunRecord& run, double one_core_below_ns);

// All repetitions of one impl in one scenario.
struct Row {
  std::string impl;
  std::vector<const RunRecord*> runs;     // the successful ones, measured on two cores
  std::vector<const RunRecord*> one_core; // the successful ones on_one_core: set aside
  std::string error;                      // of the first failed one ("" when none failed)

  // Median, min and max of a counter over `runs`; nullopt when none has it.
  [[nodiscard]] std::optional<Stats> stats(const std::string& counter) const;
  // The same over the runs set aside.
  [[nodiscard]] std::optional<Stats> one_core_stats(const std::string& counter) const;
};

struct Scenario {
  std::string name;
  std::vector<Row> rows; // in registration order
};

// Scenarios and rows in registration order, whatever order the runs came in
// (e.g. with --benchmark_enable_random_interleaving). The rows point into runs.
// A run on_one_core(run, one_core_below_ns) goes to Row::one_core.
std::vector<Scenario> group_runs(const std::vector<RunRecord>& runs, double one_core_below_ns);

// The most successful repetitions any row had.
int repetitions_of(const std::vector<Scenario>& scenarios);

// rwq, moodycamel_cq, atomic_queue, boost_spsc, rwq_copies: what ringbus is
// measured against (not floor, memcpy_floor or ringbus's own rows).
bool is_peer(std::string_view impl);
// A physical limit shown for scale, not a peer: rtt/floor, rtt/floor_stamped, replay/memcpy_floor.
bool is_floor(std::string_view impl);
// ringbus's own rows (persist_append's rows are all ringbus topics).
bool is_ringbus(std::string_view scenario, std::string_view impl);

const Row* row_named(const Scenario& scenario, std::string_view impl);

// The peer with the best median of a counter.
struct Best {
  const Row* row = nullptr; // nullptr if no peer ran
  double median = 0;
};
// one_core: among the runs set aside (Row::one_core) instead.
Best best_peer(const Scenario& scenario, const std::string& counter, bool higher_is_better, bool one_core = false);

// recover/ringbus: Bus::open after a SIGKILL should take at most this.
inline constexpr double recover_target_ms = 50;

// The counter a scenario's rows are ranked by, and what their ratios are to.
struct Headline {
  std::string_view counter; // e.g. "items_per_second"
  bool higher_is_better = true;
  std::string_view unit;      // "items/s", "bytes/s", "p50 ns", "ms"
  std::string_view reference; // "" = the best peer; else the row of the scenario named so
  double fixed_reference = 0; // not 0: the ratio is to this value of the counter (a target)
};
// nullopt for a scenario this file does not know.
std::optional<Headline> headline_of(std::string_view scenario);

// What a scenario's ratios are to: the best peer's median, a reference row's
// median, or a fixed target.
struct Reference {
  const Row* row = nullptr; // the row, when the reference is one
  double value = 0;         // 0: there is none (it did not run, or failed)
  std::string label;        // "best peer boost_spsc", "memory", "the 50 ms target"
};
Reference reference_of(const Scenario& scenario, const Headline& headline);

} // namespace ringbus::bench
