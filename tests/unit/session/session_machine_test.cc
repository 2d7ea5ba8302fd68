// SessionMachine driven with scripted server bytes and a fake clock: no socket, no thread, no
// real time. The Harness plays the transport: it performs each action the machine returns (a
// write is "sent" by appending its bytes to `wire`, a read is satisfied from the script), and
// moves the clock by hand.
#include "service/session/session_machine.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "service/session/per_message_deflate.h"
#include "service/ws/handshake.h"

namespace wsgate::session {
namespace {

using namespace std::chrono_literals;

// A server frame (never masked). RFC 6455 §5.2.
std::string server_frame(std::uint8_t opcode, const std::string& payload, bool fin = true) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(payload.size()));
  } else if (payload.size() < 65536) {
    f.push_back(126);
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xFF));
  } else {
    f.push_back(127);
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xFF));
  }
  return f + payload;
}

std::string close_payload(std::uint16_t code, const std::string& reason = "") {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xFF));
  return p + reason;
}

// A frame the machine wrote (client frames are masked).
struct WireFrame {
  std::uint8_t opcode;
  bool fin;
  std::string payload;
  bool rsv1 = false;
  std::uint16_t close_code() const {
    return payload.size() >= 2 ? static_cast<std::uint16_t>(
                                     (static_cast<std::uint8_t>(payload[0]) << 8) |
                                     static_cast<std::uint8_t>(payload[1]))
                               : 0;
  }
};

std::vector<WireFrame> parse_client_frames(const std::string& bytes) {
  std::vector<WireFrame> out;
  std::size_t i = 0;
  while (i + 2 <= bytes.size()) {
    const auto b0 = static_cast<std::uint8_t>(bytes[i]);
    const auto b1 = static_cast<std::uint8_t>(bytes[i + 1]);
    EXPECT_TRUE(b1 & 0x80) << "client frames are masked";
    std::uint64_t len = b1 & 0x7F;
    std::size_t p = i + 2;
    if (len == 126) {
      len = (static_cast<std::uint8_t>(bytes[p]) << 8) | static_cast<std::uint8_t>(bytes[p + 1]);
      p += 2;
    } else if (len == 127) {
      len = 0;
      for (int k = 0; k < 8; ++k) len = (len << 8) | static_cast<std::uint8_t>(bytes[p + k]);
      p += 8;
    }
    const std::string mask = bytes.substr(p, 4);
    p += 4;
    WireFrame f{static_cast<std::uint8_t>(b0 & 0x0F), (b0 & 0x80) != 0, bytes.substr(p, len),
                (b0 & 0x40) != 0};
    for (std::size_t k = 0; k < f.payload.size(); ++k) f.payload[k] ^= mask[k % 4];
    out.push_back(std::move(f));
    i = p + len;
  }
  return out;
}

Settings base_settings() {
  Settings s;
  s.url.host = "example.test";
  s.url.port = 80;
  s.url.host_header = "example.test";
  s.url.target = "/chat";
  s.keepalive_interval = 0ms;
  return s;
}

class Harness {
 public:
  explicit Harness(Settings s = base_settings()) : machine(std::move(s)) {}

  SessionMachine machine;
  TimePoint now = TimePoint{} + 1000h;
  std::string request;  // the upgrade request
  std::string wire;     // every frame byte written after the upgrade
  std::vector<ConstBuffer> write;  // the write in flight
  std::optional<MutableBuffer> read;
  std::optional<TimePoint> timer;
  std::vector<Delivery> delivered;
  std::size_t room = 0;
  std::optional<Outcome> outcome;
  bool upgraded = false;

  void apply(Actions a) {
    ASSERT_FALSE(outcome) << "an action after finish";
    if (!a.write.empty()) {
      ASSERT_TRUE(write.empty()) << "two writes outstanding";
      write = std::move(a.write);
    }
    if (a.read) {
      ASSERT_FALSE(read) << "two reads outstanding";
      read = a.read;
    }
    if (a.timer) timer = a.timer;
    for (Delivery& d : a.deliver) delivered.push_back(std::move(d));
    room += a.room;
    if (a.finish) {
      outcome = std::move(*a.finish);
      timer.reset();
    }
  }

