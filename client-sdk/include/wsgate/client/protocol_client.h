// wsgate::ProtocolClient: the 13 functions of the Windows WebSocket Protocol Component API
// (websocket.h), one method per ProtocolComponent RPC, executed by wsgated's engine.
//
// Requests and responses are the wsgate.v1 protobuf messages (proto/wsgate/v1/
// protocol_component.proto); where the dll hands out pointers, bytes travel instead. Every
// method throws wsgate::Error on failure; Error::hresult_value() is the websocket.h HRESULT
// (.NET numeric table) when the engine refused the call, and Error::code() is NOT_FOUND for an
// unknown, deleted or foreign handle.
//
// Handles are scoped to the caller: the gRPC peer plus ClientOptions::client_id (random per
// Client unless set), so only ProtocolClients made from the same Client (or with the same
// client_id) share handles.
//
// Lifetime: keeps the Client's channel alive; copies share it. Handles live in the daemon until
// DeleteHandle (or until the daemon stops) — destroying a ProtocolClient does not delete them.
// Thread safety: every method may be called concurrently; the daemon serialises calls per handle.
#ifndef WSGATE_CLIENT_PROTOCOL_CLIENT_H_
#define WSGATE_CLIENT_PROTOCOL_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "wsgate/client/client.h"
#include "wsgate/client/error.h"
#include "wsgate/v1/protocol_component.pb.h"

namespace wsgate {

class ProtocolClient {
 public:
  explicit ProtocolClient(const Client& client);

  // Every call uses `deadline` if given, else now + ClientOptions::default_timeout.
  v1::CreateHandleResponse create_client_handle(const v1::CreateHandleRequest& request,
                                                std::optional<Deadline> deadline = {}) const;
  v1::CreateHandleResponse create_server_handle(const v1::CreateHandleRequest& request,
                                                std::optional<Deadline> deadline = {}) const;
  v1::BeginClientHandshakeResponse begin_client_handshake(
      const v1::BeginClientHandshakeRequest& request, std::optional<Deadline> deadline = {}) const;
  v1::EndClientHandshakeResponse end_client_handshake(
      const v1::EndClientHandshakeRequest& request, std::optional<Deadline> deadline = {}) const;
  v1::BeginServerHandshakeResponse begin_server_handshake(
      const v1::BeginServerHandshakeRequest& request, std::optional<Deadline> deadline = {}) const;
  void end_server_handshake(std::uint64_t handle, std::optional<Deadline> deadline = {}) const;
  void send(const v1::SendRequest& request, std::optional<Deadline> deadline = {}) const;
  void receive(const v1::ReceiveRequest& request, std::optional<Deadline> deadline = {}) const;
  v1::GetActionResponse get_action(const v1::GetActionRequest& request,
                                   std::optional<Deadline> deadline = {}) const;
  void complete_action(const v1::CompleteActionRequest& request,
                       std::optional<Deadline> deadline = {}) const;
  void abort_handle(std::uint64_t handle, std::optional<Deadline> deadline = {}) const;
  void delete_handle(std::uint64_t handle, std::optional<Deadline> deadline = {}) const;
  v1::GetGlobalPropertyResponse get_global_property(const v1::GetGlobalPropertyRequest& request,
                                                    std::optional<Deadline> deadline = {}) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace wsgate

#endif  // WSGATE_CLIENT_PROTOCOL_CLIENT_H_
