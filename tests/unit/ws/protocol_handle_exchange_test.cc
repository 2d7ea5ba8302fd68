// A client and a server handle exchanging in memory after a real handshake: every data buffer type,
// sizes across every length encoding, fragmented and not, app buffers and zero-copy, ping/pong,
// both close orders, abort mid-message, DISABLE_MASKING, ALLOCATED_BUFFER, capacity-1 buffers,
// and the RFC 6455 §5.7 example frames produced and parsed.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/unit/ws/ws_test_util.h"

namespace wsgate::ws {
namespace {

using namespace test;

struct ExchangeCase {
  bool client_sends;  // else the server sends
  bool text;
  std::size_t size;
  bool fragmented;
  std::uint32_t receive_buffer;  // 0: zero-copy
  std::uint32_t capacity;
};

std::string case_name(const ::testing::TestParamInfo<ExchangeCase>& info) {
  const ExchangeCase& c = info.param;
  return std::string(c.client_sends ? "c2s_" : "s2c_") + (c.text ? "text_" : "binary_") + std::to_string(c.size) +
         (c.fragmented ? "_frag" : "_whole") +
         (c.receive_buffer ? "_buf" + std::to_string(c.receive_buffer) : std::string("_zerocopy")) + "_cap" +
         std::to_string(c.capacity);
}

std::vector<ExchangeCase> exchange_cases() {
  std::vector<ExchangeCase> out;
  const std::size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 1u << 20};
  for (bool client_sends : {true, false}) {
    for (bool text : {true, false}) {
      for (std::size_t size : sizes) {
        for (bool fragmented : {false, true}) {
          for (std::uint32_t rb : {0u, 1u, 7u, 4096u, 65536u}) {
            if (rb == 1 && size > 65536) continue;  // a million 1-byte chunks adds nothing
            out.push_back({client_sends, text, size, fragmented, rb, 2});
          }
        }
      }
    }
  }
  // Capacity-1 GetAction buffers, both directions.
  for (bool client_sends : {true, false}) {
    for (std::size_t size : {std::size_t{0}, std::size_t{126}, std::size_t{70000}}) {
      out.push_back({client_sends, false, size, false, 0, 1});
      out.push_back({client_sends, true, size, true, 100, 1});
    }
  }
  return out;
}

class Exchange : public ::testing::TestWithParam<ExchangeCase> {};

TEST_P(Exchange, MessageArrivesIntact) {
  const ExchangeCase& c = GetParam();
  Pair p;
  Endpoint& tx = c.client_sends ? p.client : p.server;
  Endpoint& rx = c.client_sends ? p.server : p.client;
  tx.capacity = rx.capacity = c.capacity;
  rx.receive_buffer_len = c.receive_buffer;
  ASSERT_EQ(rx.post_receive(), Result::ok);
  const Bytes payload = c.text ? utf8_payload(c.size) : binary_payload(c.size);
  if (c.fragmented) {
    // Three pieces cut at arbitrary byte positions (through multi-byte characters).
    std::size_t a = c.size / 3, b = 2 * c.size / 3;
    ASSERT_EQ(tx.send_data(c.text ? BufferType::utf8_fragment : BufferType::binary_fragment,
                           Bytes(payload.begin(), payload.begin() + static_cast<std::ptrdiff_t>(a))),
              Result::ok);
    ASSERT_EQ(tx.send_data(c.text ? BufferType::utf8_fragment : BufferType::binary_fragment,
                           Bytes(payload.begin() + static_cast<std::ptrdiff_t>(a),
                                 payload.begin() + static_cast<std::ptrdiff_t>(b))),
              Result::ok);
    ASSERT_EQ(tx.send_data(c.text ? BufferType::utf8_message : BufferType::binary_message,
                           Bytes(payload.begin() + static_cast<std::ptrdiff_t>(b), payload.end())),
              Result::ok);
  } else {
    ASSERT_EQ(tx.send_data(c.text ? BufferType::utf8_message : BufferType::binary_message, payload), Result::ok);
  }
  p.pump();
  EXPECT_TRUE(tx.failures.empty()) << tx.failures.front();
  EXPECT_TRUE(rx.failures.empty()) << rx.failures.front();
  EXPECT_TRUE(tx.errors.empty());
  EXPECT_TRUE(rx.errors.empty()) << symbol(rx.errors.front());
  EXPECT_EQ(tx.send_completions, tx.sends_accepted);
  ASSERT_EQ(rx.messages.size(), 1u);
  EXPECT_EQ(rx.messages[0].type, c.text ? BufferType::utf8_message : BufferType::binary_message);
  EXPECT_EQ(rx.messages[0].data.size(), payload.size());
  EXPECT_TRUE(rx.messages[0].data == payload);
  EXPECT_FALSE(rx.in_message);
  if (c.receive_buffer == 1 && c.size > 0) {
    EXPECT_EQ(rx.messages[0].chunks, c.size);  // one byte per chunk
  }
  // Frames on the wire: masked exactly when the client sends; every frame parses.
  auto frames = parse_frames(tx.wire_out);
  ASSERT_FALSE(frames.empty());
  for (const auto& f : frames) EXPECT_EQ(f.header.masked, c.client_sends);
  EXPECT_EQ(frames.back().header.fin, true);
  EXPECT_EQ(p.client.h->state(), State::open);
  EXPECT_EQ(p.server.h->state(), State::open);
}

INSTANTIATE_TEST_SUITE_P(Sizes, Exchange, ::testing::ValuesIn(exchange_cases()), case_name);

TEST(ExchangeMany, ManyMessagesBothWaysInterleaved) {
  Pair p;
  p.client.split_queues = true;
  p.client.receive_buffer_len = 50;
  ASSERT_EQ(p.client.post_receive(), Result::ok);
  ASSERT_EQ(p.server.post_receive(), Result::ok);
  std::vector<Bytes> c2s, s2c;
  for (int i = 0; i < 40; ++i) {
    c2s.push_back(utf8_payload(static_cast<std::size_t>(i * 37)));
    s2c.push_back(binary_payload(static_cast<std::size_t>(i * 53), static_cast<std::uint8_t>(i)));
    ASSERT_EQ(p.client.send_data(BufferType::utf8_message, c2s.back()), Result::ok);
    ASSERT_EQ(p.server.send_data(BufferType::binary_message, s2c.back()), Result::ok);
    if (i % 5 == 0) p.pump();
  }
  p.pump();
  ASSERT_EQ(p.server.messages.size(), c2s.size());
  ASSERT_EQ(p.client.messages.size(), s2c.size());
  for (std::size_t i = 0; i < c2s.size(); ++i) {
    EXPECT_EQ(p.server.messages[i].data, c2s[i]);
    EXPECT_EQ(p.server.messages[i].type, BufferType::utf8_message);
    EXPECT_EQ(p.client.messages[i].data, s2c[i]);
    EXPECT_EQ(p.client.messages[i].type, BufferType::binary_message);
  }
}

// ---- Ping / pong ---------------------------------------------------------------------------------

TEST(PingPong, PingIsAnsweredAutomatically) {
  for (bool client_pings : {true, false}) {
    Pair p;
    Endpoint& pinger = client_pings ? p.client : p.server;
    Endpoint& other = client_pings ? p.server : p.client;
    ASSERT_EQ(pinger.post_receive(), Result::ok);
    ASSERT_EQ(other.post_receive(), Result::ok);
    ASSERT_EQ(pinger.send_control(BufferType::ping_pong), Result::ok);
    p.pump();
    ASSERT_EQ(pinger.write_types.size(), 1u);
    EXPECT_EQ(pinger.write_types[0], BufferType::ping_pong);
    ASSERT_EQ(other.write_types.size(), 1u) << "one automatic pong";
    EXPECT_EQ(other.write_types[0], BufferType::ping_pong);
    auto pong = parse_frames(other.wire_out);
    ASSERT_EQ(pong.size(), 1u);
    EXPECT_EQ(pong[0].header.opcode, Opcode::pong);
    EXPECT_TRUE(pong[0].payload.empty());
    EXPECT_EQ(pinger.pongs.size(), 1u);  // PING_PONG indicated on the pinger
    EXPECT_TRUE(pinger.pongs.empty() || pinger.pongs[0].empty());
    EXPECT_EQ(other.indications, 0u);  // the ping itself is not indicated
    EXPECT_EQ(pinger.send_completions, pinger.sends_accepted);
  }
}

TEST(PingPong, UnsolicitedPongIsIndicatedAndNotAnswered) {
  Pair p;
  ASSERT_EQ(p.client.post_receive(), Result::ok);
  ASSERT_EQ(p.server.post_receive(), Result::ok);
  ASSERT_EQ(p.client.send_control(BufferType::unsolicited_pong), Result::ok);
  p.pump();
  ASSERT_EQ(p.client.write_types.size(), 1u);
  EXPECT_EQ(p.client.write_types[0], BufferType::unsolicited_pong);
  auto f = parse_frames(p.client.wire_out);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].header.opcode, Opcode::pong);
  ASSERT_EQ(p.server.pongs.size(), 1u);
  EXPECT_TRUE(p.server.pongs[0].empty());
  EXPECT_TRUE(p.server.writes.empty());
  EXPECT_TRUE(p.client.pongs.empty());
}

