// The file-system layer of persistent topics: descriptors, exclusive creates,
// refusal of planted links and FIFOs, preallocation, shared mappings, syncs,
// the writer lock, and full disks (injected, and real on a small tmpfs).
#include "platform/files.hpp"

#include "platform/platform.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using ringbus::Errc;
using ringbus::test::contains;
namespace platform = ringbus::platform;

namespace {

// A fresh directory under the system's temporary directory, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ringbus-files-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string at(const std::string& name) const { return path_ + "/" + name; }
  [[nodiscard]] platform::FileDescriptor open() const {
    auto dir = platform::open_directory(path_);
    REQUIRE(dir.ok());
    return std::move(*dir);
  }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

} // namespace

TEST_SUITE("platform_files") {
  TEST_CASE("created_files_are_0600_and_directories_0700") {
    TempDir tmp;
    const auto dir = tmp.open();
    auto file = platform::create_file_at(dir, "00000000000000000000.seg");
    REQUIRE(file.ok());
    auto info = platform::file_info(*file);
    REQUIRE(info.ok());
    CHECK(info->mode == 0600);
    CHECK(info->size == 0);
    CHECK(file->path() == tmp.at("00000000000000000000.seg"));

    REQUIRE(platform::make_directory_at(dir, "orders").ok());
    struct stat st {};
    REQUIRE(::stat(tmp.at("orders").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    auto sub = platform::open_directory_at(dir, "orders");
    REQUIRE(sub.ok());
    CHECK(platform::sync_directory(dir).ok());
  }

  TEST_CASE("exclusive_create_refuses_an_existing_file_and_leaves_it_untouched") {
    TempDir tmp;
    const auto dir = tmp.open();
    write_text(tmp.at("taken"), "precious");
    auto again = platform::create_file_at(dir, "taken");
    REQUIRE_FALSE(again.ok());
    CHECK(again.code() == Errc::system_error);
    CHECK(contains(again.message(), tmp.at("taken")));
    CHECK(contains(again.message(), "File exists"));
    CHECK(read_text(tmp.at("taken")) == "precious");
  }

  TEST_CASE("a_symlink_planted_at_a_name_is_refused_and_its_target_untouched") {
    TempDir tmp;
    const auto dir = tmp.open();
    write_text(tmp.at("target"), "precious");
    REQUIRE(::symlink(tmp.at("target").c_str(), tmp.at("00000000000000000000.seg").c_str()) == 0);
    REQUIRE(::symlink(tmp.at("nowhere").c_str(), tmp.at("dangling").c_str()) == 0);

    auto opened = platform::open_file_at(dir, "00000000000000000000.seg", platform::Access::read_write);
    REQUIRE_FALSE(opened.ok());
    CHECK(contains(opened.message(), "symbolic link"));
    CHECK(contains(opened.message(), tmp.at("00000000000000000000.seg")));
    // O_EXCL refuses a symlink too, even a dangling one (it would otherwise create its target).
    CHECK_FALSE(platform::create_file_at(dir, "00000000000000000000.seg").ok());
    CHECK_FALSE(platform::create_file_at(dir, "dangling").ok());
    CHECK_FALSE(std::filesystem::exists(tmp.at("nowhere")));
    // A lock file planted as a symlink is refused as well.
    CHECK_FALSE(platform::lock_exclusive(dir, "00000000000000000000.seg").ok());
    CHECK(read_text(tmp.at("target")) == "precious");
  }

  TEST_CASE("a_hard_link_planted_at_a_name_is_refused_and_its_target_untouched") {
    TempDir tmp;
    const auto dir = tmp.open();
    write_text(tmp.at("target"), "precious");
    REQUIRE(::link(tmp.at("target").c_str(), tmp.at("00000000000000000000.seg").c_str()) == 0);
    auto opened = platform::open_file_at(dir, "00000000000000000000.seg", platform::Access::read_write);
    REQUIRE_FALSE(opened.ok());
    CHECK(contains(opened.message(), "2 hard links"));
    CHECK_FALSE(platform::lock_exclusive(dir, "00000000000000000000.seg").ok());
    CHECK(read_text(tmp.at("target")) == "precious");
  }

  TEST_CASE("a_fifo_planted_at_a_name_is_refused_without_blocking") {
    TempDir tmp;
    const auto dir = tmp.open();
    REQUIRE(::mkfifo(tmp.at("00000000000000000000.seg").c_str(), 0600) == 0);
    for (auto access : {platform::Access::read_only, platform::Access::read_write}) {
      auto opened = platform::open_file_at(dir, "00000000000000000000.seg", access);
      REQUIRE_FALSE(opened.ok());
      CHECK(contains(opened.message(), "a FIFO"));
    }
    CHECK_FALSE(platform::lock_exclusive(dir, "00000000000000000000.seg").ok());
    // A directory is no file either.
    REQUIRE(platform::make_directory_at(dir, "sub").ok());
    auto sub = platform::open_file_at(dir, "sub", platform::Access::read_only);
    REQUIRE_FALSE(sub.ok());
    CHECK(contains(sub.message(), "a directory"));
  }

  TEST_CASE("a_symlink_planted_as_a_directory_is_refused") {
    TempDir tmp;
    const auto dir = tmp.open();
    REQUIRE(platform::make_directory_at(dir, "real").ok());
    REQUIRE(::symlink(tmp.at("real").c_str(), tmp.at("orders").c_str()) == 0);
    auto opened = platform::open_directory_at(dir, "orders");
    REQUIRE_FALSE(opened.ok());
    CHECK(contains(opened.message(), tmp.at("orders")));
    CHECK_FALSE(platform::open_directory(tmp.at("orders")).ok());
  }

  TEST_CASE("names_that_are_not_one_path_component_are_refused") {
    TempDir tmp;
    const auto dir = tmp.open();
    const std::string with_nul("a\0b", 3);
    for (const std::string& name : {std::string(""), std::string("."), std::string(".."), std::string("../escape"),
                                    std::string("a/b"), std::string("/etc/passwd"), with_nul, std::string(256, 'x')}) {
      CAPTURE(name);
      CHECK(platform::check_component(name).code() == Errc::invalid_argument);
      CHECK(platform::create_file_at(dir, name).code() == Errc::invalid_argument);
      CHECK(platform::open_file_at(dir, name, platform::Access::read_only).code() == Errc::invalid_argument);
      CHECK(platform::make_directory_at(dir, name).code() == Errc::invalid_argument);
      CHECK(platform::remove_file_at(dir, name).code() == Errc::invalid_argument);
    }
    CHECK(platform::check_component(std::string(255, 'x')).ok());
    CHECK(platform::check_component("..a").ok()); // only "." and ".." themselves are special
    CHECK_FALSE(std::filesystem::exists(std::filesystem::path(tmp.path()).parent_path() / "escape"));
  }

  TEST_CASE("a_preallocated_file_mapped_shared_carries_writes_to_the_file") {
    TempDir tmp;
    const auto dir = tmp.open();
    auto file = platform::create_file_at(dir, "segment");
    REQUIRE(file.ok());
    const std::size_t page = platform::system_page_size();
    REQUIRE(platform::preallocate(*file, 4 * page).ok());
    CHECK(platform::file_info(*file)->size == 4 * page);

    auto mapping = platform::map_file(*file, page, 2 * page, platform::Access::read_write);
    REQUIRE(mapping.ok());
    CHECK(platform::prefault_shared(mapping->data(), mapping->size(), platform::Access::read_write));
    std::memcpy(mapping->data() + 10, "hello", 5);
    REQUIRE(platform::sync_mapping(mapping->data(), mapping->size(), file->path()).ok());
    REQUIRE(platform::sync_file_data(*file).ok());

    std::vector<std::byte> back(5);
    auto got = platform::read_at(*file, page + 10, back);
    REQUIRE(got.ok());
    CHECK(*got == 5);
    CHECK(std::memcmp(back.data(), "hello", 5) == 0);

    // The other way round: pwrite, then read through a read-only mapping.
    const std::string text = "world";
    REQUIRE(platform::write_at(*file, 3 * page, bytes_of(text)).ok());
    auto reader = platform::map_file(*file, 3 * page, page, platform::Access::read_only);
    REQUIRE(reader.ok());
    CHECK(std::memcmp(reader->data(), "world", 5) == 0);
  }

  TEST_CASE("mapping_past_the_end_of_a_file_is_refused_instead_of_raising_sigbus") {
    TempDir tmp;
    const auto dir = tmp.open();
    auto file = platform::create_file_at(dir, "short");
    REQUIRE(file.ok());
    const std::size_t page = platform::system_page_size();
    REQUIRE(platform::preallocate(*file, page).ok());
    auto mapping = platform::map_file(*file, 0, 2 * page, platform::Access::read_only);
    REQUIRE_FALSE(mapping.ok());
    CHECK(mapping.code() == Errc::invalid_argument);
    CHECK(contains(mapping.message(), "the file is only"));
    CHECK(platform::map_file(*file, 1, page, platform::Access::read_only).code() == Errc::invalid_argument);
  }

  TEST_CASE("a_mapping_whose_end_wraps_past_2_64_is_refused_as_past_the_end") {
    TempDir tmp;
    const auto dir = tmp.open();
    auto file = platform::create_file_at(dir, "short");
    REQUIRE(file.ok());
    const std::size_t page = platform::system_page_size();
    REQUIRE(platform::preallocate(*file, page).ok());
    // offset + bytes wraps to `page`, which a naive size check accepts.
    const std::uint64_t offset = UINT64_MAX - page + 1;
    for (auto access : {platform::Access::read_only, platform::Access::read_write}) {
      auto mapping = platform::map_file(*file, offset, 2 * page, access);
      REQUIRE_FALSE(mapping.ok());
      CHECK(mapping.code() == Errc::invalid_argument);
      CHECK(contains(mapping.message(), "the file is only"));
    }
  }

  TEST_CASE("prefaulting_pages_past_a_truncated_files_end_reports_failure_instead_of_sigbus") {
    TempDir tmp;
    const auto dir = tmp.open();
    auto file = platform::create_file_at(dir, "segment");
    REQUIRE(file.ok());
    const std::size_t page = platform::system_page_size();
    REQUIRE(platform::preallocate(*file, 4 * page).ok());
    auto mapping = platform::map_file(*file, 0, 4 * page, platform::Access::read_write);
    REQUIRE(mapping.ok());
#if defined(MADV_POPULATE_WRITE)
    if (::madvise(mapping->data(), page, MADV_POPULATE_WRITE) != 0 && errno == EINVAL) {
      MESSAGE("skipped: this kernel has no MADV_POPULATE_WRITE (before 5.14)");
      return;
    }
#else
    MESSAGE("skipped: built without MADV_POPULATE_WRITE");
    return;
#endif
    REQUIRE(::ftruncate(file->get(), static_cast<off_t>(page)) == 0); // someone cut the file under the mapping
    // In a child: an unfixed fallback touches the pages and dies of SIGBUS.
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      const bool ok = platform::prefault_shared(mapping->data(), mapping->size(), platform::Access::read_write);
      ::_exit(ok ? 1 : 0);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK_FALSE(WIFSIGNALED(status));
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);                                                       // refused, reported as false
    CHECK(platform::prefault_shared(mapping->data(), page, platform::Access::read_write)); // the page still there
  }

  TEST_CASE("files_mapped_into_a_reservation_lie_next_to_each_other") {
    TempDir tmp;
    const auto dir = tmp.open();
    const std::size_t page = platform::system_page_size();
    auto reservation = platform::reserve_address_space(2 * page);
    REQUIRE(reservation.ok());
    auto* base = static_cast<std::byte*>(*reservation);
    std::vector<platform::FileMapping> mappings;
    for (int i = 0; i < 2; ++i) {
      auto file = platform::create_file_at(dir, "segment" + std::to_string(i));
      REQUIRE(file.ok());
      REQUIRE(platform::preallocate(*file, 2 * page).ok()); // header page + one data page
      auto mapped = platform::map_file_into(base + i * page, *file, page, page, platform::Access::read_write);
      REQUIRE(mapped.ok());
      CHECK(mapped->data() == base + i * page);
      mapped->data()[0] = static_cast<std::byte>('a' + i);
      mappings.push_back(std::move(*mapped));
    }
    CHECK(base[0] == std::byte{'a'});
    CHECK(base[page] == std::byte{'b'});
    mappings.clear(); // gives the range back to the reservation
    platform::unmap(*reservation, 2 * page);
    CHECK(read_text(tmp.at("segment1")).substr(page, 1) == "b");
  }

  TEST_CASE("injected_enospc_fails_preallocate_with_no_space_and_then_disarms") {
    TempDir tmp;
    const auto dir = tmp.open();
    auto file = platform::create_file_at(dir, "00000000000000000064.seg");
    REQUIRE(file.ok());
    platform::testing::fail_next_preallocations(1);
    const auto failed = platform::preallocate(*file, 1 << 20);
    CHECK(failed.code() == Errc::no_space);
    CHECK(contains(failed.message(), file->path()));
    CHECK(contains(failed.message(), "No space left on device"));
    CHECK(platform::file_info(*file)->size == 0);
    CHECK(platform::preallocate(*file, 1 << 20).ok());
  }

  TEST_CASE("injected_sync_failures_name_the_file_and_errno") {
    TempDir tmp;
    const auto dir = tmp.open();
    auto file = platform::create_file_at(dir, "offsets");
    REQUIRE(file.ok());
    platform::testing::fail_next_syncs(2);
    const auto data = platform::sync_file_data(*file);
    CHECK(data.code() == Errc::system_error);
    CHECK(contains(data.message(), "fdatasync"));
    CHECK(contains(data.message(), "Input/output error"));
    CHECK(contains(platform::sync_directory(dir).message(), tmp.path()));
    CHECK(platform::sync_file_data(*file).ok());
    platform::testing::fail_next_syncs(0);
  }

  TEST_CASE("rename_remove_and_list_work_relative_to_the_directory") {
    TempDir tmp;
    const auto dir = tmp.open();
    REQUIRE(platform::create_file_at(dir, "b.tmp").ok());
    REQUIRE(platform::create_file_at(dir, "a").ok());
    REQUIRE(platform::make_directory_at(dir, "topic").ok());
    REQUIRE(::symlink("a", tmp.at("link").c_str()) == 0);
    REQUIRE(platform::rename_at(dir, "b.tmp", "b").ok());
    REQUIRE(platform::sync_directory(dir).ok());

    auto listed = platform::list_directory(dir);
    REQUIRE(listed.ok());
    REQUIRE(listed->size() == 4);
    CHECK((*listed)[0].name == "a");
    CHECK((*listed)[0].type == platform::EntryType::regular);
    CHECK((*listed)[1].name == "b");
    CHECK((*listed)[2].name == "link");
    CHECK((*listed)[2].type == platform::EntryType::other);
    CHECK((*listed)[3].name == "topic");
    CHECK((*listed)[3].type == platform::EntryType::directory);

    CHECK(*platform::entry_exists_at(dir, "link"));
    REQUIRE(platform::remove_file_at(dir, "link").ok()); // the link, not its target
    CHECK(std::filesystem::exists(tmp.at("a")));
    REQUIRE(platform::remove_file_at(dir, "a").ok());
    REQUIRE(platform::remove_directory_at(dir, "topic").ok());
    CHECK_FALSE(*platform::entry_exists_at(dir, "a"));
    const auto missing = platform::remove_file_at(dir, "a");
    CHECK(contains(missing.message(), "No such file or directory"));
    CHECK(platform::list_directory(dir)->size() == 1);
  }

  TEST_CASE("a_second_writer_lock_in_this_process_is_refused_naming_this_pid") {
    TempDir tmp;
    const auto dir = tmp.open();
    auto first = platform::lock_exclusive(dir, "LOCK");
    REQUIRE(first.ok());
    CHECK(first->held());
    CHECK(read_text(tmp.at("LOCK")) == std::to_string(::getpid()) + "\n");
    auto second = platform::lock_exclusive(dir, "LOCK");
    REQUIRE_FALSE(second.ok());
    CHECK(second.code() == Errc::producer_exists);
    CHECK(contains(second.message(), "pid " + std::to_string(::getpid()) + " (this process)"));
    CHECK(contains(second.message(), tmp.at("LOCK")));

    first->release();
    CHECK(read_text(tmp.at("LOCK")).empty());
    auto third = platform::lock_exclusive(dir, "LOCK");
    CHECK(third.ok());
  }

  TEST_CASE("lock_holder_names_the_holders_pid_without_taking_the_lock") {
    TempDir tmp;
    const auto dir = tmp.open();
    auto absent = platform::lock_holder(dir, "LOCK");
    REQUIRE(absent.ok());
    CHECK_FALSE(absent->has_value());
    CHECK_FALSE(*platform::entry_exists_at(dir, "LOCK")); // asking creates nothing
    auto held = platform::lock_exclusive(dir, "LOCK");
    REQUIRE(held.ok());
    auto holder = platform::lock_holder(dir, "LOCK");
    REQUIRE(holder.ok());
    REQUIRE(holder->has_value());
    CHECK(**holder == ::getpid());
    CHECK_FALSE(platform::lock_exclusive(dir, "LOCK").ok()); // still held by the first
    held->release();
    auto released = platform::lock_holder(dir, "LOCK");
    REQUIRE(released.ok());
    CHECK_FALSE(released->has_value()); // the file is there, nobody holds it
    CHECK(platform::lock_exclusive(dir, "LOCK").ok());
  }

  TEST_CASE("a_second_writer_lock_in_another_process_is_refused_naming_the_holders_pid") {
    TempDir tmp;
    const auto dir = tmp.open();
    auto held = platform::lock_exclusive(dir, "LOCK");
    REQUIRE(held.ok());
    int report[2];
    REQUIRE(::pipe(report) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(report[0]);
      auto dir_in_child = platform::open_directory(tmp.path());
      std::string message = "could not open the directory";
      int code = 2;
      if (dir_in_child.ok()) {
        auto attempt = platform::lock_exclusive(*dir_in_child, "LOCK");
        code = attempt.ok() ? 1 : 0;
        message = std::string(attempt.message());
      }
      (void)!::write(report[1], message.data(), message.size());
      ::_exit(code);
    }
    ::close(report[1]);
    std::string message;
    char buffer[512];
    for (ssize_t n; (n = ::read(report[0], buffer, sizeof buffer)) > 0;)
      message.append(buffer, static_cast<std::size_t>(n));
    ::close(report[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0); // the child was refused
    CHECK(contains(message, "held by pid " + std::to_string(::getpid())));
    CHECK_FALSE(contains(message, "this process"));
  }

  TEST_CASE("a_forked_child_dropping_its_copy_of_the_lock_leaves_the_holder_locked_and_named") {
    // fork() shares the lock's open file description: the child's copy of the
    // FileLock going away (destructors run on its way out) must neither erase
    // the holder's pid nor release the holder's lock.
    TempDir tmp;
    const auto dir = tmp.open();
    auto held = platform::lock_exclusive(dir, "LOCK");
    REQUIRE(held.ok());
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      held->release();
      ::_exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(read_text(tmp.at("LOCK")) == std::to_string(::getpid()) + "\n");
    auto second = platform::lock_exclusive(dir, "LOCK");
    REQUIRE_FALSE(second.ok());
    CHECK(second.code() == Errc::producer_exists);
    CHECK(contains(second.message(), "pid " + std::to_string(::getpid()) + " (this process)"));
    held->release();
    CHECK(read_text(tmp.at("LOCK")).empty());
    CHECK(platform::lock_exclusive(dir, "LOCK").ok());
  }

  TEST_CASE("writer_locks_taken_from_two_threads_at_once_admit_exactly_one") {
    TempDir tmp;
    const auto dir = tmp.open();
    for (int round = 0; round < 20; ++round) {
      CAPTURE(round);
      ringbus::Result<platform::FileLock> a = ringbus::Status(Errc::invalid_argument, "not run");
      ringbus::Result<platform::FileLock> b = ringbus::Status(Errc::invalid_argument, "not run");
      std::thread other([&] { b = platform::lock_exclusive(dir, "LOCK"); });
      a = platform::lock_exclusive(dir, "LOCK");
      other.join();
      CHECK(a.ok() != b.ok());
      const auto& loser = a.ok() ? b : a;
      CHECK(loser.code() == Errc::producer_exists);
    }
  }

  TEST_CASE("a_full_tmpfs_refuses_preallocation_with_no_space") {
    // Mounting needs CAP_SYS_ADMIN: the child takes a private mount namespace,
    // so the mount is never visible outside it and vanishes with it.
    TempDir tmp;
    int report[2];
    REQUIRE(::pipe(report) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(report[0]);
      const auto say = [&](const std::string& text, int code) {
        (void)!::write(report[1], text.data(), text.size());
        ::_exit(code);
      };
      if (::unshare(CLONE_NEWNS) != 0) say(std::string("unshare: ") + std::strerror(errno), 77);
      if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        say(std::string("mount --make-rprivate: ") + std::strerror(errno), 77);
      }
      if (::mount("tmpfs", tmp.path().c_str(), "tmpfs", 0, "size=64k,mode=0700") != 0) {
        say(std::string("mount tmpfs: ") + std::strerror(errno), 77);
      }
      auto dir = platform::open_directory(tmp.path());
      if (!dir.ok()) say(std::string(dir.message()), 2);
      auto file = platform::create_file_at(*dir, "00000000000000000000.seg");
      if (!file.ok()) say(std::string(file.message()), 2);
      const auto small = platform::preallocate(*file, 16 << 10);
      if (!small.ok()) say("16 KiB did not fit: " + std::string(small.message()), 2);
      const auto big = platform::preallocate(*file, 1 << 20);
      if (big.code() != ringbus::Errc::no_space) say("1 MiB: " + std::string(big.message()), 3);
      say(std::string(big.message()), 0);
    }
    ::close(report[1]);
    std::string message;
    char buffer[512];
    for (ssize_t n; (n = ::read(report[0], buffer, sizeof buffer)) > 0;)
      message.append(buffer, static_cast<std::size_t>(n));
    ::close(report[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
      MESSAGE("skipped: cannot mount a small tmpfs here (" << message << "); the injected ENOSPC test covers the path");
      return;
    }
    CAPTURE(message);
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(contains(message, "No space left on device"));
    CHECK(contains(message, "00000000000000000000.seg"));
  }
}
