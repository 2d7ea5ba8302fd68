// Send / Receive / GetAction / CompleteAction / Abort argument and state rules (README "Send",
// "Receive", "GetAction / CompleteAction", "Abort and Delete").
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/unit/ws/ws_test_util.h"

namespace wsgate::ws {
namespace {

using namespace test;

struct Got {
  Result result;
  Action action = Action::no_action;
  BufferType type = BufferType::binary_message;
  std::uint32_t count = 0;
  Buffer bufs[4]{};
  void* app = nullptr;
  void* act = nullptr;
  Bytes bytes() const {
    Bytes out;
    for (std::uint32_t i = 0; i < count; ++i) out.insert(out.end(), bufs[i].data.buffer, bufs[i].data.buffer + bufs[i].data.length);
    return out;
  }
};

Got get(ProtocolHandle& h, ActionQueue q, std::uint32_t capacity = 2) {
  Got g{};
  g.count = capacity;
  g.app = reinterpret_cast<void*>(0x5555);
  g.result = h.get_action(q, g.bufs, &g.count, &g.action, &g.type, &g.app, &g.act);
  return g;
}

Result send_bytes(ProtocolHandle& h, BufferType t, const Bytes& b, void* ctx = nullptr) {
  Buffer buf{};
  buf.data.buffer = const_cast<std::uint8_t*>(b.data());
  buf.data.length = static_cast<std::uint32_t>(b.size());
  return h.send(t, &buf, ctx);
}

Result send_close(ProtocolHandle& h, std::uint16_t status, const std::uint8_t* reason, std::uint32_t len) {
  Buffer buf{};
  buf.close_status.status = status;
  buf.close_status.reason = const_cast<std::uint8_t*>(reason);
  buf.close_status.reason_length = len;
  return h.send(BufferType::close, &buf, nullptr);
}

// Feeds raw bytes to `h` through one RECEIVE_FROM_NETWORK (a Receive must be queued).
void feed(ProtocolHandle& h, const Bytes& wire) {
  Got g = get(h, ActionQueue::receive);
  ASSERT_EQ(g.result, Result::ok);
  ASSERT_EQ(g.action, Action::receive_from_network);
  ASSERT_GE(g.bufs[0].data.length, wire.size());
  std::copy(wire.begin(), wire.end(), g.bufs[0].data.buffer);
  h.complete_action(g.act, static_cast<std::uint32_t>(wire.size()));
}

// ---- Send ---------------------------------------------------------------------------------------

TEST(Send, BeforeHandshakeIsInvalidOperation) {
  auto c = make_handle(Role::client);
  EXPECT_EQ(c->send(BufferType::close, nullptr, nullptr), Result::invalid_operation);
  EXPECT_EQ(c->send(BufferType::ping_pong, nullptr, nullptr), Result::invalid_operation);
  HttpHeader* out;
  std::uint32_t n;
  ASSERT_EQ(c->begin_client_handshake(nullptr, 0, nullptr, 0, nullptr, 0, &out, &n), Result::ok);
  EXPECT_EQ(send_bytes(*c, BufferType::binary_message, bytes_of("x")), Result::invalid_operation);
  auto s = make_handle(Role::server);
  EXPECT_EQ(send_bytes(*s, BufferType::binary_message, bytes_of("x")), Result::invalid_operation);
}

TEST(Send, DataBufferRules) {
  auto s = open_handle(Role::server);
  EXPECT_EQ(s->send(BufferType::binary_message, nullptr, nullptr), Result::invalid_arg);
  EXPECT_EQ(s->send(BufferType::utf8_message, nullptr, nullptr), Result::invalid_arg);
  EXPECT_EQ(s->send(BufferType::binary_fragment, nullptr, nullptr), Result::invalid_arg);
  Buffer null_with_length{};
  null_with_length.data.buffer = nullptr;
  null_with_length.data.length = 5;
  EXPECT_EQ(s->send(BufferType::binary_message, &null_with_length, nullptr), Result::invalid_arg);
  Buffer empty{};
  EXPECT_EQ(s->send(BufferType::binary_message, &empty, nullptr), Result::ok);
  EXPECT_EQ(s->send(BufferType::utf8_message, &empty, nullptr), Result::ok);
}

TEST(Send, TextAndBinaryMayNotMixInOneMessage) {
  auto s = open_handle(Role::server);
  ASSERT_EQ(send_bytes(*s, BufferType::utf8_fragment, bytes_of("a")), Result::ok);
  EXPECT_EQ(send_bytes(*s, BufferType::binary_message, bytes_of("b")), Result::invalid_protocol_operation);
  EXPECT_EQ(send_bytes(*s, BufferType::binary_fragment, bytes_of("b")), Result::invalid_protocol_operation);
  EXPECT_EQ(send_bytes(*s, BufferType::utf8_fragment, bytes_of("b")), Result::ok);
  EXPECT_EQ(send_bytes(*s, BufferType::utf8_message, bytes_of("c")), Result::ok);
  // A new message may now be binary.
  ASSERT_EQ(send_bytes(*s, BufferType::binary_fragment, bytes_of("d")), Result::ok);
  EXPECT_EQ(send_bytes(*s, BufferType::utf8_message, bytes_of("e")), Result::invalid_protocol_operation);
  EXPECT_EQ(send_bytes(*s, BufferType::binary_message, bytes_of("e")), Result::ok);
}

TEST(Send, CloseStatusRules) {
  for (int bad : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    auto s = open_handle(Role::server);
    EXPECT_EQ(send_close(*s, static_cast<std::uint16_t>(bad), nullptr, 0), Result::invalid_arg) << bad;
    EXPECT_EQ(s->state(), State::open);
  }
  for (int good : {1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999}) {
    auto s = open_handle(Role::server);
    EXPECT_EQ(send_close(*s, static_cast<std::uint16_t>(good), nullptr, 0), Result::ok) << good;
    EXPECT_EQ(s->state(), State::close_sent);
  }
}

TEST(Send, CloseReasonRules) {
  const std::string r123(123, 'r'), r124(124, 'r');
  const Bytes b123 = bytes_of(r123), b124 = bytes_of(r124), bad_utf8 = {'a', 0xC0, 0x80};
  {
    auto s = open_handle(Role::server);
    EXPECT_EQ(send_close(*s, 1000, b124.data(), 124), Result::invalid_arg);
    EXPECT_EQ(send_close(*s, 1000, nullptr, 5), Result::invalid_arg);
    EXPECT_EQ(send_close(*s, 1000, b123.data(), 0), Result::invalid_arg);
    EXPECT_EQ(send_close(*s, 1000, bad_utf8.data(), 3), Result::invalid_arg);
    EXPECT_EQ(s->state(), State::open);
    EXPECT_EQ(send_close(*s, 1000, b123.data(), 123), Result::ok);
  }
  {
    auto s = open_handle(Role::server, Props().disable_utf8());
    EXPECT_EQ(send_close(*s, 1000, bad_utf8.data(), 3), Result::ok);
  }
}

TEST(Send, CloseInsideAFragmentedMessage) {
  auto s = open_handle(Role::server);
  ASSERT_EQ(send_bytes(*s, BufferType::utf8_fragment, bytes_of("a")), Result::ok);
  EXPECT_EQ(s->send(BufferType::close, nullptr, nullptr), Result::ok);
}

TEST(Send, ControlTypesNeedANullBuffer) {
  auto s = open_handle(Role::server);
  Buffer b{};
  Bytes x = bytes_of("x");
  b.data.buffer = x.data();
  b.data.length = 1;
  EXPECT_EQ(s->send(BufferType::ping_pong, &b, nullptr), Result::invalid_arg);
  EXPECT_EQ(s->send(BufferType::unsolicited_pong, &b, nullptr), Result::invalid_arg);
  Buffer empty{};
  EXPECT_EQ(s->send(BufferType::ping_pong, &empty, nullptr), Result::invalid_arg);
  EXPECT_EQ(s->send(BufferType::ping_pong, nullptr, nullptr), Result::ok);
  EXPECT_EQ(s->send(BufferType::unsolicited_pong, nullptr, nullptr), Result::ok);
}

TEST(Send, CustomAndUnknownTypesAreInvalid) {
  auto s = open_handle(Role::server);
  Bytes x = bytes_of("x");
  Buffer b{};
  b.data.buffer = x.data();
  b.data.length = 1;
  for (std::uint32_t t : {0x00000000u, 0x00000100u, 0x000001FFu, 0x80000007u, 0x80000100u, 0x7FFFFFFFu}) {
    EXPECT_EQ(s->send(static_cast<BufferType>(t), &b, nullptr), Result::invalid_arg) << std::hex << t;
    EXPECT_EQ(s->send(static_cast<BufferType>(t), nullptr, nullptr), Result::invalid_arg) << std::hex << t;
  }
}

TEST(Send, AfterCloseOnlyControlFrames) {
  auto s = open_handle(Role::server);
  ASSERT_EQ(s->send(BufferType::close, nullptr, nullptr), Result::ok);
  EXPECT_EQ(s->state(), State::close_sent);
  EXPECT_EQ(send_bytes(*s, BufferType::binary_message, bytes_of("x")), Result::invalid_protocol_operation);
  EXPECT_EQ(send_bytes(*s, BufferType::utf8_fragment, bytes_of("x")), Result::invalid_protocol_operation);
  EXPECT_EQ(s->send(BufferType::close, nullptr, nullptr), Result::invalid_protocol_operation);
  EXPECT_EQ(s->send(BufferType::ping_pong, nullptr, nullptr), Result::ok);
  EXPECT_EQ(s->send(BufferType::unsolicited_pong, nullptr, nullptr), Result::ok);
}

TEST(Send, QueueIsFifoAndUnbounded) {
  Pair p;
  p.client.auto_receive = true;
  ASSERT_EQ(p.client.post_receive(), Result::ok);
  std::vector<Bytes> sent;
  for (int i = 0; i < 1000; ++i) {
    sent.push_back(bytes_of("m" + std::to_string(i)));
    ASSERT_EQ(p.server.send_data(BufferType::binary_message, sent.back()), Result::ok);
  }
  p.pump();
  ASSERT_EQ(p.server.send_completions, p.server.sends_accepted);  // FIFO, each once
  ASSERT_EQ(p.client.messages.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(p.client.messages[i].data, sent[i]);
  // The queue keeps working after draining (storage reuse).
  ASSERT_EQ(p.server.send_data(BufferType::binary_message, bytes_of("again")), Result::ok);
  p.pump();
  ASSERT_EQ(p.client.messages.size(), sent.size() + 1);
  EXPECT_EQ(string_of(p.client.messages.back().data), "again");
}

// ---- Receive ------------------------------------------------------------------------------------

TEST(Receive, BufferRules) {
  auto c = open_handle(Role::client);
  Buffer null_ptr{};
  null_ptr.data.length = 10;
  EXPECT_EQ(c->receive(&null_ptr, nullptr), Result::invalid_arg);
  std::uint8_t one = 0;
  Buffer zero_len{};
  zero_len.data.buffer = &one;
  zero_len.data.length = 0;
  EXPECT_EQ(c->receive(&zero_len, nullptr), Result::invalid_arg);
  Buffer ok{};
  ok.data.buffer = &one;
  ok.data.length = 1;
  EXPECT_EQ(c->receive(&ok, nullptr), Result::ok);
  EXPECT_EQ(c->receive(nullptr, nullptr), Result::ok);
}

TEST(Receive, BeforeHandshakeIsInvalidOperation) {
  auto c = make_handle(Role::client);
  EXPECT_EQ(c->receive(nullptr, nullptr), Result::invalid_operation);
  auto s = make_handle(Role::server);
  EXPECT_EQ(s->receive(nullptr, nullptr), Result::invalid_operation);
}

TEST(Receive, SeveralReceivesAreFifo) {
  auto c = open_handle(Role::client);
  Bytes b1(16), b2(16);
  Buffer r1{}, r2{};
  r1.data = {b1.data(), 16};
  r2.data = {b2.data(), 16};
  void* c1 = reinterpret_cast<void*>(0x111);
  void* c2 = reinterpret_cast<void*>(0x222);
  ASSERT_EQ(c->receive(&r1, c1), Result::ok);
  ASSERT_EQ(c->receive(&r2, c2), Result::ok);
  feed(*c, concat({frame(true, 2, bytes_of("first")), frame(true, 1, bytes_of("second"))}));
  Got g1 = get(*c, ActionQueue::receive);
  ASSERT_EQ(g1.action, Action::indicate_receive_complete);
  EXPECT_EQ(g1.app, c1);
  EXPECT_EQ(g1.type, BufferType::binary_message);
  EXPECT_EQ(g1.bufs[0].data.buffer, b1.data());
  EXPECT_EQ(string_of(g1.bytes()), "first");
  c->complete_action(g1.act, 0);
  Got g2 = get(*c, ActionQueue::receive);
  ASSERT_EQ(g2.action, Action::indicate_receive_complete);
  EXPECT_EQ(g2.app, c2);
  EXPECT_EQ(g2.type, BufferType::utf8_message);
  EXPECT_EQ(g2.bufs[0].data.buffer, b2.data());
  EXPECT_EQ(string_of(g2.bytes()), "second");
  c->complete_action(g2.act, 0);
  EXPECT_EQ(get(*c, ActionQueue::receive).action, Action::no_action);
}

TEST(Receive, QueuedReceivesAllGetTheSameClose) {
  auto c = open_handle(Role::client);
  void* ctx[3] = {reinterpret_cast<void*>(1), reinterpret_cast<void*>(2), reinterpret_cast<void*>(3)};
  for (void* x : ctx) ASSERT_EQ(c->receive(nullptr, x), Result::ok);
  feed(*c, frame(true, 8, close_payload(1001, "away")));
  for (void* x : ctx) {
    Got g = get(*c, ActionQueue::receive);
    ASSERT_EQ(g.action, Action::indicate_receive_complete);
    EXPECT_EQ(g.app, x);
    EXPECT_EQ(g.type, BufferType::close);
    EXPECT_EQ(g.bufs[0].close_status.status, 1001);
    ASSERT_EQ(g.bufs[0].close_status.reason_length, 4u);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(g.bufs[0].close_status.reason), 4), "away");
    c->complete_action(g.act, 0);
  }
  EXPECT_EQ(c->state(), State::close_received);
  EXPECT_EQ(c->receive(nullptr, nullptr), Result::invalid_protocol_operation);
  EXPECT_EQ(get(*c, ActionQueue::receive).action, Action::no_action);
}

// ---- GetAction / CompleteAction -----------------------------------------------------------------

TEST(GetAction, InvalidArguments) {
  auto s = open_handle(Role::server);
  Buffer b[2];
  std::uint32_t n = 2;
  Action a;
  BufferType t;
  void* app;
  void* act;
  EXPECT_EQ(s->get_action(ActionQueue::all, nullptr, &n, &a, &t, &app, &act), Result::invalid_arg);
  EXPECT_EQ(s->get_action(ActionQueue::all, b, nullptr, &a, &t, &app, &act), Result::invalid_arg);
  EXPECT_EQ(s->get_action(ActionQueue::all, b, &n, nullptr, &t, &app, &act), Result::invalid_arg);
  EXPECT_EQ(s->get_action(ActionQueue::all, b, &n, &a, nullptr, &app, &act), Result::invalid_arg);
  EXPECT_EQ(s->get_action(ActionQueue::all, b, &n, &a, &t, &app, nullptr), Result::invalid_arg);
  n = 0;
  EXPECT_EQ(s->get_action(ActionQueue::all, b, &n, &a, &t, &app, &act), Result::invalid_arg);
  for (std::uint32_t q : {0u, 4u, 7u, 0xFFu}) {
    n = 2;
    EXPECT_EQ(s->get_action(static_cast<ActionQueue>(q), b, &n, &a, &t, &app, &act), Result::invalid_arg) << q;
  }
  n = 2;
  EXPECT_EQ(s->get_action(ActionQueue::all, b, &n, &a, &t, nullptr, &act), Result::ok);  // app ctx optional
  EXPECT_EQ(a, Action::no_action);
}

TEST(GetAction, BeforeHandshakeIsInvalidOperation) {
  auto c = make_handle(Role::client);
  EXPECT_EQ(get(*c, ActionQueue::all).result, Result::invalid_operation);
  HttpHeader* out;
  std::uint32_t n;
  ASSERT_EQ(c->begin_client_handshake(nullptr, 0, nullptr, 0, nullptr, 0, &out, &n), Result::ok);
  EXPECT_EQ(get(*c, ActionQueue::send).result, Result::invalid_operation);
  auto s = make_handle(Role::server);
  EXPECT_EQ(get(*s, ActionQueue::receive).result, Result::invalid_operation);
}

TEST(GetAction, AllReturnsSendSideFirst) {
  auto s = open_handle(Role::server);
  ASSERT_EQ(s->receive(nullptr, nullptr), Result::ok);
  Bytes x = bytes_of("x");
  void* ctx = reinterpret_cast<void*>(0x77);
  ASSERT_EQ(send_bytes(*s, BufferType::binary_message, x, ctx), Result::ok);
  Got g = get(*s, ActionQueue::all);
  ASSERT_EQ(g.result, Result::ok);
  EXPECT_EQ(g.action, Action::send_to_network);
  EXPECT_EQ(g.type, BufferType::binary_message);
  EXPECT_EQ(g.app, ctx);
}

TEST(GetAction, OneOutstandingActionPerDirection) {
  auto s = open_handle(Role::server);
  Bytes x = bytes_of("payload"), y = bytes_of("second");
  ASSERT_EQ(send_bytes(*s, BufferType::binary_message, x), Result::ok);
  ASSERT_EQ(send_bytes(*s, BufferType::binary_message, y), Result::ok);
  Got g = get(*s, ActionQueue::send);
  ASSERT_EQ(g.action, Action::send_to_network);
  EXPECT_EQ(get(*s, ActionQueue::send).action, Action::no_action);
  ASSERT_EQ(s->receive(nullptr, nullptr), Result::ok);
  Got r = get(*s, ActionQueue::receive);
  ASSERT_EQ(r.action, Action::receive_from_network);
  EXPECT_EQ(get(*s, ActionQueue::receive).action, Action::no_action);
  EXPECT_EQ(get(*s, ActionQueue::all).action, Action::no_action);
  s->complete_action(g.act, static_cast<std::uint32_t>(g.bytes().size()));
  Got done = get(*s, ActionQueue::send);
  EXPECT_EQ(done.action, Action::indicate_send_complete);
}

TEST(GetAction, UnmaskedPayloadUsesTheAppBuffer) {
  auto s = open_handle(Role::server);
  Bytes x = binary_payload(300);
  void* ctx = reinterpret_cast<void*>(0x99);
  ASSERT_EQ(send_bytes(*s, BufferType::binary_message, x, ctx), Result::ok);
  Got g = get(*s, ActionQueue::send, 2);
  ASSERT_EQ(g.action, Action::send_to_network);
  ASSERT_EQ(g.count, 2u);
  EXPECT_EQ(g.bufs[0].data.length, 4u);
  EXPECT_EQ(Bytes(g.bufs[0].data.buffer, g.bufs[0].data.buffer + 4), (Bytes{0x82, 0x7E, 0x01, 0x2C}));
  EXPECT_EQ(g.bufs[1].data.buffer, x.data());
  EXPECT_EQ(g.bufs[1].data.length, 300u);
  EXPECT_EQ(g.app, ctx);
  s->complete_action(g.act, 304);
  Got done = get(*s, ActionQueue::send);
  ASSERT_EQ(done.action, Action::indicate_send_complete);
  EXPECT_EQ(done.app, ctx);
  s->complete_action(done.act, 0);
  EXPECT_EQ(get(*s, ActionQueue::send).action, Action::no_action);
}

TEST(GetAction, EmptyPayloadIsOneBuffer) {
  auto s = open_handle(Role::server);
  Buffer empty{};
  ASSERT_EQ(s->send(BufferType::utf8_message, &empty, nullptr), Result::ok);
  Got g = get(*s, ActionQueue::send, 2);
  ASSERT_EQ(g.action, Action::send_to_network);
  ASSERT_EQ(g.count, 1u);
  EXPECT_EQ(g.bytes(), (Bytes{0x81, 0x00}));
}

TEST(GetAction, ControlFramesAreOneBuffer) {
  auto s = open_handle(Role::server);
  ASSERT_EQ(send_close(*s, 1000, reinterpret_cast<const std::uint8_t*>("bye"), 3), Result::ok);
  Got g = get(*s, ActionQueue::send, 4);
  ASSERT_EQ(g.action, Action::send_to_network);
  EXPECT_EQ(g.type, BufferType::close);
  ASSERT_EQ(g.count, 1u);
  EXPECT_EQ(g.bytes(), (Bytes{0x88, 0x05, 0x03, 0xE8, 'b', 'y', 'e'}));
}

TEST(GetAction, MaskedClientPayloadIsOneBufferInTheSendArea) {
  auto c = open_handle(Role::client, Props().sbs(64));
  Bytes x = binary_payload(200);
  ASSERT_EQ(send_bytes(*c, BufferType::binary_message, x), Result::ok);
  Bytes wire;
  for (int i = 0; i < 100; ++i) {
    Got g = get(*c, ActionQueue::send, 2);
    ASSERT_EQ(g.result, Result::ok);
    if (g.action == Action::indicate_send_complete) {
      c->complete_action(g.act, 0);
      break;
    }
    ASSERT_EQ(g.action, Action::send_to_network);
    ASSERT_EQ(g.count, 1u);
    EXPECT_LE(g.bufs[0].data.length, 64u);
    EXPECT_NE(g.bufs[0].data.buffer, x.data());
    if (wire.empty()) {
      EXPECT_EQ(g.bufs[0].data.length, 64u);  // header + as much as fits
    }
    Bytes part = g.bytes();
    wire.insert(wire.end(), part.begin(), part.end());
    c->complete_action(g.act, static_cast<std::uint32_t>(part.size()));
  }
  auto f = parse_whole_frame(wire);
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->header.masked);
  EXPECT_EQ(f->payload, x);
  EXPECT_EQ(wire.size(), 8u + 200u);
}

