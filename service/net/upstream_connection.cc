#include "service/net/upstream_connection.h"

#include <algorithm>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "service/net/quote.h"
#include "service/ws/handshake.h"

namespace wsgate::net {
namespace {

// Drops the first `n` bytes of a buffer sequence (what a partial write took).
void drop_front(std::vector<asio::const_buffer>& buffers, std::size_t n) {
  auto it = buffers.begin();
  while (it != buffers.end() && n >= it->size()) {
    n -= it->size();
    ++it;
  }
  buffers.erase(buffers.begin(), it);
  if (n != 0 && !buffers.empty()) buffers.front() += n;
}

// What a step that must wait waits for (want_read or want_write).
Connector::Socket::wait_type socket_wait(TlsChannel::Step::Status want) {
  return want == TlsChannel::Step::Status::want_write ? Connector::Socket::wait_write
                                                      : Connector::Socket::wait_read;
}

// A TCP read_some or write_some as a step: `want` when the non-blocking socket would block.
TlsChannel::Step tcp_step(std::size_t bytes, const asio::error_code& ec,
                          TlsChannel::Step::Status want) {
  TlsChannel::Step step;
  step.bytes = bytes;
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    step.status = want;
  } else if (ec) {
    step.status = ec == asio::error::eof ? TlsChannel::Step::Status::closed
                                         : TlsChannel::Step::Status::failed;
    step.message = ec.message();
  }
  return step;
}

}  // namespace

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

std::shared_ptr<UpstreamConnection> UpstreamConnection::create(
    asio::io_context& io, session::Settings settings, ConnectOptions options,
    std::shared_ptr<ConnectionObserver> observer) {
  return std::shared_ptr<UpstreamConnection>(new UpstreamConnection(
      io, std::move(settings), std::move(options), std::move(observer)));
}

UpstreamConnection::UpstreamConnection(asio::io_context& io, session::Settings settings,
                                       ConnectOptions options,
                                       std::shared_ptr<ConnectionObserver> observer)
    : strand_(asio::make_strand(io)),
      connect_(std::make_unique<ConnectPhase>()),
      tls_options_(std::move(options.tls)),
      observer_(std::move(observer)),
      machine_(std::move(settings)),
      socket_(strand_),
      timer_(strand_) {
  connect_->options = std::move(options);
}

UpstreamConnection::~UpstreamConnection() = default;

// ---------------------------------------------------------------------------------------------
// Connect phase.

void UpstreamConnection::start() {
  asio::post(strand_, [self = shared_from_this()] {
    Lock lock(self->mutex_);
    if (self->machine_.finished()) return;
    self->run(lock, self->machine_.start(session::Clock::now()));
    if (self->machine_.finished()) return;
    const ConnectOptions& connect = self->connect_->options;
    if (connect.proxy && !self->proxy_target_allowed(lock)) return;
    Connector::Options options;
    options.url = self->dial_url();
    // A proxy from the daemon's configuration is trusted; one a session named passes the policy
    // like any destination (then Connector's verdicts are about the proxy).
    if (!connect.proxy || connect.proxy->check_policy) options.policy = connect.policy;
    options.attempt_delay = connect.connection_attempt_delay;
    options.trace = self->settings().trace;
    std::shared_ptr<Connector> connector = Connector::create(self->strand_, std::move(options));
    self->connect_->connector = connector;
    lock.unlock();
    // The connector may answer at once (a denied destination): not under the mutex.
    connector->start(
        [self](Connector::Result result) { self->on_connected(std::move(result)); });
  });
}

