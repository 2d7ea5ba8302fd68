// Socket activation (systemd wsgated.socket, or `systemd-socket-activate`): adopt a listening
// unix socket passed by the service manager (LISTEN_FDS / LISTEN_PID, fd 3) instead of binding
// listen.unix_socket.
//
// gRPC 1.51 (Debian bookworm) cannot adopt a *listening* fd: ServerBuilder only binds addresses
// itself. The daemon accepts on the inherited socket with the same UnixListener it uses for a
// socket it binds itself (posix/unix_listener.h).
//
// Thread safety: call take_inherited_unix_socket() once, from the main thread.
#pragma once

#include <string>

namespace wsgate::daemon::posix {

struct InheritedSocket {
  int fd = -1;        // -1: nothing was passed (start normally)
  std::string path;   // the socket's path, from getsockname()
  std::string error;  // set when sockets were passed but cannot be used
};

// Reads LISTEN_FDS/LISTEN_PID (and unsets them, so children do not inherit them). Accepts
// exactly one fd, which must be a listening AF_UNIX SOCK_STREAM socket bound to a path.
// Without libsystemd: always {fd = -1}.
InheritedSocket take_inherited_unix_socket();

}  // namespace wsgate::daemon::posix