TEST(GetAction, CapacityOneSplitsServerFramesAtTheSendBufferSize) {
  auto s = open_handle(Role::server);  // SBS 16
  Bytes x = binary_payload(50);
  ASSERT_EQ(send_bytes(*s, BufferType::binary_message, x), Result::ok);
  Bytes wire;
  int actions = 0;
  for (int i = 0; i < 100; ++i) {
    Got g = get(*s, ActionQueue::send, 1);
    ASSERT_EQ(g.result, Result::ok);
    if (g.action == Action::indicate_send_complete) break;
    ASSERT_EQ(g.action, Action::send_to_network);
    ASSERT_EQ(g.count, 1u);
    EXPECT_LE(g.bufs[0].data.length, 16u);
    EXPECT_GT(g.bufs[0].data.length, 0u);
    Bytes part = g.bytes();
    wire.insert(wire.end(), part.begin(), part.end());
    s->complete_action(g.act, static_cast<std::uint32_t>(part.size()));
    ++actions;
  }
  EXPECT_EQ(wire, concat({Bytes{0x82, 50}, x}));
  EXPECT_GE(actions, 4);
}

TEST(CompleteAction, ZeroBytesDropsTheFrameAndCompletesTheSend) {
  auto s = open_handle(Role::server);
  void* ctx = reinterpret_cast<void*>(0x31);
  Bytes x = bytes_of("dropped"), y = bytes_of("next");
  ASSERT_EQ(send_bytes(*s, BufferType::binary_message, x, ctx), Result::ok);
  Got g = get(*s, ActionQueue::send);
  ASSERT_EQ(g.action, Action::send_to_network);
  s->complete_action(g.act, 0);
  Got done = get(*s, ActionQueue::send);
  ASSERT_EQ(done.action, Action::indicate_send_complete);
  EXPECT_EQ(done.app, ctx);
  s->complete_action(done.act, 0);
  // The stream is intact: later sends work and start a fresh frame.
  ASSERT_EQ(send_bytes(*s, BufferType::binary_message, y), Result::ok);
  Got n = get(*s, ActionQueue::send);
  ASSERT_EQ(n.action, Action::send_to_network);
  EXPECT_EQ(n.bytes(), concat({Bytes{0x82, 4}, y}));
}

