// ProtocolComponentService: the wsgate.v1.ProtocolComponent gRPC service, websocket.h's 13
// functions as RPCs over the sans-I/O engine (service/ws). One RPC is one engine call; the
// engine's semantics (service/ws/README.md) are unchanged, except where the dll hands out
// pointers: there bytes travel instead (see proto/wsgate/v1/protocol_component.proto).
//
// Handles and scoping.
//   - A handle id is 64 bits from OpenSSL's CSPRNG (RAND_bytes), never 0, never reused while
//     live. Ids cannot be listed through any RPC; they are capabilities.
//   - Each handle belongs to the caller that created it. The owner key is context->peer() plus
//     the value of the client metadata "wsgate-client-id" when present (absent and empty are
//     different keys). A call naming a handle whose owner key differs from the caller's gets
//     NOT_FOUND, exactly as an unknown or deleted id does, so a foreign id reveals nothing.
//     For TCP peers the peer string ("ipv4:1.2.3.4:5678") is per connection, so a reconnecting
//     client cannot reach its old handles. For unix-socket peers the peer string is not per
//     connection (every client of the socket gets the same one), hence the optional metadata:
//     clients sharing a socket should send a random "wsgate-client-id" to keep their handles
//     apart. Handles are not reclaimed when a connection goes away; they count against
//     max_handles until DeleteHandle (or the service's destruction).
//   - max_handles live handles at most (all callers together): CreateClientHandle /
//     CreateServerHandle beyond it give RESOURCE_EXHAUSTED (cause "handle_limit").
//
// Buffers the dll requires the app to keep alive are owned by the handle's entry:
//   - Send: the request's bytes (data or close reason) are copied into per-handle storage, kept
//     until that Send's INDICATE_SEND_COMPLETE action is completed (sends complete in FIFO order).
//   - Receive with buffer_length: an app buffer of min(buffer_length, RECEIVE_BUFFER_SIZE) bytes
//     (the engine never fills more than RECEIVE_BUFFER_SIZE bytes of a buffer, so the behaviour is
//     that of the requested length), kept until its INDICATE_RECEIVE_COMPLETE is completed.
//     Without buffer_length the Receive is zero-copy.
//   - RECEIVE_FROM_NETWORK: the engine's buffer descriptor is remembered with its action context;
//     CompleteAction with that context copies `data` into it (more bytes than receive_capacity:
//     INVALID_ARGUMENT and the action stays outstanding; empty data: EOF, i.e. completion with 0).
// SEND_TO_NETWORK buffers and INDICATE_RECEIVE_COMPLETE data are copied into GetActionResponse.
//
// Errors: engine results map through rpc::engine_status (status.h). Failures found here carry an
// ErrorDetail naming the HRESULT the dll would have given: NOT_FOUND (E_INVALIDARG, cause
// "unknown_handle"), INVALID_ARGUMENT for bad enum values, ALLOCATED_BUFFER, oversize data
// (E_INVALIDARG, cause "bad_request"), RESOURCE_EXHAUSTED for the handle limit (E_OUTOFMEMORY,
// cause "handle_limit"), OUT_OF_RANGE with ErrorDetail.required_size for GetGlobalProperty.
//
// Object lifetime: the service owns every handle; DeleteHandle destroys one (after the calls
// already inside it finish); the destructor destroys the rest. The service must outlive the
// grpc::Server it is registered with (shut the server down first).
//
// Thread safety: every method is safe from any thread (gRPC calls them from its callback
// threads). Calls on one handle are serialised by the handle's mutex; calls on different handles
// run in parallel. The table itself is guarded by a mutex held only for lookups and updates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "wsgate/v1/protocol_component.grpc.pb.h"

namespace wsgate::rpc {

class ProtocolComponentService final : public wsgate::v1::ProtocolComponent::CallbackService {
 public:
  // Client metadata key naming the caller inside a shared peer (see above).
  static constexpr const char* kClientIdMetadata = "wsgate-client-id";

