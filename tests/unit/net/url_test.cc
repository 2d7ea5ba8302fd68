#include "service/net/url.h"

#include <gtest/gtest.h>

#include <string>

namespace wsgate::net {
namespace {

WebSocketUrl parse_ok(std::string_view text) {
  const UrlResult r = parse_websocket_url(text);
  EXPECT_TRUE(r.url.has_value()) << text << ": " << r.error;
  EXPECT_TRUE(r.error.empty()) << text;
  return r.url.value_or(WebSocketUrl{});
}

// Expects a rejection whose message contains `needle`.
void expect_error(std::string_view text, std::string_view needle) {
  const UrlResult r = parse_websocket_url(text);
  EXPECT_FALSE(r.url.has_value()) << "accepted: " << text;
  EXPECT_NE(r.error.find(needle), std::string::npos)
      << "for " << text << " got error: " << r.error;
}

TEST(Url, PlainWsDefaults) {
  const WebSocketUrl u = parse_ok("ws://example.com");
  EXPECT_FALSE(u.secure);
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.target, "/");
  EXPECT_EQ(u.host_header, "example.com");
}

TEST(Url, SecureDefaults) {
  const WebSocketUrl u = parse_ok("wss://example.com/chat");
  EXPECT_TRUE(u.secure);
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.target, "/chat");
  EXPECT_EQ(u.host_header, "example.com");
}

TEST(Url, ExplicitDefaultPortIsOmittedFromHostHeader) {
  EXPECT_EQ(parse_ok("ws://example.com:80/").host_header, "example.com");
  EXPECT_EQ(parse_ok("wss://example.com:443/").host_header, "example.com");
  // The other scheme's default is not a default here.
  const WebSocketUrl u = parse_ok("wss://example.com:80/");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.host_header, "example.com:80");
  EXPECT_EQ(parse_ok("ws://example.com:443/").host_header, "example.com:443");
}

TEST(Url, ExplicitPort) {
  const WebSocketUrl u = parse_ok("ws://example.com:8080/a/b?c=d&e");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.target, "/a/b?c=d&e");
  EXPECT_EQ(u.host_header, "example.com:8080");
  EXPECT_EQ(parse_ok("ws://h:1").port, 1);
  EXPECT_EQ(parse_ok("ws://h:65535").port, 65535);
  EXPECT_EQ(parse_ok("ws://h:00080").port, 80);  // leading zeros are still digits
}

TEST(Url, UppercaseSchemeAndHostAreNormalized) {
  const WebSocketUrl u = parse_ok("WSS://Example.COM:8443/Path?Q=X");
  EXPECT_TRUE(u.secure);
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.host_header, "example.com:8443");
  EXPECT_EQ(u.target, "/Path?Q=X");  // the path keeps its case
  EXPECT_FALSE(parse_ok("Ws://h").secure);
  EXPECT_TRUE(parse_ok("wSs://h").secure);
}

TEST(Url, QueryWithoutPathGetsSlash) {
  EXPECT_EQ(parse_ok("ws://h?x=1").target, "/?x=1");
  EXPECT_EQ(parse_ok("ws://h:81?x").target, "/?x");
  EXPECT_EQ(parse_ok("ws://h/").target, "/");
  EXPECT_EQ(parse_ok("ws://h/?").target, "/?");
}

TEST(Url, PathCharacters) {
  const WebSocketUrl u = parse_ok("ws://h/a%20b/~x_y-z.!$&'()*+,;=:@?q=/?%7F");
  EXPECT_EQ(u.target, "/a%20b/~x_y-z.!$&'()*+,;=:@?q=/?%7F");
}

TEST(Url, Ipv4Literal) {
  const WebSocketUrl u = parse_ok("ws://127.0.0.1:9000/x");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 9000);
  EXPECT_EQ(u.host_header, "127.0.0.1:9000");
  EXPECT_EQ(parse_ok("wss://10.1.2.3").host_header, "10.1.2.3");
}

TEST(Url, Ipv6Literal) {
  WebSocketUrl u = parse_ok("ws://[::1]/");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.host_header, "[::1]");

  u = parse_ok("wss://[2001:DB8::A]:8443/s?x");
  EXPECT_TRUE(u.secure);
  EXPECT_EQ(u.host, "2001:db8::a");
  EXPECT_EQ(u.port, 8443);
  EXPECT_EQ(u.target, "/s?x");
  EXPECT_EQ(u.host_header, "[2001:db8::a]:8443");

  u = parse_ok("wss://[::ffff:1.2.3.4]:443");
  EXPECT_EQ(u.host, "::ffff:1.2.3.4");
  EXPECT_EQ(u.host_header, "[::ffff:1.2.3.4]");
  EXPECT_EQ(u.target, "/");
  EXPECT_EQ(parse_ok("ws://[fe80::1]?q").target, "/?q");
}

