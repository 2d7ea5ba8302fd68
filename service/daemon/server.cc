#include "service/daemon/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <google/protobuf/stubs/logging.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "service/daemon/local_listener.h"
#include "service/daemon/memory_trim.h"
#include "service/daemon/metrics.h"
#include "service/daemon/platform.h"
#include "service/log/logging.h"
#include "service/log/redact.h"
#ifdef WSGATE_HAVE_GRPC_STD_PROTO
#include "grpc/health/v1/health.pb.h"
#include "service/daemon/reflection_v1.h"
#endif
#include "service/daemon/posix/sd_notify.h"
#include "service/net/destination_policy.h"
#include "service/net/http_proxy.h"
#include "service/rpc/admin_service.h"
#include "service/rpc/fd_budget.h"
#include "service/rpc/gateway_service.h"
#include "service/rpc/peer_directory.h"
#include "service/rpc/protocol_component_service.h"
#include "service/rpc/session_registry.h"
#include "service/rpc/status.h"
#include "service/ws/protocol_handle.h"

namespace wsgate::daemon {
namespace {

// libprotobuf writes an ERROR line to stderr for every string field with invalid UTF-8 in a
// message it parses, and gRPC then refuses that message: any local client could flood the log
// that way. Its lines go to our log at debug instead (component "rpc"); the client gets its
// status either way.
void protobuf_log_to_debug(google::protobuf::LogLevel, const char* file, int line,
                           const std::string& message) {
  log::logger("rpc")->debug("libprotobuf {}:{}: {}", file, line, message);
}

// ProtocolComponent identity. On the unix socket a handle belongs to the caller's connection
// ("conn:<id>": released when the connection goes away; another connection cannot name it,
// whatever wsgate-client-id it sends) and counts against the caller's uid. Over TCP (no
// credentials) the owner stays the peer address plus wsgate-client-id, as before.
std::string connection_owner(const rpc::PeerInfo& peer) {
  return "conn:" + std::to_string(peer.connection_id);
}

rpc::ProtocolComponentService::Caller protocol_component_caller(
    const rpc::PeerDirectory& peers, const grpc::CallbackServerContext& context) {
  if (std::optional<rpc::PeerInfo> peer = peers.find(context.peer())) {
    return {connection_owner(*peer), "uid:" + std::to_string(peer->uid)};
  }
  return rpc::ProtocolComponentService::default_caller(context);  // TCP: today's rule
}

// Admin RPCs show every session's URL: only the daemon's own uid, root, and the uids/gids of
// [admin], known from the unix connection's kernel credentials. Admin over TCP is refused: a
// TCP peer has no credentials to check.
grpc::Status authorize_admin(const AdminConfig& admin, const rpc::PeerDirectory& peers,
                             const grpc::CallbackServerContext& context) {
  auto deny = [](const std::string& why) {
    wsgate::v1::ErrorDetail detail;
    detail.set_cause("admin_not_allowed");
    return rpc::error_status(grpc::StatusCode::PERMISSION_DENIED, why, detail);
  };
  const std::string peer = context.peer();
  const std::optional<rpc::PeerInfo> info = peers.find(peer);
  if (!info) {
    return deny("the Admin service is served on the unix socket only, to callers allowed by "
                "admin.allow_uids / admin.allow_gids (caller: " + peer + ")");
  }
  auto has = [](const std::vector<std::uint32_t>& v, std::uint32_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  if (platform::is_own_or_root_uid(info->uid) || has(admin.allow_uids, info->uid) ||
      has(admin.allow_gids, info->gid)) {
    return grpc::Status::OK;
  }
  return deny("uid " + std::to_string(info->uid) + " (gid " + std::to_string(info->gid) +
              ") may not call the Admin service: add it to admin.allow_uids or its group to "
              "admin.allow_gids");
}

}  // namespace

// gRPC calls started and in progress, for the metrics endpoint. gRPC creates one interceptor per
// call and deletes it when the call is destroyed, so the interceptor's lifetime is the call's.
struct GrpcCallCounter {
  std::atomic<std::uint64_t> active{0};
  std::atomic<std::uint64_t> total{0};
};

namespace {

class CountingInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit CountingInterceptor(std::shared_ptr<GrpcCallCounter> counter) : counter_(std::move(counter)) {
    counter_->total.fetch_add(1, std::memory_order_relaxed);
    counter_->active.fetch_add(1, std::memory_order_relaxed);
  }
  ~CountingInterceptor() override { counter_->active.fetch_sub(1, std::memory_order_relaxed); }
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override { methods->Proceed(); }

