// Helpers of the persistence tests: a temporary bus directory and the file
// names inside it.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "detail/topic_store.hpp"
#include "ringbus/ringbus.hpp"
#include "test_support.hpp"

namespace ringbus::test {

// A bus opened without the flusher thread: the test flushes and rolls itself.
inline BusOptions no_flusher() {
  BusOptions o;
  o.flusher_thread = false;
  return o;
}

// small_ring's topic, kept in segment files whatever the bus's default.
inline TopicOptions persistent_small_ring(std::size_t segment_count) {
  TopicOptions o = small_ring(segment_count);
  o.storage = Storage::persistent;
  return o;
}

// The child side of the crash tests (a forked child the parent kills): no
// doctest there (a failed REQUIRE would unwind into the test runner in the
// child), so it says what failed and leaves with code 3, which the parent reports.
[[noreturn]] inline void child_fail(const std::string& what) {
  std::fprintf(stderr, "crash-test child %d: %s\n", static_cast<int>(::getpid()), what.c_str());
  std::fflush(stderr);
  ::_exit(3);
}

// Forks a child that runs body(the write end of a pipe), which must not
// return (it _exits or is killed); the parent gets the child's pid and the read end.
template <class Body>
std::pair<pid_t, int> fork_with_pipe(Body body) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    body(fds[1]);
    ::_exit(4); // body returned: a bug in the test
  }
  ::close(fds[1]);
  return {pid, fds[0]};
}

// Tells the parent one 64-bit note through a pipe (8 bytes: written whole).
inline void child_write_note(int fd, std::uint64_t word) {
  for (;;) {
    const ssize_t w = ::write(fd, &word, sizeof word);
    if (w == static_cast<ssize_t>(sizeof word)) return;
    if (w < 0 && errno == EINTR) continue;
    child_fail("writing a note to the parent failed");
  }
}

// A fresh directory under the system's temporary directory, removed with everything in it.
class TempBusDir {
 public:
  TempBusDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ringbus-bus-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempBusDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempBusDir(const TempBusDir&) = delete;
  TempBusDir& operator=(const TempBusDir&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string topic_dir(const std::string& topic) const { return path_ + "/topics/" + topic; }
  // Segment files of a topic, sorted (by base offset).
  [[nodiscard]] std::vector<std::string> segments(const std::string& topic) const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(topic_dir(topic))) {
      if (e.path().extension() == ".seg") out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::string path_;
};

// A whole file's bytes (a segment file: its header page, then its data).
inline std::vector<std::byte> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), path);
  std::vector<std::byte> bytes(std::filesystem::file_size(path));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE_MESSAGE(in.good(), path);
  return bytes;
}

// While one lives, the flusher seals segments of every size (segment_layout.hpp;
// by default only those of TopicStore::seal_min_segment_bytes or more). Make
// it before opening a bus or forking a child that opens one.
struct SealEverySegment {
  explicit SealEverySegment(bool on = true) {
    detail::testing::seal_segments_from(on ? 0 : detail::TopicStore::seal_min_segment_bytes);
  }
  ~SealEverySegment() { detail::testing::seal_segments_from(detail::TopicStore::seal_min_segment_bytes); }
  SealEverySegment(const SealEverySegment&) = delete;
  SealEverySegment& operator=(const SealEverySegment&) = delete;
};

// What a power loss and the reboot after it leave: writer.boot names another
// boot, so the next open checks every segment and trusts no seal.
inline void pretend_reboot(const TempBusDir& dir) {
  std::ofstream f(dir.path() + "/writer.boot", std::ios::binary | std::ios::trunc);
  f << "not-this-boot";
  REQUIRE(f.good());
}

inline Bus open_bus(const std::string& path, const BusOptions& options = {}) {
  Result<Bus> bus = Bus::open(path, options);
  REQUIRE_MESSAGE(bus.ok(), bus.message());
  return std::move(*bus);
}

// A bus opened read-only on path (BusOptions::read_only): a follower of the writer.
inline Bus open_reader(const std::string& path) {
  BusOptions options;
  options.read_only = true;
  return open_bus(path, options);
}

} // namespace ringbus::test
