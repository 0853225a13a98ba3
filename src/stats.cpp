#include "ringbus/stats.hpp"

namespace ringbus {

AppendRate append_rate(const TopicStats& earlier, const TopicStats& later) noexcept {
  AppendRate r;
  const std::chrono::duration<double> span = later.sampled_at - earlier.sampled_at;
  if (span.count() <= 0 || later.records_appended < earlier.records_appended ||
      later.bytes_appended < earlier.bytes_appended) {
    return r; // no time between them, out of order, or from two different writers
  }
  r.seconds = span.count();
  r.records_per_second = static_cast<double>(later.records_appended - earlier.records_appended) / r.seconds;
  r.bytes_per_second = static_cast<double>(later.bytes_appended - earlier.bytes_appended) / r.seconds;
  return r;
}

} // namespace ringbus
