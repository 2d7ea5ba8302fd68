#include "service/daemon/posix/sd_notify.h"

#ifdef WSGATE_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include <cstdint>

namespace wsgate::daemon::posix {
namespace {

void notify(const std::string& state) {
#ifdef WSGATE_HAVE_LIBSYSTEMD
  // unset_environment = 0: the variables stay for the watchdog and for a later STOPPING=1.
  ::sd_notify(0, state.c_str());  // < 0 or 0 (no NOTIFY_SOCKET): nothing to do about it
#else
  (void)state;
#endif
}

}  // namespace

SystemdNotifier::~SystemdNotifier() = default;

void SystemdNotifier::ready(const std::string& status) {
  notify("READY=1\nSTATUS=" + status);
}

void SystemdNotifier::stopping() { notify("STOPPING=1\nSTATUS=draining"); }

std::chrono::microseconds SystemdNotifier::watchdog_interval() {
#ifdef WSGATE_HAVE_LIBSYSTEMD
  std::uint64_t usec = 0;
  // > 0 when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is this process.
  if (::sd_watchdog_enabled(0, &usec) > 0) return std::chrono::microseconds(usec);
#endif
  return std::chrono::microseconds(0);
}

void SystemdNotifier::start_watchdog(asio::io_context& io) {
  const auto interval = watchdog_interval();
  if (interval.count() <= 0 || timer_) return;
  period_ = interval / 2;
  if (period_.count() <= 0) period_ = std::chrono::microseconds(1);
  timer_ = std::make_unique<asio::steady_timer>(io);
  notify("WATCHDOG=1");
  arm();
}

void SystemdNotifier::arm() {
  timer_->expires_after(period_);
  timer_->async_wait([this](const asio::error_code& ec) {
    if (ec) return;  // cancelled: the timer is being destroyed
    notify("WATCHDOG=1");
    arm();
  });
}

}  // namespace wsgate::daemon::posix
