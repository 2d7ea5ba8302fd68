// PerMessageDeflate and the permessage-deflate negotiation (RFC 7692), byte by byte against the
// RFC's own examples (§7.2.3), plus the limits (a decompression bomb stops at the limit) and
// every way a server's answer can be refused.
#include "service/session/per_message_deflate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace wsgate::session {
namespace {

using Bytes = std::vector<std::uint8_t>;

std::string hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (!out.empty()) out += ' ';
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string deflated(PerMessageDeflate& p, const std::string& text) {
  std::string out;
  EXPECT_TRUE(p.deflate(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), &out));
  return out;
}

PerMessageDeflate::InflateStatus inflate(PerMessageDeflate& p, const Bytes& in, std::string* out,
                                         std::uint64_t limit = 1u << 20, bool final = true) {
  std::string error;
  return p.inflate(in.data(), in.size(), final, out, limit, &error);
}

const Bytes kHello{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};  // RFC 7692 §7.2.3.1
const Bytes kHelloAgain{0xf2, 0x00, 0x11, 0x00, 0x00};        // §7.2.3.2, with context

TEST(PerMessageDeflate, DeflatesHelloAsTheRfcDoes) {
  PerMessageDeflate p{DeflateAgreement{}};
  EXPECT_EQ(hex(deflated(p, "Hello")), "f2 48 cd c9 c9 07 00");
}

TEST(PerMessageDeflate, ContextTakeoverReusesTheWindow) {
  PerMessageDeflate p{DeflateAgreement{}};
  EXPECT_EQ(hex(deflated(p, "Hello")), "f2 48 cd c9 c9 07 00");
  EXPECT_EQ(hex(deflated(p, "Hello")), "f2 00 11 00 00");  // a back-reference into the last one
}

TEST(PerMessageDeflate, ClientNoContextTakeoverResetsTheCompressor) {
  DeflateAgreement a;
  a.client_no_context_takeover = true;
  PerMessageDeflate p{a};
  EXPECT_EQ(hex(deflated(p, "Hello")), "f2 48 cd c9 c9 07 00");
  EXPECT_EQ(hex(deflated(p, "Hello")), "f2 48 cd c9 c9 07 00");
}

TEST(PerMessageDeflate, InflatesTheRfcExamples) {
  PerMessageDeflate p{DeflateAgreement{}};
  std::string out;
  ASSERT_EQ(inflate(p, kHello, &out), PerMessageDeflate::InflateStatus::ok);
  EXPECT_EQ(out, "Hello");
  out.clear();
  ASSERT_EQ(inflate(p, kHelloAgain, &out), PerMessageDeflate::InflateStatus::ok);
  EXPECT_EQ(out, "Hello");
  // §7.2.3.3: a stored (uncompressed) block.
  PerMessageDeflate stored{DeflateAgreement{}};
  out.clear();
  ASSERT_EQ(inflate(stored, {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}, &out),
            PerMessageDeflate::InflateStatus::ok);
  EXPECT_EQ(out, "Hello");
  // §7.2.3.4: a block with BFINAL set; the next message starts a new stream.
  PerMessageDeflate bfinal{DeflateAgreement{}};
  out.clear();
  ASSERT_EQ(inflate(bfinal, {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}, &out),
            PerMessageDeflate::InflateStatus::ok);
  EXPECT_EQ(out, "Hello");
  out.clear();
  ASSERT_EQ(inflate(bfinal, kHello, &out), PerMessageDeflate::InflateStatus::ok);
  EXPECT_EQ(out, "Hello");
}

TEST(PerMessageDeflate, InflatesAFragmentedMessageByteByByte) {
  // §7.2.3.1's fragmented form: the pieces of one message, here one byte each.
  PerMessageDeflate p{DeflateAgreement{}};
  std::string out, error;
  for (std::size_t i = 0; i < kHello.size(); ++i) {
    ASSERT_EQ(p.inflate(&kHello[i], 1, i + 1 == kHello.size(), &out, 100, &error),
              PerMessageDeflate::InflateStatus::ok) << i << ": " << error;
  }
  EXPECT_EQ(out, "Hello");
}

