// handshake.h: the RFC 6455 accept vector, keys, tokens and header helpers.
#include "service/ws/handshake.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace wsgate::ws {
namespace {

TEST(HandshakeHelpers, Rfc6455AcceptVector) {
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(HandshakeHelpers, DotnetFakeKeyAccept) {
  // base64(SHA-1("AAAAAAAAAAAAAAAAAAAAAA==" + GUID)); independent of the engine's own helper.
  EXPECT_EQ(accept_key("AAAAAAAAAAAAAAAAAAAAAA==").size(), 28u);
  EXPECT_NE(accept_key("AAAAAAAAAAAAAAAAAAAAAA=="), accept_key("AAAAAAAAAAAAAAAAAAAAAQ=="));
  EXPECT_EQ(kWebSocketGuid, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
}

TEST(HandshakeHelpers, ClientKeysAreValidAndFresh) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string k = make_client_key();
    EXPECT_EQ(k.size(), 24u);
    EXPECT_TRUE(is_valid_client_key(k)) << k;
    EXPECT_EQ(k.substr(22), "==");
    seen.insert(k);
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST(HandshakeHelpers, ValidClientKey) {
  EXPECT_TRUE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_TRUE(is_valid_client_key("AAAAAAAAAAAAAAAAAAAAAA=="));
  EXPECT_TRUE(is_valid_client_key("/+/+/+/+/+/+/+/+/+/+/w=="));
  EXPECT_FALSE(is_valid_client_key(""));
  EXPECT_FALSE(is_valid_client_key("AAAA"));
  EXPECT_FALSE(is_valid_client_key("AAAAAAAAAAAAAAAAAAAAAA="));     // 23 chars
  EXPECT_FALSE(is_valid_client_key("AAAAAAAAAAAAAAAAAAAAAAA="));    // 17 bytes
  EXPECT_FALSE(is_valid_client_key("AAAAAAAAAAAAAAAAAAAAAAAA"));    // 18 bytes, no padding
  EXPECT_FALSE(is_valid_client_key("AAAAAAAAAAAAAAAAAAAA===="));    // bad padding
  EXPECT_FALSE(is_valid_client_key("AAAAAAAAAAAAAAAAAAAAA*=="));    // not base64
  EXPECT_FALSE(is_valid_client_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="));  // 22 bytes
  EXPECT_FALSE(is_valid_client_key("AAAAAAAAAAAAAAAAAAAAAAA"));     // 23 chars
}

TEST(HandshakeHelpers, Iequals) {
  EXPECT_TRUE(iequals("Upgrade", "upgrade"));
  EXPECT_TRUE(iequals("SEC-WEBSOCKET-KEY", "Sec-WebSocket-Key"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("Upgrade", "Upgrades"));
  EXPECT_FALSE(iequals("a", "b"));
}

TEST(HandshakeHelpers, Trim) {
  EXPECT_EQ(trim("  a b \t"), "a b");
  EXPECT_EQ(trim("\t\t"), "");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim("x"), "x");
}

TEST(HandshakeHelpers, Token) {
  EXPECT_TRUE(is_token("chat"));
  EXPECT_TRUE(is_token("v2.chat-x_y~z!#$%&'*+^`|"));
  EXPECT_FALSE(is_token(""));
  EXPECT_FALSE(is_token("a b"));
  EXPECT_FALSE(is_token("a,b"));
  EXPECT_FALSE(is_token("a:b"));
  EXPECT_FALSE(is_token("a;b"));
  EXPECT_FALSE(is_token("\"a\""));
  EXPECT_FALSE(is_token("a\r"));
  EXPECT_FALSE(is_token("caf\xC3\xA9"));
}

TEST(HandshakeHelpers, SafeHeaderValue) {
  EXPECT_TRUE(is_safe_header_value("Upgrade"));
  EXPECT_TRUE(is_safe_header_value(""));
  EXPECT_TRUE(is_safe_header_value("a b\tc; d=e"));
  EXPECT_FALSE(is_safe_header_value("a\rb"));
  EXPECT_FALSE(is_safe_header_value("a\nb"));
  EXPECT_FALSE(is_safe_header_value(std::string_view("a\0b", 3)));
}

TEST(HandshakeHelpers, ListContainsToken) {
  EXPECT_TRUE(list_contains_token("Upgrade", "upgrade"));
  EXPECT_TRUE(list_contains_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(list_contains_token("keep-alive,upgrade ,x", "UPGRADE"));
  EXPECT_FALSE(list_contains_token("keep-alive", "upgrade"));
  EXPECT_FALSE(list_contains_token("upgrades", "upgrade"));
  EXPECT_FALSE(list_contains_token("", "upgrade"));
}

TEST(HandshakeHelpers, FindHeader) {
  std::string n1 = "Host", v1 = "h", n2 = "sec-websocket-key", v2 = "k1", n3 = "Sec-WebSocket-Key", v3 = "k2";
  std::vector<HttpHeader> hs = {
      {n1.data(), 4, v1.data(), 1},
      {n2.data(), static_cast<std::uint32_t>(n2.size()), v2.data(), 2},
  };
  bool dup = true;
  auto host = find_header(hs.data(), 2, "HOST", &dup);
  ASSERT_TRUE(host.has_value());
  EXPECT_EQ(*host, "h");
  EXPECT_FALSE(dup);
  EXPECT_FALSE(find_header(hs.data(), 2, "Upgrade").has_value());
  hs.push_back({n3.data(), static_cast<std::uint32_t>(n3.size()), v3.data(), 2});
  dup = false;
  find_header(hs.data(), 3, "Sec-WebSocket-Key", &dup);
  EXPECT_TRUE(dup);
  EXPECT_EQ(name_of(hs[0]), "Host");
  EXPECT_EQ(value_of(hs[1]), "k1");
}

}  // namespace
}  // namespace wsgate::ws
