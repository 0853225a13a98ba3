#include "detail/writer_boot.hpp"

#include <array>
#include <cstddef>
#include <span>
#include <string>

#include "platform/platform.hpp"

namespace ringbus::detail {

namespace {

constexpr std::string_view writer_boot_temp_file = "writer.boot.tmp";

// The id in <dir>/writer.boot, or "" when there is none to read.
std::string recorded_boot(const platform::FileDescriptor& bus_dir) {
  Result<platform::FileDescriptor> f = platform::open_file_at(bus_dir, writer_boot_file, platform::Access::read_only);
  if (!f.ok()) return {};
  std::array<char, 128> text{};
  Result<std::size_t> got = platform::read_at(*f, 0, std::as_writable_bytes(std::span(text)));
  if (!got.ok() || *got == text.size()) return {}; // unreadable, or not an id
  return std::string(text.data(), *got);
}

// This boot's id and which directory bus_dir is ("<boot id> <st_dev>:<st_ino>"),
// or "" when the system gives no boot id or the directory cannot be stat'ed.
std::string this_boot(const platform::FileDescriptor& bus_dir) {
  const std::string id = platform::boot_id();
  if (id.empty()) return {};
  Result<platform::FileInfo> info = platform::file_info(bus_dir);
  if (!info.ok()) return {};
  return id + " " + std::to_string(info->device) + ":" + std::to_string(info->inode);
}

} // namespace

bool same_boot_as_last_writer(const platform::FileDescriptor& bus_dir) noexcept {
  try {
    const std::string now = this_boot(bus_dir);
    return !now.empty() && recorded_boot(bus_dir) == now;
  } catch (const std::bad_alloc&) {
    return false; // check everything
  }
}

Status record_writer_boot(const platform::FileDescriptor& bus_dir) {
  const std::string now = this_boot(bus_dir);
  if (now.empty() || recorded_boot(bus_dir) == now) return {};
  (void)platform::remove_file_at(bus_dir, writer_boot_temp_file); // a crash's leftover
  Result<platform::FileDescriptor> f = platform::create_file_at(bus_dir, writer_boot_temp_file);
  if (!f.ok()) return f.status();
  if (Status st = platform::write_at(*f, 0, std::as_bytes(std::span(now.data(), now.size()))); !st.ok()) return st;
  if (Status st = platform::sync_file_data(*f); !st.ok()) return st;
  if (Status st = platform::rename_at(bus_dir, writer_boot_temp_file, writer_boot_file); !st.ok()) return st;
  return platform::sync_directory(bus_dir);
}

} // namespace ringbus::detail