TEST(PerMessageDeflate, ServerNoContextTakeoverResetsTheDecompressor) {
  DeflateAgreement a;
  a.server_no_context_takeover = true;
  PerMessageDeflate p{a};
  std::string out;
  ASSERT_EQ(inflate(p, kHello, &out), PerMessageDeflate::InflateStatus::ok);
  out.clear();
  // The second example refers back into the first message, which is forgotten now.
  EXPECT_EQ(inflate(p, kHelloAgain, &out), PerMessageDeflate::InflateStatus::corrupt);
}

TEST(PerMessageDeflate, RoundTripsLargeMessagesBothWays) {
  PerMessageDeflate sender{DeflateAgreement{}};
  PerMessageDeflate receiver{DeflateAgreement{}};
  for (int round = 0; round < 3; ++round) {
    std::string text;
    for (int i = 0; i < 50000; ++i) text += std::to_string(i * (round + 1)) + ",";
    const std::string wire = deflated(sender, text);
    EXPECT_LT(wire.size(), text.size() / 2);
    std::string out;
    ASSERT_EQ(inflate(receiver, Bytes(wire.begin(), wire.end()), &out, text.size()),
              PerMessageDeflate::InflateStatus::ok);
    EXPECT_EQ(out, text);
  }
}

TEST(PerMessageDeflate, ABombStopsAtTheLimit) {
  PerMessageDeflate sender{DeflateAgreement{}};
  const std::string zeros(8u << 20, '\0');
  const std::string wire = deflated(sender, zeros);
  EXPECT_LT(wire.size(), 16384u);  // 8 MiB of zeros in a few KiB
  PerMessageDeflate receiver{DeflateAgreement{}};
  std::string out;
  EXPECT_EQ(inflate(receiver, Bytes(wire.begin(), wire.end()), &out, 100000),
            PerMessageDeflate::InflateStatus::too_big);
  EXPECT_LE(out.size(), 100001u) << "never more than the limit plus one byte is decoded";
}

TEST(PerMessageDeflate, ExactlyTheLimitFits) {
  PerMessageDeflate p{DeflateAgreement{}};
  std::string out;
  EXPECT_EQ(inflate(p, kHello, &out, 5), PerMessageDeflate::InflateStatus::ok);
  PerMessageDeflate q{DeflateAgreement{}};
  out.clear();
  EXPECT_EQ(inflate(q, kHello, &out, 4), PerMessageDeflate::InflateStatus::too_big);
}

