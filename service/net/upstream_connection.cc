#include "service/net/upstream_connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>

#include "service/net/http_response.h"
#include "service/net/quote.h"
#include "service/ws/handshake.h"

namespace wsgate::net {
namespace {

// The process is out of file descriptors: reported as fd_limit, not as a network failure.
// Checked on failure paths only. Asio does not always pass EMFILE on: a range connect whose
// socket cannot be opened reports operation_aborted, and getaddrinfo() that cannot open
// /etc/hosts reports "host not found"; so when the error itself does not say, a probe socket
// tells whether fds are short right now.
bool out_of_fds(const asio::error_code& ec) {
  if (ec == asio::error::no_descriptors ||
      (ec.category() == asio::system_category() && ec.value() == ENFILE)) {
    return true;
  }
  const int probe = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (probe >= 0) {
    ::close(probe);
    return false;
  }
  return errno == EMFILE || errno == ENFILE;
}

// Engine buffer sizes for upstream connections: large enough that a 1 MiB message needs few
// socket calls, small enough for many idle sessions (see bench/README.md).
constexpr std::uint32_t kReceiveBufferSize = 16384;
constexpr std::uint32_t kSendBufferSize = 16384;

bool is_ip_literal(const std::string& host) {
  asio::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

ws::BufferType buffer_type_for(OutgoingMessage::Kind kind, bool final) {
  switch (kind) {
    case OutgoingMessage::Kind::text: return ws::BufferType::utf8_message;
    case OutgoingMessage::Kind::binary: return ws::BufferType::binary_message;
    case OutgoingMessage::Kind::text_fragment:
      return final ? ws::BufferType::utf8_message : ws::BufferType::utf8_fragment;
    case OutgoingMessage::Kind::binary_fragment:
      return final ? ws::BufferType::binary_message : ws::BufferType::binary_fragment;
    case OutgoingMessage::Kind::ping: return ws::BufferType::ping_pong;
    case OutgoingMessage::Kind::pong: return ws::BufferType::unsolicited_pong;
    case OutgoingMessage::Kind::close: return ws::BufferType::close;
  }
  return ws::BufferType::binary_message;
}

}  // namespace

const char* to_string(Cause cause) {
  switch (cause) {
    case Cause::none: return "none";
    case Cause::bad_request: return "bad_request";
    case Cause::destination_denied: return "destination_denied";
    case Cause::dns_failure: return "dns_failure";
    case Cause::connection_refused: return "connection_refused";
    case Cause::connect_timeout: return "connect_timeout";
    case Cause::network_error: return "network_error";
    case Cause::tls_error: return "tls_error";
    case Cause::tls_handshake_failed: return "tls_handshake_failed";
    case Cause::handshake_timeout: return "handshake_timeout";
    case Cause::upgrade_refused: return "upgrade_refused";
    case Cause::handshake_rejected: return "handshake_rejected";
    case Cause::protocol_violation: return "protocol_violation";
    case Cause::message_too_big: return "message_too_big";
    case Cause::memory_budget: return "memory_budget";
    case Cause::session_limit: return "session_limit";
    case Cause::tls_version_mismatch: return "tls_version_mismatch";
    case Cause::connection_lost: return "connection_lost";
    case Cause::ping_timeout: return "ping_timeout";
    case Cause::close_timeout: return "close_timeout";
    case Cause::shutdown: return "shutdown";
    case Cause::fd_limit: return "fd_limit";
  }
  return "unknown";
}

HeaderProblem check_extra_header(std::string_view name, std::string_view value) {
  static constexpr std::string_view kReserved[] = {
      "host", "connection", "upgrade", "content-length", "transfer-encoding"};
  if (!ws::is_token(name)) return {quote(name) + " is not an HTTP token", true};
  for (std::string_view reserved : kReserved) {
    if (ws::iequals(name, reserved)) return {quote(name) + " is set by the gateway", true};
  }
  if (name.size() >= 14 && ws::iequals(name.substr(0, 14), "sec-websocket-")) {
    return {quote(name) + " is set by the gateway (the handshake owns Sec-WebSocket-*)", true};
  }
  if (!ws::is_safe_header_value(value)) {
    return {"the value of " + quote(name) + " has CR, LF or NUL", false};
  }
  return {};
}

std::string validate_extra_headers(const Headers& headers) {
  for (const auto& [name, value] : headers) {
    HeaderProblem p = check_extra_header(name, value);
    if (!p.message.empty()) return "header " + p.message;
  }
  return "";
}

std::shared_ptr<UpstreamConnection> UpstreamConnection::create(
    asio::io_context& io, ConnectOptions options, std::shared_ptr<ConnectionObserver> observer) {
  return std::shared_ptr<UpstreamConnection>(
      new UpstreamConnection(io, std::move(options), std::move(observer)));
}

UpstreamConnection::UpstreamConnection(asio::io_context& io, ConnectOptions options,
                                       std::shared_ptr<ConnectionObserver> observer)
    : strand_(asio::make_strand(io)),
      options_(std::move(options)),
      observer_(std::move(observer)),
      resolver_(strand_),
      socket_(strand_),
      phase_timer_(strand_),
      keepalive_timer_(strand_),
      message_charge_(options_.budget) {}

UpstreamConnection::~UpstreamConnection() = default;

// ---------------------------------------------------------------------------------------------
// Connect phase.

void UpstreamConnection::start() {
  asio::post(strand_, [self = shared_from_this()] {
    if (self->phase_ != Phase::idle) return;
    self->phase_ = Phase::connecting;
    const WebSocketUrl& url = self->options_.url;
    if (self->options_.policy) {
      std::string reason = self->options_.policy->check_host(url.host, url.port);
      if (!reason.empty()) return self->fail({Cause::destination_denied, reason});
    }
    self->phase_timer_.expires_after(self->options_.connect_timeout);
    self->phase_timer_.async_wait([self](const asio::error_code& ec) {
      if (ec || self->phase_ != Phase::connecting) return;
      self->fail({Cause::connect_timeout, "no connection to " + self->options_.url.host + ":" +
                                              std::to_string(self->options_.url.port) +
                                              " within " +
                                              std::to_string(self->options_.connect_timeout.count()) +
                                              " ms"});
    });
    asio::error_code literal_error;
    const asio::ip::address literal = asio::ip::make_address(url.host, literal_error);
    if (!literal_error) {
      // An IP literal needs no resolver (whose work runs on a thread of its own).
      auto results = asio::ip::tcp::resolver::results_type::create(
          asio::ip::tcp::endpoint(literal, url.port), url.host, std::to_string(url.port));
      return self->on_resolved({}, std::move(results));
    }
    self->resolver_.async_resolve(
        url.host, std::to_string(url.port),
        [self](const asio::error_code& ec, asio::ip::tcp::resolver::results_type results) {
          self->on_resolved(ec, std::move(results));
        });
  });
}

void UpstreamConnection::on_resolved(const asio::error_code& ec,
                                     asio::ip::tcp::resolver::results_type results) {
  if (phase_ != Phase::connecting) return;
  if (ec) {
    if (out_of_fds(ec)) return fail({Cause::fd_limit, "cannot resolve " + options_.url.host +
                                                          ": " + ec.message()});
    return fail({Cause::dns_failure,
                 "cannot resolve " + options_.url.host + ": " + ec.message()});
  }
  std::vector<asio::ip::tcp::endpoint> allowed;
  std::string denied_reason;
  for (const auto& entry : results) {
    const asio::ip::tcp::endpoint& ep = entry.endpoint();
    if (options_.policy) {
      std::string reason = options_.policy->check_address(ep.data());
      if (!reason.empty()) {
        if (denied_reason.empty()) denied_reason = reason;
        continue;
      }
    }
    allowed.push_back(ep);
  }
  if (allowed.empty()) {
    if (!denied_reason.empty()) return fail({Cause::destination_denied, denied_reason});
    return fail({Cause::dns_failure, "no address for " + options_.url.host});
  }
  asio::async_connect(socket_, allowed,
                      [self = shared_from_this()](const asio::error_code& error,
                                                  const asio::ip::tcp::endpoint& endpoint) {
                        self->on_connected(error, endpoint);
                      });
}

void UpstreamConnection::on_connected(const asio::error_code& ec,
                                      const asio::ip::tcp::endpoint& endpoint) {
  if (phase_ != Phase::connecting) return;
  if (ec) {
    // operation_aborted here is not ours (fail() ends the connect phase before it closes the
    // socket): Asio's range connect reports it when it cannot open a socket.
    const Cause cause = ec == asio::error::connection_refused ? Cause::connection_refused
                        : out_of_fds(ec)                      ? Cause::fd_limit
                                                              : Cause::network_error;
    return fail({cause, "cannot connect to " + options_.url.host + ":" +
                            std::to_string(options_.url.port) + ": " + ec.message()});
  }
  if (options_.admit_address) {
    std::string refused = options_.admit_address(endpoint.address());
    if (!refused.empty()) return fail({Cause::session_limit, std::move(refused)});
  }
  asio::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  phase_ = Phase::handshaking;
  phase_timer_.expires_after(options_.handshake_timeout);
  phase_timer_.async_wait([self = shared_from_this()](const asio::error_code& error) {
    if (error || self->phase_ != Phase::handshaking) return;
    self->fail({Cause::handshake_timeout,
                "the TLS/HTTP upgrade handshake did not finish within " +
                    std::to_string(self->options_.handshake_timeout.count()) + " ms"});
  });
  if (options_.url.secure) {
    start_tls();
  } else {
    send_upgrade_request();
  }
}

void UpstreamConnection::start_tls() {
  if (options_.tls_context) {
    tls_context_ = options_.tls_context;
  } else {
    TlsContextResult made = make_tls_context(options_.tls, options_.default_ca_file);
    if (!made.context) return fail({Cause::tls_error, made.error});
    tls_context_ = made.context;
  }
  tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *tls_context_);
  SSL* ssl = tls_->native_handle();
  const std::string& name =
      options_.tls.server_name.empty() ? options_.url.host : options_.tls.server_name;
  const bool ip = is_ip_literal(name);
  if (!ip) SSL_set_tlsext_host_name(ssl, name.c_str());
  if (!options_.tls.insecure_skip_verify) {
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    } else {
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl, name.c_str());
    }
  }
  tls_->async_handshake(asio::ssl::stream_base::client,
                        [self = shared_from_this()](const asio::error_code& ec) {
                          if (self->phase_ != Phase::handshaking) return;
                          if (ec) return self->on_tls_handshake_error(ec);
                          self->send_upgrade_request();
                        });
}

