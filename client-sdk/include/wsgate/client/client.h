// wsgate::Client: a connection to the wsgated daemon (gRPC over a local unix socket).
//
// Address resolution (first match wins): ClientOptions::address; the WSGATE_ADDRESS environment
// variable; "unix:/run/wsgate/wsgated.sock" when running as root; otherwise
// "unix:$XDG_RUNTIME_DIR/wsgate/wsgated.sock" (or "unix:/tmp/wsgate-<uid>/wsgated.sock" when
// XDG_RUNTIME_DIR is unset, as the daemon does). An address is a gRPC target: "unix:/path",
// "unix:///path", or "host:port" for a daemon also listening on TCP; a bare absolute path is
// taken as a unix socket path.
//
// Lifetime: a Client is a cheap handle on a shared gRPC channel (one connection to the daemon of
// its own); copies share it. Sessions and
// ProtocolClients made from a Client keep the channel alive on their own, so the Client may be
// destroyed first. Creating a Client does not connect; the channel connects lazily (use
// wait_ready() to check that the daemon answers).
//
// Thread safety: every method is safe to call concurrently from any thread.
#ifndef WSGATE_CLIENT_CLIENT_H_
#define WSGATE_CLIENT_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wsgate/client/error.h"
#include "wsgate/v1/admin.pb.h"

namespace wsgate {

using Clock = std::chrono::system_clock;
using Deadline = Clock::time_point;

// A deadline `timeout` from now.
inline Deadline deadline_after(std::chrono::milliseconds timeout) { return Clock::now() + timeout; }

struct ClientOptions {
  // gRPC target; empty: $WSGATE_ADDRESS, then the default socket path (see above).
  std::string address;
  // Deadline of each unary call (Admin, ProtocolComponent) made without an explicit one.
  std::chrono::milliseconds default_timeout{30000};
  // Sent as the "wsgate-client-id" metadata. On the unix socket the daemon scopes
  // ProtocolComponent handles to the caller's connection (each Client has its own) and ignores
  // it; over TCP handles are scoped to the peer plus this id. Empty: a random id per Client (so
  // two Clients never see each other's handles either way).
  std::string client_id;
  // Largest gRPC message accepted or sent (bytes).
  int max_message_bytes = 64 << 20;
};

// The address the rules above give for `options_address` (may be empty).
std::string resolve_address(const std::string& options_address = {});

namespace detail {
struct ClientCore;
}

class Client {
 public:
  explicit Client(ClientOptions options = {});

  // The resolved gRPC target.
  const std::string& address() const;
  const ClientOptions& options() const;

  // Waits until the channel is connected and the daemon's grpc.health.v1.Health service answers
  // SERVING (a daemon without the health service counts as ready once connected). Returns false
  // when `deadline` passes first. Never throws.
  bool wait_ready(Deadline deadline) const;

  // Admin service.
  v1::GetStatsResponse get_stats() const;
  v1::ListSessionsResponse list_sessions() const;

  // Internal: the shared channel state (used by Session and ProtocolClient).
  const std::shared_ptr<detail::ClientCore>& core() const { return core_; }

 private:
  std::shared_ptr<detail::ClientCore> core_;
};

}  // namespace wsgate

#endif  // WSGATE_CLIENT_CLIENT_H_
