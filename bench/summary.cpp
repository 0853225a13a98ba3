#include "summary.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <optional>
#include <sstream>
#include <string_view>

#include "placement.hpp"
#include "ringbus/bus.hpp"
#include "ringbus/detail/clock.hpp"

namespace ringbus::bench {

// --- the reporter ---------------------------------------------------------------

bool CollectingReporter::ReportContext(const Context& context) { return display_->ReportContext(context); }

void CollectingReporter::ReportRuns(const std::vector<Run>& runs) {
  std::vector<Run> shown = runs;
  for (Run& run : shown) {
    run.run_name.iterations.clear();
    run.run_name.time_type.clear();
    if (run.run_type != Run::RT_Iteration) continue;
    RunRecord record;
    record.name = run.run_name.function_name;
    record.family_index = run.family_index;
    record.failed = run.error_occurred;
    record.error = run.error_message;
    for (const auto& [key, counter] : run.counters) record.counters[key] = counter.value;
    runs_.push_back(std::move(record));
  }
  display_->ReportRuns(shown);
}

void CollectingReporter::Finalize() { display_->Finalize(); }

// --- the summary ------------------------------------------------------------------

namespace {

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

// Below 0.1 M/s (e.g. persist_append/sync on a busy machine) in k/s, so it does not read 0.0.
std::string items_rate(double v) { return v < 1e5 ? format("%.1f k/s", v / 1e3) : format("%.1f M/s", v / 1e6); }
std::string bytes_rate(double v) { return format("%.2f GB/s", v / 1e9); }
std::string nanoseconds(double v) { return format(v < 100 ? "%.1f" : "%.0f", v); }
std::string ratio_text(double v) { return format(v < 0.01 ? "%.3f×" : "%.2f×", v); }
std::string share_text(double v) { return format("%.2f", v); }
// The one-core threshold in ns: whole numbers as they are, others to 6 digits.
std::string threshold_text(double v) { return format(v == std::floor(v) ? "%.0f" : "%g", v); }

std::string ratio_to(const Best& best, double value) {
  return best.row != nullptr ? ratio_text(value / best.median) : "n/a";
}

std::string ratio_to(const Reference& reference, double value) {
  return reference.value != 0 ? ratio_text(value / reference.value) : "n/a";
}

// The scenario's headline (grouping.hpp): the counter its table ranks by and the ratios' reference.
Reference headline_reference(const Scenario& scenario) {
  const std::optional<Headline> headline = headline_of(scenario.name);
  return headline ? reference_of(scenario, *headline) : Reference{};
}

using Formatter = std::string (*)(double);

std::string span_text(const Stats& s, Formatter f) {
  if (s.min == s.max) return f(s.min);
  return f(s.min) + " – " + f(s.max);
}

// A Markdown table padded to line up on a terminal too.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) {
    row.resize(header_.size());
    rows_.push_back(std::move(row));
  }
  [[nodiscard]] std::string str() const {
    std::vector<std::size_t> width(header_.size(), 3);
    const auto visible = [](const std::string& s) {
      std::size_t n = 0;
      for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0; // UTF-8 code points
      return n;
    };
    for (std::size_t i = 0; i < header_.size(); ++i) width[i] = std::max(width[i], visible(header_[i]));
    for (const auto& row : rows_) {
      for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], visible(row[i]));
    }
    std::ostringstream out;
    const auto line = [&](const std::vector<std::string>& cells) {
      out << '|';
      for (std::size_t i = 0; i < cells.size(); ++i) {
        const std::string pad(width[i] - visible(cells[i]), ' ');
        out << ' ' << (i == 0 ? cells[i] + pad : pad + cells[i]) << " |";
      }
      out << '\n';
    };
    line(header_);
    out << '|'; // first column left-aligned, the numbers right-aligned
    for (std::size_t i = 0; i < width.size(); ++i) {
      const std::string dashes(width[i] + 1, '-');
      if (i == 0) {
        out << ':' << dashes << '|';
      } else {
        out << dashes << ":|";
      }
    }
    out << '\n';
    for (const auto& row : rows_) line(row);
    return out.str();
  }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

