// platform.h on POSIX (Linux): RLIMIT_NOFILE, /proc/self, uids, signals.
#include "service/daemon/platform.h"

#include <sys/resource.h>
#include <unistd.h>

#include <asio/signal_set.hpp>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string_view>

#include "service/daemon/metrics.h"
#include "service/daemon/posix/fd_limit.h"

namespace wsgate::daemon {
namespace {

std::uint64_t read_status_field(std::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size(), field) == 0 && line.size() > field.size() && line[field.size()] == ':') {
      return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return 0;
}

}  // namespace

ProcessFigures read_process_figures() {
  ProcessFigures p;
  {
    std::ifstream statm("/proc/self/statm");
    std::uint64_t size = 0;
    std::uint64_t resident = 0;
    if (statm >> size >> resident) resident *= static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    p.resident_bytes = resident;
  }
  p.open_fds = posix::count_open_fds(0);
  p.threads = read_status_field("Threads");
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) p.max_fds = lim.rlim_cur;
  return p;
}

namespace platform {

std::uint64_t reachable_file_limit() { return posix::reachable_nofile_limit(); }

FileLimit raise_file_limit() {
  const posix::NofileLimit n = posix::raise_nofile_limit();
  return {n.soft, n.before, n.warning};
}

std::uint64_t count_open_files(std::uint64_t fallback) { return posix::count_open_fds(fallback); }

bool is_socket_file(const std::filesystem::file_status& status) {
  return std::filesystem::is_socket(status);
}

bool is_own_or_root_uid(std::uint32_t uid) { return uid == ::geteuid() || uid == 0; }

struct ControlEvents::Impl {
  explicit Impl(asio::io_context& io) : signals(io, SIGTERM, SIGINT, SIGHUP) {}
  void wait() {
    signals.async_wait([this](const asio::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        on_reload("SIGHUP");
        wait();
        return;
      }
      on_stop("signal " + std::to_string(signal));
    });
  }
  asio::signal_set signals;
  Callback on_stop;
  Callback on_reload;
};

ControlEvents::ControlEvents(asio::io_context& io, Callback on_stop, Callback on_reload)
    : impl_(std::make_shared<Impl>(io)) {
  impl_->on_stop = std::move(on_stop);
  impl_->on_reload = std::move(on_reload);
  impl_->wait();
}

ControlEvents::~ControlEvents() = default;

}  // namespace platform
}  // namespace wsgate::daemon
