// wsgate-health: asks a wsgated for its gRPC health (grpc.health.v1.Health/Check, overall
// service "") and exits 0 when the answer is SERVING, 1 otherwise. For container HEALTHCHECKs
// and Kubernetes exec probes, which cannot speak gRPC over a unix socket themselves.
//
//   wsgate-health [TARGET] [--timeout-ms N]
//
// TARGET: a unix socket path, or any gRPC target ("unix:/path", "127.0.0.1:9000").
// Default: $WSGATE_ADDRESS (the daemon's and the clients' variable), else /run/wsgate/wsgated.sock.
//
// The check itself is deploy/health/health_check.h, shared with `wsgate health`.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "health_check.h"

namespace {

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
    const char* env = std::getenv("WSGATE_ADDRESS");
    target = env && *env ? env : "/run/wsgate/wsgated.sock";
  }
  if (target[0] == '/') target = "unix:" + target;

  const wsgate::health::CheckResult result =
      wsgate::health::check(target, std::chrono::milliseconds(timeout_ms));
  if (!result.rpc_ok) {
    std::fprintf(stderr, "wsgate-health: %s: %s\n", target.c_str(), result.error.c_str());
    return 1;
  }
  std::printf("%s: %s\n", target.c_str(), result.name());
  return result.serving_ok() ? 0 : 1;
}
