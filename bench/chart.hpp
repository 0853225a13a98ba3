// The chart of a benchmark run: ringbus against its peers as a standalone
// SVG, drawn from the same grouped runs as the summary (grouping.hpp), so a
// bar's ratio is the table's "× best peer" (or "× memory", "× memcpy_floor").
//
// Per scenario a group of horizontal bars, one per impl: length = the
// median of the scenario's headline counter over the reference (the best
// peer, or the reference row; a scenario with neither uses its best row and
// says so); a whisker from the min to the max over repetitions; the ratio and
// the value at the end of each bar; a dashed line at 1×. ringbus rows, peers
// and floors (physical limits, not peers) in three colours, with a legend.
#pragma once

#include <string>
#include <vector>

#include "grouping.hpp"
#include "run_info.hpp"

namespace ringbus::bench {

struct ChartInput {
  RunInfo info; // commit, CPU, compiler, date: the title
  bool quick = false;
  int repetitions = 1;
};

// The whole SVG document (UTF-8, with its XML declaration).
std::string render_chart(const std::vector<Scenario>& scenarios, const ChartInput& input);

} // namespace ringbus::bench
