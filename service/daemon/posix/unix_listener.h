// UnixListener: wsgated accepts on its unix socket itself and hands each connection to the
// grpc::Server (grpc::AddInsecureChannelFromFd), for the socket it binds (listen.unix_socket)
// and for one inherited from systemd (posix/socket_activation.h) alike. Why not gRPC's own
// listener:
//   - gRPC 1.51's listener stops accepting for good after one EMFILE ("Failed accept4: Too many
//     open files"). Here, EMFILE/ENFILE (and a failed dup) pause accepting with an Asio timer
//     (50 ms, doubling to 1.6 s) instead of spinning or giving up; pending clients wait in the
//     backlog; one warning per episode and one notice when accepting works again.
//   - The kernel's peer credentials: each connection is registered in the rpc::PeerDirectory
//     (SO_PEERCRED, a connection id) before gRPC sees it, so services know who is calling.
// gRPC names such a connection's peer "fd:<N>". Connections are counted in the rpc::FdBudget.
// gRPC's per-listener options do not apply to these connections (server-wide ones do).
//
// Lifetime: owned by the Server, started after grpc::Server::BuildAndStart, closed before
// grpc::Server::Shutdown, destroyed before the io_context; the directory and budget outlive it.
// Thread safety: everything runs on one strand of the io_context; close() (from a thread that
// is not running the io_context) posts to it and waits, so that no connection is handed to gRPC
// after close() returns.
#pragma once

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <string>

namespace grpc {
class Server;
}
namespace wsgate::rpc {
class PeerDirectory;
class FdBudget;
}  // namespace wsgate::rpc

namespace wsgate::daemon::posix {

// Creates a listening AF_UNIX stream socket bound to `path` (close-on-exec, backlog SOMAXCONN).
// Returns the fd, or -1 with *error set.
int bind_unix_socket(const std::string& path, std::string* error);

class UnixListener {
 public:
  static constexpr std::chrono::milliseconds kFirstBackoff{50};
  static constexpr std::chrono::milliseconds kMaxBackoff{1600};

  // Takes ownership of `listening_fd`.
  UnixListener(asio::io_context& io, int listening_fd, grpc::Server& server,
               rpc::PeerDirectory& peers, rpc::FdBudget& budget);
  void start();
  void close();

 private:
  void accept_next();
  void pause(const std::string& why);

  asio::strand<asio::io_context::executor_type> strand_;
  asio::local::stream_protocol::acceptor acceptor_;
  asio::steady_timer backoff_timer_;
  grpc::Server& server_;
  rpc::PeerDirectory& peers_;
  rpc::FdBudget& budget_;
  std::chrono::milliseconds backoff_{0};  // 0: not paused
  std::atomic<bool> closed_{false};
};

}  // namespace wsgate::daemon::posix
