// Status and Result<T>: how every ringbus call reports failure.
//
// Hot-path calls (append, try_append, claim, poll) never throw. A refusal that
// happens in steady state (would_block, timed_out) carries no message and so
// never allocates; a hard error carries a message naming the thing and the limit.
// Result<T>::value() throws ringbus::Error for callers that prefer exceptions.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace ringbus {

enum class Errc : std::uint8_t {
  ok = 0,
  would_block,        // try_* found no room (block policy) or no data
  timed_out,          // a wait ran out of time
  invalid_argument,   // a name, size or option out of its limits
  record_too_large,   // a record or batch larger than a segment can hold
  topic_not_found,    // no topic by that name
  topic_exists,       // create_topic with a name already taken, other options
  producer_exists,    // the topic already has its one writer
  too_many_consumers, // the topic's reader slots are all taken
  not_subscribed,     // a consumer call named a topic it does not read
  closed,             // the bus or handle was closed
  no_claim,           // commit/abort without an open claim, or a second claim
  out_of_memory,      // mapping or heap allocation failed
  system_error,       // an operating-system call failed (errno in the message)
  no_space,           // the file system is full (ENOSPC, EDQUOT): nothing committed was lost
  corrupt_data,       // a file that is not ringbus's, of another format version, or damaged
  too_many_senders,   // a SharedProducer's sender slots are all taken
};

// Name of the error code, e.g. "would_block".
std::string_view to_string(Errc code) noexcept;

class Status {
 public:
  Status() noexcept = default;
  explicit Status(Errc code) noexcept : code_(code) {}
  Status(Errc code, std::string message);

  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  ~Status() = default;

  [[nodiscard]] bool ok() const noexcept { return code_ == Errc::ok; }
  explicit operator bool() const noexcept { return ok(); }
  [[nodiscard]] Errc code() const noexcept { return code_; }
  // The message if one was given, else the code's name. Never empty for errors.
  [[nodiscard]] std::string_view message() const noexcept;

  // Throws ringbus::Error if this is an error.
  void check() const;

 private:
  Errc code_ = Errc::ok;
  std::unique_ptr<std::string> message_; // only hard errors carry one
};

class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) noexcept(std::is_nothrow_move_constructible_v<T>) // NOLINT: implicit by design
      : has_value_(true) {
    ::new (static_cast<void*>(&storage_)) T(std::move(value));
  }
  Result(Status status) noexcept : status_(std::move(status)) {} // NOLINT: implicit by design
  Result(Errc code) noexcept : status_(code) {}                  // NOLINT: implicit by design

  Result(Result&& other) noexcept(std::is_nothrow_move_constructible_v<T>)
      : status_(std::move(other.status_)), has_value_(other.has_value_) {
    if (has_value_) ::new (static_cast<void*>(&storage_)) T(std::move(*other.ptr()));
  }
  Result& operator=(Result&& other) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (this != &other) {
      reset();
      status_ = std::move(other.status_);
      has_value_ = other.has_value_;
      if (has_value_) ::new (static_cast<void*>(&storage_)) T(std::move(*other.ptr()));
    }
    return *this;
  }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result() { reset(); }

  [[nodiscard]] bool ok() const noexcept { return has_value_; }
  explicit operator bool() const noexcept { return has_value_; }
  [[nodiscard]] Errc code() const noexcept { return has_value_ ? Errc::ok : status_.code(); }
  [[nodiscard]] const Status& status() const& noexcept { return status_; }
  // Moves the status out (its message is not copied): `return std::move(r).status();`.
  [[nodiscard]] Status status() && noexcept { return std::move(status_); }
  [[nodiscard]] std::string_view message() const noexcept { return status_.message(); }

  T& value() & {
    if (!has_value_) throw_error();
    return *ptr();
  }
  const T& value() const& {
    if (!has_value_) throw_error();
    return *ptr();
  }
  // By value, so that `for (auto& r : consumer.poll().value())` owns what it iterates.
  T value() && {
    if (!has_value_) throw_error();
    return std::move(*ptr());
  }
  T& operator*() & noexcept { return *ptr(); }
  const T& operator*() const& noexcept { return *ptr(); }
  T* operator->() noexcept { return ptr(); }
  const T* operator->() const noexcept { return ptr(); }

 private:
  [[noreturn]] void throw_error() const {
    status_.check();
    throw Error(Errc::invalid_argument, "ringbus: Result has no value");
  }
  T* ptr() noexcept { return std::launder(reinterpret_cast<T*>(&storage_)); }
  const T* ptr() const noexcept { return std::launder(reinterpret_cast<const T*>(&storage_)); }
  void reset() noexcept {
    if (has_value_) ptr()->~T();
    has_value_ = false;
  }

  Status status_;
  bool has_value_ = false;
  alignas(T) unsigned char storage_[sizeof(T)];
};

} // namespace ringbus
