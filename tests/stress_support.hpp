// Helpers for the multi-threaded stress tests: a payload pool whose slices
// carry precomputed XXH3 hashes (so the producer spends its time in ringbus,
// not in making bytes), self-checking records, a producer that mixes every
// append API, a per-stream checker, a failure collector and a watchdog.
//
// Every record a MixedWriter appends can be checked on its own:
//   keyed record:  key = {offset u64, XXH3-64(value) u64}, value = pool slice
//   tagged record: no key, value = {offset u64, XXH3-64(payload) u64} + payload
// and a record may carry one header "o" holding its offset. So a consumer
// detects a torn, misplaced or corrupt record, not only a missing one.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ringbus/ringbus.hpp"

// Header-only xxhash (libxxhash-dev): no link dependency for the tests.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace ringbus::stress {

// --- scale and seed ------------------------------------------------------------

// RINGBUS_TEST_SCALE=small (the asan and tsan presets) shrinks every run so a
// sanitized build finishes in minutes; anything else runs the full sizes.
inline bool small_scale() noexcept {
  const char* scale = std::getenv("RINGBUS_TEST_SCALE");
  return scale != nullptr && std::string_view(scale) == "small";
}
inline std::uint64_t scaled(std::uint64_t full, std::uint64_t small) noexcept { return small_scale() ? small : full; }

// RINGBUS_TEST_SEED=<n> replays a run; the seed is printed with every failure.
inline std::uint64_t test_seed() noexcept {
  const char* seed = std::getenv("RINGBUS_TEST_SEED");
  return seed != nullptr ? std::strtoull(seed, nullptr, 0) : 0x5eed'2b05'ca11'ab1eULL;
}

// --- randomness and hashing ------------------------------------------------------

// splitmix64's finalizer: a cheap bijective mix, for positions derived from offsets.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9e37'79b9'7f4a'7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58'476d'1ce4'e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d0'49bb'1331'11ebULL;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept { return mix64(state_ += 0x9e37'79b9'7f4a'7c15ULL); }
  // Uniform in [0, n); the modulo bias is irrelevant at these n.
  std::uint64_t below(std::uint64_t n) noexcept { return n == 0 ? 0 : next() % n; }
  bool one_in(std::uint64_t n) noexcept { return below(n) == 0; }

 private:
  std::uint64_t state_;
};

inline std::uint64_t hash64(const void* data, std::size_t bytes) noexcept { return XXH3_64bits(data, bytes); }

// --- payloads --------------------------------------------------------------------

struct Slice {
  const std::byte* data = nullptr;
  std::size_t size = 0;
  std::uint64_t hash = 0; // XXH3-64 of [data, data + size)
};

// Random bytes, cut into slices of size classes (every slice of a class has
// the same size, so a class can feed a packed batch). Slice hashes are
// computed once here.
class PayloadPool {
 public:
  static constexpr std::size_t max_payload = 4096;
  static constexpr std::size_t size_classes = 256;
  static constexpr std::size_t slices_per_class = 16;

  explicit PayloadPool(std::uint64_t seed) : bytes_(pool_bytes + max_payload), sizes_(size_classes) {
    Rng rng(seed);
    for (std::size_t i = 0; i < bytes_.size(); i += 8) {
      const std::uint64_t word = rng.next();
      std::memcpy(bytes_.data() + i, &word, std::min<std::size_t>(8, bytes_.size() - i));
    }
    for (std::size_t c = 0; c < size_classes; ++c) {
      // The edges (empty, one byte, the largest) always occur; the rest are uniform.
      sizes_[c] = c == 0 ? 0 : c == 1 ? 1 : c == 2 ? max_payload : rng.below(max_payload + 1);
      for (std::size_t k = 0; k < slices_per_class; ++k) {
        const std::byte* at = bytes_.data() + rng.below(pool_bytes);
        slices_.push_back(Slice{at, sizes_[c], hash64(at, sizes_[c])});
      }
    }
  }

