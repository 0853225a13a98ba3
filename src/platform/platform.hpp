// Every operating-system call ringbus makes, one contract per line.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "ringbus/status.hpp"

namespace ringbus::platform {

// Maps bytes of zeroed, private, anonymous memory; error names the size and errno.
Result<void*> map_anonymous(std::size_t bytes);
// Unmaps what map_anonymous returned; never fails for a valid mapping.
void unmap(void* address, std::size_t bytes) noexcept;
// Makes [address, address+bytes) (whole pages) fault on any access: a guard
// after a ring, so a read past its end is a crash at once, not a neighbour's bytes.
bool protect_none(void* address, std::size_t bytes) noexcept;
// Asks for transparent huge pages on [address, address+bytes); false if refused.
bool advise_huge_pages(void* address, std::size_t bytes) noexcept;
// Populates (writes into) every page of [address, address+bytes) now; false if the kernel refused.
bool prefault(void* address, std::size_t bytes) noexcept;
// Sleeps while *word == expected, at most timeout_ns (<0: no limit); returns on wake, timeout or signal.
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, std::int64_t timeout_ns) noexcept;
// Wakes every thread asleep in futex_wait on word.
void futex_wake_all(std::atomic<std::uint32_t>* word) noexcept;
// Gives the CPU to another runnable thread.
void yield() noexcept;
// Sleeps for ns nanoseconds (or until a signal).
void sleep_ns(std::int64_t ns) noexcept;
// Monotonic clock in ns (vDSO).
std::int64_t monotonic_ns() noexcept;
// monotonic_ns() + timeout_ns, saturating: a timeout as long as
// nanoseconds::max() waits that long instead of overflowing into the past.
inline std::int64_t deadline_after(std::int64_t timeout_ns) noexcept {
  const std::int64_t now = monotonic_ns();
  return timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
}
// The kernel's current clocksource as sysfs names it ("tsc", "kvm-clock",
// "hpet", ...), without its newline, into out (NUL-terminated, at most
// size - 1 bytes); false, with out empty, when it cannot tell.
bool kernel_clocksource(char* out, std::size_t size) noexcept;
// Whether the CPU says its time-stamp counter is invariant (CPUID
// 0x80000007, EDX bit 8: one constant rate, ticking through every power
// state; /proc/cpuinfo's constant_tsc and nonstop_tsc). False off x86-64.
bool cpu_has_invariant_tsc() noexcept;
// This boot's id (/proc/sys/kernel/random/boot_id: new at every boot), or
// "" when the system does not say.
std::string boot_id();
// The id of the calling process (getpid).
long process_id() noexcept;
// Pins the calling thread to one CPU; false if the CPU does not exist or is not allowed.
bool pin_current_thread(int cpu) noexcept;
// CPUs this process may run on.
int available_cpus() noexcept;

} // namespace ringbus::platform
