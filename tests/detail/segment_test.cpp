// RingMapping: the anonymous memory a topic's ring of segments lives in.
#include "ringbus/detail/segment.hpp"

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <utility>

#include "test_support.hpp"

using ringbus::Errc;
using ringbus::detail::RingMapping;
using ringbus::test::contains;

namespace {

bool all_zero(const std::byte* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != std::byte{0}) return false;
  }
  return true;
}

} // namespace

TEST_SUITE("segment") {
  TEST_CASE("a_huge_page_ring_starts_on_a_huge_page_boundary_despite_its_guard_page") {
    // The guard page makes the mapping's length no multiple of 2 MiB, so the
    // kernel no longer aligns it: RingMapping must, or the ring's first and
    // last 2 MiB never get a huge page.
    for (const std::size_t bytes : {std::size_t{2} << 20, std::size_t{8} << 20, std::size_t{4096}}) {
      CAPTURE(bytes);
      for (int i = 0; i < 4; ++i) { // several mappings: a lucky placement would not tell
        auto mapping = RingMapping::anonymous(bytes, true, false);
        REQUIRE(mapping.ok());
        CHECK(reinterpret_cast<std::uintptr_t>(mapping->data()) % (std::uintptr_t{2} << 20) == 0);
        std::memset(mapping->data(), 0x22, bytes); // all of it writable
        CHECK(mapping->data()[bytes - 1] == std::byte{0x22});
      }
    }
  }

  TEST_CASE("anonymous_mapping_is_zeroed_writable_and_page_aligned") {
    for (bool prefault : {true, false}) {
      for (bool huge_pages : {false, true}) {
        CAPTURE(prefault);
        CAPTURE(huge_pages);
        const std::size_t bytes = std::size_t{4} << 20;
        auto mapping = RingMapping::anonymous(bytes, huge_pages, prefault);
        REQUIRE(mapping.ok());
        CHECK(mapping->size() == bytes);
        REQUIRE(mapping->data() != nullptr);
        CHECK(reinterpret_cast<std::uintptr_t>(mapping->data()) % static_cast<std::uintptr_t>(::getpagesize()) == 0);
        CHECK(all_zero(mapping->data(), bytes));
        std::memset(mapping->data(), 0x11, bytes);
        CHECK(mapping->data()[bytes - 1] == std::byte{0x11});
      }
    }
  }

  TEST_CASE("default_mapping_is_empty") {
    const RingMapping none;
    CHECK(none.data() == nullptr);
    CHECK(none.size() == 0);
  }

  TEST_CASE("moving_a_mapping_transfers_ownership") {
    auto made = RingMapping::anonymous(8192, false, true);
    REQUIRE(made.ok());
    std::byte* data = made->data();
    data[5] = std::byte{42};
    RingMapping moved(std::move(*made));
    CHECK(made->data() == nullptr);
    CHECK(made->size() == 0);
    CHECK(moved.data() == data);
    CHECK(moved.size() == 8192);
    CHECK(moved.data()[5] == std::byte{42});

    auto other = RingMapping::anonymous(4096, false, false);
    REQUIRE(other.ok());
    moved = std::move(*other); // unmaps the 8 KiB mapping, takes the 4 KiB one
    CHECK(moved.size() == 4096);
    CHECK(other->data() == nullptr);
    CHECK(all_zero(moved.data(), 4096));
    RingMapping& self = moved;
    moved = std::move(self); // self-move keeps the mapping
    CHECK(moved.size() == 4096);
  }

  TEST_CASE("mapping_that_the_system_refuses_reports_the_size") {
    // More than any address space: mmap refuses whatever the overcommit policy.
    const std::size_t impossible = SIZE_MAX & ~std::size_t{0xfff};
    auto mapping = RingMapping::anonymous(impossible, false, false);
    CHECK_FALSE(mapping.ok());
    CHECK((mapping.code() == Errc::out_of_memory || mapping.code() == Errc::system_error));
    CHECK(contains(mapping.message(), std::to_string(impossible)));
    CHECK(contains(mapping.message(), "mmap"));
  }

  TEST_CASE("mapping_of_zero_bytes_is_refused") {
    auto mapping = RingMapping::anonymous(0, false, false);
    CHECK_FALSE(mapping.ok());
    CHECK(contains(mapping.message(), "0 bytes"));
  }

} // TEST_SUITE