  // The payload of the record at `offset`, of any size class.
  [[nodiscard]] const Slice& for_offset(std::uint64_t offset) const noexcept {
    return slices_[mix64(offset) % slices_.size()];
  }
  // The payload of the record at `offset` among the slices of one class.
  [[nodiscard]] const Slice& of_class(std::size_t size_class, std::uint64_t offset) const noexcept {
    return slices_[size_class * slices_per_class + mix64(offset) % slices_per_class];
  }
  [[nodiscard]] std::size_t class_size(std::size_t size_class) const noexcept { return sizes_[size_class]; }
  // Random bytes to copy from (at least max_payload of them at any position below pool_bytes).
  [[nodiscard]] const std::byte* raw(std::uint64_t position) const noexcept {
    return bytes_.data() + position % pool_bytes;
  }

 private:
  static constexpr std::size_t pool_bytes = std::size_t{1} << 20;
  std::vector<std::byte> bytes_;
  std::vector<std::size_t> sizes_;
  std::vector<Slice> slices_;
};

// --- record format -------------------------------------------------------------------

inline constexpr std::size_t tag_bytes = 16; // {offset, hash}

inline void write_tag(std::byte* at, std::uint64_t offset, std::uint64_t hash) noexcept {
  std::memcpy(at, &offset, 8);
  std::memcpy(at + 8, &hash, 8);
}

// A tagged value of fixed size, for the typed append_values<T>.
struct TypedValue {
  std::uint64_t offset;
  std::uint64_t hash; // of payload
  std::array<std::byte, 48> payload;
};
static_assert(sizeof(TypedValue) == 64);

// Checks one delivered record against its own key or tag (and header, if
// any). Returns nullptr when intact, else what is wrong.
inline const char* record_defect(const Record& r) noexcept {
  std::uint64_t offset = 0;
  std::uint64_t hash = 0;
  if (r.key.size() == tag_bytes) {
    std::memcpy(&offset, r.key.data(), 8);
    std::memcpy(&hash, r.key.data() + 8, 8);
    if (offset != r.offset) return "the key names another offset";
    if (hash64(r.value.data(), r.value.size()) != hash) return "the value does not match the hash in its key";
  } else if (r.key.empty()) {
    if (r.value.size() < tag_bytes) return "an unkeyed value is shorter than its tag";
    std::memcpy(&offset, r.value.data(), 8);
    std::memcpy(&hash, r.value.data() + 8, 8);
    if (offset != r.offset) return "the value's tag names another offset";
    if (hash64(r.value.data() + tag_bytes, r.value.size() - tag_bytes) != hash) {
      return "the value does not match the hash in its tag";
    }
  } else {
    return "the key has a size no producer wrote";
  }
  if (!r.headers.empty()) {
    if (r.headers.size() != 1) return "a record carries more than the one header written";
    const Header h = *r.headers.begin();
    if (h.name.str() != "o" || h.value.size() != 8 || h.value.as<std::uint64_t>() != r.offset) {
      return "the header does not hold the record's offset";
    }
  }
  return nullptr;
}

// --- failures ------------------------------------------------------------------------

// Collects failures from any thread (doctest assertions stay on the test's
// thread); the first few are kept verbatim.
class Failures {
 public:
  void add(std::string what) {
    count_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    if (kept_.size() < 16) kept_.push_back(std::move(what));
  }
  [[nodiscard]] bool any() const noexcept { return count_.load(std::memory_order_relaxed) != 0; }
  [[nodiscard]] std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::string summary() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const std::string& s : kept_) out += s + "\n";
    return out;
  }

 private:
  std::atomic<std::uint64_t> count_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> kept_;
};

// --- stream checking -------------------------------------------------------------------

// What one consumer has seen of one topic.
struct Stream {
  std::string_view topic;
  std::uint64_t expected = 0;  // next offset it must be given
  std::uint64_t delivered = 0; // records checked
  std::uint64_t lost = 0;      // records reported lost in gaps
  std::uint64_t gaps = 0;      // gaps reported
};

