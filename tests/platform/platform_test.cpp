// platform.hpp's machine facts: the kernel's clocksource as sysfs names it.
#include "platform/platform.hpp"

#include <cstring>
#include <fstream>
#include <string>

#include "test_support.hpp"

namespace platform = ringbus::platform;

TEST_SUITE("platform") {
  TEST_CASE("kernel_clocksource_gives_the_sysfs_name_without_its_newline") {
    std::ifstream in("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    std::string expected;
    if (!std::getline(in, expected)) {
      char out[32] = "unchanged";
      CHECK_FALSE(platform::kernel_clocksource(out, sizeof out));
      CHECK(out[0] == '\0');
      return;
    }
    char out[64];
    REQUIRE(platform::kernel_clocksource(out, sizeof out));
    CHECK(std::string(out) == expected);
  }

  TEST_CASE("kernel_clocksource_refuses_a_buffer_too_small_rather_than_cut_the_name_short") {
    char full[64];
    if (!platform::kernel_clocksource(full, sizeof full)) return; // no sysfs here: nothing to cut
    const std::size_t length = std::strlen(full);
    // Room for the name and its NUL, but not its newline: a cut name ("kvm"
    // of "kvm-clock") could read as another clocksource, so it says nothing.
    char cut[64];
    std::memset(cut, 'x', sizeof cut);
    CHECK_FALSE(platform::kernel_clocksource(cut, length + 1));
    CHECK(cut[0] == '\0');
    char fits[64];
    REQUIRE(platform::kernel_clocksource(fits, length + 2)); // name, newline read in, then NUL
    CHECK(std::string(fits) == full);
    char none[1] = {'x'};
    CHECK_FALSE(platform::kernel_clocksource(none, 0)); // size 0: nothing written at all
    CHECK(none[0] == 'x');
  }
}
