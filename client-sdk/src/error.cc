#include "wsgate/client/error.h"

#include "google/rpc/status.pb.h"
#include "src/internal.h"
#include "wsgate/v1/common.pb.h"

namespace wsgate {

std::string_view status_code_name(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::ok: return "OK";
    case StatusCode::cancelled: return "CANCELLED";
    case StatusCode::unknown: return "UNKNOWN";
    case StatusCode::invalid_argument: return "INVALID_ARGUMENT";
    case StatusCode::deadline_exceeded: return "DEADLINE_EXCEEDED";
    case StatusCode::not_found: return "NOT_FOUND";
    case StatusCode::already_exists: return "ALREADY_EXISTS";
    case StatusCode::permission_denied: return "PERMISSION_DENIED";
    case StatusCode::resource_exhausted: return "RESOURCE_EXHAUSTED";
    case StatusCode::failed_precondition: return "FAILED_PRECONDITION";
    case StatusCode::aborted: return "ABORTED";
    case StatusCode::out_of_range: return "OUT_OF_RANGE";
    case StatusCode::unimplemented: return "UNIMPLEMENTED";
    case StatusCode::internal: return "INTERNAL";
    case StatusCode::unavailable: return "UNAVAILABLE";
    case StatusCode::data_loss: return "DATA_LOSS";
    case StatusCode::unauthenticated: return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

Error::Error(StatusCode code, std::string message)
    : std::runtime_error(std::string()), code_(code), message_(std::move(message)) {
  update_what();
}

void Error::set_detail(std::string cause, std::string hresult_symbol, std::uint32_t hresult_value,
                       std::uint32_t http_status, std::vector<Header> http_headers,
                       std::uint32_t required_size) {
  cause_ = std::move(cause);
  hresult_symbol_ = std::move(hresult_symbol);
  hresult_value_ = hresult_value;
  http_status_ = http_status;
  http_headers_ = std::move(http_headers);
  required_size_ = required_size;
  has_detail_ = true;
  update_what();
}

void Error::update_what() {
  what_ = std::string(code_name()) + ": " + message_;
  if (!cause_.empty()) what_ += " [" + cause_ + "]";
  if (!hresult_symbol_.empty()) what_ += " [" + hresult_symbol_ + "]";
  if (http_status_ != 0) what_ += " [HTTP " + std::to_string(http_status_) + "]";
  static_cast<std::runtime_error&>(*this) = std::runtime_error(what_);
}

namespace detail {

Error to_error(const grpc::Status& status) {
  Error error(static_cast<StatusCode>(status.error_code()), status.error_message());
  const std::string& bin = status.error_details();
  if (bin.empty()) return error;
  google::rpc::Status rpc;
  if (!rpc.ParseFromString(bin)) return error;
  for (const auto& any : rpc.details()) {
    v1::ErrorDetail detail;
    if (!any.UnpackTo(&detail)) continue;
    std::vector<Header> headers;
    for (const auto& h : detail.http_headers()) headers.emplace_back(h.name(), h.value());
    error.set_detail(detail.cause(), detail.hresult_symbol(), detail.hresult_value(),
                     detail.http_status(), std::move(headers), detail.required_size());
    break;
  }
  return error;
}

}  // namespace detail
}  // namespace wsgate