inline Stream* find_stream(std::span<Stream> streams, std::string_view topic) noexcept {
  for (Stream& s : streams) {
    if (s.topic == topic) return &s;
  }
  return nullptr;
}

// Checks one record: it must be its stream's next offset and intact.
inline bool check_record(const Record& r, std::span<Stream> streams, std::string& why) {
  Stream* s = find_stream(streams, r.topic);
  if (s == nullptr) {
    why = "a record of topic '" + std::string(r.topic) + "', which the consumer does not read";
    return false;
  }
  if (r.offset != s->expected) {
    why = "topic '" + std::string(r.topic) + "': got offset " + std::to_string(r.offset) + " where " +
          std::to_string(s->expected) + " was next (and no gap reported it)";
    return false;
  }
  if (const char* defect = record_defect(r)) {
    why = "topic '" + std::string(r.topic) + "' offset " + std::to_string(r.offset) + " (" +
          std::to_string(r.key.size()) + " B key, " + std::to_string(r.value.size()) + " B value): " + defect;
    return false;
  }
  ++s->expected;
  ++s->delivered;
  return true;
}

// Checks one poll: every gap must start exactly where the stream stands and
// moves it on by its count; every record must be the next offset and intact.
// `gaps_allowed` is false for block topics. Returns false with `why` set on
// the first defect.
inline bool check_poll(const Records& records, std::span<Stream> streams, bool gaps_allowed, std::string& why) {
  for (const Gap& g : records.gaps()) {
    Stream* s = find_stream(streams, g.topic);
    if (s == nullptr) {
      why = "a gap names topic '" + std::string(g.topic) + "', which the consumer does not read";
      return false;
    }
    if (!gaps_allowed) {
      why = "topic '" + std::string(g.topic) + "' (block policy) reported " + std::to_string(g.count) +
            " lost records from offset " + std::to_string(g.first_lost);
      return false;
    }
    if (g.count == 0 || g.first_lost != s->expected) {
      why = "topic '" + std::string(g.topic) + "': a gap of " + std::to_string(g.count) + " records from offset " +
            std::to_string(g.first_lost) + " where the consumer stood at offset " + std::to_string(s->expected);
      return false;
    }
    s->expected += g.count;
    s->lost += g.count;
    ++s->gaps;
  }
  for (const Record& r : records) {
    if (!check_record(r, streams, why)) return false;
  }
  return true;
}

// --- the producer --------------------------------------------------------------------

// Every way into a topic, so that each path runs under contention.
enum class Api : std::size_t {
  append_keyed,        // append(key, value): a general-form single frame
  append_with_header,  // append(Message) with a header
  append_tagged,       // append(value): a packed single frame
  try_append,          // try_append(key, value), retried on would_block
  append_batch_mixed,  // append_batch of keyed, tagged and headed messages: general form
  append_batch_packed, // append_batch of same-size tagged values: the packed form
  try_append_batch,    // try_append_batch, retried on would_block
  append_values,       // append_values(data, size, count): packed
  append_values_typed, // append_values<TypedValue>(span)
  try_append_values,   // try_append_values<TypedValue>, retried on would_block
  claim_keyed,         // claim(value, key) then commit()
  claim_values,        // claim_values(size, count) then commit()
  try_claim,           // try_claim, retried on would_block, then commit()
  count
};
inline constexpr std::size_t api_count = static_cast<std::size_t>(Api::count);

inline constexpr std::array<std::string_view, api_count> api_names = {
    "append_keyed",        "append_with_header", "append_tagged", "try_append",          "append_batch_mixed",
    "append_batch_packed", "try_append_batch",   "append_values", "append_values_typed", "try_append_values",
    "claim_keyed",         "claim_values",       "try_claim"};