 private:
  std::shared_ptr<GrpcCallCounter> counter_;
};

class CountingInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CountingInterceptorFactory(std::shared_ptr<GrpcCallCounter> counter) : counter_(std::move(counter)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo*) override {
    return new CountingInterceptor(counter_);
  }

 private:
  std::shared_ptr<GrpcCallCounter> counter_;
};

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
  auto log = log::logger("daemon");
  for (const std::string& w : warnings(config_)) log->warn("{}", w);
  google::protobuf::SetLogHandler(&protobuf_log_to_debug);
  // SIGTERM/SIGINT (Windows: console events) stop; SIGHUP reloads (platform.h). Installed
  // first: a signal sent while starting (the socket accepts connections before start() returns)
  // waits in signal_io_ for run() instead of killing the process.
  control_events_ = std::make_unique<platform::ControlEvents>(
      signal_io_,
      [this](const std::string& why) {
        log::logger("daemon")->info("{}: draining", why);
        signal_io_.stop();
      },
      [this](const std::string& why) { reload(why); });

  // The usual soft open-file limit (1024) cannot hold the default max_sessions: raise it to the
  // hard limit, then refuse a max_sessions it still cannot hold (rpc/fd_budget.h). Windows has
  // no such limit (platform.h).
  const platform::FileLimit nofile = platform::raise_file_limit();
  if (!nofile.warning.empty()) log->warn("{}", nofile.warning);
  log->info("open-file limit {} (was {})", nofile.soft, nofile.before);
  if (std::string error = rpc::FdBudget::check_limit(config_.limits.max_sessions, nofile.soft);
      !error.empty()) {
    return error;
  }
  ws::set_keepalive_interval(config_.pool.keepalive_interval_ms);

  std::string policy_error;
  net::PolicyRules rules{config_.policy.allow_hosts, config_.policy.deny_hosts,
                         config_.policy.allow_cidrs, config_.policy.deny_cidrs,
                         config_.policy.allow_ports, config_.policy.allow_unix_sockets,
                         config_.policy.deny_unix_sockets};
  auto policy = net::DestinationPolicy::create(rules, &policy_error);
  if (!policy) return "policy: " + policy_error;
  auto shared_policy = std::make_shared<const net::DestinationPolicy>(std::move(*policy));
  // The HTTP proxy for sessions that name none: [proxy], else the environment (http_proxy.h).
  net::ProxyRules proxy_rules{config_.proxy.url, config_.proxy.no_proxy,
                              config_.proxy.authorization, config_.proxy.from_environment};
  std::string proxy_error;
  auto proxy = net::ProxySelector::create(
      proxy_rules,
      config_.proxy.from_environment ? net::read_proxy_environment(&std::getenv)
                                     : net::ProxyEnvironment{},
      &proxy_error);
  if (!proxy) return proxy_error;
  log->info("HTTP proxy: {}", proxy->describe());

  // The local socket (listen.unix_socket): bound or inherited here on POSIX, bound by gRPC on
  // Windows (local_listener.h).
  local_listener_ = std::make_unique<LocalListener>();
  if (std::string error = local_listener_->prepare(config_.listen); !error.empty()) return error;

