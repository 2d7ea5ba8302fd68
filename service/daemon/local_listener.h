// LocalListener: the daemon's local endpoint, listen.unix_socket, on either platform. Server
// calls the same four steps on both; what they do differs (docs/operations.md, "Windows"):
//
//   POSIX (posix/local_listener.cc): an AF_UNIX socket that wsgated binds itself, after
//   checking its directory (posix/socket_dir.h), chmod-ed to listen.unix_socket_mode, or one
//   inherited from systemd (posix/socket_activation.h). Connections are accepted by
//   posix::UnixListener, which registers each one's kernel credentials (SO_PEERCRED) in the
//   rpc::PeerDirectory before handing it to gRPC. The path is removed at stop if we created it.
//
//   Windows (win32/local_listener.cc): an AF_UNIX socket too (Windows 10 1803 and later), but
//   bound and accepted by gRPC itself (ServerBuilder "unix:" port): handing gRPC an accepted
//   socket (grpc::AddInsecureChannelFromFd) is POSIX-only, and Windows has no SO_PEERCRED, so
//   the PeerDirectory stays empty. Who may connect is decided by the directory's ACL: a missing
//   socket directory is created with a protected DACL (SYSTEM, Administrators, and the
//   daemon's own account); listen.unix_socket_mode does not apply.
//
// Lifetime: owned by the Server; prepare() before the grpc::Server is built, add_to() on its
// builder, start() after BuildAndStart, close() before grpc::Server::Shutdown, remove_path()
// after it; destroyed before the io_context given to start(). Thread safety: every call from
// the Server's main thread.
#pragma once

#include <asio/io_context.hpp>
#include <memory>
#include <string>

#include "service/daemon/config.h"

namespace grpc {
class Server;
class ServerBuilder;
}  // namespace grpc
namespace wsgate::rpc {
class PeerDirectory;
class FdBudget;
}  // namespace wsgate::rpc

namespace wsgate::daemon {

class LocalListener {
 public:
  LocalListener();
  ~LocalListener();
  LocalListener(const LocalListener&) = delete;
  LocalListener& operator=(const LocalListener&) = delete;

  // Resolves and prepares listen.unix_socket (POSIX: an inherited socket replaces it in
  // `listen`; the socket is bound here). Returns "" or why the daemon cannot start.
  std::string prepare(ListenConfig& listen);
  // Adds what gRPC must listen on itself (Windows: the "unix:" port; POSIX: nothing).
  void add_to(grpc::ServerBuilder& builder);
  // Starts accepting. Returns "" or why not (Windows: gRPC could not bind the socket).
  std::string start(asio::io_context& io, grpc::Server& server, rpc::PeerDirectory& peers,
                    rpc::FdBudget& budget);
  // Stops accepting new connections (idempotent).
  void close();
  // Removes the socket's path if this process created it.
  void remove_path();

  // For the start-up log line: "unix:<path> (mode 660)" or "unix:<path> (directory ACL)".
  std::string description() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wsgate::daemon
