// Server: wsgated's lifetime. Owns the Asio threads, the session registry, the gRPC services
// and the grpc::Server; starts them, handles signals, drains and stops.
//
//   SIGTERM / SIGINT: stop accepting sessions, close every session with 1001, wait until they are
//                     gone or timeouts.drain_ms passes, stop the gRPC server, exit 0.
//   SIGHUP:           reopen the log file (rotation) and re-read log.level and the redaction
//                     settings (log.redact, log.redact_subprotocols) from the config file.
// On Windows the console's Ctrl+C/Ctrl+Break/close stop, and the service's STOP and
// PARAMCHANGE controls call request_shutdown() and request_reload() (platform.h,
// win32/service.h).
//
// Object lifetime: one per process, created by main(), destroyed after run() returns.
// Thread safety: start() and run() are called from the main thread; request_shutdown() from
// any thread.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "service/daemon/config.h"

namespace grpc {
class Server;
class Service;
}

namespace wsgate::rpc {
class SessionRegistry;
class GatewayService;
class ProtocolComponentService;
class AdminService;
class FdBudget;
class PeerDirectory;
}  // namespace wsgate::rpc

// deploy: systemd notify protocol (service/daemon/posix/).
namespace wsgate::daemon::posix {
class SystemdNotifier;
}  // namespace wsgate::daemon::posix

namespace wsgate::daemon {
class MetricsServer;
struct GrpcCallCounter;

class MemoryTrimmer;
class LocalListener;
namespace platform {
class ControlEvents;
}

class Server {
 public:
  // `config_path` (may be empty) is re-read on SIGHUP for the reloadable settings.
  Server(Config config, std::string config_path);
  ~Server();

  // Binds the listeners and starts serving. Returns an empty string on success, else why not.
  std::string start();

  // Serves until SIGTERM/SIGINT (or request_shutdown), then drains. Returns the exit status.
  int run();

  void request_shutdown();
  // What SIGHUP does (reopen the logs, re-read the reloadable settings), from any thread;
  // `why` names the request in the log.
  void request_reload(std::string why);

  // The --log-level flag, if given: SIGHUP keeps it instead of the file's log.level.
  void set_log_level_override(std::string level);

  const std::string& socket_path() const { return config_.listen.unix_socket; }

 private:
  void drain_and_stop();
  void reload(const std::string& why);  // on signal_io_'s thread

  Config config_;
  std::string config_path_;
  std::string level_flag_;
  asio::io_context io_;  // upstream connections
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> io_threads_;
  asio::io_context signal_io_;  // signals, on the main thread
  // SIGTERM/SIGINT/SIGHUP (Windows: console events) on signal_io_: from the start of start(),
  // so that a signal sent while starting is queued rather than fatal; reset in run() after the
  // drain.
  std::unique_ptr<platform::ControlEvents> control_events_;
  std::unique_ptr<rpc::SessionRegistry> registry_;
  std::unique_ptr<rpc::ProtocolComponentService> protocol_component_;
  std::unique_ptr<rpc::GatewayService> gateway_;
  std::shared_ptr<rpc::FdBudget> fd_budget_;
  // Unix peers (SO_PEERCRED); after protocol_component_: its retire callback may reach it.
  std::unique_ptr<rpc::PeerDirectory> peers_;
  std::unique_ptr<rpc::AdminService> admin_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::atomic<bool> stopping_{false};
  // deploy: READY=1/STOPPING=1/WATCHDOG=1 to systemd (no-ops without NOTIFY_SOCKET), and the
  // local socket (local_listener.h: ours, or inherited from wsgated.socket).
  // Declared after io_ so that they are destroyed before it (both hold Asio objects of io_).
  std::unique_ptr<posix::SystemdNotifier> notifier_;
  std::unique_ptr<LocalListener> local_listener_;
  // Polls registry_ (so declared after it, destroyed before it); null when turned off.
  std::unique_ptr<MemoryTrimmer> memory_trimmer_;
  // gRPC calls (counted by a server interceptor) and the metrics endpoint (on io_,
  // so declared after it).
  std::shared_ptr<GrpcCallCounter> grpc_calls_;
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<grpc::Service> reflection_v1_;  // grpc.reflection.v1 (reflection_v1.h)
};

}  // namespace wsgate::daemon