  registry_ = std::make_unique<rpc::SessionRegistry>(config_.limits.max_sessions,
                                                     config_.limits.max_sessions_per_host);
  rpc::ProtocolComponentLimits protocol_limits;
  protocol_limits.max_handles = config_.limits.max_protocol_handles;
  protocol_limits.max_handles_per_client = config_.limits.max_protocol_handles_per_client;
  protocol_limits.max_queued_bytes_per_handle = config_.limits.max_protocol_queued_bytes;
  protocol_limits.max_pending_operations = config_.limits.max_protocol_pending_operations;
  protocol_limits.max_memory_bytes = config_.limits.max_protocol_memory_bytes;
  protocol_limits.idle_lease = std::chrono::milliseconds(config_.limits.max_protocol_idle_ms);
  // Unix peers (SO_PEERCRED) first: ProtocolComponent asks them who is calling. A connection
  // that goes away releases its slot in the fd budget and its ProtocolComponent handles (no
  // connection is retired before the listener starts, so protocol_component_ is set by then).
  fd_budget_ = std::make_shared<rpc::FdBudget>(nofile.soft);
  fd_budget_->set_session_counter([registry = registry_.get()] { return registry->active(); });
  rpc::FdBudget* budget = fd_budget_.get();
  peers_ = std::make_unique<rpc::PeerDirectory>([this, budget](const rpc::PeerInfo& peer) {
    budget->connection_closed();
    protocol_component_->release_owner(connection_owner(peer));
  });
  rpc::PeerDirectory* peers = peers_.get();
  protocol_component_ = std::make_unique<rpc::ProtocolComponentService>(
      protocol_limits,
      [peers](const grpc::CallbackServerContext& context) {
        return protocol_component_caller(*peers, context);
      });
  // Give glibc's retained heap back to the kernel after bursts of sessions (memory_trim.h). The
  // follow-up trim waits for the upstream close handshakes, which end within timeouts.close_ms.
  if (MemoryTrimmer::enabled_by_environment()) {
    MemoryTrimmer::Options trim;
    trim.settle = std::chrono::milliseconds(config_.timeouts.close_ms) + trim.poll;
    memory_trimmer_ = std::make_unique<MemoryTrimmer>(
        [r = registry_.get()] { return r->active(); }, trim);
  }
  rpc::GatewayDefaults defaults;
  defaults.connect_timeout = std::chrono::milliseconds(config_.timeouts.connect_ms);
  defaults.handshake_timeout = std::chrono::milliseconds(config_.timeouts.handshake_ms);
  defaults.close_timeout = std::chrono::milliseconds(config_.timeouts.close_ms);
  defaults.connection_attempt_delay =
      std::chrono::milliseconds(config_.timeouts.connection_attempt_delay_ms);
  defaults.keepalive_interval = std::chrono::milliseconds(config_.pool.keepalive_interval_ms);
  defaults.ping_timeout = std::chrono::milliseconds(config_.pool.ping_timeout_ms);
  defaults.idle_timeout = std::chrono::milliseconds(config_.pool.idle_timeout_ms);
  defaults.max_message_bytes = config_.limits.max_message_bytes;
  defaults.max_message_bytes_ceiling = config_.limits.max_message_bytes_ceiling;
  defaults.max_queued_bytes = config_.limits.max_queued_bytes;
  defaults.max_header_bytes = config_.limits.max_header_bytes;
  defaults.max_request_headers = config_.limits.max_request_headers;
  defaults.max_request_header_bytes = config_.limits.max_request_header_bytes;
  defaults.memory_budget_bytes = config_.limits.memory_budget_bytes;
  defaults.default_ca_file = config_.tls.ca_file;
  defaults.allow_client_file_paths = config_.tls.allow_client_file_paths;
  defaults.proxy = std::make_shared<const net::ProxySelector>(std::move(*proxy));
  defaults.allow_session_proxies = config_.proxy.allow_session_proxies;
  defaults.fd_budget = fd_budget_;
  defaults.compression.enabled = config_.compression.enabled;
  defaults.compression.threshold_bytes = config_.compression.threshold_bytes;
  defaults.compression.client_no_context_takeover = config_.compression.client_no_context_takeover;
  defaults.compression.server_no_context_takeover = config_.compression.server_no_context_takeover;
  defaults.compression.server_max_window_bits = config_.compression.server_max_window_bits;
  defaults.compression.client_max_window_bits = config_.compression.client_max_window_bits;
  gateway_ = std::make_unique<rpc::GatewayService>(io_, *registry_, defaults, shared_policy,
                                                   log::logger("gateway"));
  auto* pc = protocol_component_.get();
  admin_ = std::make_unique<rpc::AdminService>(
      *registry_, [pc] { return static_cast<std::uint64_t>(pc->handle_count()); },
      [admin = config_.admin, peers](const grpc::CallbackServerContext& context) {
        return authorize_admin(admin, *peers, context);
      });

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // Every service served, by full name: reflection v1 lists them, and each gets a health status
  // of its own (SERVING now, NOT_SERVING while draining).
  const std::vector<std::string> services = {
      wsgate::v1::Gateway::service_full_name(), wsgate::v1::ProtocolComponent::service_full_name(),
      wsgate::v1::Admin::service_full_name(), "grpc.health.v1.Health",
      "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"};
  grpc::ServerBuilder builder;  // POSIX: unix connections come from local_listener_, not gRPC
  local_listener_->add_to(builder);
  int tcp_port = 0;
  if (!config_.listen.tcp.empty()) {
    builder.AddListeningPort(config_.listen.tcp, grpc::InsecureServerCredentials(), &tcp_port);
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(config_.limits.max_grpc_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config_.limits.max_grpc_message_bytes));
  builder.RegisterService(protocol_component_.get());
  builder.RegisterService(gateway_.get());
  builder.RegisterService(admin_.get());
#ifdef WSGATE_HAVE_GRPC_STD_PROTO
  // Referencing the health proto's descriptor keeps health.pb.o linked, which registers
  // grpc.health.v1 in the generated pool that both reflection services read.
  log::logger("rpc")->debug("reflection: {} known", grpc::health::v1::HealthCheckRequest::descriptor()->file()->name());
  reflection_v1_ = std::make_unique<ReflectionV1Service>(services);
  builder.RegisterService(reflection_v1_.get());
#endif
  // The call counter is an interceptor, which every message of every call passes through:
  // installed only when someone reads it (metrics.listen set).
  grpc_calls_ = std::make_shared<GrpcCallCounter>();
  if (!config_.metrics.listen.empty()) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
    interceptors.push_back(std::make_unique<CountingInterceptorFactory>(grpc_calls_));
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  grpc_server_ = builder.BuildAndStart();
  if (!grpc_server_) {
    return "cannot start the gRPC server on " + local_listener_->description() +
           (config_.listen.tcp.empty() ? "" : " and tcp " + config_.listen.tcp) +
           " (see the gRPC log above)";
  }
  if (!config_.listen.tcp.empty() && tcp_port == 0) {
    return "cannot listen on tcp " + config_.listen.tcp;
  }
  if (auto* health = grpc_server_->GetHealthCheckService()) {
    for (const std::string& name : services) {
      if (name == "grpc.reflection.v1.ServerReflection" && !reflection_v1_) continue;
      health->SetServingStatus(name, true);
      log->debug("health: {} SERVING", name);
    }
  }

  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      io_.get_executor());
  // The fds open now (gRPC's, the logs', the listening sockets) are the budget's base.
  fd_budget_->set_base(platform::count_open_files(64));
  log->info("fd budget: {} fds in use at start, {} kept in reserve of {}", fd_budget_->in_use(),
            rpc::FdBudget::reserve(nofile.soft), nofile.soft);
  // Accept on the unix socket (ours or systemd's); ping the systemd watchdog on the I/O
  // threads (so the pings stop if they hang); READY=1 once every listener accepts connections.
  if (std::string error = local_listener_->start(io_, *grpc_server_, *peers_, *fd_budget_);
      !error.empty()) {
    return error;
  }
  notifier_->start_watchdog(io_);
  // deploy end
  if (!config_.metrics.listen.empty()) {
    MetricsSources sources;
    sources.registry = registry_.get();
    sources.protocol_handles = [pc] { return static_cast<std::uint64_t>(pc->handle_count()); };
    sources.protocol_accounted_bytes = [pc] { return pc->accounted_bytes(); };
    sources.grpc_streams_active = [calls = grpc_calls_] { return calls->active.load(); };
    sources.grpc_streams_total = [calls = grpc_calls_] { return calls->total.load(); };
    sources.fd_budget_in_use = [budget = fd_budget_] { return budget->in_use(); };
    sources.gateway_queued_bytes = [gw = gateway_.get()] { return gw->queued_payload_bytes(); };
    metrics_ = std::make_unique<MetricsServer>(io_, [sources] { return render_metrics(sources); });
    if (std::string error = metrics_->listen(config_.metrics.listen); !error.empty()) return error;
    log::log_event(*log, spdlog::level::info, "metrics: serving " + metrics_->address(),
                   {{"event", "metrics_listening"}, {"address", metrics_->address()}});
  }
  for (std::uint32_t i = 0; i < config_.io_threads; ++i) {
    io_threads_.emplace_back([this] { io_.run(); });
  }
  log->info("wsgated listening on {}{}", local_listener_->description(),
            config_.listen.tcp.empty() ? std::string()
                                       : " and tcp " + config_.listen.tcp);
  return "";
}