TEST(CompleteAction, ShortWriteBreaksTheOutgoingStream) {
  auto s = open_handle(Role::server);
  Bytes x = bytes_of("partial"), q = bytes_of("queued");
  void* c1 = reinterpret_cast<void*>(1);
  void* c2 = reinterpret_cast<void*>(2);
  ASSERT_EQ(send_bytes(*s, BufferType::binary_message, x, c1), Result::ok);
  ASSERT_EQ(send_bytes(*s, BufferType::binary_message, q, c2), Result::ok);
  Got g = get(*s, ActionQueue::send);
  ASSERT_EQ(g.action, Action::send_to_network);
  s->complete_action(g.act, 3);
  Got d1 = get(*s, ActionQueue::send);
  ASSERT_EQ(d1.action, Action::indicate_send_complete);
  EXPECT_EQ(d1.app, c1);
  s->complete_action(d1.act, 0);
  Got d2 = get(*s, ActionQueue::send);  // the queued Send completes without reaching the network
  ASSERT_EQ(d2.action, Action::indicate_send_complete);
  EXPECT_EQ(d2.app, c2);
  s->complete_action(d2.act, 0);
  EXPECT_EQ(get(*s, ActionQueue::send).action, Action::no_action);
  EXPECT_EQ(send_bytes(*s, BufferType::binary_message, x), Result::invalid_protocol_operation);
  EXPECT_EQ(s->send(BufferType::close, nullptr, nullptr), Result::invalid_protocol_operation);
  EXPECT_EQ(s->send(BufferType::ping_pong, nullptr, nullptr), Result::invalid_protocol_operation);
}

