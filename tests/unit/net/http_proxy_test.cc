// The sans-I/O HTTP CONNECT proxy pieces (service/net/http_proxy.h): proxy URLs, NO_PROXY lists,
// the environment's variables, the selector's precedence, the CONNECT request and the parser of
// the proxy's answer, byte by byte.
#include "service/net/http_proxy.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace wsgate::net {
namespace {

constexpr std::size_t kMax = 16384;

WebSocketUrl url(const std::string& text) {
  UrlResult r = parse_websocket_url(text);
  EXPECT_TRUE(r.url) << text << ": " << r.error;
  return r.url ? *r.url : WebSocketUrl{};
}

ProxyEndpoint proxy(const std::string& text) {
  ProxyUrlResult r = parse_proxy_url(text);
  EXPECT_TRUE(r.proxy) << text << ": " << r.error;
  return r.proxy ? *r.proxy : ProxyEndpoint{};
}

void expect_url_error(const std::string& text, std::string_view needle) {
  ProxyUrlResult r = parse_proxy_url(text);
  EXPECT_FALSE(r.proxy) << text;
  EXPECT_NE(r.error.find(needle), std::string::npos) << text << " gave: " << r.error;
}

// --- proxy URLs ------------------------------------------------------------------------------

TEST(ProxyUrl, HostAndPort) {
  ProxyEndpoint p = proxy("http://Proxy.Example:3128");
  EXPECT_EQ(p.host, "proxy.example");
  EXPECT_EQ(p.port, 3128);
  EXPECT_TRUE(p.authorization.empty());
  EXPECT_FALSE(p.check_policy);
  EXPECT_EQ(p.authority(), "proxy.example:3128");
  EXPECT_EQ(proxy("http://10.0.0.1:8080/").authority(), "10.0.0.1:8080");
  EXPECT_EQ(proxy("http://[::1]:3128").authority(), "[::1]:3128");
  EXPECT_EQ(proxy("HTTP://h:1").port, 1);
}

TEST(ProxyUrl, DefaultPortIsCurls1080AndTheSchemeMayBeLeftOut) {
  EXPECT_EQ(proxy("http://proxy.example").port, kDefaultProxyPort);
  EXPECT_EQ(proxy("http://[::1]").port, 1080);
  EXPECT_EQ(proxy("proxy.example:3128").port, 3128);
  EXPECT_EQ(proxy("proxy.example").port, 1080);
  // An explicit 80 or 443 is kept (not mistaken for a scheme default).
  EXPECT_EQ(proxy("http://p:80").port, 80);
  EXPECT_EQ(proxy("http://p:443").port, 443);
}

TEST(ProxyUrl, CredentialsArePercentDecodedIntoBasic) {
  // base64("user:pass") = dXNlcjpwYXNz
  EXPECT_EQ(proxy("http://user:pass@p:3128").authorization, "Basic dXNlcjpwYXNz");
  // "us er" : "p@ss:w" -> base64("us er:p@ss:w") = dXMgZXI6cEBzczp3
  EXPECT_EQ(proxy("http://us%20er:p%40ss%3aw@p:3128").authorization, "Basic dXMgZXI6cEBzczp3");
  // A user without a password, and an empty user with one.
  EXPECT_EQ(proxy("http://user@p").authorization, "Basic dXNlcjo=");
  EXPECT_EQ(proxy("http://:pw@p").authorization, "Basic OnB3");
  // The last '@' ends the user info (an unencoded '@' in the password).
  EXPECT_EQ(proxy("http://user:p@ss@p").authorization, "Basic dXNlcjpwQHNz");
}

TEST(ProxyUrl, RefusesWhatItCannotUse) {
  expect_url_error("https://p:3128", "https:// proxies (TLS to the proxy) are not supported");
  expect_url_error("socks5://p:1080", "SOCKS proxies are not supported");
  expect_url_error("socks5h://p", "SOCKS");
  expect_url_error("socks4a://p", "SOCKS");
  expect_url_error("ftp://p", "scheme \"ftp\" is not supported");
  expect_url_error("http://p:3128/path", "no path, query or fragment");
  expect_url_error("http://p:3128?x", "no path");
  expect_url_error("http://", "no host");
  expect_url_error("http://user:pw@", "no host");
  expect_url_error("http://p:0", "port 0");
  expect_url_error("http://p:70000", "out of range");
  expect_url_error("http://p:", "empty port");
  expect_url_error("http://bad host", "");
  expect_url_error("http://u%zz:pw@p", "malformed %-escape");
  expect_url_error("http://u%4:pw@p", "malformed %-escape");
  expect_url_error("http://u%3Ax:pw@p", "user name has a ':'");
  expect_url_error("http://us er:pw@p", "user info has a space");
  expect_url_error(std::string("http://u\r\n:pw@p"), "control");
  expect_url_error("http://" + std::string(kMaxUrlLength, 'a'), "longer than");
}

TEST(ProxyUrl, ErrorsNeverShowTheCredentials) {
  for (const std::string& bad : {std::string("http://user:s3cret@p:99999"),
                                 std::string("http://user:s3cret@p:3128/x"),
                                 std::string("http://user:s3cret%zz@p")}) {
    ProxyUrlResult r = parse_proxy_url(bad);
    ASSERT_FALSE(r.proxy);
    EXPECT_EQ(r.error.find("s3cret"), std::string::npos) << r.error;
  }
}

// --- NO_PROXY --------------------------------------------------------------------------------

NoProxy list(const std::string& text) {
  std::string error;
  std::optional<NoProxy> l = NoProxy::parse(text, &error);
  EXPECT_TRUE(l) << text << ": " << error;
  return l ? *l : NoProxy{};
}

TEST(NoProxy, NamesMatchThemselvesAndSubdomains) {
  for (const char* entry : {"example.com", ".example.com", "EXAMPLE.com.", "..example.com"}) {
    NoProxy l = list(entry);
    EXPECT_TRUE(l.matches("example.com", 443)) << entry;
    EXPECT_TRUE(l.matches("a.example.com", 80)) << entry;
    EXPECT_TRUE(l.matches("a.b.example.com", 80)) << entry;
    EXPECT_FALSE(l.matches("badexample.com", 80)) << entry;
    EXPECT_FALSE(l.matches("example.com.evil", 80)) << entry;
    EXPECT_FALSE(l.matches("com", 80)) << entry;
  }
}

TEST(NoProxy, SeparatorsStarAndEmpty) {
  NoProxy l = list(" localhost, .svc ,internal.corp\tother ");
  EXPECT_TRUE(l.matches("localhost", 80));
  EXPECT_TRUE(l.matches("api.ns.svc", 80));
  EXPECT_TRUE(l.matches("internal.corp", 80));
  EXPECT_TRUE(l.matches("other", 80));
  EXPECT_FALSE(l.matches("example.com", 80));
  EXPECT_TRUE(list("*").matches("anything.example", 1));
  EXPECT_TRUE(list("a, *").matches("b", 1));
  EXPECT_TRUE(list("").empty());
  EXPECT_FALSE(list("").matches("localhost", 80));
  EXPECT_FALSE(list(",, ,").matches("localhost", 80));
  // "*" inside a name is not a wildcard (curl reads only a lone "*").
  EXPECT_FALSE(list("*.example.com").matches("a.example.com", 80));
}

TEST(NoProxy, AddressesAndCidrsMatchIpLiteralsOnly) {
  NoProxy l = list("127.0.0.1,10.0.0.0/8,::1,[fd00::]/8");
  EXPECT_TRUE(l.matches("127.0.0.1", 80));
  EXPECT_FALSE(l.matches("127.0.0.2", 80));
  EXPECT_TRUE(l.matches("10.1.2.3", 80));
  EXPECT_FALSE(l.matches("11.0.0.1", 80));
  EXPECT_TRUE(l.matches("::1", 80));
  EXPECT_TRUE(l.matches("0:0::1", 80));
  EXPECT_FALSE(l.matches("::2", 80));
  // Names are never resolved: "localhost" is not 127.0.0.1 here.
  EXPECT_FALSE(l.matches("localhost", 80));
  EXPECT_TRUE(list("fd00::/8").matches("fd12::5", 443));
  EXPECT_TRUE(list("0.0.0.0/0").matches("192.0.2.1", 443));
  EXPECT_FALSE(list("0.0.0.0/0").matches("::1", 443));  // families do not mix
  EXPECT_TRUE(list("192.168.1.128/25").matches("192.168.1.200", 1));
  EXPECT_FALSE(list("192.168.1.128/25").matches("192.168.1.100", 1));
}

TEST(NoProxy, Ports) {
  NoProxy l = list("example.com:8443,[::1]:9000,127.0.0.1:81");
  EXPECT_TRUE(l.matches("example.com", 8443));
  EXPECT_TRUE(l.matches("a.example.com", 8443));
  EXPECT_FALSE(l.matches("example.com", 443));
  EXPECT_TRUE(l.matches("::1", 9000));
  EXPECT_FALSE(l.matches("::1", 9001));
  EXPECT_TRUE(l.matches("127.0.0.1", 81));
  EXPECT_FALSE(l.matches("127.0.0.1", 80));
}

TEST(NoProxy, BadEntriesAreErrors) {
  for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "h:0",
                                 "h:65536", "h:", "h:x", "[::1", "[::1]x", "[::1]:"}) {
    std::string error;
    EXPECT_FALSE(NoProxy::parse(bad, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

// --- environment and selection ---------------------------------------------------------------

ProxyEnvironment environment(std::map<std::string, std::string> vars) {
  return read_proxy_environment([vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(ProxyEnvironment, CurlsConventions) {
  ProxyEnvironment e = environment({{"HTTP_PROXY", "http://upper:1"},
                                    {"HTTPS_PROXY", "http://s-upper:2"},
                                    {"ALL_PROXY", "http://all-upper:3"},
                                    {"NO_PROXY", "upper.example"}});
  EXPECT_EQ(e.http_proxy, "");  // upper-case HTTP_PROXY is ignored (httpoxy)
  EXPECT_EQ(e.https_proxy, "http://s-upper:2");
  EXPECT_EQ(e.https_proxy_from, "HTTPS_PROXY");
  EXPECT_EQ(e.all_proxy, "http://all-upper:3");
  EXPECT_EQ(e.no_proxy, "upper.example");

  e = environment({{"http_proxy", "http://lower:1"},
                   {"https_proxy", "http://s-lower:2"},
                   {"HTTPS_PROXY", "http://s-upper:2"},
                   {"all_proxy", "http://all-lower:3"},
                   {"ALL_PROXY", "http://all-upper:3"},
                   {"no_proxy", "lower.example"},
                   {"NO_PROXY", "upper.example"}});
  EXPECT_EQ(e.http_proxy, "http://lower:1");
  EXPECT_EQ(e.http_proxy_from, "http_proxy");
  EXPECT_EQ(e.https_proxy, "http://s-lower:2");
  EXPECT_EQ(e.all_proxy, "http://all-lower:3");
  EXPECT_EQ(e.no_proxy, "lower.example");

  // An empty value counts as unset.
  e = environment({{"https_proxy", ""}, {"HTTPS_PROXY", "http://s-upper:2"}});
  EXPECT_EQ(e.https_proxy, "http://s-upper:2");
}

std::optional<ProxySelector> selector(const ProxyRules& rules, const ProxyEnvironment& env,
                                      std::string* error = nullptr) {
  return ProxySelector::create(rules, env, error);
}

TEST(ProxySelector, EnvironmentBySchemeWithAllProxyFallback) {
  auto s = selector({}, environment({{"http_proxy", "http://plain:1"},
                                     {"HTTPS_PROXY", "http://secure:2"},
                                     {"NO_PROXY", "localhost,.internal"}}));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->select(url("ws://example.com/"))->authority(), "plain:1");
  EXPECT_EQ(s->select(url("wss://example.com/"))->authority(), "secure:2");
  EXPECT_FALSE(s->select(url("ws://localhost:8080/")));
  EXPECT_FALSE(s->select(url("wss://api.internal/")));
  EXPECT_EQ(s->describe(),
            "ws:// http://plain:1 (http_proxy), wss:// http://secure:2 (HTTPS_PROXY), no_proxy "
            "\"localhost,.internal\" (NO_PROXY)");

  s = selector({}, environment({{"ALL_PROXY", "http://all:3"}, {"https_proxy", "http://s:4"}}));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->select(url("ws://example.com/"))->authority(), "all:3");
  EXPECT_EQ(s->select(url("wss://example.com/"))->authority(), "s:4");

  s = selector({}, environment({{"HTTP_PROXY", "http://ignored:1"}}));
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->select(url("ws://example.com/")));
  EXPECT_EQ(s->describe(), "ws:// direct, wss:// direct");
}

TEST(ProxySelector, ConfigurationWinsAndCanIgnoreTheEnvironment) {
  const ProxyEnvironment env = environment(
      {{"https_proxy", "http://env:1"}, {"http_proxy", "http://env:1"},
       {"no_proxy", "example.com"}});
  ProxyRules rules;
  rules.url = "http://u:p@conf:3128";
  auto s = selector(rules, env);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->select(url("ws://other.example/"))->authority(), "conf:3128");
  EXPECT_EQ(s->select(url("wss://other.example/"))->authorization, "Basic dTpw");
  // The environment's no_proxy still applies to the configured proxy...
  EXPECT_FALSE(s->select(url("wss://example.com/")));
  EXPECT_EQ(s->describe().find("u:p"), std::string::npos);
  EXPECT_NE(s->describe().find("http://***@conf:3128 (proxy.url)"), std::string::npos);
  // ...unless proxy.no_proxy replaces it.
  rules.no_proxy = "other.example";
  s = selector(rules, env);
  EXPECT_TRUE(s->select(url("wss://example.com/")));
  EXPECT_FALSE(s->select(url("wss://other.example/")));

  ProxyRules off;
  off.from_environment = false;
  s = selector(off, env);
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->select(url("wss://other.example/")));
  EXPECT_FALSE(s->select(url("ws://other.example/")));
}

TEST(ProxySelector, ConfiguredAuthorizationHeader) {
  ProxyRules rules;
  rules.url = "http://conf:3128";
  rules.authorization = "Bearer t0ken";
  auto s = selector(rules, {});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->select(url("wss://x.example/"))->authorization, "Bearer t0ken");
  rules.url = "http://u:p@conf:3128";
  std::string error;
  EXPECT_FALSE(selector(rules, {}, &error));
  EXPECT_NE(error.find("proxy.authorization"), std::string::npos) << error;
}

