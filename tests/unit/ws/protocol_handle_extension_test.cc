// The extension seam (ProtocolHandle::allow_rsv1, receive_message_rsv1, send with rsv1): what an
// extension above the engine (permessage-deflate in service/session) relies on, and that without
// the opt-in the engine keeps websocket.h's behaviour (RSV bits are a 1002 violation).
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <vector>

#include "tests/unit/ws/ws_test_util.h"

namespace wsgate::ws {
namespace {

using namespace test;

struct Indicated {
  BufferType type;
  Bytes data;
  bool rsv1;
};

struct Fed {
  std::vector<Indicated> indications;
  Result error = Result::ok;
  std::uint16_t close_code = 0;
};

// Feeds `wire` to an open client handle (zero-copy receives) and collects what it indicates.
Fed feed(ProtocolHandle& h, const Bytes& wire) {
  Fed out;
  std::size_t pos = 0;
  EXPECT_EQ(h.receive(nullptr, nullptr), Result::ok);
  for (int i = 0; i < 1000; ++i) {
    Buffer b[2];
    std::uint32_t n = 2;
    Action a;
    BufferType t;
    void* ctx = nullptr;
    const Result r = h.get_action(ActionQueue::receive, b, &n, &a, &t, nullptr, &ctx);
    if (r != Result::ok) {
      out.error = r;
      out.close_code = h.failure_close_code();
      return out;
    }
    if (a == Action::receive_from_network) {
      if (pos == wire.size()) return out;
      const std::size_t k = std::min<std::size_t>(b[0].data.length, wire.size() - pos);
      std::memcpy(b[0].data.buffer, wire.data() + pos, k);
      pos += k;
      h.complete_action(ctx, static_cast<std::uint32_t>(k));
    } else if (a == Action::indicate_receive_complete) {
      out.indications.push_back({t, Bytes(b[0].data.buffer, b[0].data.buffer + b[0].data.length),
                                 h.receive_message_rsv1()});
      h.complete_action(ctx, 0);
      EXPECT_EQ(h.receive(nullptr, nullptr), Result::ok);
    } else {
      return out;
    }
  }
  return out;
}

// The frames a client handle writes for what was queued.
Bytes drain_writes(ProtocolHandle& h) {
  Bytes wire;
  for (int i = 0; i < 1000; ++i) {
    Buffer b[2];
    std::uint32_t n = 2;
    Action a;
    BufferType t;
    void* ctx = nullptr;
    if (h.get_action(ActionQueue::send, b, &n, &a, &t, nullptr, &ctx) != Result::ok) break;
    if (a == Action::no_action) break;
    std::uint32_t total = 0;
    for (std::uint32_t j = 0; j < n && a == Action::send_to_network; ++j) {
      wire.insert(wire.end(), b[j].data.buffer, b[j].data.buffer + b[j].data.length);
      total += b[j].data.length;
    }
    h.complete_action(ctx, total);
  }
  return wire;
}

Bytes rsv1_frame(bool fin, std::uint8_t opcode, const Bytes& payload) {
  return frame(fin, opcode, payload, false, {}, 4);
}

TEST(ExtensionSeam, WithoutTheOptInRsv1IsStill1002) {
  auto h = open_handle(Role::client);
  const Fed f = feed(*h, rsv1_frame(true, 1, bytes_of("abc")));
  EXPECT_EQ(f.error, Result::invalid_protocol_format);
  EXPECT_EQ(f.close_code, 1002);
  EXPECT_TRUE(f.indications.empty());
}

TEST(ExtensionSeam, WithoutTheOptInSendWithRsv1IsInvalidArg) {
  auto h = open_handle(Role::client);
  Bytes payload = bytes_of("abc");
  Buffer b{};
  b.data = {payload.data(), 3};
  EXPECT_EQ(h->send(BufferType::utf8_message, &b, nullptr, true), Result::invalid_arg);
  EXPECT_EQ(h->send(BufferType::utf8_message, &b, nullptr, false), Result::ok);
}

TEST(ExtensionSeam, Rsv1OnAMessageIsReportedWithItAndItsBytesAreNotUtf8Checked) {
  auto h = open_handle(Role::client);
  h->allow_rsv1();
  // 0xff is not UTF-8: the bytes of an RSV1 message are the extension's, not text.
  const Bytes compressed{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xff};
  const Fed f = feed(*h, concat({rsv1_frame(true, 1, compressed), frame(true, 1, bytes_of("plain"))}));
  EXPECT_EQ(f.error, Result::ok);
  ASSERT_EQ(f.indications.size(), 2u);
  EXPECT_EQ(f.indications[0].type, BufferType::utf8_message);
  EXPECT_EQ(f.indications[0].data, compressed);
  EXPECT_TRUE(f.indications[0].rsv1);
  EXPECT_EQ(string_of(f.indications[1].data), "plain");
  EXPECT_FALSE(f.indications[1].rsv1);
}

TEST(ExtensionSeam, Rsv1HoldsForEveryFrameOfAFragmentedMessage) {
  auto h = open_handle(Role::client);
  h->allow_rsv1();
  const Fed f = feed(*h, concat({rsv1_frame(false, 2, {1, 2}), frame(true, 0, {3})}));
  EXPECT_EQ(f.error, Result::ok);
  ASSERT_EQ(f.indications.size(), 2u);
  EXPECT_EQ(f.indications[0].type, BufferType::binary_fragment);
  EXPECT_TRUE(f.indications[0].rsv1);
  EXPECT_EQ(f.indications[1].type, BufferType::binary_message);
  EXPECT_TRUE(f.indications[1].rsv1);
}

TEST(ExtensionSeam, TextWithoutRsv1IsStillUtf8Checked) {
  auto h = open_handle(Role::client);
  h->allow_rsv1();
  const Fed f = feed(*h, frame(true, 1, {0xff}));
  EXPECT_EQ(f.error, Result::invalid_protocol_format);
  EXPECT_EQ(f.close_code, 1007);
}

TEST(ExtensionSeam, Rsv1OnAContinuationOrControlFrameAndRsv2Rsv3Stay1002) {
  struct Case {
    const char* name;
    Bytes wire;
  };
  const std::vector<Case> cases = {
      {"continuation", concat({frame(false, 1, bytes_of("a")), rsv1_frame(true, 0, bytes_of("b"))})},
      {"ping", rsv1_frame(true, 9, {})},
      {"pong", rsv1_frame(true, 10, {})},
      {"close", rsv1_frame(true, 8, {})},
      {"RSV2", frame(true, 1, bytes_of("a"), false, {}, 2)},
      {"RSV3", frame(true, 1, bytes_of("a"), false, {}, 1)},
  };
  for (const Case& c : cases) {
    auto h = open_handle(Role::client);
    h->allow_rsv1();
    const Fed f = feed(*h, c.wire);
    EXPECT_EQ(f.error, Result::invalid_protocol_format) << c.name;
    EXPECT_EQ(f.close_code, 1002) << c.name;
  }
}

TEST(ExtensionSeam, SendSetsRsv1OnTheFirstFrameOfAMessageOnly) {
  auto h = open_handle(Role::client);
  h->allow_rsv1();
  Bytes one = bytes_of("one"), two = bytes_of("two"), three = bytes_of("three");
  Buffer b1{}, b2{}, b3{};
  b1.data = {one.data(), 3};
  b2.data = {two.data(), 3};
  b3.data = {three.data(), 5};
  ASSERT_EQ(h->send(BufferType::binary_fragment, &b1, nullptr, true), Result::ok);
  // Inside the open message RSV1 cannot be asked for: it belongs to the first frame.
  EXPECT_EQ(h->send(BufferType::binary_message, &b2, nullptr, true), Result::invalid_arg);
  ASSERT_EQ(h->send(BufferType::binary_message, &b2, nullptr), Result::ok);
  ASSERT_EQ(h->send(BufferType::utf8_message, &b3, nullptr, false), Result::ok);
  EXPECT_EQ(h->send(BufferType::ping_pong, nullptr, nullptr, true), Result::invalid_arg);
  const Bytes wire = drain_writes(*h);
  std::vector<FrameHeader> headers;
  for (std::size_t pos = 0; pos < wire.size();) {
    const ParseResult r = parse_frame_header(wire.data() + pos, wire.size() - pos, kRsv1);
    ASSERT_EQ(r.status, ParseStatus::complete);
    headers.push_back(r.header);
    pos += r.header.header_length + r.header.payload_length;
  }
  ASSERT_EQ(headers.size(), 3u);
  EXPECT_EQ(headers[0].rsv, kRsv1);
  EXPECT_EQ(headers[0].opcode, Opcode::binary);
  EXPECT_EQ(headers[1].rsv, 0);
  EXPECT_EQ(headers[1].opcode, Opcode::continuation);
  EXPECT_EQ(headers[2].rsv, 0);
}

TEST(ExtensionSeam, FrameParserAcceptsOnlyTheAllowedRsvBits) {
  const Bytes rsv1{0xC1, 0x00};
  EXPECT_EQ(parse_frame_header(rsv1.data(), rsv1.size()).status, ParseStatus::error);
  const ParseResult ok = parse_frame_header(rsv1.data(), rsv1.size(), kRsv1);
  ASSERT_EQ(ok.status, ParseStatus::complete);
  EXPECT_EQ(ok.header.rsv, kRsv1);
  const Bytes rsv12{0xE1, 0x00};
  EXPECT_EQ(parse_frame_header(rsv12.data(), rsv12.size(), kRsv1).status, ParseStatus::error);
  std::uint8_t out[kMaxFrameHeaderLength];
  write_frame_header(out, true, Opcode::text, false, {}, 5, true);
  EXPECT_EQ(out[0], 0xC1);
}

}  // namespace
}  // namespace wsgate::ws