// On the strand.
void UpstreamConnection::on_connected(Connector::Result result) {
  Lock lock(mutex_);
  if (machine_.finished()) return;
  const ConnectOptions& connect = connect_->options;
  if (result.failure) {
    Failure failure = std::move(*result.failure);
    if (connect.proxy) {
      // Through a proxy, the address that cannot be reached is the proxy's.
      switch (failure.cause) {
        case Cause::dns_failure:
        case Cause::connection_refused:
        case Cause::network_error:
          failure.cause = Cause::proxy_connect_failed;
          // "cannot connect to HOST:PORT: ..." becomes "cannot connect to the HTTP proxy ...".
          for (std::string_view verb : {"cannot connect to ", "cannot resolve ", "no address for "}) {
            if (failure.message.rfind(verb, 0) == 0) {
              failure.message.insert(verb.size(), "the HTTP proxy ");
              break;
            }
          }
          break;
        case Cause::destination_denied:
          failure.message = "the proxy: " + failure.message;
          break;
        default:
          break;
      }
    }
    return run(lock, machine_.transport_failed(std::move(failure)));
  }
  socket_ = std::move(*result.socket);
  if (trace().debug()) {
    trace().connected(result.tcp_endpoint ? result.tcp_endpoint->address().to_string() + " port " +
                                                std::to_string(result.tcp_endpoint->port())
                                          : "unix:" + settings().url.unix_path);
  }
  if (result.tcp_endpoint) {
    // Per-address admission counts the server's addresses; through a proxy the address reached
    // is the proxy's, so it is not asked (the per-host limit counts the target name).
    if (connect.admit_address && !connect.proxy) {
      std::string refused = connect.admit_address(result.tcp_endpoint->address());
      if (!refused.empty()) {
        return run(lock, machine_.transport_failed({Cause::session_limit, std::move(refused)}));
      }
    }
    asio::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);  // TCP only
  }
  // Reads and writes are non-blocking steps (read_step, write_step) that return would_block
  // instead of waiting; Asio's own asynchronous operations are unaffected.
  asio::error_code ignored;
  socket_.non_blocking(true, ignored);
  if (connect.proxy) return start_tunnel(lock);
  stream_connected(lock);
}

