// FdBudget: keeps wsgated from running out of file descriptors.
//
// Every Gateway session holds one upstream socket, and every unix-socket connection the daemon
// accepts holds two fds (gRPC's and the dup the PeerDirectory watches for hang-up). When the
// process reaches RLIMIT_NOFILE, accept(), socket() and the resolver fail with EMFILE at random
// places; so a new session is refused (RESOURCE_EXHAUSTED, cause "fd_limit") as soon as the fds
// in use would eat into a reserve kept for the things the daemon cannot refuse: accepting the
// next client, gRPC's own wake-up fds, log files, the resolver.
//
// Counting is cheap and approximate by design (no /proc listing per session):
//   in use = base (measured once at start: the fds open before the first client) +
//            2 x accepted unix connections + sessions (SessionRegistry::active()).
// gRPC's own TCP listener (listen.tcp) accepts outside this count; the reserve covers a few of
// those, and a TCP listener is for trusted networks only.
//
// reserve(limit) = 64 + limit / 16. Start-up requires max_sessions + reserve(limit) <= limit
// (check_limit(), used by --check-config and at start), so a daemon at max_sessions with few
// clients never touches the reserve.
//
// Lifetime: one per daemon, owned by the Server (shared with the Gateway service and the unix
// listener); outlives both. Thread safety: every member is safe from any thread (atomics; the
// sessions callback must be thread-safe itself).
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <string>

namespace wsgate::rpc {

class FdBudget {
 public:
  static std::uint64_t reserve(std::uint64_t limit) { return 64 + limit / 16; }

  // The errno values of a call that found no fd left: EMFILE (the process's limit) and ENFILE
  // (the system's).
  static bool out_of_fds(int errno_value) { return errno_value == EMFILE || errno_value == ENFILE; }

  // The smallest limit L with max_sessions + reserve(L) <= L.
  static std::uint64_t needed_limit(std::uint64_t max_sessions) {
    std::uint64_t l = (max_sessions + 64) * 16 / 15;
    while (max_sessions + reserve(l) > l) ++l;
    return l;
  }

  // "" when `max_sessions` fits in `limit` (the soft RLIMIT_NOFILE after raising it), else why
  // not and how to fix it.
  static std::string check_limit(std::uint64_t max_sessions, std::uint64_t limit) {
    if (max_sessions + reserve(limit) <= limit) return {};
    const std::uint64_t needed = needed_limit(max_sessions);
    return "limits.max_sessions: " + std::to_string(max_sessions) +
           " sessions need an open-file limit (RLIMIT_NOFILE) of at least " +
           std::to_string(needed) + " (one fd per session plus a reserve), but it is " +
           std::to_string(limit) +
           ": lower limits.max_sessions to at most " +
           std::to_string(limit > reserve(limit) ? limit - reserve(limit) : 0) +
           ", or raise the limit (systemd: LimitNOFILE=; shell: ulimit -n; containers: "
           "--ulimit nofile=)";
  }

  // `limit`: the soft RLIMIT_NOFILE in force.
  explicit FdBudget(std::uint64_t limit) : limit_(limit) {}

  // The fds open before the first client (gRPC's, the logs', the listening sockets); measured
  // once, just before serving.
  void set_base(std::uint64_t base) { base_.store(base, std::memory_order_relaxed); }

  // How many sessions exist now (SessionRegistry::active()); set once before serving.
  void set_session_counter(std::function<std::size_t()> sessions) {
    sessions_ = std::move(sessions);
  }

  void connection_opened() { connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_closed() { connections_.fetch_sub(1, std::memory_order_relaxed); }

  std::uint64_t in_use() const {
    const std::uint64_t sessions = sessions_ ? sessions_() : 0;
    return base_.load(std::memory_order_relaxed) + 2 * connections_.load(std::memory_order_relaxed) + sessions;
  }

  // "" when one more session fits, else the message of the refusal (cause "fd_limit").
  std::string admit_session() const {
    const std::uint64_t used = in_use();
    if (used + 1 + reserve(limit_) <= limit_) return {};
    return "the daemon is short of file descriptors (about " + std::to_string(used) +
           " of its limit of " + std::to_string(limit_) +
           " in use, the rest is reserved): close idle connections or sessions, or raise "
           "LimitNOFILE / ulimit -n";
  }

  std::uint64_t limit() const { return limit_; }

 private:
  const std::uint64_t limit_;
  std::atomic<std::uint64_t> base_{0};
  std::atomic<std::uint64_t> connections_{0};
  std::function<std::size_t()> sessions_;
};

}  // namespace wsgate::rpc