  std::size_t write_size() const {
    std::size_t n = 0;
    for (const ConstBuffer& b : write) n += b.size;
    return n;
  }
  // The outstanding write completes in full.
  void complete_write() {
    ASSERT_FALSE(write.empty()) << "no write outstanding";
    std::string bytes;
    for (const ConstBuffer& b : write) bytes.append(static_cast<const char*>(b.data), b.size);
    write.clear();
    (upgraded ? wire : request) += bytes;
    apply(machine.write_done(now, bytes.size(), true));
  }
  // Completes writes until none is outstanding.
  void drain_writes() {
    for (int i = 0; i < 100 && !write.empty() && !outcome; ++i) complete_write();
  }
  void fail_write() {
    ASSERT_FALSE(write.empty());
    write.clear();
    apply(machine.write_done(now, 0, false, "Broken pipe"));
  }
  // The server sends `bytes`: satisfies reads until they are all consumed.
  // `must_consume` false: the machine may stop reading (it refused what it read).
  void feed(const std::string& bytes, bool must_consume = true) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      if (!must_consume && !read) return;
      ASSERT_TRUE(read) << "the machine is not reading; " << bytes.size() - off << " bytes left";
      if (outcome) return;
      const std::size_t n = std::min(read->size, bytes.size() - off);
      std::memcpy(read->data, bytes.data() + off, n);
      off += n;
      read.reset();
      apply(machine.bytes_read(now, n, true));
    }
  }
  void eof() {
    ASSERT_TRUE(read);
    read.reset();
    apply(machine.bytes_read(now, 0, false, "End of file"));
  }
  // Moves the clock, firing the timer as a transport would.
  void advance(std::chrono::milliseconds d) {
    const TimePoint until = now + d;
    while (timer && *timer <= until && !outcome) {
      now = *timer;
      timer.reset();
      apply(machine.timer_fired(now));
    }
    now = until;
  }
  // Connects and upgrades; `after_101` arrives in the same read as the response.
  void open(const std::string& after_101 = "", const std::string& extra_response_headers = "") {
    apply(machine.start(now));
    apply(machine.transport_connected(now));
    apply(machine.transport_ready(now));
    complete_write();
    const std::string key_header = "Sec-WebSocket-Key: ";
    const std::size_t k = request.find(key_header);
    ASSERT_NE(k, std::string::npos) << request;
    const std::string key = request.substr(k + key_header.size(), 24);
    upgraded = true;
    feed("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " + ws::accept_key(key) + "\r\n" + extra_response_headers +
         "\r\n" + after_101);
    ASSERT_TRUE(machine.open() || outcome);
  }
  void send_text(const std::string& text, bool* has_room = nullptr) {
    OutgoingMessage m;
    m.kind = OutgoingMessage::Kind::text;
    m.data = text;
    bool r = false;
    apply(machine.client_message(now, std::move(m), &r));
    if (has_room) *has_room = r;
  }
  std::vector<WireFrame> frames() const { return parse_client_frames(wire); }
  std::vector<std::string> messages() const {
    std::vector<std::string> out;
    for (const Delivery& d : delivered) {
      if (d.kind == Delivery::Kind::message) out.push_back(d.data);
    }
    return out;
  }
};

// --- the upgrade ------------------------------------------------------------------------------

TEST(SessionMachine, UpgradeRequestAndOpen) {
  Harness h;
  h.open();
  EXPECT_NE(h.request.find("GET /chat HTTP/1.1\r\nHost: example.test\r\n"), std::string::npos);
  EXPECT_NE(h.request.find("User-Agent: wsgate\r\n"), std::string::npos);
  ASSERT_EQ(h.delivered.size(), 1u);
  EXPECT_EQ(h.delivered[0].kind, Delivery::Kind::open);
  EXPECT_EQ(h.delivered[0].open.http_status, 101);
  EXPECT_TRUE(h.read) << "reads from the server once open";
  EXPECT_EQ(h.machine.engine_state(), ws::State::open);
}

TEST(SessionMachine, OpenReportsConnectAndHandshakeTimes) {
  Harness h;
  h.apply(h.machine.start(h.now));
  h.advance(std::chrono::milliseconds(30));  // resolve + TCP connect
  h.apply(h.machine.transport_connected(h.now));
  h.advance(std::chrono::milliseconds(12));  // TLS
  h.apply(h.machine.transport_ready(h.now));
  h.complete_write();
  const std::size_t k = h.request.find("Sec-WebSocket-Key: ");
  ASSERT_NE(k, std::string::npos);
  h.upgraded = true;
  h.advance(std::chrono::milliseconds(5));  // the server's answer
  h.feed("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " + ws::accept_key(h.request.substr(k + 19, 24)) + "\r\n\r\n");
  ASSERT_EQ(h.delivered.size(), 1u);
  EXPECT_EQ(h.delivered[0].open.connect_time, std::chrono::milliseconds(30));
  EXPECT_EQ(h.delivered[0].open.handshake_time, std::chrono::milliseconds(17));
}

TEST(SessionMachine, FramesArrivingWithThe101AreDelivered) {
  Harness h;
  h.open(server_frame(0x1, "first") + server_frame(0x2, "second"));
  EXPECT_EQ(h.messages(), (std::vector<std::string>{"first", "second"}));
}

TEST(SessionMachine, RefusedUpgradeFailsWithTheHttpStatus) {
  Harness h;
  h.apply(h.machine.start(h.now));
  h.apply(h.machine.transport_connected(h.now));
  h.apply(h.machine.transport_ready(h.now));
  h.complete_write();
  h.feed("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(h.outcome);
  EXPECT_FALSE(h.outcome->opened);
  EXPECT_EQ(h.outcome->failure.cause, Cause::upgrade_refused);
  EXPECT_EQ(h.outcome->failure.http_status, 403);
}

TEST(SessionMachine, EofDuringTheUpgradeIsANetworkError) {
  Harness h;
  h.apply(h.machine.start(h.now));
  h.apply(h.machine.transport_connected(h.now));
  h.apply(h.machine.transport_ready(h.now));
  h.complete_write();
  h.eof();
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->failure.cause, Cause::network_error);
}

