#include "platform/files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <string>
#include <utility>

namespace ringbus::platform {

namespace {

// --- fault injection ------------------------------------------------------------

struct Fault {
  std::atomic<int> remaining{0};
  std::atomic<int> error_number{0};
};
Fault preallocate_fault;
Fault sync_fault;
Fault open_fault;

// Returns the injected errno for this call, or 0 when the hook is not armed.
int take_fault(Fault& fault) noexcept {
  // relaxed throughout: a test arms the hook before the call it targets, on the
  // same thread or with its own synchronization; the counter publishes nothing.
  int left = fault.remaining.load(std::memory_order_relaxed);
  while (left > 0) {
    if (fault.remaining.compare_exchange_weak(left, left - 1, std::memory_order_relaxed)) {
      return fault.error_number.load(std::memory_order_relaxed);
    }
  }
  return 0;
}

void arm(Fault& fault, int count, int error_number) noexcept {
  fault.error_number.store(error_number, std::memory_order_relaxed); // see take_fault
  fault.remaining.store(count, std::memory_order_relaxed);
}

// The armed crash point (testing::kill_at_call); remaining 0: disarmed.
struct CrashHook {
  std::atomic<int> remaining{0};
  std::atomic<testing::CrashCall> call{testing::CrashCall::write};
  std::atomic<testing::CrashPoint> point{testing::CrashPoint::before};
};
CrashHook crash_hook;

// True when this call of `call` is the one to die in (counted once per call, at `before`).
bool crash_due(testing::CrashCall call) noexcept {
  // relaxed throughout, like take_fault: armed by the thread (of a test's child
  // process) that then makes the call; the counter publishes nothing.
  int left = crash_hook.remaining.load(std::memory_order_relaxed);
  if (left == 0 || crash_hook.call.load(std::memory_order_relaxed) != call) return false;
  while (left > 0) {
    if (crash_hook.remaining.compare_exchange_weak(left, left - 1, std::memory_order_relaxed)) return left == 1;
  }
  return false;
}

// Dies now when `due` and the armed point is `point`.
void crash_if(bool due, testing::CrashPoint point) noexcept {
  if (due && crash_hook.point.load(std::memory_order_relaxed) == point) ::raise(SIGKILL);
}

// --- errors ---------------------------------------------------------------------

Errc code_for(int error_number) noexcept {
  return (error_number == ENOSPC || error_number == EDQUOT) ? Errc::no_space : Errc::system_error;
}

Status os_error(int error_number, std::string_view what, std::string_view path) {
  std::string message(what);
  message += " ";
  message += path;
  message += " failed: ";
  message += std::strerror(error_number);
  return Status(code_for(error_number), std::move(message));
}

std::string join(const FileDescriptor& dir, std::string_view name) {
  std::string path = dir.path();
  if (path.empty() || path.back() != '/') path += '/';
  path += name;
  return path;
}

std::string_view kind_of(mode_t mode) noexcept {
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISREG(mode)) return "a regular file";
  return "not a regular file";
}

// Refuses what open_file_at must never open or write through.
Status check_regular_single_link(const struct stat& st, const std::string& path) {
  if (!S_ISREG(st.st_mode)) {
    return Status(Errc::system_error,
                  "refusing " + path + ": it is " + std::string(kind_of(st.st_mode)) + ", not a regular file");
  }
  if (st.st_nlink != 1) {
    return Status(Errc::system_error, "refusing " + path + ": it has " + std::to_string(st.st_nlink) +
                                          " hard links, a ringbus file has exactly 1");
  }
  return {};
}

// openat O_CREAT|O_EXCL; on failure returns -1 and sets error_number.
int create_exclusive(const FileDescriptor& dir, std::string_view name, int& error_number) noexcept {
  const std::string component(name);
  const int fd = ::openat(dir.get(), component.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  error_number = fd < 0 ? errno : 0;
  return fd;
}

} // namespace

// --- FileDescriptor -----------------------------------------------------------------

FileDescriptor::FileDescriptor(FileDescriptor&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

FileDescriptor::~FileDescriptor() { reset(); }

void FileDescriptor::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

// --- names and directories ------------------------------------------------------------

Status check_component(std::string_view name) {
  if (name.empty() || name.size() > 255) {
    return Status(Errc::invalid_argument,
                  "file name of " + std::to_string(name.size()) + " bytes: a name is 1..255 bytes");
  }
  if (name == "." || name == ".." || name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    std::string shown;
    for (char c : name) shown += c == '\0' ? std::string("\\0") : std::string(1, c);
    return Status(Errc::invalid_argument,
                  "file name '" + shown + "' is not one path component (no '/', no NUL, not '.' or '..')");
  }
  return {};
}

std::size_t system_page_size() noexcept {
  const long page = ::sysconf(_SC_PAGESIZE);
  return page > 0 ? static_cast<std::size_t>(page) : 4096;
}

Result<FileDescriptor> open_directory(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return os_error(errno, "open of directory", path);
  return FileDescriptor(fd, path);
}

Status make_directory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) return {};
  return os_error(errno, "mkdir", path);
}

