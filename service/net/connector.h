// Connector: the connect phase of one upstream connection. For ws:// and wss:// it checks the
// destination policy on the host, resolves it (IP literals skip the resolver), checks the
// policy on every address (denied ones are skipped; all denied: destination_denied) and
// connects with Happy Eyeballs v2 (RFC 8305; the schedule is AttemptSchedule in
// happy_eyeballs.h, this class only does its I/O). For ws+unix it checks the policy on the
// socket path and connects to it. It yields a connected socket or a Failure; TLS, the upgrade
// and everything after are UpstreamConnection's.
//
// Error causes: dns_failure (resolution failed or no address), destination_denied,
// connection_refused (ECONNREFUSED; for a unix socket also ENOENT, a path where no socket is:
// in both cases no server listens there), fd_limit (the process is out of descriptors),
// network_error (anything else). The overall connect_timeout is not here: it is the session
// machine's timer, whose expiry makes the owner call cancel().
//
// Object lifetime: created with create() and held by shared_ptr; every pending operation holds
// one, so it lives until its last handler ran. The handler given to start() is called at most
// once, and released after that call or by cancel() (it usually holds its owner).
// Thread safety: none of its own. start(), cancel() and every handler run on the executor given
// to create(), which must be a strand (or a single-threaded context).
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "service/net/destination_policy.h"
#include "service/net/happy_eyeballs.h"
#include "service/net/url.h"
#include "service/session/types.h"

namespace wsgate::net {

class Connector : public std::enable_shared_from_this<Connector> {
 public:
  using Executor = asio::strand<asio::io_context::executor_type>;
  // One socket type for TCP and unix sockets (TCP_NODELAY is set by the owner, for TCP only).
  // Its executor is the strand's type, not the polymorphic asio::any_io_executor (56 bytes):
  // the socket and each of its pending operations carry the smaller one.
  using Socket = asio::basic_stream_socket<asio::generic::stream_protocol, Executor>;
  using Endpoints = std::vector<asio::ip::tcp::endpoint>;
  using ResolveHandler = std::function<void(const asio::error_code&, Endpoints)>;
  // The resolver seam: resolves host:port and calls the handler on the executor. Empty: Asio's
  // resolver (getaddrinfo, on Asio's resolver thread). Tests pass fixed answers.
  using Resolver = std::function<void(const std::string& host, std::uint16_t port, ResolveHandler)>;

  struct Options {
    WebSocketUrl url;
    std::shared_ptr<const DestinationPolicy> policy;  // nullptr: everything allowed
    std::chrono::milliseconds attempt_delay{250};     // RFC 8305 Connection Attempt Delay
    Resolver resolver;
    // Called as each TCP connection attempt starts (in order): for logs and tests.
    std::function<void(const asio::ip::tcp::endpoint&)> on_attempt;
    // The session's decision log (policy verdicts, resolve, attempts); nullptr: none.
    std::shared_ptr<session::SessionTrace> trace;
  };

  struct Result {
    std::optional<session::Failure> failure;  // set: no connection
    std::optional<Socket> socket;             // set: connected
    std::optional<asio::ip::tcp::endpoint> tcp_endpoint;  // the TCP address reached
  };
  using Handler = std::function<void(Result)>;

  static std::shared_ptr<Connector> create(Executor executor, Options options);

  void start(Handler done);
  // Stops everything in flight; the handler is not called afterwards. Idempotent.
  void cancel();

 private:
  Connector(Executor executor, Options options);
  session::SessionTrace& trace() const { return session::trace_or_none(options_.trace); }

  struct Attempt {
    asio::ip::tcp::endpoint endpoint;
    std::optional<Socket> socket;
    asio::error_code error;
  };

  void start_unix();
  void on_resolved(const asio::error_code& ec, Endpoints endpoints);
  void apply(const AttemptSchedule::Step& step);
  void launch(std::size_t attempt);
  void on_attempt_done(std::size_t attempt, const asio::error_code& ec);
  void fail(session::Cause cause, std::string message);
  void finish(Result result);

  Executor executor_;
  Options options_;
  Handler done_;
  bool finished_ = false;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer timer_;
  std::optional<AttemptSchedule> schedule_;
  std::vector<Attempt> attempts_;  // in the order they are tried
  std::optional<Socket> unix_socket_;
};

}  // namespace wsgate::net
