#include "grouping.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

namespace ringbus::bench {

namespace {

constexpr std::array<std::string_view, 5> peer_names = {"rwq", "moodycamel_cq", "atomic_queue", "boost_spsc",
                                                        "rwq_copies"};

std::optional<Stats> stats_over(const std::vector<const RunRecord*>& runs, const std::string& counter) {
  std::vector<double> values;
  for (const RunRecord* run : runs) {
    const auto it = run->counters.find(counter);
    if (it != run->counters.end()) values.push_back(it->second);
  }
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  const double median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  return Stats{median, values.front(), values.back()};
}

} // namespace

bool on_one_core(const RunRecord& run, double one_core_below_ns) {
  for (const char* probe : {"c2c_before_ns", "c2c_after_ns"}) {
    const auto it = run.counters.find(probe);
    if (it != run.counters.end() && it->second < one_core_below_ns) return true;
  }
  return false;
}

std::optional<Stats> Row::stats(const std::string& counter) const { return stats_over(runs, counter); }
std::optional<Stats> Row::one_core_stats(const std::string& counter) const { return stats_over(one_core, counter); }

std::vector<Scenario> group_runs(const std::vector<RunRecord>& runs, double one_core_below_ns) {
  std::vector<const RunRecord*> ordered;
  ordered.reserve(runs.size());
  for (const RunRecord& run : runs) ordered.push_back(&run);
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const RunRecord* a, const RunRecord* b) { return a->family_index < b->family_index; });
  std::vector<Scenario> scenarios;
  for (const RunRecord* record : ordered) {
    const RunRecord& run = *record;
    const std::size_t slash = run.name.find('/');
    const std::string scenario = run.name.substr(0, slash);
    const std::string impl = slash == std::string::npos ? run.name : run.name.substr(slash + 1);
    auto s = std::find_if(scenarios.begin(), scenarios.end(), [&](const Scenario& x) { return x.name == scenario; });
    if (s == scenarios.end()) s = scenarios.insert(scenarios.end(), Scenario{scenario, {}});
    auto r = std::find_if(s->rows.begin(), s->rows.end(), [&](const Row& x) { return x.impl == impl; });
    if (r == s->rows.end()) r = s->rows.insert(s->rows.end(), Row{impl, {}, {}, {}});
    if (run.failed) {
      if (r->error.empty()) r->error = run.error.empty() ? "failed" : run.error;
    } else if (on_one_core(run, one_core_below_ns)) {
      r->one_core.push_back(&run);
    } else {
      r->runs.push_back(&run);
    }
  }
  return scenarios;
}

int repetitions_of(const std::vector<Scenario>& scenarios) {
  std::size_t most = 0;
  for (const Scenario& s : scenarios) {
    for (const Row& r : s.rows) most = std::max(most, r.runs.size());
  }
  return static_cast<int>(most);
}

bool is_peer(std::string_view impl) {
  return std::find(peer_names.begin(), peer_names.end(), impl) != peer_names.end();
}

bool is_floor(std::string_view impl) { return impl == "floor" || impl == "floor_stamped" || impl == "memcpy_floor"; }

bool is_ringbus(std::string_view scenario, std::string_view impl) {
  return impl.starts_with("ringbus") || scenario == "persist_append";
}

const Row* row_named(const Scenario& scenario, std::string_view impl) {
  for (const Row& row : scenario.rows) {
    if (row.impl == impl) return &row;
  }
  return nullptr;
}

Best best_peer(const Scenario& scenario, const std::string& counter, bool higher_is_better, bool one_core) {
  Best best;
  for (const Row& row : scenario.rows) {
    if (!is_peer(row.impl)) continue;
    const std::optional<Stats> s = one_core ? row.one_core_stats(counter) : row.stats(counter);
    if (!s) continue;
    if (best.row == nullptr || (higher_is_better ? s->median > best.median : s->median < best.median)) {
      best = Best{&row, s->median};
    }
  }
  return best;
}

std::optional<Headline> headline_of(std::string_view scenario) {
  if (scenario == "spsc_8B") return Headline{"items_per_second", true, "items/s", {}};
  if (scenario == "spsc_64B") return Headline{"bytes_per_second", true, "bytes/s", {}};
  if (scenario == "rtt") return Headline{"p50_ns", false, "p50 ns", {}};
  // fanout_1toN, group_NC: delivered items/s (published × N, or published, over the time to the last one).
  if (scenario.starts_with("fanout_") || scenario.starts_with("group_")) {
    return Headline{"items_per_second", true, "delivered items/s", {}};
  }
  if (scenario.starts_with("mpsc_")) return Headline{"items_per_second", true, "items/s", {}};
  if (scenario == "persist_append") return Headline{"items_per_second", true, "items/s", "memory"};
  if (scenario == "replay") return Headline{"bytes_per_second", true, "bytes/s", "memcpy_floor"};
  if (scenario == "recover") return Headline{"recover_ms", false, "ms", {}, recover_target_ms};
  return std::nullopt;
}

Reference reference_of(const Scenario& scenario, const Headline& headline) {
  const std::string counter(headline.counter);
  if (headline.fixed_reference != 0) {
    char label[64];
    std::snprintf(label, sizeof label, "the %g %s target", headline.fixed_reference,
                  std::string(headline.unit).c_str());
    return Reference{nullptr, headline.fixed_reference, label};
  }
  if (!headline.reference.empty()) {
    const Row* row = row_named(scenario, headline.reference);
    const std::optional<Stats> s = row != nullptr ? row->stats(counter) : std::nullopt;
    const double median = s ? s->median : 0.0; // (one read: gcc 12 warns on the optional read twice)
    return Reference{s ? row : nullptr, median, std::string(headline.reference)};
  }
  const Best best = best_peer(scenario, counter, headline.higher_is_better);
  if (best.row == nullptr) return Reference{nullptr, 0, "best peer"};
  return Reference{best.row, best.median, "best peer " + best.row->impl};
}

} // namespace ringbus::bench