Result<FileDescriptor> open_directory_at(const FileDescriptor& dir, std::string_view name) {
  if (Status s = check_component(name); !s.ok()) return s;
  const std::string path = join(dir, name);
  const std::string component(name);
  const int fd = ::openat(dir.get(), component.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return os_error(errno, "open of directory", path);
  return FileDescriptor(fd, path);
}

Status make_directory_at(const FileDescriptor& dir, std::string_view name) {
  if (Status s = check_component(name); !s.ok()) return s;
  const std::string component(name);
  if (::mkdirat(dir.get(), component.c_str(), 0700) != 0) return os_error(errno, "mkdir of", join(dir, name));
  return {};
}

// --- files ----------------------------------------------------------------------------

Result<FileDescriptor> create_file_at(const FileDescriptor& dir, std::string_view name) {
  if (Status s = check_component(name); !s.ok()) return s;
  int error_number = 0;
  const int fd = create_exclusive(dir, name, error_number);
  if (fd < 0) return os_error(error_number, "exclusive create of", join(dir, name));
  return FileDescriptor(fd, join(dir, name));
}

Result<FileDescriptor> open_file_at(const FileDescriptor& dir, std::string_view name, Access access) {
  if (Status s = check_component(name); !s.ok()) return s;
  const std::string path = join(dir, name);
  if (const int injected = take_fault(open_fault); injected != 0) return os_error(injected, "stat of", path);
  const std::string component(name);
  // Look before opening: a FIFO or device is refused without being opened at all.
  struct stat before {};
  if (::fstatat(dir.get(), component.c_str(), &before, AT_SYMLINK_NOFOLLOW) != 0) {
    return os_error(errno, "stat of", path);
  }
  if (Status s = check_regular_single_link(before, path); !s.ok()) return s;
  // O_NONBLOCK: should a FIFO be swapped in after the look, opening it does not block.
  const int flags = (access == Access::read_write ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  FileDescriptor file(::openat(dir.get(), component.c_str(), flags), path);
  if (!file.valid()) return os_error(errno, "open of", path);
  // Look again at what was opened: the name may have been replaced meanwhile.
  struct stat after {};
  if (::fstat(file.get(), &after) != 0) return os_error(errno, "fstat of", path);
  if (Status s = check_regular_single_link(after, path); !s.ok()) return s;
  if (after.st_dev != before.st_dev || after.st_ino != before.st_ino) {
    return Status(Errc::system_error, "refusing " + path + ": it was replaced while being opened");
  }
  const int status_flags = ::fcntl(file.get(), F_GETFL);
  if (status_flags < 0 || ::fcntl(file.get(), F_SETFL, status_flags & ~O_NONBLOCK) != 0) {
    return os_error(errno, "fcntl(F_SETFL) of", path);
  }
  return file;
}

Result<bool> entry_exists_at(const FileDescriptor& dir, std::string_view name) {
  if (Status s = check_component(name); !s.ok()) return s;
  const std::string component(name);
  struct stat st {};
  if (::fstatat(dir.get(), component.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
  if (errno == ENOENT) return false;
  return os_error(errno, "stat of", join(dir, name));
}

Result<FileInfo> file_info(const FileDescriptor& file) {
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) return os_error(errno, "fstat of", file.path());
  FileInfo info;
  info.size = static_cast<std::uint64_t>(st.st_size);
  info.mode = static_cast<std::uint32_t>(st.st_mode & 07777);
  info.allocated = static_cast<std::uint64_t>(st.st_blocks) * 512;
  info.device = static_cast<std::uint64_t>(st.st_dev);
  info.inode = static_cast<std::uint64_t>(st.st_ino);
  return info;
}

Status preallocate(const FileDescriptor& file, std::uint64_t bytes) {
  int error_number = take_fault(preallocate_fault);
  if (error_number == 0) {
    // posix_fallocate returns the error number; it does not set errno.
    error_number = ::posix_fallocate(file.get(), 0, static_cast<off_t>(bytes));
  }
  if (error_number != 0) {
    return os_error(error_number, "preallocating " + std::to_string(bytes) + " bytes of", file.path());
  }
  return {};
}

Status write_at(const FileDescriptor& file, std::uint64_t offset, std::span<const std::byte> data) {
  const bool crash = crash_due(testing::CrashCall::write);
  crash_if(crash, testing::CrashPoint::before);
  if (crash && crash_hook.point.load(std::memory_order_relaxed) == testing::CrashPoint::torn) {
    (void)::pwrite(file.get(), data.data(), data.size() / 2, static_cast<off_t>(offset));
    ::raise(SIGKILL);
  }
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pwrite(file.get(), data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error(errno, "write of " + std::to_string(data.size()) + " bytes at " + std::to_string(offset) + " to",
                      file.path());
    }
    if (n == 0) return os_error(EIO, "write (no progress) to", file.path());
    done += static_cast<std::size_t>(n);
  }
  crash_if(crash, testing::CrashPoint::after);
  return {};
}

Result<std::size_t> read_at(const FileDescriptor& file, std::uint64_t offset, std::span<std::byte> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(file.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error(errno, "read at " + std::to_string(offset) + " of", file.path());
    }
    if (n == 0) break; // end of file
    done += static_cast<std::size_t>(n);
  }
  return done;
}

Status sync_file_data(const FileDescriptor& file) {
  const bool crash = crash_due(testing::CrashCall::sync);
  crash_if(crash, testing::CrashPoint::before);
  int error_number = take_fault(sync_fault);
  if (error_number == 0 && ::fdatasync(file.get()) != 0) error_number = errno;
  if (error_number != 0) return os_error(error_number, "fdatasync of", file.path());
  crash_if(crash, testing::CrashPoint::after);
  return {};
}

Status sync_directory(const FileDescriptor& dir) {
  const bool crash = crash_due(testing::CrashCall::sync);
  crash_if(crash, testing::CrashPoint::before);
  int error_number = take_fault(sync_fault);
  if (error_number == 0 && ::fsync(dir.get()) != 0) error_number = errno;
  if (error_number != 0) return os_error(error_number, "fsync of directory", dir.path());
  crash_if(crash, testing::CrashPoint::after);
  return {};
}

Status remove_file_at(const FileDescriptor& dir, std::string_view name) {
  if (Status s = check_component(name); !s.ok()) return s;
  const bool crash = crash_due(testing::CrashCall::remove);
  crash_if(crash, testing::CrashPoint::before);
  const std::string component(name);
  if (::unlinkat(dir.get(), component.c_str(), 0) != 0) return os_error(errno, "unlink of", join(dir, name));
  crash_if(crash, testing::CrashPoint::after);
  return {};
}

Status remove_directory_at(const FileDescriptor& dir, std::string_view name) {
  if (Status s = check_component(name); !s.ok()) return s;
  const std::string component(name);
  if (::unlinkat(dir.get(), component.c_str(), AT_REMOVEDIR) != 0) {
    return os_error(errno, "rmdir of", join(dir, name));
  }
  return {};
}

Status rename_at(const FileDescriptor& dir, std::string_view from, std::string_view to) {
  if (Status s = check_component(from); !s.ok()) return s;
  if (Status s = check_component(to); !s.ok()) return s;
  const bool crash = crash_due(testing::CrashCall::rename);
  crash_if(crash, testing::CrashPoint::before);
  const std::string from_component(from);
  const std::string to_component(to);
  if (::renameat(dir.get(), from_component.c_str(), dir.get(), to_component.c_str()) != 0) {
    return os_error(errno, "rename to " + join(dir, to) + " of", join(dir, from));
  }
  crash_if(crash, testing::CrashPoint::after);
  return {};
}

Result<std::vector<DirectoryEntry>> list_directory(const FileDescriptor& dir) {
  // fdopendir takes over the descriptor it is given, so it gets its own.
  const int fd = ::openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return os_error(errno, "open for listing of directory", dir.path());
  DIR* stream = ::fdopendir(fd);
  if (stream == nullptr) {
    const int e = errno;
    ::close(fd);
    return os_error(e, "fdopendir of", dir.path());
  }
  std::vector<DirectoryEntry> entries;
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(stream);
    if (entry == nullptr) break;
    const std::string_view name(entry->d_name);
    if (name == "." || name == "..") continue;
    DirectoryEntry out;
    out.name = std::string(name);
    unsigned char type = entry->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st {};
      if (::fstatat(dir.get(), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        type = S_ISREG(st.st_mode) ? DT_REG : S_ISDIR(st.st_mode) ? DT_DIR : DT_UNKNOWN;
      }
    }
    out.type = type == DT_REG ? EntryType::regular : type == DT_DIR ? EntryType::directory : EntryType::other;
    entries.push_back(std::move(out));
  }
  const int e = errno;
  ::closedir(stream);
  if (e != 0) return os_error(e, "readdir of", dir.path());
  std::sort(entries.begin(), entries.end(),
            [](const DirectoryEntry& a, const DirectoryEntry& b) { return a.name < b.name; });
  return entries;
}

