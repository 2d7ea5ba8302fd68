// The Connector (service/net/connector.h) against real sockets: TCP listeners on 127.0.0.1 and
// ::1, a blackhole (a listener whose accept queue is full: Linux drops further SYNs, so a
// connect to it hangs), bound ports that refuse, and unix sockets. The resolver is the seam:
// a fixed answer gives the connector the addresses in a known order.
#include "service/net/connector.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace wsgate::net {
namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A TCP socket bound to an ephemeral port of `address`: listening (backlog) or not (then a
// connect to it is refused).
struct Listener {
  std::optional<tcp::acceptor> acceptor;
  tcp::endpoint endpoint;
};

std::optional<Listener> bind_tcp(asio::io_context& io, const std::string& address, int backlog,
                                 bool listen = true) {
  Listener l;
  asio::error_code ec;
  const tcp::endpoint ep(asio::ip::make_address(address), 0);
  l.acceptor.emplace(io);
  l.acceptor->open(ep.protocol(), ec);
  if (!ec) l.acceptor->bind(ep, ec);
  if (!ec && listen) l.acceptor->listen(backlog, ec);
  if (ec) return std::nullopt;
  l.endpoint = l.acceptor->local_endpoint();
  return l;
}

// A listener on `address` whose accept queue is full: the kernel drops further SYNs, so a
// connect to it neither succeeds nor fails until the client gives up (minutes). Filled the way
// tests/daemon/servers.py's BacklogFull does: connect until a connect does not complete.
struct Blackhole {
  Listener listener;
  std::vector<int> fillers;
  Blackhole() = default;
  Blackhole(Blackhole&& other) noexcept
      : listener(std::move(other.listener)), fillers(std::move(other.fillers)) {
    other.fillers.clear();
  }
  ~Blackhole() {
    for (int fd : fillers) ::close(fd);
  }
};
std::optional<Blackhole> make_blackhole(asio::io_context& io, const std::string& address) {
  std::optional<Listener> l = bind_tcp(io, address, 0);
  if (!l) return std::nullopt;
  Blackhole b;
  b.listener = std::move(*l);
  const tcp::endpoint& ep = b.listener.endpoint;
  for (int i = 0; i < 8; ++i) {
    const int fd = ::socket(ep.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::nullopt;
    b.fillers.push_back(fd);
    if (::connect(fd, ep.data(), static_cast<socklen_t>(ep.size())) == 0) continue;
    if (errno != EINPROGRESS) return std::nullopt;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 200) == 0) return b;  // this SYN was dropped: the queue is full
  }
  return std::nullopt;
}

struct Outcome {
  std::optional<Connector::Result> result;
  std::vector<std::pair<tcp::endpoint, Clock::time_point>> attempts;
  Clock::time_point started;
  Clock::time_point finished;
};

// Runs one connector to its end on a fresh strand of `io` (the io_context is run here).
Outcome connect(asio::io_context& io, Connector::Options options) {
  Outcome run;
  options.on_attempt = [&run](const tcp::endpoint& ep) {
    run.attempts.emplace_back(ep, Clock::now());
  };
  auto strand = asio::make_strand(io);
  auto connector = Connector::create(strand, std::move(options));
  run.started = Clock::now();
  asio::post(strand, [&run, connector] {
    connector->start([&run](Connector::Result result) {
      run.finished = Clock::now();
      run.result = std::move(result);
    });
  });
  io.restart();
  io.run_for(std::chrono::seconds(20));
  return run;
}

// A resolver that answers with `endpoints`, as the seam allows.
Connector::Resolver fixed(std::vector<tcp::endpoint> endpoints) {
  return [endpoints](const std::string&, std::uint16_t, Connector::ResolveHandler handler) {
    handler({}, endpoints);
  };
}

Connector::Options options_for(std::string host, std::uint16_t port) {
  Connector::Options o;
  o.url.host = std::move(host);
  o.url.port = port;
  return o;
}

std::shared_ptr<const DestinationPolicy> policy(const PolicyRules& rules) {
  std::string error;
  auto p = DestinationPolicy::create(rules, &error);
  EXPECT_TRUE(p) << error;
  return std::make_shared<const DestinationPolicy>(std::move(*p));
}

// ---- Happy Eyeballs ------------------------------------------------------------------------

