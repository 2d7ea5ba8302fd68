#include "service/daemon/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>

#include "service/daemon/logging.h"
#include "service/daemon/memory_trim.h"
#include "service/daemon/posix/sd_notify.h"
#include "service/daemon/posix/socket_activation.h"
#include "service/net/destination_policy.h"
#include "service/rpc/admin_service.h"
#include "service/rpc/gateway_service.h"
#include "service/rpc/protocol_component_service.h"
#include "service/rpc/session_registry.h"
#include "service/ws/protocol_handle.h"

namespace wsgate::daemon {
namespace {

// Is something accepting connections on this unix socket path?
bool socket_in_use(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const bool in_use = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return in_use;
}

}  // namespace

Server::Server(Config config, std::string config_path)
    : config_(std::move(config)),
      config_path_(std::move(config_path)),
      notifier_(std::make_unique<posix::SystemdNotifier>()) {}

Server::~Server() {
  if (work_) work_.reset();
  io_.stop();
  for (auto& t : io_threads_) {
    if (t.joinable()) t.join();
  }
}

std::string Server::start() {
  auto log = logger("daemon");
  ws::set_keepalive_interval(config_.pool.keepalive_interval_ms);

  std::string policy_error;
  net::PolicyRules rules{config_.policy.allow_hosts, config_.policy.deny_hosts,
                         config_.policy.allow_cidrs, config_.policy.deny_cidrs,
                         config_.policy.allow_ports};
  auto policy = net::DestinationPolicy::create(rules, &policy_error);
  if (!policy) return "policy: " + policy_error;
  auto shared_policy = std::make_shared<const net::DestinationPolicy>(std::move(*policy));

  // deploy: socket activation. A listening unix socket passed by systemd (wsgated.socket)
  // replaces listen.unix_socket: its path is reported, nothing is created, removed or chmod-ed
  // (the .socket unit's SocketMode=/SocketUser= apply). See posix/socket_activation.h.
  posix::InheritedSocket inherited = posix::take_inherited_unix_socket();
  if (!inherited.error.empty()) return inherited.error;
  if (inherited.fd >= 0) config_.listen.unix_socket = inherited.path;
  // deploy end

  const std::string& path = config_.listen.unix_socket;
  if (inherited.fd < 0 && path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return "listen.unix_socket: the path is longer than a unix socket path may be: " + path;
  }
  std::error_code ec;
  if (inherited.fd < 0) {  // deploy: only when the unix socket is ours to create
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return "cannot create the directory of " + path + ": " + ec.message();
  if (std::filesystem::exists(path, ec)) {
    if (socket_in_use(path)) return "another process is already listening on " + path;
    std::filesystem::remove(path, ec);  // a stale socket from an earlier run
  }
  }  // deploy

  registry_ = std::make_unique<rpc::SessionRegistry>(config_.limits.max_sessions,
                                                     config_.limits.max_sessions_per_host);
  // Give glibc's retained heap back to the kernel after bursts of sessions (memory_trim.h). The
  // follow-up trim waits for the upstream close handshakes, which end within timeouts.close_ms.
  if (MemoryTrimmer::enabled_by_environment()) {
    MemoryTrimmer::Options trim;
    trim.settle = std::chrono::milliseconds(config_.timeouts.close_ms) + trim.poll;
    memory_trimmer_ = std::make_unique<MemoryTrimmer>(
        [r = registry_.get()] { return r->active(); }, trim);
  }
  protocol_component_ =
      std::make_unique<rpc::ProtocolComponentService>(config_.limits.max_protocol_handles);
  rpc::GatewayDefaults defaults;
  defaults.connect_timeout = std::chrono::milliseconds(config_.timeouts.connect_ms);
  defaults.handshake_timeout = std::chrono::milliseconds(config_.timeouts.handshake_ms);
  defaults.close_timeout = std::chrono::milliseconds(config_.timeouts.close_ms);
  defaults.keepalive_interval = std::chrono::milliseconds(config_.pool.keepalive_interval_ms);
  defaults.ping_timeout = std::chrono::milliseconds(config_.pool.ping_timeout_ms);
  defaults.idle_timeout = std::chrono::milliseconds(config_.pool.idle_timeout_ms);
  defaults.max_message_bytes = config_.limits.max_message_bytes;
  defaults.max_message_bytes_ceiling = config_.limits.max_message_bytes_ceiling;
  defaults.max_queued_bytes = config_.limits.max_queued_bytes;
  defaults.max_header_bytes = config_.limits.max_header_bytes;
  defaults.default_ca_file = config_.tls.ca_file;
  defaults.allow_client_file_paths = config_.tls.allow_client_file_paths;
  gateway_ = std::make_unique<rpc::GatewayService>(io_, *registry_, defaults, shared_policy,
                                                   logger("gateway"));
  auto* pc = protocol_component_.get();
  admin_ = std::make_unique<rpc::AdminService>(
      *registry_, [pc] { return static_cast<std::uint64_t>(pc->handle_count()); });

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (inherited.fd < 0) {  // deploy: else connections come from the inherited socket
    builder.AddListeningPort("unix:" + path, grpc::InsecureServerCredentials());
  }
  int tcp_port = 0;
  if (!config_.listen.tcp.empty()) {
    builder.AddListeningPort(config_.listen.tcp, grpc::InsecureServerCredentials(), &tcp_port);
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(config_.limits.max_grpc_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config_.limits.max_grpc_message_bytes));
  builder.RegisterService(protocol_component_.get());
  builder.RegisterService(gateway_.get());
  builder.RegisterService(admin_.get());
  grpc_server_ = builder.BuildAndStart();
  if (!grpc_server_) return "cannot listen on unix:" + path + " (see the gRPC log above)";
  if (!config_.listen.tcp.empty() && tcp_port == 0) {
    return "cannot listen on tcp " + config_.listen.tcp;
  }
  if (inherited.fd < 0 &&  // deploy: an inherited socket's mode is the .socket unit's
      ::chmod(path.c_str(), static_cast<mode_t>(config_.listen.unix_socket_mode)) != 0) {
    return "cannot set the mode of " + path + ": " + std::strerror(errno);
  }

  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      io_.get_executor());
  // deploy: accept on the inherited socket and ping the systemd watchdog on the I/O threads
  // (so the pings stop if they hang); READY=1 once every listener accepts connections.
  if (inherited.fd >= 0) {
    inherited_listener_ =
        std::make_unique<posix::InheritedListener>(io_, inherited.fd, *grpc_server_);
    inherited_listener_->start();
  }
  notifier_->start_watchdog(io_);
  // deploy end
  for (std::uint32_t i = 0; i < config_.io_threads; ++i) {
    io_threads_.emplace_back([this] { io_.run(); });
  }
  log->info("wsgated listening on unix:{} (mode {:o}){}", path, config_.listen.unix_socket_mode,
            config_.listen.tcp.empty() ? std::string()
                                       : " and tcp " + config_.listen.tcp);
  return "";
}

