// ringbus: the command-line tool (README "Command-line tool"). Parses the
// arguments with CLI11 and runs one subcommand (cli.hpp).
#include <CLI/CLI.hpp>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "cli/cli.hpp"

#ifndef RINGBUS_VERSION
#define RINGBUS_VERSION "unknown"
#endif

namespace {

using ringbus::cli::Format;

CLI::Option* add_format(CLI::App* app, std::string& format, bool with_hex) {
  const std::vector<std::string> names =
      with_hex ? std::vector<std::string>{"text", "json", "hex"} : std::vector<std::string>{"text", "json"};
  return app
      ->add_option("--format", format,
                   with_hex ? "text (one line per record), json (one object per line) or hex (a hexdump of each)"
                            : "text or json (one object per line)")
      ->check(CLI::IsMember(names, CLI::ignore_case))
      ->default_str("text");
}

Format format_of(std::string name) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name == "json" ? Format::json : name == "hex" ? Format::hex : Format::text;
}

// A whole number from min to 2^64 - 1, as typed: digits only. CLI11 would
// wrap "-1" into 2^64 - 1 and saturate a number too large for 64 bits, so
// the tool would act on a value nobody typed.
CLI::Validator whole_number(std::uint64_t min) {
  return CLI::Validator(
      [min](std::string& text) {
        const bool digits =
            !text.empty() && text.size() <= 20 && text.find_first_not_of("0123456789") == std::string::npos;
        errno = 0;
        const unsigned long long value = digits ? std::strtoull(text.c_str(), nullptr, 10) : 0;
        if (digits && errno != ERANGE && value >= min) return std::string();
        return "must be a whole number from " + std::to_string(min) + " to " +
               std::to_string(std::numeric_limits<std::uint64_t>::max()) + ", not '" + text + "'";
      },
      "", "whole number");
}

void add_dir(CLI::App* app, std::string& dir) {
  app->add_option("DIR", dir, "the bus directory (the one given to Bus::open)")->required();
}

} // namespace

