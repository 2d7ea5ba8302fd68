// SystemdNotifier: wsgated's side of the systemd notify protocol (Type=notify units).
//
//   ready()     READY=1 plus a STATUS= line, once the listeners accept connections.
//   stopping()  STOPPING=1 when the drain begins (SIGTERM, SIGINT, request_shutdown()).
//   start_watchdog(io)  when the service manager asked for a watchdog (WatchdogSec= sets
//               WATCHDOG_USEC), sends WATCHDOG=1 every WATCHDOG_USEC/2 from an Asio timer on
//               `io`; the pings therefore stop when that io_context's threads stop making
//               progress, which is what the watchdog is for.
//
// Every call is a no-op when NOTIFY_SOCKET is unset (not started by systemd) or when wsgated
// was built without libsystemd (WSGATE_HAVE_LIBSYSTEMD undefined; other platforms).
//
// Lifetime: owned by Server and destroyed before `io` (the timer belongs to it).
// Thread safety: ready()/stopping() from any thread (sd_notify is a sendmsg on a fresh datagram
// socket); the timer is only touched on `io`'s threads after start_watchdog(), which runs
// before those threads start. The pings end when `io` stops.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>

namespace wsgate::daemon::posix {

class SystemdNotifier {
 public:
  SystemdNotifier() = default;
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  void ready(const std::string& status);
  void stopping();
  void start_watchdog(asio::io_context& io);

  // The interval asked for by the service manager (WATCHDOG_USEC), zero when none.
  static std::chrono::microseconds watchdog_interval();

 private:
  void arm();

  std::unique_ptr<asio::steady_timer> timer_;
  std::chrono::microseconds period_{0};
};

}  // namespace wsgate::daemon::posix
