// The decisions a SessionMachine reports to its SessionTrace (service/session/trace.h), in
// order, driven with scripted server bytes and the fake clock: timeouts with their configured
// values, backpressure both ways, close decisions, the upgrade; frames only at trace level, and
// nothing at all when the levels are off.
#include "service/session/trace.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "service/session/session_machine.h"
#include "service/ws/handshake.h"

namespace wsgate::session {
namespace {

using namespace std::chrono_literals;
using Events = std::vector<std::string>;

// Records each call as one line of text.
class Recorder final : public SessionTrace {
 public:
  bool debug_on = true;
  bool trace_on = false;
  int level_checks = 0;
  Events events;

  bool debug() const override { ++const_cast<Recorder*>(this)->level_checks; return debug_on; }
  bool trace() const override { ++const_cast<Recorder*>(this)->level_checks; return trace_on; }
  void upgrade_sent(std::string_view target, std::size_t bytes) override {
    add("upgrade_sent " + std::string(target) + (bytes > 0 ? " bytes" : " empty"));
  }
  void upgrade_response(int status) override { add("upgrade_response " + std::to_string(status)); }
  void negotiated(std::string_view subprotocol, const std::vector<std::string>& e) override {
    add("negotiated '" + std::string(subprotocol) + "' " + std::to_string(e.size()));
  }
  void timeout(Timeout which, std::chrono::milliseconds configured) override {
    add(std::string("timeout ") + to_string(which) + " " + std::to_string(configured.count()));
  }
  void reads_paused(bool paused) override { add(paused ? "reads_paused" : "reads_resumed"); }
  void queue_full(std::uint64_t queued, std::uint64_t limit) override {
    add("queue_full " + std::to_string(queued) + "/" + std::to_string(limit));
  }
  void queue_room(std::uint64_t queued, std::size_t grants) override {
    add("queue_room " + std::to_string(queued) + " +" + std::to_string(grants));
  }
  void close_sent(Initiator who, std::uint16_t code) override {
    add("close_sent " + name(who) + " " + std::to_string(code));
  }
  void closed(const CloseInfo& info) override {
    add("closed " + name(info.initiator) + " " + std::to_string(info.code) +
        (info.clean ? " clean" : " unclean") +
        (info.failure ? std::string(" ") + to_string(info.failure->cause) : std::string()));
  }
  void frame(Direction d, ws::Opcode op, std::uint64_t length, bool fin) override {
    add(std::string("frame ") + (d == Direction::in ? "in " : "out ") +
        std::to_string(static_cast<int>(op)) + " " + std::to_string(length) + (fin ? " fin" : ""));
  }
  void io(Direction d, std::size_t bytes) override {
    add(std::string(d == Direction::in ? "read " : "write ") + std::to_string(bytes));
  }

  // The events that start with `prefix`, in order.
  Events only(const std::string& prefix) const {
    Events out;
    for (const std::string& e : events) {
      if (e.rfind(prefix, 0) == 0) out.push_back(e);
    }
    return out;
  }

 private:
  static std::string name(Initiator i) {
    return i == Initiator::client ? "client" : i == Initiator::server ? "server" : "gateway";
  }
  void add(std::string e) { events.push_back(std::move(e)); }
};

std::string server_frame(std::uint8_t opcode, const std::string& payload) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  f.push_back(static_cast<char>(payload.size()));  // tests use payloads < 126 bytes
  return f + payload;
}

// Plays the transport (as in session_machine_test.cc, reduced to what these tests need).
class Harness {
 public:
  explicit Harness(Tuning tuning = {})
      : recorder(std::make_shared<Recorder>()), machine(settings(tuning, recorder)) {}

  static Settings settings(Tuning tuning, std::shared_ptr<Recorder> r) {
    Settings s;
    static_cast<Tuning&>(s) = tuning;
    s.url.host = "example.test";
    s.url.port = 80;
    s.url.host_header = "example.test";
    s.url.target = "/chat?token=SECRET";
    s.trace = std::move(r);
    return s;
  }

  std::shared_ptr<Recorder> recorder;
  SessionMachine machine;
  TimePoint now = TimePoint{} + 1000h;
  std::string request;
  std::vector<ConstBuffer> write;
  std::optional<MutableBuffer> read;
  std::optional<TimePoint> timer;
  std::size_t room = 0;
  std::optional<Outcome> outcome;
  bool upgraded = false;