void UpstreamConnection::on_tls_handshake_error(const asio::error_code& ec) {
  const std::string& host = options_.url.host;
  const long verify = SSL_get_verify_result(tls_->native_handle());
  if (verify != X509_V_OK) {
    return fail({Cause::tls_handshake_failed,
                 "TLS handshake with " + host + " failed: certificate verification failed: " +
                     X509_verify_cert_error_string(verify)});
  }
  // No common protocol version: OpenSSL says so with one of these reasons, or (when the peer
  // just hangs up on a ClientHello it cannot serve) the stream ends before any ServerHello.
  // "stream truncated" alone does not tell the client what to change, so name the versions.
  const char* minimum =
      options_.tls.min_version == TlsMinVersion::tls1_3 ? "TLS 1.3" : "TLS 1.2";
  bool version = false;
  if (ec.category() == asio::error::get_ssl_category()) {
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
      case SSL_R_UNSUPPORTED_PROTOCOL:
      case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
      case SSL_R_NO_PROTOCOLS_AVAILABLE:
      case SSL_R_VERSION_TOO_LOW:
      case SSL_R_VERSION_TOO_HIGH:
        version = true;
        break;
      default:
        break;
    }
  }
  if (version) {
    return fail({Cause::tls_version_mismatch,
                 "TLS handshake with " + host + " failed: no TLS protocol version in common (" +
                     ec.message() + "): the gateway offers " + minimum +
                     " or later (open.tls.min_version) and the server does not accept it"});
  }
  std::string why = ec.message();
  SSL* ssl = tls_->native_handle();
  if (ec == asio::ssl::error::stream_truncated && SSL_get_rbio(ssl) != nullptr &&
      BIO_number_read(SSL_get_rbio(ssl)) == 0) {
    // Not a byte came back for our ClientHello. A server with no TLS version in common often
    // just hangs up like this instead of sending an alert, so say which versions we offered.
    why = "the server closed the connection without answering the TLS ClientHello (" + why +
          "), as a server does that accepts no TLS version the gateway offers: " + minimum +
          " or later (open.tls.min_version)";
  }
  fail({Cause::tls_handshake_failed, "TLS handshake with " + host + " failed: " + why});
}