TEST(PingPong, Rfc6455PingHelloGetsPongHello) {
  // Client receives the RFC's unmasked ping "Hello" and answers with a masked pong "Hello".
  Endpoint c(open_handle(Role::client));
  Endpoint peer(make_handle(Role::server));
  Link link(c, peer);
  ASSERT_EQ(c.post_receive(), Result::ok);
  Bytes ping = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  c.inbound.insert(c.inbound.end(), ping.begin(), ping.end());
  link.service(c, peer);
  ASSERT_EQ(c.writes.size(), 1u);
  EXPECT_EQ(c.write_types[0], BufferType::ping_pong);
  auto f = parse_whole_frame(c.writes[0]);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(c.writes[0][0], 0x8A);
  EXPECT_EQ(c.writes[0][1], 0x85);
  EXPECT_TRUE(f->header.masked);
  EXPECT_EQ(string_of(f->payload), "Hello");
  EXPECT_EQ(c.indications, 0u);
  // Server side: a masked ping "Hello" gets the RFC's unmasked pong "Hello".
  Endpoint s(open_handle(Role::server));
  Endpoint peer2(make_handle(Role::client));
  Link link2(s, peer2);
  ASSERT_EQ(s.post_receive(), Result::ok);
  Bytes masked_ping = frame(true, 9, bytes_of("Hello"), true);
  s.inbound.insert(s.inbound.end(), masked_ping.begin(), masked_ping.end());
  link2.service(s, peer2);
  ASSERT_EQ(s.writes.size(), 1u);
  EXPECT_EQ(s.writes[0], (Bytes{0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
}

// A tiny driver for single-handle scripts.
struct Act {
  Result result;
  Action action = Action::no_action;
  BufferType type = BufferType::binary_message;
  std::uint32_t count = 0;
  Buffer bufs[2]{};
  void* app = nullptr;
  void* ctx = nullptr;
  Bytes bytes() const {
    Bytes out;
    for (std::uint32_t i = 0; i < count; ++i) out.insert(out.end(), bufs[i].data.buffer, bufs[i].data.buffer + bufs[i].data.length);
    return out;
  }
  std::uint32_t total() const { return static_cast<std::uint32_t>(bytes().size()); }
};
Act act(ProtocolHandle& h, ActionQueue q, std::uint32_t capacity = 2) {
  Act a{};
  a.count = capacity;
  a.result = h.get_action(q, a.bufs, &a.count, &a.action, &a.type, &a.app, &a.ctx);
  return a;
}

// README: "The automatic pong goes out before any new send frame: while one is pending, the SEND
// queue returns NO_ACTION (not in the middle of a frame) until the RECEIVE (or ALL) queue hands
// the pong out."
TEST(PingPong, SendQueueReturnsNoActionWhileAPongIsPending) {
  auto s = open_handle(Role::server);
  Bytes d1 = bytes_of("one"), d2 = bytes_of("two");
  Buffer b1{}, b2{};
  b1.data = {d1.data(), 3};
  b2.data = {d2.data(), 3};
  ASSERT_EQ(s->send(BufferType::binary_message, &b1, reinterpret_cast<void*>(0xD1)), Result::ok);
  ASSERT_EQ(s->send(BufferType::binary_message, &b2, reinterpret_cast<void*>(0xD2)), Result::ok);
  Act first = act(*s, ActionQueue::send);  // D1 on the wire
  ASSERT_EQ(first.action, Action::send_to_network);
  ASSERT_EQ(s->receive(nullptr, nullptr), Result::ok);
  Act rd = act(*s, ActionQueue::receive);
  ASSERT_EQ(rd.action, Action::receive_from_network);
  Bytes wire = concat({frame(true, 9, bytes_of("hi"), true), frame(true, 2, bytes_of("x"), true)});
  std::copy(wire.begin(), wire.end(), rd.bufs[0].data.buffer);
  s->complete_action(rd.ctx, static_cast<std::uint32_t>(wire.size()));
  // The ping is parsed; its pong cannot go while D1 is on the wire. The data frame is indicated.
  Act ind = act(*s, ActionQueue::receive);
  ASSERT_EQ(ind.result, Result::ok);
  ASSERT_NE(ind.action, Action::send_to_network) << "frames would interleave";
  ASSERT_EQ(ind.action, Action::indicate_receive_complete);
  EXPECT_EQ(string_of(ind.bytes()), "x");
  s->complete_action(ind.ctx, 0);
  s->complete_action(first.ctx, first.total());
  Act done = act(*s, ActionQueue::send);
  ASSERT_EQ(done.action, Action::indicate_send_complete);
  EXPECT_EQ(done.app, reinterpret_cast<void*>(0xD1));
  s->complete_action(done.ctx, 0);
  Act blocked = act(*s, ActionQueue::send);
  ASSERT_EQ(blocked.result, Result::ok);
  EXPECT_EQ(blocked.action, Action::no_action) << "the pong must go before D2";
  Act pong = act(*s, ActionQueue::receive, 1);  // .NET offers one buffer on the receive queue
  ASSERT_EQ(pong.action, Action::send_to_network);
  EXPECT_EQ(pong.type, BufferType::ping_pong);
  ASSERT_EQ(pong.count, 1u);
  EXPECT_EQ(pong.bytes(), (Bytes{0x8A, 0x02, 'h', 'i'}));
  EXPECT_NE(pong.app, reinterpret_cast<void*>(0xD2));
  s->complete_action(pong.ctx, pong.total());
  Act next = act(*s, ActionQueue::send);
  ASSERT_EQ(next.action, Action::send_to_network);
  EXPECT_EQ(next.type, BufferType::binary_message);
  EXPECT_EQ(next.app, reinterpret_cast<void*>(0xD2));
  EXPECT_EQ(next.bytes(), concat({Bytes{0x82, 0x03}, d2}));
}

// The same rule when the app's receive thread already holds a new read (as .NET's does): the pong
// still goes before the next data frame, it must not wait for the peer's next bytes.
TEST(PingPong, PongGoesBeforeTheNextFrameEvenWithAReadOutstanding) {
  auto s = open_handle(Role::server);
  Bytes d1 = bytes_of("one"), d2 = bytes_of("two");
  Buffer b1{}, b2{};
  b1.data = {d1.data(), 3};
  b2.data = {d2.data(), 3};
  ASSERT_EQ(s->send(BufferType::binary_message, &b1, nullptr), Result::ok);
  ASSERT_EQ(s->send(BufferType::binary_message, &b2, nullptr), Result::ok);
  Act first = act(*s, ActionQueue::send);
  ASSERT_EQ(first.action, Action::send_to_network);
  ASSERT_EQ(s->receive(nullptr, nullptr), Result::ok);
  Act rd = act(*s, ActionQueue::receive);
  ASSERT_EQ(rd.action, Action::receive_from_network);
  Bytes ping = frame(true, 9, bytes_of("hi"), true);
  std::copy(ping.begin(), ping.end(), rd.bufs[0].data.buffer);
  s->complete_action(rd.ctx, static_cast<std::uint32_t>(ping.size()));
  Act r2 = act(*s, ActionQueue::receive);  // the receive thread asks again (the app blocks on it)
  ASSERT_EQ(r2.result, Result::ok);
  ASSERT_NE(r2.action, Action::send_to_network) << "frames would interleave";
  s->complete_action(first.ctx, first.total());
  Act done = act(*s, ActionQueue::send);
  ASSERT_EQ(done.action, Action::indicate_send_complete);
  s->complete_action(done.ctx, 0);
  // The send thread now: either the pong (if the engine hands it to whichever queue is free) or
  // NO_ACTION while the pong waits for the RECEIVE queue - never D2 ahead of the pong.
  Act next = act(*s, ActionQueue::send);
  ASSERT_EQ(next.result, Result::ok);
  EXPECT_FALSE(next.action == Action::send_to_network && next.type == BufferType::binary_message)
      << "D2 went out before the pending pong (receive action held: " << r2.action << ")";
  if (r2.action == Action::no_action) {
    Act pong = act(*s, ActionQueue::receive);
    EXPECT_EQ(pong.action, Action::send_to_network);
    EXPECT_EQ(pong.type, BufferType::ping_pong);
  }
}

TEST(PingPong, PongAfterAnOutstandingDataFrameCompletes) {
  // Pong blocked by our own frame, then the frame completes and the RECEIVE queue hands it out.
  auto s = open_handle(Role::server);
  Bytes d1 = bytes_of("one");
  Buffer b1{};
  b1.data = {d1.data(), 3};
  ASSERT_EQ(s->send(BufferType::binary_message, &b1, nullptr), Result::ok);
  Act first = act(*s, ActionQueue::send);
  ASSERT_EQ(first.action, Action::send_to_network);
  ASSERT_EQ(s->receive(nullptr, nullptr), Result::ok);
  Act rd = act(*s, ActionQueue::receive);
  ASSERT_EQ(rd.action, Action::receive_from_network);
  Bytes wire = concat({frame(true, 9, bytes_of("p"), true), frame(true, 2, bytes_of("x"), true)});
  std::copy(wire.begin(), wire.end(), rd.bufs[0].data.buffer);
  s->complete_action(rd.ctx, static_cast<std::uint32_t>(wire.size()));
  Act ind = act(*s, ActionQueue::receive);
  ASSERT_EQ(ind.action, Action::indicate_receive_complete);
  s->complete_action(ind.ctx, 0);
  EXPECT_EQ(act(*s, ActionQueue::receive).action, Action::no_action) << "pong waits for our frame";
  s->complete_action(first.ctx, first.total());
  Act pong = act(*s, ActionQueue::receive);
  ASSERT_EQ(pong.action, Action::send_to_network);
  EXPECT_EQ(pong.type, BufferType::ping_pong);
  EXPECT_EQ(pong.bytes(), (Bytes{0x8A, 0x01, 'p'}));
}

TEST(PingPong, LatestPingIsAnswered) {
  Endpoint s(open_handle(Role::server));
  Endpoint peer(make_handle(Role::client));
  Link link(s, peer);
  ASSERT_EQ(s.post_receive(), Result::ok);
  Bytes pings = concat({frame(true, 9, bytes_of("a"), true), frame(true, 9, bytes_of("b"), true)});
  s.inbound.insert(s.inbound.end(), pings.begin(), pings.end());
  link.service(s, peer);
  auto frames = parse_frames(s.wire_out);
  ASSERT_GE(frames.size(), 1u);
  ASSERT_LE(frames.size(), 2u);
  EXPECT_EQ(string_of(frames.back().payload), "b");
  for (const auto& f : frames) EXPECT_EQ(f.header.opcode, Opcode::pong);
}

// ---- Close ----------------------------------------------------------------------------------------

void close_exchange(bool client_first, std::uint16_t status, const std::string& reason) {
  Pair p;
  Endpoint& first = client_first ? p.client : p.server;
  Endpoint& second = client_first ? p.server : p.client;
  ASSERT_EQ(first.post_receive(), Result::ok);
  ASSERT_EQ(second.post_receive(), Result::ok);
  ASSERT_EQ(first.send_close(status, reason), Result::ok);
  EXPECT_EQ(first.h->state(), State::close_sent);
  p.pump();
  ASSERT_EQ(second.closes.size(), 1u);
  EXPECT_EQ(second.closes[0].status, status == 0 ? 1005 : status);
  EXPECT_EQ(second.closes[0].reason, reason);
  EXPECT_EQ(second.h->state(), State::close_received);
  EXPECT_EQ(second.h->receive(nullptr, nullptr), Result::invalid_protocol_operation);
  // The second side may still send data before its close.
  ASSERT_EQ(second.send_data(BufferType::utf8_message, bytes_of("last words")), Result::ok);
  ASSERT_EQ(second.send_close(1001, "going"), Result::ok);
  EXPECT_EQ(second.h->state(), State::closed);
  p.pump();
  ASSERT_EQ(first.messages.size(), 1u);
  EXPECT_EQ(string_of(first.messages[0].data), "last words");
  ASSERT_EQ(first.closes.size(), 1u);
  EXPECT_EQ(first.closes[0].status, 1001);
  EXPECT_EQ(first.closes[0].reason, "going");
  EXPECT_EQ(first.h->state(), State::closed);
  EXPECT_EQ(first.send_completions, first.sends_accepted);
  EXPECT_EQ(second.send_completions, second.sends_accepted);
  EXPECT_TRUE(first.errors.empty());
  EXPECT_TRUE(second.errors.empty());
  // Close frames on the wire: the first's status and reason.
  auto frames = parse_frames(first.wire_out);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header.opcode, Opcode::close);
  EXPECT_EQ(frames[0].header.masked, client_first);
  EXPECT_EQ(frames[0].payload, status == 0 ? Bytes{} : close_payload(status, reason));
}

TEST(Close, ClientFirst) { close_exchange(true, 1000, "bye"); }
TEST(Close, ServerFirst) { close_exchange(false, 4000, "server shutting down"); }
TEST(Close, MaximumReason) { close_exchange(true, 1000, std::string(123, 'z')); }
TEST(Close, EmptyCloseIsReportedAs1005) {
  close_exchange(true, 0, "");
  close_exchange(false, 0, "");
}

TEST(Close, DataAfterCloseIsRefused) {
  Pair p;
  ASSERT_EQ(p.client.send_close(1000, ""), Result::ok);
  EXPECT_EQ(p.client.send_data(BufferType::binary_message, bytes_of("x")), Result::invalid_protocol_operation);
  EXPECT_EQ(p.client.send_close(1000, ""), Result::invalid_protocol_operation);
}

// ---- Abort mid-message ----------------------------------------------------------------------------

TEST(AbortExchange, MidMessage) {
  Pair p;
  ASSERT_EQ(p.server.post_receive(), Result::ok);
  ASSERT_EQ(p.client.post_receive(), Result::ok);
  const Bytes big = binary_payload(100000);
  ASSERT_EQ(p.client.send_data(BufferType::binary_fragment, big), Result::ok);
  ASSERT_EQ(p.client.send_data(BufferType::binary_fragment, big), Result::ok);
  ASSERT_EQ(p.client.send_data(BufferType::binary_message, big), Result::ok);
  // Let a few pieces of the first frame out, then abort the client in the middle of it.
  for (int i = 0; i < 5; ++i) {
    Buffer b[2];
    std::uint32_t n = 2;
    Action a;
    BufferType t;
    void* act = nullptr;
    ASSERT_EQ(p.client.h->get_action(ActionQueue::send, b, &n, &a, &t, nullptr, &act), Result::ok);
    ASSERT_EQ(a, Action::send_to_network);
    p.server.inbound.insert(p.server.inbound.end(), b[0].data.buffer, b[0].data.buffer + b[0].data.length);
    p.client.h->complete_action(act, b[0].data.length);
  }
  p.client.h->abort();
  EXPECT_EQ(p.client.h->state(), State::aborted);
  EXPECT_EQ(p.client.send_data(BufferType::binary_message, big), Result::invalid_protocol_operation);
  EXPECT_EQ(p.client.post_receive(), Result::invalid_protocol_operation);
  p.client.auto_receive = false;
  p.pump();
  // All three Sends complete; the pending Receive completes with CLOSE 1006.
  EXPECT_EQ(p.client.send_completions, p.client.sends_accepted);
  ASSERT_EQ(p.client.closes.size(), 1u);
  EXPECT_EQ(p.client.closes[0].status, 1006);
  EXPECT_TRUE(p.client.messages.empty());
  Buffer b[2];
  std::uint32_t n = 2;
  Action a = Action::send_to_network;
  BufferType t;
  void* act = nullptr;
  EXPECT_EQ(p.client.h->get_action(ActionQueue::all, b, &n, &a, &t, nullptr, &act), Result::ok);
  EXPECT_EQ(a, Action::no_action);
  // The server got part of a message (chunks only, no final MESSAGE) and then EOF.
  p.server.eof = true;
  p.pump();
  EXPECT_TRUE(p.server.messages.empty());
  ASSERT_EQ(p.server.closes.size(), 1u);
  EXPECT_EQ(p.server.closes[0].status, 1006);
}

// ---- Properties in action -------------------------------------------------------------------------

TEST(DisableMasking, ClientSetsTheMaskBitWithAZeroKey) {
  Pair p(Props().disable_masking());
  ASSERT_EQ(p.server.post_receive(), Result::ok);
  const Bytes x = binary_payload(300);
  ASSERT_EQ(p.client.send_data(BufferType::binary_message, x), Result::ok);
  ASSERT_EQ(p.client.send_control(BufferType::ping_pong), Result::ok);
  p.pump();
  auto frames = parse_frames(p.client.wire_out);
  ASSERT_EQ(frames.size(), 2u);
  for (const auto& f : frames) {
    EXPECT_TRUE(f.header.masked);
    EXPECT_EQ(f.header.mask_key, (MaskKey{0, 0, 0, 0}));
  }
  // A zero key: the payload is on the wire as is (header 0x82 0xFE 0x01 0x2C + key 0).
  EXPECT_EQ(Bytes(p.client.wire_out.begin() + 8, p.client.wire_out.begin() + 308), x);
  // Unmasked payload with capacity 2: the app's buffer is the second buffer.
  ASSERT_GE(p.client.write_buffer_counts.size(), 1u);
  EXPECT_EQ(p.client.write_buffer_counts[0], 2u);
  ASSERT_EQ(p.server.messages.size(), 1u);
  EXPECT_EQ(p.server.messages[0].data, x);
  EXPECT_TRUE(p.server.errors.empty());
}

TEST(DisableMasking, ServerAcceptsUnmaskedAndMaskedFrames) {
  Endpoint s(open_handle(Role::server, Props().disable_masking()));
  Endpoint peer(make_handle(Role::client));
  Link link(s, peer);
  ASSERT_EQ(s.post_receive(), Result::ok);
  Bytes wire = concat({frame(true, 1, bytes_of("plain")), frame(true, 1, bytes_of("masked"), true)});
  s.inbound.insert(s.inbound.end(), wire.begin(), wire.end());
  link.service(s, peer);
  EXPECT_TRUE(s.errors.empty());
  ASSERT_EQ(s.messages.size(), 2u);
  EXPECT_EQ(string_of(s.messages[0].data), "plain");
  EXPECT_EQ(string_of(s.messages[1].data), "masked");
}

TEST(AllocatedBuffer, AreasLiveInTheCallersMemory) {
  const std::uint32_t rbs = 1024, csbs = 256, ssbs = 16;
  std::vector<std::uint64_t> cmem((rbs + csbs + 144) / 8 + 1), smem((rbs + ssbs + 144) / 8 + 1);
  auto* cbase = reinterpret_cast<std::uint8_t*>(cmem.data());
  auto* sbase = reinterpret_cast<std::uint8_t*>(smem.data());
  Pair p(Props().rbs(rbs).sbs(csbs).allocated(cbase, rbs + csbs + 144),
         Props().rbs(rbs).sbs(ssbs).allocated(sbase, rbs + ssbs + 144));
  ASSERT_EQ(p.client.post_receive(), Result::ok);
  ASSERT_EQ(p.server.post_receive(), Result::ok);
  const Bytes x = utf8_payload(5000), y = binary_payload(3000);
  ASSERT_EQ(p.client.send_data(BufferType::utf8_message, x), Result::ok);
  ASSERT_EQ(p.server.send_data(BufferType::binary_message, y), Result::ok);
  // Check where the client's masked send buffer lives.
  Buffer b[2];
  std::uint32_t n = 2;
  Action a;
  BufferType t;
  void* act = nullptr;
  ASSERT_EQ(p.client.h->get_action(ActionQueue::send, b, &n, &a, &t, nullptr, &act), Result::ok);
  ASSERT_EQ(a, Action::send_to_network);
  EXPECT_GE(b[0].data.buffer, cbase);
  EXPECT_LE(b[0].data.buffer + b[0].data.length, cbase + rbs + csbs + 144);
  p.server.inbound.insert(p.server.inbound.end(), b[0].data.buffer, b[0].data.buffer + b[0].data.length);
  p.client.h->complete_action(act, b[0].data.length);
  p.pump();
  ASSERT_EQ(p.server.messages.size(), 1u);
  EXPECT_EQ(p.server.messages[0].data, x);
  ASSERT_EQ(p.client.messages.size(), 1u);
  EXPECT_EQ(p.client.messages[0].data, y);
  // Zero-copy results point into the caller's memory.
  ASSERT_NE(p.client.last_indicated_pointer, nullptr);
  EXPECT_GE(p.client.last_indicated_pointer, cbase);
  EXPECT_LT(p.client.last_indicated_pointer, cbase + rbs + csbs + 144);
  ASSERT_NE(p.server.last_indicated_pointer, nullptr);
  EXPECT_GE(p.server.last_indicated_pointer, sbase);
  EXPECT_LT(p.server.last_indicated_pointer, sbase + rbs + ssbs + 144);
}

// ---- RFC 6455 §5.7 examples produced by the engine -------------------------------------------------

TEST(Rfc6455Examples, ServerProducesTheUnmaskedFrames) {
  Pair p;
  ASSERT_EQ(p.server.send_data(BufferType::utf8_message, bytes_of("Hello")), Result::ok);
  ASSERT_EQ(p.server.send_data(BufferType::utf8_fragment, bytes_of("Hel")), Result::ok);
  ASSERT_EQ(p.server.send_data(BufferType::utf8_message, bytes_of("lo")), Result::ok);
  const Bytes b256 = binary_payload(256), b64k = binary_payload(65536);
  ASSERT_EQ(p.server.send_data(BufferType::binary_message, b256), Result::ok);
  ASSERT_EQ(p.server.send_data(BufferType::binary_message, b64k), Result::ok);
  p.pump();
  const Bytes expected = concat({Bytes{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}, Bytes{0x01, 0x03, 0x48, 0x65, 0x6c},
                                 Bytes{0x80, 0x02, 0x6c, 0x6f}, Bytes{0x82, 0x7E, 0x01, 0x00}, b256,
                                 Bytes{0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}, b64k});
  EXPECT_TRUE(p.server.wire_out == expected);
}

TEST(Rfc6455Examples, ClientProducesMaskedHello) {
  Pair p;
  ASSERT_EQ(p.client.send_data(BufferType::utf8_message, bytes_of("Hello")), Result::ok);
  p.pump();
  ASSERT_EQ(p.client.wire_out.size(), 11u);
  EXPECT_EQ(p.client.wire_out[0], 0x81);
  EXPECT_EQ(p.client.wire_out[1], 0x85);
  auto f = parse_whole_frame(p.client.wire_out);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(string_of(f->payload), "Hello");
}

TEST(Rfc6455Examples, MaskingKeysAreFreshPerFrame) {
  Pair p;
  for (int i = 0; i < 20; ++i) ASSERT_EQ(p.client.send_data(BufferType::binary_message, bytes_of("k")), Result::ok);
  p.pump();
  auto frames = parse_frames(p.client.wire_out);
  ASSERT_EQ(frames.size(), 20u);
  std::vector<MaskKey> keys;
  for (const auto& f : frames) keys.push_back(f.header.mask_key);
  std::sort(keys.begin(), keys.end());
  EXPECT_GE(std::unique(keys.begin(), keys.end()) - keys.begin(), 18);
}

Bytes receive_wire(Role role, const Bytes& wire) {
  Endpoint e(open_handle(role));
  Endpoint peer(make_handle(role == Role::client ? Role::server : Role::client));
  Link link(e, peer);
  EXPECT_EQ(e.post_receive(), Result::ok);
  e.inbound.insert(e.inbound.end(), wire.begin(), wire.end());
  link.service(e, peer);
  EXPECT_TRUE(e.errors.empty());
  EXPECT_EQ(e.messages.size(), 1u);
  return e.messages.empty() ? Bytes{} : e.messages[0].data;
}

TEST(Rfc6455Examples, ParsedByTheEngine) {
  EXPECT_EQ(string_of(receive_wire(Role::client, {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f})), "Hello");
  EXPECT_EQ(string_of(receive_wire(Role::server, {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58})),
            "Hello");
  EXPECT_EQ(string_of(receive_wire(Role::client, {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f})), "Hello");
  const Bytes b256 = binary_payload(256), b64k = binary_payload(65536);
  EXPECT_TRUE(receive_wire(Role::client, concat({Bytes{0x82, 0x7E, 0x01, 0x00}, b256})) == b256);
  EXPECT_TRUE(receive_wire(Role::client, concat({Bytes{0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0, 0}, b64k})) == b64k);
}

}  // namespace
}  // namespace wsgate::ws
