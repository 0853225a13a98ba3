#include "ringbus/producer.hpp"

#include <algorithm>
#include <string>

#include "detail/bus_core.hpp"

namespace ringbus {

namespace {

// Encoded bytes of the messages as one general-form frame body.
struct BatchShape {
  bool packed = true;         // every message packable with the same value size and time
  bool one_time = true;       // every message has the same timestamp
  std::size_t value_size = 0; // when packed
};

BatchShape shape_of(std::span<const Message> messages) noexcept {
  BatchShape s;
  s.value_size = messages.front().value.size();
  const std::int64_t ts = messages.front().timestamp_ns;
  for (const Message& m : messages) {
    if (m.timestamp_ns != ts) s.one_time = false;
    if (!detail::packable(m) || m.value.size() != s.value_size) s.packed = false;
  }
  s.packed = s.packed && s.one_time;
  return s;
}

} // namespace

Producer::Producer(std::shared_ptr<detail::BusCore> core, detail::Log* log) noexcept
    : core_(std::move(core)), log_(log), wall_clock_(log->options().timestamps == TimestampSource::wall_clock) {}

Producer::Producer(Producer&& other) noexcept
    : core_(std::move(other.core_)), log_(other.log_), wall_clock_(other.wall_clock_) {
  other.log_ = nullptr;
}

Producer& Producer::operator=(Producer&& other) noexcept {
  if (this != &other) {
    close();
    core_ = std::move(other.core_);
    log_ = other.log_;
    wall_clock_ = other.wall_clock_;
    other.log_ = nullptr;
  }
  return *this;
}

Producer::~Producer() { close(); }

Status Producer::close() noexcept {
  if (log_ == nullptr) return Status(Errc::closed, "producer is already closed");
  if (Claim* open = log_->writer().open_claim; open != nullptr) open->log_ = nullptr; // aborted: inert
  log_->close_writer();
  log_ = nullptr;
  core_.reset();
  return {};
}

std::string_view Producer::topic() const noexcept { return log_ != nullptr ? log_->name() : std::string_view(); }

std::uint64_t Producer::next_offset() const noexcept { return log_ != nullptr ? log_->writer().next_offset : 0; }

std::size_t Producer::max_value_bytes() const noexcept {
  return log_ != nullptr ? log_->segment_bytes() - detail::frame_header_bytes : 0;
}

// A batch is published at its end, so its frames must fit the ring ahead of
// the published tail: from its start's segment, the rest of that one and
// the N - 1 segments after it. A frame takes what fits the rest of a
// segment, records of up to S - 32 bytes each, so two segments in a row
// carry more than S - 32 bytes of records (what the first left out did not
// fit it): within N / 2 (S - 32) bytes a batch takes at most N - 1 whole
// segments. (C - S) / 2, the limit of old, is the smaller unless segments
// are under 32 bytes a segment (S < 32 N).
std::size_t Producer::batch_limit_bytes() const noexcept {
  if (log_ == nullptr) return 0;
  const std::size_t segment = log_->segment_bytes();
  const std::size_t segments = log_->capacity() / segment;
  return std::min((log_->capacity() - segment) / 2, segments / 2 * (segment - detail::frame_header_bytes));
}

Status Producer::refusal() const noexcept {
  if (log_ == nullptr) return Status(Errc::closed, "producer is closed");
  if (log_->closed()) return Status(Errc::closed, "bus is closed (topic '" + std::string(log_->name()) + "')");
  if (log_->refusing()) return log_->roll_error();
  return Status(Errc::no_claim, "producer of topic '" + std::string(log_->name()) +
                                    "' has an open claim: commit() or abort() it first");
}

Status Producer::value_too_large(std::size_t frame_length, ByteView value) const noexcept {
  return too_large(frame_length, Message{ByteView(), value, timestamp_now, {}});
}

Status Producer::too_large(std::size_t frame_length, const Message& m) const noexcept {
  if (m.headers.size() > limits::max_headers) {
    return Status(Errc::invalid_argument, "record with " + std::to_string(m.headers.size()) +
                                              " headers exceeds the limit of " + std::to_string(limits::max_headers));
  }
  return Status(Errc::record_too_large, "record of " + std::to_string(frame_length) + " bytes encoded (key " +
                                            std::to_string(m.key.size()) + " B, value " +
                                            std::to_string(m.value.size()) + " B, " + std::to_string(m.headers.size()) +
                                            " headers) does not fit a segment of topic '" + std::string(log_->name()) +
                                            "' (" + std::to_string(log_->segment_bytes()) + " bytes; largest value " +
                                            std::to_string(max_value_bytes()) + " bytes)");
}

Status Producer::batch_too_large(std::size_t total) const noexcept {
  return Status(Errc::record_too_large, "batch of " + std::to_string(total) + " bytes for topic '" +
                                            std::string(log_->name()) + "' exceeds the batch limit of " +
                                            std::to_string(batch_limit_bytes()) + " bytes (batch_limit_bytes())");
}

Status Producer::batch_refused(Errc err, std::size_t total, std::uint64_t span) const noexcept {
  if (err != Errc::record_too_large) return failure(err);
  return Status(Errc::record_too_large,
                "batch of " + std::to_string(total) + " bytes for topic '" + std::string(log_->name()) +
                    "' would run " + std::to_string(span) + " bytes past the writer's position (headers and " +
                    "segment ends included), more than the ring of " + std::to_string(log_->capacity()) +
                    " bytes leaves ahead of its published records");
}

Result<std::uint64_t> Producer::append_value_slow(ByteView value, std::int64_t ts, bool wait) noexcept {
  detail::Log* const log = log_;
  const std::size_t length = detail::frame_header_bytes + value.size();
  if (detail::align_up(length, detail::frame_alignment) > log->segment_bytes()) return value_too_large(length, value);
  Errc err = Errc::ok;
  std::size_t frame_bytes = 0;
  std::byte* const p = log->reserve_append(length, wait, err, frame_bytes);
  if (p == nullptr) return failure(err);
  const std::uint64_t offset = log->writer().next_offset;
  const auto flags = static_cast<std::uint8_t>(detail::frame_flags::packed | log->append_flags());
  const std::uint64_t word0 = detail::write_header(p, static_cast<std::uint32_t>(length), flags, 1, offset, ts);
  detail::put_value_padded(p + detail::frame_header_bytes, value.data(), value.size());
  log->commit_one(frame_bytes, word0);
  if (log->needs_sync()) return synced(offset);
  return offset;
}

Result<std::uint64_t> Producer::synced(std::uint64_t offset) const noexcept {
  if (Status st = log_->sync_published(); !st.ok()) return st;
  return offset;
}

Status Producer::failure(Errc err) const noexcept {
  if (err == Errc::closed) return Status(Errc::closed, "bus is closed (topic '" + std::string(log_->name()) + "')");
  if (err != Errc::would_block && err != Errc::timed_out) return log_->roll_error(); // the file system's words
  return Status(err); // would_block: no message, no allocation
}

Result<std::uint64_t> Producer::append_many(std::span<const Message> messages, bool wait) noexcept {
  detail::Log* const log = log_;
  if (log == nullptr || log->writer().open_claim != nullptr || log->refusing()) return refusal();
  if (messages.empty()) {
    return Status(Errc::invalid_argument, "append_batch of topic '" + std::string(log->name()) + "' got no messages");
  }
  if (messages.size() > UINT32_MAX) {
    return Status(Errc::invalid_argument,
                  "batch of " + std::to_string(messages.size()) + " messages exceeds 4294967295 records");
  }
  // Same value size, no keys, no headers, one timestamp: the packed form.
  const BatchShape shape = shape_of(messages);
  // Check sizes first: all or nothing, counting each record's body at the
  // most its timestamp delta can make it (max_delta_growth).
  std::size_t total = 0;
  for (const Message& m : messages) {
    if (m.headers.size() > limits::max_headers) {
      return Status(Errc::invalid_argument, "record with " + std::to_string(m.headers.size()) +
                                                " headers exceeds the limit of " + std::to_string(limits::max_headers));
    }
    const std::size_t one =
        detail::frame_header_bytes +
        (shape.packed ? m.value.size()
                      : detail::record_body_bytes(m, 0) + (shape.one_time ? 0 : detail::max_delta_growth));
    if (detail::align_up(one, detail::frame_alignment) > log->segment_bytes()) return too_large(one, m);
    total += one - detail::frame_header_bytes;
  }
  if (total > batch_limit_bytes()) return batch_too_large(total);

  detail::WriterState& w = log->writer();
  const std::uint64_t first = w.next_offset;
  const std::int64_t now = stamp();
  const auto time_of = [now](const Message& m) { return m.timestamp_ns != timestamp_now ? m.timestamp_ns : now; };
  // Wrapping difference: any two int64 timestamps round-trip through zigzag.
  const auto delta = [](std::int64_t t, std::int64_t base_ts) {
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(t) - static_cast<std::uint64_t>(base_ts));
  };
  // The frame starting at message `at` in r bytes: how many messages, and
  // their encoded bytes (body). 0: not even one fits.
  const auto frame_of = [&](std::size_t at, std::size_t r, std::size_t& body) {
    const std::int64_t base_ts = time_of(messages[at]);
    body = 0;
    std::size_t k = 0;
    while (at + k < messages.size()) {
      const Message& m = messages[at + k];
      const std::size_t add =
          shape.packed ? shape.value_size : detail::record_body_bytes(m, delta(time_of(m), base_ts));
      if (detail::frame_header_bytes + body + add > r) break;
      body += add;
      ++k;
    }
    return k;
  };
  if (detail::frame_header_bytes + total > w.segment_end - w.pos) {
    // It rolls: lay the frames out as the loop below will, and take the room
    // up to the last one's segment before writing.
    std::uint64_t pos = w.pos;
    std::uint64_t end = w.segment_end;
    for (std::size_t at = 0; at < messages.size();) {
      std::size_t body = 0;
      std::size_t k = frame_of(at, end - pos, body);
      if (k == 0) {
        pos = end;
        end += log->segment_bytes();
        k = frame_of(at, end - pos, body);
      }
      pos += log->batch_frame_bytes_at(pos, detail::frame_header_bytes + body);
      at += k;
    }
    if (Errc err = Errc::ok; !log->reclaim_for_batch(end, wait, err)) return batch_refused(err, total, end - w.pos);
  }
  const detail::Log::WriterMark saved = log->mark();