void UpstreamConnection::send_upgrade_request() {
  ws::Property props[2];
  std::uint32_t receive_size = kReceiveBufferSize;
  std::uint32_t send_size = kSendBufferSize;
  props[0] = {ws::PropertyType::receive_buffer_size, &receive_size, sizeof receive_size};
  props[1] = {ws::PropertyType::send_buffer_size, &send_size, sizeof send_size};
  if (ws::ProtocolHandle::create(ws::Role::client, props, 2, &engine_) != ws::Result::ok) {
    return fail({Cause::network_error, "cannot create the protocol handle"});
  }
  std::vector<const char*> subprotocols, extensions;
  for (const std::string& s : options_.subprotocols) subprotocols.push_back(s.c_str());
  for (const std::string& s : options_.extensions) extensions.push_back(s.c_str());
  std::vector<ws::HttpHeader> initial;
  for (auto& [name, value] : options_.headers) {
    initial.push_back({name.data(), static_cast<std::uint32_t>(name.size()), value.data(),
                       static_cast<std::uint32_t>(value.size())});
  }
  ws::HttpHeader* additional = nullptr;
  std::uint32_t additional_count = 0;
  const ws::Result r = engine_->begin_client_handshake(
      subprotocols.data(), static_cast<std::uint32_t>(subprotocols.size()), extensions.data(),
      static_cast<std::uint32_t>(extensions.size()), initial.data(),
      static_cast<std::uint32_t>(initial.size()), &additional, &additional_count);
  if (r != ws::Result::ok) {
    Failure f{Cause::bad_request,
              "the request's subprotocols, extensions or headers are invalid: " +
                  std::string(ws::symbol(r))};
    f.engine_result = r;
    return fail(std::move(f));
  }
  request_text_ = "GET " + options_.url.target + " HTTP/1.1\r\nHost: " + options_.url.host_header +
                  "\r\n";
  bool has_user_agent = false;
  for (const auto& [name, value] :
       ws::merge_request_headers(initial.data(), static_cast<std::uint32_t>(initial.size()),
                                 additional, additional_count)) {
    has_user_agent |= ws::iequals(name, "user-agent");
    request_text_ += name + ": " + value + "\r\n";
  }
  if (!has_user_agent) request_text_ += "User-Agent: wsgate\r\n";
  request_text_ += "\r\n";
  async_write_buffers({asio::buffer(request_text_)},
                      [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                        if (self->phase_ != Phase::handshaking) return;
                        if (ec) {
                          return self->fail({Cause::network_error,
                                             "cannot send the upgrade request: " + ec.message()});
                        }
                        self->read_upgrade_response();
                      });
}

