#include "service/rpc/gateway_service.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <list>
#include <mutex>
#include <optional>
#include <vector>

#include "service/log/logging.h"
#include "service/log/redact.h"
#include "service/net/session_log.h"
#include "service/net/upstream_connection.h"
#include "service/net/url.h"
#include "service/rpc/status.h"
#include "service/ws/frame.h"
#include "service/ws/utf8.h"

namespace wsgate::rpc {

// What the service and every one of its sessions share, held by each session through one
// reference (not one per part: an idle session carries them all). A session may outlive the
// service briefly, so it holds a reference; the io_context and the registry outlive both.
struct GatewayShared {
  asio::io_context& io;
  SessionRegistry& registry;
  const GatewayDefaults defaults;
  const std::shared_ptr<net::MemoryBudget> budget;
  const std::shared_ptr<const net::DestinationPolicy> policy;
  const std::shared_ptr<spdlog::logger> logger;
};

namespace {

using v1::ClientMessage;
using v1::ServerMessage;

v1::Initiator to_proto(net::Initiator i) {
  switch (i) {
    case net::Initiator::client: return v1::INITIATOR_CLIENT;
    case net::Initiator::server: return v1::INITIATOR_SERVER;
    case net::Initiator::gateway: return v1::INITIATOR_GATEWAY;
  }
  return v1::INITIATOR_UNSPECIFIED;
}

// Approximate memory of a queued ServerMessage, for the outbox bound.
std::uint64_t weight(const ServerMessage& m) {
  return m.has_message() ? m.message().data().size() + 16 : 64;
}

class GatewaySession final
    : public grpc::ServerBidiReactor<ClientMessage, ServerMessage>,
      public net::ConnectionObserver,
      public RegisteredSession,
      public std::enable_shared_from_this<GatewaySession> {
 public:
  explicit GatewaySession(std::shared_ptr<const GatewayShared> shared)
      : shared_(std::move(shared)),
        registry_(shared_->registry),
        logger_(*shared_->logger),
        created_(std::chrono::steady_clock::now()) {}

  // Called once, right after construction through a shared_ptr.
  void begin() {
    self_ = shared_from_this();
    StartRead(&incoming_);
  }

  // --- gRPC reactions -----------------------------------------------------------------------

  void OnReadDone(bool ok) override {
    if (!ok) return on_client_stream_end();
    std::unique_lock lock(mutex_);
    if (phase_ == Phase::awaiting_open) {
      if (!incoming_.has_open()) {
        lock.unlock();
        return reject(grpc::StatusCode::INVALID_ARGUMENT, "bad_request",
                      "the first message of a Connect stream must be `open`");
      }
      phase_ = Phase::connecting;
      v1::Open open = std::move(*incoming_.mutable_open());
      incoming_.clear_open();  // the moved-from Open would stay allocated for the session's life
      lock.unlock();
      return open_session(open);
    }
    if (phase_ != Phase::open) {
      // Connecting, closing or closed: nothing more is accepted from the client.
      lock.unlock();
      StartRead(&incoming_);
      return;
    }
    ClientMessageTranslator::Result result = translator_.translate(incoming_);
    auto connection = connection_;
    lock.unlock();
    switch (result.kind) {
      case ClientMessageTranslator::Result::Kind::refuse:
        logger_.info("session {}: bad client message: {}", id_, result.refusal.message);
        // The status is decided first: the upstream may answer the close before we get here.
        reject(result.refusal.code, result.refusal.cause, result.refusal.message);
        if (connection && result.refusal.code == grpc::StatusCode::INVALID_ARGUMENT) {
          connection->close(session::close_code(ws::CloseStatus::policy_violation), "",
                            net::Initiator::gateway);
        }
        return;
      case ClientMessageTranslator::Result::Kind::close:
        if (connection) {
          connection->close(result.message.close_code, std::move(result.message.data),
                            net::Initiator::client);
        }
        StartRead(&incoming_);
        return;
      case ClientMessageTranslator::Result::Kind::send:
        break;
    }
    if (!connection) {
      StartRead(&incoming_);
      return;
    }
    // gRPC hands over a message whole, so it is charged as one piece when accepted; it is
    // refused, never dropped, when it would go past the daemon's budget.
    result.message.charge = net::BudgetCharge(shared_->budget);
    const std::uint64_t size = result.message.data.size();
    if (!result.message.charge.grow(size, size)) {
      const std::string why =
          "a " + std::to_string(size) +
          "-byte message does not fit the daemon's memory budget (limits.memory_budget_bytes = " +
          std::to_string(shared_->budget->limit()) + ", " +
          std::to_string(shared_->budget->used()) +
          " bytes in use by all sessions); nothing was sent";
      logger_.warn("session {}: {}", id_, why);
      registry_.count_failure(net::to_string(net::Cause::memory_budget));
      reject(grpc::StatusCode::RESOURCE_EXHAUSTED, net::to_string(net::Cause::memory_budget), why);
      connection->close(session::kTryAgainLater, "try again later", net::Initiator::gateway);
      return;
    }
    // The next read starts once the connection has room: client-side backpressure.
    std::weak_ptr<GatewaySession> weak = shared_from_this();
    connection->send(std::move(result.message), [weak] {
      if (auto self = weak.lock()) self->StartRead(&self->incoming_);
    });
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mutex_);
    writing_ = false;
    if (!outbox_.empty()) {
      outbox_bytes_ -= weight(outbox_.front().message);
      outbox_.pop_front();  // gives its bytes back to the budget
    }
    if (!ok) {
      // The client is gone: nothing more can be written.
      outbox_.clear();
      outbox_bytes_ = 0;
    }
    std::shared_ptr<net::UpstreamConnection> resume;
    if (paused_ && outbox_bytes_ <= max_queued_bytes_ / 2) {
      paused_ = false;
      want_paused_ = false;
      resume = connection_;
    }
    flush(lock);
    if (lock.owns_lock()) lock.unlock();
    // Outside the lock: the connection may deliver (on_message, ...) in this thread.
    if (resume) resume->pause_reading(paused_wish());
  }

