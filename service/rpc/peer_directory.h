// PeerDirectory: who is on the other end of each unix-socket connection.
//
// On a unix socket every caller looks the same to gRPC, so wsgated accepts unix connections
// itself (service/daemon/posix/unix_listener.h), reads the kernel's peer credentials
// (SO_PEERCRED: uid, gid, pid) and hands the connection to gRPC with
// grpc::AddInsecureChannelFromFd. gRPC names such a connection's peer "fd:<N>" (N: the fd
// number), which is the key here. Each connection gets a unique 64-bit id: fd numbers are
// reused, ids are not, so "conn:<id>" can own things (ProtocolComponent handles).
//
// Learning that a client went away: add() takes a dup of the connection's fd and watches it
// for hang-up only (EPOLLRDHUP | EPOLLHUP, never EPOLLIN, so gRPC's data is not disturbed) on
// one dedicated thread (epoll + an eventfd to stop it; a thread rather than an Asio reactor
// registration because Asio does not expose hang-up-only interest). When the peer hangs up, or
// gRPC shuts the socket down (it calls shutdown(SHUT_RDWR) before closing, which wakes the
// dup), the dup is closed and the connection is retired. When accept returns an fd number that
// is still in the directory, gRPC has closed that old connection already: add() retires it first.
//
// Retiring removes the entry and then calls the retire callback with the connection (outside
// any lock, on the watcher thread or on the thread that called add()); the daemon uses it to
// release what the connection owned. Every connection is retired exactly once (at the latest
// by the destructor, which does not call the callback).
//
// Lifetime: one per daemon, owned by the Server; created before the listener and destroyed
// after the grpc::Server has stopped. Thread safety: every member is safe from any thread;
// the callback must not call back into add().
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace wsgate::rpc {

// Why add() refused a connection: the errno of the call that failed, and a message naming it.
struct PeerError {
  int code = 0;
  std::string message;
  // No fd left for the watch (FdBudget::out_of_fds).
  bool out_of_fds() const;
};

struct PeerInfo {
  std::uint64_t connection_id = 0;  // unique for the daemon's life, from 1
  // The kernel's uid_t, gid_t and pid_t (32 bits on Linux), as fixed-width types that exist on
  // Windows too (where nothing is ever registered: see add()).
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int32_t pid = 0;
};

class PeerDirectory {
 public:
  using RetireCallback = std::function<void(const PeerInfo&)>;
  explicit PeerDirectory(RetireCallback on_retire = {});
  ~PeerDirectory();
  PeerDirectory(const PeerDirectory&) = delete;
  PeerDirectory& operator=(const PeerDirectory&) = delete;

  // The gRPC peer string of a connection handed over with AddInsecureChannelFromFd.
  static std::string peer_name(int fd) { return "fd:" + std::to_string(fd); }

  // Registers an accepted unix connection (before it is handed to gRPC). Reads SO_PEERCRED
  // and starts watching a dup of `fd`. Returns the entry, or nullopt with *error set when the
  // credentials cannot be read or the watch cannot be set up (error->out_of_fds() for a lack
  // of fds): then the caller closes `fd`.
  std::optional<PeerInfo> add(int fd, PeerError* error);

  // The connection behind a gRPC peer string ("fd:N"); nullopt for other peers (TCP) and for
  // connections already retired.
  std::optional<PeerInfo> find(const std::string& peer) const;

  std::size_t size() const;

 private:
  struct Entry {
    PeerInfo info;
    int fd = -1;        // the fd number handed to gRPC
    int watch_fd = -1;  // the dup, registered with epoll_fd_
  };
  void watch_loop();
  // Removes the entry of connection `id` (under mutex_); returns it.
  std::optional<Entry> take_locked(std::uint64_t id);
  void retire(const Entry& e);

  const RetireCallback on_retire_;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: wakes the watcher to stop
  mutable std::mutex mutex_;
  std::map<std::uint64_t, Entry> entries_;  // by connection id
  std::map<int, std::uint64_t> by_fd_;        // the fd number gRPC knows -> connection id
  std::atomic<std::uint64_t> next_id_{1};
  std::thread watcher_;
};

}  // namespace wsgate::rpc