void UpstreamConnection::read_upgrade_response() {
  const std::size_t old_size = response_buffer_.size();
  response_buffer_.resize(old_size + 4096);
  async_read_some(asio::buffer(response_buffer_.data() + old_size, 4096),
                  [self = shared_from_this(), old_size](const asio::error_code& ec, std::size_t n) {
                    if (self->phase_ != Phase::handshaking) return;
                    self->response_buffer_.resize(old_size + n);
                    if (ec) {
                      return self->fail({Cause::network_error,
                                         "connection lost during the upgrade: " + ec.message()});
                    }
                    self->on_upgrade_response();
                  });
}

void UpstreamConnection::on_upgrade_response() {
  HeadParse parsed = parse_response_head(response_buffer_.data(), response_buffer_.size(),
                                         options_.max_header_bytes);
  if (parsed.status == HeadStatus::need_more) return read_upgrade_response();
  if (parsed.status == HeadStatus::error) {
    return fail({Cause::handshake_rejected, "bad upgrade response: " + parsed.error});
  }
  HttpResponseHead& head = parsed.head;
  if (head.status != 101) {
    Failure f{Cause::upgrade_refused, "the server refused the upgrade: HTTP " +
                                          std::to_string(head.status) + " " + head.reason};
    f.http_status = head.status;
    f.http_headers = head.headers;
    return fail(std::move(f));
  }
  std::vector<ws::HttpHeader> response;
  for (auto& [name, value] : head.headers) {
    response.push_back({name.data(), static_cast<std::uint32_t>(name.size()), value.data(),
                        static_cast<std::uint32_t>(value.size())});
  }
  std::uint32_t subprotocol = 0xFFFFFFFFu;
  std::vector<std::uint32_t> extension_indices(options_.extensions.size() + 1);
  std::uint32_t extension_count = static_cast<std::uint32_t>(options_.extensions.size());
  const ws::Result r = engine_->end_client_handshake(
      response.data(), static_cast<std::uint32_t>(response.size()), extension_indices.data(),
      &extension_count, &subprotocol);
  if (r != ws::Result::ok) {
    Failure f{Cause::handshake_rejected,
              "the server's upgrade response is not acceptable (" + std::string(ws::symbol(r)) +
                  ")"};
    f.engine_result = r;
    f.http_status = head.status;
    f.http_headers = head.headers;
    return fail(std::move(f));
  }
  leftover_offset_ = parsed.consumed;  // frames that arrived with the response go first
  phase_ = Phase::open;
  phase_timer_.cancel();
  OpenInfo info;
  if (subprotocol < options_.subprotocols.size()) info.subprotocol = options_.subprotocols[subprotocol];
  for (std::uint32_t i = 0; i < extension_count; ++i) {
    info.extensions.push_back(options_.extensions[extension_indices[i]]);
  }
  info.http_status = head.status;
  info.response_headers = std::move(head.headers);
  touch_data();
  observer_->on_open(info);
  arm_keepalive();
  pump();
}

void UpstreamConnection::release_charges() {
  // The bytes stay allocated until the connection is destroyed (the engine may still point into
  // queued_), which follows shortly; the budget is given back now.
  message_charge_.reset();
  for (OutgoingMessage& m : queued_) m.charge.reset();
}

void UpstreamConnection::fail(Failure failure) {
  if (phase_ == Phase::done) return;
  phase_ = Phase::done;
  release_charges();
  phase_timer_.cancel();
  keepalive_timer_.cancel();
  resolver_.cancel();
  close_socket();
  waiting_for_room_.clear();
  std::shared_ptr<ConnectionObserver> observer = std::move(observer_);
  if (observer) observer->on_failed(failure);
}

// ---------------------------------------------------------------------------------------------
// Open phase.