// RFC 8305: the IPv6 attempt hangs; the IPv4 one starts after the connection attempt delay
// (not after the connect timeout) and wins.
TEST(Connector, SecondFamilyWinsAfterTheDelayWhenTheFirstHangs) {
  asio::io_context io;
  std::optional<Blackhole> hole = make_blackhole(io, "::1");
  if (!hole) GTEST_SKIP() << "no IPv6 loopback (::1) here";
  std::optional<Listener> good = bind_tcp(io, "127.0.0.1", 16);
  ASSERT_TRUE(good);

  Connector::Options o = options_for("dual.example", 1);
  o.attempt_delay = milliseconds(100);
  o.resolver = fixed({hole->listener.endpoint, good->endpoint});
  Outcome run = connect(io, std::move(o));

  ASSERT_TRUE(run.result);
  ASSERT_FALSE(run.result->failure) << run.result->failure->message;
  ASSERT_TRUE(run.result->socket);
  EXPECT_EQ(run.result->tcp_endpoint, good->endpoint);
  ASSERT_EQ(run.attempts.size(), 2u);
  EXPECT_EQ(run.attempts[0].first, hole->listener.endpoint) << "IPv6 first";
  EXPECT_EQ(run.attempts[1].first, good->endpoint);
  EXPECT_GE(run.attempts[1].second - run.attempts[0].second, milliseconds(100))
      << "the IPv4 attempt waits for the delay (else the blackhole refused: test is broken)";
  EXPECT_LT(run.finished - run.started, std::chrono::seconds(5))
      << "the hanging attempt must not be waited for";
}

// The families alternate: [v6 hang, v6 hang, v4 ok] is tried as v6, v4 and wins on the
// second attempt, never reaching the second IPv6 address.
TEST(Connector, FamiliesAreInterleaved) {
  asio::io_context io;
  std::optional<Blackhole> hole1 = make_blackhole(io, "::1");
  std::optional<Blackhole> hole2 = make_blackhole(io, "::1");
  if (!hole1 || !hole2) GTEST_SKIP() << "no IPv6 loopback (::1) here";
  std::optional<Listener> good = bind_tcp(io, "127.0.0.1", 16);
  ASSERT_TRUE(good);

  Connector::Options o = options_for("dual.example", 1);
  o.attempt_delay = milliseconds(100);
  o.resolver = fixed({hole1->listener.endpoint, hole2->listener.endpoint, good->endpoint});
  Outcome run = connect(io, std::move(o));
  ASSERT_TRUE(run.result && run.result->socket);
  ASSERT_EQ(run.attempts.size(), 2u);
  EXPECT_EQ(run.attempts[0].first, hole1->listener.endpoint);
  EXPECT_EQ(run.attempts[1].first, good->endpoint);
}

// A refused attempt starts the next one at once, without waiting for the (long) delay.
TEST(Connector, RefusalStartsTheNextAttemptAtOnce) {
  asio::io_context io;
  std::optional<Listener> closed = bind_tcp(io, "127.0.0.1", 0, /*listen=*/false);
  std::optional<Listener> good = bind_tcp(io, "127.0.0.1", 16);
  ASSERT_TRUE(closed && good);
  Connector::Options o = options_for("two.example", 1);
  o.attempt_delay = milliseconds(2000);
  o.resolver = fixed({closed->endpoint, good->endpoint});
  Outcome run = connect(io, std::move(o));
  ASSERT_TRUE(run.result && run.result->socket);
  EXPECT_EQ(run.result->tcp_endpoint, good->endpoint);
  ASSERT_EQ(run.attempts.size(), 2u);
  EXPECT_EQ(run.attempts[0].first, closed->endpoint);
  EXPECT_LT(run.attempts[1].second - run.attempts[0].second, milliseconds(1000));
}

TEST(Connector, EveryAddressRefusedIsConnectionRefused) {
  asio::io_context io;
  std::optional<Listener> a = bind_tcp(io, "127.0.0.1", 0, false);
  std::optional<Listener> b = bind_tcp(io, "127.0.0.1", 0, false);
  ASSERT_TRUE(a && b);
  Connector::Options o = options_for("two.example", 443);
  o.resolver = fixed({a->endpoint, b->endpoint});
  Outcome run = connect(io, std::move(o));
  ASSERT_TRUE(run.result && run.result->failure);
  EXPECT_EQ(run.result->failure->cause, session::Cause::connection_refused);
  EXPECT_NE(run.result->failure->message.find("cannot connect to two.example:443: 127.0.0.1: "),
            std::string::npos)
      << run.result->failure->message;
  EXPECT_EQ(run.attempts.size(), 2u);
}

