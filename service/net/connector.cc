#include "service/net/connector.h"

#ifndef _WIN32
#include <sys/socket.h>
#include <unistd.h>
#endif

#include <cerrno>
#include <utility>

namespace wsgate::net {
namespace {

using session::Cause;
using session::Failure;

// Asio's error codes carry errno values in its own system category.
bool is_errno(const asio::error_code& ec, int value) {
  return ec.category() == asio::system_category() && ec.value() == value;
}

// The process is out of file descriptors: reported as fd_limit, not as a network failure.
// Checked on failure paths only. Asio does not always pass EMFILE on (getaddrinfo() that cannot
// open /etc/hosts reports "host not found"), so when the error itself does not say, a probe
// socket tells whether fds are short right now.
bool out_of_fds(const asio::error_code& ec) {
  if (ec == asio::error::no_descriptors || is_errno(ec, ENFILE)) {
    return true;
  }
#ifdef _WIN32
  return false;  // no per-process limit on sockets (WSAEMFILE is no_descriptors, above)
#else
  const int probe = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (probe >= 0) {
    ::close(probe);
    return false;
  }
  return errno == EMFILE || errno == ENFILE;
#endif
}

std::string address_text(const asio::ip::tcp::endpoint& ep) {
  const asio::ip::address a = ep.address();
  return a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
}

// How many failed addresses a failure message lists (a name may resolve to dozens).
constexpr std::size_t kListedErrors = 4;

}  // namespace

std::shared_ptr<Connector> Connector::create(Executor executor, Options options) {
  return std::shared_ptr<Connector>(new Connector(std::move(executor), std::move(options)));
}

Connector::Connector(Executor executor, Options options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      resolver_(executor_),
      timer_(executor_) {}

void Connector::start(Handler done) {
  done_ = std::move(done);
  const WebSocketUrl& url = options_.url;
  if (!url.unix_path.empty()) return start_unix();
  if (options_.policy) {
    std::string reason = options_.policy->check_host(url.host, url.port);
    if (trace().debug()) trace().policy_verdict("host", describe_endpoint(url), reason);
    if (!reason.empty()) return fail(Cause::destination_denied, std::move(reason));
  }
  asio::error_code literal_error;
  const asio::ip::address literal = asio::ip::make_address(url.host, literal_error);
  if (!literal_error) {
    // An IP literal needs no resolver (whose work runs on a thread of its own).
    return on_resolved({}, {asio::ip::tcp::endpoint(literal, url.port)});
  }
  auto self = shared_from_this();
  ResolveHandler handler = [self](const asio::error_code& ec, Endpoints endpoints) {
    self->on_resolved(ec, std::move(endpoints));
  };
  if (options_.resolver) return options_.resolver(url.host, url.port, std::move(handler));
  resolver_.async_resolve(url.host, std::to_string(url.port),
                          [handler = std::move(handler)](
                              const asio::error_code& ec,
                              const asio::ip::tcp::resolver::results_type& results) {
                            Endpoints endpoints;
                            for (const auto& entry : results) endpoints.push_back(entry.endpoint());
                            handler(ec, std::move(endpoints));
                          });
}

void Connector::start_unix() {
  const std::string& path = options_.url.unix_path;
  if (options_.policy) {
    std::string reason = options_.policy->check_unix_socket(path);
    if (trace().debug()) trace().policy_verdict("unix_socket", path, reason);
    if (!reason.empty()) return fail(Cause::destination_denied, std::move(reason));
  }
  unix_socket_.emplace(executor_);
  unix_socket_->async_connect(
      asio::generic::stream_protocol::endpoint(asio::local::stream_protocol::endpoint(path)),
      [self = shared_from_this()](const asio::error_code& ec) {
        if (self->finished_) return;
        const std::string& socket_path = self->options_.url.unix_path;
        if (!ec) {
          Result result;
          result.socket = std::move(*self->unix_socket_);
          self->unix_socket_.reset();
          return self->finish(std::move(result));
        }
        if (is_errno(ec, ENOENT)) {
          return self->fail(Cause::connection_refused,
                            "cannot connect to unix socket " + socket_path + ": no such socket");
        }
        const Cause cause = ec == asio::error::connection_refused ? Cause::connection_refused
                            : out_of_fds(ec)                      ? Cause::fd_limit
                                                                  : Cause::network_error;
        self->fail(cause, "cannot connect to unix socket " + socket_path + ": " + ec.message());
      });
}

void Connector::on_resolved(const asio::error_code& ec, Endpoints endpoints) {
  if (finished_) return;
  const WebSocketUrl& url = options_.url;
  if (ec) {
    return fail(out_of_fds(ec) ? Cause::fd_limit : Cause::dns_failure,
                "cannot resolve " + url.host + ": " + ec.message());
  }
  std::vector<asio::ip::tcp::endpoint> allowed;
  std::string denied_reason;
  for (const asio::ip::tcp::endpoint& ep : endpoints) {
    if (options_.policy) {
      std::string reason = options_.policy->check_address(ep.data());
      if (trace().debug()) trace().policy_verdict("address", ep.address().to_string(), reason);
      if (!reason.empty()) {
        if (denied_reason.empty()) denied_reason = std::move(reason);
        continue;
      }
    }
    allowed.push_back(ep);
  }
  if (trace().debug()) trace().resolved(endpoints.size(), allowed.size());
  if (allowed.empty()) {
    if (!denied_reason.empty()) return fail(Cause::destination_denied, std::move(denied_reason));
    return fail(Cause::dns_failure, "no address for " + url.host);
  }
  std::vector<bool> is_v6;
  for (const auto& ep : allowed) is_v6.push_back(ep.address().is_v6());
  for (std::size_t i : AttemptSchedule::interleave(is_v6)) {
    attempts_.push_back(Attempt{allowed[i], std::nullopt, {}});
  }
  if (trace().debug()) trace().connecting(attempts_.size());
  schedule_.emplace(attempts_.size(), options_.attempt_delay);
  apply(schedule_->begin(AttemptSchedule::Clock::now()));
}

void Connector::apply(const AttemptSchedule::Step& step) {
  if (step.start) launch(*step.start);
  if (finished_) return;
  if (step.wake) {
    timer_.expires_at(*step.wake);
    timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->finished_) return;  // replaced or cancelled
      self->apply(self->schedule_->on_timer(AttemptSchedule::Clock::now()));
    });
  }
  if (step.exhausted) {
    // Every address failed: the cause of the last one (out of fds wins: it is ours, not the
    // network's), the message lists them.
    Cause cause = Cause::network_error;
    std::string message = "cannot connect to " + describe_endpoint(options_.url) + ": ";
    for (std::size_t i = 0; i < attempts_.size(); ++i) {
      const asio::error_code& e = attempts_[i].error;
      if (attempts_.size() == 1) {
        message += e.message();  // the address is the one named (or the only one resolved)
      } else if (i < kListedErrors) {
        if (i > 0) message += "; ";
        message += address_text(attempts_[i].endpoint) + ": " + e.message();
      }
      if (cause != Cause::fd_limit) {
        cause = e == asio::error::connection_refused ? Cause::connection_refused
                : out_of_fds(e)                      ? Cause::fd_limit
                                                     : Cause::network_error;
      }
    }
    if (attempts_.size() > kListedErrors) {
      message += "; and " + std::to_string(attempts_.size() - kListedErrors) + " more addresses";
    }
    fail(cause, std::move(message));
  }
}

