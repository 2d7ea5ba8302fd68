#include "service/daemon/posix/unix_listener.h"

#include <fcntl.h>
#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <future>
#include <memory>

#include "service/log/logging.h"
#include "service/rpc/fd_budget.h"
#include "service/rpc/peer_directory.h"

namespace wsgate::daemon::posix {

int bind_unix_socket(const std::string& path, std::string* error) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    *error = "the path is longer than a unix socket path may be: " + path;
    return -1;
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, SOMAXCONN) != 0) {
    *error = "cannot listen on " + path + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

UnixListener::UnixListener(asio::io_context& io, int listening_fd, grpc::Server& server,
                           rpc::PeerDirectory& peers, rpc::FdBudget& budget)
    : strand_(asio::make_strand(io)),
      acceptor_(strand_, asio::local::stream_protocol(), listening_fd),
      backoff_timer_(strand_),
      server_(server),
      peers_(peers),
      budget_(budget) {}

void UnixListener::start() { accept_next(); }

void UnixListener::pause(const std::string& why) {
  if (backoff_.count() == 0) {
    log::logger("daemon")->warn(
        "accept paused: {} (open-file limit {}); new clients wait in the backlog, retrying",
        why, budget_.limit());
    backoff_ = kFirstBackoff;
  } else {
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  }
  backoff_timer_.expires_after(backoff_);
  backoff_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || closed_) return;
    accept_next();
  });
}

void UnixListener::accept_next() {
  acceptor_.async_accept([this](const asio::error_code& ec,
                                asio::local::stream_protocol::socket socket) {
    if (closed_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      if ((ec.category() == asio::system_category() && rpc::FdBudget::out_of_fds(ec.value())) ||
          ec == asio::error::no_buffer_space || ec == asio::error::no_memory) {
        return pause(ec.message());
      }
      // ECONNABORTED and the like concern one client only.
      log::logger("daemon")->debug("accept: {}", ec.message());
      return accept_next();
    }
    asio::error_code release_ec;
    const int fd = socket.release(release_ec);
    if (release_ec || fd < 0) return accept_next();
    rpc::PeerError error;
    if (!peers_.add(fd, &error)) {
      ::close(fd);  // the client sees EOF and may retry
      if (error.out_of_fds()) return pause(error.message);
      log::logger("daemon")->warn("unix connection refused: {}", error.message);
      return accept_next();
    }
    if (backoff_.count() != 0) {
      log::logger("daemon")->info("accepting connections again");
      backoff_ = std::chrono::milliseconds(0);
    }
    budget_.connection_opened();
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    grpc::AddInsecureChannelFromFd(&server_, fd);  // gRPC owns and closes fd from here
    accept_next();
  });
}

void UnixListener::close() {
  closed_ = true;
  // On the strand: the acceptor is not thread-safe, and once this has run no accept handler
  // can hand a connection to a gRPC server that is shutting down. Closing the fd does not
  // remove the socket's path (the Server removes its own; an inherited one belongs to systemd).
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> closed = done->get_future();
  asio::post(strand_, [this, done] {
    asio::error_code ignored;
    acceptor_.close(ignored);
    backoff_timer_.cancel();
    done->set_value();
  });
  // Bounded: the io_context may already be stopped (then nothing runs on the strand anyway).
  closed.wait_for(std::chrono::seconds(2));
}

}  // namespace wsgate::daemon::posix
