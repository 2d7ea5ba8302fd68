#include "service/rpc/peer_directory.h"

#ifndef _WIN32
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "service/rpc/fd_budget.h"

namespace wsgate::rpc {

bool PeerError::out_of_fds() const { return FdBudget::out_of_fds(code); }

#ifdef _WIN32
// Windows has no SO_PEERCRED, and gRPC accepts the local connections itself there
// (service/daemon/local_listener.h): nothing is ever added, so find() knows no peer and the
// callers apply their rule for peers without credentials (as for TCP).
PeerDirectory::PeerDirectory(RetireCallback on_retire) : on_retire_(std::move(on_retire)) {}

PeerDirectory::~PeerDirectory() = default;

std::optional<PeerInfo> PeerDirectory::add(int /*fd*/, PeerError* error) {
  *error = PeerError{ENOSYS, "no peer credentials on Windows"};
  return std::nullopt;
}
#else
PeerDirectory::PeerDirectory(RetireCallback on_retire) : on_retire_(std::move(on_retire)) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || stop_fd_ < 0) {
    const int err = errno;
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
    throw std::runtime_error(std::string("peer directory: ") + std::strerror(err));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // 0: the stop eventfd (connection ids start at 1)
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev);
  watcher_ = std::thread([this] { watch_loop(); });
}

PeerDirectory::~PeerDirectory() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(stop_fd_, &one, sizeof one);
  watcher_.join();
  for (auto& [id, e] : entries_) ::close(e.watch_fd);
  ::close(stop_fd_);
  ::close(epoll_fd_);
}

namespace {

// The error of the call `what` that just failed (read errno before anything else can change it).
PeerError last_error(const char* what) {
  const int code = errno;
  return PeerError{code, std::string(what) + ": " + std::strerror(code)};
}

}  // namespace

std::optional<PeerInfo> PeerDirectory::add(int fd, PeerError* error) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    *error = last_error("SO_PEERCRED");
    return std::nullopt;
  }
  const int watch_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (watch_fd < 0) {
    *error = last_error("dup");
    return std::nullopt;
  }
  Entry entry;
  entry.info.connection_id = next_id_.fetch_add(1, std::memory_order_relaxed);
  entry.info.uid = cred.uid;
  entry.info.gid = cred.gid;
  entry.info.pid = cred.pid;
  entry.fd = fd;
  entry.watch_fd = watch_fd;

  std::optional<Entry> stale;
  {
    std::lock_guard lock(mutex_);
    // The fd number is free again, so gRPC has closed the connection that had it.
    if (auto it = by_fd_.find(fd); it != by_fd_.end()) stale = take_locked(it->second);
    epoll_event ev{};
    ev.events = EPOLLRDHUP | EPOLLHUP;  // hang-up only: never EPOLLIN (that is gRPC's data)
    ev.data.u64 = entry.info.connection_id;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, watch_fd, &ev) != 0) {
      *error = last_error("epoll_ctl");
      ::close(watch_fd);
      if (stale) {
        ::close(stale->watch_fd);
      }
      return std::nullopt;
    }
    entries_.emplace(entry.info.connection_id, entry);
    by_fd_[fd] = entry.info.connection_id;
  }
  if (stale) retire(*stale);
  return entry.info;
}

#endif  // _WIN32

std::optional<PeerInfo> PeerDirectory::find(const std::string& peer) const {
  if (peer.rfind("fd:", 0) != 0) return std::nullopt;
  int fd = -1;
  try {
    std::size_t used = 0;
    fd = std::stoi(peer.substr(3), &used);
    if (used != peer.size() - 3) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::lock_guard lock(mutex_);
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return std::nullopt;
  return entries_.at(it->second).info;
}

std::size_t PeerDirectory::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

#ifndef _WIN32  // the rest watches fds (never called on Windows: nothing is added there)
std::optional<PeerDirectory::Entry> PeerDirectory::take_locked(std::uint64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  Entry e = it->second;
  entries_.erase(it);
  if (auto f = by_fd_.find(e.fd); f != by_fd_.end() && f->second == id) by_fd_.erase(f);
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, e.watch_fd, nullptr);
  return e;
}

void PeerDirectory::retire(const Entry& e) {
  ::close(e.watch_fd);
  if (on_retire_) on_retire_(e.info);
}

void PeerDirectory::watch_loop() {
  std::vector<epoll_event> events(64);
  while (true) {
    const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    std::vector<Entry> gone;
    {
      std::lock_guard lock(mutex_);
      for (int i = 0; i < n; ++i) {
        const std::uint64_t id = events[static_cast<std::size_t>(i)].data.u64;
        if (id == 0) return;  // stop
        if (auto e = take_locked(id)) gone.push_back(*e);
      }
    }
    for (const Entry& e : gone) retire(e);
  }
}

#endif  // !_WIN32

}  // namespace wsgate::rpc