std::string impl_label(const Row& row) {
  if (row.impl == "floor") return "floor (physical limit, not a peer)";
  if (row.impl == "floor_stamped") return "floor_stamped (floor + a wall-clock stamp per message, not a peer)";
  if (row.impl == "ringbus_append_nots") return "ringbus_append_nots (extra: timestamps none)";
  if (row.impl == "ringbus_nots") return "ringbus_nots (extra: timestamps none)";
  return row.impl;
}

std::string failed_cell(const Row& row) {
  if (row.error.empty() && !row.one_core.empty()) return "every run on one core (set aside, below)";
  return "FAILED: " + row.error;
}

// The runs set aside because the host ran both CPUs on one core (placement.hpp),
// with their own ratios: comparable with each other only.
std::string one_core_section(const Scenario& scenario, const std::string& counter, bool higher_is_better,
                             Formatter cell, double one_core_below_ns) {
  std::size_t aside = 0;
  std::size_t total = 0;
  for (const Row& row : scenario.rows) {
    aside += row.one_core.size();
    total += row.one_core.size() + row.runs.size();
  }
  if (aside == 0) return "";
  const Best best = best_peer(scenario, counter, higher_is_better, true);
  Table table({"impl", counter + " (median, one core)", "min – max", "× best peer on one core", "runs set aside"});
  for (const Row& row : scenario.rows) {
    const std::optional<Stats> st = row.one_core_stats(counter);
    if (!st) continue;
    table.add({impl_label(row), cell(st->median), span_text(*st, cell),
               best.row != nullptr ? ratio_text(st->median / best.median) : "n/a",
               std::to_string(row.one_core.size())});
  }
  std::string out = "\n" + std::to_string(aside) + " of " + std::to_string(total) +
                    " runs were set aside: the placement probe found both CPUs on one physical core (bare round "
                    "trip below " +
                    threshold_text(one_core_below_ns) +
                    " ns) before or after the timed region. They are left out of the table above, the "
                    "chart and the targets, and shown here against each other only:\n\n" +
                    table.str();
  if (aside == total) {
    out += "\nEvery run was set aside. On a machine whose bare round trip between two cores is itself below " +
           threshold_text(one_core_below_ns) +
           " ns (bare metal often is), or whose CPUs 0 and 1 are hyperthreads of one core, that is the machine, not "
           "the host moving CPUs: set the threshold with `ringbus bench --one-core-below NS` or `ringbus-bench "
           "--one_core_below_ns=NS` (0 sets nothing aside).\n";
  }
  return out;
}

// The lowest cpu_share of the row's repetitions: one disturbed run is enough to look twice.
std::string cpu_share_cell(const Row& row) {
  const std::optional<Stats> s = row.stats("cpu_share");
  return s ? share_text(s->min) : "";
}

// spsc_*: one throughput metric (the scenario's headline counter) ranks the
// impls; the other is shown beside it.
std::string throughput_section(const Scenario& scenario, Formatter primary_format, const std::string& primary_label,
                               const std::string& secondary, Formatter secondary_format,
                               const std::string& secondary_label, double one_core_below_ns) {
  const std::string primary(headline_of(scenario.name).value().counter);
  const Reference best = headline_reference(scenario);
  Table table(
      {"impl", primary_label + " (median)", "min – max", "× best peer", secondary_label + " (median)", "cpu share"});
  for (const Row& row : scenario.rows) {
    const std::optional<Stats> s = row.stats(primary);
    if (!s) {
      table.add({impl_label(row), failed_cell(row)});
      continue;
    }
    const std::optional<Stats> other = row.stats(secondary);
    table.add({impl_label(row), primary_format(s->median), span_text(*s, primary_format), ratio_to(best, s->median),
               other ? secondary_format(other->median) : "", cpu_share_cell(row)});
  }
  std::string out = "### " + scenario.name + ": " + primary_label + ", higher is better\n\n" + table.str();
  if (best.row != nullptr) out += "\nbest peer: " + best.row->impl + " (" + primary_format(best.value) + ")\n";
  return out + one_core_section(scenario, primary, true, primary_format, one_core_below_ns);
}

