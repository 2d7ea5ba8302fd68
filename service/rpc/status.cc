#include "service/rpc/status.h"

#include <string>

#include "google/rpc/status.pb.h"

namespace wsgate::rpc {

grpc::StatusCode status_code_for(const session::Failure& f) {
  switch (f.cause) {
    case session::Cause::bad_request:
    case session::Cause::tls_error:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case session::Cause::destination_denied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case session::Cause::connect_timeout:
    case session::Cause::handshake_timeout:
    case session::Cause::ping_timeout:
    case session::Cause::close_timeout:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case session::Cause::upgrade_refused:
      return f.http_status >= 500 ? grpc::StatusCode::UNAVAILABLE
                                  : grpc::StatusCode::FAILED_PRECONDITION;
    case session::Cause::handshake_rejected:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case session::Cause::protocol_violation:
      return grpc::StatusCode::DATA_LOSS;
    case session::Cause::message_too_big:
    case session::Cause::fd_limit:
    case session::Cause::memory_budget:
    case session::Cause::session_limit:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case session::Cause::tls_version_mismatch:
      return grpc::StatusCode::FAILED_PRECONDITION;
    // HTTP proxy: a refusal is the proxy's policy (PERMISSION_DENIED) unless it says it could not
    // reach the server (5xx: UNAVAILABLE); 407 asks for credentials.
    case session::Cause::proxy_refused:
      return f.http_status >= 500 ? grpc::StatusCode::UNAVAILABLE
                                  : grpc::StatusCode::PERMISSION_DENIED;
    case session::Cause::proxy_auth_required:
      return grpc::StatusCode::UNAUTHENTICATED;
    case session::Cause::proxy_connect_failed:
      return grpc::StatusCode::UNAVAILABLE;
    case session::Cause::proxy_timeout:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case session::Cause::none:
    case session::Cause::dns_failure:
    case session::Cause::connection_refused:
    case session::Cause::network_error:
    case session::Cause::tls_handshake_failed:
    case session::Cause::connection_lost:
    case session::Cause::shutdown:
      return grpc::StatusCode::UNAVAILABLE;
  }
  return grpc::StatusCode::UNKNOWN;
}

wsgate::v1::ErrorDetail failure_detail(const session::Failure& f) {
  wsgate::v1::ErrorDetail d = f.engine_result
                                   ? hresult_detail(*f.engine_result, session::to_string(f.cause))
                                   : wsgate::v1::ErrorDetail{};
  d.set_cause(session::to_string(f.cause));
  d.set_http_status(static_cast<std::uint32_t>(f.http_status));
  for (const auto& [name, value] : f.http_headers) {
    auto* h = d.add_http_headers();
    h->set_name(name);
    h->set_value(value);
  }
  return d;
}


grpc::StatusCode status_code_for(ws::Result result) {
  switch (result) {
    case ws::Result::ok: return grpc::StatusCode::OK;
    case ws::Result::invalid_arg: return grpc::StatusCode::INVALID_ARGUMENT;
    case ws::Result::out_of_memory: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case ws::Result::insufficient_buffer: return grpc::StatusCode::OUT_OF_RANGE;
    case ws::Result::invalid_operation: return grpc::StatusCode::FAILED_PRECONDITION;
    case ws::Result::invalid_protocol_operation: return grpc::StatusCode::FAILED_PRECONDITION;
    case ws::Result::invalid_protocol_format: return grpc::StatusCode::DATA_LOSS;
    case ws::Result::extensions_not_supported: return grpc::StatusCode::UNIMPLEMENTED;
    case ws::Result::subprotocol_not_supported: return grpc::StatusCode::UNIMPLEMENTED;
    case ws::Result::protocol_version_not_supported: return grpc::StatusCode::UNIMPLEMENTED;
    case ws::Result::numeric_overflow: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case ws::Result::fail: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::INTERNAL;
}

std::string_view status_code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

std::string_view engine_cause(ws::Result result) {
  switch (result) {
    case ws::Result::ok: return "ok";
    case ws::Result::invalid_arg: return "invalid_arg";
    case ws::Result::out_of_memory: return "out_of_memory";
    case ws::Result::insufficient_buffer: return "insufficient_buffer";
    case ws::Result::invalid_operation: return "invalid_operation";
    case ws::Result::invalid_protocol_operation: return "invalid_protocol_operation";
    case ws::Result::invalid_protocol_format: return "invalid_protocol_format";
    case ws::Result::extensions_not_supported: return "extensions_not_supported";
    case ws::Result::subprotocol_not_supported: return "subprotocol_not_supported";
    case ws::Result::protocol_version_not_supported: return "protocol_version_not_supported";
    case ws::Result::numeric_overflow: return "numeric_overflow";
    case ws::Result::fail: return "fail";
  }
  return "fail";
}

wsgate::v1::ErrorDetail hresult_detail(ws::Result result, std::string_view cause) {
  wsgate::v1::ErrorDetail detail;
  detail.set_hresult_symbol(std::string(ws::symbol(result)));
  detail.set_hresult_value(ws::numeric_value(result, ws::NumericTable::dotnet));
  detail.set_cause(std::string(cause));
  return detail;
}

grpc::Status engine_status(ws::Result result, std::string_view message) {
  return error_status(status_code_for(result), message,
                      hresult_detail(result, engine_cause(result)));
}

grpc::Status error_status(grpc::StatusCode code, std::string_view message,
                          const wsgate::v1::ErrorDetail& detail) {
  google::rpc::Status status;
  status.set_code(static_cast<int>(code));
  status.set_message(std::string(message));
  status.add_details()->PackFrom(detail);
  return grpc::Status(code, std::string(message), status.SerializeAsString());
}

}  // namespace wsgate::rpc