// Appends self-checking records to one topic, each step by a randomly chosen API.
class MixedWriter {
 public:
  static constexpr std::size_t max_batch = 16;
  static constexpr std::size_t max_typed = 64;
  static constexpr std::size_t value_stride = tag_bytes + PayloadPool::max_payload;

  MixedWriter(Producer& producer, const PayloadPool& pool, std::uint64_t seed, const std::atomic<bool>& stop)
      : producer_(producer),
        pool_(pool),
        rng_(seed),
        stop_(stop),
        values_(max_batch * value_stride),
        typed_(max_typed),
        keys_(max_batch),
        offsets_(max_batch),
        headers_(max_batch),
        messages_(max_batch) {
    next_offset_ = producer.next_offset();
  }

  // Appends between 1 and `remaining` records with one call of a random API.
  // Returns how many; 0 with `error` set when the producer was refused (closed
  // bus, stop requested) or returned a wrong offset.
  std::uint64_t step(std::uint64_t remaining, std::string& error) {
    const auto api = static_cast<Api>(rng_.below(api_count));
    ++calls_[static_cast<std::size_t>(api)];
    const std::uint64_t at = next_offset_;
    const std::size_t batch = 1 + static_cast<std::size_t>(rng_.below(std::min<std::uint64_t>(remaining, max_batch)));
    switch (api) {
      case Api::append_keyed: {
        const Message m = keyed(at, 0);
        return accept(producer_.append(m.key, m.value), 1, error);
      }
      case Api::append_with_header: return accept(producer_.append(with_header(keyed(at, 0), at, 0)), 1, error);
      case Api::append_tagged: return accept(producer_.append(tagged(at, 0, pool_.for_offset(at)).value), 1, error);
      case Api::try_append: {
        const Message m = keyed(at, 0);
        return accept(retry([&] { return producer_.try_append(m.key, m.value); }), 1, error);
      }
      case Api::append_batch_mixed:
      case Api::try_append_batch: {
        for (std::size_t i = 0; i < batch; ++i) {
          const std::uint64_t offset = at + i;
          switch (rng_.below(3)) {
            case 0: messages_[i] = keyed(offset, i); break;
            case 1: messages_[i] = tagged(offset, i, pool_.for_offset(offset)); break;
            default: messages_[i] = with_header(keyed(offset, i), offset, i); break;
          }
        }
        const std::span<const Message> span(messages_.data(), batch);
        if (api == Api::append_batch_mixed) return accept(producer_.append_batch(span), batch, error);
        return accept(retry([&] { return producer_.try_append_batch(span); }), batch, error);
      }
      case Api::append_batch_packed: {
        const std::size_t size_class = rng_.below(PayloadPool::size_classes);
        for (std::size_t i = 0; i < batch; ++i) messages_[i] = tagged(at + i, i, pool_.of_class(size_class, at + i));
        return accept(producer_.append_batch(std::span<const Message>(messages_.data(), batch)), batch, error);
      }
      case Api::append_values: {
        const std::size_t size_class = rng_.below(PayloadPool::size_classes);
        const std::size_t value_bytes = tag_bytes + pool_.class_size(size_class);
        for (std::size_t i = 0; i < batch; ++i) {
          fill_tagged(values_.data() + i * value_bytes, at + i, pool_.of_class(size_class, at + i));
        }
        value_bytes_ += batch * value_bytes;
        return accept(producer_.append_values(values_.data(), value_bytes, batch), batch, error);
      }
      case Api::append_values_typed:
      case Api::try_append_values: {
        const std::size_t n = 1 + static_cast<std::size_t>(rng_.below(std::min<std::uint64_t>(remaining, max_typed)));
        for (std::size_t i = 0; i < n; ++i) {
          TypedValue& v = typed_[i];
          v.offset = at + i;
          std::memcpy(v.payload.data(), pool_.raw(mix64(at + i)), v.payload.size());
          v.hash = hash64(v.payload.data(), v.payload.size());
        }
        value_bytes_ += n * sizeof(TypedValue);
        const std::span<const TypedValue> span(typed_.data(), n);
        if (api == Api::append_values_typed) return accept(producer_.append_values(span), n, error);
        return accept(retry([&] { return producer_.try_append_values(span); }), n, error);
      }
      case Api::claim_keyed:
      case Api::try_claim: {
        const Slice& s = pool_.for_offset(at);
        Result<Claim> claim = api == Api::claim_keyed
                                  ? producer_.claim(s.size, tag_bytes)
                                  : retry_claim([&] { return producer_.try_claim(s.size, tag_bytes); });
        if (!claim.ok()) return refused(claim.status(), error);
        write_tag(claim->key().data(), at, s.hash);
        if (s.size != 0) std::memcpy(claim->value().data(), s.data, s.size);
        value_bytes_ += s.size;
        return accept(claim->commit(), 1, error);
      }
      case Api::claim_values: {
        const std::size_t size_class = rng_.below(PayloadPool::size_classes);
        const std::size_t value_bytes = tag_bytes + pool_.class_size(size_class);
        const std::size_t n = std::min<std::size_t>(batch, producer_.max_value_bytes() / value_bytes);
        Result<Claim> claim = producer_.claim_values(value_bytes, n);
        if (!claim.ok()) return refused(claim.status(), error);
        for (std::size_t i = 0; i < n; ++i) {
          fill_tagged(claim->value().data() + i * value_bytes, at + i, pool_.of_class(size_class, at + i));
        }
        value_bytes_ += n * value_bytes;
        return accept(claim->commit(), n, error);
      }
      case Api::count: break;
    }
    error = "unknown api";
    return 0;
  }