  std::size_t i = 0;
  while (i < messages.size()) {
    // Fill one frame with as many messages as the current segment holds.
    const std::int64_t base_ts = time_of(messages[i]);
    std::size_t room = w.segment_end - w.pos;
    std::size_t body = 0;
    std::size_t k = 0;
    const auto fits = [&](std::size_t r) { return k = frame_of(i, r, body); };
    if (fits(room) == 0) {
      // Not even one fits here: roll to the next segment (it always fits there).
      Errc err = Errc::ok;
      const std::size_t first_frame = detail::align_up(
          detail::frame_header_bytes + (shape.packed ? shape.value_size : detail::record_body_bytes(messages[i], 0)),
          detail::frame_alignment);
      if (log->reserve(first_frame, wait, err) == nullptr) {
        log->rollback(saved);
        return failure(err);
      }
      room = w.segment_end - w.pos;
      fits(room);
    }
    const std::size_t length = detail::frame_header_bytes + body;
    std::size_t frame_bytes = 0;
    Errc err = Errc::ok;
    std::byte* const p = log->reserve_batch(length, wait, err, frame_bytes); // fits: never rolls here
    if (p == nullptr) {
      log->rollback(saved);
      return failure(err);
    }
    const auto flags =
        static_cast<std::uint8_t>((shape.packed ? detail::frame_flags::packed : 0) | log->batch_flags(length));
    const std::uint64_t word0 = detail::write_header(p, static_cast<std::uint32_t>(length), flags,
                                                     static_cast<std::uint32_t>(k), w.next_offset, base_ts);
    std::byte* out = p + detail::frame_header_bytes;
    for (std::size_t j = 0; j < k; ++j) {
      const Message& m = messages[i + j];
      if (shape.packed) {
        if (shape.value_size != 0) std::memcpy(out, m.value.data(), shape.value_size);
        out += shape.value_size;
      } else {
        out = detail::encode_record(out, m, delta(time_of(m), base_ts));
      }
    }
    detail::zero_padding(p, length);
    log->advance(frame_bytes, static_cast<std::uint32_t>(k), word0);
    i += k;
  }
  log->publish();
  if (RINGBUS_UNLIKELY(log->needs_sync())) {
    if (Status st = log->sync_published(); !st.ok()) return st;
  }
  return first;
}