TEST(ProxySelector, BadValuesNameTheirSource) {
  std::string error;
  ProxyRules rules;
  rules.url = "socks5://p";
  EXPECT_FALSE(selector(rules, {}, &error));
  EXPECT_TRUE(error.starts_with("proxy.url: ")) << error;
  EXPECT_FALSE(selector({}, environment({{"HTTPS_PROXY", "https://p"}}), &error));
  EXPECT_TRUE(error.starts_with("HTTPS_PROXY: ")) << error;
  EXPECT_FALSE(selector({}, environment({{"no_proxy", "10.0.0.0/40"}}), &error));
  EXPECT_TRUE(error.starts_with("no_proxy: ")) << error;
  rules = {};
  rules.no_proxy = "h:0";
  EXPECT_FALSE(selector(rules, {}, &error));
  EXPECT_TRUE(error.starts_with("proxy.no_proxy: ")) << error;
  // The environment is not read at all when switched off: its bad values do not matter.
  rules = {};
  rules.from_environment = false;
  EXPECT_TRUE(selector(rules, environment({{"HTTPS_PROXY", "https://p"}, {"no_proxy", "h:0"}})));
}

// --- the CONNECT exchange --------------------------------------------------------------------

TEST(ConnectRequest, Bytes) {
  EXPECT_EQ(build_connect_request(url("wss://echo.example/x?y"), proxy("http://p:3128")),
            "CONNECT echo.example:443 HTTP/1.1\r\nHost: echo.example:443\r\n\r\n");
  EXPECT_EQ(build_connect_request(url("ws://[::1]:8080/"), proxy("http://u:p@p:3128")),
            "CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n"
            "Proxy-Authorization: Basic dTpw\r\n\r\n");
}

