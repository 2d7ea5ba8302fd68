#include "service/rpc/admin_service.h"

namespace wsgate::rpc {

AdminService::AdminService(SessionRegistry& registry,
                           std::function<std::uint64_t()> protocol_handles)
    : registry_(registry), protocol_handles_(std::move(protocol_handles)) {}

grpc::ServerUnaryReactor* AdminService::ListSessions(grpc::CallbackServerContext* context,
                                                     const wsgate::v1::ListSessionsRequest*,
                                                     wsgate::v1::ListSessionsResponse* response) {
  for (auto& info : registry_.list()) *response->add_sessions() = std::move(info);
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::GetStats(grpc::CallbackServerContext* context,
                                                 const wsgate::v1::GetStatsRequest*,
                                                 wsgate::v1::GetStatsResponse* response) {
  *response = registry_.stats();
  if (protocol_handles_) response->set_protocol_handles(protocol_handles_());
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace wsgate::rpc
