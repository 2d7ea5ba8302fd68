// grpc.reflection.v1.ServerReflection, beside the v1alpha service that gRPC 1.51's reflection
// plugin registers (it has no v1). Newer clients (grpcurl >= 1.8.8, grpcui, Postman) ask v1
// first; the answers are the same as v1alpha's, read from protobuf's generated descriptor pool
// (every message and service linked into wsgated, including grpc.health.v1 via
// wsgate_grpc_std_proto).
//
// Lifetime: registered with the grpc::ServerBuilder and owned by the Server, which outlives the
// grpc::Server. Thread safety: stateless apart from the immutable service list; gRPC may run
// any number of streams at once.
#pragma once

#include <string>
#include <vector>

#include "grpc/reflection/v1/reflection.grpc.pb.h"

namespace wsgate::daemon {

class ReflectionV1Service final : public grpc::reflection::v1::ServerReflection::Service {
 public:
  // `services`: the full names list_services answers with.
  explicit ReflectionV1Service(std::vector<std::string> services) : services_(std::move(services)) {}

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<grpc::reflection::v1::ServerReflectionResponse,
                               grpc::reflection::v1::ServerReflectionRequest>* stream) override;

 private:
  std::vector<std::string> services_;
};

}  // namespace wsgate::daemon
