// The `ringbus` command-line tool (src/cli/), run as a process against bus
// directories the tests write with the library. Outputs are checked field by
// field (json parsed), errors by message and exit code. Every wait is bounded.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "persist_support.hpp"
#include "ringbus/detail/segment_layout.hpp"
#include "test_support.hpp"

extern char** environ;

namespace ringbus::test {
namespace {

constexpr auto process_deadline = std::chrono::seconds(60);

// --- a tiny JSON reader for the tool's own output ---------------------------------

struct Json;
using JsonObject = std::map<std::string, Json>;
using JsonArray = std::vector<Json>;
struct Json {
  // null, bool, number (its text), string, array, object
  std::variant<std::nullptr_t, bool, double, std::string, JsonArray, JsonObject> v;
  std::string number_text;

  [[nodiscard]] bool is_null() const { return std::holds_alternative<std::nullptr_t>(v); }
  [[nodiscard]] const std::string& str() const { return std::get<std::string>(v); }
  [[nodiscard]] std::uint64_t u64() const {
    REQUIRE(std::holds_alternative<double>(v));
    return std::stoull(number_text);
  }
  [[nodiscard]] std::int64_t i64() const {
    REQUIRE(std::holds_alternative<double>(v));
    return std::stoll(number_text);
  }
  [[nodiscard]] bool boolean() const { return std::get<bool>(v); }
  [[nodiscard]] const JsonArray& array() const { return std::get<JsonArray>(v); }
  [[nodiscard]] const Json& operator[](const std::string& key) const {
    const auto& o = std::get<JsonObject>(v);
    const auto it = o.find(key);
    REQUIRE_MESSAGE(it != o.end(), "no field " << key);
    return it->second;
  }
  [[nodiscard]] bool has(const std::string& key) const {
    return std::holds_alternative<JsonObject>(v) && std::get<JsonObject>(v).count(key) != 0;
  }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : t_(text) {}
  Json parse() {
    Json j = value();
    space();
    REQUIRE_MESSAGE(i_ == t_.size(), "trailing text in " << std::string(t_));
    return j;
  }

 private:
  void space() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\t' || t_[i_] == '\r')) ++i_;
  }
  char peek() {
    space();
    REQUIRE_MESSAGE(i_ < t_.size(), "json ends early: " << std::string(t_));
    return t_[i_];
  }
  void expect(char c) {
    REQUIRE_MESSAGE(peek() == c, "expected '" << c << "' at " << i_ << " in " << std::string(t_));
    ++i_;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      REQUIRE(i_ < t_.size());
      const char c = t_[i_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      REQUIRE(i_ < t_.size());
      const char e = t_[i_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {
          REQUIRE(i_ + 4 <= t_.size());
          const unsigned cp = static_cast<unsigned>(std::stoul(std::string(t_.substr(i_, 4)), nullptr, 16));
          REQUIRE(cp < 0x80); // the tool escapes only control characters
          out += static_cast<char>(cp);
          i_ += 4;
          break;
        }
        default: out += e;
      }
    }
  }
  Json value() {
    Json j;
    const char c = peek();
    if (c == '{') {
      ++i_;
      JsonObject o;
      if (peek() == '}') {
        ++i_;
      } else {
        for (;;) {
          std::string key = string();
          expect(':');
          o[key] = value();
          if (peek() == ',') {
            ++i_;
            continue;
          }
          expect('}');
          break;
        }
      }
      j.v = std::move(o);
    } else if (c == '[') {
      ++i_;
      JsonArray a;
      if (peek() == ']') {
        ++i_;
      } else {
        for (;;) {
          a.push_back(value());
          if (peek() == ',') {
            ++i_;
            continue;
          }
          expect(']');
          break;
        }
      }
      j.v = std::move(a);
    } else if (c == '"') {
      j.v = string();
    } else if (t_.substr(i_, 4) == "null") {
      i_ += 4;
      j.v = nullptr;
    } else if (t_.substr(i_, 4) == "true") {
      i_ += 4;
      j.v = true;
    } else if (t_.substr(i_, 5) == "false") {
      i_ += 5;
      j.v = false;
    } else {
      const std::size_t start = i_;
      while (i_ < t_.size() && (std::isdigit(static_cast<unsigned char>(t_[i_])) || t_[i_] == '-' || t_[i_] == '.' ||
                                t_[i_] == 'e' || t_[i_] == 'E' || t_[i_] == '+')) {
        ++i_;
      }
      REQUIRE_MESSAGE(i_ > start, "not json at " << start << ": " << std::string(t_));
      j.number_text = std::string(t_.substr(start, i_ - start));
      j.v = std::stod(j.number_text);
    }
    return j;
  }

  std::string_view t_;
  std::size_t i_ = 0;
};

// One JSON object per non-empty line.
std::vector<Json> json_lines(const std::string& text) {
  std::vector<Json> out;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t eol = text.find('\n', at);
    if (eol == std::string::npos) eol = text.size();
    if (eol > at) out.push_back(JsonParser(std::string_view(text).substr(at, eol - at)).parse());
    at = eol + 1;
  }
  return out;
}

// --- running the tool ----------------------------------------------------------------

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() { REQUIRE(::pipe2(fd, O_CLOEXEC) == 0); }
  ~Pipe() {
    close_end(0);
    close_end(1);
  }
  void close_end(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// What the kernel says a live process is doing: its state, where it sleeps,
// and its signal masks (a hung tool's failure message names them).
std::string process_state(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid) + "/";
  std::string out;
  std::ifstream wchan(proc + "wchan");
  std::string line;
  if (std::getline(wchan, line)) out += "wchan " + line;
  std::ifstream status(proc + "status");
  while (std::getline(status, line)) {
    for (const char* field : {"State:", "SigQ:", "SigPnd:", "ShdPnd:", "SigBlk:", "SigIgn:", "SigCgt:"}) {
      if (line.starts_with(field)) out += ", " + line;
    }
  }
  return out.empty() ? "its /proc entry is unreadable" : out;
}

// The tool, started with args; its standard streams are pipes to this test.
class Tool {
 public:
  explicit Tool(const std::vector<std::string>& args) {
    std::vector<std::string> argv_strings{RINGBUS_CLI_PATH};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    REQUIRE(posix_spawn_file_actions_init(&actions) == 0);
    posix_spawn_file_actions_adddup2(&actions, in_.fd[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out_.fd[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err_.fd[1], 2);
    REQUIRE(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    in_.close_end(0);
    out_.close_end(1);
    err_.close_end(1);
  }
  ~Tool() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  Tool(const Tool&) = delete;
  Tool& operator=(const Tool&) = delete;

  // A tool that refuses its arguments exits without reading its input: the
  // write then fails with EPIPE and the rest is dropped (the tool's exit code
  // and stderr say why). SIGPIPE is ignored so that this process lives on.
  void write_input(const std::string& text) {
    static const bool sigpipe_ignored = std::signal(SIGPIPE, SIG_IGN) != SIG_ERR;
    REQUIRE(sigpipe_ignored);
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(in_.fd[1], text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EPIPE) return;
      REQUIRE(n > 0);
      done += static_cast<std::size_t>(n);
    }
  }
  void close_input() { in_.close_end(1); }

  // Reads what the tool wrote until pred(stdout) holds, both streams end, or the deadline passes.
  template <class Pred>
  bool read_until(Pred pred, std::chrono::steady_clock::time_point deadline) {
    while (!pred(out_text)) {
      if (out_.fd[0] < 0 && err_.fd[0] < 0) return false;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd fds[2] = {{out_.fd[0], POLLIN, 0}, {err_.fd[0], POLLIN, 0}};
      const int ready = ::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 1000)));
      if (ready <= 0) continue;
      drain(out_, fds[0], out_text);
      drain(err_, fds[1], err_text);
    }
    return true;
  }

  // Reads what the tool writes until it has printed n lines; fails the test
  // (naming what it got) when the deadline passes first.
  void require_lines(std::size_t n, std::chrono::steady_clock::time_point deadline) {
    REQUIRE_MESSAGE(read_until([n](const std::string& out) { return count_lines(out) >= n; }, deadline),
                    "wanted " << n << " lines; stdout: " << out_text.size() << " bytes; stderr: " << err_text);
  }

  // Waits for the tool to exit (bounded), reading what it writes, and returns its exit code.
  int finish() {
    close_input();
    const auto deadline = std::chrono::steady_clock::now() + process_deadline;
    read_until([](const std::string&) { return false; }, deadline);
    return reap(deadline);
  }
  // Waits for the tool to exit (bounded) without reading what it writes.
  int wait_without_reading() { return reap(std::chrono::steady_clock::now() + process_deadline); }
  void signal(int sig) { REQUIRE(::kill(pid_, sig) == 0); }
  [[nodiscard]] pid_t pid() const { return pid_; }

  std::string out_text;
  std::string err_text;

 private:
  static void drain(Pipe& p, const pollfd& fd, std::string& into) {
    if (p.fd[0] < 0 || (fd.revents & (POLLIN | POLLHUP | POLLERR)) == 0) return;
    char buffer[65536];
    const ssize_t n = ::read(p.fd[0], buffer, sizeof buffer);
    if (n <= 0) {
      p.close_end(0);
      return;
    }
    into.append(buffer, static_cast<std::size_t>(n));
  }

  // The tool's exit code, once it exits before deadline.
  int reap(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      REQUIRE(r >= 0);
      if (r == pid_) {
        pid_ = -1;
        REQUIRE_MESSAGE(WIFEXITED(status), "the tool died of signal " << WTERMSIG(status) << "; stderr: " << err_text);
        return WEXITSTATUS(status);
      }
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                      "the tool did not exit in time; " << process_state(pid_) << "; stderr: " << err_text);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  Pipe in_, out_, err_;
  pid_t pid_ = -1;
};

