// wsgate-health: asks a wsgated for its gRPC health (grpc.health.v1.Health/Check, overall
// service "") and exits 0 when the answer is SERVING, 1 otherwise. For container HEALTHCHECKs
// and Kubernetes exec probes, which cannot speak gRPC over a unix socket themselves.
//
//   wsgate-health [TARGET] [--timeout-ms N]
//
// TARGET: a unix socket path, or any gRPC target ("unix:/path", "127.0.0.1:9000").
// Default: $WSGATE_SOCKET, else /run/wsgate/wsgated.sock.
//
// No generated code: the request is the empty HealthCheckRequest (zero bytes) and the response
// is HealthCheckResponse { ServingStatus status = 1; } with SERVING == 1, decoded by hand.
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <vector>

namespace {

// Decodes field 1 (varint) of a HealthCheckResponse; -1 if malformed. Absent field: 0 (UNKNOWN).
long long serving_status(const std::string& bytes) {
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

int usage() {
  std::fprintf(stderr, "usage: wsgate-health [SOCKET|TARGET] [--timeout-ms N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string target;
  long timeout_ms = 3000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--timeout-ms" && i + 1 < argc) {
      timeout_ms = std::strtol(argv[++i], nullptr, 10);
      if (timeout_ms <= 0) return usage();
    } else if (arg == "-h" || arg == "--help") {
      usage();
      return 0;
    } else if (!arg.empty() && arg[0] != '-' && target.empty()) {
      target = arg;
    } else {
      return usage();
    }
  }
  if (target.empty()) {
    const char* env = std::getenv("WSGATE_SOCKET");
    target = env && *env ? env : "/run/wsgate/wsgated.sock";
  }
  if (target[0] == '/') target = "unix:" + target;

  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  // HealthCheckRequest{service: ""} encodes to zero bytes (a ByteBuffer of one empty slice:
  // a default-constructed ByteBuffer is not a valid message).
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                 &response, [&done](grpc::Status s) { done.set_value(std::move(s)); });
  const grpc::Status status = done.get_future().get();
  if (!status.ok()) {
    std::fprintf(stderr, "wsgate-health: %s: %s\n", target.c_str(),
                 status.error_message().c_str());
    return 1;
  }
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  const long long serving = serving_status(bytes);
  static const char* const kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  const char* name = serving >= 0 && serving <= 3 ? kNames[serving] : "malformed response";
  std::printf("%s: %s\n", target.c_str(), name);
  return serving == 1 ? 0 : 1;
}
