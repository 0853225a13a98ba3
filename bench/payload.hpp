// The payloads every impl moves, and the check every consumer runs on each
// item it receives: the items must arrive all, once, in order and intact.
//
// Item k of a run (k = 1, 2, ...; never 0, which atomic_queue reserves as its
// empty marker) carries sequence number k. The consumer compares each item's
// sequence with the one it expects and adds up every word of the item (so it
// really reads the whole payload); at the end the count, the mismatches and
// the sum are checked against their closed forms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringbus::bench {

// 8 B payload: the sequence number itself.
using Payload8 = std::uint64_t;

// 64 B payload (one cache line of data): words[i] = sequence + i.
struct Payload64 {
  std::uint64_t words[8];
};
static_assert(sizeof(Payload64) == 64);

template <class Payload>
inline constexpr std::string_view payload_label = sizeof(Payload) == 8 ? "8B" : "64B";

inline void make_payload(std::uint64_t sequence, Payload8& out) noexcept { out = sequence; }
inline void make_payload(std::uint64_t sequence, Payload64& out) noexcept {
  for (std::uint64_t i = 0; i < 8; ++i) out.words[i] = sequence + i;
}
template <class Payload>
inline Payload make_payload(std::uint64_t sequence) noexcept {
  Payload p;
  make_payload(sequence, p);
  return p;
}

inline std::uint64_t sequence_of(const Payload8& p) noexcept { return p; }
inline std::uint64_t sequence_of(const Payload64& p) noexcept { return p.words[0]; }

// The sum of every word of the item.
inline std::uint64_t fold(const Payload8& p) noexcept { return p; }
inline std::uint64_t fold(const Payload64& p) noexcept {
  std::uint64_t sum = 0;
  for (std::uint64_t w : p.words) sum += w;
  return sum;
}

// Sum of fold(item k) for k = 1..n (mod 2^64).
template <class Payload>
inline std::uint64_t expected_fold_sum(std::uint64_t n) noexcept {
  const std::uint64_t triangle = n % 2 == 0 ? (n / 2) * (n + 1) : n * ((n + 1) / 2);
  if constexpr (sizeof(Payload) == 8) {
    return triangle;
  } else {
    return 8 * triangle + 28 * n; // sum over i of (k + i), i = 0..7
  }
}

template <class Payload>
class Verifier;

// Every consume() checks its items through a local copy of the caller's
// Verifier and writes the copy back when it is done: loop(local). A
// Verifier& that a consume loop updates item by item stays in memory (the
// items are read through pointers the compiler cannot tell apart from its
// fields), so each item pays three stores and reloads: on one thread
// ringbus's 8 B span loop took 1.05 ns per item that way, 0.42 ns with the
// state in locals. A local copy is enough when the whole loop inlines (the
// per-item peers); where it did not help (ringbus's spans, measured) the run
// is checked with check_all below. Every impl's consumer does one or the
// other.
template <class Payload, class Loop>
void with_local_verifier(Verifier<Payload>& shared, Loop loop) noexcept {
  Verifier<Payload> local = shared;
  loop(local);
  shared = local;
}

// check() for each of n items back to back, through a local copy of the
// verifier (its state in registers: see with_local_verifier), for impls that
// hold a contiguous run (ringbus's spans, bulk-dequeue buffers). Any
// verifier: Verifier, MpscVerifier, GroupVerifier.
template <class V, class Item>
void check_all(V& verifier, const Item* items, std::size_t n) noexcept {
  V local = verifier;
  for (std::size_t i = 0; i < n; ++i) local.check(items[i]);
  verifier = local;
}

// Runs on the consumer thread; branch-free per item so that checking costs
// every impl the same few instructions.
template <class Payload>
class Verifier {
 public:
  void check(const Payload& item) noexcept {
    mismatches_ += sequence_of(item) != next_ ? 1 : 0;
    sum_ += fold(item);
    ++next_;
  }
  // An item that arrived in a form that cannot be the expected one (e.g. a
  // ringbus record of the wrong size).
  void reject() noexcept {
    ++mismatches_;
    ++next_;
  }
  [[nodiscard]] std::uint64_t received() const noexcept { return next_ - 1; }

  // Empty if items 1..sent all arrived, once, in order, intact; else what went wrong.
  [[nodiscard]] std::string verdict(std::uint64_t sent) const {
    if (received() != sent) {
      return "received " + std::to_string(received()) + " items, sent " + std::to_string(sent);
    }
    if (mismatches_ != 0) return std::to_string(mismatches_) + " items out of order or malformed";
    if (sum_ != expected_fold_sum<Payload>(sent)) return "payload checksum mismatch";
    return {};
  }

 private:
  std::uint64_t next_ = 1;
  std::uint64_t mismatches_ = 0;
  std::uint64_t sum_ = 0;
};

} // namespace ringbus::bench
