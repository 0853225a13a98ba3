#include "ringbus/options.hpp"

#include <string>

#include "ringbus/detail/config.hpp"

namespace ringbus {

namespace {
Status bad(std::string message) { return Status(Errc::invalid_argument, std::move(message)); }
} // namespace

Status TopicOptions::validate() const {
  if (!detail::is_power_of_two(segment_bytes) || segment_bytes < limits::min_segment_bytes ||
      segment_bytes > limits::max_segment_bytes) {
    return bad("segment_bytes " + std::to_string(segment_bytes) + " must be a power of two between " +
               std::to_string(limits::min_segment_bytes) + " and " + std::to_string(limits::max_segment_bytes));
  }
  if (!detail::is_power_of_two(segment_count) || segment_count < limits::min_segment_count) {
    return bad("segment_count " + std::to_string(segment_count) + " must be a power of two, at least " +
               std::to_string(limits::min_segment_count));
  }
  if (segment_count > limits::max_capacity_bytes / segment_bytes) {
    return bad("ring capacity segment_bytes * segment_count = " + std::to_string(segment_bytes) + " * " +
               std::to_string(segment_count) + " exceeds " + std::to_string(limits::max_capacity_bytes) + " bytes");
  }
  if (max_consumers == 0 || max_consumers > limits::max_consumers) {
    return bad("max_consumers " + std::to_string(max_consumers) + " must be between 1 and " +
               std::to_string(limits::max_consumers));
  }
  if (static_cast<unsigned>(overflow) > static_cast<unsigned>(OverflowPolicy::overwrite)) {
    return bad("overflow policy " + std::to_string(static_cast<unsigned>(overflow)) + " is not block or overwrite");
  }
  if (static_cast<unsigned>(wait) > static_cast<unsigned>(WaitStrategy::blocking)) {
    return bad("wait strategy " + std::to_string(static_cast<unsigned>(wait)) + " is not one of the four");
  }
  if (line_aligned_appends && overflow == OverflowPolicy::overwrite) {
    return bad(
        "line_aligned_appends needs overflow policy block (an overwrite topic's readers copy and validate "
        "frames in the 8-byte layout)");
  }
  if (static_cast<unsigned>(storage) > static_cast<unsigned>(Storage::persistent)) {
    return bad("storage " + std::to_string(static_cast<unsigned>(storage)) +
               " is not bus_default, memory or persistent");
  }
  if (static_cast<unsigned>(durability) > static_cast<unsigned>(Durability::sync)) {
    return bad("durability " + std::to_string(static_cast<unsigned>(durability)) + " is not none, interval or sync");
  }
  if (durability == Durability::interval && flush_interval.count() <= 0 && flush_bytes == 0) {
    return bad("durability interval needs flush_interval > 0 ms or flush_bytes > 0 (both are 0)");
  }
  if (Status st = validate_interval("flush_interval", flush_interval); !st.ok()) return st;
  if (retention.max_age.count() < 0) {
    return bad("retention.max_age " + std::to_string(retention.max_age.count()) + " ns is negative");
  }
  if (retention.max_segments == 1) {
    return bad("retention.max_segments 1 must be 0 (no limit) or at least 2 (the open segment and the one before)");
  }
  return {};
}

namespace {
// kind: "topic", "consumer" or "group".
Status validate_name(std::string_view kind, std::string_view name, std::size_t max_bytes) {
  const std::string what(kind);
  if (name.empty()) return bad(what + " name is empty (1 to " + std::to_string(max_bytes) + " bytes)");
  if (name.size() > max_bytes) {
    return bad(what + " name of " + std::to_string(name.size()) + " bytes exceeds the limit of " +
               std::to_string(max_bytes) + " bytes");
  }
  if (name.find('\0') != std::string_view::npos) return bad(what + " name contains a NUL byte");
  if (name.find('/') != std::string_view::npos) {
    return bad(what + " name '" + std::string(name) + "' contains '/' (names are single path components)");
  }
  if (name == "." || name.find("..") != std::string_view::npos) {
    return bad(what + " name '" + std::string(name) + "' contains '..' or is '.'");
  }
  return {};
}
} // namespace

Status validate_topic_name(std::string_view name) { return validate_name("topic", name, limits::max_topic_name_bytes); }
Status validate_consumer_name(std::string_view name) {
  return validate_name("consumer", name, limits::max_consumer_name_bytes);
}
Status validate_group_name(std::string_view name) { return validate_name("group", name, limits::max_group_name_bytes); }

Status validate_interval(std::string_view name, std::chrono::milliseconds interval) {
  const std::string what = std::string(name) + " " + std::to_string(interval.count()) + " ms";
  if (interval.count() < 0) return bad(what + " is negative");
  if (interval > limits::max_interval) {
    return bad(what + " exceeds the limit of " + std::to_string(limits::max_interval.count()) + " ms (366 days)");
  }
  return {};
}

Status GroupOptions::validate() const {
  if (max_claim_records == 0) return bad("max_claim_records 0 must be at least 1");
  if (Status st = validate_interval("auto_commit_interval", auto_commit_interval); !st.ok()) return st;
  if (static_cast<unsigned>(start) > static_cast<unsigned>(StartPosition::latest)) {
    return bad("start position " + std::to_string(static_cast<unsigned>(start)) + " is not earliest or latest");
  }
  if (static_cast<unsigned>(wait) > static_cast<unsigned>(WaitStrategy::blocking)) {
    return bad("wait strategy " + std::to_string(static_cast<unsigned>(wait)) + " is not one of the four");
  }
  return {};
}

std::string_view to_string(OverflowPolicy p) noexcept {
  return p == OverflowPolicy::block ? "block" : p == OverflowPolicy::overwrite ? "overwrite" : "unknown";
}

std::string_view to_string(Durability d) noexcept {
  switch (d) {
    case Durability::none: return "none";
    case Durability::interval: return "interval";
    case Durability::sync: return "sync";
  }
  return "unknown";
}

std::string_view to_string(WaitStrategy w) noexcept {
  switch (w) {
    case WaitStrategy::busy_spin: return "busy_spin";
    case WaitStrategy::yield: return "yield";
    case WaitStrategy::backoff: return "backoff";
    case WaitStrategy::blocking: return "blocking";
  }
  return "unknown";
}

} // namespace ringbus
