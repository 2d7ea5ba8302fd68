// UpstreamConnection: one client WebSocket connection from wsgated to a remote server, over TCP
// or TLS, driven by the sans-I/O engine (service/ws). It resolves, checks the destination
// policy, connects, does the TLS and HTTP/1.1 upgrade handshakes, then runs the engine's action
// loop: GetAction -> socket I/O -> CompleteAction. No protocol rule lives here.
//
// Object lifetime: created with create() and held by shared_ptr. Every asynchronous operation
// holds a shared_ptr to the connection, so it lives until its last operation finishes; the
// observer is released after the final event (on_failed or on_closed), which breaks the
// connection -> observer -> connection cycle.
// Thread safety: all public methods may be called from any thread; they post to the
// connection's strand. Observer callbacks run on that strand, one at a time.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <asio/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "service/net/destination_policy.h"
#include "service/net/memory_budget.h"
#include "service/net/tls_context.h"
#include "service/net/url.h"
#include "service/ws/protocol_handle.h"

namespace wsgate::net {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct ConnectOptions {
  WebSocketUrl url;
  std::vector<std::string> subprotocols;
  std::vector<std::string> extensions;
  Headers headers;  // extra request headers (validated by the caller: see validate_extra_headers)
  TlsSettings tls;
  std::string default_ca_file;
  // wss://: the TLS context made from `tls` when the request was validated (so bad PEM text is
  // refused before the connect); nullptr: made from `tls` at the TLS handshake.
  std::shared_ptr<asio::ssl::context> tls_context;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds close_timeout{5000};
  std::chrono::milliseconds keepalive_interval{30000};  // unsolicited pong when idle; 0: off
  std::chrono::milliseconds ping_timeout{0};  // >0: ping when idle, fail if no pong in time
  std::chrono::milliseconds idle_timeout{0};  // >0: close (1001) after this long without messages
  std::uint64_t max_message_bytes = 16u << 20;
  std::uint64_t max_queued_bytes = 8u << 20;  // client -> upstream bytes not yet written
  std::uint32_t max_header_bytes = 16384;
  bool stream_fragments = false;
  std::shared_ptr<const DestinationPolicy> policy;  // nullptr: everything allowed
  // The daemon-wide budget incoming messages are charged to while they are assembled (the
  // charge goes to the observer with the message); nullptr: none.
  std::shared_ptr<MemoryBudget> budget;
  // Called on the strand once the TCP connection to `address` is made, before anything is sent:
  // a non-empty answer refuses it (on_failed with Cause::session_limit and that message). The
  // gateway counts sessions per resolved address with it. Empty: every address is accepted.
  std::function<std::string(const asio::ip::address& address)> admit_address;
};

// Why a connection failed or closed abnormally; the strings are ErrorDetail.cause values.
enum class Cause {
  none,
  bad_request,
  destination_denied,
  dns_failure,
  connection_refused,
  connect_timeout,
  network_error,
  tls_error,
  tls_handshake_failed,
  handshake_timeout,
  upgrade_refused,
  handshake_rejected,
  protocol_violation,
  message_too_big,
  memory_budget,
  session_limit,
  tls_version_mismatch,
  connection_lost,
  ping_timeout,
  close_timeout,
  shutdown,
  fd_limit,  // the daemon is out of file descriptors (EMFILE/ENFILE)
};
const char* to_string(Cause cause);

struct Failure {
  Failure() = default;
  Failure(Cause c, std::string m) : cause(c), message(std::move(m)) {}

  Cause cause = Cause::none;
  std::string message;
  std::optional<ws::Result> engine_result;  // handshake_rejected, protocol_violation
  int http_status = 0;                      // upgrade_refused
  Headers http_headers;                     // upgrade_refused
};

struct OpenInfo {
  std::string subprotocol;
  std::vector<std::string> extensions;
  int http_status = 101;
  Headers response_headers;
};

enum class Initiator { client, server, gateway };

struct CloseInfo {
  std::uint16_t code = 1006;
  std::string reason;
  Initiator initiator = Initiator::server;
  bool clean = false;
  std::optional<Failure> failure;  // set when the gateway closed because something went wrong
};

// Events of one connection. Exactly one of on_failed (before open) or on_closed (after open) is
// the last call.
class ConnectionObserver {
 public:
  virtual ~ConnectionObserver() = default;
  virtual void on_open(const OpenInfo& info) = 0;
  // A whole message, or (stream_fragments) one chunk with `final` marking the message's end.
  // `charge` holds the bytes of `data` against ConnectOptions::budget; keep it as long as the
  // data stays queued in memory.
  virtual void on_message(bool text, std::string data, bool final, BudgetCharge charge) = 0;
  virtual void on_pong(std::string payload) = 0;
  virtual void on_closed(const CloseInfo& info) = 0;
  virtual void on_failed(const Failure& failure) = 0;
};

// Outgoing application data, owned by the connection until written.
struct OutgoingMessage {
  enum class Kind { text, binary, text_fragment, binary_fragment, ping, pong, close };
  Kind kind = Kind::binary;
  std::string data;      // payload, or the close reason
  bool final = true;     // fragments: the message's last one
  std::uint16_t close_code = 0;  // close: 0 = no status
  BudgetCharge charge;  // the payload's bytes against the daemon's budget; released with it
};

// Checks extra request headers a client supplied: names must be tokens, values free of CR/LF/NUL,
// and the gateway's own headers (Host, Connection, Upgrade, Sec-WebSocket-*, Content-Length,
// Transfer-Encoding) may not be set. Returns an empty string when valid.
std::string validate_extra_headers(const Headers& headers);

// One extra header: what is wrong with it (empty when valid), and whether the name (true) or
// the value (false) is at fault. Untrusted text is quoted (net::quote) in the message.
struct HeaderProblem {
  std::string message;
  bool in_name = false;
};
HeaderProblem check_extra_header(std::string_view name, std::string_view value);

class UpstreamConnection : public std::enable_shared_from_this<UpstreamConnection> {
 public:
  static std::shared_ptr<UpstreamConnection> create(asio::io_context& io, ConnectOptions options,
                                                    std::shared_ptr<ConnectionObserver> observer);
  ~UpstreamConnection();

