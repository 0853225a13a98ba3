// Where the persistent rows (persist_append, replay, recover) put their bus
// directories: a fresh directory per run under persist_root (--persist_dir,
// /tmp by default: a real disk here; /dev/shm would be tmpfs), removed with
// everything in it when the run ends.
#pragma once

#include <stdlib.h>
#include <sys/vfs.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace ringbus::bench {

// Set once in main, before any run.
inline std::string persist_root = "/tmp";

// A directory made with mkdtemp under persist_root; removed (recursively) on destruction.
class TempDirectory {
 public:
  explicit TempDirectory(std::string_view purpose) {
    std::string pattern = persist_root + "/ringbus-bench-" + std::string(purpose) + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "cannot make a directory like " + pattern);
    }
    path_ = std::move(pattern);
  }
  TempDirectory(TempDirectory&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  TempDirectory& operator=(TempDirectory&&) = delete;
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;
  ~TempDirectory() {
    if (path_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// The file system a path is on, by statfs's f_type: "ext4", "tmpfs", ... or its magic number.
inline std::string filesystem_name(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return "unknown (statfs failed)";
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0xEF53UL: return "ext4"; // also ext2/ext3: one magic
    case 0x01021994UL: return "tmpfs (memory, not a disk)";
    case 0x58465342UL: return "xfs";
    case 0x9123683EUL: return "btrfs";
    case 0x794C7630UL: return "overlayfs";
    default: break;
  }
  char text[32];
  std::snprintf(text, sizeof text, "f_type 0x%lx", static_cast<unsigned long>(fs.f_type));
  return text;
}

} // namespace ringbus::bench