  // Appends until `total` records are in (or a refusal), publishing progress.
  bool run(std::uint64_t total, std::atomic<std::uint64_t>& progress, std::string& error,
           const std::function<void(Rng&)>& between_steps = {}) {
    while (next_offset_ < total) {
      if (step(total - next_offset_, error) == 0) return false;
      progress.store(next_offset_, std::memory_order_relaxed);
      if (between_steps) between_steps(rng_);
    }
    return true;
  }

  [[nodiscard]] std::uint64_t next_offset() const noexcept { return next_offset_; }
  // Value bytes appended: a lower bound on the bytes the ring carried.
  [[nodiscard]] std::uint64_t value_bytes() const noexcept { return value_bytes_; }
  [[nodiscard]] std::uint64_t calls(Api api) const noexcept { return calls_[static_cast<std::size_t>(api)]; }
  [[nodiscard]] std::uint64_t would_blocks() const noexcept { return would_blocks_; }

 private:
  Message keyed(std::uint64_t offset, std::size_t slot) {
    const Slice& s = pool_.for_offset(offset);
    write_tag(keys_[slot].data(), offset, s.hash);
    value_bytes_ += s.size;
    return Message{ByteView(keys_[slot].data(), tag_bytes), ByteView(s.data, s.size), timestamp_now, {}};
  }
  Message tagged(std::uint64_t offset, std::size_t slot, const Slice& s) {
    std::byte* at = values_.data() + slot * value_stride;
    fill_tagged(at, offset, s);
    value_bytes_ += tag_bytes + s.size;
    return Message{ByteView(), ByteView(at, tag_bytes + s.size), timestamp_now, {}};
  }
  Message with_header(Message m, std::uint64_t offset, std::size_t slot) {
    offsets_[slot] = offset;
    headers_[slot] = Header{ByteView("o"), bytes_of(offsets_[slot])};
    m.headers = std::span<const Header>(&headers_[slot], 1);
    return m;
  }
  static void fill_tagged(std::byte* at, std::uint64_t offset, const Slice& s) noexcept {
    write_tag(at, offset, s.hash);
    if (s.size != 0) std::memcpy(at + tag_bytes, s.data, s.size);
  }