int Server::run() {
  // deploy: systemd READY=1 here, not at the end of start(): the listeners are up and, from
  // now on, SIGTERM drains instead of killing the process (the signal_set holds the signals).
  notifier_->ready("listening on unix:" + config_.listen.unix_socket);
  signal_io_.run();
  drain_and_stop();
  control_events_.reset();  // after the drain (a console-close event on Windows waits for it)
  return 0;
}

void Server::reload(const std::string& why) {
  log::reopen_logs();
  if (config_path_.empty()) {
    log::logger("daemon")->info("{}: logs reopened", why);
    return;
  }
  LoadResult reloaded = load_config_file(config_path_);
  std::string invalid;
  if (reloaded.config) invalid = validate(*reloaded.config);
  if (reloaded.config && invalid.empty()) {
    // A --log-level flag (kept in config_) wins over the file.
    const std::string level = level_flag_.empty() ? reloaded.config->log.level : level_flag_;
    log::set_log_level(level);
    log::set_redaction({reloaded.config->log.redact, reloaded.config->log.redact_subprotocols});
    log::logger("daemon")->info("{}: logs reopened, log level {}", why, level);
  } else if (reloaded.config) {
    log::logger("daemon")->error("{}: configuration not reloaded: {}", why, invalid);
  } else {
    log::logger("daemon")->error("{}: configuration not reloaded: {}", why, reloaded.error);
  }
}