// --- timeouts ---------------------------------------------------------------------------------

TEST(SessionMachine, ConnectTimeout) {
  Settings s = base_settings();
  s.connect_timeout = 250ms;
  Harness h(s);
  h.apply(h.machine.start(h.now));
  h.advance(249ms);
  EXPECT_FALSE(h.outcome);
  h.advance(1ms);
  ASSERT_TRUE(h.outcome);
  EXPECT_FALSE(h.outcome->opened);
  EXPECT_EQ(h.outcome->failure.cause, Cause::connect_timeout);
  EXPECT_NE(h.outcome->failure.message.find("250 ms"), std::string::npos);
}

TEST(SessionMachine, HandshakeTimeoutCountsFromTheConnect) {
  Settings s = base_settings();
  s.handshake_timeout = 300ms;
  Harness h(s);
  h.apply(h.machine.start(h.now));
  h.advance(100ms);
  h.apply(h.machine.transport_connected(h.now));
  h.apply(h.machine.transport_ready(h.now));
  h.complete_write();
  h.advance(299ms);
  EXPECT_FALSE(h.outcome);
  h.advance(1ms);
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->failure.cause, Cause::handshake_timeout);
}

// Through an HTTP proxy the connect timeout covers reaching the proxy and its answer to
// CONNECT; either way the failure is proxy_timeout and names the proxy.
TEST(SessionMachine, ProxyThatNeverAnswersConnectTimesOut) {
  Settings s = base_settings();
  s.connect_timeout = 400ms;
  s.proxy_name = "127.0.0.1:3128";
  Harness h(s);
  h.apply(h.machine.start(h.now));
  h.advance(150ms);  // the TCP connection to the proxy
  h.apply(h.machine.tunnel_requested(h.now));
  h.advance(249ms);
  EXPECT_FALSE(h.outcome);
  h.advance(1ms);
  ASSERT_TRUE(h.outcome);
  EXPECT_FALSE(h.outcome->opened);
  EXPECT_EQ(h.outcome->failure.cause, Cause::proxy_timeout);
  EXPECT_EQ(h.outcome->failure.message,
            "the HTTP proxy 127.0.0.1:3128 did not answer CONNECT example.test:80 within 400 ms");
}

TEST(SessionMachine, UnreachableProxyTimesOutAsProxyTimeout) {
  Settings s = base_settings();
  s.connect_timeout = 250ms;
  s.proxy_name = "proxy.test:3128";
  Harness h(s);
  h.apply(h.machine.start(h.now));
  h.advance(250ms);
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->failure.cause, Cause::proxy_timeout);
  EXPECT_EQ(h.outcome->failure.message,
            "no connection to the HTTP proxy proxy.test:3128 within 250 ms");
}

TEST(SessionMachine, OnceTheTunnelIsUpTheHandshakeDeadlineApplies) {
  Settings s = base_settings();
  s.connect_timeout = 100ms;
  s.handshake_timeout = 300ms;
  s.proxy_name = "127.0.0.1:3128";
  Harness h(s);
  h.apply(h.machine.start(h.now));
  h.apply(h.machine.tunnel_requested(h.now));
  h.advance(90ms);
  h.apply(h.machine.transport_connected(h.now));  // the proxy answered 200
  h.apply(h.machine.transport_ready(h.now));
  h.complete_write();
  h.advance(299ms);
  EXPECT_FALSE(h.outcome);
  h.advance(1ms);
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->failure.cause, Cause::handshake_timeout);
}

TEST(SessionMachine, UnansweredClientCloseTimesOut) {
  Settings s = base_settings();
  s.close_timeout = 500ms;
  Harness h(s);
  h.open();
  h.apply(h.machine.client_close(h.now, 1000, "bye"));
  h.drain_writes();
  ASSERT_EQ(h.frames().size(), 1u);
  EXPECT_EQ(h.frames()[0].opcode, 0x8);
  EXPECT_EQ(h.frames()[0].close_code(), 1000);
  h.advance(499ms);
  EXPECT_FALSE(h.outcome);
  h.advance(1ms);
  ASSERT_TRUE(h.outcome);
  ASSERT_TRUE(h.outcome->opened);
  EXPECT_FALSE(h.outcome->closed.clean);
  ASSERT_TRUE(h.outcome->closed.failure);
  EXPECT_EQ(h.outcome->closed.failure->cause, Cause::close_timeout);
}