// --- mappings ---------------------------------------------------------------------------

FileMapping::FileMapping(FileMapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)), owned_(other.owned_) {}

FileMapping& FileMapping::operator=(FileMapping&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    owned_ = other.owned_;
  }
  return *this;
}

FileMapping::~FileMapping() { release(); }

void FileMapping::release() noexcept {
  if (data_ == nullptr) return;
  if (owned_) {
    ::munmap(data_, size_);
  } else {
    // Inside a caller's reservation: put the reservation back, so that the
    // address range stays ours and the file's pages are released.
    ::mmap(data_, size_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  }
  data_ = nullptr;
  size_ = 0;
}

namespace {

Status check_map_range(const FileDescriptor& file, std::uint64_t offset, std::size_t bytes) {
  if (bytes == 0 || offset % system_page_size() != 0) {
    return Status(Errc::invalid_argument, "mapping " + std::to_string(bytes) + " bytes at offset " +
                                              std::to_string(offset) + " of " + file.path() +
                                              ": the size must be > 0 and the offset a multiple of the page size");
  }
  Result<FileInfo> info = file_info(file);
  if (!info.ok()) return info.status();
  if (bytes > info->size || offset > info->size - bytes) { // not offset + bytes: it may wrap past 2^64
    // Touching a mapped page past the end of the file raises SIGBUS: refuse now.
    return Status(Errc::invalid_argument, "mapping [" + std::to_string(offset) + ", " + std::to_string(offset + bytes) +
                                              ") of " + file.path() + ": the file is only " +
                                              std::to_string(info->size) + " bytes");
  }
  return {};
}

int protection(Access access) noexcept { return access == Access::read_write ? PROT_READ | PROT_WRITE : PROT_READ; }

} // namespace

Result<FileMapping> map_file(const FileDescriptor& file, std::uint64_t offset, std::size_t bytes, Access access) {
  if (Status s = check_map_range(file, offset, bytes); !s.ok()) return s;
  void* p = ::mmap(nullptr, bytes, protection(access), MAP_SHARED, file.get(), static_cast<off_t>(offset));
  if (p == MAP_FAILED) return os_error(errno, "mmap of " + std::to_string(bytes) + " bytes of", file.path());
  return FileMapping(static_cast<std::byte*>(p), bytes, true);
}

Result<void*> reserve_address_space(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    return Status(e == ENOMEM ? Errc::out_of_memory : Errc::system_error,
                  "reserving " + std::to_string(bytes) + " bytes of address space failed: " + std::strerror(e));
  }
  return p;
}

