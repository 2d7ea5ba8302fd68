// The Gateway service: one bidirectional gRPC stream per upstream WebSocket session.
//
// Each Connect() call gets a GatewaySession, which is at once the gRPC reactor and the observer
// of its net::UpstreamConnection. It validates the client's messages, turns them into
// OutgoingMessages, and turns the connection's events into ServerMessages.
//
// Backpressure: a client message is read only when the connection has room for it
// (max_queued_bytes); the socket is not read while more than max_queued_bytes of ServerMessages
// wait for the gRPC client. Both queues are therefore bounded.
//
// Object lifetime: a GatewaySession is held by shared_ptr. It keeps a reference to itself from
// construction until gRPC's OnDone (the reactor rule: OnDone is the last reaction); the
// connection holds another until its final event. Whichever goes last destroys it.
// Threading rule: reactions run on gRPC threads and call the connection directly; the
// connection runs its session machine in the calling thread (ws://, once connected) and starts
// the upstream write there, and its events (on_open, on_message, room for the next read, ...)
// arrive on whichever thread produced them: a gRPC thread or the Asio thread that completed an
// upstream read. So nothing hops to another thread on the client-to-server path; StartWrite is
// called from the thread that holds the message. All shared state is under the session's mutex;
// no gRPC call and no call into the connection is made while holding it (the connection may
// deliver an event back in the same thread).
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "service/net/destination_policy.h"
#include "service/rpc/fd_budget.h"
#include "service/net/memory_budget.h"
#include "service/rpc/client_message.h"
#include "service/rpc/session_registry.h"
#include "wsgate/v1/gateway.grpc.pb.h"

namespace spdlog {
class logger;
}

namespace wsgate::rpc {

struct GatewayShared;  // gateway_service.cc

class GatewayService final : public wsgate::v1::Gateway::CallbackService {
 public:
  // Every reference must outlive the service and the sessions it creates.
  GatewayService(asio::io_context& io, SessionRegistry& registry, GatewayDefaults defaults,
                 std::shared_ptr<const net::DestinationPolicy> policy,
                 std::shared_ptr<spdlog::logger> logger);

  grpc::ServerBidiReactor<wsgate::v1::ClientMessage, wsgate::v1::ServerMessage>* Connect(
      grpc::CallbackServerContext* context) override;

  // Payload bytes all sessions hold now, both directions (the memory budget's use). Any thread.
  std::uint64_t queued_payload_bytes() const;

 private:
  std::shared_ptr<const GatewayShared> shared_;  // with every session of this service
};

}  // namespace wsgate::rpc