TEST(CompleteAction, ReceiveEofGivesClose1006) {
  for (bool too_many : {false, true}) {
    auto c = open_handle(Role::client);
    void* ctx = reinterpret_cast<void*>(0x44);
    ASSERT_EQ(c->receive(nullptr, ctx), Result::ok);
    Got r = get(*c, ActionQueue::receive);
    ASSERT_EQ(r.action, Action::receive_from_network);
    c->complete_action(r.act, too_many ? r.bufs[0].data.length + 1 : 0);
    Got g = get(*c, ActionQueue::receive);
    ASSERT_EQ(g.action, Action::indicate_receive_complete) << too_many;
    EXPECT_EQ(g.type, BufferType::close);
    EXPECT_EQ(g.app, ctx);
    EXPECT_EQ(g.bufs[0].close_status.status, 1006);
    EXPECT_EQ(g.bufs[0].close_status.reason_length, 0u);
    c->complete_action(g.act, 0);
    EXPECT_EQ(c->state(), State::close_received);
    EXPECT_EQ(c->receive(nullptr, nullptr), Result::invalid_protocol_operation);
    EXPECT_EQ(get(*c, ActionQueue::receive).action, Action::no_action);
    // Sending still works: the app may send its close.
    EXPECT_EQ(c->send(BufferType::close, nullptr, nullptr), Result::ok);
  }
}

