// The value types of one gateway session, shared by the sans-I/O SessionMachine, the Asio
// transport (service/net) and the gRPC reactor (service/rpc). Written once here; service/net
// re-exports them under their old names (net::Cause, net::Failure, ...).
//
// Lifetime and thread safety: plain values; one thread at a time per object.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "service/net/memory_budget.h"
#include "service/net/url.h"
#include "service/session/trace.h"
#include "service/ws/error.h"
#include "service/ws/types.h"

namespace wsgate::session {

// A close code as a number, named by ws::CloseStatus (no bare close codes elsewhere).
constexpr std::uint16_t close_code(ws::CloseStatus s) { return static_cast<std::uint16_t>(s); }
// 1013 "Try Again Later" (IANA WebSocket close code registry; not in websocket.h's enum).
inline constexpr std::uint16_t kTryAgainLater = 1013;

using Headers = std::vector<std::pair<std::string, std::string>>;

// Why a session failed or closed abnormally; the strings (to_string) are ErrorDetail.cause
// values.
enum class Cause {
  none,
  bad_request,
  destination_denied,
  dns_failure,
  connection_refused,
  connect_timeout,
  network_error,
  tls_error,
  tls_handshake_failed,
  handshake_timeout,
  upgrade_refused,
  handshake_rejected,
  protocol_violation,
  message_too_big,
  memory_budget,
  session_limit,
  tls_version_mismatch,
  connection_lost,
  ping_timeout,
  close_timeout,
  shutdown,
  fd_limit,  // the daemon is out of file descriptors (EMFILE/ENFILE)
  // HTTP CONNECT proxy (service/net/http_proxy.h): the proxy answered CONNECT with a non-2xx
  // status other than 407/401; answered 407 (or 401); could not be reached (or did not speak
  // HTTP); did not set up the tunnel within the connect timeout.
  proxy_refused,
  proxy_auth_required,
  proxy_connect_failed,
  proxy_timeout,
};
const char* to_string(Cause cause);

struct Failure {
  Failure() = default;
  Failure(Cause c, std::string m) : cause(c), message(std::move(m)) {}

  Cause cause = Cause::none;
  std::string message;
  std::optional<ws::Result> engine_result;  // handshake_rejected, protocol_violation
  // upgrade_refused: the server's answer; proxy_refused, proxy_auth_required: the proxy's.
  int http_status = 0;
  Headers http_headers;
};

struct OpenInfo {
  std::string subprotocol;
  std::vector<std::string> extensions;
  int http_status = 101;
  Headers response_headers;
  // How long the open took: resolve + TCP connect, then TLS + HTTP upgrade (the metrics'
  // connect and handshake latency histograms).
  std::chrono::milliseconds connect_time{0};
  std::chrono::milliseconds handshake_time{0};
};

enum class Initiator { client, server, gateway };

struct CloseInfo {
  std::uint16_t code = static_cast<std::uint16_t>(ws::CloseStatus::aborted);
  std::string reason;
  Initiator initiator = Initiator::server;
  bool clean = false;
  std::optional<Failure> failure;  // set when the gateway closed because something went wrong
};

// Outgoing application data, owned by the session until written.
struct OutgoingMessage {
  enum class Kind { text, binary, text_fragment, binary_fragment, ping, pong, close };
  Kind kind = Kind::binary;
  std::string data;      // payload, or the close reason
  bool final = true;     // fragments: the message's last one
  std::uint16_t close_code = 0;  // close: 0 = no status
  net::BudgetCharge charge;  // the payload's bytes against the daemon's budget; released with it
  std::string deflated;  // set by the session: the payload as compressed on the wire (RSV1)
};

// permessage-deflate (RFC 7692), offered when `enabled` (service/session/per_message_deflate.h).
// The defaults are the daemon's ([compression] in the configuration); Open.compression overrides.
struct CompressionSettings {
  bool enabled = false;
  bool client_no_context_takeover = false;  // offer: we reset our compressor after each message
  bool server_no_context_takeover = false;  // offer: ask the server to reset its compressor
  std::uint32_t server_max_window_bits = 0;  // offer 8..15; 0: not offered (the server picks)
  // Offered with this value, 9..15 (zlib cannot deflate with 8); 0: offered without a value,
  // so the server may pick any.
  std::uint32_t client_max_window_bits = 0;
  std::uint32_t threshold_bytes = 128;  // smaller messages go out uncompressed
};

// The timeouts and limits of a session, with the session defaults (written once, here). The
// Gateway's defaults (rpc::GatewayDefaults) are these plus their ceilings; config.h keeps the
// daemon's configuration defaults, and server.cc builds GatewayDefaults from the configuration.
struct Tuning {
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds close_timeout{5000};
  std::chrono::milliseconds keepalive_interval{30000};  // unsolicited pong when idle; 0: off
  std::chrono::milliseconds ping_timeout{0};  // >0: ping when idle, fail if no pong in time
  std::chrono::milliseconds idle_timeout{0};  // >0: close (1001) after this long without messages
  std::uint64_t max_message_bytes = 16u << 20;
  std::uint64_t max_queued_bytes = 8u << 20;  // client -> upstream bytes not yet written
  std::uint32_t max_header_bytes = 16384;
  CompressionSettings compression;
};

// What one session may do: the daemon's tuning after the client's Open is applied, and what the
// client asked for.
struct Settings : Tuning {
  net::WebSocketUrl url;
  std::vector<std::string> subprotocols;
  std::vector<std::string> extensions;
  Headers headers;  // extra request headers (validated by the caller: rpc::validate_open)
  bool stream_fragments = false;
  // The daemon-wide budget incoming messages are charged to while they are assembled (the
  // charge goes to the client with the message); nullptr: none.
  std::shared_ptr<net::MemoryBudget> budget;
  // Where the session's decisions and frames are reported (trace.h); nullptr: nowhere.
  std::shared_ptr<SessionTrace> trace;
  // The HTTP proxy ("host:port") the transport tunnels through; empty: direct. The connect
  // timeout then covers reaching the proxy and its answer to CONNECT, and is reported as
  // proxy_timeout naming it.
  std::string proxy_name;
};

}  // namespace wsgate::session