  explicit ProtocolComponentService(std::uint32_t max_handles);
  ~ProtocolComponentService() override;
  ProtocolComponentService(const ProtocolComponentService&) = delete;
  ProtocolComponentService& operator=(const ProtocolComponentService&) = delete;

  // Live handles, all callers together (Admin's GetStats.protocol_handles).
  std::size_t handle_count() const;

  grpc::ServerUnaryReactor* CreateClientHandle(grpc::CallbackServerContext* context,
                                               const wsgate::v1::CreateHandleRequest* request,
                                               wsgate::v1::CreateHandleResponse* response) override;
  grpc::ServerUnaryReactor* CreateServerHandle(grpc::CallbackServerContext* context,
                                               const wsgate::v1::CreateHandleRequest* request,
                                               wsgate::v1::CreateHandleResponse* response) override;
  grpc::ServerUnaryReactor* BeginClientHandshake(
      grpc::CallbackServerContext* context, const wsgate::v1::BeginClientHandshakeRequest* request,
      wsgate::v1::BeginClientHandshakeResponse* response) override;
  grpc::ServerUnaryReactor* EndClientHandshake(
      grpc::CallbackServerContext* context, const wsgate::v1::EndClientHandshakeRequest* request,
      wsgate::v1::EndClientHandshakeResponse* response) override;
  grpc::ServerUnaryReactor* BeginServerHandshake(
      grpc::CallbackServerContext* context, const wsgate::v1::BeginServerHandshakeRequest* request,
      wsgate::v1::BeginServerHandshakeResponse* response) override;
  grpc::ServerUnaryReactor* EndServerHandshake(grpc::CallbackServerContext* context,
                                               const wsgate::v1::HandleRequest* request,
                                               wsgate::v1::Empty* response) override;
  grpc::ServerUnaryReactor* Send(grpc::CallbackServerContext* context,
                                 const wsgate::v1::SendRequest* request,
                                 wsgate::v1::Empty* response) override;
  grpc::ServerUnaryReactor* Receive(grpc::CallbackServerContext* context,
                                    const wsgate::v1::ReceiveRequest* request,
                                    wsgate::v1::Empty* response) override;
  grpc::ServerUnaryReactor* GetAction(grpc::CallbackServerContext* context,
                                      const wsgate::v1::GetActionRequest* request,
                                      wsgate::v1::GetActionResponse* response) override;
  grpc::ServerUnaryReactor* CompleteAction(grpc::CallbackServerContext* context,
                                           const wsgate::v1::CompleteActionRequest* request,
                                           wsgate::v1::Empty* response) override;
  grpc::ServerUnaryReactor* AbortHandle(grpc::CallbackServerContext* context,
                                        const wsgate::v1::HandleRequest* request,
                                        wsgate::v1::Empty* response) override;
  grpc::ServerUnaryReactor* DeleteHandle(grpc::CallbackServerContext* context,
                                         const wsgate::v1::HandleRequest* request,
                                         wsgate::v1::Empty* response) override;
  grpc::ServerUnaryReactor* GetGlobalProperty(
      grpc::CallbackServerContext* context, const wsgate::v1::GetGlobalPropertyRequest* request,
      wsgate::v1::GetGlobalPropertyResponse* response) override;

 private:
  struct Entry;  // one handle: owner key, mutex, engine handle, buffers (in the .cc)

  grpc::ServerUnaryReactor* create_handle(grpc::CallbackServerContext* context, bool server,
                                          const wsgate::v1::CreateHandleRequest* request,
                                          wsgate::v1::CreateHandleResponse* response);
  // The entry for `id` if it exists and belongs to the caller; else nullptr.
  std::shared_ptr<Entry> find(std::uint64_t id, const std::string& owner) const;
  // Runs fn(Entry&) -> grpc::Status under the entry's lock, or answers NOT_FOUND.
  template <class Fn>
  grpc::ServerUnaryReactor* with_entry(grpc::CallbackServerContext* context, std::uint64_t id,
                                       Fn&& fn);

  const std::uint32_t max_handles_;
  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Entry>> entries_;
};

}  // namespace wsgate::rpc