TEST(CompleteAction, UnknownAndStaleContextsAreIgnored) {
  auto c = open_handle(Role::client);
  c->complete_action(nullptr, 5);
  c->complete_action(reinterpret_cast<void*>(0x123456), 5);
  ASSERT_EQ(c->receive(nullptr, nullptr), Result::ok);
  Bytes wire = frame(true, 2, bytes_of("abcdefgh"));
  Got r = get(*c, ActionQueue::receive);
  ASSERT_EQ(r.action, Action::receive_from_network);
  std::copy(wire.begin(), wire.begin() + 4, r.bufs[0].data.buffer);
  c->complete_action(r.act, 4);
  c->complete_action(r.act, 6);  // stale: ignored, the 6 bytes must not count
  Got r2 = get(*c, ActionQueue::receive);
  ASSERT_EQ(r2.action, Action::receive_from_network);
  std::copy(wire.begin() + 4, wire.end(), r2.bufs[0].data.buffer);
  c->complete_action(r2.act, static_cast<std::uint32_t>(wire.size() - 4));
  Got g = get(*c, ActionQueue::receive);
  ASSERT_EQ(g.action, Action::indicate_receive_complete);
  EXPECT_EQ(string_of(g.bytes()), "abcdefgh");
  c->complete_action(g.act, 12345);  // INDICATE ignores the byte count
  c->complete_action(g.act, 0);      // and a second completion is ignored
  EXPECT_EQ(c->state(), State::open);
  EXPECT_EQ(get(*c, ActionQueue::all).action, Action::no_action);
}

