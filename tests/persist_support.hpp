// Helpers of the persistence tests: a temporary bus directory and the file
// names inside it.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "ringbus/ringbus.hpp"

namespace ringbus::test {

// A fresh directory under the system's temporary directory, removed with everything in it.
class TempBusDir {
 public:
  TempBusDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ringbus-bus-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempBusDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempBusDir(const TempBusDir&) = delete;
  TempBusDir& operator=(const TempBusDir&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string topic_dir(const std::string& topic) const { return path_ + "/topics/" + topic; }
  // Segment files of a topic, sorted (by base offset).
  [[nodiscard]] std::vector<std::string> segments(const std::string& topic) const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(topic_dir(topic))) {
      if (e.path().extension() == ".seg") out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::string path_;
};

inline Bus open_bus(const std::string& path, const BusOptions& options = {}) {
  Result<Bus> bus = Bus::open(path, options);
  REQUIRE_MESSAGE(bus.ok(), bus.message());
  return std::move(*bus);
}

} // namespace ringbus::test
