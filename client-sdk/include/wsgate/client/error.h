// wsgate::Error: the one exception type of the wsgate client SDK.
//
// Every failed call of Client, Session and ProtocolClient throws a wsgate::Error built from the
// gRPC status the daemon (or the gRPC library) returned, including the wsgate.v1.ErrorDetail
// that wsgated attaches to every non-OK status (google.rpc.Status in the
// grpc-status-details-bin trailer).
//
// Lifetime / thread safety: a value type; copies are independent; const methods may be called
// from any thread.
#ifndef WSGATE_CLIENT_ERROR_H_
#define WSGATE_CLIENT_ERROR_H_

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsgate {

// The gRPC status codes (same numbers as grpc::StatusCode).
enum class StatusCode : int {
  ok = 0,
  cancelled = 1,
  unknown = 2,
  invalid_argument = 3,
  deadline_exceeded = 4,
  not_found = 5,
  already_exists = 6,
  permission_denied = 7,
  resource_exhausted = 8,
  failed_precondition = 9,
  aborted = 10,
  out_of_range = 11,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
  data_loss = 15,
  unauthenticated = 16,
};

// "INVALID_ARGUMENT", ... (the gRPC spelling).
std::string_view status_code_name(StatusCode code) noexcept;

using Header = std::pair<std::string, std::string>;

class Error : public std::runtime_error {
 public:
  // `message`: the status message. The detail fields default to empty / 0 (no ErrorDetail).
  Error(StatusCode code, std::string message);

  StatusCode code() const noexcept { return code_; }
  std::string_view code_name() const noexcept { return status_code_name(code_); }
  // The status message (what() is "CODE_NAME: message [cause]").
  const std::string& message() const noexcept { return message_; }

  // ErrorDetail.cause: "connection_refused", "dns_failure", "upgrade_refused", ...; empty when
  // the status carried no ErrorDetail (e.g. the daemon is unreachable: UNAVAILABLE).
  const std::string& cause() const noexcept { return cause_; }
  // Engine failures: the HRESULT symbol ("E_INVALID_PROTOCOL_FORMAT") and its value in the
  // .NET numeric table (0 when the failure did not come from the engine).
  const std::string& hresult_symbol() const noexcept { return hresult_symbol_; }
  std::uint32_t hresult_value() const noexcept { return hresult_value_; }
  // A refused upgrade (cause "upgrade_refused"): the HTTP status and headers the server sent.
  std::uint32_t http_status() const noexcept { return http_status_; }
  const std::vector<Header>& http_headers() const noexcept { return http_headers_; }
  // GetGlobalProperty with a buffer that is too small (OUT_OF_RANGE): the size needed.
  std::uint32_t required_size() const noexcept { return required_size_; }
  // True when the status carried a wsgate.v1.ErrorDetail.
  bool has_detail() const noexcept { return has_detail_; }

  // Fills the detail fields (used by the SDK when it parses a status).
  void set_detail(std::string cause, std::string hresult_symbol, std::uint32_t hresult_value,
                  std::uint32_t http_status, std::vector<Header> http_headers,
                  std::uint32_t required_size);

 private:
  void update_what();
  StatusCode code_;
  std::string message_;
  std::string cause_;
  std::string hresult_symbol_;
  std::uint32_t hresult_value_ = 0;
  std::uint32_t http_status_ = 0;
  std::vector<Header> http_headers_;
  std::uint32_t required_size_ = 0;
  bool has_detail_ = false;
  std::string what_;
};

}  // namespace wsgate

#endif  // WSGATE_CLIENT_ERROR_H_