// The TCP connection (through a proxy: the tunnel) is up.
void UpstreamConnection::stream_connected(Lock& lock) {
  // The connect phase is over: its options, the Connector and the tunnel's buffer go now (the
  // caller's handler keeps the Connector alive until it returns).
  connect_.reset();
  run(lock, machine_.transport_connected(session::Clock::now()));
  if (machine_.finished()) return;
  if (settings().url.secure) {
    start_tls(lock);
  } else {
    // The connect is over: from now on client events run in the caller's thread.
    inline_ = true;
    run(lock, machine_.transport_ready(session::Clock::now()));
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP CONNECT proxy: the tunnel between the TCP connection to the proxy and stream_connected.
// The bytes are http_proxy.h's; the connect deadline (the machine's timer) bounds the wait, and
// limits.max_header_bytes the answer.

WebSocketUrl UpstreamConnection::dial_url() const {
  const std::optional<ProxyEndpoint>& via = connect_->options.proxy;
  if (!via) return settings().url;
  WebSocketUrl proxy;
  proxy.host = via->host;
  proxy.port = via->port;
  return proxy;
}

// Called on the strand with the mutex held. Through a proxy, the proxy resolves the target's
// name, so the policy judges the target's host and port here, and its address only when it is
// an IP literal. Returns false after failing the session.
bool UpstreamConnection::proxy_target_allowed(Lock& lock) {
  const std::shared_ptr<const DestinationPolicy>& policy = connect_->options.policy;
  if (!policy) return true;
  const WebSocketUrl& url = settings().url;
  std::string reason = policy->check_host(url.host, url.port);
  if (reason.empty()) {
    asio::error_code not_literal;
    const asio::ip::address target = asio::ip::make_address(url.host, not_literal);
    if (!not_literal) {
      reason = policy->check_address(asio::ip::tcp::endpoint(target, url.port).data());
    }
  }
  if (trace().debug()) trace().policy_verdict("proxied_target", describe_endpoint(url), reason);
  if (reason.empty()) return true;
  run(lock, machine_.transport_failed({Cause::destination_denied, std::move(reason)}));
  return false;
}

void UpstreamConnection::start_tunnel(Lock& lock) {
  run(lock, machine_.tunnel_requested(session::Clock::now()));
  if (machine_.finished()) return;
  connect_->tunnel_buffer = build_connect_request(settings().url, *connect_->options.proxy);
  asio::async_write(
      socket_, asio::buffer(connect_->tunnel_buffer),
      asio::bind_executor(strand_, [self = shared_from_this()](const asio::error_code& ec,
                                                               std::size_t) {
        Lock held(self->mutex_);
        if (self->machine_.finished()) return;
        if (ec) {
          return self->run(held, self->machine_.transport_failed(
                                     {Cause::proxy_connect_failed,
                                      "cannot send CONNECT to the HTTP proxy " +
                                          self->connect_->options.proxy->authority() + ": " +
                                          ec.message()}));
        }
        self->connect_->tunnel_buffer.clear();
        self->connect_->tunnel_used = 0;
        self->read_tunnel();
      }));
}

// Called on the strand with the mutex held. parse_connect_reply returns need_more only below
// max_header_bytes, so there is always room for one more byte.
void UpstreamConnection::read_tunnel() {
  const std::size_t max = settings().max_header_bytes;
  std::string& buffer = connect_->tunnel_buffer;
  const std::size_t used = connect_->tunnel_used;
  const std::size_t chunk = std::min<std::size_t>(4096, max + 1 - used);
  buffer.resize(used + chunk);
  socket_.async_read_some(
      asio::buffer(buffer.data() + used, chunk),
      asio::bind_executor(strand_, [self = shared_from_this()](const asio::error_code& ec,
                                                               std::size_t n) {
        self->on_tunnel_read(ec, n);
      }));
}

void UpstreamConnection::on_tunnel_read(const asio::error_code& ec, std::size_t bytes) {
  Lock lock(mutex_);
  if (machine_.finished()) return;
  const ProxyEndpoint& via = *connect_->options.proxy;
  const std::string proxy = "the HTTP proxy " + via.authority();
  if (ec) {
    return run(lock, machine_.transport_failed(
                         {Cause::proxy_connect_failed,
                          proxy + " closed the connection before answering CONNECT (" +
                              ec.message() + ")"}));
  }
  connect_->tunnel_used += bytes;
  ConnectReply reply = parse_connect_reply(connect_->tunnel_buffer.data(), connect_->tunnel_used,
                                           settings().max_header_bytes);
  const std::string target = settings().url.host + ":" + std::to_string(settings().url.port);
  Failure failure;
  switch (reply.kind) {
    case ConnectReply::Kind::need_more:
      return read_tunnel();
    case ConnectReply::Kind::established:
      return stream_connected(lock);
    case ConnectReply::Kind::auth_required:
      failure = {Cause::proxy_auth_required,
                 proxy + " requires authentication for CONNECT " + target + ": " + reply.message +
                     (via.authorization.empty()
                          ? " (no credentials were sent: put them in the proxy URL)"
                          : " (the credentials sent were refused)")};
      break;
    case ConnectReply::Kind::refused:
      failure = {Cause::proxy_refused,
                 proxy + " refused CONNECT " + target + ": " + reply.message};
      break;
    case ConnectReply::Kind::invalid:
      failure = {Cause::proxy_connect_failed,
                 proxy + " sent an invalid answer to CONNECT: " + reply.message};
      break;
  }
  failure.http_status = reply.http_status;
  failure.http_headers = std::move(reply.headers);
  run(lock, machine_.transport_failed(std::move(failure)));
}

const TlsOptions& UpstreamConnection::tls_options() const {
  static const TlsOptions defaults;
  return tls_options_ ? *tls_options_ : defaults;
}

// Called on the strand with the mutex held.
void UpstreamConnection::start_tls(Lock& lock) {
  if (tls_options().context) {
    tls_context_ = tls_options().context;
  } else {
    TlsContextResult made = make_tls_context(tls_options(), tls_options().default_ca_file);
    if (!made.context) return run(lock, machine_.transport_failed({Cause::tls_error, made.error}));
    tls_context_ = made.context;
  }
  const std::string& name =
      tls_options().server_name.empty() ? settings().url.host : tls_options().server_name;
  std::string error;
  tls_ = TlsChannel::create(tls_context_->native_handle(),
                            static_cast<TlsChannel::NativeSocket>(socket_.native_handle()), name,
                            !tls_options().insecure_skip_verify, &error);
  if (!tls_) return run(lock, machine_.transport_failed({Cause::tls_error, std::move(error)}));
  continue_tls_handshake(lock);
}

// On the strand with the mutex held: one step of the handshake, then a wait for the socket.
void UpstreamConnection::continue_tls_handshake(Lock& lock) {
  const TlsChannel::Step step = tls_->handshake();
  switch (step.status) {
    case TlsChannel::Step::Status::done:
      if (trace().debug()) trace_tls_ready();
      // The connect is over: from now on client events run in the caller's thread, as on a
      // plain TCP session (TlsChannel needs no strand).
      inline_ = true;
      return run(lock, machine_.transport_ready(session::Clock::now()));
    case TlsChannel::Step::Status::want_read:
    case TlsChannel::Step::Status::want_write:
      socket_.async_wait(
          socket_wait(step.status),
          asio::bind_executor(strand_, [self = shared_from_this()](const asio::error_code& ec) {
            Lock held(self->mutex_);
            if (self->machine_.finished()) return;
            if (ec) {
              return self->run(held, self->machine_.transport_failed(
                                         {Cause::tls_handshake_failed,
                                          "TLS handshake with " + self->settings().url.host +
                                              " failed: " + ec.message()}));
            }
            self->continue_tls_handshake(held);
          }));
      return;
    case TlsChannel::Step::Status::closed:
    case TlsChannel::Step::Status::failed:
      return run(lock, machine_.transport_failed(tls_handshake_failure(step)));
  }
}

void UpstreamConnection::trace_tls_ready() {
  SSL* ssl = tls_->native_handle();
  const long verify = SSL_get_verify_result(ssl);
  trace().tls_ready(SSL_get_version(ssl), SSL_get_cipher_name(ssl),
                    tls_options().insecure_skip_verify ? "skipped (insecure_skip_verify)"
                                                       : X509_verify_cert_error_string(verify));
}

Failure UpstreamConnection::tls_handshake_failure(const TlsChannel::Step& step) {
  const std::string& host = settings().url.host;
  const long verify = SSL_get_verify_result(tls_->native_handle());
  if (verify != X509_V_OK) {
    return Failure{Cause::tls_handshake_failed,
                 "TLS handshake with " + host + " failed: certificate verification failed: " +
                     X509_verify_cert_error_string(verify)};
  }
  // No common protocol version: OpenSSL says so with one of these reasons, or (when the peer
  // just hangs up on a ClientHello it cannot serve) the stream ends before any ServerHello.
  // "stream truncated" alone does not tell the client what to change, so name the versions.
  const char* minimum =
      tls_options().min_version == TlsMinVersion::tls1_3 ? "TLS 1.3" : "TLS 1.2";
  switch (step.reason) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
      return Failure{Cause::tls_version_mismatch,
                     "TLS handshake with " + host + " failed: no TLS protocol version in common (" +
                         step.message + "): the gateway offers " + minimum +
                         " or later (open.tls.min_version) and the server does not accept it"};
    default:
      break;
  }
  std::string why = step.message;
  if (step.truncated && step.nothing_received) {
    // Not a byte came back for our ClientHello. A server with no TLS version in common often
    // just hangs up like this instead of sending an alert, so say which versions we offered.
    why = "the server closed the connection without answering the TLS ClientHello (" + why +
          "), as a server does that accepts no TLS version the gateway offers: " + minimum +
          " or later (open.tls.min_version)";
  }
  return Failure{Cause::tls_handshake_failed, "TLS handshake with " + host + " failed: " + why};
}

// ---------------------------------------------------------------------------------------------
// Client events.

template <class F>
void UpstreamConnection::client_event(F f) {
  Lock lock(mutex_);
  if (inline_) return run(lock, f(lock));
  lock.unlock();
  asio::post(strand_, [self = shared_from_this(), f = std::move(f)]() mutable {
    Lock held(self->mutex_);
    self->run(held, f(held));
  });
}

void UpstreamConnection::send(OutgoingMessage message, std::function<void()> on_room) {
  client_event([this, message = std::move(message), on_room = std::move(on_room)](
                   Lock&) mutable {
    bool room = false;
    session::Actions actions =
        machine_.client_message(session::Clock::now(), std::move(message), &room);
    if (on_room && !machine_.finished() && !actions.finish) {
      if (room) {
        notes_.push_back(Note{Note::Kind::room, {}, std::move(on_room), {}});
      } else if (machine_.open()) {
        waiting_for_room_.push_back(std::move(on_room));
      }
    }
    return actions;
  });
}

void UpstreamConnection::pause_reading(std::function<bool()> paused) {
  client_event([this, paused = std::move(paused)](Lock&) {
    return machine_.client_paused(session::Clock::now(), paused());
  });
}

void UpstreamConnection::close(std::uint16_t code, std::string reason, Initiator initiator) {
  client_event([this, code, reason = std::move(reason), initiator](Lock&) mutable {
    return machine_.client_close(session::Clock::now(), code, std::move(reason), initiator);
  });
}

void UpstreamConnection::shutdown() {
  client_event([this](Lock&) {
    return machine_.shutdown(session::Clock::now(), session::ShutdownReason::daemon_stopping);
  });
}

void UpstreamConnection::abort(Cause cause, std::string message) {
  client_event([this, cause, message = std::move(message)](Lock&) mutable {
    return machine_.abort({cause, std::move(message)});
  });
}

// ---------------------------------------------------------------------------------------------
// Actions.

void UpstreamConnection::run(Lock& lock, session::Actions a) {
  std::size_t reads_at_once = 0;
  for (;;) {
    queue_actions(a);
    if (a.finish || machine_.finished()) break;
    // I/O that finished at once, in this thread: the machine hears it here, without a trip
    // through the Asio thread. A write first (its completion may start the next one); a read
    // after the notes so far are delivered, so that the observer sees the messages in order
    // and can pause reading before the next batch.
    if (std::optional<Completion> w = std::exchange(write_completed_, std::nullopt)) {
      a = machine_.write_done(session::Clock::now(), w->bytes, w->ok, w->error);
      continue;
    }
    if (!read_completed_) break;
    deliver(lock);
    // Another thread may have taken it meanwhile (deliver unlocks), or ended the session.
    std::optional<Completion> r = std::exchange(read_completed_, std::nullopt);
    if (!r || machine_.finished()) break;
    a = machine_.bytes_read(session::Clock::now(), r->bytes, r->ok, r->error);
    // Reading on while bytes keep coming would keep this thread (the Asio thread's other
    // sessions, or a gRPC thread) to one session: after a few, the next read waits for the
    // reactor like any other.
    if (++reads_at_once >= kReadsAtOnce) read_later_ = true;
  }
  read_later_ = false;
  deliver(lock);
}

void UpstreamConnection::queue_actions(session::Actions& a) {
  const session::Counters& c = machine_.counters();
  counters_.bytes_sent.store(c.bytes_sent, std::memory_order_relaxed);
  counters_.bytes_received.store(c.bytes_received, std::memory_order_relaxed);
  counters_.messages_sent.store(c.messages_sent, std::memory_order_relaxed);
  counters_.messages_received.store(c.messages_received, std::memory_order_relaxed);

  if (!a.write.empty()) start_write(a.write);
  if (a.read) start_read(*a.read);
  if (a.timer) arm_timer(*a.timer);
  for (session::Delivery& d : a.deliver) {
    notes_.push_back(Note{Note::Kind::deliver, std::move(d), {}, {}});
  }
  const std::size_t rooms = std::min(a.room, waiting_for_room_.size());
  for (std::size_t i = 0; i < rooms; ++i) {
    notes_.push_back(Note{Note::Kind::room, {}, std::move(waiting_for_room_[i]), {}});
  }
  waiting_for_room_.erase(waiting_for_room_.begin(),
                          waiting_for_room_.begin() + static_cast<std::ptrdiff_t>(rooms));
  if (a.finish) {
    timer_.cancel();
    waiting_for_room_.clear();
    // The connector and Asio's composed operations run on the strand; the socket is closed
    // there too, never under their feet.
    asio::post(strand_, [self = shared_from_this()] {
      if (self->connect_ && self->connect_->connector) self->connect_->connector->cancel();
      self->close_socket();
    });
    notes_.push_back(Note{Note::Kind::finish, {}, {}, std::move(*a.finish)});
  }
}

void UpstreamConnection::deliver(Lock& lock) {
  if (delivering_) return;  // that thread delivers ours too, in order
  delivering_ = true;
  while (!notes_.empty()) {
    // The whole batch, in order; what other threads queue meanwhile is the next batch. The
    // batch's storage goes when it is delivered: nothing stays allocated while idle.
    std::vector<Note> batch = std::exchange(notes_, {});
    lock.unlock();
    for (Note& n : batch) deliver_one(n);
    lock.lock();
  }
  delivering_ = false;
}

void UpstreamConnection::deliver_one(Note& n) {
  {
    // observer_ is only touched by the delivering thread (delivering_ hands it over under the
    // mutex).
    switch (n.kind) {
      case Note::Kind::deliver:
        if (!observer_) break;
        switch (n.delivery.kind) {
          case session::Delivery::Kind::open: observer_->on_open(n.delivery.open); break;
          case session::Delivery::Kind::message:
            observer_->on_message(n.delivery.text, std::move(n.delivery.data), n.delivery.final,
                                  std::move(n.delivery.charge));
            break;
          case session::Delivery::Kind::pong:
            observer_->on_pong(std::move(n.delivery.data));
            break;
        }
        break;
      case Note::Kind::room:
        n.on_room();
        break;
      case Note::Kind::finish:
        if (std::shared_ptr<ConnectionObserver> observer = std::move(observer_)) {
          if (n.outcome.opened) {
            observer->on_closed(n.outcome.closed);
          } else {
            observer->on_failed(n.outcome.failure);
          }
        }
        break;
    }
  }
}

// One non-blocking step on the socket, TLS or not. TCP's read_some and write_some return
// would_block instead of waiting: the socket is non-blocking (on_connected).
TlsChannel::Step UpstreamConnection::read_step(session::MutableBuffer buffer) {
  if (tls_) return tls_->read(buffer.data, buffer.size);
  asio::error_code ec;
  const std::size_t n = socket_.read_some(asio::buffer(buffer.data, buffer.size), ec);
  return tcp_step(n, ec, TlsChannel::Step::Status::want_read);
}

TlsChannel::Step UpstreamConnection::write_step() {
  if (!tls_) {
    asio::error_code ec;
    const std::size_t n = socket_.write_some(write_rest_, ec);
    return tcp_step(n, ec, TlsChannel::Step::Status::want_write);
  }
  // TLS: a large buffer goes to OpenSSL as it is (it cuts records itself); small ones (a frame
  // header and its payload) are joined first, so that they become one record and one send
  // instead of one each. The join is rebuilt the same on a retry, as OpenSSL requires.
  const asio::const_buffer& first = write_rest_.front();
  if (write_rest_.size() == 1 || first.size() >= kTlsJoinBytes) {
    return tls_->write(first.data(), first.size());
  }
  thread_local std::string joined;
  joined.clear();
  for (const asio::const_buffer& b : write_rest_) {
    const std::size_t take = std::min(b.size(), kTlsJoinBytes - joined.size());
    joined.append(static_cast<const char*>(b.data()), take);
    if (joined.size() == kTlsJoinBytes) break;
  }
  return tls_->write(joined.data(), joined.size());
}

void UpstreamConnection::start_write(const std::vector<session::ConstBuffer>& buffers) {
  write_rest_.clear();
  write_total_ = 0;
  for (const session::ConstBuffer& b : buffers) {
    write_rest_.emplace_back(b.data, b.size);
    write_total_ += b.size;
  }
  write_written_ = 0;
  // In the calling thread (a gRPC thread for a client message): usually the socket takes it
  // all and the write is done without any wait.
  continue_write();
}

// With the mutex held: writes what the socket takes now; the rest waits for the socket.
void UpstreamConnection::continue_write() {
  for (;;) {
    const TlsChannel::Step step = write_step();
    switch (step.status) {
      case TlsChannel::Step::Status::done:
        write_written_ += step.bytes;
        drop_front(write_rest_, step.bytes);
        if (write_written_ < write_total_) continue;
        write_rest_ = {};  // nothing stays allocated while idle
        write_completed_ = Completion{write_total_, true, {}};
        return;
      case TlsChannel::Step::Status::want_read:
      case TlsChannel::Step::Status::want_write:
        return wait_writable(socket_wait(step.status));
      case TlsChannel::Step::Status::closed:
      case TlsChannel::Step::Status::failed:
        return fail_write(step.message);
    }
  }
}

void UpstreamConnection::fail_write(std::string why) {
  write_rest_ = {};
  write_completed_ = Completion{write_written_, false, std::move(why)};
}

void UpstreamConnection::wait_writable(Connector::Socket::wait_type wait) {
  wait_socket(wait, &UpstreamConnection::continue_write, &UpstreamConnection::fail_write);
}

void UpstreamConnection::wait_socket(Connector::Socket::wait_type wait,
                                     void (UpstreamConnection::*resume)(),
                                     void (UpstreamConnection::*fail)(std::string)) {
  socket_.async_wait(wait, [self = shared_from_this(), resume, fail](const asio::error_code& ec) {
    Lock lock(self->mutex_);
    if (self->machine_.finished()) return;
    if (ec) {
      ((*self).*fail)(ec.message());
    } else {
      ((*self).*resume)();
    }
    self->run(lock, {});
  });
}

void UpstreamConnection::start_read(session::MutableBuffer buffer) {
  read_buffer_ = buffer;
  // Try at once: bytes that came meanwhile are read by this thread without a trip through the
  // reactor. TLS only when OpenSSL holds bytes already (the socket's readiness does not show
  // them); else it waits for the socket, since a TLS read that finds nothing keeps OpenSSL's
  // record buffer (17 KiB) allocated for as long as the session then stays idle.
  if (tls_ && !tls_->has_pending()) {
    // Nothing buffered: no record buffers while the session waits (a write in progress keeps
    // its buffer; OpenSSL refuses to free it then).
    tls_->release_buffers();
    return wait_readable(Connector::Socket::wait_read);
  }
  if (read_later_) return wait_readable(Connector::Socket::wait_read);
  continue_read();
}

void UpstreamConnection::continue_read() {
  const TlsChannel::Step step = read_step(read_buffer_);
  switch (step.status) {
    case TlsChannel::Step::Status::done:
      read_completed_ = Completion{step.bytes, true, {}};
      return;
    case TlsChannel::Step::Status::want_read:
    case TlsChannel::Step::Status::want_write:
      return wait_readable(socket_wait(step.status));
    case TlsChannel::Step::Status::closed:
    case TlsChannel::Step::Status::failed:
      return fail_read(step.message);
  }
}

void UpstreamConnection::fail_read(std::string why) {
  read_completed_ = Completion{0, false, std::move(why)};
}

void UpstreamConnection::wait_readable(Connector::Socket::wait_type wait) {
  if (!tls_) {
    // Plain TCP: the reactor reads into the buffer itself once the socket is readable. A queued
    // read costs no epoll_ctl (a wait re-arms the descriptor each time), and its completion
    // carries the bytes.
    socket_.async_read_some(
        asio::buffer(read_buffer_.data, read_buffer_.size),
        [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
          Lock lock(self->mutex_);
          if (self->machine_.finished()) return;
          if (ec) {
            self->fail_read(ec.message());
          } else {
            self->read_completed_ = Completion{n, true, {}};
          }
          // A read that did not fill the buffer drained the socket: the next read goes straight
          // back to the reactor, which tries the socket once itself when the read is queued (its
          // speculative read). Trying at once as well would cost a second recv that finds
          // nothing, per message of a server that answers one message at a time.
          if (!ec && n < self->read_buffer_.size) self->read_later_ = true;
          self->run(lock, {});
        });
    return;
  }
  wait_socket(wait, &UpstreamConnection::continue_read, &UpstreamConnection::fail_read);
}

void UpstreamConnection::arm_timer(session::TimePoint deadline) {
  timer_.expires_at(deadline);
  timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (ec) return;  // replaced or cancelled
    Lock lock(self->mutex_);
    self->run(lock, self->machine_.timer_fired(session::Clock::now()));
  });
}

void UpstreamConnection::close_socket() {
  {
    // wss://: our close_notify goes first, so that the server sees the TLS stream end where
    // the session ended it, not cut short (a server may log or count a truncation as an error).
    // The machine has finished, so no other thread calls into OpenSSL any more (every handler
    // checks that under the mutex first); the mutex is taken because tls_ is its.
    Lock lock(mutex_);
    if (tls_) tls_->close_notify();
  }
  asio::error_code ignored;
  socket_.shutdown(Connector::Socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace wsgate::net