bool is_fanout(const Scenario& scenario) { return scenario.name.rfind("fanout_", 0) == 0; }
// group_*C: competing consumers; ranked like fan-out (delivered items/s, each item delivered once). No target.
bool is_group(const Scenario& scenario) { return scenario.name.rfind("group_", 0) == 0; }

// fanout_*: ranked by delivered items/s; says so when the threads outnumbered the CPUs.
std::string fanout_section(const Scenario& scenario) {
  // These rows run no placement probe (placement.hpp): none is ever set aside.
  std::string out = throughput_section(scenario, items_rate, "delivered items/s", "bytes_per_second", bytes_rate,
                                       "delivered bytes/s", 0);
  for (const Row& row : scenario.rows) {
    const std::optional<Stats> threads = row.stats("threads");
    const std::optional<Stats> cpus = row.stats("cpus");
    if (!threads || !cpus) continue;
    if (threads->max > cpus->max) {
      out += format("THREADS OUTNUMBER CPUS: %.0f threads", threads->max) +
             format(" (1 producer, %.0f consumers)", threads->max - 1) +
             format(" on %.0f CPUs; they take turns, every wait yields.\n", cpus->max);
    }
    break;
  }
  return out;
}

bool is_mpsc(const Scenario& scenario) { return scenario.name.rfind("mpsc_", 0) == 0; }

// mpsc_*: ranked by items/s; says so when the threads outnumbered the CPUs.
std::string mpsc_section(const Scenario& scenario) {
  // These rows run no placement probe (placement.hpp): none is ever set aside.
  std::string out = throughput_section(scenario, items_rate, "items/s", "bytes_per_second", bytes_rate, "bytes/s", 0);
  for (const Row& row : scenario.rows) {
    const std::optional<Stats> threads = row.stats("threads");
    const std::optional<Stats> cpus = row.stats("cpus");
    if (!threads || !cpus) continue;
    if (threads->max > cpus->max) {
      out += format("THREADS OUTNUMBER CPUS: %.0f threads", threads->max) +
             format(" (%.0f producers, 1 consumer)", threads->max - 1) +
             format(" on %.0f CPUs; they take turns, every wait yields.\n", cpus->max);
    }
    break;
  }
  return out;
}

std::string latency_section(const Scenario& scenario, double one_core_below_ns) {
  const Reference best50 = headline_reference(scenario); // p50_ns
  const Best best999 = best_peer(scenario, "p999_ns", false);
  Table table({"impl", "p50 ns", "p50 min – max", "p50 × best peer", "p99 ns", "p99.9 ns", "p99.9 min – max",
               "p99.9 × best peer", "max ns (median)", "cpu share"});
  for (const Row& row : scenario.rows) {
    const std::optional<Stats> p50 = row.stats("p50_ns");
    const std::optional<Stats> p99 = row.stats("p99_ns");
    const std::optional<Stats> p999 = row.stats("p999_ns");
    const std::optional<Stats> max = row.stats("max_ns");
    if (!p50 || !p99 || !p999 || !max) {
      table.add({impl_label(row), failed_cell(row)});
      continue;
    }
    table.add({impl_label(row), nanoseconds(p50->median), span_text(*p50, nanoseconds), ratio_to(best50, p50->median),
               nanoseconds(p99->median), nanoseconds(p999->median), span_text(*p999, nanoseconds),
               ratio_to(best999, p999->median), nanoseconds(max->median), cpu_share_cell(row)});
  }
  std::string out = "### " + scenario.name + ": round-trip latency in ns, lower is better\n\n" + table.str();
  if (best50.row != nullptr) out += "\nbest peer p50: " + best50.row->impl + " (" + nanoseconds(best50.value) + " ns)";
  if (best999.row != nullptr) {
    out += "; best peer p99.9: " + best999.row->impl + " (" + nanoseconds(best999.median) + " ns)";
  }
  return out + "\n" + one_core_section(scenario, "p50_ns", false, nanoseconds, one_core_below_ns);
}

// persist_append, replay, recover: ranked against one row of their own
// scenario (memory, memcpy_floor), not against a peer.
bool is_persist(const Scenario& scenario) {
  return scenario.name == "persist_append" || scenario.name == "replay" || scenario.name == "recover";
}

std::string milliseconds(double v) { return format("%.1f ms", v); }