  void OnCancel() override {
    std::unique_lock lock(mutex_);
    auto connection = connection_;
    lock.unlock();
    if (connection) connection->abort(net::Cause::shutdown, "the client cancelled the stream");
  }

  void OnDone() override {
    std::shared_ptr<GatewaySession> keep;
    {
      std::lock_guard lock(mutex_);
      done_ = true;
      outbox_.clear();  // nothing more will be written: the budget gets its bytes back now
      outbox_bytes_ = 0;
      keep = std::move(self_);
    }
    if (!id_.empty()) registry_.release(id_);
  }

  // --- connection events (on the connection's strand) ----------------------------------------

  void on_open(const net::OpenInfo& info) override {
    registry_.count_open();
    registry_.record_connect_latency(static_cast<double>(info.connect_time.count()));
    registry_.record_handshake_latency(static_cast<double>(info.handshake_time.count()));
    log::log_session_event(logger_, spdlog::level::info, "session open",
                           {.session = id_, .url = url_, .event = "open"});
    ServerMessage m;
    auto* opened = m.mutable_opened();
    opened->set_session_id(id_);
    opened->set_subprotocol(info.subprotocol);
    for (const auto& e : info.extensions) opened->add_extensions(e);
    opened->set_http_status(static_cast<std::uint32_t>(info.http_status));
    for (const auto& [name, value] : info.response_headers) {
      auto* h = opened->add_response_headers();
      h->set_name(name);
      h->set_value(value);
    }
    std::unique_lock lock(mutex_);
    phase_ = Phase::open;
    enqueue(std::move(m));
    flush(lock);
    if (lock.owns_lock()) lock.unlock();  // never call into gRPC under the lock
    StartRead(&incoming_);  // client messages flow from now on
  }

  void on_message(bool text, std::string data, bool final, net::BudgetCharge charge) override {
    ServerMessage m;
    auto* msg = m.mutable_message();
    msg->set_text(text);
    msg->set_data(std::move(data));
    msg->set_final(final);
    std::unique_lock lock(mutex_);
    enqueue(std::move(m), std::move(charge));
    std::shared_ptr<net::UpstreamConnection> pause;
    if (!paused_ && outbox_bytes_ > max_queued_bytes_ && connection_) {
      paused_ = true;  // the client is not keeping up: stop reading the socket
      want_paused_ = true;
      pause = connection_;
    }
    flush(lock);
    if (lock.owns_lock()) lock.unlock();
    if (pause) pause->pause_reading(paused_wish());  // outside the lock, as every call into it
  }

