// File-system calls of persistent topics, one contract per line.
//
// Every path below the directory a bus was opened on is reached relative to a
// directory descriptor, one component at a time, with O_NOFOLLOW|O_CLOEXEC:
// a name is a single path component (no '/', not "." or "..", no NUL), so
// nothing a caller names can escape its directory. Files are created 0600 with
// O_EXCL, directories 0700. An existing file is opened only if it is a regular
// file with one link: a planted symlink, hard link, FIFO or device is refused
// before a byte of its target is read or written.
//
// Every error is a Status whose message names the path and the errno text.
// None of these calls fsyncs a directory by itself: after a create, rename or
// remove that must survive a crash, the caller calls sync_directory.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringbus/status.hpp"

namespace ringbus::platform {

// An owned file or directory descriptor and the path it was opened by (for
// error messages). Closes on destruction; move-only.
class FileDescriptor {
 public:
  FileDescriptor() noexcept = default;
  FileDescriptor(int fd, std::string path) noexcept : fd_(fd), path_(std::move(path)) {}
  FileDescriptor(FileDescriptor&& other) noexcept;
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor();

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  // Closes now (errors of close are ignored: the data calls report theirs).
  void reset() noexcept;
  // Gives up ownership: returns the descriptor, which this no longer closes.
  int release() noexcept { return std::exchange(fd_, -1); }
  // Renames the path used in messages (after rename_at moved the file).
  void set_path(std::string path) { path_ = std::move(path); }

 private:
  int fd_ = -1;
  std::string path_;
};

enum class Access : std::uint8_t { read_only, read_write };

// What fstat says about an open file.
struct FileInfo {
  std::uint64_t size = 0;
  std::uint32_t mode = 0;      // permission bits only (st_mode & 07777)
  std::uint64_t allocated = 0; // bytes the file system allocated for it (st_blocks * 512)
  std::uint64_t device = 0;    // st_dev and st_ino: which file it is
  std::uint64_t inode = 0;
};

// A name that is one path component: 1..255 bytes, no '/', no NUL, not "." or ".."; else invalid_argument.
Status check_component(std::string_view name);

// The system page size (sysconf), e.g. 4096.
std::size_t system_page_size() noexcept;

// Opens the directory at path (O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC): a symlink as the last component is refused.
Result<FileDescriptor> open_directory(const std::string& path);
// Creates the directory at path (mode 0700) unless something is there already (mkdir; EEXIST is fine).
Status make_directory(const std::string& path);
// Opens directory name inside dir; a symlink or non-directory is refused (ELOOP / ENOTDIR in the message).
Result<FileDescriptor> open_directory_at(const FileDescriptor& dir, std::string_view name);
// Creates directory name inside dir with mode 0700 (mkdirat); EEXIST is an error naming the path.
Status make_directory_at(const FileDescriptor& dir, std::string_view name);

// Creates file name inside dir, read-write, mode 0600, O_CREAT|O_EXCL|O_NOFOLLOW: anything already there is refused.
Result<FileDescriptor> create_file_at(const FileDescriptor& dir, std::string_view name);
// Opens existing regular file name inside dir; refuses a symlink, FIFO, device, directory or st_nlink != 1.
Result<FileDescriptor> open_file_at(const FileDescriptor& dir, std::string_view name, Access access);
// Whether anything (of any type, a dangling symlink too) has name inside dir (fstatat AT_SYMLINK_NOFOLLOW).
Result<bool> entry_exists_at(const FileDescriptor& dir, std::string_view name);
// Size and permission bits of an open file (fstat).
Result<FileInfo> file_info(const FileDescriptor& file);

// Allocates [0, bytes) of file on disk (posix_fallocate), growing its size; a full disk is Errc::no_space.
Status preallocate(const FileDescriptor& file, std::uint64_t bytes);
// Writes all of data at offset (pwrite, retried on short writes and EINTR); ENOSPC is Errc::no_space.
Status write_at(const FileDescriptor& file, std::uint64_t offset, std::span<const std::byte> data);
// Reads up to out.size() bytes at offset (pread until EOF or full); returns the bytes read.
Result<std::size_t> read_at(const FileDescriptor& file, std::uint64_t offset, std::span<std::byte> out);
// Flushes the file's data and the metadata needed to read it back (fdatasync); EIO etc. in the message.
Status sync_file_data(const FileDescriptor& file);
// Makes entries created, renamed or removed in dir durable (fsync of the directory).
Status sync_directory(const FileDescriptor& dir);
// Removes file name inside dir (unlinkat; a symlink there is removed, its target untouched).
Status remove_file_at(const FileDescriptor& dir, std::string_view name);
// Removes empty directory name inside dir (unlinkat AT_REMOVEDIR).
Status remove_directory_at(const FileDescriptor& dir, std::string_view name);
// Renames from to to inside dir (renameat), atomically replacing to.
Status rename_at(const FileDescriptor& dir, std::string_view from, std::string_view to);

enum class EntryType : std::uint8_t { regular, directory, other };
struct DirectoryEntry {
  std::string name;
  EntryType type = EntryType::other; // from lstat semantics: a symlink is `other`
};
// Entries of dir except "." and "..", sorted by name.
Result<std::vector<DirectoryEntry>> list_directory(const FileDescriptor& dir);

// An owned shared mapping of part of a file. Unmaps on destruction; move-only.
class FileMapping {
 public:
  FileMapping() noexcept = default;
  FileMapping(std::byte* data, std::size_t size, bool owned) noexcept : data_(data), size_(size), owned_(owned) {}
  FileMapping(FileMapping&& other) noexcept;
  FileMapping& operator=(FileMapping&& other) noexcept;
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;
  ~FileMapping();

  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::span<std::byte> bytes() const noexcept { return {data_, size_}; }
  // Stops owning the range without touching it: whoever holds the reservation
  // (a ring of segment files) replaces or unmaps it.
  void forget() noexcept {
    data_ = nullptr;
    size_ = 0;
  }

