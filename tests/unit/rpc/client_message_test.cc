// Tests of service/rpc/client_message: validate_open() (every item named, limits, TLS material
// parsed before any connect) and ClientMessageTranslator (messages, fragments, close, after close).
#include "service/rpc/client_message.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace wsgate::rpc {
namespace {

using ::testing::HasSubstr;
using Kind = ClientMessageTranslator::Result::Kind;

v1::Open open_to(const std::string& url) {
  v1::Open o;
  o.set_url(url);
  return o;
}

std::string refusal(const v1::Open& o, const GatewayDefaults& d = GatewayDefaults{}) {
  OpenValidation v = validate_open(o, d);
  EXPECT_FALSE(v.settings.has_value());
  return v.refusal.message;
}

TEST(ValidateOpen, ValidOpenBecomesOptions) {
  v1::Open o = open_to("ws://Example.com:8080/path?q=1");
  o.add_subprotocols("chat");
  auto* h = o.add_headers();
  h->set_name("X-Trace");
  h->set_value("abc");
  o.mutable_limits()->set_max_message_bytes(1u << 30);  // above the ceiling: clamped
  o.mutable_timeouts()->set_connect_ms(1234);
  OpenValidation v = validate_open(o, GatewayDefaults{});
  ASSERT_TRUE(v.settings.has_value()) << v.refusal.message;
  EXPECT_EQ(v.settings->url.host, "example.com");
  EXPECT_EQ(v.settings->subprotocols, std::vector<std::string>{"chat"});
  EXPECT_EQ(v.settings->headers.size(), 1u);
  EXPECT_EQ(v.settings->max_message_bytes, GatewayDefaults{}.max_message_bytes_ceiling);
  EXPECT_EQ(v.settings->connect_timeout.count(), 1234);
  EXPECT_EQ(v.connect.tls, nullptr);  // ws://: no TLS options
}

TEST(ValidateOpen, ExtensionsTheGatewayDoesNotImplementAreRefused) {
  v1::Open o = open_to("ws://h/");
  o.add_extensions("x-ext; a=1; b=\"two words\"");
  EXPECT_THAT(refusal(o), HasSubstr("open.extensions[0]: \"x-ext\" is not implemented by the gateway"));
  o = open_to("ws://h/");
  o.add_extensions("permessage-deflate; client_max_window_bits");
  EXPECT_THAT(refusal(o), HasSubstr("open.extensions[0]: permessage-deflate is negotiated by the "
                                    "gateway itself: set open.compression.mode"));
}

TEST(ValidateOpen, CompressionOptionsOverTheDaemonDefaults) {
  GatewayDefaults d;
  d.compression.threshold_bytes = 64;
  d.compression.server_no_context_takeover = true;
  v1::Open o = open_to("ws://h/");
  OpenValidation v = validate_open(o, d);
  ASSERT_TRUE(v.settings) << v.refusal.message;
  EXPECT_FALSE(v.settings->compression.enabled) << "off unless configured or asked for";

  o.mutable_compression()->set_mode(v1::Compression::COMPRESSION_MODE_ON);
  o.mutable_compression()->set_client_no_context_takeover(true);
  o.mutable_compression()->set_server_max_window_bits(10);
  o.mutable_compression()->set_client_max_window_bits(9);
  v = validate_open(o, d);
  ASSERT_TRUE(v.settings) << v.refusal.message;
  const session::CompressionSettings& z = v.settings->compression;
  EXPECT_TRUE(z.enabled);
  EXPECT_TRUE(z.client_no_context_takeover);
  EXPECT_TRUE(z.server_no_context_takeover) << "the daemon's";
  EXPECT_EQ(z.server_max_window_bits, 10u);
  EXPECT_EQ(z.client_max_window_bits, 9u);
  EXPECT_EQ(z.threshold_bytes, 64u) << "0: the daemon's";

  d.compression.enabled = true;
  o = open_to("ws://h/");
  o.mutable_compression()->set_mode(v1::Compression::COMPRESSION_MODE_OFF);
  v = validate_open(o, d);
  ASSERT_TRUE(v.settings);
  EXPECT_FALSE(v.settings->compression.enabled);

  o = open_to("ws://h/");
  o.mutable_compression()->set_client_max_window_bits(8);
  EXPECT_THAT(refusal(o), HasSubstr("open.compression.client_max_window_bits: 8 is not 9..15"));
  o = open_to("ws://h/");
  o.mutable_compression()->set_server_max_window_bits(16);
  EXPECT_THAT(refusal(o), HasSubstr("open.compression.server_max_window_bits: 16 is not 8..15"));
  o = open_to("ws://h/");
  o.mutable_compression()->set_mode(static_cast<v1::Compression::Mode>(7));
  EXPECT_THAT(refusal(o), HasSubstr("open.compression.mode: 7"));
}

TEST(ValidateOpen, EveryBadItemIsNamedWithItsIndex) {
  v1::Open o = open_to("ws://h/");
  o.add_subprotocols("ok");
  o.add_subprotocols("not a token");
  EXPECT_THAT(refusal(o), HasSubstr("open.subprotocols[1]: \"not a token\" is not an HTTP token"));

  o = open_to("ws://h/");
  o.add_subprotocols("a");
  o.add_subprotocols("a");
  EXPECT_THAT(refusal(o), HasSubstr("open.subprotocols[1]"));

  for (const char* bad : {"a, b", "", ";x", "x;", "x; =1", "x; a=\"open", "x\r\n", "x; a=b c"}) {
    o = open_to("ws://h/");
    o.add_extensions(bad);
    EXPECT_THAT(refusal(o), HasSubstr("open.extensions[0]")) << bad;
  }

  o = open_to("ws://h/");
  o.add_headers()->set_name("X-Ok");
  auto* h = o.add_headers();
  h->set_name("Sec-WebSocket-Protocol");
  EXPECT_THAT(refusal(o), HasSubstr("open.headers[1].name: \"Sec-WebSocket-Protocol\" is set by"));

  o = open_to("ws://h/");
  h = o.add_headers();
  h->set_name("X-Ok");
  h->set_value(std::string("a\0b", 3));
  EXPECT_THAT(refusal(o), HasSubstr("open.headers[0].value: "));

  EXPECT_THAT(refusal(open_to("http://h/")), HasSubstr("open.url: "));
}

TEST(ValidateOpen, RequestHeadIsBounded) {
  GatewayDefaults d;
  d.max_request_headers = 3;
  d.max_request_header_bytes = 100;
  v1::Open o = open_to("ws://h/");
  for (int i = 0; i < 4; ++i) o.add_headers()->set_name("X-A");
  EXPECT_THAT(refusal(o, d), HasSubstr("4 extra headers, more than limits.max_request_headers (3)"));
  o = open_to("ws://h/");
  auto* h = o.add_headers();
  h->set_name("X-A");
  h->set_value(std::string(200, 'v'));
  EXPECT_THAT(refusal(o, d), HasSubstr("limits.max_request_header_bytes (100)"));
  o = open_to("ws://h/");
  o.add_subprotocols(std::string(120, 'p'));
  EXPECT_THAT(refusal(o, d), HasSubstr("limits.max_request_header_bytes"));
}

TEST(ValidateOpen, TlsMaterialIsParsedFirst) {
  v1::Open o = open_to("wss://h/");
  o.mutable_tls()->set_ca_pem("garbage");
  EXPECT_THAT(refusal(o), HasSubstr("open.tls: ca_pem holds no usable certificate"));
  o = open_to("wss://h/");
  o.mutable_tls()->set_client_key_pem("garbage");
  o.mutable_tls()->set_client_cert_pem("garbage");
  EXPECT_THAT(refusal(o), HasSubstr("open.tls: client_cert_pem"));
  o = open_to("ws://h/");  // checked even when the URL does not use TLS
  o.mutable_tls()->set_ca_pem("garbage");
  EXPECT_THAT(refusal(o), HasSubstr("open.tls"));
  o = open_to("wss://h/");
  o.mutable_tls()->set_ca_file("/etc/hostname");
  OpenValidation v = validate_open(o, GatewayDefaults{});
  EXPECT_EQ(v.refusal.code, grpc::StatusCode::PERMISSION_DENIED);
  OpenValidation ok = validate_open(open_to("wss://h/"), GatewayDefaults{});
  ASSERT_TRUE(ok.settings.has_value()) << ok.refusal.message;
  ASSERT_NE(ok.connect.tls, nullptr);
  EXPECT_NE(ok.connect.tls->context, nullptr);  // made now, reused at the TLS handshake
}

TEST(ValidateOpen, ProxyDefaultDirectAndSessionProxies) {
  GatewayDefaults d;
  net::ProxyRules rules;
  rules.url = "http://u:p@daemon-proxy:3128";
  rules.no_proxy = "internal.example";
  rules.from_environment = false;
  d.proxy = std::make_shared<const net::ProxySelector>(
      *net::ProxySelector::create(rules, {}, nullptr));

  // Empty: the daemon's proxy, minus its no_proxy list; the machine gets its name.
  OpenValidation v = validate_open(open_to("wss://echo.example/"), d);
  ASSERT_TRUE(v.settings) << v.refusal.message;
  ASSERT_TRUE(v.connect.proxy);
  EXPECT_EQ(v.connect.proxy->authority(), "daemon-proxy:3128");
  EXPECT_EQ(v.connect.proxy->authorization, "Basic dTpw");
  EXPECT_FALSE(v.connect.proxy->check_policy);  // the configuration's proxy is trusted
  EXPECT_EQ(v.settings->proxy_name, "daemon-proxy:3128");
  v = validate_open(open_to("wss://a.internal.example/"), d);
  ASSERT_TRUE(v.settings);
  EXPECT_FALSE(v.connect.proxy);
  EXPECT_TRUE(v.settings->proxy_name.empty());

  // "direct" (any case) opts out.
  v1::Open o = open_to("wss://echo.example/");
  for (const char* direct : {"direct", "DIRECT"}) {
    o.set_proxy(direct);
    v = validate_open(o, d);
    ASSERT_TRUE(v.settings);
    EXPECT_FALSE(v.connect.proxy) << direct;
  }

  // A proxy URL: refused unless the daemon allows session proxies, then policy-checked.
  o.set_proxy("http://session-proxy:8080");
  v = validate_open(o, d);
  ASSERT_FALSE(v.settings);
  EXPECT_EQ(v.refusal.code, grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(v.refusal.message, HasSubstr("proxy.allow_session_proxies"));
  d.allow_session_proxies = true;
  v = validate_open(o, d);
  ASSERT_TRUE(v.settings) << v.refusal.message;
  EXPECT_EQ(v.connect.proxy->authority(), "session-proxy:8080");
  EXPECT_TRUE(v.connect.proxy->check_policy);
  // no_proxy does not apply to a session's own proxy.
  o.set_url("wss://internal.example/");
  v = validate_open(o, d);
  ASSERT_TRUE(v.settings);
  EXPECT_TRUE(v.connect.proxy);
  // Without a daemon proxy, an empty Open.proxy is direct.
  v = validate_open(open_to("ws://h/"), GatewayDefaults{});
  ASSERT_TRUE(v.settings);
  EXPECT_FALSE(v.connect.proxy);
}

TEST(ValidateOpen, BadProxiesAreInvalidArgument) {
  GatewayDefaults d;
  d.allow_session_proxies = true;
  auto bad = [&d](const std::string& proxy) {
    v1::Open o = open_to("wss://h/");
    o.set_proxy(proxy);
    OpenValidation v = validate_open(o, d);
    EXPECT_FALSE(v.settings) << proxy;
    EXPECT_EQ(v.refusal.code, grpc::StatusCode::INVALID_ARGUMENT) << proxy;
    EXPECT_EQ(v.refusal.cause, "bad_request");
    EXPECT_THAT(v.refusal.message, HasSubstr("open.proxy: invalid proxy URL: "));
    return v.refusal.message;
  };
  EXPECT_THAT(bad("https://p:3128"), HasSubstr("https:// proxies (TLS to the proxy)"));
  EXPECT_THAT(bad("socks5://p:1080"), HasSubstr("SOCKS proxies are not supported"));
  EXPECT_THAT(bad("http://p:3128/x"), HasSubstr("no path"));
  EXPECT_THAT(bad("http://p:99999"), HasSubstr("out of range"));
  EXPECT_THAT(bad("http://u:s3cret@p:0"), ::testing::Not(HasSubstr("s3cret")));
  // Malformed beats disabled: a bad URL is INVALID_ARGUMENT whatever the switch says.
  d.allow_session_proxies = false;
  bad("socks5://p");
}

TEST(ExtensionOffer, Grammar) {
  EXPECT_TRUE(is_valid_extension_offer("permessage-deflate"));
  EXPECT_TRUE(is_valid_extension_offer("permessage-deflate; client_max_window_bits"));
  EXPECT_TRUE(is_valid_extension_offer("x;a=1;b=\"q\\\"s\""));
  EXPECT_FALSE(is_valid_extension_offer("a,b"));
  EXPECT_FALSE(is_valid_extension_offer("x; a=\"unterminated"));
  EXPECT_FALSE(is_valid_extension_offer(std::string("x\0y", 3)));
}

TEST(Translator, MessagesFragmentsAndClose) {
  ClientMessageTranslator t;
  v1::ClientMessage m;
  m.set_text("hi");
  auto r = t.translate(m);
  ASSERT_EQ(r.kind, Kind::send);
  EXPECT_EQ(r.message.kind, net::OutgoingMessage::Kind::text);
  EXPECT_EQ(r.message.data, "hi");

  m.Clear();
  m.mutable_fragment()->set_text(true);
  m.mutable_fragment()->set_data("\xc3");  // half of a two-byte sequence: fine mid-message
  r = t.translate(m);
  ASSERT_EQ(r.kind, Kind::send);
  EXPECT_EQ(r.message.kind, net::OutgoingMessage::Kind::text_fragment);
  m.Clear();
  m.set_binary("x");
  EXPECT_EQ(t.translate(m).kind, Kind::refuse);  // inside a fragmented message
  m.Clear();
  m.mutable_fragment()->set_data("\xa9");
  m.mutable_fragment()->set_final(true);
  r = t.translate(m);
  ASSERT_EQ(r.kind, Kind::send) << r.refusal.message;
  EXPECT_TRUE(r.message.final);

  m.Clear();
  m.mutable_close()->set_code(1000);
  m.mutable_close()->set_reason("bye");
  r = t.translate(m);
  ASSERT_EQ(r.kind, Kind::close);
  EXPECT_EQ(r.message.close_code, 1000);
  EXPECT_TRUE(t.close_sent());
}

TEST(Translator, AnythingAfterCloseIsFailedPrecondition) {
  ClientMessageTranslator t;
  v1::ClientMessage m;
  m.mutable_close();
  ASSERT_EQ(t.translate(m).kind, Kind::close);
  m.Clear();
  m.set_text("late");
  auto r = t.translate(m);
  ASSERT_EQ(r.kind, Kind::refuse);
  EXPECT_EQ(r.refusal.code, grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(r.refusal.cause, "after_close");
  m.Clear();
  m.mutable_ping();
  EXPECT_EQ(t.translate(m).refusal.code, grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(Translator, BadMessagesAreInvalidArgument) {
  v1::ClientMessage m;
  auto refused = [](v1::ClientMessage msg) {
    ClientMessageTranslator t;
    auto r = t.translate(msg);
    EXPECT_EQ(r.kind, Kind::refuse);
    EXPECT_EQ(r.refusal.code, grpc::StatusCode::INVALID_ARGUMENT);
    return r.refusal.message;
  };
  m.set_text("\xff");
  EXPECT_THAT(refused(m), HasSubstr("UTF-8"));
  m.Clear();
  m.mutable_close()->set_code(1005);
  EXPECT_THAT(refused(m), HasSubstr("close.code 1005"));
  m.Clear();
  m.mutable_close()->set_reason("no code");
  EXPECT_THAT(refused(m), HasSubstr("needs a close.code"));
  m.Clear();
  m.mutable_close()->set_code(1000);
  m.mutable_close()->set_reason(std::string(124, 'r'));
  EXPECT_THAT(refused(m), HasSubstr("longer than 123"));
  m.Clear();
  m.mutable_open();
  EXPECT_THAT(refused(m), HasSubstr("already open"));
  EXPECT_THAT(refused(v1::ClientMessage{}), HasSubstr("empty"));
}

// Sessions with the same TLS settings share one context (made once: the trust store is not
// loaded again per Open); different settings get their own.
TEST(ValidateOpen, TlsContextIsSharedPerConfiguration) {
  OpenValidation a = validate_open(open_to("wss://a.example/"), GatewayDefaults{});
  OpenValidation b = validate_open(open_to("wss://b.example/"), GatewayDefaults{});
  ASSERT_TRUE(a.settings && b.settings);
  ASSERT_TRUE(a.connect.tls && b.connect.tls);
  ASSERT_NE(a.connect.tls->context, nullptr);
  EXPECT_EQ(a.connect.tls->context, b.connect.tls->context);
  v1::Open strict = open_to("wss://a.example/");
  strict.mutable_tls()->set_min_version(v1::TLS_VERSION_1_3);
  OpenValidation c = validate_open(strict, GatewayDefaults{});
  ASSERT_TRUE(c.settings && c.connect.tls);
  EXPECT_NE(c.connect.tls->context, a.connect.tls->context);
}

}  // namespace
}  // namespace wsgate::rpc