struct Run {
  int code = -1;
  std::string out;
  std::string err;
};

Run run(const std::vector<std::string>& args, const std::string& input = {}) {
  Tool tool(args);
  if (!input.empty()) tool.write_input(input);
  Run r;
  r.code = tool.finish();
  r.out = tool.out_text;
  r.err = tool.err_text;
  return r;
}

std::string to_hex_string(std::string_view bytes) {
  static constexpr char digit[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out += digit[static_cast<unsigned char>(c) >> 4];
    out += digit[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

// --- topics the tests write -------------------------------------------------------------

constexpr std::int64_t base_time = 1714566896123456789; // 2024-05-01T12:34:56.123456789Z

// n records of 32-byte values (one 64-byte packed frame each: 64 per 4 KiB
// segment, frame k of a segment at data position 64 * (k % 64)), timestamps base_time + i ms.
void append_even(Bus& bus, const std::string& topic, std::uint64_t n) {
  Producer p = bus.producer(topic).value();
  for (std::uint64_t i = p.next_offset(), end = i + n; i < end; ++i) {
    const std::string value = value_for(i, even_value_bytes);
    p.append(msg(ByteView(), value, base_time + static_cast<std::int64_t>(i) * 1'000'000)).value();
  }
}

// Topic "t" of 4 small persistent segments holding 200 records (segments 0,
// 64 and 128 sealed, 192 the tail), its writer gone; the segment files.
std::vector<std::string> write_four_segments(TempBusDir& dir, TopicOptions o = persistent_small_ring(4)) {
  {
    Bus bus = open_bus(dir.path(), no_flusher());
    bus.create_topic("t", o).check();
    append_even(bus, "t", 200);
  }
  std::vector<std::string> segments = dir.segments("t");
  REQUIRE(segments.size() == 4);
  return segments;
}

void flip_byte(const std::string& path, std::uint64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f.good());
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
  REQUIRE(f.good());
}

// In a segment of 64-byte frames from offset 0 (persistent_small_ring,
// append_even), record 63's frame's first word back to zero: unpublished.
void unpublish_record_63(const std::string& segment) {
  std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(4096 + 63 * 64);
  const char zeros[8] = {};
  f.write(zeros, sizeof zeros);
  REQUIRE(f.good());
}

Json only_line(const std::vector<Json>& lines, const std::string& field, const std::string& value) {
  const Json* found = nullptr;
  for (const Json& j : lines) {
    if (j.has(field) && j[field].str() == value) {
      REQUIRE_MESSAGE(found == nullptr, "two lines with " << field << " = " << value);
      found = &j;
    }
  }
  REQUIRE_MESSAGE(found != nullptr, "no line with " << field << " = " << value);
  return *found;
}

} // namespace

TEST_SUITE("cli") {
  TEST_CASE("topics_lists_every_topic_with_offsets_segments_settings_and_the_writer_pid") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      TopicOptions kept = persistent_small_ring(4);
      kept.durability = Durability::interval;
      kept.flush_interval = std::chrono::milliseconds(25);
      kept.retention.max_segments = 3;
      bus.create_topic("orders", kept).check();
      bus.create_topic("empty", persistent_small_ring(2)).check();
      append_even(bus, "orders", 300); // 64 per segment: the ring of 4 laps, retention keeps 3
    }
    const Run r = run({"topics", dir.path(), "--format", "json"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const std::vector<Json> lines = json_lines(r.out);
    REQUIRE(lines.size() == 2);
    const Json& orders = only_line(lines, "topic", "orders");
    CHECK(orders["end_offset"].u64() == 300);
    CHECK(orders["last_offset"].u64() == 299);
    CHECK(orders["segments"].u64() == 3);
    CHECK(orders["first_offset"].u64() == 300 - 300 % 64 - 128); // the three newest segments
    CHECK(orders["records"].u64() == 300 - orders["first_offset"].u64());
    CHECK(orders["segment_bytes"].u64() == 4096);
    CHECK(orders["segment_count"].u64() == 4);
    CHECK(orders["overflow"].str() == "block");
    CHECK(orders["durability"].str() == "interval");
    CHECK(orders["flush_interval_ms"].u64() == 25);
    CHECK(orders["retention_max_segments"].u64() == 3);
    CHECK(orders["retention_max_bytes"].u64() == 0);
    CHECK(orders["disk_bytes"].u64() >= 3 * (4096 + 4096));
    CHECK(orders["writer_pid"].is_null());
    const Json& empty = only_line(lines, "topic", "empty");
    CHECK(empty["records"].u64() == 0);
    CHECK(empty["last_offset"].is_null());
    CHECK(empty["segments"].u64() == 1);

    // A writer holds the directory: its pid, from DIR/LOCK.
    Bus writer = open_bus(dir.path(), no_flusher());
    const Run held = run({"topics", dir.path(), "--format", "json"});
    REQUIRE_MESSAGE(held.code == 0, held.err);
    for (const Json& j : json_lines(held.out)) CHECK(j["writer_pid"].i64() == ::getpid());
    const Run text = run({"topics", dir.path()});
    REQUIRE(text.code == 0);
    CHECK(contains(text.out, "writer pid " + std::to_string(::getpid())));
    CHECK(contains(text.out, "offsets     " + std::to_string(orders["first_offset"].u64()) + " .. 299"));
    CHECK(contains(text.out, "retention   max_segments 3"));
    CHECK(contains(text.out, "durability  interval (every 25 ms)"));
  }

  TEST_CASE("stat_shows_committed_offsets_and_lag_and_the_last_counters_of_a_writer_that_is_gone") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      bus.create_topic("events", persistent_small_ring(4)).check();
      bus.create_topic("other", persistent_small_ring(4)).check();
      append_even(bus, "events", 50);
      ConsumerOptions co;
      co.topics = {"events"};
      co.name = "billing";
      Consumer c = bus.consumer(co).value();
      REQUIRE(c.poll(20).value().size() == 20);
      c.commit().check();
    }
    const Run r = run({"stat", dir.path(), "--format", "json"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const std::vector<Json> lines = json_lines(r.out);
    const Json& billing = only_line(lines, "consumer", "billing");
    CHECK(billing["topic"].str() == "events");
    CHECK(billing["committed"].u64() == 20);
    CHECK(billing["end_offset"].u64() == 50);
    CHECK(billing["lag"].u64() == 30);
    CHECK(only_line(lines, "kind", "bus")["writer_pid"].is_null());
    // The writer (this process) closed its bus: its final counters, not live.
    for (const Json& j : lines) {
      if (!j.has("kind") || j["kind"].str() != "topic") continue;
      CHECK(j["stats"].str() == "last");
      CHECK(j["writer_running"].boolean() == false);
      CHECK(j["writer_pid"].i64() == ::getpid());
      CHECK(j["records_appended"].u64() == (j["topic"].str() == "events" ? 50 : 0));
      CHECK(j["records_per_second"].is_null());
    }

    const Run text = run({"stat", dir.path(), "events"});
    REQUIRE(text.code == 0);
    CHECK(contains(text.out, "consumer billing"));
    CHECK(contains(text.out, "topic events: committed 20, end 50, lag 30"));
    CHECK(contains(text.out, "topic events: writer: not running; last values from pid " + std::to_string(::getpid())));
    CHECK(contains(text.out, "  records_appended 50, bytes_appended 3200 since "));
    const Run other = run({"stat", dir.path(), "other"});
    REQUIRE(other.code == 0);
    CHECK(contains(other.out, "no committed offsets for topic other"));
    const Run unknown = run({"stat", dir.path(), "nope"});
    CHECK(unknown.code == 2);
    CHECK(contains(unknown.err, "topic 'nope' does not exist"));
    // Read-only: nothing was created or written.
    CHECK(!std::filesystem::exists(dir.path() + "/consumers/billing.offsets.tmp"));
  }

  TEST_CASE("stat_lists_consumer_groups_with_their_committed_position_and_lag_next_to_named_consumers") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      bus.create_topic("events", persistent_small_ring(4)).check();
      bus.create_topic("other", persistent_small_ring(4)).check();
      append_even(bus, "events", 50);
      GroupMember worker = bus.group_member("billing", "events").value();
      REQUIRE(worker.poll(30).value().size() == 30);
      worker.ack().check();
      worker.commit().check();
      ConsumerOptions co;
      co.topics = {"events"};
      co.name = "billing"; // a consumer and a group may share a name
      Consumer c = bus.consumer(co).value();
      REQUIRE(c.poll(20).value().size() == 20);
      c.commit().check();
    }
    const Run r = run({"stat", dir.path(), "events", "--format", "json"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const std::vector<Json> lines = json_lines(r.out);
    const Json& group = only_line(lines, "group", "billing");
    CHECK(group["kind"].str() == "group");
    CHECK(group["topic"].str() == "events");
    CHECK(group["committed"].u64() == 30);
    CHECK(group["first_offset"].u64() == 0);
    CHECK(group["end_offset"].u64() == 50);
    CHECK(group["lag"].u64() == 20);
    const Json& consumer = only_line(lines, "consumer", "billing");
    CHECK(consumer["kind"].str() == "consumer");
    CHECK(consumer["committed"].u64() == 20);
    CHECK(consumer["lag"].u64() == 30);
    CHECK(!contains(r.out, "not persisted"));

    const Run text = run({"stat", dir.path()});
    REQUIRE_MESSAGE(text.code == 0, text.err);
    CHECK(contains(text.out, "group billing (commit "));
    CHECK(contains(text.out, "topic events: committed 30, end 50, lag 20"));
    CHECK(contains(text.out, "consumer billing (commit "));
    CHECK(contains(text.out, "topic events: committed 20, end 50, lag 30"));
    const Run other = run({"stat", dir.path(), "other"});
    REQUIRE(other.code == 0);
    CHECK(contains(other.out, "no committed offsets for topic other"));
    // The groups/ directory is not a topic to `topics`, nor damage to `verify`.
    const Run topics = run({"topics", dir.path(), "--format", "json"});
    REQUIRE_MESSAGE(topics.code == 0, topics.err);
    CHECK(json_lines(topics.out).size() == 2);
    const Run verify = run({"verify", dir.path()});
    CHECK_MESSAGE(verify.code == 0, verify.out << verify.err);
  }

  TEST_CASE("stat_shows_a_live_writers_counters_and_append_rate_then_says_when_it_is_gone") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      bus.create_topic("in", persistent_small_ring(4)).check();
    }
    // The writer: `ringbus produce`, its standard input kept open (its flusher publishes every 100 ms).
    Tool writer({"produce", dir.path(), "in"});
    constexpr std::uint64_t lines = 25;
    std::string input;
    for (std::uint64_t i = 0; i < lines; ++i) input += "record-" + std::to_string(i) + "\n";
    writer.write_input(input);
    const auto deadline = std::chrono::steady_clock::now() + process_deadline;
    Json live;
    for (;;) {
      const Run r = run({"stat", dir.path(), "in", "--format", "json", "--interval", "50"});
      REQUIRE_MESSAGE(r.code == 0, r.err);
      live = only_line(json_lines(r.out), "kind", "topic");
      if (live.has("records_appended") && live["records_appended"].u64() == lines && live["stats"].str() == "live") {
        break;
      }
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                      "stat never showed the " << lines << " records: " << r.out);
    }
    CHECK(live["writer_pid"].i64() == writer.pid());
    CHECK(live["writer_running"].boolean());
    CHECK(live["end_offset"].u64() == lines);
    CHECK(live["has_producer"].boolean());
    CHECK(live["producer_waits"].u64() == 0);
    CHECK(live["lapped_consumers"].u64() == 0);
    CHECK(live.has("records_per_second")); // a number, or null with a note when no new sample came in time
    if (!live["records_per_second"].is_null()) CHECK(live["rate_interval_ns"].u64() > 0);
    const Run text = run({"stat", dir.path(), "in"});
    REQUIRE(text.code == 0);
    CHECK(contains(text.out, "topic in: writer pid " + std::to_string(writer.pid())));
    CHECK(contains(text.out, "  records_appended 25, bytes_appended "));

    const pid_t writer_pid = writer.pid();
    REQUIRE_MESSAGE(writer.finish() == 0, writer.err_text); // end of input: it closes its bus
    const Run gone = run({"stat", dir.path(), "in"});
    REQUIRE(gone.code == 0);
    CHECK(contains(gone.out, "topic in: writer: not running; last values from pid " + std::to_string(writer_pid)));
    CHECK(contains(gone.out, "  records_appended 25, "));
    const Json last = only_line(json_lines(run({"stat", dir.path(), "in", "--format", "json"}).out), "kind", "topic");
    CHECK(last["stats"].str() == "last");
    CHECK(last["writer_pid"].i64() == writer_pid);
    CHECK(last["records_appended"].u64() == lines);
    CHECK(last["records_per_second"].is_null());

    // A damaged stats file is named and ignored, never trusted.
    {
      std::fstream f(dir.topic_dir("in") + "/stats", std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(352); // records_appended
      f.write("\x01", 1);
    }
    const Run damaged = run({"stat", dir.path(), "in"});
    REQUIRE(damaged.code == 0);
    CHECK(contains(damaged.out, "topic in: live counters: ignored: stats file " + dir.topic_dir("in") + "/stats"));
    CHECK(run({"verify", dir.path()}).code == 0); // neither a segment nor damage to the log
  }

  TEST_CASE("dump_prints_each_record_with_offset_time_key_headers_and_value_field_by_field") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      bus.create_topic("ledger", persistent_small_ring(4)).check();
      Producer p = bus.producer("ledger").value();
      const Header headers[] = {{ByteView("type"), ByteView("deposit")}, {ByteView("bin"), ByteView("\x01\x02", 2)}};
      p.append(msg("acct-1", "{\"amount\":500}", base_time, headers)).value();
      const unsigned char binary[] = {0x00, 0xff, 0x10, 'a'};
      p.append(msg("", ByteView(binary, sizeof binary), base_time + 1)).value();
      p.append(msg("k\"q", "line\nbreak", base_time + 2)).value();
    }
    const Run r = run({"dump", dir.path(), "ledger", "--format", "json"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const std::vector<Json> lines = json_lines(r.out);
    REQUIRE(lines.size() == 3);
    const Json& first = lines[0];
    CHECK(first["topic"].str() == "ledger");
    CHECK(first["offset"].u64() == 0);
    CHECK(first["timestamp"].str() == "2024-05-01T12:34:56.123456789Z");
    CHECK(first["timestamp_ns"].i64() == base_time);
    CHECK(first["key"].str() == "acct-1");
    CHECK(first["key_encoding"].str() == "text");
    CHECK(first["value"].str() == "{\"amount\":500}");
    CHECK(first["value_encoding"].str() == "text");
    REQUIRE(first["headers"].array().size() == 2);
    CHECK(first["headers"].array()[0]["name"].str() == "type");
    CHECK(first["headers"].array()[0]["value"].str() == "deposit");
    CHECK(first["headers"].array()[1]["value"].str() == "0102");
    CHECK(first["headers"].array()[1]["value_encoding"].str() == "hex");
    CHECK(lines[1]["offset"].u64() == 1);
    CHECK(lines[1]["timestamp"].str() == "2024-05-01T12:34:56.123456790Z");
    CHECK(lines[1]["value"].str() == "00ff1061");
    CHECK(lines[1]["value_encoding"].str() == "hex");
    CHECK(lines[1]["key"].str().empty());
    CHECK(lines[2]["key"].str() == "k\"q");
    CHECK(lines[2]["value"].str() == "6c696e650a627265616b"); // a newline is not printable: hex

    const Run text = run({"dump", dir.path(), "ledger"});
    REQUIRE(text.code == 0);
    CHECK(count_lines(text.out) == 3);
    CHECK(contains(text.out,
                   "offset=0 time=2024-05-01T12:34:56.123456789Z key=\"acct-1\" headers={\"type\"=\"deposit\", "
                   "\"bin\"=0x0102} value=\"{\\\"amount\\\":500}\"\n"));
    CHECK(contains(text.out, "offset=1 time=2024-05-01T12:34:56.123456790Z value=0x00ff1061\n"));
    const Run hex = run({"dump", dir.path(), "ledger", "--format", "hex", "--from", "1", "--count", "1"});
    REQUIRE(hex.code == 0);
    CHECK(contains(hex.out, "offset=1 time=2024-05-01T12:34:56.123456790Z key_bytes=0 value_bytes=4 headers=0\n"));
    CHECK(contains(hex.out, "    00000000  00 ff 10 61"));
    CHECK(contains(hex.out, "|...a|"));
    CHECK(!contains(hex.out, "offset=2"));
  }

  TEST_CASE("dump_starts_at_an_offset_or_a_time_and_stops_after_count_records") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      bus.create_topic("ticks", persistent_small_ring(4)).check();
      append_even(bus, "ticks", 150); // across three segments
    }
    const auto offsets = [](const Run& r) {
      std::vector<std::uint64_t> out;
      for (const Json& j : json_lines(r.out)) out.push_back(j["offset"].u64());
      return out;
    };
    const Run from = run({"dump", dir.path(), "ticks", "--from", "70", "--count", "5", "--format", "json"});
    REQUIRE_MESSAGE(from.code == 0, from.err);
    CHECK(offsets(from) == std::vector<std::uint64_t>{70, 71, 72, 73, 74});
    for (const Json& j : json_lines(from.out)) {
      CHECK(j["value"].str() == to_hex_string(value_for(j["offset"].u64(), even_value_bytes)));
    }
    // Record i has timestamp base_time + i ms; 12:34:56.123456789 + 100 ms = .223456789.
    const Run iso = run(
        {"dump", dir.path(), "ticks", "--from-time", "2024-05-01T12:34:56.2235Z", "--count", "2", "--format", "json"});
    REQUIRE_MESSAGE(iso.code == 0, iso.err);
    CHECK(offsets(iso) == std::vector<std::uint64_t>{101, 102});
    const Run zone = run({"dump", dir.path(), "ticks", "--from-time", "2024-05-01T14:34:56.223456789+02:00", "--count",
                          "1", "--format", "json"});
    REQUIRE(zone.code == 0);
    CHECK(offsets(zone) == std::vector<std::uint64_t>{100});
    const Run ns =
        run({"dump", dir.path(), "ticks", "--from-time", std::to_string(base_time + 149'000'000), "--format", "json"});
    REQUIRE(ns.code == 0);
    CHECK(offsets(ns) == std::vector<std::uint64_t>{149});
    const Run all = run({"dump", dir.path(), "ticks", "--format", "json"});
    REQUIRE(all.code == 0);
    CHECK(offsets(all).size() == 150);

    const Run past = run({"dump", dir.path(), "ticks", "--from", "151"});
    CHECK(past.code == 2);
    CHECK(contains(past.err, "--from 151 is outside topic 'ticks': it holds offsets 0 .. 149"));
    const Run bad_time = run({"dump", dir.path(), "ticks", "--from-time", "yesterday"});
    CHECK(bad_time.code == 2);
    CHECK(contains(bad_time.err, "--from-time 'yesterday' is neither ISO-8601"));
    const Run both = run({"dump", dir.path(), "ticks", "--from", "1", "--from-time", "0"});
    CHECK(both.code == 2);
    CHECK(contains(both.err, "excludes"));
  }

  TEST_CASE("tail_prints_the_last_n_records_and_exits") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      bus.create_topic("log", persistent_small_ring(4)).check();
      append_even(bus, "log", 100);
    }
    const Run ten = run({"tail", dir.path(), "log", "--format", "json"});
    REQUIRE_MESSAGE(ten.code == 0, ten.err);
    const std::vector<Json> lines = json_lines(ten.out);
    REQUIRE(lines.size() == 10);
    for (std::size_t i = 0; i < 10; ++i) CHECK(lines[i]["offset"].u64() == 90 + i);
    const Run three = run({"tail", dir.path(), "log", "-n", "3"});
    REQUIRE(three.code == 0);
    CHECK(count_lines(three.out) == 3);
    CHECK(three.out.starts_with("offset=97 "));
    const Run more = run({"tail", dir.path(), "log", "-n", "1000", "--format", "json"});
    REQUIRE(more.code == 0);
    CHECK(json_lines(more.out).size() == 100);
  }

  TEST_CASE("tail_follow_sees_records_another_process_appends_after_it_started") {
    TempBusDir dir;
    Bus bus = open_bus(dir.path(), no_flusher()); // this process is the live writer
    bus.create_topic("live", persistent_small_ring(4)).check();
    append_even(bus, "live", 5);
    Tool tail({"tail", dir.path(), "live", "-f", "-n", "2", "--format", "json"});
    const auto deadline = std::chrono::steady_clock::now() + process_deadline;
    tail.require_lines(2, deadline);
    append_even(bus, "live", 195); // rolls into the third and fourth segment while it follows
    tail.require_lines(2 + 195, deadline);
    tail.signal(SIGTERM);
    CHECK(tail.finish() == 0);
    const std::vector<Json> lines = json_lines(tail.out_text);
    REQUIRE(lines.size() == 197);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const std::uint64_t offset = 3 + i;
      REQUIRE(lines[i]["offset"].u64() == offset);
      REQUIRE(lines[i]["value"].str() == to_hex_string(value_for(offset, even_value_bytes)));
    }
  }

  // Ctrl-C or SIGTERM while it waits, caught up: tail -f exits 0 (it holds
  // both signals pending and takes them in its sleeps).
  TEST_CASE("tail_follow_exits_0_on_sigint_or_sigterm_while_caught_up") {
    TempBusDir dir;
    Bus bus = open_bus(dir.path(), no_flusher());
    bus.create_topic("live", persistent_small_ring(4)).check();
    append_even(bus, "live", 5);
    for (const int sig : {SIGINT, SIGTERM}) {
      CAPTURE(sig);
      Tool tail({"tail", dir.path(), "live", "-f", "-n", "1"});
      tail.require_lines(1, std::chrono::steady_clock::now() + process_deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(50)); // caught up and asleep, most likely
      tail.signal(sig);
      CHECK(tail.finish() == 0);
      CHECK(count_lines(tail.out_text) == 1);
    }
  }

  // Its output blocked on a full pipe (a reader that stopped reading), tail
  // -f still ends on SIGTERM: stop signals are held only while it polls and
  // sleeps, not while it writes.
  TEST_CASE("tail_follow_ends_on_sigterm_while_its_output_is_blocked_on_a_full_pipe") {
    TempBusDir dir;
    Bus bus = open_bus(dir.path(), no_flusher());
    bus.create_topic("live", persistent_small_ring(64)).check();
    append_even(bus, "live", 1);
    Tool tail({"tail", dir.path(), "live", "-f", "-n", "1", "--format", "json"});
    tail.require_lines(1, std::chrono::steady_clock::now() + process_deadline);
    append_even(bus, "live", 3000); // ~500 KB of json: far more than a pipe holds
    // Blocked in a write, most likely within the first second; the signal
    // must end it either way.
    for (int i = 0; i < 200 && process_state(tail.pid()).find("pipe") == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    tail.signal(SIGTERM);
    CHECK(tail.wait_without_reading() == 0);
  }

  // A frame changed in the file after the live writer published it: tail -f
  // prints what comes before it, then stops with the error naming it (it
  // waited silently for good before). The frame is changed before tail
  // starts: changed after, tail may have read it whole first.
  TEST_CASE("tail_follow_stops_with_an_error_at_a_frame_changed_in_the_file_after_the_writer_published_it") {
    TempBusDir dir;
    Bus bus = open_bus(dir.path(), no_flusher()); // this process is the live writer
    bus.create_topic("live", persistent_small_ring(4)).check();
    append_even(bus, "live", 8);
    {
      // Record 5's frame (the sixth of segment 0): its base offset overwritten.
      std::fstream f(dir.segments("live").front(), std::ios::in | std::ios::out | std::ios::binary);
      const std::uint64_t wrong = 999;
      f.seekp(4096 + 5 * 64 + 16);
      f.write(reinterpret_cast<const char*>(&wrong), sizeof wrong);
      REQUIRE(f.good());
    }
    Tool tail({"tail", dir.path(), "live", "-f", "-n", "8", "--format", "json"});
    const int code = tail.finish(); // fails the test if it does not exit in time
    CHECK_MESSAGE(code == 2, tail.err_text);
    const std::vector<Json> lines = json_lines(tail.out_text);
    REQUIRE(lines.size() == 5);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      CHECK(lines[i]["offset"].u64() == i);
      CHECK(lines[i]["value"].str() == to_hex_string(value_for(i, even_value_bytes)));
    }
    CHECK(contains(tail.err_text, "topic 'live': the frame at byte 320 of its log, where offset 5 should be"));
    CHECK(contains(tail.err_text, "does not follow the frame before"));
    const Run verify = run({"verify", dir.path(), "live"});
    CHECK(verify.code == 1);
    CHECK(contains(verify.out, "offset 5"));
  }

  TEST_CASE("verify_names_the_file_and_position_of_a_flipped_byte_and_repair_cuts_the_tail_there") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      // interval: its frames carry CRC32C, which catches a flipped value byte
      // (a none topic's frames carry no checksum: README "Checksums").
      TopicOptions o = persistent_small_ring(4);
      o.durability = Durability::interval;
      bus.create_topic("t", o).check();
      append_even(bus, "t", 100); // segment 0: 0..63, segment 64: 64..99 (the tail)
    }
    const Run clean = run({"verify", dir.path()});
    REQUIRE_MESSAGE(clean.code == 0, clean.out << clean.err);
    CHECK(contains(clean.out, "topic t: 2 segments"));
    CHECK(contains(clean.out, "100 records (offsets 0 .. 99): ok"));

    const std::vector<std::string> segments = dir.segments("t");
    REQUIRE(segments.size() == 2);
    const std::uint64_t frame = 80 - 64;            // record 80's frame in the tail segment
    flip_byte(segments[1], 4096 + frame * 64 + 40); // inside its value
    const Run damaged = run({"verify", dir.path(), "t", "--format", "json"});
    CHECK(damaged.code == 1);
    const std::vector<Json> lines = json_lines(damaged.out);
    const Json& finding = only_line(lines, "kind", "damage");
    CHECK(finding["file"].str() == segments[1]);
    CHECK(finding["file_offset"].u64() == 4096 + frame * 64);
    CHECK(finding["file_end"].u64() == 4096 + frame * 64 + 64);
    CHECK(finding["position"].u64() == frame * 64);
    CHECK(finding["offset"].u64() == 80);
    CHECK(finding["repair"].str() == "cut_tail");
    CHECK(contains(finding["problem"].str(), "checksum"));
    CHECK(only_line(lines, "kind", "summary")["clean"].boolean() == false);
    const Run text = run({"verify", dir.path()});
    CHECK(text.code == 1);
    CHECK(contains(text.out, "DAMAGED " + segments[1] + " bytes " + std::to_string(4096 + frame * 64) + " .. " +
                                 std::to_string(4096 + frame * 64 + 63) + " (data position 1024, offset 80)"));

    // A writer holds the directory: --repair refuses. (Its own recovery at open
    // cuts the log at record 80; damage it again, further back, while it runs.)
    {
      Bus writer = open_bus(dir.path(), no_flusher());
      CHECK(run({"verify", dir.path()}).code == 0);
      flip_byte(segments[1], 4096 + 5 * 64 + 40); // record 69
      const Run busy = run({"verify", dir.path(), "--repair"});
      CHECK(busy.code == 2);
      CHECK(contains(busy.err, "writer pid " + std::to_string(::getpid()) + " holds"));
    }
    CHECK(run({"verify", dir.path()}).code == 1);
    const Run repaired = run({"verify", dir.path(), "--repair"});
    CHECK_MESSAGE(repaired.code == 0, repaired.out << repaired.err);
    CHECK(contains(repaired.out, "after repair:"));
    const Run after = run({"topics", dir.path(), "--format", "json"});
    REQUIRE(after.code == 0);
    CHECK(json_lines(after.out)[0]["end_offset"].u64() == 69);
  }

  TEST_CASE("verify_refuses_to_repair_damage_in_a_sealed_segment_and_names_it") {
    TempBusDir dir;
    const std::vector<std::string> segments = write_four_segments(dir);
    flip_byte(segments[0], 4096 + 3 * 64 + 20); // record 3's header (base_offset)
    const Run damaged = run({"verify", dir.path(), "--format", "json"});
    CHECK(damaged.code == 1);
    const Json& finding = only_line(json_lines(damaged.out), "kind", "damage");
    CHECK(finding["file"].str() == segments[0]);
    CHECK(finding["file_offset"].u64() == 4096 + 3 * 64);
    CHECK(finding["repair"].str() == "manual");
    const Run refused = run({"verify", dir.path(), "--repair"});
    CHECK(refused.code == 1);
    CHECK(contains(refused.err, "--repair refuses"));
    CHECK(contains(refused.err, segments[0]));
    CHECK(contains(refused.err, "nothing was changed"));
    CHECK(dir.segments("t").size() == 4);
  }

  // The next writer's recovery checks every segment when writer.boot names
  // another boot or directory (a reboot, a copy): verify says what it will
  // do, and --repair does it, where the same boot's recovery passes by.
  TEST_CASE("verify_after_a_reboot_says_the_next_writer_cuts_the_log_at_a_damaged_sealed_segment_and_repair_does_it") {
    TempBusDir dir;
    TopicOptions o = persistent_small_ring(4);
    o.durability = Durability::interval;
    const std::vector<std::string> segments = write_four_segments(dir, o);
    flip_byte(segments[1], 4096 + 6 * 64 + 40); // inside record 70's value
    // The same boot: the writer's recovery does not scan it; --repair refuses.
    const Json same_boot = only_line(json_lines(run({"verify", dir.path(), "--format", "json"}).out), "kind", "damage");
    CHECK(same_boot["repair"].str() == "manual");
    CHECK(contains(same_boot["problem"].str(), "does not scan while the directory's last writer ran in this boot"));
    CHECK(run({"verify", dir.path(), "--repair"}).code == 1);
    CHECK(dir.segments("t").size() == 4);

    pretend_reboot(dir);
    const Run damaged = run({"verify", dir.path(), "--format", "json"});
    CHECK(damaged.code == 1);
    const Json finding = only_line(json_lines(damaged.out), "kind", "damage");
    CHECK(finding["file"].str() == segments[1]);
    CHECK(finding["offset"].u64() == 70);
    CHECK(finding["repair"].str() == "recovery_after_reboot");
    const std::string problem = finding["problem"].str();
    CHECK_FALSE(contains(problem, "does not scan"));
    CHECK(contains(problem, "it cuts the log here, at offset 70"));
    CHECK(contains(problem, "sets the 2 segments after it aside (renamed .damaged; offsets 128 on)"));
    // `topics` tells the same story.
    const Json listed = json_lines(run({"topics", dir.path(), "--format", "json"}).out)[0];
    CHECK(listed["end_offset"].u64() == 70);

    const Run repaired = run({"verify", dir.path(), "--repair"});
    CHECK_MESSAGE(repaired.code == 0, repaired.out << repaired.err);
    CHECK(dir.segments("t").size() == 2);
    CHECK(std::filesystem::exists(segments[1] + ".damaged")); // the copy made before the cut
    CHECK(std::filesystem::exists(segments[3] + ".damaged"));
    const Json after = json_lines(run({"topics", dir.path(), "--format", "json"}).out)[0];
    CHECK(after["first_offset"].u64() == 0);
    CHECK(after["end_offset"].u64() == 70);
  }

  TEST_CASE("verify_after_a_reboot_says_the_next_writer_sets_a_damaged_oldest_segment_aside_and_repair_does_it") {
    for (const bool header : {false, true}) { // a bad frame; a header that does not validate
      CAPTURE(header);
      TempBusDir dir;
      const std::vector<std::string> segments = write_four_segments(dir);
      flip_byte(segments[0], header ? 0 : 4096 + 3 * 64 + 40);
      const Run same_boot = run({"verify", dir.path(), "--repair"});
      CHECK(same_boot.code == 1);
      CHECK(contains(same_boot.err, "--repair refuses"));
      CHECK(dir.segments("t").size() == 4);

      pretend_reboot(dir);
      const Json finding = only_line(json_lines(run({"verify", dir.path(), "--format", "json"}).out), "kind", "damage");
      CHECK(finding["file"].str() == segments[0]);
      CHECK(finding["repair"].str() == "recovery_after_reboot");
      CHECK(contains(finding["problem"].str(),
                     "sets this segment aside (renamed .damaged) and moves the head past it "
                     "to offset 64"));
      const Run repaired = run({"verify", dir.path(), "--repair"});
      CHECK_MESSAGE(repaired.code == 0, repaired.out << repaired.err);
      CHECK(dir.segments("t").size() == 3);
      CHECK(std::filesystem::exists(segments[0] + ".damaged"));
      const Json after = json_lines(run({"topics", dir.path(), "--format", "json"}).out)[0];
      CHECK(after["first_offset"].u64() == 64);
      CHECK(after["end_offset"].u64() == 200);
    }
  }

  TEST_CASE("verify_after_a_reboot_says_a_segment_header_that_does_not_validate_ends_the_log_and_repair_does_it") {
    TempBusDir dir;
    const std::vector<std::string> segments = write_four_segments(dir);
    flip_byte(segments[2], 0); // segment 128's magic
    const Json same_boot = only_line(json_lines(run({"verify", dir.path(), "--format", "json"}).out), "kind", "damage");
    CHECK(same_boot["repair"].str() == "manual");
    pretend_reboot(dir);
    const Json finding = only_line(json_lines(run({"verify", dir.path(), "--format", "json"}).out), "kind", "damage");
    CHECK(finding["repair"].str() == "recovery_after_reboot");
    CHECK(contains(finding["problem"].str(),
                   "it ends the log at offset 128, with " + std::filesystem::path(segments[1]).filename().string()));
    CHECK(contains(finding["problem"].str(), "the 2 segments after it, this one included, aside"));
    const Run repaired = run({"verify", dir.path(), "--repair"});
    CHECK_MESSAGE(repaired.code == 0, repaired.out << repaired.err);
    CHECK(dir.segments("t").size() == 2);
    CHECK(json_lines(run({"topics", dir.path(), "--format", "json"}).out)[0]["end_offset"].u64() == 128);
  }

  // After a reboot a missing middle segment ends the log before it (a
  // writer's recovery sets the later ones aside): dump and tail read that
  // log, not the set-aside segments' records as if the writer had lapped them.
  TEST_CASE("dump_and_tail_after_a_reboot_with_a_missing_segment_print_only_the_offsets_they_announce") {
    TempBusDir dir;
    const std::vector<std::string> segments = write_four_segments(dir);
    std::filesystem::remove(segments[1]);
    // The same boot: a segment is missing, named.
    const Run same_boot = run({"dump", dir.path(), "t", "--from", "0", "--count", "1"});
    CHECK(same_boot.code == 2);
    CHECK(contains(same_boot.err, "a segment is missing or foreign"));

    pretend_reboot(dir);
    const Json listed = json_lines(run({"topics", dir.path(), "--format", "json"}).out)[0];
    CHECK(listed["first_offset"].u64() == 0);
    CHECK(listed["end_offset"].u64() == 64);
    const Run first = run({"dump", dir.path(), "t", "--from", "0", "--count", "1", "--format", "json"});
    CHECK_MESSAGE(first.code == 0, first.err);
    const std::vector<Json> one = json_lines(first.out);
    REQUIRE(one.size() == 1);
    CHECK(one[0]["offset"].u64() == 0);
    CHECK_MESSAGE(first.err.empty(), first.err); // no gap: nothing was lost, no writer blamed
    const Run all = run({"dump", dir.path(), "t", "--format", "json"});
    CHECK_MESSAGE(all.code == 0, all.err);
    const std::vector<Json> records = json_lines(all.out);
    REQUIRE(records.size() == 64);
    for (std::size_t i = 0; i < records.size(); ++i) CHECK(records[i]["offset"].u64() == i);
    CHECK_FALSE(contains(all.err, "the writer"));
    const Run last = run({"tail", dir.path(), "t", "-n", "1", "--format", "json"});
    CHECK_MESSAGE(last.code == 0, last.err);
    const std::vector<Json> tail = json_lines(last.out);
    REQUIRE(tail.size() == 1);
    CHECK(tail[0]["offset"].u64() == 63);
    CHECK(last.err.empty());
  }

  TEST_CASE("verify_reports_segments_after_an_unsealed_one_and_repair_drops_them_as_recovery_does") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      bus.create_topic("t", persistent_small_ring(4)).check();
      append_even(bus, "t", 100); // segment 0 is exactly full (64 frames, no pad); 64..99 in the tail
    }
    const std::vector<std::string> segments = dir.segments("t");
    REQUIRE(segments.size() == 2);
    // As if a crash came before the store that publishes a batch crossing the roll.
    unpublish_record_63(segments[0]);
    const Run damaged = run({"verify", dir.path(), "--format", "json"});
    CHECK(damaged.code == 1);
    const Json finding = only_line(json_lines(damaged.out), "kind", "damage");
    CHECK(finding["file"].str() == segments[0]);
    CHECK(finding["file_offset"].u64() == 4096 + 63 * 64);
    CHECK(finding["offset"].u64() == 63);
    CHECK(finding["repair"].str() == "drop_unpublished_segments");
    const Run repaired = run({"verify", dir.path(), "--repair"});
    CHECK_MESSAGE(repaired.code == 0, repaired.out << repaired.err);
    CHECK(dir.segments("t").size() == 1);
    const Run after = run({"topics", dir.path(), "--format", "json"});
    CHECK(json_lines(after.out)[0]["end_offset"].u64() == 63);
  }

  TEST_CASE("verify_reports_a_segment_seal_its_frames_do_not_bear_out_and_repair_leaves_it_to_a_person") {
    TempBusDir dir;
    const SealEverySegment seal_every_segment; // the flusher seals the 4 KiB segments too
    {
      Bus bus = open_bus(dir.path()); // with the flusher: it writes the seals
      bus.create_topic("t", persistent_small_ring(4)).check();
      append_even(bus, "t", 100); // segment 0 is exactly full (64 frames, no pad); 64..99 in the tail
      const auto deadline = std::chrono::steady_clock::now() + process_deadline;
      while (!detail::decode_segment_seal(file_bytes(dir.segments("t").front())).has_value()) {
        REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the flusher wrote no seal");
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    const std::vector<std::string> segments = dir.segments("t");
    REQUIRE(segments.size() == 2);
    const Run clean = run({"verify", dir.path(), "--format", "json"});
    REQUIRE_MESSAGE(clean.code == 0, clean.out << clean.err); // a seal its frames bear out is no finding
    unpublish_record_63(segments[0]);                         // after the seal was written
    const Run damaged = run({"verify", dir.path(), "--format", "json"});
    CHECK(damaged.code == 1);
    bool seal_named = false;
    for (const Json& line : json_lines(damaged.out)) {
      if (line["kind"].str() != "damage" || !contains(line["problem"].str(), "seal says")) continue;
      seal_named = true;
      CHECK(line["file"].str() == segments[0]);
      CHECK(line["file_offset"].u64() == detail::segment_seal_at);
      CHECK(contains(line["problem"].str(), "ends before offset 64"));
      CHECK(contains(line["problem"].str(), "offset 63"));
      CHECK(line["repair"].str() == "manual");
    }
    CHECK(seal_named);
    const Run refused = run({"verify", dir.path(), "--repair"});
    CHECK(refused.code != 0);
    CHECK(contains(refused.err, "--repair refuses"));
    CHECK(dir.segments("t").size() == 2);
  }

  TEST_CASE("verify_checks_persisted_indexes_and_repair_deletes_a_damaged_one") {
    TempBusDir dir;
    const std::string idx = dir.topic_dir("t") + "/00000000000000000000.idx";
    {
      Bus bus = open_bus(dir.path()); // with the flusher: it persists the indexes of sealed segments
      bus.create_topic("t", persistent_small_ring(4)).check();
      append_even(bus, "t", 130);
      const auto deadline = std::chrono::steady_clock::now() + process_deadline;
      while (!std::filesystem::exists(dir.topic_dir("t") + "/00000000000000000064.idx")) {
        REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the flusher wrote no index");
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    REQUIRE(std::filesystem::exists(idx));
    const Run clean = run({"verify", dir.path(), "--format", "json"});
    REQUIRE_MESSAGE(clean.code == 0, clean.out << clean.err);
    CHECK(only_line(json_lines(clean.out), "kind", "topic")["indexes"].u64() == 2);
    flip_byte(idx, 70); // inside its first entry
    const Run damaged = run({"verify", dir.path(), "--format", "json"});
    CHECK(damaged.code == 1);
    const Json& finding = only_line(json_lines(damaged.out), "kind", "damage");
    CHECK(finding["file"].str() == idx);
    CHECK(finding["repair"].str() == "delete_index");
    CHECK(contains(finding["problem"].str(), "checksum"));
    const Run repaired = run({"verify", dir.path(), "--repair"});
    CHECK_MESSAGE(repaired.code == 0, repaired.out << repaired.err);
    CHECK(!std::filesystem::exists(idx));
    CHECK(run({"dump", dir.path(), "t", "--from", "10", "--count", "1"}).out.starts_with("offset=10 "));
  }

  TEST_CASE("produce_appends_one_record_per_line_with_the_key_before_the_separator") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      bus.create_topic("in", persistent_small_ring(4)).check();
    }
    const Run r =
        run({"produce", dir.path(), "in", "--key-separator", ":"}, "k1:v1\nno key here\n:empty key\nk2:a:b\n");
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(contains(r.err, "appended 4 records to topic 'in', offsets 0 .. 3"));
    CHECK(r.out.empty());
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      Consumer c = bus.consumer("in").value();
      std::vector<std::pair<std::string, std::string>> got;
      for (const Record& rec : c.poll().value())
        got.emplace_back(std::string(rec.key.str()), std::string(rec.value.str()));
      const std::vector<std::pair<std::string, std::string>> want{
          {"k1", "v1"}, {"", "no key here"}, {"", "empty key"}, {"k2", "a:b"}};
      CHECK(got == want);
    }
    // More input than a pipe holds: the tool exits without reading it, and
    // the harness sees EPIPE (never a SIGPIPE that would end this process).
    const Run unknown = run({"produce", dir.path(), "nope"}, std::string(std::size_t{1} << 20, 'x') + "\n");
    CHECK(unknown.code == 2);
    CHECK(contains(unknown.err, "topic 'nope' does not exist in " + dir.path() + " (topics: in); --create creates it"));
    const Run created = run({"produce", dir.path(), "fresh", "--create", "--segment-bytes", "8192"}, "a\nb\n");
    REQUIRE_MESSAGE(created.code == 0, created.err);
    const Run listed = run({"topics", dir.path(), "--format", "json"});
    const Json& fresh = only_line(json_lines(listed.out), "topic", "fresh");
    CHECK(fresh["records"].u64() == 2);
    CHECK(fresh["segment_bytes"].u64() == 8192);
    {
      Bus writer = open_bus(dir.path(), no_flusher());
      const Run busy = run({"produce", dir.path(), "in"}, "x\n");
      CHECK(busy.code == 2);
      CHECK(contains(busy.err, "held by pid " + std::to_string(::getpid())));
    }
    const Run bad_separator = run({"produce", dir.path(), "in", "--key-separator", "::"}, "x\n");
    CHECK(bad_separator.code == 2);
    CHECK(contains(bad_separator.err, "--key-separator must be one character"));
  }

  TEST_CASE("number_options_refuse_a_sign_an_overflow_or_zero_count_naming_the_option_and_the_range") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      bus.create_topic("t", persistent_small_ring(4)).check();
      Producer p = bus.producer("t").value();
      for (int i = 0; i < 5; ++i) REQUIRE(p.append(std::to_string(i)).ok());
    }
    const std::string max = "18446744073709551615";
    struct Bad {
      std::vector<std::string> args;
      std::string option, text, min;
    };
    const std::vector<Bad> bad{
        {{"tail", dir.path(), "t", "-n", "-1"}, "--lines", "-1", "0"},
        {{"dump", dir.path(), "t", "--from", "-1"}, "--from", "-1", "0"},
        {{"dump", dir.path(), "t", "--from", "18446744073709551616"}, "--from", "18446744073709551616", "0"},
        {{"dump", dir.path(), "t", "--from", "99999999999999999999"}, "--from", "99999999999999999999", "0"},
        {{"dump", dir.path(), "t", "--from", "+3"}, "--from", "+3", "0"},
        {{"dump", dir.path(), "t", "--count", "0"}, "--count", "0", "1"},
        {{"dump", dir.path(), "t", "--count", "1.5"}, "--count", "1.5", "1"},
        {{"produce", dir.path(), "new", "--create", "--segment-bytes", "-1"}, "--segment-bytes", "-1", "1"},
        {{"produce", dir.path(), "new", "--create", "--segment-count", "0"}, "--segment-count", "0", "1"},
    };
    for (const Bad& b : bad) {
      const Run r = run(b.args, "x\n");
      CHECK_MESSAGE(r.code == 2, b.option, " ", b.text);
      CHECK_MESSAGE(contains(r.err, b.option), r.err);
      CHECK_MESSAGE(contains(r.err, "must be a whole number from " + b.min + " to " + max + ", not '" + b.text + "'"),
                    r.err);
      CHECK(r.out.empty());
    }
    // The largest number is a number: past the end, dump says what the topic holds.
    const Run last = run({"dump", dir.path(), "t", "--from", max});
    CHECK(last.code == 2);
    CHECK(contains(last.err, "--from " + max + " is outside topic 't': it holds offsets 0 .. 4"));
    // Sizes a topic cannot take are refused before the bus directory would be made.
    const std::string fresh = dir.path() + "/fresh";
    const Run odd = run({"produce", fresh, "t", "--create", "--segment-bytes", "1000"}, "x\n");
    CHECK(odd.code == 2);
    CHECK(contains(odd.err, "1000"));
    CHECK_FALSE(std::filesystem::exists(fresh));
  }

  TEST_CASE("errors_name_a_missing_directory_an_unknown_topic_a_foreign_file_and_bad_arguments") {
    TempBusDir dir;
    {
      Bus bus = open_bus(dir.path(), no_flusher());
      bus.create_topic("real", persistent_small_ring(4)).check();
      append_even(bus, "real", 3);
    }
    const std::string missing = dir.path() + "/no-such-bus";
    for (const std::string sub : {"topics", "stat", "verify"}) {
      const Run r = run({sub, missing});
      CHECK(r.code == 2);
      CHECK(contains(r.err, "ringbus: error: bus directory " + missing));
      CHECK(contains(r.err, "No such file or directory"));
    }
    CHECK(!std::filesystem::exists(missing));
    const Run not_bus = run({"topics", dir.topic_dir("real")});
    CHECK(not_bus.code == 2);
    CHECK(contains(not_bus.err, dir.topic_dir("real") + " is not a ringbus bus directory"));

    const Run unknown = run({"dump", dir.path(), "nope"});
    CHECK(unknown.code == 2);
    CHECK(contains(unknown.err, "topic 'nope' does not exist in " + dir.path() + " (topics: real)"));
    const Run unknown_tail = run({"tail", dir.path(), "nope", "-f"});
    CHECK(unknown_tail.code == 2);
    CHECK(contains(unknown_tail.err, "topic 'nope' does not exist"));

    // A foreign topic.meta: a directory under topics/ that is not ours.
    std::filesystem::create_directories(dir.topic_dir("alien"));
    {
      std::ofstream meta(dir.topic_dir("alien") + "/topic.meta");
      meta << "this is not a ringbus topic\n";
    }
    {
      // "alien" has a topic.meta that is not ours: reading the bus names that file.
      const Run r = run({"dump", dir.path(), "real"});
      CHECK(r.code == 2);
      CHECK(contains(r.err, dir.topic_dir("alien") + "/topic.meta"));
      CHECK(contains(r.err, "not a ringbus topic file"));
      const Run v = run({"verify", dir.path(), "--format", "json"});
      CHECK(v.code == 1);
      const Json& finding = only_line(json_lines(v.out), "kind", "damage");
      CHECK(finding["file"].str() == dir.topic_dir("alien") + "/topic.meta");
      CHECK(finding["repair"].str() == "manual");
      const Run t = run({"topics", dir.path(), "--format", "json"});
      CHECK(t.code == 2); // listed, with its error
      CHECK(contains(only_line(json_lines(t.out), "topic", "alien")["error"].str(), "not a ringbus topic file"));
      CHECK(only_line(json_lines(t.out), "topic", "real")["records"].u64() == 3);
    }
    std::filesystem::remove_all(dir.topic_dir("alien"));
    {
      // A foreign segment file in a real topic.
      const std::string seg = dir.topic_dir("real") + "/00000000000000000064.seg";
      std::ofstream out(seg, std::ios::binary);
      out << std::string(8192, 'x');
      out.close();
      const Run r = run({"dump", dir.path(), "real"});
      CHECK(r.code == 2);
      CHECK(contains(r.err, seg));
      CHECK(contains(r.err, "not a ringbus segment file"));
      const Run v = run({"verify", dir.path(), "real", "--format", "json"});
      CHECK(v.code == 1);
      const Json& finding = only_line(json_lines(v.out), "kind", "damage");
      CHECK(finding["file"].str() == seg);
      CHECK(finding["file_offset"].u64() == 0);
      CHECK(contains(finding["problem"].str(), "not a ringbus segment file"));
      std::filesystem::remove(seg);
    }

    const Run none = run({});
    CHECK(none.code == 2);
    CHECK(contains(none.err, "A subcommand is required"));
    const Run bad_option = run({"dump", dir.path(), "real", "--bogus"});
    CHECK(bad_option.code == 2);
    CHECK(contains(bad_option.err, "--bogus"));
    const Run bad_format = run({"dump", dir.path(), "real", "--format", "xml"});
    CHECK(bad_format.code == 2);
    CHECK(contains(bad_format.err, "xml"));
    const Run no_topic = run({"dump", dir.path()});
    CHECK(no_topic.code == 2);
    CHECK(contains(no_topic.err, "TOPIC is required"));
    const Run bad_count = run({"dump", dir.path(), "real", "--count", "-3"});
    CHECK(bad_count.code == 2);
    const Run help = run({"verify", "--help"});
    CHECK(help.code == 0);
    CHECK(contains(help.out, "--repair"));
  }

  TEST_CASE("bench_help_lists_its_options_and_the_headline_scenarios") {
    const Run help = run({"bench", "--help"});
    CHECK(help.code == 0);
    for (const std::string option : {"--quick", "--filter", "--repetitions", "--results-dir", "--no-results",
                                     "--persist-dir", "--chart", "--one-core-below"}) {
      CHECK_MESSAGE(contains(help.out, option), option);
    }
    for (const std::string scenario : {"spsc_8B", "spsc_64B", "rtt", "fanout_1to", "persist_append"}) {
      CHECK_MESSAGE(contains(help.out, scenario), scenario);
    }
  }

  TEST_CASE("bench_refuses_bad_arguments_naming_the_option") {
    TempBusDir dir;
    const Run zero = run({"bench", "--repetitions", "0", "--results-dir", dir.path()});
    CHECK(zero.code == 2);
    CHECK(contains(zero.err, "--repetitions"));
    const Run not_regex = run({"bench", "--filter", "[", "--results-dir", dir.path()});
    CHECK(not_regex.code == 2);
    CHECK(contains(not_regex.err, "--filter"));
    CHECK(contains(not_regex.err, "'[' is not a valid regular expression"));
    const Run unknown = run({"bench", "--bogus"});
    CHECK(unknown.code == 2);
    CHECK(contains(unknown.err, "--bogus"));
    for (const std::string bad : {"-1", "nan", "inf", "150ns", "", "1e10"}) {
      const Run threshold = run({"bench", "--one-core-below", bad, "--results-dir", dir.path()});
      CHECK_MESSAGE(threshold.code == 2, bad);
      CHECK_MESSAGE(contains(threshold.err, "--one-core-below"), bad);
      CHECK_MESSAGE(contains(threshold.err, "'" + bad + "' is not a number of ns from 0 to 1e9 (0 sets nothing aside)"),
                    bad);
    }
    const Run both = run({"bench", "--no-results", "--results-dir", dir.path()});
    CHECK(both.code == 2);
    CHECK(contains(both.err, "--no-results"));
    const Run nothing = run({"bench", "--quick", "--filter", "no_such_scenario/", "--results-dir", dir.path()});
    CHECK(nothing.code == 2);
#if RINGBUS_CLI_HAS_BENCH
    CHECK(contains(nothing.err, "ringbus: error: the filter 'no_such_scenario/' matches none of the"));
    CHECK(contains(nothing.err, "rtt/floor")); // it lists the rows there are
#endif
    CHECK(std::filesystem::is_empty(dir.path())); // nothing ran, nothing written
  }

