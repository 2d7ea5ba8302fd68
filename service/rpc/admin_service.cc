#include "service/rpc/admin_service.h"

#include "service/log/logging.h"
#include "service/log/redact.h"

namespace wsgate::rpc {
namespace {

// The authorization verdict of an Admin call, at debug (who asked, what, allowed or why not).
void log_verdict(const grpc::CallbackServerContext& context, const char* method, const grpc::Status& verdict) {
  log::log_event(*log::logger("rpc"), spdlog::level::debug, "admin call",
                 {{"method", method}, {"peer", context.peer()},
                  {"verdict", verdict.ok() ? std::string("allowed") : verdict.error_message()}});
}

}  // namespace
}  // namespace wsgate::rpc

namespace wsgate::rpc {

AdminService::AdminService(SessionRegistry& registry,
                           std::function<std::uint64_t()> protocol_handles, Authorize authorize)
    : registry_(registry),
      protocol_handles_(std::move(protocol_handles)),
      authorize_(std::move(authorize)) {}

grpc::ServerUnaryReactor* AdminService::ListSessions(grpc::CallbackServerContext* context,
                                                     const wsgate::v1::ListSessionsRequest*,
                                                     wsgate::v1::ListSessionsResponse* response) {
  auto* reactor = context->DefaultReactor();
  const grpc::Status verdict = authorize_ ? authorize_(*context) : grpc::Status::OK;
  log_verdict(*context, "ListSessions", verdict);
  if (!verdict.ok()) {
    reactor->Finish(verdict);
    return reactor;
  }
  // URLs are redacted (log.redact): Admin callers see where sessions go, not their tokens.
  for (auto& info : registry_.list()) {
    info.set_url(log::redact_url(info.url()));
    *response->add_sessions() = std::move(info);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::GetStats(grpc::CallbackServerContext* context,
                                                 const wsgate::v1::GetStatsRequest*,
                                                 wsgate::v1::GetStatsResponse* response) {
  auto* reactor = context->DefaultReactor();
  const grpc::Status verdict = authorize_ ? authorize_(*context) : grpc::Status::OK;
  log_verdict(*context, "GetStats", verdict);
  if (!verdict.ok()) {
    reactor->Finish(verdict);
    return reactor;
  }
  *response = registry_.stats();
  if (protocol_handles_) response->set_protocol_handles(protocol_handles_());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace wsgate::rpc