Result<void*> reserve_readable_zeros(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    return Status(e == ENOMEM ? Errc::out_of_memory : Errc::system_error,
                  "reserving " + std::to_string(bytes) + " bytes of address space failed: " + std::strerror(e));
  }
  return p;
}

Status map_zeros_into(void* address, std::size_t bytes) {
  void* p = ::mmap(address, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    return Status(Errc::system_error,
                  "mapping " + std::to_string(bytes) + " bytes of zero pages failed: " + std::strerror(e));
  }
  return {};
}

Status zero_file_range(const FileDescriptor& file, std::uint64_t offset, std::uint64_t bytes) {
  if (bytes == 0) return {};
  const auto off = static_cast<off_t>(offset);
  const auto len = static_cast<off_t>(bytes);
  if (::fallocate(file.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len) == 0) return {};
  if (errno == ENOSPC || errno == EDQUOT) return os_error(errno, "zeroing a range of", file.path());
  if (::fallocate(file.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0) {
    const int rc = ::posix_fallocate(file.get(), off, len);
    if (rc == 0) return {};
    return os_error(rc, "allocating a zeroed range of", file.path());
  }
  // No fallocate modes here: write the zeros.
  static const std::byte zeros[65536] = {};
  for (std::uint64_t done = 0; done < bytes;) {
    const std::uint64_t n = std::min<std::uint64_t>(sizeof zeros, bytes - done);
    if (Status st = write_at(file, offset + done, std::span<const std::byte>(zeros, n)); !st.ok()) return st;
    done += n;
  }
  return {};
}

Result<FileMapping> map_file_into(void* address, const FileDescriptor& file, std::uint64_t offset, std::size_t bytes,
                                  Access access) {
  if (Status s = check_map_range(file, offset, bytes); !s.ok()) return s;
  void* p = ::mmap(address, bytes, protection(access), MAP_SHARED | MAP_FIXED, file.get(), static_cast<off_t>(offset));
  if (p == MAP_FAILED) return os_error(errno, "mmap (fixed) of " + std::to_string(bytes) + " bytes of", file.path());
  return FileMapping(static_cast<std::byte*>(p), bytes, false);
}

bool prefault_shared(void* address, std::size_t bytes, Access access) noexcept {
#if defined(MADV_POPULATE_WRITE) && defined(MADV_POPULATE_READ)
  if (::madvise(address, bytes, access == Access::read_write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0) {
    return true;
  }
  // EINVAL: a kernel before 5.14 without the advice. Anything else (EFAULT:
  // a page past the file's end, ENOMEM, EHWPOISON) means touching the pages
  // below would raise SIGBUS: report it instead.
  if (errno != EINVAL) return false;
#else
  (void)access;
#endif
  // Older kernels: read one byte per page. Never write: the pages hold data.
  const std::size_t page = system_page_size();
  const auto* p = static_cast<const volatile unsigned char*>(address);
  unsigned char sink = 0;
  for (std::size_t i = 0; i < bytes; i += page) sink = static_cast<unsigned char>(sink ^ p[i]);
  (void)sink;
  return true;
}

Status sync_mapping(void* address, std::size_t bytes, std::string_view what) {
  const std::size_t page = system_page_size();
  const auto start = reinterpret_cast<std::uintptr_t>(address) & ~(std::uintptr_t{page} - 1);
  const std::size_t length = bytes + (reinterpret_cast<std::uintptr_t>(address) - start);
  const bool crash = crash_due(testing::CrashCall::sync);
  crash_if(crash, testing::CrashPoint::before);
  int error_number = take_fault(sync_fault);
  if (error_number == 0 && ::msync(reinterpret_cast<void*>(start), length, MS_SYNC) != 0) error_number = errno;
  if (error_number != 0) return os_error(error_number, "msync of " + std::to_string(bytes) + " bytes of", what);
  crash_if(crash, testing::CrashPoint::after);
  return {};
}

// --- the writer lock ------------------------------------------------------------------

FileLock::FileLock(FileDescriptor file) noexcept : file_(std::move(file)), owner_pid_(::getpid()) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    release();
    file_ = std::move(other.file_);
    owner_pid_ = other.owner_pid_;
  }
  return *this;
}

