// The log scenarios of persistent topics, on Google Benchmark's thread (CPU 0):
//
// replay/ringbus: a topic of config.persist_log_bytes of 64 B values
// (log_segment_bytes segments, log_segment_count of them: the whole log fits
// in the ring) is written once, outside timing, and its bus closed. Each
// timed iteration then reads it from offset 0 out of the page cache: the bus
// is reopened (untimed; a fresh mapping, so the read takes the same minor
// page faults as the floor's), a consumer polls every record, and checks each
// one as the spsc consumers do (sequence, sum of its 8 words). The bus is
// reopened without the flusher thread: nothing is appended, and right after
// an open the flusher walks every sealed segment to check its persisted
// index, which would fault in the mapping the timed read is measuring.
//
// replay/memcpy_floor: a file of the same number of bytes, written once
// (page cache); each timed iteration maps it afresh (MAP_SHARED, PROT_READ,
// untimed) and memcpys all of it, 1 MiB at a time, into one 1 MiB buffer.
// The floor of reading those bytes out of the page cache on this machine.
//
// recover/ringbus: a child process (fork) opens a bus on a fresh directory,
// writes a topic of config.persist_log_bytes (same options as replay), tells
// the parent how many records it has published, and goes on appending one
// batch every 100 us until the parent SIGKILLs it 100 ms later: an unclean
// stop in the middle of writing, with the files in the page cache. The
// parent times Bus::open on the directory (recovery: every segment header
// read, the tail segment checked frame by frame and cut at the first torn
// frame), reported as the counter recover_ms, then checks that every record
// published before the signal is there and intact.
#pragma once

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "config.hpp"
#include "impls/ringbus.hpp"
#include "payload.hpp"
#include "ringbus/ringbus.hpp"
#include "temp_dir.hpp"