// ---- Receive-side delivery rules ---------------------------------------------------------------

std::vector<std::pair<BufferType, Bytes>> receive_all(ProtocolHandle& c, const Bytes& wire, std::uint32_t app_len) {
  std::vector<std::pair<BufferType, Bytes>> out;
  Bytes app(app_len ? app_len : 1);
  auto post = [&] {
    if (app_len == 0) return c.receive(nullptr, nullptr);
    Buffer b{};
    b.data = {app.data(), app_len};
    return c.receive(&b, nullptr);
  };
  EXPECT_EQ(post(), Result::ok);
  std::size_t pos = 0;
  for (int i = 0; i < 100000; ++i) {
    Got g = get(c, ActionQueue::receive);
    EXPECT_EQ(g.result, Result::ok);
    if (g.result != Result::ok || g.action == Action::no_action) break;
    if (g.action == Action::receive_from_network) {
      if (pos == wire.size()) break;  // all fed; the read stays outstanding
      std::uint32_t n = static_cast<std::uint32_t>(std::min<std::size_t>(g.bufs[0].data.length, wire.size() - pos));
      std::copy(wire.begin() + static_cast<std::ptrdiff_t>(pos), wire.begin() + static_cast<std::ptrdiff_t>(pos + n),
                g.bufs[0].data.buffer);
      pos += n;
      c.complete_action(g.act, n);
    } else if (g.action == Action::indicate_receive_complete) {
      out.emplace_back(g.type, g.type == BufferType::close ? Bytes{} : g.bytes());
      c.complete_action(g.act, 0);
      if (g.type == BufferType::close) break;
      EXPECT_EQ(post(), Result::ok);
    } else if (g.action == Action::send_to_network) {
      c.complete_action(g.act, static_cast<std::uint32_t>(g.bytes().size()));  // automatic pong
    }
  }
  return out;
}

