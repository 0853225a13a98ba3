#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <ostream>

#include "cli/cli.hpp"
#include "detail/writer_boot.hpp"
#include "platform/files.hpp"

namespace ringbus::cli {

namespace {

// relaxed: a flag set by a signal handler and polled by the loop it stops; it publishes nothing else.
std::atomic<bool> stop_flag{false};
static_assert(std::atomic<bool>::is_always_lock_free, "written by a signal handler");

extern "C" void on_stop_signal(int) { stop_flag.store(true, std::memory_order_relaxed); }

// Whether a StopSignalsHeld lives. Only the tool's one thread reads and writes it.
bool stop_signals_held = false;

sigset_t stop_signals() noexcept {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Takes a held stop signal that is pending or comes within wait.
bool take_stop_signal(const timespec& wait) noexcept {
  const sigset_t set = stop_signals();
  // -1: EAGAIN (none came) or EINTR (another signal's handler ran): no stop.
  if (::sigtimedwait(&set, nullptr, &wait) <= 0) return false;
  stop_flag.store(true, std::memory_order_relaxed);
  return true;
}

platform::FileDescriptor open_dir_or_fail(const std::string& dir) {
  Result<platform::FileDescriptor> fd = platform::open_directory(dir);
  if (!fd.ok()) throw Failure("bus directory " + dir + ": " + std::string(fd.message()));
  return std::move(*fd);
}

// Digits of text[at, at + n) as a number; false when they are not all digits.
bool digits(std::string_view text, std::size_t at, std::size_t n, int& out) {
  if (at + n > text.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    out = out * 10 + (text[i] - '0');
  }
  return true;
}

// How printable() and the text format show bytes: a JSON-style string when
// printable, else 0x and hex digits.
std::string shown(ByteView bytes) { return printable(bytes) ? json_string(bytes.str()) : "0x" + to_hex(bytes); }

void json_bytes(std::ostream& out, std::string_view field, ByteView bytes) {
  const bool text = printable(bytes);
  out << json_string(field) << ':' << (text ? json_string(bytes.str()) : json_string(to_hex(bytes))) << ','
      << json_string(std::string(field) + "_encoding") << ':' << (text ? "\"text\"" : "\"hex\"");
}

void hexdump(std::ostream& out, std::string_view label, ByteView bytes) {
  out << "  " << label << " (" << bytes.size() << " bytes)\n";
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (std::size_t row = 0; row < bytes.size(); row += 16) {
    char line[100];
    int n = std::snprintf(line, sizeof line, "    %08zx ", row);
    for (std::size_t i = row; i < row + 16; ++i) {
      n += i < bytes.size() ? std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n), " %02x", p[i])
                            : std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n), "   ");
    }
    out << line << "  |";
    for (std::size_t i = row; i < row + 16 && i < bytes.size(); ++i) {
      out << static_cast<char>(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.');
    }
    out << "|\n";
  }
}

} // namespace

bool stop_requested() noexcept {
  if (stop_flag.load(std::memory_order_relaxed)) return true;
  return stop_signals_held && take_stop_signal(timespec{0, 0});
}

StopSignalsHeld::StopSignalsHeld() : old_mask_() {
  const sigset_t set = stop_signals();
  ::pthread_sigmask(SIG_BLOCK, &set, &old_mask_);
  stop_signals_held = true;
}

void StopSignalsHeld::release() noexcept {
  if (!held_) return;
  held_ = false;
  stop_signals_held = false;
  ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

bool sleep_unless_stopped(std::chrono::microseconds d) noexcept {
  const timespec wait{static_cast<time_t>(d.count() / 1'000'000), static_cast<long>(d.count() % 1'000'000 * 1000)};
  return take_stop_signal(wait) || stop_flag.load(std::memory_order_relaxed);
}

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  // A closed pipe (ringbus tail -f | head) ends the tool through the failed write, not a signal.
  std::signal(SIGPIPE, SIG_IGN);
}

void require_bus_directory(const std::string& dir) {
  const platform::FileDescriptor fd = open_dir_or_fail(dir);
  for (const std::string_view name : {"topics", "LOCK"}) {
    Result<bool> there = platform::entry_exists_at(fd, name);
    if (!there.ok()) throw Failure("bus directory " + dir + ": " + std::string(there.message()));
    if (*there) return;
  }
  throw Failure(dir + " is not a ringbus bus directory: it has no topics/ directory and no LOCK file");
}

Bus open_read_only(const std::string& dir) {
  require_bus_directory(dir);
  BusOptions options;
  options.read_only = true;
  options.flusher_thread = false;
  Result<Bus> bus = Bus::open(dir, options);
  if (!bus.ok()) throw Failure(std::string(bus.message()));
  return std::move(*bus);
}

