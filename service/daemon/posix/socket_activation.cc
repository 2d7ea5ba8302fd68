#include "service/daemon/posix/socket_activation.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#ifdef WSGATE_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif


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

}  // namespace wsgate::daemon::posix