TEST(SessionMachine, KeepaliveSendsAnUnsolicitedPongWhenIdle) {
  Settings s = base_settings();
  s.keepalive_interval = 15000ms;
  Harness h(s);
  h.open();
  h.advance(14999ms);
  EXPECT_TRUE(h.write.empty());
  h.advance(1ms);
  h.drain_writes();
  ASSERT_EQ(h.frames().size(), 1u);
  EXPECT_EQ(h.frames()[0].opcode, 0xA) << "an unsolicited pong";
  // Traffic postpones the next one: the check every interval finds the session busy at 30 s,
  // and idle for a whole interval at 45 s.
  h.advance(10000ms);
  h.feed(server_frame(0x1, "hi"));
  h.advance(19999ms);
  EXPECT_EQ(h.frames().size(), 1u);
  h.advance(1ms);
  h.drain_writes();
  EXPECT_EQ(h.frames().size(), 2u);
  EXPECT_FALSE(h.outcome);
}

TEST(SessionMachine, PingTimeoutEndsAnUnresponsiveSession) {
  Settings s = base_settings();
  s.keepalive_interval = 15000ms;
  s.ping_timeout = 1000ms;
  Harness h(s);
  h.open();
  h.advance(15000ms);
  h.drain_writes();
  ASSERT_EQ(h.frames().size(), 1u);
  EXPECT_EQ(h.frames()[0].opcode, 0x9) << "a ping";
  h.advance(999ms);
  EXPECT_FALSE(h.outcome);
  h.advance(1ms);
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->closed.code, 1006);
  EXPECT_EQ(h.outcome->closed.initiator, Initiator::gateway);
  ASSERT_TRUE(h.outcome->closed.failure);
  EXPECT_EQ(h.outcome->closed.failure->cause, Cause::ping_timeout);
}

TEST(SessionMachine, AnsweredPingKeepsTheSession) {
  Settings s = base_settings();
  s.keepalive_interval = 15000ms;
  s.ping_timeout = 1000ms;
  Harness h(s);
  h.open();
  h.advance(15000ms);
  h.drain_writes();
  h.feed(server_frame(0xA, h.frames()[0].payload));
  h.advance(5000ms);
  EXPECT_FALSE(h.outcome);
  ASSERT_EQ(h.delivered.back().kind, Delivery::Kind::pong);
}

TEST(SessionMachine, IdleTimeoutClosesWith1001) {
  Settings s = base_settings();
  s.idle_timeout = 800ms;
  Harness h(s);
  h.open();
  h.send_text("busy");
  h.drain_writes();
  h.advance(700ms);
  EXPECT_EQ(h.frames().size(), 1u);
  h.advance(500ms);  // checked twice per period: closes between 800 and 1200 ms
  h.drain_writes();
  ASSERT_EQ(h.frames().size(), 2u);
  EXPECT_EQ(h.frames()[1].opcode, 0x8);
  EXPECT_EQ(h.frames()[1].close_code(), 1001);
  h.feed(server_frame(0x8, close_payload(1001)));
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->closed.code, 1001);
  EXPECT_EQ(h.outcome->closed.initiator, Initiator::gateway);
  EXPECT_TRUE(h.outcome->closed.clean);
  EXPECT_FALSE(h.outcome->closed.failure);
}

// --- close paths ------------------------------------------------------------------------------

TEST(SessionMachine, ClientCloseAnsweredIsClean) {
  Harness h;
  h.open();
  h.apply(h.machine.client_close(h.now, 4000, "done"));
  h.drain_writes();
  EXPECT_EQ(h.frames()[0].close_code(), 4000);
  h.feed(server_frame(0x8, close_payload(4000, "done")));
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->closed.code, 4000);
  EXPECT_EQ(h.outcome->closed.reason, "done");
  EXPECT_EQ(h.outcome->closed.initiator, Initiator::client);
  EXPECT_TRUE(h.outcome->closed.clean);
}

TEST(SessionMachine, ServerCloseIsEchoedThenReported) {
  Harness h;
  h.open();
  h.feed(server_frame(0x8, close_payload(1000, "bye")));
  EXPECT_FALSE(h.outcome) << "not before our echo is written";
  ASSERT_FALSE(h.write.empty());
  h.complete_write();
  EXPECT_EQ(h.frames()[0].close_code(), 1000);
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->closed.code, 1000);
  EXPECT_EQ(h.outcome->closed.reason, "bye");
  EXPECT_EQ(h.outcome->closed.initiator, Initiator::server);
  EXPECT_TRUE(h.outcome->closed.clean);
}

TEST(SessionMachine, BothCloseAtOnce) {
  Harness h;
  h.open();
  h.apply(h.machine.client_close(h.now, 1000, ""));
  ASSERT_FALSE(h.write.empty()) << "our close is being written";
  h.feed(server_frame(0x8, close_payload(1000)));
  EXPECT_FALSE(h.outcome) << "the session ends once our close is written";
  h.complete_write();
  ASSERT_TRUE(h.outcome);
  EXPECT_TRUE(h.outcome->closed.clean);
  EXPECT_EQ(h.outcome->closed.initiator, Initiator::client);
}

TEST(SessionMachine, ProtocolViolationClosesWith1002) {
  Harness h;
  h.open();
  h.feed(std::string("\x83\x00", 2));  // reserved opcode 3
  h.drain_writes();
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.frames().back().close_code(), 1002);
  EXPECT_EQ(h.outcome->closed.code, 1002);
  EXPECT_EQ(h.outcome->closed.initiator, Initiator::gateway);
  ASSERT_TRUE(h.outcome->closed.failure);
  EXPECT_EQ(h.outcome->closed.failure->cause, Cause::protocol_violation);
  EXPECT_TRUE(h.outcome->closed.failure->engine_result);
}