std::string persist_section(const Scenario& scenario) {
  if (scenario.name == "recover") {
    Table table({"impl", "recover_ms (median)", "min – max", "segments", "log"});
    for (const Row& row : scenario.rows) {
      const std::optional<Stats> s = row.stats("recover_ms");
      const std::optional<Stats> segments = row.stats("segments");
      const std::optional<Stats> mib = row.stats("log_mib");
      if (!s) {
        table.add({row.impl, failed_cell(row)});
        continue;
      }
      table.add({row.impl, milliseconds(s->median), span_text(*s, milliseconds),
                 segments ? format("%.0f", segments->median) : "", mib ? format("%.0f MiB", mib->median) : ""});
    }
    return "### recover: Bus::open after a SIGKILL, lower is better\n\n" + table.str();
  }
  const bool replay = scenario.name == "replay";
  const std::string primary(headline_of(scenario.name).value().counter);
  const std::string secondary = replay ? "items_per_second" : "bytes_per_second";
  const Formatter primary_format = replay ? bytes_rate : items_rate;
  const Formatter secondary_format = replay ? items_rate : bytes_rate;
  const Reference ref = headline_reference(scenario); // memcpy_floor, memory
  const std::string reference = ref.label;
  std::vector<std::string> header = {"impl", (replay ? "bytes/s" : "items/s") + std::string(" (median)"), "min – max",
                                     "× " + reference, (replay ? "items/s" : "bytes/s") + std::string(" (median)")};
  if (!replay) header.push_back("cpu share"); // replay runs on one thread
  Table table(std::move(header));
  for (const Row& row : scenario.rows) {
    const std::optional<Stats> s = row.stats(primary);
    if (!s) {
      table.add({row.impl, failed_cell(row)});
      continue;
    }
    const std::optional<Stats> other = row.stats(secondary);
    table.add({row.impl, primary_format(s->median), span_text(*s, primary_format), ratio_to(ref, s->median),
               other ? secondary_format(other->median) : "", cpu_share_cell(row)});
  }
  return "### " + scenario.name + ": " + (replay ? "bytes/s" : "items/s") + ", higher is better\n\n" + table.str();
}

struct Target {
  std::string_view scenario;
  std::string_view impl;
  std::string_view counter;
  bool higher_is_better;
  double bound; // ratio to the best peer: at least (higher is better) or at most
  std::string_view text;
  // Not empty: the ratio is to this impl's row of the scenario instead of the
  // best peer; "=" : bound is the counter's own value (e.g. milliseconds).
  std::string_view reference = {};
};

constexpr std::array<Target, 11> targets = {{
    {"spsc_8B", "ringbus_batch", "items_per_second", true, 1.0, "spsc_8B/ringbus_batch items/s ≥ 1.0× best peer"},
    {"spsc_8B", "ringbus_append", "items_per_second", true, 0.8, "spsc_8B/ringbus_append items/s ≥ 0.8× best peer"},
    {"spsc_64B", "ringbus_batch", "bytes_per_second", true, 1.0, "spsc_64B/ringbus_batch bytes/s ≥ 1.0× best peer"},
    {"rtt", "ringbus", "p50_ns", false, 1.0, "rtt/ringbus p50 ≤ 1.0× best peer"},
    {"rtt", "ringbus", "p999_ns", false, 1.0, "rtt/ringbus p99.9 ≤ 1.0× best peer"},
    {"fanout_1to3", "ringbus", "items_per_second", true, 2.0,
     "fanout_1to3/ringbus delivered items/s ≥ 2.0× rwq_copies (its only peer)"},
    {"mpsc_4P", "ringbus_shared", "items_per_second", true, 0.8,
     "mpsc_4P/ringbus_shared items/s ≥ 0.8× moodycamel_cq (while also giving offsets and replay)"},
    {"persist_append", "none", "items_per_second", true, 0.9,
     "persist_append/none items/s ≥ 0.9× persist_append/memory", "memory"},
    {"persist_append", "interval", "items_per_second", true, 0.5,
     "persist_append/interval items/s ≥ 0.5× persist_append/memory", "memory"},
    {"replay", "ringbus", "bytes_per_second", true, 0.5, "replay/ringbus bytes/s ≥ 0.5× replay/memcpy_floor",
     "memcpy_floor"},
    {"recover", "ringbus", "recover_ms", false, recover_target_ms, "recover/ringbus recover_ms ≤ 50 ms", "="},
}};