int main(int argc, char** argv) {
  namespace cli = ringbus::cli;
  CLI::App app{
      "ringbus: look inside the topics of a bus directory, follow them live, check and feed them.\n"
      "Every subcommand but produce and verify --repair only reads: it can run next to a live writer."};
  app.set_version_flag("--version", std::string("ringbus ") + RINGBUS_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 done (verify: clean), 1 verify found damage, 2 bad arguments or an error "
      "(a missing directory, an unknown topic, a foreign or unreadable file, a writer in the way).");

  cli::TopicsArgs topics_args;
  std::string topics_format = "text";
  CLI::App* topics = app.add_subcommand(
      "topics", "Every topic: first and last offset, records, segments, bytes on disk, durability, retention, writer");
  add_dir(topics, topics_args.dir);
  add_format(topics, topics_format, false);

  cli::StatArgs stat_args;
  std::string stat_format = "text";
  CLI::App* stat = app.add_subcommand("stat",
                                      "Named consumers and consumer groups (committed offsets, lag) and each topic's "
                                      "live counters (appends, rate, waits, laps)");
  add_dir(stat, stat_args.dir);
  stat->add_option("TOPIC", stat_args.topic, "only this topic");
  add_format(stat, stat_format, false);
  stat->add_option("--interval", stat_args.interval_ms,
                   "milliseconds between the two samples the append rate is taken from (0: no rate)")
      ->check(CLI::Range(0, 60'000))
      ->default_str("200");

  cli::DumpArgs dump_args;
  std::string dump_format = "text";
  std::uint64_t from_offset = 0;
  std::string from_time;
  std::uint64_t count = 0;
  CLI::App* dump = app.add_subcommand("dump", "Records of a topic: offset, ISO-8601 time (UTC), key, headers, value");
  add_dir(dump, dump_args.dir);
  dump->add_option("TOPIC", dump_args.topic, "the topic")->required();
  CLI::Option* from = dump->add_option("--from", from_offset, "start at this offset (default: the oldest held)")
                          ->check(whole_number(0));
  CLI::Option* from_t =
      dump->add_option("--from-time", from_time,
                       "start at the first record (in offset order) whose timestamp is >= TIME: ISO-8601 "
                       "(2024-05-01T12:34:56.5Z; no zone means UTC) or nanoseconds since the epoch");
  from->excludes(from_t);
  CLI::Option* count_option = dump->add_option("--count", count, "at most N records")->check(whole_number(1));
  add_format(dump, dump_format, true);

  cli::TailArgs tail_args;
  std::string tail_format = "text";
  CLI::App* tail = app.add_subcommand(
      "tail", "The last records of a topic; with -f, then every new one as another process appends it");
  add_dir(tail, tail_args.dir);
  tail->add_option("TOPIC", tail_args.topic, "the topic")->required();
  tail->add_option("-n,--lines", tail_args.last, "print the last N records first")
      ->check(whole_number(0))
      ->default_str("10");
  tail->add_flag("-f,--follow", tail_args.follow, "keep printing new records until interrupted (Ctrl-C)");
  add_format(tail, tail_format, true);

  cli::VerifyArgs verify_args;
  std::string verify_format = "text";
  CLI::App* verify = app.add_subcommand(
      "verify", "Check every segment header, frame checksum and index; report damage by file and byte position");
  add_dir(verify, verify_args.dir);
  verify->add_option("TOPIC", verify_args.topic, "only this topic");
  verify->add_flag("--repair", verify_args.repair,
                   "cut the log at the first invalid frame of a tail segment and delete damaged indexes, as a "
                   "writer's recovery does; refuses damage elsewhere (needs no writer running)");
  add_format(verify, verify_format, false);

  cli::ProduceArgs produce_args;
  std::string separator;
  CLI::App* produce =
      app.add_subcommand("produce", "Append one record per line of standard input (the topic's single writer)");
  add_dir(produce, produce_args.dir);
  produce->add_option("TOPIC", produce_args.topic, "the topic")->required();
  produce->add_option("--key-separator", separator,
                      "the text before the first C of a line is the record's key, the rest its value (a line "
                      "without C is a value without key); one character, or \\t for a tab");
  CLI::Option* create = produce->add_flag("--create", produce_args.create,
                                          "create the topic (and the bus directory) when missing, default options");
  produce->add_option("--segment-bytes", produce_args.segment_bytes, "with --create: bytes per segment")
      ->check(whole_number(1))
      ->needs(create);
  produce->add_option("--segment-count", produce_args.segment_count, "with --create: segments in the ring")
      ->check(whole_number(1))
      ->needs(create);

  cli::BenchArgs bench_args;
  CLI::App* bench = app.add_subcommand(
      "bench", "Benchmark ringbus against its peers (ringbus-bench's headline scenarios): table, results file, chart");
  bench->add_flag("--quick", bench_args.quick, "fewer items and round trips: about a minute");
  bench
      ->add_option("--filter", bench_args.filter,
                   "run the rows whose name (<scenario>/<impl>/iterations:N/manual_time) matches this extended "
                   "regular expression instead of the headline scenarios ('-' first: those that do not), "
                   "e.g. 'rtt/' or 'spsc_8B/(ringbus_batch|boost_spsc)/'")
      ->check(CLI::Validator(
          [](std::string& filter) {
            const std::string problem = cli::bench_filter_problem(filter);
            return problem.empty() ? problem : "'" + filter + "' is not a valid regular expression: " + problem;
          },
          "REGEX", "regex"));
  bench
      ->add_option("--repetitions", bench_args.repetitions,
                   "run each row N times: the table shows the median and min - max")
      ->check(CLI::Range(1, 1000))
      ->default_str("1");
  CLI::Option* results_dir = bench->add_option(
      "--results-dir", bench_args.results_dir,
      "where the results file goes: <commit>_<cpu>_<compiler>_headline[-quick].md (default: bench/results of the "
      "source tree)");
  bench->add_flag("--no-results", bench_args.no_results, "write no results file (and no chart unless --chart)")
      ->excludes(results_dir);
  bench
      ->add_option("--persist-dir", bench_args.persist_dir,
                   "where persist_append, replay and recover make their bus directories (each removed after "
                   "its run)")
      ->default_str("/tmp");
  bench->add_option("--chart", bench_args.chart,
                    "write the chart (SVG) here (default: next to the results file, same stem, .svg)");
  bench
      ->add_option("--one-core-below", bench_args.one_core_below_ns,
                   "set aside spsc and rtt runs whose placement probe (a bare round trip between the two CPUs) "
                   "takes less than NS ns, as run with both CPUs on one physical core; 0 sets none aside")
      ->check(CLI::Validator(
          [](std::string& text) {
            char* end = nullptr;
            const double ns = std::strtod(text.c_str(), &end);
            const bool ok = !text.empty() && *end == '\0' && ns >= 0 && ns <= cli::bench_max_one_core_below_ns;
            return ok ? std::string() : "'" + text + "' is not a number of ns from 0 to 1e9 (0 sets nothing aside)";
          },
          "", "ns"))
      ->type_name("NS")
      ->default_str(std::to_string(static_cast<int>(cli::bench_default_one_core_below_ns)));
  bench->footer(
      "Headline scenarios (without --filter): spsc_8B, spsc_64B (one producer, one consumer), rtt (round trip), "
      "fanout_1to1..3 (one producer, N consumers), persist_append, replay and recover (persistent topics); each "
      "with ringbus's rows and the peers (rwq, moodycamel_cq, atomic_queue, boost_spsc; rwq_copies for fan-out). "
      "A progress line per row goes to stderr, the summary table (Markdown: medians, min - max, ratio to the best "
      "peer, the targets) to stdout. ringbus-bench runs every scenario and takes Google Benchmark's flags.\n"
      "Exit codes: 0 done, 1 a row failed its check (lost, repeated or reordered items: the table says FAILED), "
      "2 bad arguments, a build without benchmarks, or a file that cannot be written.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? cli::exit_ok : cli::exit_error;
  }

  topics_args.format = format_of(topics_format);
  stat_args.format = format_of(stat_format);
  dump_args.format = format_of(dump_format);
  tail_args.format = format_of(tail_format);
  verify_args.format = format_of(verify_format);

  try {
    cli::install_stop_handlers();
    if (*topics) return cli::run_topics(topics_args, std::cout);
    if (*stat) return cli::run_stat(stat_args, std::cout);
    if (*dump) {
      if (*from) dump_args.from_offset = from_offset;
      if (*from_t) dump_args.from_time = from_time;
      if (*count_option) dump_args.count = count;
      return cli::run_dump(dump_args, std::cout);
    }
    if (*tail) return cli::run_tail(tail_args, std::cout);
    if (*verify) return cli::run_verify(verify_args, std::cout);
    if (*produce) {
      if (separator == "\\t") separator = "\t";
      if (!separator.empty()) {
        if (separator.size() != 1) {
          std::cerr << "ringbus: error: --key-separator must be one character (or \\t), not '" << separator << "'\n";
          return cli::exit_error;
        }
        produce_args.key_separator = separator[0];
      }
      // The summary goes to standard error: standard output stays free for pipelines.
      return cli::run_produce(produce_args, std::cin, std::cerr);
    }
    if (*bench) {
      bench_args.command = "ringbus";
      for (int i = 1; i < argc; ++i) bench_args.command += std::string(" ") + argv[i];
      return cli::run_bench(bench_args);
    }
  } catch (const cli::Failure& e) {
    std::cerr << "ringbus: error: " << e.what() << '\n';
    return cli::exit_error;
  } catch (const std::exception& e) {
    std::cerr << "ringbus: error: " << e.what() << '\n';
    return cli::exit_error;
  }
  return cli::exit_error;
}
