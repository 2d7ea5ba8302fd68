// What differs between the daemon on POSIX (Linux, systemd) and on Windows, behind one name
// each: the shared code (server.cc, main.cc, metrics.cc) calls these, posix/platform.cc and
// win32/platform.cc implement them, and CMake compiles exactly one of the two. The listener is
// larger and has its own header (local_listener.h). docs/operations.md ("Windows") says what
// each one does on Windows and why.
//
// Thread safety: plain functions, safe from any thread unless a comment says otherwise;
// ControlEvents is created and destroyed on the thread that runs its io_context.
#pragma once

#include <asio/io_context.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace wsgate::daemon::platform {

// --- open files: the rpc::FdBudget's limit --------------------------------------------------
// POSIX: RLIMIT_NOFILE (posix/fd_limit.h). Windows has no per-process limit on sockets or
// handles short of the kernel's 2^24 handles per process, which is what is reported there.
struct FileLimit {
  std::uint64_t soft = 0;    // in force after raise_file_limit()
  std::uint64_t before = 0;  // found at start
  std::string warning;       // set when raising failed
};

// The limit raise_file_limit() would reach (for --check-config, which changes nothing).
std::uint64_t reachable_file_limit();
// Raises the soft limit as far as allowed. Call from the main thread during start-up.
FileLimit raise_file_limit();
// Files/sockets/handles open now (the budget's base); `fallback` when unknown. Start-up only.
std::uint64_t count_open_files(std::uint64_t fallback);

// --- process figures for the metrics endpoint ------------------------------------------------
// read_process_figures() (declared in metrics.h) is implemented per platform too: POSIX reads
// /proc/self; Windows asks GetProcessMemoryInfo (working set) and GetProcessHandleCount, and
// reports no thread count and no open-file limit (0).

// --- files ------------------------------------------------------------------------------------
// Is this directory entry (from symlink_status) a unix socket? POSIX: S_ISSOCK. Windows names
// no socket type: an AF_UNIX socket is a reparse point the standard library reports as
// file_type::unknown, so that counts too.
bool is_socket_file(const std::filesystem::file_status& status);

// --- identity ---------------------------------------------------------------------------------
// Is a local caller with kernel-verified `uid` the daemon's own user or root? POSIX only: on
// Windows no caller has a uid (rpc::PeerDirectory stays empty), so this is always false there.
bool is_own_or_root_uid(std::uint32_t uid);

// --- stop and reload requests from the operator ----------------------------------------------
// POSIX: SIGTERM/SIGINT stop, SIGHUP reloads. Windows console: Ctrl+C, Ctrl+Break, closing the
// console and shutdown stop; log-off is ignored (only services get it, for any user's log-off)
// (no reload: as a service, SERVICE_CONTROL_PARAMCHANGE
// reloads, win32/service.cc). The callbacks run on `io`'s thread; `why` names the event for the
// log ("signal 15", "SIGHUP", "Ctrl+C", ...).
//
// Lifetime: one per Server::run(); destroyed after the drain (on Windows, a console-close
// event waits for that destruction, up to the few seconds Windows allows, before the process
// is ended). Thread safety: construct and destroy on `io`'s thread.
class ControlEvents {
 public:
  using Callback = std::function<void(const std::string& why)>;
  ControlEvents(asio::io_context& io, Callback on_stop, Callback on_reload);
  ~ControlEvents();
  ControlEvents(const ControlEvents&) = delete;
  ControlEvents& operator=(const ControlEvents&) = delete;

  struct Impl;  // per platform; public so that Windows' console handler can name it

 private:
  std::shared_ptr<Impl> impl_;  // shared with Windows' console handler thread
};

}  // namespace wsgate::daemon::platform
