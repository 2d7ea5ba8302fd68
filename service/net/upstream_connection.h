// UpstreamConnection: the Asio transport of one gateway session (one client WebSocket connection
// from wsgated to a remote server, over TCP, TLS or a unix socket). Its Connector
// (service/net/connector.h) resolves, checks the destination policy per address and connects
// (Happy Eyeballs for TCP); through an HTTP proxy it dials the proxy and sends CONNECT
// (service/net/http_proxy.h) first. Then it does the TLS handshake, and then only performs the
// I/O its session::SessionMachine asks for: one read, one write and one timer at a time. The
// upgrade, the engine's action loop, the close policy, the timeouts and the limits are the
// machine's (service/session/session_machine.h); no protocol rule lives here.
//
// Threading rule: one mutex per session. Whichever thread holds an event (a socket or timer
// completion on the Asio thread, or a call from the gRPC reactor) runs the machine under that
// mutex and does the resulting I/O itself: reads and writes are non-blocking steps on the socket
// (TCP, or TLS through TlsChannel, which is OpenSSL on the socket), and what the socket does at
// once is handed to the machine in the same call. So a client message is written upstream by
// the gRPC thread that read it, and the bytes a server sends are read, decoded and handed to the
// observer by the thread their arrival woke, which then tries the next read at once (TCP; TLS
// when OpenSSL holds bytes already). Only a step that would block waits for the socket: a TCP
// read stays queued in the reactor (async_read_some), anything else waits for readiness
// (async_wait). The connect phase (resolve, connection attempts, the proxy's CONNECT, the TLS
// handshake) runs on the strand, as do the socket's close and the I/O completions. Observer
// callbacks run outside the mutex, one at a time and in order: the thread that finds no delivery
// in progress delivers everything queued, including what other threads queue meanwhile.
//
// Object lifetime: created with create() and held by shared_ptr. Every asynchronous operation
// holds a shared_ptr to the connection, so it lives until its last operation finishes; the
// observer is released after the final event (on_failed or on_closed), which breaks the
// connection -> observer -> connection cycle. What only the connect phase needs (its
// ConnectOptions, the Connector, the proxy's CONNECT exchange) is released once the stream is
// connected; the session's settings are its machine's.
// Thread safety: all public methods may be called from any thread, but not while the caller
// holds a lock an observer callback takes (they may deliver callbacks in the calling thread).
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "service/net/connector.h"
#include "service/net/destination_policy.h"
#include "service/net/http_proxy.h"
#include "service/net/memory_budget.h"
#include "service/net/tls_channel.h"
#include "service/net/tls_context.h"
#include "service/net/url.h"
#include "service/session/session_machine.h"
#include "service/session/types.h"

namespace wsgate::net {

// The session's value types, written once in service/session/types.h.
using session::Cause;
using session::CloseInfo;
using session::Failure;
using session::Headers;
using session::Initiator;
using session::OpenInfo;
using session::OutgoingMessage;
using session::to_string;

// What the TLS handshake of a wss:// connection uses: the client's TLS settings, the daemon's
// default CA file and the context made from them.
struct TlsOptions : TlsSettings {
  std::string default_ca_file;  // the daemon's [tls] ca_file (empty: the system store)
  // The TLS context made from these settings when the request was validated (so bad PEM text is
  // refused before the connect); nullptr: made from them at the TLS handshake.
  std::shared_ptr<asio::ssl::context> context;
};

// What only the transport uses, to set the stream up: the connection drops them once the stream
// is connected, but for the TLS options, which a wss:// session keeps. The session's settings
// (session::Settings: URL, subprotocols, extensions, headers, timeouts, limits, budget, trace;
// their defaults are written there) are not here: the SessionMachine owns them, one copy per
// session, and the transport reads them through it (SessionMachine::settings()).
struct ConnectOptions {
  // Set for wss:// only: a ws:// session carries no TLS options (it would not use them).
  // nullptr with a wss:// URL: TlsOptions' defaults (the system trust store, verification on).
  std::unique_ptr<const TlsOptions> tls;
  std::shared_ptr<const DestinationPolicy> policy;  // nullptr: everything allowed
  // Called on the strand once the TCP connection to `address` is made, before anything is sent:
  // a non-empty answer refuses it (on_failed with Cause::session_limit and that message). The
  // gateway counts sessions per resolved address with it. Empty: every address is accepted.
  std::function<std::string(const asio::ip::address& address)> admit_address;
  // Happy Eyeballs (RFC 8305): the delay before the next address is tried as well.
  std::chrono::milliseconds connection_attempt_delay{250};
  // The HTTP CONNECT proxy to tunnel through (Settings::proxy_name names it); nullopt: direct.
  // The transport then resolves and connects to the proxy, asks it for a tunnel to the URL's host
  // and port, and runs TLS and the upgrade through the tunnel. The destination policy judges
  // the URL's host and port (and its address when it is an IP literal: a name is resolved by the
  // proxy, not here), and the proxy's host and addresses only when proxy->check_policy;
  // admit_address is not asked (the address reached is the proxy's).
  std::optional<ProxyEndpoint> proxy;
};

// Events of one connection. Exactly one of on_failed (before open) or on_closed (after open) is
// the last call.
class ConnectionObserver {
 public:
  virtual ~ConnectionObserver() = default;
  virtual void on_open(const OpenInfo& info) = 0;
  // A whole message, or (stream_fragments) one chunk with `final` marking the message's end.
  // `charge` holds the bytes of `data` against Settings::budget; keep it as long as the
  // data stays queued in memory.
  virtual void on_message(bool text, std::string data, bool final, BudgetCharge charge) = 0;
  virtual void on_pong(std::string payload) = 0;
  virtual void on_closed(const CloseInfo& info) = 0;
  virtual void on_failed(const Failure& failure) = 0;
};

// One extra request header a client supplied (rpc::validate_open checks each with it): the name
// must be a token, the value free of CR/LF/NUL, and the gateway's own headers (Host, Connection,
// Upgrade, Sec-WebSocket-*, Content-Length, Transfer-Encoding) may not be set. Returns what is
// wrong (empty when valid) and whether the name (true) or the value (false) is at fault.
// Untrusted text is quoted (net::quote) in the message.
struct HeaderProblem {
  std::string message;
  bool in_name = false;
};
HeaderProblem check_extra_header(std::string_view name, std::string_view value);

class UpstreamConnection : public std::enable_shared_from_this<UpstreamConnection> {
 public:
  static std::shared_ptr<UpstreamConnection> create(asio::io_context& io,
                                                    session::Settings settings,
                                                    ConnectOptions options,
                                                    std::shared_ptr<ConnectionObserver> observer);
  ~UpstreamConnection();