 private:
  void release() noexcept;

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  bool owned_ = true; // false: mapped into a caller's reservation, which unmaps it
};

// Maps [offset, offset+bytes) of file MAP_SHARED (writes reach the file); refuses a range past its end (no SIGBUS).
// The size is checked when mapping: a file truncated afterwards (by anyone) still raises SIGBUS on touch.
Result<FileMapping> map_file(const FileDescriptor& file, std::uint64_t offset, std::size_t bytes, Access access);
// Reserves bytes of address space (PROT_NONE, no memory) for map_file_into; unmap with platform::unmap.
Result<void*> reserve_address_space(std::size_t bytes);
// Reserves bytes of address space that read as zeros (PROT_READ anonymous, no
// memory): a reader that strays into a slot with no file reads "nothing here".
Result<void*> reserve_readable_zeros(std::size_t bytes);
// Puts readable zero pages back over [address, address+bytes) (MAP_FIXED), releasing what was mapped there.
Status map_zeros_into(void* address, std::size_t bytes);
// Makes [offset, offset+bytes) of file read as zeros and stay allocated (FALLOC_FL_ZERO_RANGE, else punch a
// hole and allocate it again, else write zeros); ENOSPC is Errc::no_space.
Status zero_file_range(const FileDescriptor& file, std::uint64_t offset, std::uint64_t bytes);
// Maps [offset, offset+bytes) of file MAP_SHARED|MAP_FIXED at address, inside a reservation the caller owns.
Result<FileMapping> map_file_into(void* address, const FileDescriptor& file, std::uint64_t offset, std::size_t bytes,
                                  Access access);
// Faults in every page of a shared mapping now (MADV_POPULATE_WRITE/READ; one read per page only where the
// kernel lacks them); false when a page cannot be faulted in (e.g. the file was truncated under the mapping).
bool prefault_shared(void* address, std::size_t bytes, Access access) noexcept;
// Writes the dirty pages of [address, address+bytes) to the file and waits (msync MS_SYNC); what names it.
Status sync_mapping(void* address, std::size_t bytes, std::string_view what);

// An exclusive, advisory lock on a lock file, held while this object lives.
// It is an OFD lock (fcntl F_OFD_SETLK): owned by the open file description,
// so a second lock through another open of the same file is refused in this
// process too (another thread included). A child made by fork() shares the
// description until it closes it or execs (O_CLOEXEC): the lock stays held
// while either process keeps it open, and only the process that took the lock
// empties the file on release.
class FileLock {
 public:
  FileLock() noexcept = default;
  // Takes over file, already locked by this process.
  explicit FileLock(FileDescriptor file) noexcept;
  FileLock(FileLock&&) noexcept = default;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  [[nodiscard]] bool held() const noexcept { return file_.valid(); }
  [[nodiscard]] const std::string& path() const noexcept { return file_.path(); }
  // Empties the lock file (only in the process that took it) and closes this descriptor of it.
  void release() noexcept;

 private:
  FileDescriptor file_;
  int owner_pid_ = 0; // getpid() of the taker: a forked child's copy must not erase its pid
};

// Takes the exclusive lock on lock file name in dir (created 0600 if absent) and writes this pid into it;
// held elsewhere: Errc::producer_exists, the message naming the path and the holder's pid.
Result<FileLock> lock_exclusive(const FileDescriptor& dir, std::string_view name);

// Who holds the lock lock_exclusive takes on lock file name in dir, asked without taking it (F_OFD_GETLK on a
// read-only open): nullopt when nobody holds it or the file is absent; else the pid written in it (0 when unreadable).
Result<std::optional<long>> lock_holder(const FileDescriptor& dir, std::string_view name);

// A whole-file advisory OFD lock (fcntl F_OFD_SETLK) on an open file, without
// waiting: true when taken (shared: F_RDLCK, else F_WRLCK); false when another
// open file description (this process or another) holds a conflicting one. Held
// until unlock_file or the last close of this description.
Result<bool> try_lock_file(const FileDescriptor& file, bool shared);
// Drops the lock this description holds on its file (none: nothing happens).
void unlock_file(const FileDescriptor& file) noexcept;

// Test-only fault injection (process-wide, thread-safe). Each hook makes the
// next `count` calls fail with error_number without calling the kernel; a count of 0 disarms it.
namespace testing {
// preallocate fails, e.g. fail_next_preallocations(1) for one ENOSPC.
void fail_next_preallocations(int count, int error_number = ENOSPC) noexcept;
// sync_file_data, sync_directory and sync_mapping fail.
void fail_next_syncs(int count, int error_number = EIO) noexcept;
// open_file_at fails (before it looks), e.g. fail_next_opens(1) for one ENOENT.
void fail_next_opens(int count, int error_number = ENOENT) noexcept;

// Crash injection for the recovery tests, armed in a child process made with
// fork(): the nth next call (1 = the very next) of `call` makes this process
// raise SIGKILL at `point`, the way a kill -9 could land there. nth 0 disarms.
enum class CrashCall : std::uint8_t {
  write,  // write_at
  sync,   // sync_file_data, sync_directory, sync_mapping
  rename, // rename_at
  remove, // remove_file_at
};
enum class CrashPoint : std::uint8_t {
  before, // the call has not started
  after,  // the call succeeded
  torn,   // write_at only: the first half of its bytes is written (a page-wise partial write)
};
void kill_at_call(CrashCall call, int nth, CrashPoint point = CrashPoint::before) noexcept;
} // namespace testing

} // namespace ringbus::platform