Result<std::uint64_t> Producer::append_packed(const void* data, std::size_t value_bytes, std::size_t count,
                                              std::int64_t timestamp_ns, bool wait) noexcept {
  detail::Log* const log = log_;
  if (log == nullptr || log->writer().open_claim != nullptr || log->refusing()) return refusal();
  if (count == 0) {
    return Status(Errc::invalid_argument, "append_values of topic '" + std::string(log->name()) + "' got no values");
  }
  if (detail::frame_header_bytes + value_bytes > log->segment_bytes()) {
    return too_large(detail::frame_header_bytes + value_bytes,
                     Message{ByteView(), ByteView(data, value_bytes), timestamp_now, {}});
  }
  const std::size_t total = count * value_bytes;
  if (value_bytes != 0 && total / value_bytes != count) {
    return Status(Errc::record_too_large, "append_values: count * value size overflows");
  }
  if (total > batch_limit_bytes()) return batch_too_large(total);
  detail::WriterState& w = log->writer();
  const std::uint64_t first = w.next_offset;
  const std::int64_t ts = timestamp_ns != timestamp_now ? timestamp_ns : stamp();
  const auto* src = static_cast<const std::byte*>(data);
  // Records per frame are limited by the segment and by the u32 record count.
  const std::size_t per_segment =
      value_bytes == 0 ? std::size_t{UINT32_MAX} : (log->segment_bytes() - detail::frame_header_bytes) / value_bytes;
  // The values of the frame at pos in a segment ending at end (of `left`).
  // 0: not one fits, the frame goes to the next segment (per_segment there).
  const auto frame_count = [value_bytes](std::uint64_t pos, std::uint64_t end, std::size_t left) -> std::size_t {
    const std::uint64_t room = end - pos;
    if (room < detail::frame_header_bytes + value_bytes) return 0;
    const std::uint64_t fit = value_bytes == 0 ? left : (room - detail::frame_header_bytes) / value_bytes;
    return std::min<std::uint64_t>({left, fit, UINT32_MAX});
  };
  if (detail::frame_header_bytes + total > w.segment_end - w.pos) {
    // It rolls: lay the frames out as the loop below will, and take the room
    // up to the last one's segment before writing.
    std::uint64_t pos = w.pos;
    std::uint64_t end = w.segment_end;
    for (std::size_t left = count; left != 0;) {
      std::size_t k = frame_count(pos, end, left);
      if (k == 0) {
        pos = end;
        end += log->segment_bytes();
        k = std::min<std::size_t>({left, per_segment, std::size_t{UINT32_MAX}});
      }
      pos += log->batch_frame_bytes_at(pos, detail::frame_header_bytes + k * value_bytes);
      left -= k;
    }
    if (Errc err = Errc::ok; !log->reclaim_for_batch(end, wait, err)) return batch_refused(err, total, end - w.pos);
  }
  const detail::Log::WriterMark saved = log->mark();
  std::size_t left = count;
  while (left != 0) {
    std::size_t k = frame_count(w.pos, w.segment_end, left);
    // 0: reserve below rolls to a fresh segment
    if (k == 0) k = std::min<std::size_t>({left, per_segment, std::size_t{UINT32_MAX}});
    const std::size_t length = detail::frame_header_bytes + k * value_bytes;
    std::size_t frame_bytes = 0;
    Errc err = Errc::ok;
    std::byte* const p = log->reserve_batch(length, wait, err, frame_bytes);
    if (p == nullptr) {
      log->rollback(saved);
      return failure(err);
    }
    const auto flags = static_cast<std::uint8_t>(detail::frame_flags::packed | log->batch_flags(length));
    const std::uint64_t word0 = detail::write_header(p, static_cast<std::uint32_t>(length), flags,
                                                     static_cast<std::uint32_t>(k), w.next_offset, ts);
    if (k * value_bytes != 0) std::memcpy(p + detail::frame_header_bytes, src, k * value_bytes);
    detail::zero_padding(p, length);
    log->advance(frame_bytes, static_cast<std::uint32_t>(k), word0);
    src += k * value_bytes;
    left -= k;
  }
  log->publish();
  if (RINGBUS_UNLIKELY(log->needs_sync())) {
    if (Status st = log->sync_published(); !st.ok()) return st;
  }
  return first;
}

