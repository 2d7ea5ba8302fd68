// wsgate::Session: one upstream WebSocket connection made by wsgated (Gateway.Connect).
//
//   wsgate::Client client;
//   wsgate::Session s = wsgate::Session::open(client, "ws://127.0.0.1:8080/chat");
//   s.send_text("hello");
//   if (auto m = s.receive(wsgate::deadline_after(std::chrono::seconds(5)))) { ... }
//   s.close(1000, "bye");
//
// Lifetime: a Session owns its gRPC stream and one reader thread. It is movable, not copyable.
// Destroying an open Session cancels the stream; the daemon then closes the upstream connection
// with 1001 (going away). Call close() for a clean close. A Session keeps its Client's channel
// alive by itself.
//
// Thread safety: send_*(), ping() and close() may be called from several threads at once (writes
// are serialised). receive() may be called from one thread at a time. An on_message callback runs
// on the Session's reader thread: it must not call receive() or destroy the Session, but may send.
// Moving or destroying a Session must not race with any other call on it.
#ifndef WSGATE_CLIENT_SESSION_H_
#define WSGATE_CLIENT_SESSION_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wsgate/client/client.h"
#include "wsgate/client/error.h"
#include "wsgate/v1/gateway.pb.h"

namespace wsgate {

struct SessionOptions {
  std::vector<std::string> subprotocols;
  // The daemon refuses any entry (INVALID_ARGUMENT): it offers only what it implements, and
  // permessage-deflate is asked for with `compression`.
  std::vector<std::string> extensions;
  // permessage-deflate, negotiated and done by the gateway (messages here stay plain): mode
  // COMPRESSION_MODE_ON / _OFF, window bits, no_context_takeover, threshold_bytes. Default:
  // the daemon's [compression] settings (off unless configured).
  v1::Compression compression;
  // Extra request headers (Host, Connection, Upgrade and Sec-WebSocket-* are the gateway's).
  std::vector<Header> headers;
  // TLS settings for wss:// (CA, client certificate, SNI, minimum version...).
  v1::TlsOptions tls;
  // Zero: the daemon's configured defaults.
  std::chrono::milliseconds connect_timeout{0};
  std::chrono::milliseconds handshake_timeout{0};
  std::chrono::milliseconds close_timeout{0};
  std::uint64_t max_message_bytes = 0;
  std::uint64_t max_queued_bytes = 0;
  // Deliver received data chunk by chunk as it arrives (Message::final marks the end).
  bool stream_fragments = false;
  // HTTP CONNECT proxy (Open.proxy): empty: the daemon's default (its [proxy] configuration or
  // environment); "direct": none; else "http://[user:password@]host[:port]" (the daemon must
  // allow session proxies: proxy.allow_session_proxies).
  std::string proxy;
};

enum class Initiator { unspecified = 0, client = 1, server = 2, gateway = 3 };

struct CloseInfo {
  std::uint32_t code = 0;  // 1006: connection lost without a close frame; 1005: no status
  std::string reason;
  Initiator initiator = Initiator::unspecified;
  bool clean = false;  // both close frames were exchanged
};

struct Message {
  enum class Kind { text, binary, pong, closed };
  Kind kind = Kind::binary;
  std::string data;   // text/binary payload (UTF-8 for text), pong payload
  bool final = true;  // false only for non-final chunks with stream_fragments
  CloseInfo close;    // Kind::closed only
};

class Session {
 public:
  // Opens a session: sends Open and waits for Opened until `deadline`.
  // Throws Error: the daemon's status (UNAVAILABLE + cause "connection_refused",
  // FAILED_PRECONDITION + cause "upgrade_refused" with http_status(), PERMISSION_DENIED ...), or
  // DEADLINE_EXCEEDED when `deadline` passed (the stream is then cancelled).
  static Session open(const Client& client, const std::string& url,
                      const SessionOptions& options = {},
                      Deadline deadline = deadline_after(std::chrono::seconds(30)));

  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // The handshake's outcome.
  const std::string& id() const;
  const std::string& subprotocol() const;  // empty when none was selected
  const std::vector<std::string>& extensions() const;
  std::uint32_t http_status() const;  // 101
  const std::vector<Header>& response_headers() const;

  // Whole messages. Throw Error (FAILED_PRECONDITION, cause "session_closed") once the stream
  // has ended or close() was called.
  void send_text(std::string_view utf8);
  void send_binary(std::string_view data);
  // One fragment of a streamed message; `text` counts on the first fragment only; `final` ends
  // the message.
  void send_fragment(std::string_view data, bool text, bool final);
  // Sends a ping; the pong arrives as a Message of Kind::pong.
  void ping();

  // The next message, pong or close (Kind::closed, delivered once, last). nullopt when
  // `deadline` passes first. After the stream ended: throws the Error it ended with (or
  // FAILED_PRECONDITION "session_closed" after the close was delivered).
  // Not to be used together with on_message().
  std::optional<Message> receive(Deadline deadline);

  // Delivers every message (already queued ones first) to `callback` on the reader thread;
  // `on_end` (optional) runs once when the stream ends: with nullptr after a normal close, with
  // the Error otherwise. Replaces receive().
  void on_message(std::function<void(const Message&)> callback,
                  std::function<void(const Error*)> on_end = {});

  // Sends a close (code 0: a close frame with no status) and waits for the Closed outcome until
  // `deadline`. Messages received before it stay available to receive(). Throws Error on
  // timeout (DEADLINE_EXCEEDED) or when the stream failed.
  CloseInfo close(std::uint16_t code = 1000, std::string_view reason = {},
                  Deadline deadline = deadline_after(std::chrono::seconds(30)));

  // True until the stream ended (closed or failed).
  bool is_open() const;

  struct Impl;

 private:
  explicit Session(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace wsgate

#endif  // WSGATE_CLIENT_SESSION_H_