void UpstreamConnection::send(OutgoingMessage message, std::function<void()> on_room) {
  asio::post(strand_, [self = shared_from_this(), message = std::move(message),
                       on_room = std::move(on_room)]() mutable {
    if (self->phase_ != Phase::open || self->close_sent_) return;  // dropped: the session ends
    if (message.kind == OutgoingMessage::Kind::close) {
      self->close(message.close_code, std::move(message.data), Initiator::client);
      return;
    }
    self->queued_bytes_ += message.data.size();
    self->queued_.push_back(std::move(message));
    self->engine_send(self->queued_.back());
    if (self->phase_ != Phase::open) return;
    if (on_room) {
      if (self->queued_bytes_ < self->options_.max_queued_bytes) {
        on_room();
      } else {
        self->waiting_for_room_.push_back(std::move(on_room));
      }
    }
    self->pump();
  });
}

void UpstreamConnection::engine_send(const OutgoingMessage& m) {
  const ws::BufferType type = buffer_type_for(m.kind, m.final);
  ws::Buffer buffer{};
  const ws::Buffer* argument = nullptr;
  if (type == ws::BufferType::close) {
    if (m.close_code != 0) {
      buffer.close_status = {
          m.data.empty() ? nullptr
                         : reinterpret_cast<std::uint8_t*>(const_cast<char*>(m.data.data())),
          static_cast<std::uint32_t>(m.data.size()), m.close_code};
      argument = &buffer;
    }
  } else if (ws::is_data_type(type)) {
    buffer.data = {reinterpret_cast<std::uint8_t*>(const_cast<char*>(m.data.data())),
                   static_cast<std::uint32_t>(m.data.size())};
    argument = &buffer;
  }
  const ws::Result r = engine_->send(type, argument, nullptr);
  if (r != ws::Result::ok) {
    // The caller validated the message; the engine refusing it means the session cannot go on.
    queued_bytes_ -= m.data.size();
    queued_.pop_back();
    abort(Cause::bad_request,
          std::string("the engine refused the message: ") + std::string(ws::symbol(r)));
  }
}

void UpstreamConnection::pause_reading(bool paused) {
  asio::post(strand_, [self = shared_from_this(), paused] {
    self->reading_paused_ = paused;
    if (!paused) self->pump();
  });
}

void UpstreamConnection::close(std::uint16_t code, std::string reason, Initiator initiator) {
  asio::post(strand_, [self = shared_from_this(), code, reason = std::move(reason), initiator] {
    if (self->phase_ == Phase::idle || self->phase_ == Phase::connecting ||
        self->phase_ == Phase::handshaking) {
      return self->fail({Cause::shutdown, "closed before the connection was open"});
    }
    if (self->phase_ != Phase::open || self->close_sent_) return;
    CloseInfo report{code == 0 ? std::uint16_t{1005} : code, reason, initiator, false,
                     std::nullopt};
    if (initiator == Initiator::gateway && code == 1001 && reason == "gateway shutting down") {
      report.failure = Failure{Cause::shutdown, "the gateway is shutting down"};
    }
    self->send_close(code, reason, std::move(report), /*unanswered_is_failure=*/true);
    self->pump();
  });
}

void UpstreamConnection::abort(Cause cause, std::string message) {
  asio::post(strand_, [self = shared_from_this(), cause, message = std::move(message)] {
    if (self->phase_ == Phase::done) return;
    if (self->phase_ != Phase::open && self->phase_ != Phase::closing) {
      return self->fail({cause, message});
    }
    CloseInfo info{1006, "", Initiator::gateway, false, Failure{cause, message}};
    self->finish(std::move(info));
  });
}

void UpstreamConnection::pump() {
  bool progress = true;
  while (progress && (phase_ == Phase::open || phase_ == Phase::closing)) {
    progress = false;
    if (!send_busy_) progress |= pump_send_once();
    if (phase_ == Phase::done) return;
    if (!receive_busy_) progress |= pump_receive_once();
  }
}

bool UpstreamConnection::pump_send_once() {
  ws::Buffer buffers[2];
  std::uint32_t count = 2;
  ws::Action action;
  ws::BufferType type;
  void* context = nullptr;
  const ws::Result r = engine_->get_action(ws::ActionQueue::send, buffers, &count, &action, &type,
                                           nullptr, &context);
  if (r != ws::Result::ok) return false;
  switch (action) {
    case ws::Action::send_to_network: {
      send_busy_ = true;
      std::vector<asio::const_buffer> out;
      for (std::uint32_t i = 0; i < count; ++i) {
        out.emplace_back(buffers[i].data.buffer, buffers[i].data.length);
      }
      async_write_buffers(out, [self = shared_from_this(), context](const asio::error_code& ec,
                                                                    std::size_t n) {
        self->send_busy_ = false;
        if (self->phase_ == Phase::done) return;
        if (ec) {
          self->engine_->complete_action(context, 0);
          return self->finish({1006, "", Initiator::server, false,
                               Failure{Cause::network_error, "write failed: " + ec.message()}});
        }
        self->engine_->complete_action(context, static_cast<std::uint32_t>(n));
        self->touch();
        self->pump();
      });
      return false;
    }
    case ws::Action::indicate_send_complete:
      engine_->complete_action(context, 0);
      release_written();
      return true;
    default:
      return false;
  }
}