TEST(SessionMachine, InvalidUtf8ClosesWith1007) {
  Harness h;
  h.open();
  h.feed(server_frame(0x1, "\xC3\x28"));
  h.drain_writes();
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->closed.code, 1007);
}

TEST(SessionMachine, DeclaredLengthOverTheLimitIsRefusedFromTheHeader) {
  Settings s = base_settings();
  s.max_message_bytes = 1000;
  Harness h(s);
  h.open();
  // Only the header of a 1 MiB frame: the machine refuses it without waiting for the payload.
  std::string header = server_frame(0x2, std::string(1 << 20, 'x')).substr(0, 10);
  h.feed(header);
  EXPECT_FALSE(h.read) << "nothing more is read";
  h.drain_writes();
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.frames().back().close_code(), 1009);
  EXPECT_EQ(h.outcome->closed.code, 1009);
  ASSERT_TRUE(h.outcome->closed.failure);
  EXPECT_EQ(h.outcome->closed.failure->cause, Cause::message_too_big);
}

TEST(SessionMachine, AssembledSizeOverTheLimitCloses1009) {
  Settings s = base_settings();
  s.max_message_bytes = 100;
  Harness h(s);
  h.open();
  h.feed(server_frame(0x2, std::string(60, 'a'), /*fin=*/false));
  EXPECT_FALSE(h.outcome);
  h.feed(server_frame(0x0, std::string(60, 'b')));
  h.drain_writes();
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->closed.code, 1009);
  EXPECT_TRUE(h.messages().empty());
}

TEST(SessionMachine, EofIs1006NotClean) {
  Harness h;
  h.open();
  h.eof();
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->closed.code, 1006);
  EXPECT_FALSE(h.outcome->closed.clean);
  EXPECT_EQ(h.outcome->closed.initiator, Initiator::server);
}

TEST(SessionMachine, WriteFailureIs1006NetworkError) {
  Harness h;
  h.open();
  h.send_text("x");
  h.fail_write();
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->closed.code, 1006);
  ASSERT_TRUE(h.outcome->closed.failure);
  EXPECT_EQ(h.outcome->closed.failure->cause, Cause::network_error);
}

TEST(SessionMachine, ShutdownClosesWith1001AsAShutdown) {
  Harness h;
  h.open();
  h.apply(h.machine.shutdown(h.now, ShutdownReason::daemon_stopping));
  h.drain_writes();
  EXPECT_EQ(h.frames()[0].close_code(), 1001);
  h.feed(server_frame(0x8, close_payload(1001)));
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->closed.initiator, Initiator::gateway);
  ASSERT_TRUE(h.outcome->closed.failure);
  EXPECT_EQ(h.outcome->closed.failure->cause, Cause::shutdown);
}

TEST(SessionMachine, ShutdownBeforeOpenFails) {
  Harness h;
  h.apply(h.machine.start(h.now));
  h.apply(h.machine.shutdown(h.now, ShutdownReason::daemon_stopping));
  ASSERT_TRUE(h.outcome);
  EXPECT_FALSE(h.outcome->opened);
  EXPECT_EQ(h.outcome->failure.cause, Cause::shutdown);
}

TEST(SessionMachine, AbortIs1006WithTheCause) {
  Harness h;
  h.open();
  h.apply(h.machine.abort({Cause::shutdown, "the client cancelled the stream"}));
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->closed.code, 1006);
  EXPECT_EQ(h.outcome->closed.failure->cause, Cause::shutdown);
  // Later events are ignored.
  EXPECT_TRUE(h.machine.timer_fired(h.now + 1h).empty());
}

// --- backpressure -----------------------------------------------------------------------------

TEST(SessionMachine, ClientMessagesWaitForRoom) {
  Settings s = base_settings();
  s.max_queued_bytes = 10;
  Harness h(s);
  h.open();
  bool room = true;
  h.send_text("0123456789abcdef", &room);
  EXPECT_FALSE(room) << "16 bytes queued, limit 10";
  ASSERT_FALSE(h.write.empty()) << "handed to the socket at once";
  EXPECT_EQ(h.room, 1u) << "room once the frame is in the (bounded) write";
  // While that write is in flight, the next message stays queued: no room.
  h.send_text("fedcba9876543210", &room);
  EXPECT_FALSE(room);
  EXPECT_EQ(h.room, 1u);
  h.complete_write();
  EXPECT_EQ(h.room, 2u) << "room once the socket took the first write";
  h.drain_writes();
  ASSERT_EQ(h.frames().size(), 2u);
  EXPECT_EQ(h.frames()[0].payload, "0123456789abcdef");
  EXPECT_EQ(h.frames()[1].payload, "fedcba9876543210");
}