TEST(Url, HostNames) {
  EXPECT_EQ(parse_ok("ws://a-b.c-d.example").host, "a-b.c-d.example");
  EXPECT_EQ(parse_ok("ws://localhost:1234").host_header, "localhost:1234");
  EXPECT_EQ(parse_ok("ws://123.example.com").host, "123.example.com");  // numeric first label
  EXPECT_EQ(parse_ok("ws://x.1a").host, "x.1a");                        // last label not numeric
  const std::string label63(63, 'a');
  EXPECT_EQ(parse_ok("ws://" + label63 + ".com").host, label63 + ".com");
  // 253 characters: four labels of 63 and one of 1, separated by dots.
  std::string host253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  ASSERT_EQ(host253.size(), 253u);
  EXPECT_EQ(parse_ok("ws://" + host253).host, host253);
}

TEST(Url, MaximumLength) {
  std::string text = "ws://h/";
  text += std::string(kMaxUrlLength - text.size(), 'a');
  ASSERT_EQ(text.size(), kMaxUrlLength);
  EXPECT_EQ(parse_ok(text).target.size(), kMaxUrlLength - 6);
  expect_error(text + "a", "longer than 8192");
}

TEST(Url, RejectsSchemes) {
  expect_error("", "empty URL");
  expect_error("example.com", "missing");
  expect_error("http://example.com/", "scheme \"http\" is not ws, wss or ws+unix");
  expect_error("https://example.com/", "is not ws, wss or ws+unix");
  expect_error("wss:/example.com", "missing");
  expect_error("wsss://example.com", "is not ws, wss or ws+unix");
  expect_error("://example.com", "is not ws, wss or ws+unix");
  expect_error(" ws://example.com", "is not ws, wss or ws+unix");
}

TEST(Url, RejectsUserInfo) {
  expect_error("ws://user@example.com/", "user information");
  expect_error("ws://user:pass@example.com:80/", "user information");
  expect_error("ws://@example.com/", "user information");
}

TEST(Url, RejectsBadHosts) {
  expect_error("ws://", "missing host");
  expect_error("ws:///path", "missing host");
  expect_error("ws://?q", "missing host");
  expect_error("ws://:80/", "missing host");
  expect_error("ws://exa_mple.com/", "not a letter, digit");
  expect_error("ws://exa%6dple.com/", "not a letter, digit");
  expect_error("ws://ex ample.com/", "spaces, control");
  expect_error("ws://ex\tample.com/", "spaces, control");
  expect_error(std::string_view("ws://ex\0ample.com/", 18), "spaces, control");
  expect_error("ws://ex\xc3\xa4mple.com/", "non-ASCII");
  expect_error("ws://a..b/", "empty label");
  expect_error("ws://.a/", "empty label");
  expect_error("ws://example.com./", "must not end with '.'");
  expect_error("ws://" + std::string(64, 'a') + ".com/", "label longer than 63");
  const std::string label63(63, 'a');
  expect_error("ws://" + label63 + "." + label63 + "." + label63 + "." + std::string(62, 'b'),
               "longer than 253");
}

TEST(Url, RejectsNumericHostsThatAreNotDottedQuads) {
  expect_error("ws://256.0.0.1/", "not a valid IPv4");
  expect_error("ws://127.1/", "not a valid IPv4");
  expect_error("ws://1.2.3.4.5/", "not a valid IPv4");
  expect_error("ws://2130706433/", "not a valid IPv4");
  expect_error("ws://0x7f.0.0.1/", "not a valid IPv4");
  expect_error("ws://127.0.0.0x1/", "not a valid IPv4");
  expect_error("ws://010.0.0.1/", "not a valid IPv4");  // octal in inet_aton
}

TEST(Url, RejectsBadIpv6) {
  expect_error("ws://::1/", "must be in brackets");
  expect_error("ws://2001:db8::1:80/", "must be in brackets");
  expect_error("ws://[::1/", "closing ']'");
  expect_error("ws://[]/", "empty IPv6");
  expect_error("ws://[::g]/", "not a valid IPv6");
  expect_error("ws://[1.2.3.4]/", "not a valid IPv6");
  expect_error("ws://[example.com]/", "not a valid IPv6");
  expect_error("ws://[fe80::1%25eth0]/", "zone identifiers");
  expect_error("ws://[::1]x/", "after the IPv6 address");
  expect_error("ws://[::1]]/", "after the IPv6 address");
  expect_error("ws://[::1]:/", "empty port");
}

TEST(Url, RejectsBadPorts) {
  expect_error("ws://h:/", "empty port");
  expect_error("ws://h:0/", "out of range");
  expect_error("ws://h:00/", "out of range");
  expect_error("ws://h:65536/", "out of range");
  expect_error("ws://h:99999999999999999999/", "out of range");
  expect_error("ws://h:-1/", "not a number");
  expect_error("ws://h:+80/", "not a number");
  expect_error("ws://h:8o/", "not a number");
  expect_error("ws://h:0x50/", "not a number");
  expect_error("ws://h:80:81/", "brackets");
  expect_error("ws://[::1]:65536/", "out of range");
  expect_error("ws://[::1]:a/", "not a number");
}