int Server::run() {
  asio::signal_set signals(signal_io_, SIGTERM, SIGINT, SIGHUP);
  std::function<void(const asio::error_code&, int)> on_signal =
      [&](const asio::error_code& ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
          reopen_logs();
          if (!config_path_.empty()) {
            LoadResult reloaded = load_config_file(config_path_);
            if (reloaded.config) {
              set_log_level(reloaded.config->log.level);
              logger("daemon")->info("SIGHUP: logs reopened, log level {}",
                                     reloaded.config->log.level);
            } else {
              logger("daemon")->error("SIGHUP: configuration not reloaded: {}", reloaded.error);
            }
          } else {
            logger("daemon")->info("SIGHUP: logs reopened");
          }
          signals.async_wait(on_signal);
          return;
        }
        logger("daemon")->info("signal {}: draining", signal);
        signal_io_.stop();
      };
  signals.async_wait(on_signal);
  // deploy: systemd READY=1 here, not at the end of start(): the listeners are up and, from
  // now on, SIGTERM drains instead of killing the process (the signal_set holds the signals).
  notifier_->ready("listening on unix:" + config_.listen.unix_socket);
  signal_io_.run();
  drain_and_stop();
  return 0;
}

void Server::request_shutdown() {
  asio::post(signal_io_, [this] { signal_io_.stop(); });
}

void Server::drain_and_stop() {
  if (stopping_.exchange(true)) return;
  auto log = logger("daemon");
  notifier_->stopping();  // deploy: systemd STOPPING=1
  if (inherited_listener_) inherited_listener_->close();  // deploy: no new connections
  if (auto* health = grpc_server_->GetHealthCheckService()) health->SetServingStatus(false);
  const std::size_t open = registry_->active();
  registry_->shutdown_all();
  const bool drained =
      registry_->wait_until_empty(std::chrono::milliseconds(config_.timeouts.drain_ms));
  if (drained) {
    log->info("drained {} session(s)", open);
  } else {
    log->warn("drain timeout: {} session(s) still open after {} ms", registry_->active(),
              config_.timeouts.drain_ms);
  }
  grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc_server_->Wait();
  work_.reset();
  io_.stop();
  for (auto& t : io_threads_) t.join();
  io_threads_.clear();
  std::error_code ec;
  // deploy: an inherited socket's path belongs to systemd, which still listens on it.
  if (!inherited_listener_) std::filesystem::remove(config_.listen.unix_socket, ec);
  log->info("wsgated stopped");
  spdlog::default_logger()->flush();
}

}  // namespace wsgate::daemon
