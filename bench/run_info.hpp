// What a results file records about the run: commit, CPU, compiler, build.
#pragma once

#include <string>
#include <string_view>

namespace ringbus::bench {

struct RunInfo {
  std::string commit;           // short sha ("-dirty" if tracked files changed); configure-time sha without git
  std::string cpu_model;        // "model name" of /proc/cpuinfo
  std::string compiler;         // e.g. "gcc12", "clang14": for file names
  std::string compiler_version; // e.g. "gcc 12.2.0"
  std::string build;            // build type and flags
  std::string date_utc;         // when the run started
  int allowed_cpus = 0;
};

// Reads git (at run time, from the source tree), /proc/cpuinfo and the
// compiler's macros; never fails (unknown parts say "unknown").
RunInfo collect_run_info();

// Lower-case letters and digits, words joined by '-': "Intel(R) Xeon(R) Gold
// 6338 CPU @ 2.00GHz" -> "intel-xeon-gold-6338-cpu-2-00ghz".
std::string slug(std::string_view text);

// The first three fields of /proc/loadavg, e.g. "0.12 0.30 0.25"; "unknown" without it.
std::string load_average();

// "<commit>_<cpu-slug>_<compiler>.md", or "..._<compiler>_<variant>.md" for a
// run that is not the full one (e.g. "quick", "partial"), so that it never
// replaces the full run's file.
std::string results_file_name(const RunInfo& info, std::string_view variant = {});

} // namespace ringbus::bench