FileLock::~FileLock() { release(); }

void FileLock::release() noexcept {
  if (!file_.valid()) return;
  // Empty the file while still holding the lock, so no pid is left naming a
  // process that no longer holds it. Closing the last descriptor of the open
  // file description releases the lock. A forked child's copy of this object
  // shares the description with the taker, which still holds the lock: the
  // child only closes its descriptor and leaves the taker's pid in place.
  if (::getpid() == owner_pid_) (void)::ftruncate(file_.get(), 0);
  file_.reset();
}

Result<FileLock> lock_exclusive(const FileDescriptor& dir, std::string_view name) {
  if (Status s = check_component(name); !s.ok()) return s;
  const std::string path = join(dir, name);
  int error_number = 0;
  FileDescriptor file(create_exclusive(dir, name, error_number), path);
  if (!file.valid()) {
    if (error_number != EEXIST) return os_error(error_number, "exclusive create of lock file", path);
    Result<FileDescriptor> existing = open_file_at(dir, name, Access::read_write);
    if (!existing.ok()) return existing.status();
    file = std::move(*existing);
  }
  struct flock request {};
  request.l_type = F_WRLCK;
  request.l_whence = SEEK_SET;
  request.l_start = 0;
  request.l_len = 0; // the whole file
  if (::fcntl(file.get(), F_OFD_SETLK, &request) != 0) {
    const int e = errno;
    if (e != EAGAIN && e != EACCES) return os_error(e, "fcntl(F_OFD_SETLK) of lock file", path);
    // Held: the holder wrote its pid into the file right after locking it.
    char text[32] = {};
    const ssize_t n = ::pread(file.get(), text, sizeof text - 1, 0);
    std::string holder;
    for (ssize_t i = 0; i < n && text[i] >= '0' && text[i] <= '9'; ++i) holder += text[i];
    std::string message = "lock file " + path + " is held by ";
    if (holder.empty()) {
      message += "another writer (its pid is not written yet)";
    } else {
      message += "pid " + holder;
      if (holder == std::to_string(::getpid())) message += " (this process)";
    }
    message += ": a topic has one writer";
    return Status(Errc::producer_exists, std::move(message));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(file.get(), 0) != 0) return os_error(errno, "ftruncate of lock file", path);
  if (Status s = write_at(file, 0, std::as_bytes(std::span<const char>(pid.data(), pid.size()))); !s.ok()) return s;
  return FileLock(std::move(file));
}