void Connector::launch(std::size_t attempt) {
  Attempt& a = attempts_[attempt];
  if (options_.on_attempt) options_.on_attempt(a.endpoint);
  a.socket.emplace(executor_);
  a.socket->async_connect(asio::generic::stream_protocol::endpoint(a.endpoint),
                          [self = shared_from_this(), attempt](const asio::error_code& ec) {
                            self->on_attempt_done(attempt, ec);
                          });
}

void Connector::on_attempt_done(std::size_t attempt, const asio::error_code& ec) {
  if (finished_) return;
  Attempt& a = attempts_[attempt];
  if (!ec) {
    Result result;
    result.socket = std::move(*a.socket);
    a.socket.reset();
    result.tcp_endpoint = a.endpoint;
    return finish(std::move(result));
  }
  a.error = ec;
  asio::error_code ignored;
  a.socket->close(ignored);
  apply(schedule_->on_failed(AttemptSchedule::Clock::now(), attempt));
}

void Connector::fail(Cause cause, std::string message) {
  Result result;
  result.failure = Failure{cause, std::move(message)};
  finish(std::move(result));
}

void Connector::finish(Result result) {
  Handler done = std::move(done_);
  cancel();  // the losers of the race, the timer
  if (done) done(std::move(result));
}

void Connector::cancel() {
  finished_ = true;
  done_ = nullptr;
  resolver_.cancel();
  timer_.cancel();
  asio::error_code ignored;
  for (Attempt& a : attempts_) {
    if (a.socket) a.socket->close(ignored);
  }
  if (unix_socket_) unix_socket_->close(ignored);
}

}  // namespace wsgate::net