namespace ringbus::bench {

inline constexpr std::string_view log_topic = "log";

inline TopicOptions log_topic_options() {
  TopicOptions options;
  options.segment_bytes = log_segment_bytes;
  options.segment_count = log_segment_count;
  options.storage = Storage::persistent;
  options.durability = Durability::none;
  return options;
}

inline std::uint64_t log_records(const RunConfig& config) noexcept {
  return config.persist_log_bytes / sizeof(Payload64);
}

// Appends records first..first + count - 1 (Payload64 of each sequence) in batches of batch_values.
inline Status append_log(Producer& producer, std::uint64_t first, std::uint64_t count) noexcept {
  while (count != 0) {
    const std::uint64_t n = std::min<std::uint64_t>(count, batch_values);
    Result<Claim> claim = producer.claim_values(sizeof(Payload64), n);
    if (!claim) return claim.status();
    for (Payload64& value : claim->values<Payload64>()) make_payload(first++, value);
    if (Result<std::uint64_t> committed = claim->commit(); !committed) return committed.status();
    count -= n;
  }
  return {};
}

inline void replay_ringbus(benchmark::State& state, const RunConfig& config) {
  const std::uint64_t records = log_records(config);
  try {
    TempDirectory dir("replay");
    {
      Bus bus = Bus::open(dir.path()).value();
      bus.create_topic(log_topic, log_topic_options()).check();
      Producer producer = bus.producer(log_topic).value();
      append_log(producer, 1, records).check();
    } // handles, then the bus, closed here
    BusOptions reopen;
    reopen.flusher_thread = false;
    for (auto _ : state) {
      Bus bus = Bus::open(dir.path(), reopen).value();
      Consumer consumer = bus.consumer(log_topic, StartPosition::earliest).value();
      Verifier<Payload64> verifier;
      std::uint64_t empty_polls = 0;
      const auto start = std::chrono::steady_clock::now();
      while (verifier.received() < records && empty_polls < 1000) {
        Result<Records> polled = consumer.poll();
        if (!polled) break;
        empty_polls += polled->empty() ? 1 : 0;
        verify_batches(*polled, verifier);
      }
      const auto end = std::chrono::steady_clock::now();
      state.SetIterationTime(std::chrono::duration<double>(end - start).count());
      if (const std::string verdict = verifier.verdict(records); !verdict.empty()) {
        state.SkipWithError(("replay check failed: " + verdict).c_str());
        break;
      }
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  const auto bytes = static_cast<std::int64_t>(records * sizeof(Payload64));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(records));
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["log_mib"] = benchmark::Counter(static_cast<double>(bytes) / (1 << 20));
}

inline void replay_memcpy_floor(benchmark::State& state, const RunConfig& config) {
  const std::size_t bytes = log_records(config) * sizeof(Payload64);
  constexpr std::size_t chunk = std::size_t{1} << 20;
  try {
    TempDirectory dir("replay_floor");
    const std::string path = dir.path() + "/floor.bin";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + path);
    std::vector<std::uint64_t> buffer(chunk / sizeof(std::uint64_t));
    for (std::size_t at = 0; at < bytes; at += chunk) {
      for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = at + i;
      if (::pwrite(fd, buffer.data(), chunk, static_cast<off_t>(at)) != static_cast<ssize_t>(chunk)) {
        ::close(fd);
        throw std::system_error(errno, std::generic_category(), "write " + path);
      }
    }
    for (auto _ : state) {
      void* mapped = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
      if (mapped == MAP_FAILED) {
        state.SkipWithError("mmap of the floor's file failed");
        break;
      }
      const auto* from = static_cast<const std::byte*>(mapped);
      const auto start = std::chrono::steady_clock::now();
      for (std::size_t at = 0; at < bytes; at += chunk) {
        std::memcpy(buffer.data(), from + at, chunk);
        benchmark::DoNotOptimize(buffer.data());
        benchmark::ClobberMemory();
      }
      const auto end = std::chrono::steady_clock::now();
      state.SetIterationTime(std::chrono::duration<double>(end - start).count());
      ::munmap(mapped, bytes);
    }
    ::close(fd);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(log_records(config)));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
  state.counters["log_mib"] = benchmark::Counter(static_cast<double>(bytes) / (1 << 20));
}

// The child of recover: writes the log, reports the records published on
// `report`, then appends a batch every 100 us until it is killed. Never returns.
[[noreturn]] inline void write_until_killed(const std::string& dir, std::uint64_t records, int report) noexcept {
  try {
    Result<Bus> bus = Bus::open(dir);
    if (!bus) ::_exit(2);
    if (!bus->create_topic(log_topic, log_topic_options()).ok()) ::_exit(3);
    Result<Producer> producer = bus->producer(log_topic);
    if (!producer) ::_exit(4);
    if (!append_log(*producer, 1, records).ok()) ::_exit(5);
    if (::write(report, &records, sizeof records) != static_cast<ssize_t>(sizeof records)) ::_exit(6);
    for (std::uint64_t next = records + 1;; next += batch_values) {
      if (!append_log(*producer, next, batch_values).ok()) ::_exit(7);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  } catch (...) {
    ::_exit(8);
  }
}

inline void recover_ringbus(benchmark::State& state, const RunConfig& config) {
  const std::uint64_t records = log_records(config);
  double recover_ms = 0;
  std::size_t segments = 0;
  try {
    for (auto _ : state) {
      TempDirectory dir("recover"); // first in, last out: removed after the bus below is closed
      int pipe_fds[2];
      if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
      const pid_t child = ::fork();
      if (child < 0) throw std::system_error(errno, std::generic_category(), "fork");
      if (child == 0) {
        ::close(pipe_fds[0]);
        write_until_killed(dir.path(), records, pipe_fds[1]);
      }
      ::close(pipe_fds[1]);
      std::uint64_t published = 0;
      const ssize_t got = ::read(pipe_fds[0], &published, sizeof published);
      ::close(pipe_fds[0]);
      if (got == static_cast<ssize_t>(sizeof published)) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ::kill(child, SIGKILL);
      int status = 0;
      ::waitpid(child, &status, 0);
      if (got != static_cast<ssize_t>(sizeof published)) {
        const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        state.SkipWithError(
            ("the writer child stopped before writing the log (exit " + std::to_string(code) + ")").c_str());
        break;
      }

      const auto start = std::chrono::steady_clock::now();
      Result<Bus> bus = Bus::open(dir.path());
      const auto end = std::chrono::steady_clock::now();
      const double seconds = std::chrono::duration<double>(end - start).count();
      state.SetIterationTime(seconds);
      recover_ms = seconds * 1e3;
      if (!bus) {
        state.SkipWithError(("Bus::open after the kill failed: " + std::string(bus.message())).c_str());
        break;
      }
      // Every record published before the signal survived, intact: the last one is checked here.
      const TopicInfo info = bus->describe(log_topic).value();
      segments = info.segment_files;
      Consumer consumer = bus->consumer(log_topic).value();
      consumer.seek(log_topic, published - 1).check();
      Result<Records> last = consumer.poll(1);
      bool intact = false;
      if (last && last->size() == 1) {
        const Record r = *last->begin(); // the iterator yields records by value
        Payload64 value{};
        if (r.value.size() == sizeof value) {
          std::memcpy(&value, r.value.data(), sizeof value);
          intact = value.words[0] == published && fold(value) == 8 * published + 28;
        }
      }
      if (info.end_offset < published || !intact) {
        state.SkipWithError(("after recovery the topic ends at offset " + std::to_string(info.end_offset) + ", " +
                             std::to_string(published) + " records were published before the kill" +
                             (intact ? "" : "; the last of them is not intact"))
                                .c_str());
        break;
      }
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  state.counters["recover_ms"] = benchmark::Counter(recover_ms);
  state.counters["segments"] = benchmark::Counter(static_cast<double>(segments));
  state.counters["log_mib"] =
      benchmark::Counter(static_cast<double>(records * sizeof(Payload64)) / static_cast<double>(1 << 20));
}

} // namespace ringbus::bench
