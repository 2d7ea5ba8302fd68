// The C++ client SDK against a real wsgated (WSGATE_ADDRESS) and a real WebSocket echo server
// (WSGATE_ECHO_URL, tests/integration/python_echo_server.py); both started by with_daemon.py.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "wsgate/client.h"

namespace {

using namespace std::chrono_literals;

std::string echo_url() {
  const char* url = std::getenv("WSGATE_ECHO_URL");
  return url != nullptr ? url : "";
}

wsgate::Deadline soon() { return wsgate::deadline_after(15s); }

wsgate::Message next(wsgate::Session& s) {
  std::optional<wsgate::Message> m = s.receive(soon());
  if (!m) throw std::runtime_error("no message within 15 s");
  return *m;
}

TEST(Client, AddressResolution) {
  EXPECT_EQ(wsgate::resolve_address("/tmp/x.sock"), "unix:/tmp/x.sock");
  EXPECT_EQ(wsgate::resolve_address("unix:/a"), "unix:/a");
  EXPECT_EQ(wsgate::resolve_address(), std::string(std::getenv("WSGATE_ADDRESS")));
  wsgate::Client client;
  EXPECT_EQ(client.address(), std::string(std::getenv("WSGATE_ADDRESS")));
}

TEST(Client, WaitReady) {
  wsgate::Client client;
  EXPECT_TRUE(client.wait_ready(soon()));
  wsgate::ClientOptions options;
  options.address = "unix:/nonexistent/wsgate-sdk-test.sock";
  wsgate::Client nowhere(options);
  EXPECT_FALSE(nowhere.wait_ready(wsgate::deadline_after(300ms)));
}

TEST(Session, EchoTextBinaryFragmentsPing) {
  wsgate::Client client;
  ASSERT_TRUE(client.wait_ready(soon()));
  wsgate::Session s = wsgate::Session::open(client, echo_url(), {}, soon());
  EXPECT_FALSE(s.id().empty());
  EXPECT_EQ(s.http_status(), 101u);
  EXPECT_TRUE(s.subprotocol().empty());
  EXPECT_FALSE(s.response_headers().empty());
  EXPECT_TRUE(s.is_open());

  s.send_text("hello");
  wsgate::Message m = next(s);
  EXPECT_EQ(m.kind, wsgate::Message::Kind::text);
  EXPECT_EQ(m.data, "hello");
  EXPECT_TRUE(m.final);

  std::string bin("\x00\x01\x02\xff", 4);
  s.send_binary(bin);
  m = next(s);
  EXPECT_EQ(m.kind, wsgate::Message::Kind::binary);
  EXPECT_EQ(m.data, bin);

  s.send_fragment("Hello, ", true, false);
  s.send_fragment("world", true, true);
  m = next(s);
  EXPECT_EQ(m.kind, wsgate::Message::Kind::text);
  EXPECT_EQ(m.data, "Hello, world");

  s.ping();
  m = next(s);
  EXPECT_EQ(m.kind, wsgate::Message::Kind::pong);

  EXPECT_FALSE(s.receive(wsgate::deadline_after(50ms)).has_value());

  wsgate::CloseInfo c = s.close(1000, "bye", soon());
  EXPECT_EQ(c.code, 1000u);
  EXPECT_EQ(c.reason, "bye");
  EXPECT_EQ(c.initiator, wsgate::Initiator::client);
  EXPECT_TRUE(c.clean);
  m = next(s);
  EXPECT_EQ(m.kind, wsgate::Message::Kind::closed);
  EXPECT_THROW(s.send_text("late"), wsgate::Error);
}

TEST(Session, ConcurrentSendersAndStreamedReceive) {
  wsgate::Client client;
  wsgate::SessionOptions options;
  options.stream_fragments = true;
  wsgate::Session s = wsgate::Session::open(client, echo_url(), options, soon());
  constexpr int kThreads = 4, kEach = 25;
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&s, t] {
      for (int i = 0; i < kEach; ++i) s.send_text(std::to_string(t) + ":" + std::to_string(i));
    });
  }
  for (auto& th : senders) th.join();
  // Every message comes back whole (or in chunks ending with final), each exactly once.
  std::multiset<std::string> got;
  std::string partial;
  while (got.size() < kThreads * kEach) {
    wsgate::Message m = next(s);
    partial += m.data;
    if (m.final) {
      got.insert(partial);
      partial.clear();
    }
  }
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kEach; ++i)
      EXPECT_EQ(got.count(std::to_string(t) + ":" + std::to_string(i)), 1u);

  // A large binary message arrives in chunks when stream_fragments is set.
  std::string big(300000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 % 251);
  s.send_binary(big);
  std::string assembled;
  int chunks = 0;
  for (;;) {
    wsgate::Message m = next(s);
    ASSERT_EQ(m.kind, wsgate::Message::Kind::binary);
    assembled += m.data;
    ++chunks;
    if (m.final) break;
  }
  EXPECT_EQ(assembled, big);
  EXPECT_GE(chunks, 1);
  s.close(1000, "", soon());
}

