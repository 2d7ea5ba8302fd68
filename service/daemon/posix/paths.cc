// Default paths on POSIX (config.h).
#include <unistd.h>

#include <cstdlib>

#include "service/daemon/config.h"

namespace wsgate::daemon {

std::string default_socket_path() {
  if (geteuid() == 0) return "/run/wsgate/wsgated.sock";
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime != nullptr && runtime[0] != '\0') return std::string(runtime) + "/wsgate/wsgated.sock";
  return "/tmp/wsgate-" + std::to_string(geteuid()) + "/wsgated.sock";
}

}  // namespace wsgate::daemon