std::string targets_section(const std::vector<Scenario>& scenarios) {
  std::string out = "### Targets (reported, not asserted; medians)\n\n";
  for (const Target& t : targets) {
    out += "- " + std::string(t.text) + ": ";
    const auto s =
        std::find_if(scenarios.begin(), scenarios.end(), [&](const Scenario& x) { return x.name == t.scenario; });
    const Row* row = nullptr;
    if (s != scenarios.end()) {
      for (const Row& r : s->rows) {
        if (r.impl == t.impl) row = &r;
      }
    }
    const std::string counter(t.counter);
    Best best = s != scenarios.end() ? best_peer(*s, counter, t.higher_is_better) : Best{};
    const std::optional<Stats> mine = row != nullptr ? row->stats(counter) : std::nullopt;
    const double median = mine ? mine->median : 0.0; // (one read: gcc 12 warns on the optional read twice)
    if (t.reference == "=" && mine) {
      const bool met = t.higher_is_better ? median >= t.bound : median <= t.bound;
      const double off = t.higher_is_better ? (1 - median / t.bound) : (median / t.bound - 1);
      out += format("%.1f", median) + " — " +
             (met ? std::string("met\n") : "MISSED by " + format("%.0f", off * 100) + "%\n");
      continue;
    }
    if (!t.reference.empty() && s != scenarios.end()) {
      best = Best{};
      for (const Row& r : s->rows) {
        const std::optional<Stats> st = r.stats(counter);
        if (r.impl == t.reference && st) best = Best{&r, st->median};
      }
    }
    if (!mine || best.row == nullptr) {
      const bool some_aside = s != scenarios.end() && std::any_of(s->rows.begin(), s->rows.end(),
                                                                  [](const Row& r) { return !r.one_core.empty(); });
      if (row != nullptr && !row->error.empty()) {
        out += "FAILED (" + row->error + ")\n";
      } else if (row != nullptr && some_aside) {
        out += "no comparison: the runs it needs were set aside (one core)\n";
      } else {
        out += "not run\n";
      }
      continue;
    }
    const double ratio = median / best.median;
    const bool met = t.higher_is_better ? ratio >= t.bound : ratio <= t.bound;
    out += ratio_text(ratio) + " of " + best.row->impl + " — ";
    if (met) {
      out += "met\n";
    } else if (t.higher_is_better) {
      out += "MISSED by " + format("%.1f", (1 - ratio / t.bound) * 100) + "% (needs ≥ " + ratio_text(t.bound) + ")\n";
    } else {
      out += "MISSED by " + format("%.1f", (ratio / t.bound - 1) * 100) + "% (needs ≤ " + ratio_text(t.bound) + ")\n";
    }
  }
  return out;
}