TEST(Url, RejectsBadPathOrQuery) {
  expect_error("ws://h/#frag", "fragments");
  expect_error("ws://h#frag", "fragments");
  expect_error("ws://h/a?b#c", "fragments");
  expect_error("ws://h:80#", "fragments");
  expect_error("ws://h/a b", "space");
  expect_error("ws://h/?a=b c", "space");
  expect_error("ws://h/a\tb", "control");
  expect_error("ws://h/a\r\nHost: evil", "control");
  expect_error(std::string_view("ws://h/a\0b", 10), "control");
  expect_error("ws://h/\x7f", "control");
  expect_error("ws://h/caf\xc3\xa9", "non-ASCII");
}

TEST(Url, ErrorMessagesQuoteSafely) {
  const UrlResult r = parse_websocket_url("ht\x01tp://x");
  ASSERT_FALSE(r.url);
  EXPECT_NE(r.error.find("\\x01"), std::string::npos) << r.error;
  EXPECT_EQ(r.error.find('\x01'), std::string::npos);
  // A long scheme is truncated in the message.
  const UrlResult r2 = parse_websocket_url(std::string(5000, 'x') + "://h");
  ASSERT_FALSE(r2.url);
  EXPECT_LT(r2.error.size(), 200u);
}

// ws+unix: the socket path runs to the first ':', the request target follows it.
TEST(UnixUrl, SocketPathAndRequestPath) {
  const WebSocketUrl u = parse_ok("ws+unix:///run/app/api.sock:/v1/events?x=1");
  EXPECT_EQ(u.unix_path, "/run/app/api.sock");
  EXPECT_EQ(u.target, "/v1/events?x=1");
  EXPECT_EQ(u.host, "");
  EXPECT_EQ(u.port, 0);
  EXPECT_FALSE(u.secure);
  EXPECT_EQ(u.host_header, "localhost");
  EXPECT_EQ(describe_endpoint(u), "unix:/run/app/api.sock");
  EXPECT_EQ(parse_ok("WS+UNIX:///a.sock:/x").unix_path, "/a.sock");
  // Further colons belong to the request path.
  EXPECT_EQ(parse_ok("ws+unix:///a.sock:/b:c").target, "/b:c");
}

TEST(UnixUrl, MissingRequestPathIsSlash) {
  EXPECT_EQ(parse_ok("ws+unix:///run/app.sock").target, "/");
  EXPECT_EQ(parse_ok("ws+unix:///run/app.sock:").target, "/");
  EXPECT_EQ(parse_ok("ws+unix:///run/app.sock?a=b").target, "/?a=b");
  EXPECT_EQ(parse_ok("ws+unix:///run/app.sock:?a=b").target, "/?a=b");
  EXPECT_EQ(parse_ok("ws+unix:///run/app.sock").unix_path, "/run/app.sock");
}

TEST(UnixUrl, BadForms) {
  expect_error("ws+unix://", "absolute socket path");
  expect_error("ws+unix://run/app.sock", "absolute socket path");  // a host, or a relative path
  expect_error("ws+unix://localhost/run/app.sock", "absolute socket path");
  expect_error("ws+unix:///", "names a directory");
  expect_error("ws+unix:///:/chat", "names a directory");
  expect_error("ws+unix:///run/:/chat", "names a directory");
  expect_error("ws+unix:///run//app.sock", "empty component");
  expect_error("ws+unix:///run/../etc/app.sock", "has a \".\" or \"..\" component");
  expect_error("ws+unix:///run/./app.sock", "has a \".\" or \"..\" component");
  expect_error("ws+unix:///run/app.sock:chat", "must start with '/'");
  expect_error("ws+unix:///run/app.sock:/chat#frag", "fragments");
  expect_error("ws+unix:///run/my app.sock", "space");
  expect_error(std::string_view("ws+unix:///run/a\0b.sock", 23), "control");
  expect_error("ws+unix:///run/\xc3\xa9.sock", "non-ASCII");
  expect_error("wss+unix:///run/app.sock:/chat", "wss+unix is not supported");
}

TEST(UnixUrl, PathLengthBoundIsSunPath) {
  // 107 bytes fit sockaddr_un::sun_path (108 with the NUL); 108 do not.
  const std::string fits = "/" + std::string(kMaxUnixPathLength - 1, 'a');
  EXPECT_EQ(parse_ok("ws+unix://" + fits + ":/x").unix_path, fits);
  expect_error("ws+unix://" + fits + "a:/x", "longer than a unix socket path may be (107 bytes)");
}

TEST(Url, DescribeEndpoint) {
  EXPECT_EQ(describe_endpoint(parse_ok("ws://example.com:8080/")), "example.com:8080");
  EXPECT_EQ(describe_endpoint(parse_ok("wss://[::1]/")), "[::1]:443");
}

}  // namespace
}  // namespace wsgate::net
