// The open-file limit (RLIMIT_NOFILE): wsgated raises its soft limit to the hard limit at start
// (the usual soft limit of 1024 cannot hold the default limits.max_sessions), and counts the fds
// it has open before serving (the base of rpc::FdBudget).
//
// Thread safety: call from the main thread during start-up (setrlimit is process-wide).
#pragma once

#include <cstdint>
#include <string>

namespace wsgate::daemon::posix {

struct NofileLimit {
  std::uint64_t soft = 0;       // in force after raise_nofile_limit()
  std::uint64_t before = 0;     // the soft limit found at start
  std::string warning;          // set when raising failed (e.g. a seccomp filter forbids it)
};

// The soft limit raise_nofile_limit() would reach: the hard limit (capped by fs.nr_open when the
// hard limit is unlimited). For --check-config, which changes nothing.
std::uint64_t reachable_nofile_limit();

// Raises the soft RLIMIT_NOFILE to reachable_nofile_limit(). On failure the limit stays as it
// was and `warning` says why.
NofileLimit raise_nofile_limit();

// How many fds the process has open now (entries of /proc/self/fd); `fallback` when /proc is
// not readable. Lists a directory: call at start-up only, never per request.
std::uint64_t count_open_fds(std::uint64_t fallback);

}  // namespace wsgate::daemon::posix