Result<std::optional<long>> lock_holder(const FileDescriptor& dir, std::string_view name) {
  Result<bool> exists = entry_exists_at(dir, name);
  if (!exists.ok()) return exists.status();
  if (!*exists) return std::optional<long>();
  Result<FileDescriptor> file = open_file_at(dir, name, Access::read_only);
  if (!file.ok()) return file.status();
  struct flock request {};
  request.l_type = F_WRLCK; // would lock_exclusive's request be granted?
  request.l_whence = SEEK_SET;
  request.l_start = 0;
  request.l_len = 0;
  if (::fcntl(file->get(), F_OFD_GETLK, &request) != 0) return os_error(errno, "fcntl(F_OFD_GETLK) of", file->path());
  if (request.l_type == F_UNLCK) return std::optional<long>();
  // Held: the holder wrote its pid right after locking (l_pid is -1 for OFD locks).
  char text[32] = {};
  const ssize_t n = ::pread(file->get(), text, sizeof text - 1, 0);
  long pid = 0;
  for (ssize_t i = 0; i < n && text[i] >= '0' && text[i] <= '9' && pid < 100'000'000; ++i)
    pid = pid * 10 + (text[i] - '0');
  return std::optional<long>(pid);
}

Result<bool> try_lock_file(const FileDescriptor& file, bool shared) {
  struct flock request {};
  request.l_type = shared ? F_RDLCK : F_WRLCK;
  request.l_whence = SEEK_SET;
  if (::fcntl(file.get(), F_OFD_SETLK, &request) == 0) return true;
  if (errno == EAGAIN || errno == EACCES) return false;
  return os_error(errno, "fcntl(F_OFD_SETLK) of", file.path());
}

void unlock_file(const FileDescriptor& file) noexcept {
  struct flock request {};
  request.l_type = F_UNLCK;
  request.l_whence = SEEK_SET;
  (void)::fcntl(file.get(), F_OFD_SETLK, &request);
}

namespace testing {

void fail_next_preallocations(int count, int error_number) noexcept { arm(preallocate_fault, count, error_number); }
void fail_next_syncs(int count, int error_number) noexcept { arm(sync_fault, count, error_number); }
void fail_next_opens(int count, int error_number) noexcept { arm(open_fault, count, error_number); }

void kill_at_call(CrashCall call, int nth, CrashPoint point) noexcept {
  crash_hook.remaining.store(0, std::memory_order_relaxed); // see crash_due
  crash_hook.call.store(call, std::memory_order_relaxed);
  crash_hook.point.store(point, std::memory_order_relaxed);
  crash_hook.remaining.store(nth, std::memory_order_relaxed);
}

} // namespace testing

} // namespace ringbus::platform