Result<Claim> Producer::claim_values_up_to(std::size_t value_bytes, std::size_t max_count, bool wait) noexcept {
  // claim_frame makes the other refusals (an open claim, a closed or failed
  // log); the count is only arithmetic on the writer's position until then.
  detail::Log* const log = log_;
  if (log == nullptr) return refusal();
  if (max_count == 0) return Status(Errc::invalid_argument, "claim_values_up_to max_count must be at least 1, not 0");
  std::size_t count = std::min<std::size_t>(max_count, UINT32_MAX);
  if (value_bytes != 0) {
    const std::size_t fit = (log->segment_bytes() - detail::frame_header_bytes) / value_bytes;
    // Not one value fits: claim_frame refuses a single one, naming both sizes.
    count = fit == 0 ? 1 : log->pair_filling_count(value_bytes, std::min(count, fit));
  }
  return claim_frame(value_bytes, 0, count, wait, true);
}

Result<Claim> Producer::claim_frame(std::size_t value_bytes, std::size_t key_bytes, std::size_t count, bool wait,
                                    bool batch) noexcept {
  detail::Log* const log = log_;
  if (log == nullptr || log->writer().open_claim != nullptr || log->refusing()) return refusal();
  if (count == 0 || count > UINT32_MAX) {
    return Status(Errc::invalid_argument,
                  "claim_values count " + std::to_string(count) + " must be between 1 and 4294967295");
  }
  const bool packed = key_bytes == 0;
  std::size_t body = 0;
  std::size_t key_at = 0;
  std::size_t value_at = 0;
  constexpr std::size_t too_large = SIZE_MAX / 2; // body: no segment holds it (and a sum would wrap)
  if (packed) {
    body = count * value_bytes;
    if (value_bytes != 0 && body / value_bytes != count) body = too_large;
    value_at = detail::frame_header_bytes;
  } else if (key_bytes > log->segment_bytes() || value_bytes > log->segment_bytes()) {
    body = too_large; // the sums below could wrap past SIZE_MAX to a few bytes
  } else {
    // General form, one record, no headers; timestamp delta 0.
    const std::size_t rest =
        1 + detail::varint_size(key_bytes) + key_bytes + detail::varint_size(value_bytes) + value_bytes + 1;
    body = detail::varint_size(rest) + rest;
    key_at = detail::frame_header_bytes + detail::varint_size(rest) + 1 + detail::varint_size(key_bytes);
    value_at = key_at + key_bytes + detail::varint_size(value_bytes);
  }
  const std::size_t length = detail::frame_header_bytes + body;
  if (length > log->segment_bytes() || body > SIZE_MAX / 4) {
    // A body past SIZE_MAX / 4 (the packed product too) may have wrapped `length`: never print that.
    const std::string size = body > SIZE_MAX / 4 ? "more than " + std::to_string(SIZE_MAX / 4) : std::to_string(length);
    return Status(Errc::record_too_large,
                  "claim of " + size + " bytes (" + std::to_string(count) + " x " + std::to_string(value_bytes) +
                      " B values, key " + std::to_string(key_bytes) + " B) does not fit a segment of topic '" +
                      std::string(log->name()) + "' (" + std::to_string(log->segment_bytes()) + " bytes)");
  }
  std::size_t frame_bytes = detail::align_up(length, detail::frame_alignment);
  Errc err = Errc::ok;
  std::byte* const p =
      batch ? log->reserve_batch(length, wait, err, frame_bytes) : log->reserve(frame_bytes, wait, err);
  if (p == nullptr) return failure(err);
  if (!packed) {
    std::byte* q = p + detail::frame_header_bytes;
    const std::size_t rest_bytes =
        1 + detail::varint_size(key_bytes) + key_bytes + detail::varint_size(value_bytes) + value_bytes + 1;
    q = detail::put_varint(q, rest_bytes);
    q = detail::put_varint(q, 0); // timestamp delta
    q = detail::put_varint(q, key_bytes);
    q += key_bytes;
    q = detail::put_varint(q, value_bytes);
    q += value_bytes;
    detail::put_varint(q, 0); // no headers
  }
  detail::WriterState& w = log->writer();
  w.claim_frame_bytes = frame_bytes;
  w.cleared = 0; // the claim is filled in place, maybe over a word append_direct zeroed ahead
  Claim c;
  c.log_ = log;
  w.open_claim = &c; // follows the claim through its moves
  c.wall_clock_ = wall_clock_;
  c.frame_ = p;
  c.length_ = static_cast<std::uint32_t>(length);
  c.count_ = static_cast<std::uint32_t>(count);
  c.flags_ =
      static_cast<std::uint8_t>((packed ? detail::frame_flags::packed : 0) | (batch ? log->batch_flags(length) : 0));
  c.key_ = std::span<std::byte>(p + key_at, packed ? 0 : key_bytes);
  c.value_ = std::span<std::byte>(p + value_at, packed ? body : value_bytes);
  return c;
}