TEST(Session, ServerCloseAndCallback) {
  wsgate::Client client;
  wsgate::Session s = wsgate::Session::open(client, echo_url(), {}, soon());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<wsgate::Message> got;
  bool ended = false, ended_ok = false;
  s.on_message(
      [&](const wsgate::Message& m) {
        std::lock_guard<std::mutex> lock(mu);
        got.push_back(m);
        cv.notify_all();
      },
      [&](const wsgate::Error* e) {
        std::lock_guard<std::mutex> lock(mu);
        ended = true;
        ended_ok = e == nullptr;
        cv.notify_all();
      });
  s.send_text("one");
  s.send_text("close-me");
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_until(lock, soon(), [&] { return ended; }));
  EXPECT_TRUE(ended_ok);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].data, "one");
  EXPECT_EQ(got[1].kind, wsgate::Message::Kind::closed);
  EXPECT_EQ(got[1].close.code, 4000u);
  EXPECT_EQ(got[1].close.reason, "server closing");
  EXPECT_EQ(got[1].close.initiator, wsgate::Initiator::server);
}

TEST(Session, RefusedConnectionIsAnError) {
  // A port that was just free: nothing listens there.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  close(fd);
  wsgate::Client client;
  try {
    wsgate::Session::open(client, "ws://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/",
                          {}, soon());
    FAIL() << "open succeeded";
  } catch (const wsgate::Error& e) {
    EXPECT_EQ(e.code(), wsgate::StatusCode::unavailable) << e.what();
    EXPECT_TRUE(e.has_detail());
    EXPECT_EQ(e.cause(), "connection_refused") << e.what();
  }
  try {
    wsgate::Session::open(client, "not a url", {}, soon());
    FAIL() << "open succeeded";
  } catch (const wsgate::Error& e) {
    EXPECT_EQ(e.code(), wsgate::StatusCode::invalid_argument) << e.what();
  }
}

std::string sdk_server_url() {
  const char* url = std::getenv("WSGATE_SDK_SERVER_URL");
  return url != nullptr ? url : "";
}

TEST(Session, SubprotocolSelected) {
  wsgate::Client client;
  wsgate::SessionOptions options;
  options.subprotocols = {"chat.v1", "chat.v2"};
  options.headers = {{"X-Test", "1"}};
  wsgate::Session s = wsgate::Session::open(client, sdk_server_url(), options, soon());
  EXPECT_EQ(s.subprotocol(), "chat.v2");
  bool has_protocol_header = false;
  for (const auto& h : s.response_headers())
    has_protocol_header |= h.first == "Sec-WebSocket-Protocol" && h.second == "chat.v2";
  EXPECT_TRUE(has_protocol_header);
  s.send_text("x");
  EXPECT_EQ(next(s).data, "x");
  s.close(1000, "", soon());
}

TEST(Session, RefusedUpgradeCarriesHttpStatus) {
  wsgate::Client client;
  try {
    wsgate::Session::open(client, sdk_server_url() + "refuse", {}, soon());
    FAIL() << "open succeeded";
  } catch (const wsgate::Error& e) {
    EXPECT_EQ(e.cause(), "upgrade_refused") << e.what();
    EXPECT_EQ(e.http_status(), 403u) << e.what();
    bool has_reason = false;
    for (const auto& h : e.http_headers()) has_reason |= h.first == "X-Reason" && h.second == "nope";
    EXPECT_TRUE(has_reason);
    EXPECT_NE(std::string(e.what()).find("HTTP 403"), std::string::npos);
  }
}

TEST(ProtocolClient, HandlesAndErrors) {
  wsgate::Client client;
  wsgate::ProtocolClient pc(client);
  wsgate::v1::CreateHandleRequest create;
  std::uint64_t h = pc.create_client_handle(create).handle();
  EXPECT_NE(h, 0u);
  wsgate::v1::BeginClientHandshakeRequest begin;
  begin.set_handle(h);
  auto headers = pc.begin_client_handshake(begin).additional_headers();
  EXPECT_EQ(headers.size(), 4);
  // A second Begin: E_INVALID_OPERATION.
  try {
    pc.begin_client_handshake(begin);
    FAIL();
  } catch (const wsgate::Error& e) {
    EXPECT_EQ(e.code(), wsgate::StatusCode::failed_precondition);
    EXPECT_EQ(e.hresult_symbol(), "E_INVALID_OPERATION");
    EXPECT_EQ(e.hresult_value(), 0x80000050u);
  }
  // Another Client is another caller: the handle is NOT_FOUND for it.
  wsgate::ProtocolClient other{wsgate::Client()};
  EXPECT_THROW(other.delete_handle(h), wsgate::Error);
  pc.delete_handle(h);
  try {
    pc.delete_handle(h);
    FAIL();
  } catch (const wsgate::Error& e) {
    EXPECT_EQ(e.code(), wsgate::StatusCode::not_found);
  }
  wsgate::v1::GetGlobalPropertyRequest gp;
  gp.set_type(wsgate::v1::PROPERTY_TYPE_SUPPORTED_VERSIONS);
  gp.set_size(1);
  try {
    pc.get_global_property(gp);
    FAIL();
  } catch (const wsgate::Error& e) {
    EXPECT_EQ(e.code(), wsgate::StatusCode::out_of_range);
    EXPECT_EQ(e.required_size(), 4u);
  }
  gp.set_size(4);
  EXPECT_EQ(pc.get_global_property(gp).size(), 4u);
}

TEST(Client, Admin) {
  wsgate::Client client;
  wsgate::Session s = wsgate::Session::open(client, echo_url(), {}, soon());
  EXPECT_GE(client.get_stats().active_sessions(), 1u);
  bool found = false;
  const wsgate::v1::ListSessionsResponse list = client.list_sessions();
  for (const auto& info : list.sessions()) found |= info.id() == s.id();
  EXPECT_TRUE(found);
}

}  // namespace