TEST(SessionMachine, QueuedFramesGoOutInOneWrite) {
  Harness h;
  h.open();
  h.send_text("first");
  ASSERT_FALSE(h.write.empty());
  for (int i = 0; i < 10; ++i) h.send_text("more " + std::to_string(i));
  h.complete_write();  // the first
  ASSERT_FALSE(h.write.empty());
  EXPECT_EQ(h.write.size(), 1u) << "one buffer";
  h.complete_write();  // all ten at once
  EXPECT_TRUE(h.write.empty());
  ASSERT_EQ(h.frames().size(), 11u);
  EXPECT_EQ(h.frames()[10].payload, "more 9");
  EXPECT_EQ(h.machine.counters().messages_sent, 11u);
}

TEST(SessionMachine, CloseIsNotGatheredAheadOfItsWrite) {
  Harness h;
  h.open();
  h.send_text("first");
  h.send_text("second");
  h.apply(h.machine.client_close(h.now, 1000, ""));
  h.feed(server_frame(0x8, close_payload(1000)));
  while (!h.outcome) {
    ASSERT_FALSE(h.write.empty()) << "the session ends only once our close is written";
    h.complete_write();
  }
  ASSERT_EQ(h.frames().size(), 3u);
  EXPECT_EQ(h.frames()[2].opcode, 0x8);
  EXPECT_TRUE(h.outcome->closed.clean);
}

TEST(SessionMachine, PausedClientStopsTheReads) {
  Harness h;
  h.open();
  h.apply(h.machine.client_paused(h.now, true));
  h.feed(server_frame(0x1, "one"));
  EXPECT_EQ(h.messages(), std::vector<std::string>{"one"});
  EXPECT_FALSE(h.read) << "no read while the client is not consuming";
  h.apply(h.machine.client_paused(h.now, false));
  EXPECT_TRUE(h.read);
  h.feed(server_frame(0x1, "two"));
  EXPECT_EQ(h.messages(), (std::vector<std::string>{"one", "two"}));
}

TEST(SessionMachine, LargeMessageIsAssembledWhole) {
  Harness h;
  h.open();
  const std::string big(1 << 20, 'z');
  h.feed(server_frame(0x2, big));
  ASSERT_EQ(h.messages().size(), 1u);
  EXPECT_EQ(h.messages()[0], big);
  EXPECT_EQ(h.machine.counters().bytes_received, big.size());
}

// --- memory budget ----------------------------------------------------------------------------

TEST(SessionMachine, MemoryBudgetRefusalClosesWith1013) {
  Settings s = base_settings();
  s.budget = std::make_shared<net::MemoryBudget>(100000);
  Harness h(s);
  h.open();
  h.feed(server_frame(0x2, std::string(200000, 'm')), false);
  EXPECT_FALSE(h.read) << "nothing more is read";
  h.drain_writes();
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.outcome->closed.code, kTryAgainLater);
  ASSERT_TRUE(h.outcome->closed.failure);
  EXPECT_EQ(h.outcome->closed.failure->cause, Cause::memory_budget);
  EXPECT_EQ(s.budget->used(), 0u) << "every charge is given back";
}

TEST(SessionMachine, DeliveredMessageCarriesItsCharge) {
  Settings s = base_settings();
  s.budget = std::make_shared<net::MemoryBudget>(1 << 20);
  Harness h(s);
  h.open();
  h.feed(server_frame(0x2, std::string(1000, 'c')));
  ASSERT_EQ(h.messages().size(), 1u);
  EXPECT_EQ(s.budget->used(), 1000u);
  h.delivered.clear();  // the client consumed it
  EXPECT_EQ(s.budget->used(), 0u);
}

// --- permessage-deflate ----------------------------------------------------------------------

Settings deflate_settings() {
  Settings s = base_settings();
  s.compression.enabled = true;
  s.compression.threshold_bytes = 1;
  return s;
}

// A compressed server frame: RSV1 set on the first (or only) frame.
std::string rsv1_frame(std::uint8_t opcode, const std::string& payload, bool fin = true) {
  std::string f = server_frame(opcode, payload, fin);
  f[0] = static_cast<char>(f[0] | 0x40);
  return f;
}

std::string server_deflate(PerMessageDeflate& server, const std::string& text) {
  std::string out;
  EXPECT_TRUE(server.deflate(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), &out));
  return out;
}

const std::string kHelloDeflated("\xf2\x48\xcd\xc9\xc9\x07\x00", 7);  // RFC 7692 §7.2.3.1