#if RINGBUS_CLI_HAS_BENCH
  // The cheapest real run: two rtt rows of --quick (a fraction of a second
  // each on an idle machine), one repetition. No timing is checked. The
  // placement probe sets nothing aside (--one-core-below 0), so the result
  // does not depend on where the machine runs the two CPUs.
  TEST_CASE("bench_runs_the_rows_prints_the_table_and_writes_the_results_file_and_a_chart_with_a_bar_per_impl") {
    TempBusDir dir;
    const Run r = run({"bench", "--quick", "--filter", "rtt/(atomic_queue|floor)/", "--repetitions", "1",
                       "--one-core-below", "0", "--results-dir", dir.path()});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    // Progress on stderr, one line per row, the total known up front.
    CHECK(contains(r.err, "[1/2] rtt/atomic_queue ... done ("));
    CHECK(contains(r.err, "[2/2] rtt/floor        ... done ("));
    // The table on stdout, and nothing else there.
    CHECK(r.out.starts_with("# ringbus-bench summary"));
    CHECK(contains(r.out, "### rtt: round-trip latency in ns, lower is better"));
    CHECK(contains(r.out, "| atomic_queue "));
    CHECK(contains(r.out, "| floor (physical limit, not a peer) "));
    CHECK(contains(r.out, "best peer p50: atomic_queue"));
    CHECK(contains(r.out, "Command: `ringbus bench --quick --filter rtt/(atomic_queue|floor)/"));
    CHECK(contains(r.out, "This run set no run aside (threshold 0 ns)"));
    CHECK(!contains(r.out, "were set aside"));

    // <commit>_<cpu>_<compiler>_partial.md and the chart beside it.
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() == 2);
    const std::filesystem::path md = files[0];
    const std::filesystem::path svg = files[1];
    CHECK(md.extension() == ".md");
    CHECK(svg.extension() == ".svg");
    CHECK(md.stem() == svg.stem());
    const std::string stem = md.stem().string();
    const std::size_t first = stem.find('_');
    const std::size_t last = stem.rfind("_partial");
    REQUIRE(first != std::string::npos);
    REQUIRE(last == stem.size() - std::string("_partial").size());
    const std::size_t compiler_at = stem.rfind('_', last - 1);
    REQUIRE(compiler_at > first);
    const std::string commit = stem.substr(0, first);
    const std::string cpu = stem.substr(first + 1, compiler_at - first - 1);
    const std::string compiler = stem.substr(compiler_at + 1, last - compiler_at - 1);
    CHECK(!cpu.empty());
    CHECK((compiler.starts_with("gcc") || compiler.starts_with("clang")));
    std::ifstream md_in(md);
    const std::string summary((std::istreambuf_iterator<char>(md_in)), std::istreambuf_iterator<char>());
    CHECK(summary == r.out);
    CHECK(contains(summary, "commit " + commit + " · "));
    CHECK(contains(r.err, "results written to " + md.string()));
    CHECK(contains(r.err, "chart written to " + svg.string()));

    std::ifstream svg_in(svg);
    const std::string chart((std::istreambuf_iterator<char>(svg_in)), std::istreambuf_iterator<char>());
    CHECK(chart.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\""));
    CHECK(chart.ends_with("</svg>\n"));
    CHECK(contains(chart, "commit " + commit + " · "));
    std::size_t bars = 0;
    for (std::size_t at = chart.find("class=\"bar\""); at != std::string::npos;
         at = chart.find("class=\"bar\"", at + 1)) {
      ++bars;
    }
    CHECK(bars == 2);
    CHECK(contains(chart, "class=\"row peer\" data-scenario=\"rtt\" data-impl=\"atomic_queue\""));
    CHECK(contains(chart, "class=\"row floor\" data-scenario=\"rtt\" data-impl=\"floor\""));
    CHECK(contains(chart, "rtt: p50 ns, lower is better · bar = median ÷ best peer atomic_queue"));
    // Well-formed XML, by whichever checker this machine has.
    const std::string quoted = "'" + svg.string() + "'";
    if (::access("/usr/bin/xmllint", X_OK) == 0) {
      CHECK(std::system(("/usr/bin/xmllint --noout " + quoted).c_str()) == 0);
    } else if (std::system("python3 -c '' 2>/dev/null") == 0) {
      CHECK(std::system(
                ("python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' " + quoted).c_str()) == 0);
    }
  }

  // The other placement, forced: with a threshold no round trip is under,
  // every run counts as run on one core. The tables, the chart and the
  // targets leave them out and the summary shows them on their own, with what
  // to do when that is the machine and not the host.
  TEST_CASE("bench_sets_aside_the_runs_the_placement_probe_finds_on_one_core_and_says_so_in_table_and_chart") {
    TempBusDir dir;
    const std::string chart_path = dir.path() + "/chart.svg";
    const Run r = run({"bench", "--quick", "--filter", "rtt/(atomic_queue|floor)/", "--repetitions", "1",
                       "--one-core-below", "1e9", "--no-results", "--chart", chart_path});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(contains(r.out, "| atomic_queue                       | every run on one core (set aside, below) |"));
    CHECK(contains(r.out, "| floor (physical limit, not a peer) | every run on one core (set aside, below) |"));
    CHECK(!contains(r.out, "best peer p50:"));
    CHECK(contains(r.out,
                   "2 of 2 runs were set aside: the placement probe found both CPUs on one physical core "
                   "(bare round trip below 1000000000 ns)"));
    CHECK(contains(r.out, "| p50_ns (median, one core) |"));
    CHECK(contains(r.out, "Every run was set aside."));
    CHECK(contains(r.out, "`ringbus bench --one-core-below NS`"));
    CHECK(contains(r.out, "A run with either probe below 1000000000 ns is set aside"));

    std::ifstream svg_in(chart_path);
    const std::string chart((std::istreambuf_iterator<char>(svg_in)), std::istreambuf_iterator<char>());
    CHECK(chart.ends_with("</svg>\n"));
    CHECK(!contains(chart, "class=\"bar\""));
    CHECK(contains(chart, ">every run on one core (set aside)</text>"));
    CHECK(contains(chart, "nothing to compare with: the runs it needs were set aside (one core)"));
    CHECK(!contains(chart, "FAILED"));
    CHECK(!contains(chart, "failed"));
  }
#else
  TEST_CASE("bench_says_this_build_has_no_benchmarks_and_how_to_get_them") {
    const Run r = run({"bench", "--quick"});
    CHECK(r.code == 2);
    CHECK(contains(r.err, "ringbus: error: this build of ringbus has no benchmarks"));
    CHECK(contains(r.err, "RINGBUS_BUILD_BENCH=OFF"));
    CHECK(contains(r.err, "cmake --preset release"));
    CHECK(r.out.empty());
  }
#endif
}

} // namespace ringbus::test
