#include "wsgate/client/protocol_client.h"

#include "src/internal.h"
#include "wsgate/v1/protocol_component.grpc.pb.h"

namespace wsgate {

struct ProtocolClient::Impl {
  std::shared_ptr<detail::ClientCore> core;
  std::unique_ptr<v1::ProtocolComponent::Stub> stub;

  template <typename Req, typename Resp, typename Method>
  Resp call(Method method, const Req& request, std::optional<Deadline> deadline) const {
    grpc::ClientContext context;
    core->prepare(context, deadline ? *deadline : core->default_deadline());
    Resp response;
    grpc::Status status = ((*stub).*method)(&context, request, &response);
    if (!status.ok()) throw detail::to_error(status);
    return response;
  }
};

ProtocolClient::ProtocolClient(const Client& client) : impl_(std::make_shared<Impl>()) {
  impl_->core = client.core();
  impl_->stub = v1::ProtocolComponent::NewStub(impl_->core->channel);
}

using Stub = v1::ProtocolComponent::Stub;

v1::CreateHandleResponse ProtocolClient::create_client_handle(const v1::CreateHandleRequest& r,
                                                              std::optional<Deadline> d) const {
  return impl_->call<v1::CreateHandleRequest, v1::CreateHandleResponse>(&Stub::CreateClientHandle,
                                                                        r, d);
}
v1::CreateHandleResponse ProtocolClient::create_server_handle(const v1::CreateHandleRequest& r,
                                                              std::optional<Deadline> d) const {
  return impl_->call<v1::CreateHandleRequest, v1::CreateHandleResponse>(&Stub::CreateServerHandle,
                                                                        r, d);
}
v1::BeginClientHandshakeResponse ProtocolClient::begin_client_handshake(
    const v1::BeginClientHandshakeRequest& r, std::optional<Deadline> d) const {
  return impl_->call<v1::BeginClientHandshakeRequest, v1::BeginClientHandshakeResponse>(
      &Stub::BeginClientHandshake, r, d);
}
v1::EndClientHandshakeResponse ProtocolClient::end_client_handshake(
    const v1::EndClientHandshakeRequest& r, std::optional<Deadline> d) const {
  return impl_->call<v1::EndClientHandshakeRequest, v1::EndClientHandshakeResponse>(
      &Stub::EndClientHandshake, r, d);
}
v1::BeginServerHandshakeResponse ProtocolClient::begin_server_handshake(
    const v1::BeginServerHandshakeRequest& r, std::optional<Deadline> d) const {
  return impl_->call<v1::BeginServerHandshakeRequest, v1::BeginServerHandshakeResponse>(
      &Stub::BeginServerHandshake, r, d);
}
void ProtocolClient::end_server_handshake(std::uint64_t handle, std::optional<Deadline> d) const {
  v1::HandleRequest r;
  r.set_handle(handle);
  impl_->call<v1::HandleRequest, v1::Empty>(&Stub::EndServerHandshake, r, d);
}
void ProtocolClient::send(const v1::SendRequest& r, std::optional<Deadline> d) const {
  impl_->call<v1::SendRequest, v1::Empty>(&Stub::Send, r, d);
}
void ProtocolClient::receive(const v1::ReceiveRequest& r, std::optional<Deadline> d) const {
  impl_->call<v1::ReceiveRequest, v1::Empty>(&Stub::Receive, r, d);
}
v1::GetActionResponse ProtocolClient::get_action(const v1::GetActionRequest& r,
                                                 std::optional<Deadline> d) const {
  return impl_->call<v1::GetActionRequest, v1::GetActionResponse>(&Stub::GetAction, r, d);
}
void ProtocolClient::complete_action(const v1::CompleteActionRequest& r,
                                     std::optional<Deadline> d) const {
  impl_->call<v1::CompleteActionRequest, v1::Empty>(&Stub::CompleteAction, r, d);
}
void ProtocolClient::abort_handle(std::uint64_t handle, std::optional<Deadline> d) const {
  v1::HandleRequest r;
  r.set_handle(handle);
  impl_->call<v1::HandleRequest, v1::Empty>(&Stub::AbortHandle, r, d);
}
void ProtocolClient::delete_handle(std::uint64_t handle, std::optional<Deadline> d) const {
  v1::HandleRequest r;
  r.set_handle(handle);
  impl_->call<v1::HandleRequest, v1::Empty>(&Stub::DeleteHandle, r, d);
}
v1::GetGlobalPropertyResponse ProtocolClient::get_global_property(
    const v1::GetGlobalPropertyRequest& r, std::optional<Deadline> d) const {
  return impl_->call<v1::GetGlobalPropertyRequest, v1::GetGlobalPropertyResponse>(
      &Stub::GetGlobalProperty, r, d);
}

}  // namespace wsgate
