#include "service/rpc/gateway_service.h"

#include <spdlog/spdlog.h>

#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "service/net/upstream_connection.h"
#include "service/net/url.h"
#include "service/rpc/status.h"
#include "service/ws/frame.h"
#include "service/ws/utf8.h"

namespace wsgate::rpc {
namespace {

using v1::ClientMessage;
using v1::ServerMessage;

grpc::StatusCode status_code_for(const net::Failure& f) {
  switch (f.cause) {
    case net::Cause::bad_request:
    case net::Cause::tls_error:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case net::Cause::destination_denied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case net::Cause::connect_timeout:
    case net::Cause::handshake_timeout:
    case net::Cause::ping_timeout:
    case net::Cause::close_timeout:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case net::Cause::upgrade_refused:
      return f.http_status >= 500 ? grpc::StatusCode::UNAVAILABLE
                                  : grpc::StatusCode::FAILED_PRECONDITION;
    case net::Cause::handshake_rejected:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case net::Cause::protocol_violation:
      return grpc::StatusCode::DATA_LOSS;
    case net::Cause::message_too_big:
    case net::Cause::fd_limit:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case net::Cause::none:
    case net::Cause::dns_failure:
    case net::Cause::connection_refused:
    case net::Cause::network_error:
    case net::Cause::tls_handshake_failed:
    case net::Cause::shutdown:
      return grpc::StatusCode::UNAVAILABLE;
  }
  return grpc::StatusCode::UNKNOWN;
}

v1::ErrorDetail detail_for(const net::Failure& f) {
  v1::ErrorDetail d = f.engine_result ? hresult_detail(*f.engine_result, net::to_string(f.cause))
                                      : v1::ErrorDetail{};
  d.set_cause(net::to_string(f.cause));
  d.set_http_status(static_cast<std::uint32_t>(f.http_status));
  for (const auto& [name, value] : f.http_headers) {
    auto* h = d.add_http_headers();
    h->set_name(name);
    h->set_value(value);
  }
  return d;
}

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
  GatewaySession(asio::io_context& io, SessionRegistry& registry, const GatewayDefaults& defaults,
                 std::shared_ptr<const net::DestinationPolicy> policy,
                 std::shared_ptr<spdlog::logger> logger)
      : io_(io),
        registry_(registry),
        defaults_(defaults),
        policy_(std::move(policy)),
        logger_(std::move(logger)),
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
      lock.unlock();
      return open_session(open);
    }
    if (phase_ != Phase::open) {
      // Connecting, closing or closed: nothing more is accepted from the client.
      lock.unlock();
      StartRead(&incoming_);
      return;
    }
    std::optional<net::OutgoingMessage> message;
    std::string error;
    translate(incoming_, &message, &error);
    auto connection = connection_;
    lock.unlock();
    if (!error.empty()) {
      logger_->info("session {}: bad client message: {}", id_, error);
      // The status is decided first: the upstream may answer the close before we get here.
      reject(grpc::StatusCode::INVALID_ARGUMENT, "bad_request", error);
      if (connection) connection->close(1008, "", net::Initiator::gateway);
      return;
    }
    if (!message || !connection) {
      StartRead(&incoming_);
      return;
    }
    if (message->kind == net::OutgoingMessage::Kind::close) {
      connection->close(message->close_code, std::move(message->data), net::Initiator::client);
      StartRead(&incoming_);
      return;
    }
    // The next read starts once the connection has room: client-side backpressure.
    std::weak_ptr<GatewaySession> weak = shared_from_this();
    connection->send(std::move(*message), [weak] {
      if (auto self = weak.lock()) self->StartRead(&self->incoming_);
    });
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mutex_);
    writing_ = false;
    if (!outbox_.empty()) {
      outbox_bytes_ -= weight(outbox_.front());
      outbox_.pop_front();
    }
    if (!ok) {
      // The client is gone: nothing more can be written.
      outbox_.clear();
      outbox_bytes_ = 0;
    }
    if (paused_ && outbox_bytes_ <= effective_.max_queued_bytes / 2) {
      paused_ = false;
      if (connection_) connection_->pause_reading(false);
    }
    flush(lock);
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
      keep = std::move(self_);
    }
    if (!id_.empty()) registry_.release(id_);
  }

  // --- connection events (on the connection's strand) ----------------------------------------

  void on_open(const net::OpenInfo& info) override {
    registry_.count_open();
    logger_->info("session {}: open {} (subprotocol \"{}\")", id_, url_, info.subprotocol);
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

  void on_message(bool text, std::string data, bool final) override {
    ServerMessage m;
    auto* msg = m.mutable_message();
    msg->set_text(text);
    msg->set_data(std::move(data));
    msg->set_final(final);
    std::unique_lock lock(mutex_);
    enqueue(std::move(m));
    if (!paused_ && outbox_bytes_ > effective_.max_queued_bytes && connection_) {
      paused_ = true;  // the client is not keeping up: stop reading the socket
      connection_->pause_reading(true);
    }
    flush(lock);
  }

  void on_pong(std::string payload) override {
    ServerMessage m;
    m.mutable_pong()->set_payload(std::move(payload));
    std::unique_lock lock(mutex_);
    enqueue(std::move(m));
    flush(lock);
  }

  void on_closed(const net::CloseInfo& info) override {
    const auto& c = connection_counters();
    registry_.add_bytes(c.first, c.second);
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
      const v1::ErrorDetail detail = detail_for(*info.failure);
      status = error_status(status_code_for(*info.failure), info.failure->message, detail);
      error_message = error_to_message(status, detail);
      logger_->warn("session {}: closed by the gateway, code {}: {}", id_, info.code,
                    info.failure->message);
    } else {
      static constexpr const char* kInitiators[] = {"client", "server", "gateway"};
      logger_->info("session {}: closed, code {}, initiator {}, {}", id_, info.code,
                    kInitiators[static_cast<int>(info.initiator)],
                    info.clean ? "clean" : "not clean");
    }
    std::unique_lock lock(mutex_);
    phase_ = Phase::closed;
    connection_.reset();
    enqueue(std::move(m));
    if (error_message) enqueue(std::move(*error_message));
    if (!finish_status_) finish_status_ = status;
    flush(lock);
    if (lock.owns_lock()) lock.unlock();
    registry_.release(id_);
  }

  void on_failed(const net::Failure& failure) override {
    registry_.count_failure(net::to_string(failure.cause));
    logger_->warn("session {}: {} failed ({}): {}", id_, url_, net::to_string(failure.cause),
                  failure.message);
    {
      std::lock_guard lock(mutex_);
      connection_.reset();
    }
    const v1::ErrorDetail detail = detail_for(failure);
    reject_with(error_status(status_code_for(failure), failure.message, detail), detail);
    registry_.release(id_);
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
    out.set_age_ms(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                              created_)
            .count()));
    return out;
  }

  void shutdown() override {
    std::unique_lock lock(mutex_);
    auto connection = connection_;
    lock.unlock();
    if (connection) connection->close(1001, "gateway shutting down", net::Initiator::gateway);
  }

 private:
  enum class Phase { awaiting_open, connecting, open, closed };

  std::pair<std::uint64_t, std::uint64_t> connection_counters() {
    std::lock_guard lock(mutex_);
    if (!connection_) return {0, 0};
    return {connection_->counters().bytes_sent, connection_->counters().bytes_received};
  }

  void open_session(const v1::Open& open) {
    net::UrlResult parsed = net::parse_websocket_url(open.url());
    if (!parsed.url) {
      return reject(grpc::StatusCode::INVALID_ARGUMENT, "bad_request",
                    "open.url: " + parsed.error);
    }
    net::ConnectOptions options;
    options.url = *parsed.url;
    options.subprotocols.assign(open.subprotocols().begin(), open.subprotocols().end());
    options.extensions.assign(open.extensions().begin(), open.extensions().end());
    for (const auto& h : open.headers()) options.headers.emplace_back(h.name(), h.value());
    if (std::string e = net::validate_extra_headers(options.headers); !e.empty()) {
      return reject(grpc::StatusCode::INVALID_ARGUMENT, "bad_request", "open.headers: " + e);
    }
    const auto& tls = open.tls();
    const bool names_files = !tls.ca_file().empty() || !tls.client_cert_file().empty() ||
                             !tls.client_key_file().empty();
    if (names_files && !defaults_.allow_client_file_paths) {
      return reject(grpc::StatusCode::PERMISSION_DENIED, "bad_request",
                    "open.tls: file paths are disabled by the daemon's configuration "
                    "(tls.allow_client_file_paths); send PEM text instead");
    }
    options.tls.ca_file = tls.ca_file();
    options.tls.ca_pem = tls.ca_pem();
    options.tls.client_cert_file = tls.client_cert_file();
    options.tls.client_cert_pem = tls.client_cert_pem();
    options.tls.client_key_file = tls.client_key_file();
    options.tls.client_key_pem = tls.client_key_pem();
    options.tls.server_name = tls.server_name();
    options.tls.min_version = tls.min_version() == v1::TLS_VERSION_1_3
                                  ? net::TlsMinVersion::tls1_3
                                  : net::TlsMinVersion::tls1_2;
    options.tls.insecure_skip_verify = tls.insecure_skip_verify();
    options.default_ca_file = defaults_.default_ca_file;
    auto pick = [](std::uint32_t requested, std::chrono::milliseconds fallback) {
      return requested != 0 ? std::chrono::milliseconds(requested) : fallback;
    };
    options.connect_timeout = pick(open.timeouts().connect_ms(), defaults_.connect_timeout);
    options.handshake_timeout = pick(open.timeouts().handshake_ms(), defaults_.handshake_timeout);
    options.close_timeout = pick(open.timeouts().close_ms(), defaults_.close_timeout);
    options.keepalive_interval = defaults_.keepalive_interval;
    options.ping_timeout = defaults_.ping_timeout;
    options.idle_timeout = defaults_.idle_timeout;
    options.max_message_bytes =
        open.limits().max_message_bytes() != 0
            ? std::min(open.limits().max_message_bytes(), defaults_.max_message_bytes_ceiling)
            : defaults_.max_message_bytes;
    options.max_queued_bytes = open.limits().max_queued_bytes() != 0
                                   ? std::min(open.limits().max_queued_bytes(),
                                              defaults_.max_queued_bytes)
                                   : defaults_.max_queued_bytes;
    options.max_header_bytes = defaults_.max_header_bytes;
    options.stream_fragments = open.stream_fragments();
    options.policy = policy_;
    if (options.tls.insecure_skip_verify) {
      logger_->warn("session to {}: TLS verification disabled by the client's request",
                    open.url());
    }

    if (defaults_.fd_budget) {
      if (std::string why = defaults_.fd_budget->admit_session(); !why.empty()) {
        registry_.count_failure("fd_limit");
        return reject(grpc::StatusCode::RESOURCE_EXHAUSTED, "fd_limit", why);
      }
    }
    std::string id;
    switch (registry_.admit(options.url.host, &id)) {
      case SessionRegistry::Admission::admitted: break;
      case SessionRegistry::Admission::total_limit:
        registry_.count_failure("session_limit");
        return reject(grpc::StatusCode::RESOURCE_EXHAUSTED, "session_limit",
                      "the daemon's session limit (limits.max_sessions) is reached");
      case SessionRegistry::Admission::host_limit:
        registry_.count_failure("session_limit");
        return reject(grpc::StatusCode::RESOURCE_EXHAUSTED, "session_limit",
                      "the per-host session limit (limits.max_sessions_per_host) is reached for " +
                          options.url.host);
      case SessionRegistry::Admission::draining:
        return reject(grpc::StatusCode::UNAVAILABLE, "shutdown", "the daemon is shutting down");
    }
    std::shared_ptr<net::UpstreamConnection> connection;
    {
      std::lock_guard lock(mutex_);
      id_ = id;
      url_ = open.url();
      effective_ = options;
      connection = net::UpstreamConnection::create(io_, std::move(options), shared_from_this());
      connection_ = connection;
    }
    registry_.attach(id, shared_from_this());
    connection->start();
  }

  // Validates a client message after open and turns it into an OutgoingMessage.
  // Payloads are moved out of `in` (it is reused for the next read), not copied.
  void translate(ClientMessage& in, std::optional<net::OutgoingMessage>* out,
                 std::string* error) {
    net::OutgoingMessage m;
    auto check_text = [&](const std::string& data) {
      if (!ws::is_valid_utf8(reinterpret_cast<const std::uint8_t*>(data.data()), data.size())) {
        *error = "text must be valid UTF-8";
      }
    };
    switch (in.kind_case()) {
      case ClientMessage::kText:
        if (fragment_open_) {
          *error = "a text message cannot start inside a fragmented message";
          return;
        }
        check_text(in.text());
        m.kind = net::OutgoingMessage::Kind::text;
        m.data = std::move(*in.mutable_text());
        break;
      case ClientMessage::kBinary:
        if (fragment_open_) {
          *error = "a binary message cannot start inside a fragmented message";
          return;
        }
        m.kind = net::OutgoingMessage::Kind::binary;
        m.data = std::move(*in.mutable_binary());
        break;
      case ClientMessage::kFragment: {
        const bool text = fragment_open_ ? fragment_text_ : in.fragment().text();
        if (text) {
          // Validated per fragment, carrying incomplete sequences to the next one.
          const auto& d = in.fragment().data();
          if (!fragment_open_) fragment_utf8_.reset();
          if (!fragment_utf8_.feed(reinterpret_cast<const std::uint8_t*>(d.data()), d.size(),
                                   in.fragment().final())) {
            *error = "text fragments must be valid UTF-8";
            return;
          }
        }
        m.kind = text ? net::OutgoingMessage::Kind::text_fragment
                      : net::OutgoingMessage::Kind::binary_fragment;
        m.data = std::move(*in.mutable_fragment()->mutable_data());
        m.final = in.fragment().final();
        fragment_text_ = text;
        fragment_open_ = !m.final;
        break;
      }
      case ClientMessage::kPing:
        m.kind = net::OutgoingMessage::Kind::ping;
        break;
      case ClientMessage::kClose: {
        const auto code = in.close().code();
        if (code != 0 && (code > 0xFFFF || !ws::is_valid_wire_close_code(
                                               static_cast<std::uint16_t>(code)))) {
          *error = "close.code " + std::to_string(code) +
                   " cannot be sent (use 1000-1003, 1007-1014 or 3000-4999, or 0 for none)";
          return;
        }
        if (in.close().reason().size() > ws::kMaxCloseReasonLength) {
          *error = "close.reason is longer than 123 bytes";
          return;
        }
        if (code == 0 && !in.close().reason().empty()) {
          *error = "close.reason needs a close.code";
          return;
        }
        check_text(in.close().reason());
        m.kind = net::OutgoingMessage::Kind::close;
        m.close_code = static_cast<std::uint16_t>(code);
        m.data = in.close().reason();
        break;
      }
      case ClientMessage::kOpen:
        *error = "the session is already open";
        return;
      case ClientMessage::KIND_NOT_SET:
        *error = "empty ClientMessage";
        return;
    }
    if (error->empty()) *out = std::move(m);
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
    if (connection) connection->close(1001, "client went away", net::Initiator::client);
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
    phase_ = Phase::closed;
    enqueue(error_to_message(status, detail));
    finish_status_ = status;
    flush(lock);
  }

  void enqueue(ServerMessage m) {
    outbox_bytes_ += weight(m);
    outbox_.push_back(std::move(m));
  }

  // Starts the next write, or Finish once everything is written. Called with the lock held;
  // releases it before calling into gRPC.
  void flush(std::unique_lock<std::mutex>& lock) {
    if (writing_ || done_ || finished_) return;
    if (!outbox_.empty()) {
      writing_ = true;
      const ServerMessage* next = &outbox_.front();  // stable until popped in OnWriteDone
      lock.unlock();
      StartWrite(next);
      return;
    }
    if (finish_status_) {
      finished_ = true;
      grpc::Status status = *finish_status_;
      lock.unlock();
      Finish(status);
    }
  }

  asio::io_context& io_;
  SessionRegistry& registry_;
  const GatewayDefaults defaults_;  // a copy: a session may outlive the service briefly
  std::shared_ptr<const net::DestinationPolicy> policy_;
  std::shared_ptr<spdlog::logger> logger_;
  const std::chrono::steady_clock::time_point created_;

  mutable std::mutex mutex_;
  std::shared_ptr<GatewaySession> self_;  // gRPC's reference, dropped in OnDone
  std::shared_ptr<net::UpstreamConnection> connection_;
  net::ConnectOptions effective_;
  Phase phase_ = Phase::awaiting_open;
  std::string id_;
  std::string url_;
  ClientMessage incoming_;
  std::deque<ServerMessage> outbox_;
  std::uint64_t outbox_bytes_ = 0;
  bool writing_ = false;
  bool paused_ = false;
  bool finished_ = false;
  bool done_ = false;
  bool client_ended_ = false;
  std::optional<grpc::Status> finish_status_;
  bool fragment_open_ = false;
  bool fragment_text_ = false;
  ws::Utf8Validator fragment_utf8_;
};

}  // namespace

GatewayService::GatewayService(asio::io_context& io, SessionRegistry& registry,
                               GatewayDefaults defaults,
                               std::shared_ptr<const net::DestinationPolicy> policy,
                               std::shared_ptr<spdlog::logger> logger)
    : io_(io),
      registry_(registry),
      defaults_(std::move(defaults)),
      policy_(std::move(policy)),
      logger_(std::move(logger)) {}

grpc::ServerBidiReactor<ClientMessage, ServerMessage>* GatewayService::Connect(
    grpc::CallbackServerContext*) {
  auto session = std::make_shared<GatewaySession>(io_, registry_, defaults_, policy_, logger_);
  session->begin();
  return session.get();
}

}  // namespace wsgate::rpc