std::string setup_section(const SummaryInput& in, int repetitions) {
  const RunInfo& i = in.info;
  const RunConfig& c = in.config;
  std::ostringstream out;
  out << "commit " << i.commit << " · " << i.date_utc << " · CPU " << i.cpu_model << " (" << i.allowed_cpus
      << " CPUs allowed) · " << i.compiler_version << " · build: " << i.build
      << " · ringbus heap: " << ringbus::heap_backend() << "\n\n"
      << "Command: `" << in.command << "`\n\n"
      << "Load average (1, 5, 15 min) before: " << in.load_before << "; after: " << in.load_after << "\n\n"
      << "Run: " << (c.quick ? "--quick" : "full") << ", " << repetitions
      << " repetition(s) per row; tables show the median and min – max over repetitions.\n\n"
      << "- Threads: producer (Google Benchmark's thread) pinned to CPU 0, consumer / echo thread to CPU 1"
      << (in.pin_failures != 0 ? " — PINNING FAILED on this run, threads ran unpinned" : "")
      << ". Two busy threads on a 2-core machine share it with the OS and everything else running: expect "
         "noise, compare medians. `cpu share` is the lowest, over a row's repetitions, of the CPU time the less "
         "served of the two threads got over the wall time of the timed region: both threads busy-wait, so 1.00 "
         "means nothing else ran on their CPUs; well below 1 means the OS lent a CPU to someone else and the "
         "row's numbers are pessimistic.\n"
      << "- Placement: the host sometimes runs this guest's two CPUs on the two hyperthreads of one physical "
         "core, where a bare round trip takes about 57 ns instead of about 290 ns. Every spsc and rtt run probes "
         "it just before and just after its timed region (counters c2c_before_ns and c2c_after_ns, each the median "
         "of "
      << c2c_trips << " bare round trips). "
      << (in.config.one_core_below_ns > 0
              ? "A run with either probe below " + threshold_text(in.config.one_core_below_ns) +
                    " ns is set aside: the tables, the chart and the targets use the runs on two cores, and each "
                    "scenario lists the set-aside runs after its table, compared with each other only.\n"
              : std::string("This run set no run aside (threshold 0 ns): the probes are recorded, the tables "
                            "mix whatever placements the host gave.\n"))
      << "- Capacity: every peer has " << peer_slots << " slots; ringbus a ring of " << peer_slots
      << " × payload bytes (512 KiB for 8 B, 4 MiB for 64 B) in " << ringbus_segment_count
      << " segments: the same payload bytes, i.e. 65536 payloads in its packed form less one 32 B frame header "
         "per batch, each batch's frame padded to the next 128 B boundary (8 B: claim_values_up_to takes 252 "
         "values, whose 2,048 B frames fill whole line pairs: 32 batches in a segment, 64,512 payloads in the ring; "
         "64 B: append_values splits a batch at a segment's end, so each segment takes 31 "
         "whole batches and 193 values, 65,032 payloads in the ring); an appended 8 B record takes a whole "
         "line-aligned 64 B frame (8,192 fit; 13,107 of 40 B without line_aligned_appends), an appended 64 B "
         "record a 96 B frame. All memory is touched before timing.\n"
      << "- Payloads: spsc_8B a uint64_t, spsc_64B 8 × uint64_t, rtt a uint64_t. The consumer checks every item's "
         "sequence number and adds up every payload word; a run that loses, repeats or reorders an item is "
         "FAILED.\n"
      << "- APIs: batch of " << batch_values << " for ringbus_batch (8 B: claim_values_up_to of " << batch_values
      << " filled in place + commit, 252 values a frame; 64 B: append_values from a buffer, as "
         "boost_spsc's producer, the faster of the two there), moodycamel_cq (try_enqueue_bulk with a ProducerToken, "
         "try_dequeue_bulk_from_producer, BLOCK_SIZE 1024) and the boost_spsc producer (push(T*, n)); the boost_spsc "
         "consumer reads in place with consume_all, the ringbus consumer calls poll() with its defaults (every "
         "record published, zero copy). rwq (try_enqueue; try_dequeue for 8 B, peek / pop for 64 B) and "
         "atomic_queue (SPSC, MINIMIZE_CONTENTION off; push / pop) have no bulk API. "
         "ringbus_append: one Producer::append per record with wall-clock timestamps (the default: the TSC where "
         "the kernel's clock reads it, clocksource tsc, or kvm-clock with an invariant TSC; "
      << (ringbus::detail::tsc_clock_usable() ? "it is here" : "it is not here: one clock_gettime per record")
      << "); at 8 B on a "
         "topic with line_aligned_appends (each record's frame starts a cache line; its faster configuration there). "
         "All waits "
         "busy-spin with one pause instruction; each peer's configuration is the fastest measured (see "
         "bench/impls/).\n"
      << "- spsc timing: manual wall time per iteration, from the first item sent to the last item verified; "
      << c.items_per_iteration << " items per iteration, " << c.iterations << " iterations per run, after "
      << c.warmup_items << " untimed items.\n"
      << "- rtt: " << c.rtt_samples << " round trips recorded per run after " << c.rtt_warmup
      << " untimed ones; each sample timed with the TSC (" << format("%.4f", in.ns_per_tick)
      << " ns/tick, measured against steady_clock). ringbus: one append per message (topics with "
         "line_aligned_appends) and poll_one (the next record, decoded into the caller's Record) waiting by the "
         "topic's busy_spin strategy; atomic_queue's pop() waits in its own spin loop. The echo thread keeps "
         "the impl pointer and its trip counts in locals: captured by reference, they were reloaded from the "
         "timing thread's stack after each call the compiler could not see into (ringbus's poll_one is one); "
         "that cost rtt/ringbus ~50-90 ns a round trip, and moved no peer's row. floor_stamped: floor with a "
         "wall-clock stamp (the clock a ringbus producer uses, "
      << (ringbus::detail::tsc_clock_usable() ? "the TSC here" : "one clock_gettime here")
      << ") written into the line before each send's store: floor_stamped - floor is what stamping a message "
         "with its time of append costs a round trip on this machine, whatever carries it.\n";
  return out.str();
}