// The destination policy judges every address: denied ones are never tried.
TEST(Connector, OneAddressRefusedNamesNoAddressTwice) {
  asio::io_context io;
  std::optional<Listener> a = bind_tcp(io, "127.0.0.1", 0, false);
  ASSERT_TRUE(a);
  const std::uint16_t port = a->endpoint.port();
  Outcome run = connect(io, options_for("127.0.0.1", port));
  ASSERT_TRUE(run.result && run.result->failure);
  EXPECT_EQ(run.result->failure->cause, session::Cause::connection_refused);
  EXPECT_EQ(run.result->failure->message,
            "cannot connect to 127.0.0.1:" + std::to_string(port) + ": " +
                asio::error::make_error_code(asio::error::connection_refused).message());
}

// A name with many addresses: every one is tried, the message lists four.
TEST(Connector, ManyRefusedAddressesAreListedBounded) {
  asio::io_context io;
  std::vector<Listener> closed;
  std::vector<tcp::endpoint> endpoints;
  for (int i = 0; i < 6; ++i) {
    std::optional<Listener> l = bind_tcp(io, "127.0.0.1", 0, false);
    ASSERT_TRUE(l);
    endpoints.push_back(l->endpoint);
    closed.push_back(std::move(*l));
  }
  Connector::Options o = options_for("many.example", 80);
  o.resolver = fixed(endpoints);
  Outcome run = connect(io, std::move(o));
  ASSERT_TRUE(run.result && run.result->failure);
  EXPECT_EQ(run.result->failure->cause, session::Cause::connection_refused);
  EXPECT_EQ(run.attempts.size(), 6u);
  const std::string& m = run.result->failure->message;
  EXPECT_NE(m.find("; and 2 more addresses"), std::string::npos) << m;
  EXPECT_EQ(std::count(m.begin(), m.end(), ';'), 4) << m;
}

TEST(Connector, DeniedAddressesAreSkipped) {
  asio::io_context io;
  std::optional<Listener> good = bind_tcp(io, "127.0.0.1", 16);
  ASSERT_TRUE(good);
  const tcp::endpoint denied(asio::ip::make_address("127.0.0.2"), good->endpoint.port());
  PolicyRules rules;
  rules.deny_cidrs = {"127.0.0.2/32"};
  Connector::Options o = options_for("mixed.example", good->endpoint.port());
  o.policy = policy(rules);
  o.resolver = fixed({denied, good->endpoint});
  Outcome run = connect(io, std::move(o));
  ASSERT_TRUE(run.result && run.result->socket);
  ASSERT_EQ(run.attempts.size(), 1u);
  EXPECT_EQ(run.attempts[0].first, good->endpoint);
}

TEST(Connector, EveryAddressDeniedIsDestinationDenied) {
  asio::io_context io;
  PolicyRules rules;
  rules.deny_cidrs = {"127.0.0.0/8"};
  Connector::Options o = options_for("internal.example", 80);
  o.policy = policy(rules);
  o.resolver = fixed({tcp::endpoint(asio::ip::make_address("127.0.0.1"), 80),
                      tcp::endpoint(asio::ip::make_address("127.0.0.2"), 80)});
  Outcome run = connect(io, std::move(o));
  ASSERT_TRUE(run.result && run.result->failure);
  EXPECT_EQ(run.result->failure->cause, session::Cause::destination_denied);
  EXPECT_TRUE(run.attempts.empty());
}

TEST(Connector, ResolverErrorIsDnsFailure) {
  asio::io_context io;
  Connector::Options o = options_for("nowhere.example", 80);
  o.resolver = [](const std::string&, std::uint16_t, Connector::ResolveHandler handler) {
    handler(asio::error::host_not_found, {});
  };
  Outcome run = connect(io, std::move(o));
  ASSERT_TRUE(run.result && run.result->failure);
  EXPECT_EQ(run.result->failure->cause, session::Cause::dns_failure);
  o = options_for("empty.example", 80);
  o.resolver = fixed({});
  run = connect(io, std::move(o));
  ASSERT_TRUE(run.result && run.result->failure);
  EXPECT_EQ(run.result->failure->cause, session::Cause::dns_failure);
  EXPECT_EQ(run.result->failure->message, "no address for empty.example");
}