ConnectReply reply(const std::string& bytes, std::size_t max = kMax) {
  return parse_connect_reply(bytes.data(), bytes.size(), max);
}

TEST(ConnectReply, EstablishedByteByByte) {
  const std::string ok = "HTTP/1.1 200 Connection established\r\nProxy-Agent: t\r\n\r\n";
  for (std::size_t n = 0; n < ok.size(); ++n) {
    EXPECT_EQ(reply(ok.substr(0, n)).kind, ConnectReply::Kind::need_more) << n;
  }
  ConnectReply r = reply(ok);
  EXPECT_EQ(r.kind, ConnectReply::Kind::established);
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(reply("HTTP/1.0 200\r\n\r\n").kind, ConnectReply::Kind::established);
  EXPECT_EQ(reply("HTTP/1.1 204 OK\n\n").kind, ConnectReply::Kind::established);
}

TEST(ConnectReply, RefusalsCarryTheStatus) {
  ConnectReply r = reply(
      "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n"
      "Content-Length: 5\r\n\r\nbody!");
  EXPECT_EQ(r.kind, ConnectReply::Kind::auth_required);
  EXPECT_EQ(r.http_status, 407);
  EXPECT_EQ(r.message, "407 \"Proxy Authentication Required\"");
  ASSERT_FALSE(r.headers.empty());
  EXPECT_EQ(r.headers[0].first, "Proxy-Authenticate");

  // tinyproxy answers wrong credentials with 401.
  EXPECT_EQ(reply("HTTP/1.1 401 Unauthorized\r\n\r\n").kind, ConnectReply::Kind::auth_required);

  r = reply("HTTP/1.1 403 Forbidden\r\n\r\n<html>...");
  EXPECT_EQ(r.kind, ConnectReply::Kind::refused);
  EXPECT_EQ(r.http_status, 403);
  EXPECT_EQ(r.message, "403 \"Forbidden\"");
  EXPECT_EQ(reply("HTTP/1.1 502 Bad Gateway\r\n\r\n").kind, ConnectReply::Kind::refused);
  EXPECT_EQ(reply("HTTP/1.1 101 Switching\r\n\r\n").kind, ConnectReply::Kind::refused);
  EXPECT_EQ(reply("HTTP/1.1 301 Moved\r\n\r\n").kind, ConnectReply::Kind::refused);
  // A control character in the reason is quoted, not passed on.
  r = reply("HTTP/1.1 403 For\x80\x1b" "bidden\r\n\r\n");
  EXPECT_NE(r.kind, ConnectReply::Kind::established);
  EXPECT_EQ(r.message.find('\x1b'), std::string::npos);
}