namespace {

// What TopicStore::open treats as a creation a crash cut short: no topic.meta,
// nothing but topic.meta.tmp.
bool unfinished_creation(const platform::FileDescriptor& topics, const std::string& name) {
  Result<platform::FileDescriptor> d = platform::open_directory_at(topics, name);
  if (!d.ok()) return false;
  Result<std::vector<platform::DirectoryEntry>> entries = platform::list_directory(*d);
  if (!entries.ok() || entries->empty()) return false;
  for (const platform::DirectoryEntry& e : *entries) {
    if (e.name != "topic.meta.tmp") return false;
  }
  return true;
}

} // namespace

TopicListing list_topics(const std::string& dir, const std::string& topic) {
  require_bus_directory(dir);
  TopicListing out;
  if (!topic.empty()) {
    if (Status st = validate_topic_name(topic); !st.ok()) throw Failure(std::string(st.message()));
  }
  Result<platform::FileDescriptor> bus_dir = platform::open_directory(dir);
  if (!bus_dir.ok()) throw Failure(std::string(bus_dir.message()));
  out.check_every_segment = !detail::same_boot_as_last_writer(*bus_dir);
  Result<bool> has_topics = platform::entry_exists_at(*bus_dir, "topics");
  if (!has_topics.ok()) throw Failure(std::string(has_topics.message()));
  if (*has_topics) {
    Result<platform::FileDescriptor> topics = platform::open_directory_at(*bus_dir, "topics");
    if (!topics.ok()) throw Failure(std::string(topics.message()));
    out.topics = std::move(*topics);
    Result<std::vector<platform::DirectoryEntry>> entries = platform::list_directory(out.topics);
    if (!entries.ok()) throw Failure(std::string(entries.message()));
    for (const platform::DirectoryEntry& e : *entries) {
      if (e.type != platform::EntryType::directory || !validate_topic_name(e.name).ok()) continue;
      if (unfinished_creation(out.topics, e.name)) continue;
      out.names.push_back(e.name);
    }
  }
  if (!topic.empty()) {
    if (std::find(out.names.begin(), out.names.end(), topic) == out.names.end()) {
      std::string known;
      for (const std::string& n : out.names) known += (known.empty() ? "" : ", ") + n;
      throw Failure("topic '" + topic + "' does not exist in " + dir + " (topics: " + (known.empty() ? "none" : known) +
                    ")");
    }
    out.names = {topic};
  }
  return out;
}

void require_topic(const Bus& bus, const std::string& dir, const std::string& topic) {
  if (bus.has_topic(topic)) return;
  std::string known;
  for (const std::string& name : bus.topic_names()) known += (known.empty() ? "" : ", ") + name;
  throw Failure("topic '" + topic + "' does not exist in " + dir + " (topics: " + (known.empty() ? "none" : known) +
                ")");
}

std::optional<long> writer_pid(const std::string& dir) {
  const platform::FileDescriptor fd = open_dir_or_fail(dir);
  Result<std::optional<long>> holder = platform::lock_holder(fd, "LOCK");
  if (!holder.ok()) throw Failure(std::string(holder.message()));
  return *holder;
}

std::string format_timestamp(std::int64_t ns) {
  constexpr std::int64_t billion = 1'000'000'000;
  std::int64_t seconds = ns / billion;
  std::int64_t fraction = ns % billion;
  if (fraction < 0) {
    fraction += billion;
    --seconds;
  }
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(fraction));
  return text;
}

