// The Admin service: sessions and stats, read from the SessionRegistry. Stats are live (the
// registry's totals(): ended sessions plus the live ones' counters); session URLs are redacted
// (service/log/redact.h) unless log.redact is off.
// Lifetime: owned by the Server; the registry and ProtocolComponent service must outlive it.
// Thread safety: stateless apart from those references; safe from any gRPC thread (so must
// `authorize` be).
#pragma once

#include <functional>

#include "service/rpc/session_registry.h"
#include "wsgate/v1/admin.grpc.pb.h"

namespace wsgate::rpc {

class AdminService final : public wsgate::v1::Admin::CallbackService {
 public:
  // Decides whether a caller may use Admin (OK, or the status to refuse with).
  using Authorize = std::function<grpc::Status(const grpc::CallbackServerContext&)>;
  // `protocol_handles` reports how many ProtocolComponent handles exist (for stats);
  // `authorize` (empty: everyone) runs before each RPC, on the gRPC thread.
  AdminService(SessionRegistry& registry, std::function<std::uint64_t()> protocol_handles,
               Authorize authorize = {});

  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* context,
                                         const wsgate::v1::ListSessionsRequest* request,
                                         wsgate::v1::ListSessionsResponse* response) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const wsgate::v1::GetStatsRequest* request,
                                     wsgate::v1::GetStatsResponse* response) override;

 private:
  SessionRegistry& registry_;
  std::function<std::uint64_t()> protocol_handles_;
  Authorize authorize_;
};

}  // namespace wsgate::rpc