  void on_pong(std::string payload) override {
    ServerMessage m;
    m.mutable_pong()->set_payload(std::move(payload));
    std::unique_lock lock(mutex_);
    enqueue(std::move(m));
    flush(lock);
  }

  void on_closed(const net::CloseInfo& info) override {
    log_end(info);
    ServerMessage m;
    auto* closed = m.mutable_closed();
    closed->set_code(info.code);
    closed->set_reason(info.reason);
    closed->set_initiator(to_proto(info.initiator));
    closed->set_clean(info.clean);
    grpc::Status status = grpc::Status::OK;
    std::optional<ServerMessage> error_message;
    if (info.failure && info.failure->cause != net::Cause::shutdown) {
      registry_.count_failure(net::to_string(info.failure->cause));
      const v1::ErrorDetail detail = failure_detail(*info.failure);
      status = error_status(status_code_for(*info.failure), info.failure->message, detail);
      error_message = error_to_message(status, detail);
    } else {
      // A connection lost without a close frame is a failure too, although the stream itself
      // ends normally (the client reads `closed` 1006).
      if (info.code == session::close_code(ws::CloseStatus::aborted) && !info.failure) {
        registry_.count_failure(net::to_string(net::Cause::connection_lost));
      }
    }
    // The slot is freed before the stream can finish: a client that saw the end and asks for
    // stats must not find its session still counted.
    registry_.release(id_);
    std::unique_lock lock(mutex_);
    phase_ = Phase::closed;
    connection_.reset();
    enqueue(std::move(m));
    if (error_message) enqueue(std::move(*error_message));
    if (!finish_status_) finish_status_ = std::make_unique<const grpc::Status>(status);
    flush(lock);
  }

  void on_failed(const net::Failure& failure) override {
    registry_.count_failure(net::to_string(failure.cause));
    log::log_session_event(
        logger_, spdlog::level::warn, failure.message,
        {.session = id_, .url = url_, .event = "failed", .cause = net::to_string(failure.cause),
         .duration_ms = age_ms()});
    {
      std::lock_guard lock(mutex_);
      connection_.reset();
    }
    registry_.release(id_);  // before the stream can finish (see on_closed)
    const v1::ErrorDetail detail = failure_detail(failure);
    reject_with(error_status(status_code_for(failure), failure.message, detail), detail);
  }

  // --- RegisteredSession ----------------------------------------------------------------------

  v1::SessionInfo info() const override {
    v1::SessionInfo out;
    std::lock_guard lock(mutex_);
    out.set_id(id_);
    out.set_url(url_);
    switch (phase_) {
      case Phase::awaiting_open:
      case Phase::connecting: out.set_state(v1::SESSION_STATE_CONNECTING); break;
      case Phase::open: out.set_state(v1::SESSION_STATE_OPEN); break;
      case Phase::closed: out.set_state(v1::SESSION_STATE_CLOSED); break;
    }
    if (connection_) {
      const auto& c = connection_->counters();
      out.set_bytes_sent(c.bytes_sent);
      out.set_bytes_received(c.bytes_received);
      out.set_messages_sent(c.messages_sent);
      out.set_messages_received(c.messages_received);
    }
    out.set_age_ms(age_ms());
    return out;
  }

  void shutdown() override {
    std::unique_lock lock(mutex_);
    auto connection = connection_;
    lock.unlock();
    if (connection) connection->shutdown();
  }

 private:
  enum class Phase { awaiting_open, connecting, open, closed };

  // paused_ for the connection, read when its pause call takes effect (see pause_reading).
  std::function<bool()> paused_wish() {
    std::weak_ptr<GatewaySession> weak = shared_from_this();
    return [weak] {
      auto self = weak.lock();
      return self && self->want_paused_.load();
    };
  }