  void apply(Actions a) {
    if (!a.write.empty()) write = std::move(a.write);
    if (a.read) read = a.read;
    if (a.timer) timer = a.timer;
    room += a.room;
    if (a.finish) {
      outcome = std::move(*a.finish);
      timer.reset();
    }
  }
  void complete_write() {
    ASSERT_FALSE(write.empty());
    std::string bytes;
    for (const ConstBuffer& b : write) bytes.append(static_cast<const char*>(b.data), b.size);
    write.clear();
    if (!upgraded) request += bytes;
    apply(machine.write_done(now, bytes.size(), true));
  }
  void drain_writes() {
    for (int i = 0; i < 100 && !write.empty() && !outcome; ++i) complete_write();
  }
  void feed(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size() && read && !outcome) {
      const std::size_t n = std::min(read->size, bytes.size() - off);
      std::memcpy(read->data, bytes.data() + off, n);
      off += n;
      read.reset();
      apply(machine.bytes_read(now, n, true));
    }
  }
  void advance(std::chrono::milliseconds d) {
    const TimePoint until = now + d;
    while (timer && *timer <= until && !outcome) {
      now = *timer;
      timer.reset();
      apply(machine.timer_fired(now));
    }
    now = until;
  }
  void open() {
    apply(machine.start(now));
    apply(machine.transport_connected(now));
    apply(machine.transport_ready(now));
    complete_write();
    const std::size_t k = request.find("Sec-WebSocket-Key: ");
    ASSERT_NE(k, std::string::npos);
    upgraded = true;
    feed("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " + ws::accept_key(request.substr(k + 19, 24)) + "\r\n\r\n");
    ASSERT_TRUE(machine.open());
  }
  void send_text(const std::string& text) {
    OutgoingMessage m;
    m.kind = OutgoingMessage::Kind::text;
    m.data = text;
    bool r = false;
    apply(machine.client_message(now, std::move(m), &r));
  }
};

TEST(SessionTrace, UpgradeSteps) {
  Harness h;
  h.open();
  // The target as the machine has it (the log redacts it); the status; what was selected.
  EXPECT_EQ(h.recorder->events,
            (Events{"upgrade_sent /chat?token=SECRET bytes", "upgrade_response 101",
                    "negotiated '' 0"}));
}

TEST(SessionTrace, ConnectTimeoutWithItsSetting) {
  Tuning t;
  t.connect_timeout = 250ms;
  Harness h(t);
  h.apply(h.machine.start(h.now));
  h.advance(250ms);
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.recorder->events, (Events{"timeout connect 250"}));
}

TEST(SessionTrace, HandshakeTimeoutWithItsSetting) {
  Tuning t;
  t.handshake_timeout = 300ms;
  Harness h(t);
  h.apply(h.machine.start(h.now));
  h.apply(h.machine.transport_connected(h.now));
  h.apply(h.machine.transport_ready(h.now));
  h.complete_write();
  h.advance(300ms);
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.recorder->only("timeout"), (Events{"timeout handshake 300"}));
}

TEST(SessionTrace, UnansweredCloseTimesOutThenCloses) {
  Tuning t;
  t.close_timeout = 500ms;
  t.keepalive_interval = 0ms;
  Harness h(t);
  h.open();
  h.recorder->events.clear();
  h.apply(h.machine.client_close(h.now, 1000, "bye"));
  h.drain_writes();
  h.advance(500ms);
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.recorder->events, (Events{"close_sent client 1000", "timeout close 500",
                                        "closed client 1000 unclean close_timeout"}));
}

TEST(SessionTrace, IdleTimeoutClosesAsTheGateway) {
  Tuning t;
  t.idle_timeout = 1000ms;
  t.keepalive_interval = 0ms;
  Harness h(t);
  h.open();
  h.recorder->events.clear();
  h.advance(1000ms);
  h.drain_writes();
  h.feed(server_frame(0x8, std::string("\x03\xe9", 2)));  // the server answers 1001
  h.drain_writes();
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.recorder->events, (Events{"timeout idle 1000", "close_sent gateway 1001",
                                        "closed gateway 1001 clean"}));
}

