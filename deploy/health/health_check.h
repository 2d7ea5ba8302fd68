// One grpc.health.v1.Health/Check call (overall service ""), without generated code: the request
// is the empty HealthCheckRequest (zero bytes) and the response is
// HealthCheckResponse { ServingStatus status = 1; } with SERVING == 1, decoded by hand.
// Shared by wsgate-health (wsgate_health.cc) and `wsgate health` (client-sdk/cli/), which must
// give the same answer and exit status. Header-only so that both targets compile it themselves.
#ifndef WSGATE_DEPLOY_HEALTH_CHECK_H_
#define WSGATE_DEPLOY_HEALTH_CHECK_H_

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>

#include <chrono>
#include <future>
#include <string>
#include <vector>

namespace wsgate::health {

// Decodes field 1 (varint) of a HealthCheckResponse; -1 if malformed. Absent field: 0 (UNKNOWN).
inline long long serving_status(const std::string& bytes) {
  long long status = 0;
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto read_varint = [&](unsigned long long& v) {
      v = 0;
      for (int shift = 0; shift < 64 && i < bytes.size(); shift += 7) {
        const auto b = static_cast<unsigned char>(bytes[i++]);
        v |= static_cast<unsigned long long>(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
      }
      return false;
    };
    unsigned long long key = 0, value = 0;
    if (!read_varint(key)) return -1;
    switch (key & 7) {
      case 0:
        if (!read_varint(value)) return -1;
        if ((key >> 3) == 1) status = static_cast<long long>(value);
        break;
      case 2:
        if (!read_varint(value) || value > bytes.size() - i) return -1;
        i += value;
        break;
      default:
        return -1;
    }
  }
  return status;
}

struct CheckResult {
  bool rpc_ok = false;      // the call returned OK
  std::string error;        // its status message otherwise
  long long serving = -1;   // serving_status() of the response
  bool serving_ok() const { return rpc_ok && serving == 1; }
  // "SERVING", "NOT_SERVING", ... or "malformed response".
  const char* name() const {
    static const char* const kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
    return serving >= 0 && serving <= 3 ? kNames[serving] : "malformed response";
  }
};

// `target`: a gRPC target ("unix:/path", "host:port"). Never throws; bounded by `timeout`.
inline CheckResult check(const std::string& target, std::chrono::milliseconds timeout) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  // HealthCheckRequest{service: ""} encodes to zero bytes (a ByteBuffer of one empty slice:
  // a default-constructed ByteBuffer is not a valid message).
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                 &response, [&done](grpc::Status s) { done.set_value(std::move(s)); });
  const grpc::Status status = done.get_future().get();
  CheckResult result;
  if (!status.ok()) {
    result.error = status.error_message();
    return result;
  }
  result.rpc_ok = true;
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  result.serving = serving_status(bytes);
  return result;
}

}  // namespace wsgate::health

#endif  // WSGATE_DEPLOY_HEALTH_CHECK_H_
