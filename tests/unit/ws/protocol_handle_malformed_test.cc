// Peer violations: one row per RFC 6455 rule, fed as raw bytes to a client and/or server handle,
// with the expected Result and failure_close_code(); stickiness; and the valid edge cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/unit/ws/ws_test_util.h"

namespace wsgate::ws {
namespace {

using namespace test;

// What feeding `wire` to an open handle produced.
struct Outcome {
  Result error = Result::ok;     // the first GetAction error
  std::uint16_t close_code = 0;  // failure_close_code() after it
  std::vector<std::pair<BufferType, Bytes>> indications;
  std::vector<std::uint16_t> closes;
  Bytes written;  // what the handle sent (automatic pongs)
  std::unique_ptr<ProtocolHandle> h;
};

// Feeds `wire` in reads of at most `read_size` bytes (0: as much as offered), with app buffers of
// `app_len` bytes (0: zero-copy), until the handle fails or everything was consumed.
Outcome run(Role role, const Bytes& wire, std::uint32_t app_len = 0, std::size_t read_size = 0,
            const Props& props = Props()) {
  Outcome o;
  o.h = open_handle(role, props);
  ProtocolHandle& h = *o.h;
  Bytes app(app_len ? app_len : 1);
  auto post = [&] {
    if (app_len == 0) return h.receive(nullptr, nullptr);
    Buffer b{};
    b.data = {app.data(), app_len};
    return h.receive(&b, nullptr);
  };
  EXPECT_EQ(post(), Result::ok);
  std::size_t pos = 0;
  for (int i = 0; i < 1000000; ++i) {
    Buffer bufs[2];
    std::uint32_t n = 2;
    Action a;
    BufferType t;
    void* act = nullptr;
    Result r = h.get_action(ActionQueue::receive, bufs, &n, &a, &t, nullptr, &act);
    if (r != Result::ok) {
      o.error = r;
      o.close_code = h.failure_close_code();
      break;
    }
    if (a == Action::no_action) break;
    if (a == Action::receive_from_network) {
      if (pos == wire.size()) break;  // consumed everything without failing
      std::size_t want = std::min<std::size_t>(bufs[0].data.length, wire.size() - pos);
      if (read_size) want = std::min(want, read_size);
      std::copy(wire.begin() + static_cast<std::ptrdiff_t>(pos), wire.begin() + static_cast<std::ptrdiff_t>(pos + want),
                bufs[0].data.buffer);
      pos += want;
      h.complete_action(act, static_cast<std::uint32_t>(want));
    } else if (a == Action::send_to_network) {
      for (std::uint32_t k = 0; k < n; ++k) {
        o.written.insert(o.written.end(), bufs[k].data.buffer, bufs[k].data.buffer + bufs[k].data.length);
      }
      std::uint32_t total = 0;
      for (std::uint32_t k = 0; k < n; ++k) total += bufs[k].data.length;
      h.complete_action(act, total);
    } else if (a == Action::indicate_receive_complete) {
      if (t == BufferType::close) {
        o.closes.push_back(bufs[0].close_status.status);
        h.complete_action(act, 0);
        break;
      }
      o.indications.emplace_back(t, Bytes(bufs[0].data.buffer, bufs[0].data.buffer + bufs[0].data.length));
      h.complete_action(act, 0);
      EXPECT_EQ(post(), Result::ok);
    } else {
      ADD_FAILURE() << "unexpected action " << a;
      break;
    }
  }
  return o;
}

struct Row {
  std::string name;
  Bytes to_client;  // unmasked (as a server sends); empty: row not applicable to a client
  Bytes to_server;  // masked (as a client sends); empty: not applicable to a server
  Result result;
  std::uint16_t close_code;
};

Bytes u(std::uint8_t b0, std::uint8_t b1, Bytes rest = {}) {
  Bytes out{b0, b1};
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}
// Masked twin of a raw header+payload: sets the MASK bit and inserts key 0 (payload unchanged).
Bytes m(std::uint8_t b0, std::uint8_t b1, Bytes len_ext = {}, Bytes payload = {}) {
  Bytes out{b0, static_cast<std::uint8_t>(b1 | 0x80)};
  out.insert(out.end(), len_ext.begin(), len_ext.end());
  out.insert(out.end(), {0, 0, 0, 0});
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

const Result FMT = Result::invalid_protocol_format;
const Result OPR = Result::invalid_protocol_operation;

std::vector<Row> rows() {
  std::vector<Row> r;
  auto both = [&](std::string name, Bytes c, Bytes s, Result res, std::uint16_t code) {
    r.push_back({std::move(name), std::move(c), std::move(s), res, code});
  };
  both("RSV1", u(0xC1, 0x01, {'a'}), frame(true, 1, bytes_of("a"), true, {1, 2, 3, 4}, 4), FMT, 1002);
  both("RSV2", u(0xA1, 0x01, {'a'}), frame(true, 1, bytes_of("a"), true, {1, 2, 3, 4}, 2), FMT, 1002);
  both("RSV3", u(0x91, 0x01, {'a'}), frame(true, 1, bytes_of("a"), true, {1, 2, 3, 4}, 1), FMT, 1002);
  both("RSV on a ping", u(0xC9, 0x00), m(0xC9, 0x00), FMT, 1002);
  for (int op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    both("reserved opcode " + std::to_string(op), u(static_cast<std::uint8_t>(0x80 | op), 0x00),
         m(static_cast<std::uint8_t>(0x80 | op), 0x00), FMT, 1002);
  }
  both("16-bit length for 125", u(0x82, 0x7E, concat({{0x00, 0x7D}, Bytes(125, 'x')})),
       m(0x82, 0x7E, {0x00, 0x7D}, Bytes(125, 'x')), FMT, 1002);
  both("16-bit length for 0", u(0x82, 0x7E, {0x00, 0x00}), m(0x82, 0x7E, {0x00, 0x00}), FMT, 1002);
  both("64-bit length for 65535", u(0x82, 0x7F, {0, 0, 0, 0, 0, 0, 0xFF, 0xFF}),
       m(0x82, 0x7F, {0, 0, 0, 0, 0, 0, 0xFF, 0xFF}), FMT, 1002);
  both("64-bit length for 1", u(0x82, 0x7F, {0, 0, 0, 0, 0, 0, 0, 1, 'x'}), m(0x82, 0x7F, {0, 0, 0, 0, 0, 0, 0, 1}, {'x'}),
       FMT, 1002);
  both("64-bit length with the top bit", u(0x82, 0x7F, {0x80, 0, 0, 0, 0, 0, 0, 0}),
       m(0x82, 0x7F, {0x80, 0, 0, 0, 0, 0, 0, 0}), FMT, 1002);
  both("ping of 126 bytes", u(0x89, 0x7E, concat({{0x00, 0x7E}, Bytes(126, 'p')})),
       m(0x89, 0x7E, {0x00, 0x7E}, Bytes(126, 'p')), FMT, 1002);
  both("close of 126 bytes", u(0x88, 0x7E, concat({{0x00, 0x7E, 0x03, 0xE8}, Bytes(124, 'r')})),
       m(0x88, 0x7E, {0x00, 0x7E}, concat({{0x03, 0xE8}, Bytes(124, 'r')})), FMT, 1002);
  both("pong of 126 bytes", u(0x8A, 0x7E, concat({{0x00, 0x7E}, Bytes(126, 'p')})),
       m(0x8A, 0x7E, {0x00, 0x7E}, Bytes(126, 'p')), FMT, 1002);
  both("fragmented ping", u(0x09, 0x00), m(0x09, 0x00), FMT, 1002);
  both("fragmented close", u(0x08, 0x02, {0x03, 0xE8}), m(0x08, 0x02, {}, {0x03, 0xE8}), FMT, 1002);
  both("fragmented pong", u(0x0A, 0x00), m(0x0A, 0x00), FMT, 1002);
  r.push_back({"masked frame to a client", frame(true, 1, bytes_of("hi"), true), {}, FMT, 1002});
  r.push_back({"unmasked frame to a server", {}, frame(true, 1, bytes_of("hi")), FMT, 1002});
  r.push_back({"unmasked ping to a server", {}, frame(true, 9, {}), FMT, 1002});
  both("close payload of 1 byte", u(0x88, 0x01, {0x03}), m(0x88, 0x01, {}, {0x03}), FMT, 1002);
  for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
    Bytes p = close_payload(static_cast<std::uint16_t>(code), "x");
    both("close code " + std::to_string(code), frame(true, 8, p), frame(true, 8, p, true), FMT, 1002);
  }
  const Bytes overlong = {0xC0, 0xAF}, surrogate = {0xED, 0xA0, 0x80}, too_big = {0xF4, 0x90, 0x80, 0x80};
  both("text: overlong", frame(true, 1, overlong), frame(true, 1, overlong, true), FMT, 1007);
  both("text: overlong 3-byte", frame(true, 1, {0xE0, 0x80, 0xAF}), frame(true, 1, {0xE0, 0x80, 0xAF}, true), FMT,
       1007);
  both("text: surrogate", frame(true, 1, surrogate), frame(true, 1, surrogate, true), FMT, 1007);
  both("text: above U+10FFFF", frame(true, 1, too_big), frame(true, 1, too_big, true), FMT, 1007);
  both("text: 0xFF", frame(true, 1, {'a', 0xFF}), frame(true, 1, {'a', 0xFF}, true), FMT, 1007);
  both("text: truncated at message end", frame(true, 1, {'a', 0xE2, 0x82}), frame(true, 1, {'a', 0xE2, 0x82}, true),
       FMT, 1007);
  both("text: truncated across fragments at message end",
       concat({frame(false, 1, {'a', 0xF0, 0x9F}), frame(true, 0, {0x98})}),
       concat({frame(false, 1, {'a', 0xF0, 0x9F}, true), frame(true, 0, {0x98}, true)}), FMT, 1007);
  both("text: invalid split across two frames", concat({frame(false, 1, {0xF0, 0x9F}), frame(true, 0, {0x98, 0x28})}),
       concat({frame(false, 1, {0xF0, 0x9F}, true), frame(true, 0, {0x98, 0x28}, true)}), FMT, 1007);
  both("text: surrogate split across frames", concat({frame(false, 1, {'o', 'k', 0xED}), frame(true, 0, {0xA0, 0x80})}),
       concat({frame(false, 1, {'o', 'k', 0xED}, true), frame(true, 0, {0xA0, 0x80}, true)}), FMT, 1007);
  both("close reason: invalid UTF-8", frame(true, 8, {0x03, 0xE8, 'a', 0xFF}),
       frame(true, 8, {0x03, 0xE8, 'a', 0xFF}, true), FMT, 1007);
  both("close reason: truncated UTF-8", frame(true, 8, {0x03, 0xE8, 0xE2, 0x82}),
       frame(true, 8, {0x03, 0xE8, 0xE2, 0x82}, true), FMT, 1007);
  both("stray continuation", frame(true, 0, bytes_of("x")), frame(true, 0, bytes_of("x"), true), OPR, 1002);
  both("stray non-final continuation", frame(false, 0, bytes_of("x")), frame(false, 0, bytes_of("x"), true), OPR, 1002);
  both("text inside an open message", concat({frame(false, 1, bytes_of("a")), frame(true, 1, bytes_of("b"))}),
       concat({frame(false, 1, bytes_of("a"), true), frame(true, 1, bytes_of("b"), true)}), OPR, 1002);
  both("binary inside an open text message", concat({frame(false, 1, bytes_of("a")), frame(false, 2, bytes_of("b"))}),
       concat({frame(false, 1, bytes_of("a"), true), frame(false, 2, bytes_of("b"), true)}), OPR, 1002);
  return r;
}

class Malformed : public ::testing::TestWithParam<Row> {};

void check_row(Role role, const Row& row, std::uint32_t app_len, std::size_t read_size) {
  const Bytes& wire = role == Role::client ? row.to_client : row.to_server;
  if (wire.empty()) return;
  const char* who = role == Role::client ? "client" : "server";
  Outcome o = run(role, wire, app_len, read_size);
  EXPECT_EQ(o.error, row.result) << row.name << " to a " << who << " app_len=" << app_len << " read=" << read_size;
  EXPECT_EQ(o.close_code, row.close_code) << row.name << " to a " << who;
  EXPECT_TRUE(o.closes.empty()) << row.name << ": a violation is not indicated as a close";
  for (const auto& [t, data] : o.indications) {
    EXPECT_NE(t, BufferType::utf8_message) << row.name << ": no complete message before the failure";
  }
  if (o.error == Result::ok) return;
  // Sticky: GetAction on the receive side returns it again; Receive is refused; state unchanged.
  Buffer bufs[2];
  std::uint32_t n = 2;
  Action a;
  BufferType t;
  void* act = nullptr;
  EXPECT_EQ(o.h->get_action(ActionQueue::receive, bufs, &n, &a, &t, nullptr, &act), row.result) << row.name;
  n = 2;
  EXPECT_EQ(o.h->get_action(ActionQueue::receive, bufs, &n, &a, &t, nullptr, &act), row.result) << row.name;
  EXPECT_EQ(o.h->receive(nullptr, nullptr), Result::invalid_protocol_operation) << row.name;
  EXPECT_EQ(o.h->failure_close_code(), row.close_code);
  EXPECT_EQ(o.h->state(), State::open) << row.name;
  // The send side keeps working: the app sends its close with the failure code.
  Buffer close{};
  close.close_status.status = o.h->failure_close_code();
  ASSERT_EQ(o.h->send(BufferType::close, &close, nullptr), Result::ok) << row.name;
  n = 2;
  ASSERT_EQ(o.h->get_action(ActionQueue::send, bufs, &n, &a, &t, nullptr, &act), Result::ok) << row.name;
  ASSERT_EQ(a, Action::send_to_network) << row.name;
  EXPECT_EQ(t, BufferType::close);
  Bytes out;
  for (std::uint32_t k = 0; k < n; ++k) out.insert(out.end(), bufs[k].data.buffer, bufs[k].data.buffer + bufs[k].data.length);
  auto f = parse_whole_frame(out);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->payload, close_payload(row.close_code));
}

TEST_P(Malformed, ClientWhole) { check_row(Role::client, GetParam(), 0, 0); }
TEST_P(Malformed, ServerWhole) { check_row(Role::server, GetParam(), 0, 0); }
TEST_P(Malformed, ClientByteAtATimeWithOneByteBuffer) { check_row(Role::client, GetParam(), 1, 1); }
TEST_P(Malformed, ServerByteAtATimeWithSmallBuffer) { check_row(Role::server, GetParam(), 3, 1); }

std::string row_name(const ::testing::TestParamInfo<Row>& info) {
  std::string s = info.param.name;
  for (char& ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return s + "_" + std::to_string(info.index);
}

INSTANTIATE_TEST_SUITE_P(Rules, Malformed, ::testing::ValuesIn(rows()), row_name);

TEST(MalformedExtra, InvalidUtf8SplitAcrossChunksFailsFast) {
  // One 200-byte text frame whose invalid byte sits at 150: delivered in 10-byte chunks, the
  // failure comes before the whole frame is indicated.
  Bytes payload(200, 'a');
  payload[150] = 0xFF;
  Outcome o = run(Role::client, frame(true, 1, payload), 10);
  EXPECT_EQ(o.error, Result::invalid_protocol_format);
  EXPECT_EQ(o.close_code, 1007);
  std::size_t delivered = 0;
  for (const auto& [t, d] : o.indications) {
    EXPECT_EQ(t, BufferType::utf8_fragment);
    delivered += d.size();
  }
  EXPECT_LE(delivered, 150u);
}

TEST(MalformedExtra, FailsFastOnAHugeFrameHeader) {
  // RSV bit on a frame announcing 1 GiB: rejected from the header alone.
  Outcome o = run(Role::client, u(0xC2, 0x7F, {0, 0, 0, 0, 0x40, 0, 0, 0}));
  EXPECT_EQ(o.error, Result::invalid_protocol_format);
  EXPECT_EQ(o.close_code, 1002);
}

TEST(MalformedExtra, DisableMaskingServerAcceptsUnmasked) {
  Outcome o = run(Role::server, frame(true, 1, bytes_of("hi")), 0, 0, Props().disable_masking());
  EXPECT_EQ(o.error, Result::ok);
  ASSERT_EQ(o.indications.size(), 1u);
  EXPECT_EQ(string_of(o.indications[0].second), "hi");
}

TEST(MalformedExtra, DisableUtf8VerificationAcceptsBadText) {
  Outcome o = run(Role::client, frame(true, 1, {0xED, 0xA0, 0x80}), 0, 0, Props().disable_utf8());
  EXPECT_EQ(o.error, Result::ok);
  ASSERT_EQ(o.indications.size(), 1u);
  EXPECT_EQ(o.indications[0].first, BufferType::utf8_message);
  EXPECT_EQ(o.close_code, 0);
}

TEST(MalformedExtra, NoFailureCodeWithoutAFailure) {
  Outcome o = run(Role::client, frame(true, 2, bytes_of("fine")));
  EXPECT_EQ(o.error, Result::ok);
  EXPECT_EQ(o.close_code, 0);
  EXPECT_EQ(o.h->failure_close_code(), 0);
}

// ---- Valid edge cases -----------------------------------------------------------------------------

TEST(ValidEdges, CloseCodes) {
  for (int code : {1000, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4000, 4999}) {
    for (Role role : {Role::client, Role::server}) {
      Bytes p = close_payload(static_cast<std::uint16_t>(code), "r\xC3\xA9");
      Outcome o = run(role, frame(true, 8, p, role == Role::server));
      EXPECT_EQ(o.error, Result::ok) << code;
      ASSERT_EQ(o.closes.size(), 1u) << code;
      EXPECT_EQ(o.closes[0], code);
      EXPECT_EQ(o.h->state(), State::close_received);
    }
  }
}

TEST(ValidEdges, EmptyCloseIs1005) {
  Outcome o = run(Role::client, frame(true, 8, {}));
  ASSERT_EQ(o.closes.size(), 1u);
  EXPECT_EQ(o.closes[0], 1005);
}

TEST(ValidEdges, ControlFramesOf125Bytes) {
  const Bytes p125 = binary_payload(125);
  Outcome ping = run(Role::client, frame(true, 9, p125));
  EXPECT_EQ(ping.error, Result::ok);
  auto pong = parse_whole_frame(ping.written);
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->header.opcode, Opcode::pong);
  EXPECT_EQ(pong->payload, p125);
  Outcome pong_in = run(Role::server, frame(true, 0xA, p125, true));
  EXPECT_EQ(pong_in.error, Result::ok);
  ASSERT_EQ(pong_in.indications.size(), 1u);
  EXPECT_EQ(pong_in.indications[0].first, BufferType::ping_pong);
  EXPECT_EQ(pong_in.indications[0].second, p125);
  Outcome close = run(Role::client, frame(true, 8, close_payload(1000, std::string(123, 'r'))));
  EXPECT_EQ(close.error, Result::ok);
  ASSERT_EQ(close.closes.size(), 1u);
  EXPECT_EQ(close.closes[0], 1000);
}

TEST(ValidEdges, PingBetweenFragments) {
  for (Role role : {Role::client, Role::server}) {
    bool mk = role == Role::server;
    Outcome o = run(role, concat({frame(false, 1, bytes_of("ab"), mk), frame(true, 9, bytes_of("p"), mk),
                                  frame(false, 0, bytes_of("cd"), mk), frame(true, 0xA, bytes_of("q"), mk),
                                  frame(true, 0, bytes_of("ef"), mk)}));
    EXPECT_EQ(o.error, Result::ok);
    Bytes text;
    std::vector<BufferType> types;
    for (const auto& [t, d] : o.indications) {
      types.push_back(t);
      if (is_data_type(t)) text.insert(text.end(), d.begin(), d.end());
    }
    EXPECT_EQ(string_of(text), "abcdef");
    ASSERT_FALSE(types.empty());
    EXPECT_EQ(types.back(), BufferType::utf8_message);
    EXPECT_EQ(std::count(types.begin(), types.end(), BufferType::ping_pong), 1);
    auto pong = parse_whole_frame(o.written);
    ASSERT_TRUE(pong.has_value());
    EXPECT_EQ(string_of(pong->payload), "p");
  }
}

TEST(ValidEdges, FourByteUtf8SplitAtEveryPosition) {
  const Bytes emoji = {0xF0, 0x9F, 0x98, 0x80};
  for (std::size_t cut = 1; cut < 4; ++cut) {
    // Across two frames.
    Bytes a(emoji.begin(), emoji.begin() + static_cast<std::ptrdiff_t>(cut)),
        b(emoji.begin() + static_cast<std::ptrdiff_t>(cut), emoji.end());
    Outcome o = run(Role::client, concat({frame(false, 1, a), frame(true, 0, b)}));
    EXPECT_EQ(o.error, Result::ok) << cut;
    Bytes all;
    for (const auto& [t, d] : o.indications) all.insert(all.end(), d.begin(), d.end());
    EXPECT_EQ(all, emoji) << cut;
    // Across chunks of one frame (app buffer of `cut` bytes) and across reads.
    Outcome c = run(Role::client, frame(true, 1, concat({bytes_of("x"), emoji, bytes_of("y")})),
                    static_cast<std::uint32_t>(cut), cut);
    EXPECT_EQ(c.error, Result::ok) << cut;
    Bytes got;
    for (const auto& [t, d] : c.indications) got.insert(got.end(), d.begin(), d.end());
    EXPECT_EQ(got, concat({bytes_of("x"), emoji, bytes_of("y")})) << cut;
    ASSERT_FALSE(c.indications.empty());
    EXPECT_EQ(c.indications.back().first, BufferType::utf8_message);
  }
}

TEST(ValidEdges, LengthBoundaries) {
  for (std::size_t n : {std::size_t{125}, std::size_t{126}, std::size_t{65535}, std::size_t{65536}}) {
    const Bytes p = binary_payload(n);
    Outcome o = run(Role::server, frame(true, 2, p, true));
    EXPECT_EQ(o.error, Result::ok) << n;
    Bytes all;
    for (const auto& [t, d] : o.indications) all.insert(all.end(), d.begin(), d.end());
    EXPECT_TRUE(all == p) << n;
  }
}

// receive_frame_remaining(): the declared length is known once the header is parsed, before any
// payload byte arrives (the daemon closes 1009 on it), and counts down as chunks are indicated.
TEST(FrameRemaining, DeclaredLengthIsVisibleAfterTheHeaderAlone) {
  auto h = open_handle(Role::client);
  ASSERT_EQ(h->receive(nullptr, nullptr), Result::ok);
  EXPECT_EQ(h->receive_frame_remaining(), 0u);
  // A binary frame header declaring 2^40 bytes (64-bit length), and no payload.
  const Bytes header = u(0x82, 127, {0, 0, 0x01, 0, 0, 0, 0, 0});
  Buffer bufs[2];
  std::uint32_t n = 2;
  Action a;
  BufferType t;
  void* act = nullptr;
  ASSERT_EQ(h->get_action(ActionQueue::receive, bufs, &n, &a, &t, nullptr, &act), Result::ok);
  ASSERT_EQ(a, Action::receive_from_network);
  std::copy(header.begin(), header.end(), bufs[0].data.buffer);
  h->complete_action(act, static_cast<std::uint32_t>(header.size()));
  n = 2;
  ASSERT_EQ(h->get_action(ActionQueue::receive, bufs, &n, &a, &t, nullptr, &act), Result::ok);
  EXPECT_EQ(a, Action::receive_from_network);  // the payload is still to come
  EXPECT_EQ(h->receive_frame_remaining(), std::uint64_t{1} << 40);
}

TEST(FrameRemaining, CountsDownAndIsZeroForControlFrames) {
  auto h = open_handle(Role::client);
  ASSERT_EQ(h->receive(nullptr, nullptr), Result::ok);
  const Bytes ping = frame(true, 9, bytes_of("abc"));
  const Bytes text = frame(true, 1, bytes_of("0123456789"));
  Buffer bufs[2];
  std::uint32_t n = 2;
  Action a;
  BufferType t;
  void* act = nullptr;
  auto next = [&] {
    n = 2;
    return h->get_action(ActionQueue::receive, bufs, &n, &a, &t, nullptr, &act);
  };
  auto feed = [&](Bytes::const_iterator from, Bytes::const_iterator to) {
    ASSERT_EQ(a, Action::receive_from_network);
    std::copy(from, to, bufs[0].data.buffer);
    h->complete_action(act, static_cast<std::uint32_t>(to - from));
  };
  ASSERT_EQ(next(), Result::ok);
  // Half a ping: a control frame in progress never counts.
  feed(ping.begin(), ping.begin() + 3);
  ASSERT_EQ(next(), Result::ok);
  EXPECT_EQ(a, Action::receive_from_network);
  EXPECT_EQ(h->receive_frame_remaining(), 0u);
  // The rest of the ping, then the text frame's header and 4 of its 10 payload bytes.
  Bytes rest(ping.begin() + 3, ping.end());
  rest.insert(rest.end(), text.begin(), text.begin() + 2 + 4);
  feed(rest.begin(), rest.end());
  ASSERT_EQ(next(), Result::ok);
  if (a == Action::send_to_network) {  // the automatic pong
    std::uint32_t total = 0;
    for (std::uint32_t k = 0; k < n; ++k) total += bufs[k].data.length;
    h->complete_action(act, total);
    ASSERT_EQ(next(), Result::ok);
  }
  // A chunk is indicated only once the frame is whole; the declared 10 bytes are all pending.
  ASSERT_EQ(a, Action::receive_from_network);
  EXPECT_EQ(h->receive_frame_remaining(), 10u);
  feed(text.begin() + 6, text.end());
  ASSERT_EQ(next(), Result::ok);
  ASSERT_EQ(a, Action::indicate_receive_complete);
  EXPECT_EQ(bufs[0].data.length, 10u);
  EXPECT_EQ(h->receive_frame_remaining(), 0u);
  h->complete_action(act, 0);
}

}  // namespace
}  // namespace wsgate::ws