void Server::request_reload(std::string why) {
  asio::post(signal_io_, [this, why = std::move(why)] { reload(why); });
}

void Server::set_log_level_override(std::string level) { level_flag_ = std::move(level); }

void Server::request_shutdown() {
  asio::post(signal_io_, [this] { signal_io_.stop(); });
}

void Server::drain_and_stop() {
  if (stopping_.exchange(true)) return;
  auto log = log::logger("daemon");
  notifier_->stopping();  // deploy: systemd STOPPING=1
  // NOT_SERVING for "" and for every service name set in start().
  if (auto* health = grpc_server_->GetHealthCheckService()) health->SetServingStatus(false);
  log->debug("health: every service NOT_SERVING (draining)");
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
  // Clients that connect while draining were still accepted: they learn NOT_SERVING and get
  // "shutdown" for new sessions instead of waiting in the backlog. Now no new connections.
  if (local_listener_) local_listener_->close();
  if (metrics_) metrics_->close();
  grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc_server_->Wait();
  work_.reset();
  io_.stop();
  for (auto& t : io_threads_) t.join();
  io_threads_.clear();
  local_listener_->remove_path();  // unless systemd's (it still listens on it)
  log->info("wsgated stopped");
  spdlog::default_logger()->flush();
}

}  // namespace wsgate::daemon
