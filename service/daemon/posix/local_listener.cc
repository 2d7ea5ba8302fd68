// local_listener.h on POSIX: bind (or inherit) the unix socket, accept with UnixListener.
#include "service/daemon/local_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "service/daemon/posix/socket_activation.h"
#include "service/daemon/posix/socket_dir.h"
#include "service/daemon/posix/unix_listener.h"

namespace wsgate::daemon {
namespace {

// Is something accepting connections on this unix socket path?
bool socket_in_use(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const bool in_use = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return in_use;
}

// The default socket directory without XDG_RUNTIME_DIR (/tmp/wsgate-<uid>) must be private to
// us (posix/socket_dir.h).
bool is_private_default(const std::string& path) {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  return ::geteuid() != 0 && (runtime == nullptr || runtime[0] == '\0') &&
         path == default_socket_path();
}

}  // namespace

struct LocalListener::Impl {
  std::string path;
  std::uint32_t mode = 0;
  int listen_fd = -1;      // until start() hands it to the UnixListener
  bool owns_path = false;  // we bound it (not inherited): remove it at stop
  std::unique_ptr<posix::UnixListener> listener;
};

LocalListener::LocalListener() : impl_(std::make_unique<Impl>()) {}

LocalListener::~LocalListener() {
  if (impl_->listen_fd >= 0) ::close(impl_->listen_fd);
}

std::string LocalListener::prepare(ListenConfig& listen) {
  // deploy: socket activation. A listening unix socket passed by systemd (wsgated.socket)
  // replaces listen.unix_socket: its path is reported, nothing is created, removed or chmod-ed
  // (the .socket unit's SocketMode=/SocketUser= apply). See posix/socket_activation.h.
  posix::InheritedSocket inherited = posix::take_inherited_unix_socket();
  if (!inherited.error.empty()) return inherited.error;
  if (inherited.fd >= 0) listen.unix_socket = inherited.path;
  // deploy end
  const std::string& path = listen.unix_socket;
  impl_->path = path;
  impl_->mode = listen.unix_socket_mode;
  impl_->listen_fd = inherited.fd;
  if (inherited.fd >= 0) return "";
  // The socket is ours to create.
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return "listen.unix_socket: the path is longer than a unix socket path may be: " + path;
  }
  if (std::string error = posix::prepare_socket_directory(path, is_private_default(path));
      !error.empty()) {
    return error;
  }
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
    if (socket_in_use(path)) return "another process is already listening on " + path;
    std::filesystem::remove(path, ec);  // a stale socket from an earlier run
  }
  std::string error;
  impl_->listen_fd = posix::bind_unix_socket(path, &error);
  if (impl_->listen_fd < 0) return error;
  impl_->owns_path = true;
  if (::chmod(path.c_str(), static_cast<mode_t>(listen.unix_socket_mode)) != 0) {
    return "cannot set the mode of " + path + ": " + std::strerror(errno);
  }
  return "";
}

void LocalListener::add_to(grpc::ServerBuilder& /*builder*/) {}  // UnixListener hands them over

std::string LocalListener::start(asio::io_context& io, grpc::Server& server,
                                 rpc::PeerDirectory& peers, rpc::FdBudget& budget) {
  // Accept on the unix socket (ours or systemd's); the UnixListener owns the fd from now on.
  impl_->listener = std::make_unique<posix::UnixListener>(io, impl_->listen_fd, server, peers, budget);
  impl_->listen_fd = -1;
  impl_->listener->start();
  return "";
}

void LocalListener::close() {
  if (impl_->listener) impl_->listener->close();
}

void LocalListener::remove_path() {
  // An inherited socket's path belongs to systemd, which still listens on it.
  if (!impl_->owns_path) return;
  std::error_code ec;
  std::filesystem::remove(impl_->path, ec);
  impl_->owns_path = false;
}

std::string LocalListener::description() const {
  std::ostringstream out;
  out << "unix:" << impl_->path << " (mode " << std::oct << impl_->mode << ")";
  return out.str();
}

}  // namespace wsgate::daemon