void UpstreamConnection::release_written() {
  if (queued_.empty()) return;
  OutgoingMessage done = std::move(queued_.front());
  queued_.pop_front();
  queued_bytes_ -= done.data.size();
  const bool is_data = done.kind != OutgoingMessage::Kind::ping &&
                       done.kind != OutgoingMessage::Kind::pong &&
                       done.kind != OutgoingMessage::Kind::close;
  if (is_data) {
    counters_.bytes_sent += done.data.size();
    if (done.final) ++counters_.messages_sent;
    touch_data();
  }
  while (!waiting_for_room_.empty() && queued_bytes_ < options_.max_queued_bytes) {
    auto on_room = std::move(waiting_for_room_.front());
    waiting_for_room_.pop_front();
    on_room();
  }
  if (done.kind == OutgoingMessage::Kind::close && close_received_ && pending_close_) {
    CloseInfo info = std::move(*pending_close_);
    finish(std::move(info));
  } else if (done.kind == OutgoingMessage::Kind::close && pending_close_ &&
             (receive_abandoned_ || (pending_close_->failure &&
                                     pending_close_->failure->cause ==
                                         Cause::protocol_violation))) {
    // After a peer violation, or a message too big to read on, nothing more is parsed: our
    // close is the last word.
    CloseInfo info = std::move(*pending_close_);
    finish(std::move(info));
  }
}

bool UpstreamConnection::pump_receive_once() {
  if (receive_abandoned_) return false;
  if (!receive_queued_ && !reading_paused_ && !close_received_) {
    if (engine_->receive(nullptr, nullptr) == ws::Result::ok) receive_queued_ = true;
  }
  ws::Buffer buffers[2];
  std::uint32_t count = 2;
  ws::Action action;
  ws::BufferType type;
  void* context = nullptr;
  const ws::Result r = engine_->get_action(ws::ActionQueue::receive, buffers, &count, &action,
                                           &type, nullptr, &context);
  if (r != ws::Result::ok) {
    on_protocol_violation(r);
    return false;
  }
  switch (action) {
    case ws::Action::receive_from_network: {
      // A data frame whose header declares more than the message may still take is refused
      // now: waiting for its payload would let a peer hold the session with bytes that can
      // never be accepted.
      const std::uint64_t declared = engine_->receive_frame_remaining();
      const std::uint64_t room =
          options_.max_message_bytes - std::min(message_size_, options_.max_message_bytes);
      if (declared > room) {
        // The read action stays outstanding and is never completed: nothing more is read.
        on_message_too_big();
        return false;
      }
      const std::size_t leftover = response_buffer_.size() - leftover_offset_;
      if (leftover != 0) {
        const std::size_t n = std::min<std::size_t>(leftover, buffers[0].data.length);
        std::memcpy(buffers[0].data.buffer, response_buffer_.data() + leftover_offset_, n);
        leftover_offset_ += n;
        if (leftover_offset_ == response_buffer_.size()) {
          response_buffer_.clear();
          response_buffer_.shrink_to_fit();
          leftover_offset_ = 0;
        }
        engine_->complete_action(context, static_cast<std::uint32_t>(n));
        return true;
      }
      receive_busy_ = true;
      async_read_some(asio::buffer(buffers[0].data.buffer, buffers[0].data.length),
                      [self = shared_from_this(), context](const asio::error_code& ec,
                                                          std::size_t n) {
                        self->receive_busy_ = false;
                        if (self->phase_ == Phase::done) return;
                        // EOF and errors complete with 0 bytes: the engine reports 1006.
                        self->engine_->complete_action(context,
                                                       ec ? 0 : static_cast<std::uint32_t>(n));
                        if (!ec) self->touch();
                        self->pump();
                      });
      return false;
    }
    case ws::Action::indicate_receive_complete: {
      const ws::Buffer result = buffers[0];
      receive_queued_ = false;
      on_indication(type, result);  // copies what it keeps before the buffer is released
      if (phase_ != Phase::done) engine_->complete_action(context, 0);
      return true;
    }
    case ws::Action::send_to_network: {  // the automatic pong
      receive_busy_ = true;
      std::vector<asio::const_buffer> out{
          asio::const_buffer(buffers[0].data.buffer, buffers[0].data.length)};
      async_write_buffers(out, [self = shared_from_this(), context](const asio::error_code& ec,
                                                                    std::size_t n) {
        self->receive_busy_ = false;
        if (self->phase_ == Phase::done) return;
        self->engine_->complete_action(context, ec ? 0 : static_cast<std::uint32_t>(n));
        if (ec) {
          return self->finish({1006, "", Initiator::server, false,
                               Failure{Cause::network_error, "write failed: " + ec.message()}});
        }
        self->pump();
      });
      return false;
    }
    default:
      return false;
  }
}