Claim::Claim(Claim&& other) noexcept
    : log_(other.log_),
      wall_clock_(other.wall_clock_),
      frame_(other.frame_),
      length_(other.length_),
      count_(other.count_),
      flags_(other.flags_),
      timestamp_(other.timestamp_),
      key_(other.key_),
      value_(other.value_) {
  other.log_ = nullptr;
  if (log_ != nullptr && log_->writer().open_claim == &other) log_->writer().open_claim = this;
}

Claim& Claim::operator=(Claim&& other) noexcept {
  if (this != &other) {
    abort();
    log_ = other.log_;
    wall_clock_ = other.wall_clock_;
    frame_ = other.frame_;
    length_ = other.length_;
    count_ = other.count_;
    flags_ = other.flags_;
    timestamp_ = other.timestamp_;
    key_ = other.key_;
    value_ = other.value_;
    other.log_ = nullptr;
    if (log_ != nullptr && log_->writer().open_claim == &other) log_->writer().open_claim = this;
  }
  return *this;
}

Result<std::uint64_t> Claim::commit() noexcept {
  if (log_ == nullptr) {
    return Status(Errc::no_claim, "claim is not open (committed, aborted, or its producer was closed)");
  }
  detail::Log* const log = log_;
  log_ = nullptr;
  if (log->refusing()) {
    log->writer().open_claim = nullptr;
    if (!log->closed()) return log->roll_error();
    return Status(Errc::closed, "bus is closed (topic '" + std::string(log->name()) + "')");
  }
  detail::WriterState& w = log->writer();
  const std::uint64_t offset = w.next_offset;
  const std::int64_t ts = timestamp_ != timestamp_now ? timestamp_ : (wall_clock_ ? w.clock.now() : 0);
  const std::uint64_t word0 = detail::write_header(frame_, length_, flags_, count_, offset, ts);
  detail::zero_padding(frame_, length_);
  w.open_claim = nullptr;
  log->advance(w.claim_frame_bytes, count_, word0);
  log->publish();
  if (RINGBUS_UNLIKELY(log->needs_sync())) {
    if (Status st = log->sync_published(); !st.ok()) return st;
  }
  return offset;
}

void Claim::abort() noexcept {
  if (log_ == nullptr) return;
  if (log_->writer().open_claim == this) log_->writer().open_claim = nullptr;
  log_ = nullptr;
}

} // namespace ringbus