TEST(ReceiveChunks, AppBufferSizedChunks) {
  auto c = open_handle(Role::client);
  Bytes x = binary_payload(1000);
  auto got = receive_all(*c, frame(true, 2, x), 300);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].first, BufferType::binary_fragment);
  EXPECT_EQ(got[1].first, BufferType::binary_fragment);
  EXPECT_EQ(got[2].first, BufferType::binary_fragment);
  EXPECT_EQ(got[3].first, BufferType::binary_message);
  EXPECT_EQ(got[0].second.size(), 300u);
  EXPECT_EQ(got[3].second.size(), 100u);
  EXPECT_EQ(concat({got[0].second, got[1].second, got[2].second, got[3].second}), x);
}

TEST(ReceiveChunks, ZeroCopyChunksAreAtMostTheReceiveBufferSize) {
  auto c = open_handle(Role::client, Props().rbs(256));
  Bytes x = binary_payload(1000);
  auto got = receive_all(*c, frame(true, 2, x), 0);
  ASSERT_GE(got.size(), 4u);
  Bytes all;
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_LE(got[i].second.size(), 256u);
    EXPECT_EQ(got[i].first, i + 1 == got.size() ? BufferType::binary_message : BufferType::binary_fragment);
    all.insert(all.end(), got[i].second.begin(), got[i].second.end());
  }
  EXPECT_EQ(all, x);
}

TEST(ReceiveChunks, EmptyNonFinalFramesAreSkipped) {
  auto c = open_handle(Role::client);
  auto got = receive_all(*c, concat({frame(false, 1, {}), frame(false, 0, {}), frame(true, 0, bytes_of("ab"))}), 0);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, BufferType::utf8_message);
  EXPECT_EQ(string_of(got[0].second), "ab");
}

TEST(ReceiveChunks, EmptyFinalFrameIndicatesAnEmptyMessage) {
  auto c = open_handle(Role::client);
  auto got = receive_all(*c, concat({frame(false, 1, bytes_of("ab")), frame(true, 0, {})}), 0);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, BufferType::utf8_fragment);
  EXPECT_EQ(string_of(got[0].second), "ab");
  EXPECT_EQ(got[1].first, BufferType::utf8_message);
  EXPECT_TRUE(got[1].second.empty());
  auto c2 = open_handle(Role::client);
  auto empty = receive_all(*c2, frame(true, 2, {}), 16);
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(empty[0].first, BufferType::binary_message);
  EXPECT_TRUE(empty[0].second.empty());
}

TEST(ReceiveChunks, PongIsCopiedAndTruncatedToTheAppBuffer) {
  auto c = open_handle(Role::client);
  auto got = receive_all(*c, frame(true, 0xA, bytes_of("hello")), 2);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, BufferType::ping_pong);
  EXPECT_EQ(string_of(got[0].second), "he");
  auto c2 = open_handle(Role::client);
  auto full = receive_all(*c2, frame(true, 0xA, bytes_of("hello")), 0);
  ASSERT_EQ(full.size(), 1u);
  EXPECT_EQ(full[0].first, BufferType::ping_pong);
  EXPECT_EQ(string_of(full[0].second), "hello");
}