// The persistent scenarios' own setup, printed when any of them ran.
std::string persist_setup_section(const SummaryInput& in) {
  const RunConfig& c = in.config;
  const auto mib = [](std::uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; };
  std::ostringstream out;
  out << "- Persistent rows: bus directories under " << c.persist_dir << " (" << c.persist_filesystem
      << "), a fresh one per run, removed after it.\n"
      << "- persist_append/{memory,none,interval,sync}: a 64 B writer and reader (claim_values of " << batch_values
      << " 64 B values + commit; poll read as Batch::values, every value checked; producer CPU 0, consumer CPU 1) "
         "on a topic of "
      << persist_segment_count << " × " << mib(persist_segment_bytes)
      << " segments (the library's defaults) in each row: `memory` an in-memory topic (Bus()); `none`, "
         "`interval` (flush_interval 10 ms, done by the bus's flusher thread) and `sync` (each commit waits for "
         "msync) persistent topics of a bus opened on the directory, whose flusher thread may run on either CPU. "
      << c.persist_items_per_iteration << " items per iteration (sync: " << c.persist_sync_items_per_iteration << " in "
      << c.persist_sync_iterations << " iterations, after " << c.persist_sync_warmup_items
      << " untimed), timed like spsc.\n"
      << "- replay: a log of " << mib(c.persist_log_bytes) << " of 64 B values"
      << (c.quick ? " (--quick: smaller than the full run's 1 GiB)" : "") << " in " << mib(log_segment_bytes)
      << " segments (" << log_segment_count
      << " in the ring), written once and its bus closed; each timed iteration reopens it (untimed, no flusher "
         "thread) and a consumer reads every record from offset 0 out of the page cache, checking each "
         "(sequence, sum of its words); "
      << c.replay_iterations
      << " iterations. memcpy_floor: a file of the same bytes, mapped afresh per iteration, memcpy'd 1 MiB at a "
         "time into a 1 MiB buffer. Both take the minor page faults of a fresh mapping.\n"
      << "- recover: a forked child writes a log of " << mib(c.persist_log_bytes)
      << " (same options), keeps appending a batch every 100 us and is SIGKILLed 100 ms later (files in the "
         "page cache); recover_ms is the time of Bus::open in the parent, which then checks that every record "
         "published before the kill is there, the last one intact. One kill per run: use repetitions for a "
         "spread.\n";
  return out.str();
}

// The fan-out scenarios' own setup, printed when any of them ran.
std::string fanout_setup_section(const SummaryInput& in) {
  const RunConfig& c = in.config;
  std::ostringstream out;
  out << "- fanout_1toN: one producer (CPU 0) to N consumer threads, consumer i pinned to CPU (1 + i) mod " << c.cpus
      << " (the CPUs allowed); every consumer receives and checks every item (8 B, as spsc_8B). "
      << "Ranked by delivered items/s: published × N / the time until the last consumer has verified the last "
         "item; "
      << c.fanout_items_per_iteration << " items published per iteration, " << c.fanout_iterations
      << " iterations per run, after " << c.warmup_items << " untimed items. N + 1 threads on " << c.cpus << " CPUs: "
      << (c.cpus < 4 ? "the threads outnumber the CPUs from 1to" + std::to_string(std::max(c.cpus, 1)) +
                           " on, so every wait (queue full, queue empty, round not done) yields "
                           "(std::this_thread::yield) instead of spinning"
                     : "every wait yields (std::this_thread::yield)")
      << ". ringbus: one topic (the spsc ring, one copy of each item for all N), producer claim_values_up_to of "
      << batch_values
      << " + commit (252 values a frame), waiting for room by the topic's `yield` strategy; consumers poll() with its "
         "defaults, read "
         "each batch as a typed span in place (Batch::values) and yield when empty. rwq_copies (what a user does "
         "without a bus): one ReaderWriterQueue of "
      << peer_slots
      << " slots per consumer (each consumer may fall as far behind as with ringbus, at N times the memory); the "
         "producer try_enqueues each run of "
      << batch_values
      << " items into every queue in turn (rwq has no bulk API), consumers try_dequeue. `cpu share` here is the "
         "CPU time of all N + 1 threads over the wall time times min(N + 1, CPUs).\n";
  return out.str();
}

} // namespace