  // Starts resolving and connecting.
  void start();

  // Queues a message. `on_room` runs once fewer than max_queued_bytes are waiting (at once if
  // there is room already; else in the thread whose write frees the room): the caller reads its
  // next message then, so a slow socket slows the client down instead of growing memory.
  // Messages after a close are dropped.
  void send(OutgoingMessage message, std::function<void()> on_room);

  // Stops (or resumes) reading from the socket: the gRPC side is not consuming. `paused` is
  // read when the call takes effect, so when callers race, the last call applies the latest
  // wish (a bool captured at the call could apply an old one last).
  void pause_reading(std::function<bool()> paused);

  // Sends a close (if none was sent) and waits up to the close timeout for the peer's; then the
  // TCP connection is dropped. `initiator` says who asked (client close, stream end, shutdown).
  void close(std::uint16_t code, std::string reason, Initiator initiator);

  // The daemon stops: a 1001 close reported as a shutdown (typed, see session::ShutdownReason).
  void shutdown();

  // Drops the connection now (no close frame): on_closed(1006) or on_failed follows.
  void abort(Cause cause, std::string message);

  // Counters for admin/stats (updated under the session's mutex, read from anywhere).
  struct Counters {
    std::atomic<std::uint64_t> bytes_sent{0};
    std::atomic<std::uint64_t> bytes_received{0};
    std::atomic<std::uint64_t> messages_sent{0};
    std::atomic<std::uint64_t> messages_received{0};
  };
  const Counters& counters() const { return counters_; }

 private:
  UpstreamConnection(asio::io_context& io, session::Settings settings, ConnectOptions options,
                     std::shared_ptr<ConnectionObserver> observer);

  // The session's settings: the machine's copy (immutable, so readable without the mutex).
  const session::Settings& settings() const { return machine_.settings(); }

  // Connect phase (the transport's own).
  void on_connected(Connector::Result result);
  // The TCP connection (through a proxy: the tunnel) is up: TLS for wss://, then the upgrade.
  void stream_connected(std::unique_lock<std::mutex>& lock);
  // Through a proxy: the policy's verdict on the target (the proxy resolves its name).
  bool proxy_target_allowed(std::unique_lock<std::mutex>& lock);
  // HTTP CONNECT through ConnectOptions::proxy (called on the strand with the mutex held).
  void start_tunnel(std::unique_lock<std::mutex>& lock);
  void read_tunnel();
  void on_tunnel_read(const asio::error_code& ec, std::size_t bytes);
  // Where the transport connects: the proxy's host and port, else the URL.
  WebSocketUrl dial_url() const;
  // The TLS handshake's options: ConnectOptions::tls, or TlsOptions' defaults when none.
  const TlsOptions& tls_options() const;
  void start_tls(std::unique_lock<std::mutex>& lock);
  void continue_tls_handshake(std::unique_lock<std::mutex>& lock);
  Failure tls_handshake_failure(const TlsChannel::Step& step);
  // The session's decision log (Settings::trace, session/trace.h), never null.
  session::SessionTrace& trace() const { return session::trace_or_none(settings().trace); }
  void trace_tls_ready();