TEST(ConnectReply, BytesAfterA2xxHeadAreAnError) {
  ConnectReply r = reply("HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01");
  EXPECT_EQ(r.kind, ConnectReply::Kind::invalid);
  EXPECT_NE(r.message.find("3 bytes after its 200 answer"), std::string::npos) << r.message;
}

TEST(ConnectReply, InvalidAnswers) {
  auto expect_invalid = [](const std::string& bytes, std::string_view needle,
                           std::size_t max = kMax) {
    ConnectReply r = reply(bytes, max);
    EXPECT_EQ(r.kind, ConnectReply::Kind::invalid) << bytes;
    EXPECT_NE(r.message.find(needle), std::string::npos) << bytes << " gave: " << r.message;
  };
  expect_invalid("SSH-2.0-OpenSSH_9.2\r\n", "does not start with \"HTTP/\"");
  expect_invalid("HTTP/2 200\r\n\r\n", "unsupported HTTP version");
  expect_invalid("HTTP/1.1 2000 OK\r\n\r\n", "three-digit");
  expect_invalid("HTTP/1.1 OK\r\n\r\n", "three-digit");
  expect_invalid("HTTP/1.1 200 OK\r\nbad header\r\n\r\n", "no colon");
  expect_invalid("HTTP/1.1 200 OK\rX: y\r\n\r\n", "bare CR");
  expect_invalid("\r\n\r\n", "empty status line");
  // A head that never ends: bounded by max_bytes, whether it ends in a line or not.
  expect_invalid("HTTP/1.1 200 OK\r\n" + std::string(100, 'x'), "exceeds 64 bytes", 64);
  std::string huge = "HTTP/1.1 200 OK\r\n";
  while (huge.size() < 100) huge += "X-Pad: 0123456789\r\n";
  expect_invalid(huge, "exceeds 64 bytes", 64);
  // Missing the final CRLF: more is needed (the transport's deadline and bound end it).
  EXPECT_EQ(reply("HTTP/1.1 200 OK\r\nX: y\r\n").kind, ConnectReply::Kind::need_more);
  EXPECT_EQ(parse_connect_reply(nullptr, 0, kMax).kind, ConnectReply::Kind::need_more);
}

}  // namespace
}  // namespace wsgate::net