std::string render_summary(const std::vector<Scenario>& scenarios, const SummaryInput& input) {
  std::string out = "# ringbus-bench summary\n\n" + setup_section(input, repetitions_of(scenarios));
  if (std::any_of(scenarios.begin(), scenarios.end(), is_fanout)) out += fanout_setup_section(input);
  if (std::any_of(scenarios.begin(), scenarios.end(), is_persist)) out += persist_setup_section(input);
  if (std::any_of(scenarios.begin(), scenarios.end(), is_group)) {
    out +=
        "- group_3C: one producer (CPU 0), 3 competing consumer threads pinned like fanout_1to3's; each item "
        "goes to exactly one consumer (checked: counts and sums of all consumers together are those of every "
        "item once). Delivered items/s = published / the time until the consumers together have taken them all; " +
        std::to_string(input.config.fanout_items_per_iteration) + " items per iteration. 4 threads on " +
        std::to_string(input.config.cpus) +
        " CPUs: every wait yields. ringbus: a consumer group (GroupMember::poll claims whole 256-value frames "
        "with one CAS); moodycamel_cq: try_enqueue_bulk with a ProducerToken, try_dequeue_bulk_from_producer "
        "of up to 256. No target: both are reported.\n";
  }
  if (std::any_of(scenarios.begin(), scenarios.end(), is_mpsc)) {
    out +=
        "- mpsc_4P: 4 producer threads into 1 consumer (Google Benchmark's thread, CPU 0), producer p pinned to CPU "
        "(1 + p) mod " +
        std::to_string(input.config.cpus) + "; 8 B items, each producer's in its order (checked per producer). " +
        std::to_string(input.config.items_per_iteration) +
        " items per iteration (a quarter from each producer). 5 threads on " + std::to_string(input.config.cpus) +
        " CPUs: every wait yields. moodycamel_cq: a ProducerToken per producer, try_enqueue_bulk of " +
        std::to_string(batch_values) +
        ", a ConsumerToken and try_dequeue_bulk; at most 16384 items per producer. ringbus_shared: a "
        "SharedProducer in caller mode (the consumer thread calls pump(), then poll(), and reads each batch as a "
        "typed span, Batch::values), a Sender per producer "
        "with try_send_values of " +
        std::to_string(batch_values) +
        ", 16384 queue slots per sender; every item also gets a dense offset in a replayable topic and its "
        "sender can learn it.\n";
  }
  for (const Scenario& s : scenarios) {
    out += '\n';
    if (s.name == "spsc_8B") {
      out += throughput_section(s, items_rate, "items/s", "bytes_per_second", bytes_rate, "bytes/s",
                                input.config.one_core_below_ns);
    } else if (s.name == "spsc_64B") {
      out += throughput_section(s, bytes_rate, "bytes/s", "items_per_second", items_rate, "items/s",
                                input.config.one_core_below_ns);
    } else if (s.name == "rtt") {
      out += latency_section(s, input.config.one_core_below_ns);
    } else if (is_fanout(s) || is_group(s)) {
      out += fanout_section(s);
    } else if (is_persist(s)) {
      out += persist_section(s);
    } else if (is_mpsc(s)) {
      out += mpsc_section(s);
    }
  }
  out += '\n' + targets_section(scenarios);
  return out;
}

} // namespace ringbus::bench
