// Durable consumer offsets: commits survive reopening; a damaged or torn
// newest slot gives back the previous commit; both damaged is an error naming
// the file; never a garbage value.
#include "ringbus/detail/offset_store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "platform/files.hpp"
#include "test_support.hpp"

using ringbus::Errc;
using ringbus::test::contains;
namespace detail = ringbus::detail;
namespace platform = ringbus::platform;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ringbus-offsets-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
    auto dir = platform::open_directory(path_);
    REQUIRE(dir.ok());
    dir_ = std::move(*dir);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const platform::FileDescriptor& dir() const { return dir_; }
  [[nodiscard]] std::string at(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  platform::FileDescriptor dir_;
};

// Overwrites bytes of the file at offset, as a crash or a bad disk would.
void scribble(const std::string& path, std::uint64_t offset, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f.good());
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::uint64_t slot_offset(unsigned slot) { return std::uint64_t{slot} * detail::offset_slot_bytes; }

// The slot holding sequence `sequence` (slot 0 holds 1, 3, 5, ...).
unsigned slot_of(std::uint64_t sequence) { return (sequence % 2 == 1) ? 0 : 1; }

} // namespace

TEST_SUITE("offset_store") {
  TEST_CASE("committed_offsets_come_back_after_reopening") {
    TempDir tmp;
    {
      auto store = detail::OffsetStore::open(tmp.dir(), "audit.offsets");
      REQUIRE(store.ok());
      CHECK(store->entries().empty());
      CHECK(store->sequence() == 1);
      CHECK(store->path() == tmp.at("audit.offsets"));
      REQUIRE(store->commit("orders", 42).ok());
      const detail::OffsetUpdate batch[] = {{"trades", 7, false}, {"orders", 43, false}, {"quotes", 0, false}};
      REQUIRE(store->commit(batch).ok());
      CHECK(store->sequence() == 3);
      CHECK(store->committed("orders") == 43u);
    }
    struct stat st {};
    REQUIRE(::stat(tmp.at("audit.offsets").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(static_cast<std::size_t>(st.st_size) == 2 * detail::offset_slot_bytes);
    CHECK_FALSE(std::filesystem::exists(tmp.at("audit.offsets.tmp")));

    auto reopened = detail::OffsetStore::open(tmp.dir(), "audit.offsets");
    REQUIRE(reopened.ok());
    CHECK(reopened->sequence() == 3);
    REQUIRE(reopened->entries().size() == 3);
    CHECK(reopened->entries()[0].first == "orders"); // sorted by name
    CHECK(reopened->committed("orders") == 43u);
    CHECK(reopened->committed("quotes") == 0u);
    CHECK(reopened->committed("trades") == 7u);
    CHECK_FALSE(reopened->committed("missing").has_value());

    const detail::OffsetUpdate erase[] = {{"trades", 0, true}, {"never-there", 0, true}};
    REQUIRE(reopened->commit(erase).ok());
    CHECK_FALSE(reopened->committed("trades").has_value());
    CHECK(reopened->entries().size() == 2);
  }

  TEST_CASE("a_damaged_newest_slot_gives_back_the_previous_commit") {
    TempDir tmp;
    {
      auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
      REQUIRE(store.ok());
      REQUIRE(store->commit("orders", 100).ok()); // sequence 2
      REQUIRE(store->commit("orders", 200).ok()); // sequence 3
    }
    // A flipped byte in the payload of the newest slot (an offset byte).
    scribble(tmp.at("offsets"), slot_offset(slot_of(3)) + detail::offset_slot_header_bytes + 1 + 6, "\x7f");
    auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
    REQUIRE(store.ok());
    CHECK(store->sequence() == 2);
    CHECK(store->committed("orders") == 100u);
    // The next commit goes into the damaged slot, never over the good one.
    REQUIRE(store->commit("orders", 300).ok());
    auto again = detail::OffsetStore::open(tmp.dir(), "offsets");
    REQUIRE(again.ok());
    CHECK(again->sequence() == 3);
    CHECK(again->committed("orders") == 300u);
  }

  TEST_CASE("a_commit_torn_by_a_crash_gives_back_the_previous_commit") {
    TempDir tmp;
    {
      auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
      REQUIRE(store.ok());
      REQUIRE(store->commit("orders", 100).ok()); // sequence 2, slot 1
    }
    // The crash hit while sequence 3 was being written into slot 0: only its
    // first 20 bytes (header up to the sequence) reached the file.
    detail::OffsetStore::Entries entries;
    entries.emplace_back(detail::HeapString("orders"), 999);
    const auto slot = detail::encode_offset_slot(entries, 3);
    scribble(tmp.at("offsets"), slot_offset(0), std::string(reinterpret_cast<const char*>(slot.data()), 20));
    auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
    REQUIRE(store.ok());
    CHECK(store->sequence() == 2);
    CHECK(store->committed("orders") == 100u);
  }

  TEST_CASE("a_commit_torn_at_any_byte_gives_back_the_old_or_the_new_map") {
    // Slot 0 holds sequence 3, slot 1 sequence 4; commit 5 goes over slot 0.
    // A crash leaves any prefix (bytes written in order) or any suffix (a
    // later sector reached the disk first) of the new slot over the old one.
    TempDir tmp;
    std::vector<std::string> names;
    for (int i = 0; i < 60; ++i) names.push_back("consumer-" + std::to_string(i) + std::string(60, 'x'));
    const auto commit_all = [&](detail::OffsetStore& store, std::uint64_t value) {
      std::vector<detail::OffsetUpdate> updates;
      for (const auto& name : names) updates.push_back({name, value, false});
      REQUIRE(store.commit(updates).ok());
    };
    {
      auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
      REQUIRE(store.ok());
      commit_all(*store, 1); // 2, slot 1
      commit_all(*store, 3); // 3, slot 0
      commit_all(*store, 4); // 4, slot 1
      REQUIRE(store->sequence() == 4);
    }
    std::string old_slot(detail::offset_slot_bytes, '\0');
    {
      std::ifstream in(tmp.at("offsets"), std::ios::binary);
      in.read(old_slot.data(), static_cast<std::streamsize>(old_slot.size()));
    }
    detail::OffsetStore::Entries next;
    for (const auto& name : names) next.emplace_back(detail::HeapString(name), 5);
    std::sort(next.begin(), next.end());
    const auto encoded = detail::encode_offset_slot(next, 5);
    const std::string fresh(reinterpret_cast<const char*>(encoded.data()), encoded.size());
    REQUIRE(fresh.size() > 4096); // spans more than one 4 KiB sector
    for (std::size_t cut = 0; cut <= fresh.size(); cut += 37) {
      for (bool prefix : {true, false}) {
        CAPTURE(cut);
        CAPTURE(prefix);
        scribble(tmp.at("offsets"), 0, old_slot.substr(0, fresh.size()));
        if (prefix) {
          scribble(tmp.at("offsets"), 0, fresh.substr(0, cut));
        } else {
          scribble(tmp.at("offsets"), cut, fresh.substr(cut));
        }
        auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
        REQUIRE(store.ok());
        const bool whole = prefix ? cut == fresh.size() : cut == 0;
        CHECK(store->sequence() == (whole ? 5u : 4u));
        REQUIRE(store->entries().size() == names.size());
        for (const auto& [name, offset] : store->entries()) CHECK(offset == (whole ? 5u : 4u));
      }
    }
  }

  TEST_CASE("a_creation_whose_rename_was_lost_starts_empty_again") {
    // A power loss after the rename but before the directory fsync can leave
    // only the temporary name. No commit was acknowledged through it (open had
    // not returned), so the store starts over, empty, and the .tmp goes.
    TempDir tmp;
    {
      auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
      REQUIRE(store.ok());
    }
    REQUIRE(::rename(tmp.at("offsets").c_str(), tmp.at("offsets.tmp").c_str()) == 0);
    auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
    REQUIRE(store.ok());
    CHECK(store->sequence() == 1);
    CHECK(store->entries().empty());
    CHECK_FALSE(std::filesystem::exists(tmp.at("offsets.tmp")));
  }

  TEST_CASE("opening_an_existing_store_makes_its_name_durable_before_any_commit") {
    // A creator whose directory fsync failed (or that crashed before it) left
    // the name in place but perhaps not on disk; commits through that name
    // would vanish with it. Opening syncs the directory, and refuses when it cannot.
    TempDir tmp;
    {
      auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
      REQUIRE(store.ok());
      REQUIRE(store->commit("orders", 7).ok());
    }
    platform::testing::fail_next_syncs(1);
    auto refused = detail::OffsetStore::open(tmp.dir(), "offsets");
    platform::testing::fail_next_syncs(0);
    REQUIRE_FALSE(refused.ok());
    CHECK(contains(refused.message(), "fsync of directory"));
    auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
    REQUIRE(store.ok());
    CHECK(store->committed("orders") == 7u);
  }

  TEST_CASE("both_slots_damaged_is_an_error_naming_the_file") {
    TempDir tmp;
    {
      auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
      REQUIRE(store.ok());
      REQUIRE(store->commit("orders", 100).ok());
    }
    scribble(tmp.at("offsets"), slot_offset(0) + 16, "garbage!");
    scribble(tmp.at("offsets"), slot_offset(1), "NOTRBUS!");
    auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
    REQUIRE_FALSE(store.ok());
    CHECK(store.code() == Errc::corrupt_data);
    CHECK(contains(store.message(), tmp.at("offsets")));
    CHECK(contains(store.message(), "slot 0: checksum mismatch"));
    CHECK(contains(store.message(), "slot 1: magic"));
  }

  TEST_CASE("random_damage_never_yields_a_value_that_was_not_committed") {
    TempDir tmp;
    std::mt19937_64 random(99);
    std::vector<std::uint64_t> committed{0};
    auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
    REQUIRE(store.ok());
    REQUIRE(store->commit("orders", 0).ok());
    for (int round = 0; round < 200; ++round) {
      const std::uint64_t value = random();
      REQUIRE(store->commit("orders", value).ok());
      committed.push_back(value);
      if (round % 4 != 0) continue;
      // Damage a random byte of a random slot's used bytes, then reopen.
      const unsigned slot = static_cast<unsigned>(random() % 2);
      const std::uint64_t at = slot_offset(slot) + random() % (detail::offset_slot_header_bytes + 1 + 6 + 8);
      scribble(tmp.at("offsets"), at, std::string(1, static_cast<char>(random() | 1)));
      auto reopened = detail::OffsetStore::open(tmp.dir(), "offsets");
      REQUIRE(reopened.ok()); // one slot is always intact here
      const auto got = reopened->committed("orders");
      REQUIRE(got.has_value());
      const std::size_t n = committed.size();
      CAPTURE(round);
      CHECK((*got == committed[n - 1] || *got == committed[n - 2]));
      store = std::move(reopened);
      // Leave both slots valid again before the next damage.
      REQUIRE(store->commit("orders", committed.back()).ok());
      REQUIRE(store->commit("orders", committed.back()).ok());
    }
  }

  TEST_CASE("names_and_entry_counts_out_of_limits_are_refused_and_nothing_changes") {
    TempDir tmp;
    auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
    REQUIRE(store.ok());
    REQUIRE(store->commit(std::string(detail::offset_store_max_name_bytes, 'n'), 1).ok());
    const auto long_name = store->commit(std::string(detail::offset_store_max_name_bytes + 1, 'n'), 1);
    CHECK(long_name.code() == Errc::invalid_argument);
    CHECK(contains(long_name.message(), "256 bytes"));
    CHECK(store->commit("", 1).code() == Errc::invalid_argument);

    // Fill to the limit with the longest names: the largest slot must fit.
    std::vector<std::string> names;
    for (std::size_t i = 1; i < detail::offset_store_max_entries; ++i) {
      std::string name = std::to_string(i);
      names.push_back(name + std::string(detail::offset_store_max_name_bytes - name.size(), '.'));
    }
    std::vector<detail::OffsetUpdate> updates;
    for (std::size_t i = 0; i < names.size(); ++i) updates.push_back({names[i], i, false});
    REQUIRE(store->commit(updates).ok());
    CHECK(store->entries().size() == detail::offset_store_max_entries);
    const std::uint64_t sequence = store->sequence();
    const auto too_many = store->commit("one-more", 1);
    CHECK(too_many.code() == Errc::invalid_argument);
    CHECK(contains(too_many.message(), "the limit is 256"));
    CHECK(store->sequence() == sequence);
    auto reopened = detail::OffsetStore::open(tmp.dir(), "offsets");
    REQUIRE(reopened.ok());
    CHECK(reopened->entries().size() == detail::offset_store_max_entries);
    CHECK(reopened->committed(names.back()) == names.size() - 1);
  }

  TEST_CASE("a_failed_fdatasync_fails_the_store_until_it_is_reopened") {
    TempDir tmp;
    auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
    REQUIRE(store.ok());
    REQUIRE(store->commit("orders", 1).ok());
    platform::testing::fail_next_syncs(1);
    const auto failed = store->commit("orders", 2);
    CHECK(failed.code() == Errc::system_error);
    CHECK(contains(failed.message(), "fdatasync"));
    CHECK(store->committed("orders") == 1u); // the committed view never claims what may not be durable
    const auto refused = store->commit("orders", 3);
    CHECK(contains(refused.message(), "failed earlier"));
    auto reopened = detail::OffsetStore::open(tmp.dir(), "offsets");
    REQUIRE(reopened.ok());
    const auto got = reopened->committed("orders");
    CHECK((got == 1u || got == 2u));
    CHECK(reopened->commit("orders", 4).ok());
  }

  TEST_CASE("creation_replaces_a_stale_temporary_and_refuses_a_planted_symlink") {
    TempDir tmp;
    {
      std::ofstream stale(tmp.at("offsets.tmp"));
      stale << "left by a crash";
    }
    auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
    REQUIRE(store.ok());
    CHECK_FALSE(std::filesystem::exists(tmp.at("offsets.tmp")));

    {
      std::ofstream target(tmp.at("target"));
      target << "precious";
    }
    REQUIRE(::symlink(tmp.at("target").c_str(), tmp.at("planted").c_str()) == 0);
    auto planted = detail::OffsetStore::open(tmp.dir(), "planted");
    REQUIRE_FALSE(planted.ok());
    CHECK(contains(planted.message(), "symbolic link"));
    std::ifstream target(tmp.at("target"));
    std::string text;
    std::getline(target, text);
    CHECK(text == "precious");
    CHECK(detail::OffsetStore::open(tmp.dir(), "../escape").code() == Errc::invalid_argument);
  }

  TEST_CASE("a_full_disk_at_creation_is_no_space_and_leaves_no_store") {
    TempDir tmp;
    platform::testing::fail_next_preallocations(1);
    auto store = detail::OffsetStore::open(tmp.dir(), "offsets");
    REQUIRE_FALSE(store.ok());
    CHECK(store.code() == Errc::no_space);
    CHECK_FALSE(std::filesystem::exists(tmp.at("offsets")));
    auto retried = detail::OffsetStore::open(tmp.dir(), "offsets");
    CHECK(retried.ok());
  }
}
