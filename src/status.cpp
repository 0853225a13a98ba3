#include "ringbus/status.hpp"

namespace ringbus {

std::string_view to_string(Errc code) noexcept {
  switch (code) {
    case Errc::ok: return "ok";
    case Errc::would_block: return "would_block";
    case Errc::timed_out: return "timed_out";
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::record_too_large: return "record_too_large";
    case Errc::topic_not_found: return "topic_not_found";
    case Errc::topic_exists: return "topic_exists";
    case Errc::producer_exists: return "producer_exists";
    case Errc::too_many_consumers: return "too_many_consumers";
    case Errc::not_subscribed: return "not_subscribed";
    case Errc::closed: return "closed";
    case Errc::no_claim: return "no_claim";
    case Errc::out_of_memory: return "out_of_memory";
    case Errc::system_error: return "system_error";
    case Errc::no_space: return "no_space";
    case Errc::corrupt_data: return "corrupt_data";
    case Errc::too_many_senders: return "too_many_senders";
  }
  return "unknown";
}

Status::Status(Errc code, std::string message)
    : code_(code), message_(std::make_unique<std::string>(std::move(message))) {}

Status::Status(const Status& other)
    : code_(other.code_), message_(other.message_ ? std::make_unique<std::string>(*other.message_) : nullptr) {}

Status& Status::operator=(const Status& other) {
  if (this != &other) {
    code_ = other.code_;
    message_ = other.message_ ? std::make_unique<std::string>(*other.message_) : nullptr;
  }
  return *this;
}

std::string_view Status::message() const noexcept {
  if (message_) return *message_;
  return to_string(code_);
}

void Status::check() const {
  if (!ok()) throw Error(code_, std::string(message()));
}

} // namespace ringbus
