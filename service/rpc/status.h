// The one place where failures become grpc::Status.
//
// Every non-OK status wsgated returns carries a wsgate.v1.ErrorDetail: it is packed into a
// google.rpc.Status{code, message, details = [Any(ErrorDetail)]}, which is serialized into
// grpc::Status's error_details, so clients read it from the `grpc-status-details-bin` trailer.
//
// Status mapping for engine results (the comment of proto/wsgate/v1/protocol_component.proto):
//   E_INVALIDARG                                  INVALID_ARGUMENT
//   E_INVALID_OPERATION, E_INVALID_PROTOCOL_OPERATION  FAILED_PRECONDITION
//   E_INVALID_PROTOCOL_FORMAT                     DATA_LOSS
//   E_PROTOCOL_EXTENSIONS_NOT_SUPPORTED, E_SUBPROTOCOL_NOT_SUPPORTED,
//   E_PROTOCOL_VERSION_NOT_SUPPORTED              UNIMPLEMENTED
//   HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER) OUT_OF_RANGE
//   E_OUTOFMEMORY, E_NUMERIC_OVERFLOW             RESOURCE_EXHAUSTED
//   E_FAIL                                        INTERNAL
//
// Thread safety: all functions are pure and safe from any thread.
#pragma once

#include <grpcpp/support/status.h>

#include <string_view>

#include "service/session/types.h"
#include "service/ws/error.h"
#include "wsgate/v1/common.pb.h"

namespace wsgate::rpc {

// The gRPC status for an engine result (never called with Result::ok): the code per the proto's
// mapping, the message, and an ErrorDetail (hresult_symbol, hresult_value in the .NET table,
// cause) packed into google.rpc.Status.details, serialized into grpc::Status's error_details.
// The cause is the engine's name of the result, e.g. "invalid_protocol_format" (see
// engine_cause()).
grpc::Status engine_status(ws::Result result, std::string_view message);

// Any other failure: a code, a message and a detail.
grpc::Status error_status(grpc::StatusCode code, std::string_view message,
                          const wsgate::v1::ErrorDetail& detail);

// The status code of an engine result (OK for Result::ok).
grpc::StatusCode status_code_for(ws::Result result);

// A session failure (service/session/types.h): the status code for its cause (the one table
// of Cause -> code) and the ErrorDetail a client reads (cause, engine result, HTTP status and
// headers of a refused upgrade).
grpc::StatusCode status_code_for(const session::Failure& failure);
wsgate::v1::ErrorDetail failure_detail(const session::Failure& failure);

// The canonical upper-case name of a status code: "UNAVAILABLE", ...; "UNKNOWN" for a value
// that is not a gRPC status code.
std::string_view status_code_name(grpc::StatusCode code);

// The ErrorDetail.cause engine_status() uses: the result's name in the engine's vocabulary
// ("invalid_arg", "invalid_operation", "invalid_protocol_format", ...). Stable.
std::string_view engine_cause(ws::Result result);

// An ErrorDetail naming `result`'s HRESULT (symbol and .NET value) with `cause`. For failures
// found outside the engine that correspond to an HRESULT (e.g. a bad enum is E_INVALIDARG).
wsgate::v1::ErrorDetail hresult_detail(ws::Result result, std::string_view cause);

}  // namespace wsgate::rpc