TEST(SessionMachine, DeflateIsOfferedAndTheNegotiatedElementReported) {
  Harness h(deflate_settings());
  h.open("", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n");
  EXPECT_NE(h.request.find("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"),
            std::string::npos) << h.request;
  ASSERT_TRUE(h.machine.open());
  ASSERT_EQ(h.delivered[0].open.extensions,
            std::vector<std::string>{"permessage-deflate; server_no_context_takeover"});
}

TEST(SessionMachine, NotOfferedWhenDisabled) {
  Harness h;
  h.open();
  EXPECT_EQ(h.request.find("Sec-WebSocket-Extensions"), std::string::npos);
}

TEST(SessionMachine, ABadDeflateAnswerFailsTheHandshake) {
  Harness h(deflate_settings());
  h.open("", "Sec-WebSocket-Extensions: permessage-deflate; x_bogus\r\n");
  ASSERT_TRUE(h.outcome);
  EXPECT_FALSE(h.outcome->opened);
  EXPECT_EQ(h.outcome->failure.cause, Cause::handshake_rejected);
  EXPECT_NE(h.outcome->failure.message.find("unknown parameter \"x_bogus\""), std::string::npos)
      << h.outcome->failure.message;
}

TEST(SessionMachine, CompressedMessagesAreInflatedWholeOrFragmented) {
  Harness h(deflate_settings());
  h.open("", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
  h.feed(rsv1_frame(0x1, kHelloDeflated));
  // §7.2.3.1's fragmented form: RSV1 on the first frame only.
  h.feed(rsv1_frame(0x1, kHelloDeflated.substr(0, 3), false) +
         server_frame(0x0, kHelloDeflated.substr(3)));
  h.feed(server_frame(0x1, "plain"));  // a message may go uncompressed
  EXPECT_EQ(h.messages(), (std::vector<std::string>{"Hello", "Hello", "plain"}));
  EXPECT_FALSE(h.outcome);
}

TEST(SessionMachine, ContextTakeoverAcrossServerMessages) {
  Harness h(deflate_settings());
  h.open("", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
  PerMessageDeflate server{DeflateAgreement{}};
  h.feed(rsv1_frame(0x1, server_deflate(server, "Hello")));
  h.feed(rsv1_frame(0x1, server_deflate(server, "Hello")));  // f2 00 11 00 00: refers back
  EXPECT_EQ(h.messages(), (std::vector<std::string>{"Hello", "Hello"}));
}

TEST(SessionMachine, SendsCompressedFromTheThresholdOn) {
  Settings s = deflate_settings();
  s.compression.threshold_bytes = 5;
  Harness h(s);
  h.open("", "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n");
  h.send_text("Hi");
  h.drain_writes();
  h.send_text("Hello");
  h.drain_writes();
  h.send_text("Hello");
  h.drain_writes();
  const auto f = h.frames();
  ASSERT_EQ(f.size(), 3u);
  EXPECT_FALSE(f[0].rsv1);
  EXPECT_EQ(f[0].payload, "Hi");
  EXPECT_TRUE(f[1].rsv1);
  EXPECT_EQ(f[1].payload, kHelloDeflated);
  EXPECT_TRUE(f[2].rsv1);
  EXPECT_EQ(f[2].payload, kHelloDeflated) << "client_no_context_takeover: a fresh window";
  EXPECT_EQ(h.machine.counters().bytes_sent, 12u) << "the client's bytes, not the wire's";
}

TEST(SessionMachine, FragmentedClientMessagesGoUncompressed) {
  Harness h(deflate_settings());
  h.open("", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
  OutgoingMessage m;
  m.kind = OutgoingMessage::Kind::text_fragment;
  m.data = "Hello";
  m.final = true;
  bool room = false;
  h.apply(h.machine.client_message(h.now, std::move(m), &room));
  h.drain_writes();
  ASSERT_EQ(h.frames().size(), 1u);
  EXPECT_FALSE(h.frames()[0].rsv1);
  EXPECT_EQ(h.frames()[0].payload, "Hello");
}

TEST(SessionMachine, Rsv1WithoutNegotiationIs1002) {
  for (bool offered : {false, true}) {
    Harness h(offered ? deflate_settings() : base_settings());
    h.open();  // the server does not accept the offer
    h.feed(rsv1_frame(0x1, kHelloDeflated));
    h.drain_writes();
    ASSERT_TRUE(h.outcome);
    EXPECT_EQ(h.outcome->closed.code, 1002) << offered;
    ASSERT_TRUE(h.outcome->closed.failure);
    EXPECT_EQ(h.outcome->closed.failure->cause, Cause::protocol_violation);
    EXPECT_TRUE(h.messages().empty());
  }
}

TEST(SessionMachine, DecompressionBombCloses1009) {
  Settings s = deflate_settings();
  s.max_message_bytes = 100000;
  s.budget = std::make_shared<net::MemoryBudget>(64u << 20);
  Harness h(s);
  h.open("", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
  PerMessageDeflate server{DeflateAgreement{}};
  const std::string bomb = server_deflate(server, std::string(16u << 20, 'A'));
  ASSERT_LT(bomb.size(), 65536u);
  h.feed(rsv1_frame(0x2, bomb), false);
  h.drain_writes();
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.frames().back().close_code(), 1009);
  EXPECT_EQ(h.outcome->closed.code, 1009);
  ASSERT_TRUE(h.outcome->closed.failure);
  EXPECT_EQ(h.outcome->closed.failure->cause, Cause::message_too_big);
  EXPECT_TRUE(h.messages().empty());
  EXPECT_EQ(s.budget->used(), 0u);
}

TEST(SessionMachine, InflatedBytesAreWhatTheBudgetIsCharged) {
  Settings s = deflate_settings();
  s.budget = std::make_shared<net::MemoryBudget>(1 << 20);
  Harness h(s);
  h.open("", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
  PerMessageDeflate server{DeflateAgreement{}};
  h.feed(rsv1_frame(0x2, server_deflate(server, std::string(50000, 'z'))));
  ASSERT_EQ(h.messages().size(), 1u);
  EXPECT_EQ(h.messages()[0], std::string(50000, 'z'));
  EXPECT_EQ(s.budget->used(), 50000u);
  EXPECT_EQ(h.machine.counters().bytes_received, 50000u);
}

TEST(SessionMachine, CorruptCompressedDataAndBadInflatedUtf8Close1007) {
  for (const std::string& payload : {std::string("\xff\xff\xff\xff", 4), std::string()}) {
    Harness h(deflate_settings());
    h.open("", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    PerMessageDeflate server{DeflateAgreement{}};
    const std::string wire = payload.empty() ? server_deflate(server, "\xC3\x28") : payload;
    h.feed(rsv1_frame(0x1, wire));
    h.drain_writes();
    ASSERT_TRUE(h.outcome);
    EXPECT_EQ(h.outcome->closed.code, 1007);
    ASSERT_TRUE(h.outcome->closed.failure);
    EXPECT_EQ(h.outcome->closed.failure->cause, Cause::protocol_violation);
  }
}

TEST(SessionMachine, StreamedFragmentsOfACompressedMessage) {
  Settings s = deflate_settings();
  s.stream_fragments = true;
  Harness h(s);
  h.open("", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
  PerMessageDeflate server{DeflateAgreement{}};
  std::string text;
  for (int i = 0; i < 40000; ++i) text += std::to_string(i) + " ";
  const std::string wire = server_deflate(server, text);
  const std::size_t half = wire.size() / 2;
  h.feed(rsv1_frame(0x1, wire.substr(0, half), false) + server_frame(0x0, wire.substr(half)));
  std::string joined;
  int finals = 0, chunks = 0;
  for (const Delivery& d : h.delivered) {
    if (d.kind != Delivery::Kind::message) continue;
    joined += d.data;
    ++chunks;
    finals += d.final ? 1 : 0;
  }
  EXPECT_EQ(joined, text);
  EXPECT_GE(chunks, 2);
  EXPECT_EQ(finals, 1);
}

// --- every step failing -----------------------------------------------------------------------

// A scripted exchange (open, send, receive, close) rerun with the transport failing at step i,
// for every i: each run ends with exactly one outcome, never an action after it, and the
// budget is empty.
TEST(SessionMachine, FailAtEveryStep) {
  for (int fail_at = 0; fail_at < 12; ++fail_at) {
    SCOPED_TRACE(fail_at);
    Settings s = base_settings();
    s.budget = std::make_shared<net::MemoryBudget>(1 << 20);
    {
      Harness h(s);
      int step = 0;
      auto fails = [&] { return step++ == fail_at; };
      h.apply(h.machine.start(h.now));
      if (fails()) h.apply(h.machine.transport_failed({Cause::connection_refused, "refused"}));
      if (!h.outcome) h.apply(h.machine.transport_connected(h.now));
      if (!h.outcome) h.apply(h.machine.transport_ready(h.now));
      if (!h.outcome && fails()) h.fail_write();
      if (!h.outcome) h.complete_write();
      if (!h.outcome && fails()) h.eof();
      if (!h.outcome) {
        const std::size_t k = h.request.find("Sec-WebSocket-Key: ") + 19;
        h.upgraded = true;
        h.feed("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
               "Upgrade\r\nSec-WebSocket-Accept: " + ws::accept_key(h.request.substr(k, 24)) +
               "\r\n\r\n");
      }
      if (!h.outcome) h.send_text("hello");
      if (!h.outcome && fails()) h.fail_write();
      if (!h.outcome) h.drain_writes();
      if (!h.outcome && fails()) h.eof();
      if (!h.outcome) h.feed(server_frame(0x1, "world"));
      if (!h.outcome && fails()) h.apply(h.machine.abort({Cause::shutdown, "gone"}));
      if (!h.outcome) h.apply(h.machine.client_close(h.now, 1000, ""));
      if (!h.outcome && fails()) h.fail_write();
      if (!h.outcome) h.drain_writes();
      if (!h.outcome && fails()) h.eof();
      if (!h.outcome) h.feed(server_frame(0x8, close_payload(1000)));
      if (!h.outcome) h.advance(1h);
      ASSERT_TRUE(h.outcome);
      EXPECT_TRUE(h.machine.finished());
      EXPECT_TRUE(h.machine.bytes_read(h.now, 0, false).empty());
      EXPECT_TRUE(h.machine.write_done(h.now, 0, false).empty());
      if (fail_at >= step) {
        EXPECT_TRUE(h.outcome->closed.clean) << "the run without a failure is clean";
      }
    }
    EXPECT_EQ(s.budget->used(), 0u);
  }
}

}  // namespace
}  // namespace wsgate::session
