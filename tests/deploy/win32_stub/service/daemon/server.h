// Stub of service/daemon/server.h for the mingw-w64 syntax check of service/daemon/win32/
// (tests/deploy/CMakeLists.txt). Same public interface, no gRPC/Asio (not available to the
// cross compiler here). check_win32_stub.py fails when the real header's public methods differ
// from these, so the Windows sources cannot silently drift from Server.
#pragma once

#include <string>

#include "service/daemon/config.h"

namespace wsgate::daemon {

class Server {
 public:
  Server(Config config, std::string config_path);
  ~Server();
  std::string start();
  int run();
  void request_shutdown();
  void set_log_level_override(std::string level);
  const std::string& socket_path() const;
};

}  // namespace wsgate::daemon
