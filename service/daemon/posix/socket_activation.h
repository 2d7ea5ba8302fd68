// Socket activation (systemd wsgated.socket, or `systemd-socket-activate`): adopt a listening
// unix socket passed by the service manager (LISTEN_FDS / LISTEN_PID, fd 3) instead of binding
// listen.unix_socket.
//
// gRPC 1.51 (Debian bookworm) cannot adopt a *listening* fd: ServerBuilder only binds addresses
// itself. It can adopt a *connected* fd (grpc::AddInsecureChannelFromFd, grpc/server_posix.h).
// So InheritedListener accepts on the inherited socket with Asio and hands each connection to
// the grpc::Server. Each such connection is served like one accepted by gRPC's own listener
// (same services, limits and health), but gRPC's per-listener options do not apply to it.
//
// Lifetime: InheritedListener is owned by Server, started after grpc::Server::BuildAndStart,
// closed when the drain begins, destroyed before the io_context.
// Thread safety: close() from any thread (it posts to the io_context).
#pragma once

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <atomic>
#include <string>

namespace grpc {
class Server;
}

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

class InheritedListener {
 public:
  InheritedListener(asio::io_context& io, int fd, grpc::Server& server);
  void start();
  void close();

 private:
  void accept_next();

  asio::local::stream_protocol::acceptor acceptor_;
  grpc::Server& server_;
  std::atomic<bool> closed_{false};
};

}  // namespace wsgate::daemon::posix