  // try_* calls: would_block is the expected answer while consumers hold the
  // room; anything else ends the retry.
  template <class Call>
  Result<std::uint64_t> retry(Call call) {
    for (;;) {
      Result<std::uint64_t> r = call();
      if (r.code() != Errc::would_block || stop_.load(std::memory_order_relaxed)) return r;
      ++would_blocks_;
      std::this_thread::yield();
    }
  }
  template <class Call>
  Result<Claim> retry_claim(Call call) {
    for (;;) {
      Result<Claim> r = call();
      if (r.code() != Errc::would_block || stop_.load(std::memory_order_relaxed)) return r;
      ++would_blocks_;
      std::this_thread::yield();
    }
  }

  std::uint64_t accept(const Result<std::uint64_t>& r, std::uint64_t count, std::string& error) {
    if (!r.ok()) return refused(r.status(), error);
    if (*r != next_offset_) {
      error = "producer: an append returned offset " + std::to_string(*r) + " where " + std::to_string(next_offset_) +
              " was next";
      return 0;
    }
    next_offset_ += count;
    if (stop_.load(std::memory_order_relaxed)) {
      error = "producer: stopped";
      return 0;
    }
    return count;
  }
  std::uint64_t refused(const Status& status, std::string& error) {
    error = "producer: refused at offset " + std::to_string(next_offset_) + ": " + std::string(status.message());
    return 0;
  }

  Producer& producer_;
  const PayloadPool& pool_;
  Rng rng_;
  const std::atomic<bool>& stop_;
  std::vector<std::byte> values_; // tagged values being built (batches, append_values)
  std::vector<TypedValue> typed_;
  std::vector<std::array<std::byte, tag_bytes>> keys_;
  std::vector<std::uint64_t> offsets_; // header values
  std::vector<Header> headers_;
  std::vector<Message> messages_;
  std::uint64_t next_offset_ = 0;
  std::uint64_t value_bytes_ = 0;
  std::uint64_t would_blocks_ = 0;
  std::array<std::uint64_t, api_count> calls_{};
};

// --- watchdog -------------------------------------------------------------------------

// Fails a run that stops making progress instead of letting it hang: when
// progress() has not changed for `limit`, it calls on_stall (which closes the
// bus, so every blocked handle returns Errc::closed) and reports fired(). If
// the test still has not stopped it `limit` later (a thread stuck where a
// closed bus cannot reach it), it aborts the process with a message: a
// crash names the test; a hang names nothing.
class Watchdog {
 public:
  Watchdog(std::chrono::seconds limit, std::function<std::uint64_t()> progress, std::function<void()> on_stall)
      : limit_(limit), progress_(std::move(progress)), on_stall_(std::move(on_stall)), thread_([this] { watch(); }) {}
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() { stop(); }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] bool fired() const noexcept { return fired_.load(std::memory_order_acquire); }

 private:
  void watch() {
    using clock = std::chrono::steady_clock;
    std::uint64_t last = progress_();
    clock::time_point last_change = clock::now();
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stopping_; })) {
      const std::uint64_t now_progress = progress_();
      if (now_progress != last) {
        last = now_progress;
        last_change = clock::now();
      } else if (clock::now() - last_change > limit_) {
        fired_.store(true, std::memory_order_release);
        lock.unlock();
        on_stall_();
        lock.lock();
        if (!wake_.wait_for(lock, limit_, [this] { return stopping_; })) {
          std::fprintf(stderr,
                       "ringbus stress watchdog: no progress for %llds and threads still stuck %llds after "
                       "the bus was closed; aborting\n",
                       static_cast<long long>(limit_.count()), static_cast<long long>(limit_.count()));
          std::abort();
        }
        return;
      }
    }
  }

  std::chrono::seconds limit_;
  std::function<std::uint64_t()> progress_;
  std::function<void()> on_stall_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<bool> fired_{false};
  std::thread thread_;
};

// A progress counter on its own cache line (threads publish, the watchdog reads).
struct alignas(128) Progress {
  std::atomic<std::uint64_t> value{0};
};

} // namespace ringbus::stress