  // Starts resolving and connecting.
  void start();

  // Queues a message. `on_room` runs on the strand once fewer than max_queued_bytes are waiting
  // (at once if there is room already): the caller reads its next message then, so a slow
  // socket slows the client down instead of growing memory. Messages after a close are dropped.
  void send(OutgoingMessage message, std::function<void()> on_room);

  // Stops (or resumes) reading from the socket: the gRPC side is not consuming.
  void pause_reading(bool paused);

  // Sends a close (if none was sent) and waits up to the close timeout for the peer's; then the
  // TCP connection is dropped. `initiator` says who asked (client close, stream end, shutdown).
  void close(std::uint16_t code, std::string reason, Initiator initiator);

  // Drops the connection now (no close frame): on_closed(1006) or on_failed follows.
  void abort(Cause cause, std::string message);

  // Counters for admin/stats (updated on the strand, read from anywhere).
  struct Counters {
    std::atomic<std::uint64_t> bytes_sent{0};
    std::atomic<std::uint64_t> bytes_received{0};
    std::atomic<std::uint64_t> messages_sent{0};
    std::atomic<std::uint64_t> messages_received{0};
  };
  const Counters& counters() const { return counters_; }

 private:
  enum class Phase { idle, connecting, handshaking, open, closing, done };

  UpstreamConnection(asio::io_context& io, ConnectOptions options,
                     std::shared_ptr<ConnectionObserver> observer);

  // Connect phase.
  void on_resolved(const asio::error_code& ec, asio::ip::tcp::resolver::results_type results);
  void on_connected(const asio::error_code& ec, const asio::ip::tcp::endpoint& endpoint);
  void start_tls();
  void on_tls_handshake_error(const asio::error_code& ec);
  void send_upgrade_request();
  void read_upgrade_response();
  void on_upgrade_response();
  void fail(Failure failure);
  void release_charges();

  // Open phase: the engine's action loop.
  void pump();
  bool pump_send_once();
  bool pump_receive_once();
  void on_indication(ws::BufferType type, const ws::Buffer& buffer);
  void engine_send(const OutgoingMessage& message);
  void release_written();
  void on_protocol_violation(ws::Result result);
  // The incoming message cannot be taken (too big, or past the memory budget): close with
  // `code` and read no more (the rest of the frame would have to be read before the peer's close
  // could be parsed); the session ends once our close is written.
  void abandon_receive(std::uint16_t code, const std::string& reason, Failure failure);
  void on_message_too_big();
  // Queues our close frame (code 0: none), records how the close will be reported, and arms the
  // close timer; when it fires, `report` is delivered as is, or (unanswered_is_failure) as not
  // clean with a close_timeout failure unless it already carries one.
  void send_close(std::uint16_t code, const std::string& reason, CloseInfo report,
                  bool unanswered_is_failure);
  void finish(CloseInfo info);
  void arm_keepalive();
  void on_keepalive_timer();
  void touch() { last_activity_ = std::chrono::steady_clock::now(); }
  void touch_data() { last_data_activity_ = last_activity_ = std::chrono::steady_clock::now(); }

  template <class Handler>
  void async_write_buffers(const std::vector<asio::const_buffer>& buffers, Handler&& handler);
  template <class Handler>
  void async_read_some(asio::mutable_buffer buffer, Handler&& handler);
  void close_socket();

  asio::strand<asio::io_context::executor_type> strand_;
  ConnectOptions options_;
  std::shared_ptr<ConnectionObserver> observer_;
  Phase phase_ = Phase::idle;

  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
  std::shared_ptr<asio::ssl::context> tls_context_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  asio::steady_timer phase_timer_;      // connect / handshake / close deadline
  asio::steady_timer keepalive_timer_;

  std::unique_ptr<ws::ProtocolHandle> engine_;
  std::string request_text_;
  std::string response_buffer_;  // the upgrade response; bytes after its head feed the engine
  std::size_t leftover_offset_ = 0;

  // Engine loop state.
  bool send_busy_ = false;     // the send direction has an action outstanding (a write)
  bool receive_busy_ = false;  // the receive direction has an action outstanding
  bool receive_queued_ = false;
  bool reading_paused_ = false;
  bool close_sent_ = false;
  bool close_received_ = false;
  bool ping_outstanding_ = false;
  std::chrono::steady_clock::time_point ping_sent_at_;
  std::string message_;        // the incoming message being assembled
  std::uint64_t message_size_ = 0;  // bytes of the incoming message so far (also when streamed)
  BudgetCharge message_charge_;     // message_'s bytes against options_.budget
  bool receive_abandoned_ = false;  // no more reads: our close is the last word
  bool message_text_ = false;
  std::deque<OutgoingMessage> queued_;  // handed to the engine, not yet completed
  std::uint64_t queued_bytes_ = 0;
  std::deque<std::function<void()>> waiting_for_room_;
  std::optional<CloseInfo> pending_close_;  // how we will report the close once it completes
  std::chrono::steady_clock::time_point last_activity_;       // any frame either way
  std::chrono::steady_clock::time_point last_data_activity_;  // a data message either way
  Counters counters_;
};

}  // namespace wsgate::net
