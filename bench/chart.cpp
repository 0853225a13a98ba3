#include "chart.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <sstream>
#include <string_view>

namespace ringbus::bench {

namespace {

// Layout, in SVG user units (pixels at 100%).
constexpr int chart_width = 960;
constexpr int label_right = 206; // impl names end here
constexpr int plot_left = 216;   // bars start here (ratio 0)
constexpr int plot_width = 470;  // the longest bar or whisker of a group ends at plot_left + plot_width
constexpr int bar_height = 16;
constexpr int row_pitch = 22;
constexpr int heading_height = 26; // a group's heading line, above its bars
constexpr int group_gap = 16;
constexpr int header_height = 118; // title, two lines about the run, the legend

constexpr std::string_view ringbus_colour = "#e8590c";
constexpr std::string_view peer_colour = "#4263eb";
constexpr std::string_view floor_colour = "#adb5bd";
constexpr std::string_view ink = "#212529";
constexpr std::string_view failed_colour = "#c92a2a";
// A white outline under a label, so that the 1× line does not cross its letters.
constexpr std::string_view halo = R"( stroke="#ffffff" stroke-width="3" paint-order="stroke")";

std::string escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

std::string coordinate(double v) { return format("%.1f", v); }
std::string ratio_text(double v) { return format(v < 0.01 ? "%.3f×" : v < 10 ? "%.2f×" : "%.1f×", v); }

// A counter's value with its unit, as the summary shows it.
std::string value_text(const Headline& headline, double v) {
  const std::string_view unit = headline.unit;
  if (unit == "bytes/s") return format("%.2f GB/s", v / 1e9);
  if (unit == "p50 ns") return format(v < 100 ? "p50 %.1f ns" : "p50 %.0f ns", v);
  if (unit == "ms") return format("%.1f ms", v);
  // items/s, delivered items/s; as the summary shows them
  return v < 1e5 ? format("%.1f k/s", v / 1e3) : format("%.1f M/s", v / 1e6);
}

std::string_view colour_of(const Scenario& scenario, const Row& row) {
  if (is_floor(row.impl)) return floor_colour;
  if (is_ringbus(scenario.name, row.impl)) return ringbus_colour;
  return peer_colour;
}

std::string_view kind_of(const Scenario& scenario, const Row& row) {
  if (is_floor(row.impl)) return "floor";
  if (is_ringbus(scenario.name, row.impl)) return "ringbus";
  return "peer";
}

// The scenario's reference (grouping.hpp); when it did not run (no peer in
// the filter, or the reference row failed), the best row, and the label says so.
Reference chart_reference(const Scenario& scenario, const Headline& headline) {
  Reference reference = reference_of(scenario, headline);
  if (reference.value != 0) return reference;
  const std::string counter(headline.counter);
  for (const Row& row : scenario.rows) {
    const std::optional<Stats> s = row.stats(counter);
    if (!s || s->median == 0) continue;
    const double median = s->median;
    if (reference.row == nullptr || (headline.higher_is_better ? median > reference.value : median < reference.value)) {
      reference.row = &row;
      reference.value = median;
    }
  }
  if (reference.row != nullptr) {
    reference.label =
        "best row " + reference.row->impl + " (" +
        (headline.reference.empty() ? std::string("no peer ran") : std::string(headline.reference) + " did not run") +
        ")";
  }
  return reference;
}

class Svg {
 public:
  void text(double x, double y, std::string_view anchor, int size, std::string_view weight, std::string_view fill,
            std::string_view content, std::string_view extra = {}) {
    out_ << "<text x=\"" << coordinate(x) << "\" y=\"" << coordinate(y) << "\" font-size=\"" << size << "\"";
    if (anchor != "start") out_ << " text-anchor=\"" << anchor << "\"";
    if (weight != "normal") out_ << " font-weight=\"" << weight << "\"";
    out_ << " fill=\"" << fill << "\"" << extra << ">" << escape(content) << "</text>\n";
  }
  void rect(double x, double y, double w, double h, std::string_view fill, std::string_view extra = {}) {
    out_ << "<rect x=\"" << coordinate(x) << "\" y=\"" << coordinate(y) << "\" width=\"" << coordinate(w)
         << "\" height=\"" << coordinate(h) << "\" fill=\"" << fill << "\"" << extra << "/>\n";
  }
  void line(double x1, double y1, double x2, double y2, std::string_view stroke, std::string_view extra = {}) {
    out_ << "<line x1=\"" << coordinate(x1) << "\" y1=\"" << coordinate(y1) << "\" x2=\"" << coordinate(x2)
         << "\" y2=\"" << coordinate(y2) << "\" stroke=\"" << stroke << "\"" << extra << "/>\n";
  }
  void raw(std::string_view s) { out_ << s; }
  [[nodiscard]] std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

// One scenario's group of bars, from y down; returns the y below it.
double draw_scenario(Svg& svg, const Scenario& scenario, const Headline& headline, double y) {
  const std::string counter(headline.counter);
  const Reference reference = chart_reference(scenario, headline);
  std::string heading = scenario.name + ": " + std::string(headline.unit) + ", " +
                        (headline.higher_is_better ? "higher is better" : "lower is better");
  if (reference.value != 0) {
    heading += " · bar = median ÷ " + reference.label + " (" + value_text(headline, reference.value) + ")";
  } else if (std::any_of(scenario.rows.begin(), scenario.rows.end(),
                         [](const Row& row) { return !row.one_core.empty(); })) {
    heading += " · nothing to compare with: the runs it needs were set aside (one core)";
  } else {
    heading += " · nothing to compare with: every row failed";
  }
  svg.text(16, y + 16, "start", 13, "bold", ink, heading);
  y += heading_height;

  // One scale per group: its longest bar or whisker, and 1× always in view.
  double longest = 1.0;
  for (const Row& row : scenario.rows) {
    const std::optional<Stats> s = row.stats(counter);
    if (s && reference.value != 0) longest = std::max(longest, std::max(s->median, s->max) / reference.value);
  }
  const auto x_of = [&](double ratio) { return plot_left + ratio / longest * plot_width; };

  // The 1× line first: bars and their labels are drawn over it.
  if (reference.value != 0 && !scenario.rows.empty()) {
    const double bottom = y + static_cast<double>(scenario.rows.size() - 1) * row_pitch + bar_height;
    svg.line(x_of(1.0), y - 3, x_of(1.0), bottom + 3, ink, " stroke-width=\"1\" stroke-dasharray=\"4 3\"");
  }
  for (const Row& row : scenario.rows) {
    const double mid = y + bar_height / 2.0;
    const std::string_view kind = kind_of(scenario, row);
    svg.raw("<g class=\"row " + std::string(kind) + "\" data-scenario=\"" + escape(scenario.name) + "\" data-impl=\"" +
            escape(row.impl) + "\">\n");
    const std::optional<Stats> s = row.stats(counter);
    if (s && reference.value != 0) { // the tooltip: an element's <title> comes first
      svg.raw("<title>" +
              escape(scenario.name + "/" + row.impl + ": " + value_text(headline, s->median) + " (min – max " +
                     value_text(headline, s->min) + " – " + value_text(headline, s->max) + "), " +
                     ratio_text(s->median / reference.value) + " " + reference.label) +
              "</title>\n");
    }
    svg.text(label_right, mid + 4, "end", 12, kind == "ringbus" ? "bold" : "normal", ink, row.impl);
    if (!s || reference.value == 0) {
      // Why there is no bar: only a failed check is drawn as a failure.
      std::string why = "FAILED: " + row.error;
      if (row.error.empty() && !s) {
        why = row.one_core.empty() ? "no " + counter : "every run on one core (set aside)";
      } else if (row.error.empty()) {
        why = "no reference to compare with (its runs failed or were set aside)";
      }
      svg.text(plot_left + 4, mid + 4, "start", 12, "normal", row.error.empty() ? ink : failed_colour, why);
      svg.raw("</g>\n");
      y += row_pitch;
      continue;
    }
    const double ratio = s->median / reference.value;
    const double low = s->min / reference.value;
    const double high = s->max / reference.value;
    const double end = x_of(ratio);
    svg.rect(plot_left, y, std::max(1.0, end - plot_left), bar_height, colour_of(scenario, row), " class=\"bar\"");
    if (high > low) {
      svg.line(x_of(low), mid, x_of(high), mid, ink, " stroke-width=\"1.5\"");
      svg.line(x_of(low), mid - 4, x_of(low), mid + 4, ink, " stroke-width=\"1.5\"");
      svg.line(x_of(high), mid - 4, x_of(high), mid + 4, ink, " stroke-width=\"1.5\"");
    }
    svg.text(std::max(end, x_of(high)) + 6, mid + 4, "start", 12, "normal", ink,
             ratio_text(ratio) + "  " + value_text(headline, s->median), halo);
    svg.raw("</g>\n");
    y += row_pitch;
  }
  return y + group_gap;
}

void draw_legend(Svg& svg, double y) {
  double x = 16;
  const auto entry = [&](std::string_view colour, std::string_view label, double width) {
    svg.rect(x, y - 10, 14, 12, colour);
    svg.text(x + 20, y, "start", 12, "normal", ink, label);
    x += width;
  };
  entry(ringbus_colour, "ringbus", 90);
  entry(peer_colour, "peers (rwq, moodycamel_cq, atomic_queue, boost_spsc, rwq_copies)", 500);
  entry(floor_colour, "floors: physical limits, not peers", 285);
  svg.line(x, y - 10, x, y + 2, ink, " stroke-width=\"1\" stroke-dasharray=\"4 3\"");
  svg.text(x + 8, y, "start", 12, "normal", ink, "1×");
}

} // namespace

std::string render_chart(const std::vector<Scenario>& scenarios, const ChartInput& input) {
  std::vector<std::pair<const Scenario*, Headline>> drawn;
  for (const Scenario& s : scenarios) {
    if (const std::optional<Headline> h = headline_of(s.name)) drawn.emplace_back(&s, *h);
  }
  double height = header_height + 8;
  for (const auto& [scenario, headline] : drawn) {
    height += heading_height + static_cast<double>(scenario->rows.size()) * row_pitch + group_gap;
  }

  const RunInfo& i = input.info;
  const std::string title = "ringbus against its peers";
  const std::string about = "commit " + i.commit + " · " + i.cpu_model + " (" + std::to_string(i.allowed_cpus) +
                            " CPUs) · " + i.compiler_version + " · " + i.date_utc;
  const std::string run = std::string(input.quick ? "--quick, " : "full size, ") + std::to_string(input.repetitions) +
                          (input.repetitions == 1 ? " repetition" : " repetitions") +
                          " · bar: median ÷ the reference (1× = dashed line) · whisker: min – max over repetitions";

  Svg svg;
  svg.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  svg.raw("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(chart_width) + "\" height=\"" +
          coordinate(height) + "\" viewBox=\"0 0 " + std::to_string(chart_width) + " " + coordinate(height) +
          "\" font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\">\n");
  svg.raw("<title>" + escape(title + ", " + about) + "</title>\n");
  svg.rect(0, 0, chart_width, height, "#ffffff");
  svg.text(16, 28, "start", 18, "bold", ink, title);
  svg.text(16, 50, "start", 12, "normal", ink, about);
  svg.text(16, 68, "start", 12, "normal", ink, run);
  draw_legend(svg, 96);
  double y = header_height;
  for (const auto& [scenario, headline] : drawn) y = draw_scenario(svg, *scenario, headline, y);
  svg.raw("</svg>\n");
  return svg.str();
}

} // namespace ringbus::bench
