// Default paths on Windows (config.h, win32/paths.h).
#include "service/daemon/win32/paths.h"

#include <cstdlib>

#include "service/daemon/config.h"

namespace wsgate::daemon {

namespace win32 {

std::filesystem::path program_data_dir() {
  const char* program_data = std::getenv("ProgramData");
  const std::filesystem::path base =
      program_data != nullptr && program_data[0] != '\0' ? program_data : "C:\\ProgramData";
  return base / "wsgate";
}

}  // namespace win32

// One service for every user, as /run/wsgate/wsgated.sock for root on POSIX. The socket has a
// directory of its own (run\), which wsgated creates with the ACL that decides who may connect
// (win32/local_listener.cc); the configuration and the logs stay in the parent.
std::string default_socket_path() {
  return (win32::program_data_dir() / "run" / "wsgated.sock").string();
}

}  // namespace wsgate::daemon
