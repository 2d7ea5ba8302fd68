#include "service/daemon/posix/socket_activation.h"

#include <fcntl.h>
#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <cstddef>
#include <cstring>

#ifdef WSGATE_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "service/daemon/logging.h"

namespace wsgate::daemon::posix {

InheritedSocket take_inherited_unix_socket() {
  InheritedSocket out;
#ifdef WSGATE_HAVE_LIBSYSTEMD
  const int n = ::sd_listen_fds(1);  // 1: unset LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES
  if (n <= 0) return out;            // none passed (or LISTEN_PID is another process)
  if (n != 1) {
    out.error = "socket activation: expected 1 socket, got " + std::to_string(n) +
                " (wsgated.socket must have a single ListenStream=)";
    return out;
  }
  const int fd = SD_LISTEN_FDS_START;
  if (::sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) <= 0) {
    out.error = "socket activation: fd 3 is not a listening unix stream socket "
                "(ListenStream= must be a path)";
    return out;
  }
  sockaddr_un addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      len <= offsetof(sockaddr_un, sun_path) || addr.sun_path[0] == '\0') {
    out.error = "socket activation: the inherited socket has no path (abstract or unnamed)";
    return out;
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  out.fd = fd;
  out.path.assign(addr.sun_path, ::strnlen(addr.sun_path, len - offsetof(sockaddr_un, sun_path)));
#endif
  return out;
}

InheritedListener::InheritedListener(asio::io_context& io, int fd, grpc::Server& server)
    : acceptor_(io, asio::local::stream_protocol(), fd), server_(server) {}

void InheritedListener::start() { accept_next(); }

void InheritedListener::accept_next() {
  acceptor_.async_accept([this](const asio::error_code& ec,
                                asio::local::stream_protocol::socket socket) {
    if (closed_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // EMFILE and the like: log, back off by one accept, keep listening.
      logger("daemon")->warn("accept on the inherited socket: {}", ec.message());
    } else {
      asio::error_code release_ec;
      const int fd = socket.release(release_ec);
      if (!release_ec && fd >= 0) {
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        grpc::AddInsecureChannelFromFd(&server_, fd);  // gRPC owns and closes fd from here
      }
    }
    accept_next();
  });
}

void InheritedListener::close() {
  closed_ = true;
  // On the io_context's thread: the acceptor is not thread-safe. Closing the fd does not remove
  // the socket's path: it belongs to systemd, which keeps listening (and queues connections
  // for the next start).
  asio::post(acceptor_.get_executor(), [this] {
    asio::error_code ignored;
    acceptor_.close(ignored);
  });
}

}  // namespace wsgate::daemon::posix
