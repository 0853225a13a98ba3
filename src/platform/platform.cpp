#include "platform/platform.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <string>

namespace ringbus::platform {

Result<void*> map_anonymous(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    return Status(e == ENOMEM ? Errc::out_of_memory : Errc::system_error,
                  "mmap of " + std::to_string(bytes) + " bytes failed: " + std::strerror(e));
  }
  return p;
}

void unmap(void* address, std::size_t bytes) noexcept { ::munmap(address, bytes); }

bool protect_none(void* address, std::size_t bytes) noexcept { return ::mprotect(address, bytes, PROT_NONE) == 0; }

bool advise_huge_pages(void* address, std::size_t bytes) noexcept {
#ifdef MADV_HUGEPAGE
  return ::madvise(address, bytes, MADV_HUGEPAGE) == 0;
#else
  (void)address;
  (void)bytes;
  return false;
#endif
}

bool prefault(void* address, std::size_t bytes) noexcept {
#ifdef MADV_POPULATE_WRITE
  if (::madvise(address, bytes, MADV_POPULATE_WRITE) == 0) return true;
#endif
  // Older kernels: touch one byte per page (the mapping is private and zeroed).
  const long page = ::sysconf(_SC_PAGESIZE);
  auto* bytes_ptr = static_cast<volatile unsigned char*>(address);
  for (std::size_t i = 0; i < bytes; i += static_cast<std::size_t>(page)) bytes_ptr[i] = 0;
  return true;
}

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, std::int64_t timeout_ns) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
    tsp = &ts;
  }
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, tsp, nullptr, 0);
}

void futex_wake_all(std::atomic<std::uint32_t>* word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

void yield() noexcept { ::sched_yield(); }

void sleep_ns(std::int64_t ns) noexcept {
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  ::nanosleep(&ts, nullptr);
}

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

bool kernel_clocksource(char* out, std::size_t size) noexcept {
  if (size == 0) return false;
  out[0] = '\0';
  // open/read, not iostreams: no heap (a topic's creation may be the first to ask).
  const int fd = ::open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t n = ::read(fd, out, size - 1);
  ::close(fd);
  if (n <= 0) {
    out[0] = '\0';
    return false;
  }
  // sysfs ends the name with a newline: without one in what fit, the name
  // was longer than out (cut short, it could read as another name).
  const void* newline = std::memchr(out, '\n', static_cast<std::size_t>(n));
  if (newline == nullptr) {
    out[0] = '\0';
    return false;
  }
  const std::size_t length = static_cast<std::size_t>(static_cast<const char*>(newline) - out);
  out[length] = '\0';
  return length != 0;
}

bool cpu_has_invariant_tsc() noexcept {
#if defined(__x86_64__) && defined(__GNUC__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(0x80000007, &a, &b, &c, &d) != 0 && (d & (1U << 8)) != 0;
#else
  return false;
#endif
}

std::string boot_id() {
  const int fd = ::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char text[64] = {};
  const ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) return {};
  std::string id(text, static_cast<std::size_t>(n));
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

long process_id() noexcept { return static_cast<long>(::getpid()); }

bool pin_current_thread(int cpu) noexcept {
  if (cpu < 0 || cpu >= CPU_SETSIZE) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::sched_setaffinity(0, sizeof set, &set) == 0;
}

int available_cpus() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return CPU_COUNT(&set);
}

} // namespace ringbus::platform