void UpstreamConnection::on_indication(ws::BufferType type, const ws::Buffer& buffer) {
  if (type == ws::BufferType::close) {
    close_received_ = true;
    const std::uint16_t code = buffer.close_status.status;
    std::string reason(reinterpret_cast<const char*>(buffer.close_status.reason),
                       buffer.close_status.reason_length);
    if (code == static_cast<std::uint16_t>(ws::CloseStatus::aborted)) {
      // The connection ended without a close frame.
      CloseInfo info = pending_close_.value_or(CloseInfo{1006, "", Initiator::server, false, {}});
      info.code = 1006;
      info.clean = false;
      return finish(std::move(info));
    }
    if (close_sent_) {
      // Our close was answered: the closing handshake is complete once our frame is written.
      CloseInfo info = pending_close_.value_or(CloseInfo{});
      info.code = code;
      info.reason = reason;
      info.clean = true;
      pending_close_ = info;
      bool written = true;
      for (const OutgoingMessage& m : queued_) written &= m.kind != OutgoingMessage::Kind::close;
      if (written) finish(std::move(info));
      return;
    }
    // The server closed first: echo its code (RFC 6455 §5.5.1), then report.
    send_close(ws::is_valid_wire_close_code(code) ? code : 0, "",
               CloseInfo{code, reason, Initiator::server, true, std::nullopt},
               /*unanswered_is_failure=*/false);
    return;
  }
  if (type == ws::BufferType::ping_pong) {
    ping_outstanding_ = false;
    observer_->on_pong(std::string(reinterpret_cast<const char*>(buffer.data.buffer),
                                   buffer.data.length));
    return;
  }
  // Data.
  const bool text = ws::is_text_type(type);
  const bool final = !ws::is_fragment_type(type);
  if (message_.empty()) message_text_ = text;
  if (message_size_ + buffer.data.length > options_.max_message_bytes) {
    return on_message_too_big();
  }
  // Counted as it streams in, chunk by chunk, not once it is whole.
  if (!message_charge_.grow(buffer.data.length, message_size_ + buffer.data.length)) {
    const MemoryBudget& budget = *options_.budget;
    return abandon_receive(
        1013, "try again later",
        Failure{Cause::memory_budget,
                "a message from the server does not fit the daemon's memory budget "
                "(limits.memory_budget_bytes = " + std::to_string(budget.limit()) + ", " +
                    std::to_string(budget.used()) + " bytes in use by all sessions)"});
  }
  message_.append(reinterpret_cast<const char*>(buffer.data.buffer), buffer.data.length);
  message_size_ += buffer.data.length;
  counters_.bytes_received += buffer.data.length;
  touch_data();
  if (final) message_size_ = 0;
  if (!options_.stream_fragments && !final) return;
  if (final) ++counters_.messages_received;
  BudgetCharge charge = std::move(message_charge_);
  message_charge_ = BudgetCharge(options_.budget);
  observer_->on_message(message_text_, std::move(message_), final, std::move(charge));
  message_.clear();
}

void UpstreamConnection::on_message_too_big() {
  abandon_receive(1009, "message too big",
                  Failure{Cause::message_too_big,
                          "a message from the server exceeds max_message_bytes (" +
                              std::to_string(options_.max_message_bytes) + ")"});
}

void UpstreamConnection::abandon_receive(std::uint16_t code, const std::string& reason,
                                         Failure failure) {
  message_.clear();
  message_size_ = 0;
  message_charge_.reset();
  receive_abandoned_ = true;
  if (close_sent_) {
    // Our close is out already; its answer would come after the frame nobody will read.
    CloseInfo info = pending_close_.value_or(CloseInfo{});
    info.clean = false;
    return finish(std::move(info));
  }
  send_close(code, reason, CloseInfo{code, reason, Initiator::gateway, false, std::move(failure)},
             /*unanswered_is_failure=*/false);
  // The receive side is stopped, so the close must go out now (as after a violation).
  if (!send_busy_) {
    while (phase_ != Phase::done && !send_busy_ && pump_send_once()) {
    }
  }
}

void UpstreamConnection::on_protocol_violation(ws::Result result) {
  if (close_sent_) {
    CloseInfo info = pending_close_.value_or(CloseInfo{});
    info.clean = false;
    return finish(std::move(info));
  }
  const std::uint16_t code = engine_->failure_close_code();
  Failure failure{Cause::protocol_violation,
                  "the server violated the WebSocket protocol (" + std::string(ws::symbol(result)) +
                      "); closed with " + std::to_string(code)};
  failure.engine_result = result;
  const std::string reason = code == 1007 ? "invalid UTF-8" : "protocol error";
  send_close(code, reason, CloseInfo{code, reason, Initiator::gateway, false, failure},
             /*unanswered_is_failure=*/false);
  // The receive side is failed for good, so the pump loop that called us stops; the close must
  // still go out now, not when the close timer fires.
  if (!send_busy_) {
    while (phase_ != Phase::done && !send_busy_ && pump_send_once()) {
    }
  }
}