std::optional<std::int64_t> parse_time(std::string_view text) {
  if (text.empty()) return std::nullopt;
  // Nanoseconds since the epoch: all digits, optionally negative.
  const std::size_t first_digit = text[0] == '-' ? 1 : 0;
  if (text.size() > first_digit && text.find_first_not_of("0123456789", first_digit) == std::string_view::npos) {
    if (text.size() - first_digit > 19) return std::nullopt;
    errno = 0;
    const long long v = std::strtoll(std::string(text).c_str(), nullptr, 10);
    if (errno != 0) return std::nullopt;
    return static_cast<std::int64_t>(v);
  }
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(text, 0, 4, year) || text.size() < 10 || text[4] != '-' || !digits(text, 5, 2, month) || text[7] != '-' ||
      !digits(text, 8, 2, day)) {
    return std::nullopt;
  }
  std::size_t at = 10;
  std::int64_t fraction_ns = 0;
  if (at < text.size() && (text[at] == 'T' || text[at] == 't' || text[at] == ' ')) {
    if (!digits(text, at + 1, 2, hour) || at + 3 >= text.size() || text[at + 3] != ':' ||
        !digits(text, at + 4, 2, minute)) {
      return std::nullopt;
    }
    at += 6;
    if (at < text.size() && text[at] == ':') {
      if (!digits(text, at + 1, 2, second)) return std::nullopt;
      at += 3;
      if (at < text.size() && (text[at] == '.' || text[at] == ',')) {
        ++at;
        std::int64_t scale = 100'000'000;
        const std::size_t start = at;
        for (; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at) {
          fraction_ns += (text[at] - '0') * scale; // digits past nanoseconds are dropped
          scale /= 10;
        }
        if (at == start) return std::nullopt;
      }
    }
  }
  std::int64_t zone_seconds = 0;
  if (at < text.size()) {
    if ((text[at] == 'Z' || text[at] == 'z') && at + 1 == text.size()) {
      at += 1;
    } else if (text[at] == '+' || text[at] == '-') {
      int zh = 0, zm = 0;
      if (!digits(text, at + 1, 2, zh)) return std::nullopt;
      std::size_t m = at + 3;
      if (m < text.size() && text[m] == ':') ++m;
      if (!digits(text, m, 2, zm) || m + 2 != text.size() || zh > 23 || zm > 59) return std::nullopt;
      zone_seconds = (zh * 3600 + zm * 60) * (text[at] == '+' ? 1 : -1);
      at = text.size();
    } else {
      return std::nullopt;
    }
  }
  if (at != text.size() || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const std::time_t t = ::timegm(&tm);
  if (tm.tm_mday != day) return std::nullopt; // e.g. February 30 was normalised into March
  const std::int64_t seconds = static_cast<std::int64_t>(t) - zone_seconds;
  constexpr std::int64_t max_seconds = std::numeric_limits<std::int64_t>::max() / 1'000'000'000 - 1;
  if (seconds > max_seconds || seconds < -max_seconds) return std::nullopt;
  return seconds * 1'000'000'000 + fraction_ns;
}

bool printable(ByteView bytes) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return false;
      ++i;
      continue;
    }
    std::size_t extra = 0;
    std::uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= n) return false; // truncated sequence
    for (std::size_t k = 1; k <= extra; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    constexpr std::uint32_t smallest[] = {0, 0x80, 0x800, 0x10000};
    if (cp < smallest[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0)) {
      return false; // overlong, out of range, a surrogate, or a C1 control character
    }
    i += extra + 1;
  }
  return true;
}

std::string to_hex(ByteView bytes) {
  static constexpr char digit[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const std::byte b : bytes.span()) {
    out += digit[std::to_integer<unsigned>(b) >> 4];
    out += digit[std::to_integer<unsigned>(b) & 15];
  }
  return out;
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

void print_record(std::ostream& out, const Record& r, Format format) {
  switch (format) {
    case Format::text: {
      out << "offset=" << r.offset << " time=" << format_timestamp(r.timestamp_ns);
      if (!r.key.empty()) out << " key=" << shown(r.key);
      if (!r.headers.empty()) {
        out << " headers={";
        bool first = true;
        for (const Header h : r.headers) {
          out << (first ? "" : ", ") << shown(h.name) << '=' << shown(h.value);
          first = false;
        }
        out << '}';
      }
      out << " value=" << shown(r.value) << '\n';
      return;
    }
    case Format::json: {
      out << "{\"topic\":" << json_string(r.topic) << ",\"offset\":" << r.offset
          << ",\"timestamp\":" << json_string(format_timestamp(r.timestamp_ns))
          << ",\"timestamp_ns\":" << r.timestamp_ns << ',';
      json_bytes(out, "key", r.key);
      out << ",\"headers\":[";
      bool first = true;
      for (const Header h : r.headers) {
        out << (first ? "{" : ",{");
        json_bytes(out, "name", h.name);
        out << ',';
        json_bytes(out, "value", h.value);
        out << '}';
        first = false;
      }
      out << "],";
      json_bytes(out, "value", r.value);
      out << "}\n";
      return;
    }
    case Format::hex: {
      out << "offset=" << r.offset << " time=" << format_timestamp(r.timestamp_ns) << " key_bytes=" << r.key.size()
          << " value_bytes=" << r.value.size() << " headers=" << r.headers.size() << '\n';
      if (!r.key.empty()) hexdump(out, "key", r.key);
      for (const Header h : r.headers) hexdump(out, "header " + shown(h.name), h.value);
      hexdump(out, "value", r.value);
      return;
    }
  }
}

} // namespace ringbus::cli
