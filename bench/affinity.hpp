// Thread pinning: every impl runs with its producer on one CPU and its
// consumer on another, so that no result depends on where the scheduler put
// a thread.
#pragma once

namespace ringbus::bench {

// The producer is Google Benchmark's own thread (pinned once in main); each
// run's consumer (or echo) thread pins itself to consumer_cpu.
inline constexpr int producer_cpu = 0;
inline constexpr int consumer_cpu = 1;

// Pins the calling thread to one CPU with sched_setaffinity. On refusal it
// warns once on stderr, counts the failure and returns false: the run goes on
// unpinned, and the summary says so.
bool pin_this_thread(int cpu) noexcept;

// Lets the calling thread run on every CPU the process was allowed when it
// first pinned a thread (the mask before pinning). Threads inherit their
// creator's mask: the persistent rows open their bus this way, so that its
// flusher thread floats instead of sharing the producer's CPU.
bool unpin_this_thread() noexcept;

// Pinning requests refused so far in this process.
int pin_failures() noexcept;

// CPUs this process may run on (its affinity mask).
int allowed_cpu_count() noexcept;

} // namespace ringbus::bench