void UpstreamConnection::send_close(std::uint16_t code, const std::string& reason,
                                    CloseInfo report, bool unanswered_is_failure) {
  close_sent_ = true;
  phase_ = Phase::closing;
  OutgoingMessage m;
  m.kind = OutgoingMessage::Kind::close;
  m.close_code = code;
  m.data = reason;
  queued_.push_back(std::move(m));
  engine_send(queued_.back());
  pending_close_ = std::move(report);
  phase_timer_.expires_after(options_.close_timeout);
  phase_timer_.async_wait([self = shared_from_this(), unanswered_is_failure](
                              const asio::error_code& ec) {
    if (ec || self->phase_ == Phase::done) return;
    CloseInfo info = self->pending_close_.value_or(CloseInfo{});
    if (unanswered_is_failure) {
      info.clean = false;
      if (!info.failure) {
        info.failure =
            Failure{Cause::close_timeout,
                    "the server did not answer the close within " +
                        std::to_string(self->options_.close_timeout.count()) + " ms"};
      }
    }
    self->finish(std::move(info));
  });
}

void UpstreamConnection::finish(CloseInfo info) {
  if (phase_ == Phase::done) return;
  phase_ = Phase::done;
  release_charges();
  phase_timer_.cancel();
  keepalive_timer_.cancel();
  close_socket();
  waiting_for_room_.clear();
  std::shared_ptr<ConnectionObserver> observer = std::move(observer_);
  if (observer) observer->on_closed(info);
}

void UpstreamConnection::arm_keepalive() {
  using std::chrono::milliseconds;
  // Wake at the shortest of the intervals in use (the idle timeout checked twice per period).
  milliseconds period{0};
  for (milliseconds candidate : {options_.keepalive_interval, options_.ping_timeout,
                                 options_.idle_timeout / 2}) {
    if (candidate.count() > 0 && (period.count() == 0 || candidate < period)) period = candidate;
  }
  if (period.count() == 0) return;
  keepalive_timer_.expires_after(period);
  keepalive_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (ec || self->phase_ != Phase::open) return;
    self->on_keepalive_timer();
  });
}

void UpstreamConnection::on_keepalive_timer() {
  const auto now = std::chrono::steady_clock::now();
  if (options_.idle_timeout.count() > 0 && now - last_data_activity_ >= options_.idle_timeout) {
    // No message either way for idle_timeout: a normal close initiated by the gateway.
    close(1001, "idle timeout", Initiator::gateway);
    return;
  }
  if (options_.keepalive_interval.count() == 0 && options_.ping_timeout.count() == 0) {
    return arm_keepalive();  // only the idle timeout is in use
  }
  if (ping_outstanding_ && now - ping_sent_at_ >= options_.ping_timeout) {
    return finish({1006, "", Initiator::gateway, false,
                   Failure{Cause::ping_timeout, "no pong within " +
                                                    std::to_string(options_.ping_timeout.count()) +
                                                    " ms: the server is unresponsive"}});
  }
  const auto idle = now - last_activity_;
  const auto interval = options_.keepalive_interval.count() > 0 ? options_.keepalive_interval
                                                                : options_.ping_timeout;
  if (idle >= interval && queued_.empty()) {
    OutgoingMessage m;
    if (options_.ping_timeout.count() > 0 && !ping_outstanding_) {
      m.kind = OutgoingMessage::Kind::ping;
      ping_outstanding_ = true;
      ping_sent_at_ = now;
    } else {
      m.kind = OutgoingMessage::Kind::pong;
    }
    queued_.push_back(std::move(m));
    engine_send(queued_.back());
    touch();
    pump();
  }
  arm_keepalive();
}

// ---------------------------------------------------------------------------------------------
// Transport.

template <class Handler>
void UpstreamConnection::async_write_buffers(const std::vector<asio::const_buffer>& buffers,
                                             Handler&& handler) {
  if (tls_) {
    asio::async_write(*tls_, buffers, asio::bind_executor(strand_, std::forward<Handler>(handler)));
  } else {
    asio::async_write(socket_, buffers, asio::bind_executor(strand_, std::forward<Handler>(handler)));
  }
}

template <class Handler>
void UpstreamConnection::async_read_some(asio::mutable_buffer buffer, Handler&& handler) {
  if (tls_) {
    tls_->async_read_some(buffer, asio::bind_executor(strand_, std::forward<Handler>(handler)));
  } else {
    socket_.async_read_some(buffer, asio::bind_executor(strand_, std::forward<Handler>(handler)));
  }
}

void UpstreamConnection::close_socket() {
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace wsgate::net
