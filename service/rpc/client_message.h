// The ClientMessage -> engine translation of the Gateway service, as pure code: no socket, no
// gRPC call, no clock. GatewaySession (gateway_service.cc) feeds it what the client sent and
// acts on the result; the unit tests and the libFuzzer target (tests/fuzz/client_message_fuzz.cc)
// drive it directly.
//
//  - validate_open() checks a whole `Open` before any network I/O (URL, subprotocol tokens,
//    extension strings, extra headers, the request head's size, TLS material parsed by OpenSSL,
//    the proxy) and turns it into the session's settings and the transport's options. Errors
//    name the offending field and index, e.g. "open.headers[3].name: ...".
//  - ClientMessageTranslator turns each later ClientMessage into the OutgoingMessage the
//    connection sends upstream, keeping the state that spans messages (an open fragmented
//    message, its UTF-8 validation, whether the client has sent its close).
//
// Lifetime and thread safety: validate_open() is a pure function, safe from any thread. A
// ClientMessageTranslator is a value owned by one session; it has no locking of its own (the
// session calls it under its mutex).
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "service/net/upstream_connection.h"
#include "service/ws/utf8.h"
#include "wsgate/v1/gateway.pb.h"

namespace wsgate::rpc {

class FdBudget;  // fd_budget.h

// The daemon's defaults and ceilings for sessions (from its configuration): the session tuning
// (timeouts and limits, whose defaults session::Tuning holds) plus what bounds an Open.
struct GatewayDefaults : session::Tuning {
  std::uint64_t max_message_bytes_ceiling = 64u << 20;
  // The upgrade request a client may ask for: extra headers, and the bytes of its extra
  // headers, subprotocols and extensions together (limits.max_request_headers and
  // limits.max_request_header_bytes).
  std::uint32_t max_request_headers = 64;
  std::uint32_t max_request_header_bytes = 16384;
  // Payload bytes all sessions together may hold in memory (limits.memory_budget_bytes): see
  // net::MemoryBudget.
  std::uint64_t memory_budget_bytes = 256u << 20;
  std::string default_ca_file;
  bool allow_client_file_paths = false;
  // HTTP CONNECT proxies: the daemon's choice for sessions that name none (proxy.* and the
  // environment; null: always direct), and whether Open.proxy may name a proxy URL
  // (proxy.allow_session_proxies; "direct" is always allowed).
  std::shared_ptr<const net::ProxySelector> proxy;
  bool allow_session_proxies = false;
  // Refuses new sessions (RESOURCE_EXHAUSTED, cause fd_limit) when fds run short; null: never.
  std::shared_ptr<FdBudget> fd_budget;
  // Happy Eyeballs' delay between connection attempts (timeouts.connection_attempt_delay_ms).
  std::chrono::milliseconds connection_attempt_delay{250};
};

// A refusal: the status code, ErrorDetail.cause and a message naming the field.
struct Refusal {
  grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT;
  std::string cause = "bad_request";
  std::string message;
};

struct OpenValidation {
  // Set when valid: the session's settings (budget and trace not filled in).
  std::optional<session::Settings> settings;
  // When valid: the transport's options (policy and admit_address not filled in).
  net::ConnectOptions connect;
  Refusal refusal;  // set when !settings
};

// Validates `open` against the daemon's defaults and builds the session's settings and the
// connection's options. For a wss:// URL the TLS context is made here (OpenSSL parses the PEM
// text and reads the files the configuration allows), so a bad certificate is refused before
// any connect.
OpenValidation validate_open(const wsgate::v1::Open& open, const GatewayDefaults& defaults);

// Is `s` a valid Sec-WebSocket-Extensions element for one extension: a token name followed by
// `; param[=value]` parameters (value a token or a quoted string)? No comma: one extension.
bool is_valid_extension_offer(std::string_view s);

class ClientMessageTranslator {
 public:
  struct Result {
    enum class Kind { send, close, refuse };
    Kind kind = Kind::refuse;
    net::OutgoingMessage message;  // send, close
    Refusal refusal;               // refuse
  };

  // Translates a message sent after `open` succeeded. Payloads are moved out of `in` (it is
  // reused for the next read), not copied. After a refusal the session ends; the translator
  // must not be used again.
  Result translate(wsgate::v1::ClientMessage& in);

  bool close_sent() const noexcept { return close_sent_; }

 private:
  bool fragment_open_ = false;
  bool fragment_text_ = false;
  bool close_sent_ = false;
  ws::Utf8Validator fragment_utf8_;
};

}  // namespace wsgate::rpc