// cancel() (the session's connect_timeout) stops a hanging attempt; the handler never runs and
// nothing is left pending.
TEST(Connector, CancelStopsEveryAttempt) {
  asio::io_context io;
  std::optional<Blackhole> hole = make_blackhole(io, "127.0.0.1");
  ASSERT_TRUE(hole);
  Connector::Options o = options_for("127.0.0.1", hole->listener.endpoint.port());
  auto strand = asio::make_strand(io);
  auto connector = Connector::create(strand, std::move(o));
  bool called = false;
  asio::post(strand, [&] { connector->start([&](Connector::Result) { called = true; }); });
  asio::steady_timer timer(strand, milliseconds(50));
  timer.async_wait([&](const asio::error_code&) { connector->cancel(); });
  const auto start = Clock::now();
  io.run_for(std::chrono::seconds(20));
  EXPECT_FALSE(called);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5)) << "io.run() returned: nothing pending";
}

// ---- unix sockets --------------------------------------------------------------------------

class UnixConnector : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "wsgate-conn-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Connector::Options unix_options(const std::string& path) {
    Connector::Options o;
    o.url.unix_path = path;
    PolicyRules rules;
    rules.allow_unix_sockets = {dir_ + "/*.sock"};
    o.policy = policy(rules);
    return o;
  }
  std::string dir_;
};

TEST_F(UnixConnector, ConnectsToAListeningSocket) {
  asio::io_context io;
  const std::string path = dir_ + "/app.sock";
  asio::local::stream_protocol::acceptor acceptor(io, asio::local::stream_protocol::endpoint(path));
  Outcome run = connect(io, unix_options(path));
  ASSERT_TRUE(run.result);
  ASSERT_FALSE(run.result->failure) << run.result->failure->message;
  ASSERT_TRUE(run.result->socket);
  EXPECT_FALSE(run.result->tcp_endpoint);
  EXPECT_EQ(run.result->socket->local_endpoint().protocol().family(), AF_UNIX);
  EXPECT_TRUE(run.attempts.empty()) << "no TCP attempt";
}

TEST_F(UnixConnector, MissingSocketIsConnectionRefused) {
  asio::io_context io;
  Outcome run = connect(io, unix_options(dir_ + "/missing.sock"));
  ASSERT_TRUE(run.result && run.result->failure);
  EXPECT_EQ(run.result->failure->cause, session::Cause::connection_refused);
  EXPECT_EQ(run.result->failure->message,
            "cannot connect to unix socket " + dir_ + "/missing.sock: no such socket");
}

TEST_F(UnixConnector, SocketWithoutListenerIsConnectionRefused) {
  asio::io_context io;
  const std::string path = dir_ + "/stale.sock";
  // Bound but not listening: what a server that exited leaves behind.
  asio::local::stream_protocol::socket bound(io);
  bound.open();
  bound.bind(asio::local::stream_protocol::endpoint(path));
  Outcome run = connect(io, unix_options(path));
  ASSERT_TRUE(run.result && run.result->failure);
  EXPECT_EQ(run.result->failure->cause, session::Cause::connection_refused);
  EXPECT_NE(run.result->failure->message.find("refused"), std::string::npos)
      << run.result->failure->message;
}

TEST_F(UnixConnector, DeniedPathIsDestinationDeniedBeforeAnyConnect) {
  asio::io_context io;
  const std::string path = dir_ + "/app.socket";  // not *.sock
  asio::local::stream_protocol::acceptor acceptor(io, asio::local::stream_protocol::endpoint(path));
  Outcome run = connect(io, unix_options(path));
  ASSERT_TRUE(run.result && run.result->failure);
  EXPECT_EQ(run.result->failure->cause, session::Cause::destination_denied);
  EXPECT_NE(run.result->failure->message.find("not in allow_unix_sockets"), std::string::npos);
}

}  // namespace
}  // namespace wsgate::net
