// platform.h on Windows: no open-file limit, the working set for RSS, no uids, console control
// events for stop.
#include "service/daemon/platform.h"

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
// After windows.h, which it needs.
#include <psapi.h>

#include <asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "service/daemon/metrics.h"

namespace wsgate::daemon {
namespace {

// The kernel's limit of handles per process (2^24): sockets are handles, and nothing smaller
// applies (the C runtime's 8192 limit is for its own file descriptors, which wsgated does not
// use for sockets).
constexpr std::uint64_t kHandleLimit = std::uint64_t{1} << 24;

std::uint64_t handle_count() {
  DWORD n = 0;
  return ::GetProcessHandleCount(::GetCurrentProcess(), &n) ? n : 0;
}

}  // namespace

ProcessFigures read_process_figures() {
  ProcessFigures p;
  PROCESS_MEMORY_COUNTERS counters{};
  counters.cb = sizeof counters;
  if (::GetProcessMemoryInfo(::GetCurrentProcess(), &counters, sizeof counters)) {
    p.resident_bytes = counters.WorkingSetSize;
  }
  p.open_fds = handle_count();
  return p;  // threads and max_fds: 0 (not counted; no such limit)
}

namespace platform {

std::uint64_t reachable_file_limit() { return kHandleLimit; }

FileLimit raise_file_limit() { return {kHandleLimit, kHandleLimit, {}}; }

std::uint64_t count_open_files(std::uint64_t fallback) {
  const std::uint64_t n = handle_count();
  return n > 0 ? n : fallback;
}

bool is_socket_file(const std::filesystem::file_status& status) {
  return status.type() == std::filesystem::file_type::unknown;
}

bool is_own_or_root_uid(std::uint32_t /*uid*/) { return false; }  // no uids (platform.h)

// The console control handler runs on a thread Windows creates for it; it only posts to the
// io_context. For close and shutdown Windows ends the process as soon as the handler
// returns (or after about 5 s), so the handler waits for ~ControlEvents, which runs after the
// drain, for at most kCloseWait.
struct ControlEvents::Impl {
  static constexpr std::chrono::milliseconds kCloseWait{4500};

  asio::io_context* io = nullptr;
  Callback on_stop;
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
};

namespace {

std::mutex g_mutex;  // guards g_impl against the handler thread
std::shared_ptr<ControlEvents::Impl> g_impl;

const char* event_name(DWORD event) {
  switch (event) {
    case CTRL_C_EVENT: return "Ctrl+C";
    case CTRL_BREAK_EVENT: return "Ctrl+Break";
    case CTRL_CLOSE_EVENT: return "console closed";
    case CTRL_SHUTDOWN_EVENT: return "shutdown";
    default: return "console event";
  }
}

BOOL WINAPI console_handler(DWORD event) {
  // Only services get log-off events, for any user's log-off: not a reason to stop. (A console
  // run is ended with the user's session anyway.)
  if (event == CTRL_LOGOFF_EVENT) return TRUE;
  std::unique_lock lock(g_mutex);
  const std::shared_ptr<ControlEvents::Impl> impl = g_impl;  // kept alive while we wait
  if (!impl) return FALSE;  // the default handler: end the process
  const std::string why = event_name(event);
  asio::post(*impl->io, [impl, why] { impl->on_stop(why); });  // run() is still running io
  if (event == CTRL_C_EVENT || event == CTRL_BREAK_EVENT) return TRUE;
  // Close, shutdown: returning ends the process, so wait for the drain.
  lock.unlock();
  std::unique_lock done_lock(impl->mutex);
  impl->done_cv.wait_for(done_lock, ControlEvents::Impl::kCloseWait, [impl] { return impl->done; });
  return TRUE;
}

}  // namespace

ControlEvents::ControlEvents(asio::io_context& io, Callback on_stop, Callback /*on_reload*/)
    : impl_(std::make_shared<Impl>()) {
  impl_->io = &io;
  impl_->on_stop = std::move(on_stop);
  std::lock_guard lock(g_mutex);
  g_impl = impl_;
  ::SetConsoleCtrlHandler(console_handler, TRUE);
}

ControlEvents::~ControlEvents() {
  {
    std::lock_guard lock(g_mutex);
    ::SetConsoleCtrlHandler(console_handler, FALSE);
    g_impl = nullptr;
  }
  {
    std::lock_guard lock(impl_->mutex);
    impl_->done = true;
  }
  impl_->done_cv.notify_all();  // a handler still waiting holds its own reference to impl_
}

}  // namespace platform
}  // namespace wsgate::daemon