TEST(SessionTrace, PingTimeoutAborts) {
  Tuning t;
  t.ping_timeout = 200ms;
  t.keepalive_interval = 0ms;
  Harness h(t);
  h.open();
  h.recorder->events.clear();
  h.advance(200ms);  // idle: a ping goes out
  h.drain_writes();
  h.advance(200ms);  // no pong
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.recorder->events,
            (Events{"timeout ping 200", "closed gateway 1006 unclean ping_timeout"}));
}

TEST(SessionTrace, ServerCloseIsEchoedThenClean) {
  Tuning t;
  t.keepalive_interval = 0ms;
  Harness h(t);
  h.open();
  h.recorder->events.clear();
  h.feed(server_frame(0x8, std::string("\x0f\xa0", 2)));  // 4000
  h.drain_writes();
  ASSERT_TRUE(h.outcome);
  EXPECT_EQ(h.recorder->events, (Events{"close_sent server 4000", "closed server 4000 clean"}));
}

TEST(SessionTrace, ReadsPausedAndResumedOnce) {
  Harness h;
  h.open();
  h.recorder->events.clear();
  h.apply(h.machine.client_paused(h.now, true));
  h.apply(h.machine.client_paused(h.now, true));  // no change: no second line
  h.apply(h.machine.client_paused(h.now, false));
  EXPECT_EQ(h.recorder->events, (Events{"reads_paused", "reads_resumed"}));
}

TEST(SessionTrace, UpstreamQueueFullThenRoom) {
  Tuning t;
  t.max_queued_bytes = 9000;
  t.keepalive_interval = 0ms;
  Harness h(t);
  h.open();
  h.recorder->events.clear();
  // 10000 bytes >= 9000: the client must wait; the frame is large enough to be written from the
  // engine's buffer, so the room comes when that write completes.
  h.send_text(std::string(10000, 'x'));
  EXPECT_EQ(h.room, 0u);
  EXPECT_EQ(h.recorder->events, (Events{"queue_full 10000/9000"}));
  h.drain_writes();
  EXPECT_EQ(h.room, 1u);
  EXPECT_EQ(h.recorder->events, (Events{"queue_full 10000/9000", "queue_room 0 +1"}));
}

TEST(SessionTrace, FramesAndIoOnlyAtTraceLevel) {
  Tuning t;
  t.keepalive_interval = 0ms;
  Harness h(t);
  h.open();
  h.send_text("hello");
  h.drain_writes();
  h.feed(server_frame(0x1, "hi"));
  EXPECT_TRUE(h.recorder->only("frame").empty());
  EXPECT_TRUE(h.recorder->only("read").empty());

  h.recorder->trace_on = true;
  h.send_text("hello");
  h.drain_writes();
  h.feed(server_frame(0x2, "abc"));
  // opcode 1 = text, 2 = binary; the length is the payload's, never its bytes.
  EXPECT_EQ(h.recorder->only("frame"), (Events{"frame out 1 5 fin", "frame in 2 3 fin"}));
  EXPECT_EQ(h.recorder->only("write"), (Events{"write 11"}));  // 2 header + 4 mask + 5
  EXPECT_EQ(h.recorder->only("read"), (Events{"read 5"}));
}

TEST(SessionTrace, NothingIsReportedWhenTheLevelsAreOff) {
  Tuning t;
  t.idle_timeout = 100ms;
  t.keepalive_interval = 0ms;
  Harness h(t);
  h.recorder->debug_on = false;
  h.open();
  h.send_text("hello");
  h.drain_writes();
  h.apply(h.machine.client_paused(h.now, true));
  h.advance(100ms);
  EXPECT_TRUE(h.recorder->events.empty());
  EXPECT_GT(h.recorder->level_checks, 0);  // asked, and said no
}

TEST(SessionTrace, NoTraceIsFine) {
  Settings s;
  s.url.host = "example.test";
  s.url.port = 80;
  s.url.host_header = "example.test";
  s.url.target = "/";
  s.connect_timeout = 10ms;
  SessionMachine m(std::move(s));  // trace == nullptr
  TimePoint now{};
  (void)m.start(now);
  Actions a = m.timer_fired(now + 10ms);
  ASSERT_TRUE(a.finish);
  EXPECT_EQ(a.finish->failure.cause, Cause::connect_timeout);
}

}  // namespace
}  // namespace wsgate::session