TEST(PerMessageDeflate, CorruptDataIsReported) {
  PerMessageDeflate p{DeflateAgreement{}};
  std::string out, error;
  const Bytes bad{0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(p.inflate(bad.data(), bad.size(), true, &out, 100, &error),
            PerMessageDeflate::InflateStatus::corrupt);
  EXPECT_FALSE(error.empty());
}

TEST(PerMessageDeflate, WindowBits8IsNeverUsedForDeflating) {
  DeflateAgreement a;
  a.client_max_window_bits = 8;
  PerMessageDeflate p{a};
  EXPECT_FALSE(p.can_compress());
  std::string out;
  EXPECT_FALSE(p.deflate(reinterpret_cast<const std::uint8_t*>("Hello"), 5, &out));
  a.client_max_window_bits = 9;
  PerMessageDeflate nine{a};
  EXPECT_EQ(hex(deflated(nine, "Hello")), "f2 48 cd c9 c9 07 00");
}

// --- negotiation ------------------------------------------------------------------------------

TEST(DeflateNegotiation, Offer) {
  CompressionSettings s;
  EXPECT_EQ(deflate_offer(s), "permessage-deflate; client_max_window_bits");
  s.client_no_context_takeover = true;
  s.server_no_context_takeover = true;
  s.server_max_window_bits = 10;
  s.client_max_window_bits = 12;
  EXPECT_EQ(deflate_offer(s),
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
            "server_max_window_bits=10; client_max_window_bits=12");
}

DeflateNegotiation answer(const std::string& value, const CompressionSettings& offered = {}) {
  return negotiate_deflate({{"Sec-WebSocket-Extensions", value}}, offered);
}

TEST(DeflateNegotiation, AcceptedAnswers) {
  DeflateNegotiation n = answer("permessage-deflate");
  ASSERT_TRUE(n.agreement) << n.error;
  EXPECT_EQ(n.element, "permessage-deflate");
  EXPECT_EQ(n.agreement->client_max_window_bits, 15u);
  EXPECT_FALSE(n.agreement->server_no_context_takeover);

  n = answer("permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
             "server_max_window_bits=10; client_max_window_bits=\"12\"");
  ASSERT_TRUE(n.agreement) << n.error;
  EXPECT_TRUE(n.agreement->server_no_context_takeover);
  EXPECT_TRUE(n.agreement->client_no_context_takeover);
  EXPECT_EQ(n.agreement->server_max_window_bits, 10u);
  EXPECT_EQ(n.agreement->client_max_window_bits, 12u);

  CompressionSettings offered;
  offered.client_max_window_bits = 11;
  offered.server_max_window_bits = 12;
  offered.server_no_context_takeover = true;
  n = answer("PerMessage-Deflate;server_max_window_bits=9;server_no_context_takeover", offered);
  ASSERT_TRUE(n.agreement) << n.error;
  EXPECT_EQ(n.agreement->client_max_window_bits, 11u) << "what we offered, when not answered";
  EXPECT_EQ(n.agreement->server_max_window_bits, 9u);

  n = negotiate_deflate({{"Content-Type", "x"}}, {});
  EXPECT_FALSE(n.agreement);
  EXPECT_TRUE(n.error.empty()) << "no element: the server declined";
}

TEST(DeflateNegotiation, RefusedAnswers) {
  CompressionSettings offered;
  offered.server_max_window_bits = 10;
  offered.client_max_window_bits = 12;
  offered.server_no_context_takeover = true;
  const std::string ok = "; server_max_window_bits=10; server_no_context_takeover";
  struct Case {
    std::string value;
    std::string why;
  };
  const std::vector<Case> cases = {
      {"permessage-deflate; x_unknown" + ok, "unknown parameter"},
      {"permessage-deflate; server_no_context_takeover" + ok, "appears twice"},
      {"permessage-deflate; client_no_context_takeover=1" + ok, "takes no value"},
      {"permessage-deflate; client_max_window_bits" + ok, "needs a value"},
      {"permessage-deflate; client_max_window_bits=7" + ok, "not a window size"},
      {"permessage-deflate; client_max_window_bits=16" + ok, "not a window size"},
      {"permessage-deflate; client_max_window_bits=010" + ok, "not a window size"},
      {"permessage-deflate; client_max_window_bits=13" + ok, "above the 12 offered"},
      {"permessage-deflate; server_max_window_bits=11; server_no_context_takeover",
       "above the 10 offered"},
      {"permessage-deflate; server_no_context_takeover", "server_max_window_bits was offered"},
      {"permessage-deflate; server_max_window_bits=10", "server_no_context_takeover was offered"},
      {"permessage-deflate" + ok + ", permessage-deflate" + ok, "accepted twice"},
      {"permessage-deflate; a=\"unterminated", "malformed"},
      {"permessage-deflate;; x", "malformed"},
  };
  for (const Case& c : cases) {
    const DeflateNegotiation n = answer(c.value, offered);
    EXPECT_FALSE(n.agreement) << c.value;
    EXPECT_NE(n.error.find(c.why), std::string::npos) << c.value << " -> " << n.error;
  }
}

}  // namespace
}  // namespace wsgate::session