  std::uint64_t age_ms() const {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - created_)
                                          .count());
  }

  // The session's one close line (docs/operations.md, "Logs"): how it ended and what it moved.
  void log_end(const net::CloseInfo& info) {
    static constexpr const char* kInitiators[] = {"client", "server", "gateway"};
    log::SessionEvent e{.session = id_, .url = url_, .event = "close", .code = info.code};
    e.initiator = kInitiators[static_cast<int>(info.initiator)];
    if (info.failure) e.cause = net::to_string(info.failure->cause);
    e.duration_ms = age_ms();
    {
      std::lock_guard lock(mutex_);
      if (connection_) {
        const auto& c = connection_->counters();
        e.bytes_in = c.bytes_received;
        e.bytes_out = c.bytes_sent;
        e.messages_in = c.messages_received;
        e.messages_out = c.messages_sent;
      }
    }
    const bool failed = info.failure && info.failure->cause != net::Cause::shutdown;
    log::log_session_event(logger_, failed ? spdlog::level::warn : spdlog::level::info,
                           failed ? info.failure->message : std::string("session closed"), e);
  }

  void open_session(const v1::Open& open) {
    // Everything is checked before any network I/O: a bad request makes no connection.
    OpenValidation validated = validate_open(open, shared_->defaults);
    if (!validated.settings) {
      const Refusal& r = validated.refusal;
      return reject(r.code, r.cause, r.message);
    }
    session::Settings settings = std::move(*validated.settings);
    net::ConnectOptions options = std::move(validated.connect);
    options.policy = shared_->policy;
    settings.budget = shared_->budget;
    if (options.tls && options.tls->insecure_skip_verify) {
      logger_.warn("session to {}: TLS verification disabled by the client's request",
                   log::redact_url(open.url()));
    }

    if (shared_->defaults.fd_budget) {
      if (std::string why = shared_->defaults.fd_budget->admit_session(); !why.empty()) {
        registry_.count_failure("fd_limit");
        return reject(grpc::StatusCode::RESOURCE_EXHAUSTED, "fd_limit", why);
      }
    }
    std::string id;
    // A unix socket counts per path against the per-host limit ("unix:" cannot start a host).
    const std::string host = settings.url.unix_path.empty()
                                 ? SessionRegistry::host_key(settings.url.host)
                                 : "unix:" + settings.url.unix_path;
    switch (registry_.admit(host, &id)) {
      case SessionRegistry::Admission::admitted: break;
      case SessionRegistry::Admission::total_limit:
        registry_.count_failure("session_limit");
        return reject(grpc::StatusCode::RESOURCE_EXHAUSTED, "session_limit",
                      "the daemon's session limit (limits.max_sessions) is reached");
      case SessionRegistry::Admission::host_limit:
        registry_.count_failure("session_limit");
        return reject(grpc::StatusCode::RESOURCE_EXHAUSTED, "session_limit",
                      "the per-host session limit (limits.max_sessions_per_host) is reached for " +
                          host);
      case SessionRegistry::Admission::draining:
        return reject(grpc::StatusCode::UNAVAILABLE, "shutdown", "the daemon is shutting down");
    }
    // The per-host limit also counts the address the connection reaches, so "localhost" and
    // "127.0.0.1" share their slots.
    options.admit_address = [&registry = registry_, id](const asio::ip::address& address) {
      const std::string key = SessionRegistry::host_key(address.to_string());
      if (registry.admit_address(id, key)) return std::string();
      return "the per-host session limit (limits.max_sessions_per_host) is reached for " + key;
    };
    std::shared_ptr<net::UpstreamConnection> connection;
    {
      std::lock_guard lock(mutex_);
      id_ = id;
      url_ = open.url();
      settings.trace = std::make_shared<net::SessionLog>(id);
      max_queued_bytes_ = settings.max_queued_bytes;
      connection = net::UpstreamConnection::create(shared_->io, std::move(settings),
                                                   std::move(options), shared_from_this());
      connection_ = connection;
    }
    registry_.attach(id, shared_from_this());
    connection->start();
  }

  void on_client_stream_end() {
    std::unique_lock lock(mutex_);
    client_ended_ = true;
    auto connection = connection_;
    const Phase phase = phase_;
    lock.unlock();
    if (phase == Phase::awaiting_open) {
      return reject(grpc::StatusCode::INVALID_ARGUMENT, "bad_request",
                    "the stream ended before an `open` message");
    }
    // Ending the stream without a close sends 1001 upstream (a no-op after a close).
    if (connection) {
      connection->close(session::close_code(ws::CloseStatus::endpoint_unavailable),
                        "client went away", net::Initiator::client);
    }
  }

  ServerMessage error_to_message(const grpc::Status& status, const v1::ErrorDetail& detail) {
    ServerMessage m;
    auto* e = m.mutable_error();
    e->set_code(std::string(status_code_name(status.error_code())));
    e->set_message(status.error_message());
    *e->mutable_detail() = detail;
    return m;
  }

  void reject(grpc::StatusCode code, const std::string& cause, const std::string& message) {
    v1::ErrorDetail detail;
    detail.set_cause(cause);
    reject_with(error_status(code, message, detail), detail);
  }

  // Ends the stream with an in-band error message and the status.
  void reject_with(const grpc::Status& status, const v1::ErrorDetail& detail) {
    std::unique_lock lock(mutex_);
    if (finish_status_) return;
    // The stream ends here, so its slot is freed now, not when the upstream close completes;
    // outside the lock, because release() reads this session's info().
    const std::string id = id_;
    lock.unlock();
    if (!id.empty()) registry_.release(id);
    lock.lock();
    if (finish_status_) return;
    phase_ = Phase::closed;
    enqueue(error_to_message(status, detail));
    finish_status_ = std::make_unique<const grpc::Status>(status);
    flush(lock);
  }

  void enqueue(ServerMessage m, net::BudgetCharge charge = {}) {
    outbox_bytes_ += weight(m);
    outbox_.push_back(Outgoing{std::move(m), std::move(charge)});
  }

  // Starts the next write, or Finish once everything is written. Called with the lock held;
  // releases it before calling into gRPC.
  void flush(std::unique_lock<std::mutex>& lock) {
    if (writing_ || done_ || finished_) return;
    if (!outbox_.empty()) {
      writing_ = true;
      const ServerMessage* next = &outbox_.front().message;  // stable until popped in OnWriteDone
      // More messages wait behind this one: gRPC may hold it and send it with the next (one
      // write in flight per stream, but not one syscall per message). The last one is sent
      // without the hint, which flushes.
      grpc::WriteOptions options;
      if (outbox_.size() > 1) options.set_buffer_hint();
      lock.unlock();
      StartWrite(next, options);
      return;
    }
    if (finish_status_) {
      finished_ = true;
      grpc::Status status = *finish_status_;
      lock.unlock();
      Finish(status);
    }
  }

  const std::shared_ptr<const GatewayShared> shared_;  // defaults, budget, policy, logger
  SessionRegistry& registry_;  // shared_->registry
  spdlog::logger& logger_;     // *shared_->logger
  const std::chrono::steady_clock::time_point created_;

  mutable std::mutex mutex_;
  std::shared_ptr<GatewaySession> self_;  // gRPC's reference, dropped in OnDone
  std::shared_ptr<net::UpstreamConnection> connection_;
  // The session's max_queued_bytes (after the client's Open): the outbox bound. Only this is
  // kept of the settings; the connection holds the rest.
  std::uint64_t max_queued_bytes_ = 0;
  Phase phase_ = Phase::awaiting_open;
  std::string id_;
  std::string url_;
  ClientMessage incoming_;
  // A ServerMessage waiting for the gRPC client, with the budget charge of its payload.
  struct Outgoing {
    ServerMessage message;
    net::BudgetCharge charge;
  };
  // A list: ServerMessages stay where they are while gRPC writes them, and an empty list holds
  // no memory (an empty libstdc++ deque holds a 512-byte node and its map, per idle session).
  std::list<Outgoing> outbox_;
  std::uint64_t outbox_bytes_ = 0;
  bool writing_ = false;
  bool paused_ = false;
  std::atomic<bool> want_paused_{false};  // paused_, readable without the mutex
  bool finished_ = false;
  bool done_ = false;
  bool client_ended_ = false;
  // How the stream ends, once decided; boxed (a grpc::Status inline is 72 bytes per idle session).
  std::unique_ptr<const grpc::Status> finish_status_;
  ClientMessageTranslator translator_;
};

}  // namespace

GatewayService::GatewayService(asio::io_context& io, SessionRegistry& registry,
                               GatewayDefaults defaults,
                               std::shared_ptr<const net::DestinationPolicy> policy,
                               std::shared_ptr<spdlog::logger> logger) {
  auto budget = std::make_shared<net::MemoryBudget>(defaults.memory_budget_bytes);
  shared_ = std::make_shared<const GatewayShared>(GatewayShared{
      io, registry, std::move(defaults), std::move(budget), std::move(policy), std::move(logger)});
}

std::uint64_t GatewayService::queued_payload_bytes() const { return shared_->budget->used(); }

grpc::ServerBidiReactor<ClientMessage, ServerMessage>* GatewayService::Connect(
    grpc::CallbackServerContext*) {
  auto session = std::make_shared<GatewaySession>(shared_);
  session->begin();
  return session.get();
}

}  // namespace wsgate::rpc