  using Lock = std::unique_lock<std::mutex>;

  // A client event: `f(lock)` runs the machine under the mutex, in the calling thread when the
  // session is inline (connected, and for wss:// past the TLS handshake), else on the strand.
  template <class F>
  void client_event(F f);
  // Performs what the machine asked for and queues what the observer must hear, then delivers;
  // hands I/O that finished at once back to the machine. Called with the mutex held; returns
  // with it held.
  void run(Lock& lock, session::Actions actions);
  // Starts what `a` asks for and queues its notes.
  void queue_actions(session::Actions& a);
  void deliver(Lock& lock);

  // I/O: each start_ / continue_ does what the socket allows now; what completes is left in
  // write_completed_ / read_completed_ for run(), the rest waits for the socket (wait_*).
  // fail_* ends the operation with an error.
  void start_write(const std::vector<session::ConstBuffer>& buffers);
  void continue_write();
  void fail_write(std::string why);
  void wait_writable(Connector::Socket::wait_type wait);
  void start_read(session::MutableBuffer buffer);
  void continue_read();
  void fail_read(std::string why);
  void wait_readable(Connector::Socket::wait_type wait);
  // Waits until the socket is ready for `wait`, then, under the mutex, steps the operation
  // again (`resume`) or ends it with the wait's error (`fail`), and runs the machine.
  void wait_socket(Connector::Socket::wait_type wait, void (UpstreamConnection::*resume)(),
                   void (UpstreamConnection::*fail)(std::string));
  TlsChannel::Step read_step(session::MutableBuffer buffer);
  TlsChannel::Step write_step();
  void arm_timer(session::TimePoint deadline);
  // On the strand, once the machine has finished: close_notify (wss://), then the socket goes.
  void close_socket();

  // Reads one run() hands to the machine before the next read waits for the reactor.
  static constexpr std::size_t kReadsAtOnce = 16;
  // TLS: buffers smaller than this are joined into one record per write step.
  static constexpr std::size_t kTlsJoinBytes = 16384;

  struct Completion {
    std::size_t bytes = 0;
    bool ok = true;
    std::string error;  // !ok: what the socket or TLS said
  };

  // Something the observer must hear, in order.
  struct Note {
    enum class Kind { deliver, room, finish } kind;
    session::Delivery delivery;
    std::function<void()> on_room;
    session::Outcome outcome;
  };
  // Tells the observer one note; called by the delivering thread, outside the mutex.
  void deliver_one(Note& n);

  // The connect phase (resolve, destination policy, connect, the proxy's CONNECT): its options
  // and its state. Touched on the strand only; dropped once the stream is connected
  // (stream_connected), so an open session keeps none of it.
  struct ConnectPhase {
    ConnectOptions options;  // but `tls`, moved to tls_options_ (the TLS handshake comes later)
    std::shared_ptr<Connector> connector;
    std::string tunnel_buffer;  // the CONNECT request, then the proxy's answer
    std::size_t tunnel_used = 0;
  };

  asio::strand<asio::io_context::executor_type> strand_;
  std::unique_ptr<ConnectPhase> connect_;
  const std::unique_ptr<const TlsOptions> tls_options_;  // ConnectOptions::tls (wss:// only)
  std::shared_ptr<ConnectionObserver> observer_;
  session::SessionMachine machine_;

  Connector::Socket socket_;  // TCP or unix
  std::shared_ptr<asio::ssl::context> tls_context_;
  std::unique_ptr<TlsChannel> tls_;  // wss://, after the TCP connection
  // The machine's one timer, on the strand's executor type (see Connector::Socket).
  asio::basic_waitable_timer<session::Clock, asio::wait_traits<session::Clock>,
                             asio::strand<asio::io_context::executor_type>>
      timer_;
  Counters counters_;

  std::mutex mutex_;  // guards everything below and machine_
  // Connected (wss://: the TLS handshake done): client events run in the caller's thread.
  bool inline_ = false;
  bool delivering_ = false;  // a thread is delivering notes_ (outside the mutex)
  // The one write in progress: what is left of it (empty while idle), its size, and how much of
  // it the socket took; the one read's buffer; I/O that completed, for run() to hand over.
  std::vector<asio::const_buffer> write_rest_;
  std::size_t write_total_ = 0;
  std::size_t write_written_ = 0;
  session::MutableBuffer read_buffer_{};
  std::optional<Completion> write_completed_;
  std::optional<Completion> read_completed_;
  // The next read waits for the reactor: run() read kReadsAtOnce times, or the reactor's read
  // drained the socket. Reset when run() returns.
  bool read_later_ = false;
  // Vectors, not deques: an empty libstdc++ deque holds a 512-byte node and its map, per
  // session; these are empty while a session is idle. notes_ is taken whole by the delivering
  // thread; at most one client read waits for room at a time.
  std::vector<std::function<void()>> waiting_for_room_;
  std::vector<Note> notes_;
};

}  // namespace wsgate::net