// ---- Abort --------------------------------------------------------------------------------------

TEST(Abort, DrainsQueuedWorkThenNoAction) {
  auto s = open_handle(Role::server);
  Bytes x = binary_payload(100), y = binary_payload(10);
  void* s1 = reinterpret_cast<void*>(0x10);
  void* s2 = reinterpret_cast<void*>(0x20);
  void* r1 = reinterpret_cast<void*>(0x30);
  void* r2 = reinterpret_cast<void*>(0x40);
  ASSERT_EQ(send_bytes(*s, BufferType::binary_fragment, x, s1), Result::ok);
  ASSERT_EQ(send_bytes(*s, BufferType::binary_message, y, s2), Result::ok);
  ASSERT_EQ(s->receive(nullptr, r1), Result::ok);
  ASSERT_EQ(s->receive(nullptr, r2), Result::ok);
  Got out = get(*s, ActionQueue::send);  // first frame outstanding at the abort
  ASSERT_EQ(out.action, Action::send_to_network);
  s->abort();
  EXPECT_EQ(s->state(), State::aborted);
  EXPECT_EQ(send_bytes(*s, BufferType::binary_message, y), Result::invalid_protocol_operation);
  EXPECT_EQ(s->send(BufferType::close, nullptr, nullptr), Result::invalid_protocol_operation);
  EXPECT_EQ(s->send(BufferType::ping_pong, nullptr, nullptr), Result::invalid_protocol_operation);
  EXPECT_EQ(s->receive(nullptr, nullptr), Result::invalid_protocol_operation);
  // The outstanding frame completes after its CompleteAction.
  EXPECT_EQ(get(*s, ActionQueue::send).action, Action::no_action);
  s->complete_action(out.act, static_cast<std::uint32_t>(out.bytes().size()));
  std::vector<void*> send_done;
  for (int i = 0; i < 10; ++i) {
    Got g = get(*s, ActionQueue::send);
    ASSERT_EQ(g.result, Result::ok);
    if (g.action == Action::no_action) break;
    ASSERT_EQ(g.action, Action::indicate_send_complete);
    send_done.push_back(g.app);
    s->complete_action(g.act, 0);
  }
  EXPECT_EQ(send_done, (std::vector<void*>{s1, s2}));
  std::vector<void*> recv_done;
  for (int i = 0; i < 10; ++i) {
    Got g = get(*s, ActionQueue::receive);
    ASSERT_EQ(g.result, Result::ok);
    if (g.action == Action::no_action) break;
    ASSERT_EQ(g.action, Action::indicate_receive_complete);
    EXPECT_EQ(g.type, BufferType::close);
    EXPECT_EQ(g.bufs[0].close_status.status, 1006);
    recv_done.push_back(g.app);
    s->complete_action(g.act, 0);
  }
  EXPECT_EQ(recv_done, (std::vector<void*>{r1, r2}));
  EXPECT_EQ(get(*s, ActionQueue::all).action, Action::no_action);
  EXPECT_EQ(s->state(), State::aborted);
}

TEST(Abort, WithAnOutstandingRead) {
  auto c = open_handle(Role::client);
  void* r1 = reinterpret_cast<void*>(0x30);
  ASSERT_EQ(c->receive(nullptr, r1), Result::ok);
  Got rd = get(*c, ActionQueue::receive);
  ASSERT_EQ(rd.action, Action::receive_from_network);
  c->abort();
  c->complete_action(rd.act, 0);  // .NET drains with CompleteAction(ctx, 0)
  Got g = get(*c, ActionQueue::receive);
  ASSERT_EQ(g.result, Result::ok);
  ASSERT_EQ(g.action, Action::indicate_receive_complete);
  EXPECT_EQ(g.type, BufferType::close);
  EXPECT_EQ(g.bufs[0].close_status.status, 1006);
  EXPECT_EQ(g.app, r1);
  c->complete_action(g.act, 0);
  EXPECT_EQ(get(*c, ActionQueue::all).action, Action::no_action);
}

TEST(Abort, AfterCloseStatesAndTwice) {
  auto s = open_handle(Role::server);
  ASSERT_EQ(s->send(BufferType::close, nullptr, nullptr), Result::ok);
  s->abort();
  EXPECT_EQ(s->state(), State::aborted);
  s->abort();
  EXPECT_EQ(s->state(), State::aborted);
  // The queued close completes.
  Got g = get(*s, ActionQueue::send);
  ASSERT_EQ(g.result, Result::ok);
  EXPECT_EQ(g.action, Action::indicate_send_complete);
}

}  // namespace
}  // namespace wsgate::ws
