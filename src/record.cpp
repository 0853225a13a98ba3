#include "ringbus/record.hpp"

#include "ringbus/detail/frame.hpp"
#include "ringbus/detail/log.hpp"

namespace ringbus {

// Decodes the next header, never reading past the record's end; a malformed
// header ends the iteration.
void HeadersView::iterator::load() noexcept {
  if (left_ == 0 || p_ == nullptr) return;
  std::uint64_t n = 0;
  const std::byte* p = detail::get_varint(p_, end_, n);
  if (p == nullptr || n > static_cast<std::uint64_t>(end_ - p)) {
    left_ = 0;
    return;
  }
  current_.name = ByteView(p, static_cast<std::size_t>(n));
  p += n;
  p = detail::get_varint(p, end_, n);
  if (p == nullptr || n > static_cast<std::uint64_t>(end_ - p)) {
    left_ = 0;
    return;
  }
  current_.value = ByteView(p, static_cast<std::size_t>(n));
  p_ = p + n;
}

std::optional<ByteView> HeadersView::find(std::string_view name) const noexcept {
  for (Header h : *this) {
    if (h.name.str() == name) return h.value;
  }
  return std::nullopt;
}

std::int64_t wall_clock_ns() noexcept { return detail::wall_clock_ns(); }

} // namespace ringbus
