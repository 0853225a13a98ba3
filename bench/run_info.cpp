#include "run_info.hpp"

#include <cctype>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>

#include "affinity.hpp"

namespace ringbus::bench {

namespace {

// First line printed by a shell command, or "" if it failed or printed nothing.
std::string first_line_of(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string out;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  const int status = pclose(pipe);
  if (status != 0) return {};
  const std::size_t end = out.find('\n');
  return end == std::string::npos ? out : out.substr(0, end);
}

std::string git_commit() {
  const std::string git = "git -C '" RINGBUS_BENCH_SOURCE_DIR "' ";
  std::string sha = first_line_of(git + "rev-parse --short HEAD 2>/dev/null");
  if (sha.empty()) return RINGBUS_BENCH_CONFIGURED_COMMIT;
  // A results file must not be mistaken for the commit's when the tree differs from it.
  if (!first_line_of(git + "status --porcelain --untracked-files=no 2>/dev/null").empty()) sha += "-dirty";
  return sha;
}

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    const std::size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? "unknown" : line.substr(start);
  }
  return "unknown";
}

void compiler_names(RunInfo& info) {
#if defined(__clang__)
  info.compiler = "clang" + std::to_string(__clang_major__);
  info.compiler_version = "clang " __clang_version__;
#elif defined(__GNUC__)
  info.compiler = "gcc" + std::to_string(__GNUC__);
  info.compiler_version = "gcc " __VERSION__;
#else
  info.compiler = "cxx";
  info.compiler_version = "unknown compiler";
#endif
}

std::string now_utc() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &utc);
  return text;
}

} // namespace

std::string slug(std::string_view text) {
  std::string out;
  bool gap = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    // Trademark marks carry no information: "(R)", "(TM)".
    if (text.substr(i, 3) == "(R)" || text.substr(i, 3) == "(r)") {
      i += 2;
      continue;
    }
    if (text.substr(i, 4) == "(TM)" || text.substr(i, 4) == "(tm)") {
      i += 3;
      continue;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (std::isalnum(c) != 0) {
      if (gap && !out.empty()) out += '-';
      out += static_cast<char>(std::tolower(c));
      gap = false;
    } else {
      gap = true;
    }
  }
  return out.empty() ? "unknown" : out;
}

RunInfo collect_run_info() {
  RunInfo info;
  info.commit = git_commit();
  info.cpu_model = cpu_model();
  compiler_names(info);
  info.build = RINGBUS_BENCH_BUILD;
  info.date_utc = now_utc();
  info.allowed_cpus = allowed_cpu_count();
  return info;
}

std::string load_average() {
  std::ifstream loadavg("/proc/loadavg");
  std::string one;
  std::string five;
  std::string fifteen;
  if (!(loadavg >> one >> five >> fifteen)) return "unknown";
  return one + " " + five + " " + fifteen;
}

std::string results_file_name(const RunInfo& info, std::string_view variant) {
  std::string name = slug(info.commit) + "_" + slug(info.cpu_model) + "_" + info.compiler;
  if (!variant.empty()) {
    name += '_';
    name += variant;
  }
  return name + ".md";
}

} // namespace ringbus::bench
