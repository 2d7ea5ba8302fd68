// Tests of service/log/redact: URL userinfo and query values, credential headers, the
// log.redact switch and the Sec-WebSocket-Protocol opt-in.
#include "service/log/redact.h"

#include <gtest/gtest.h>

namespace wsgate::log {
namespace {

class RedactTest : public ::testing::Test {
 protected:
  void TearDown() override { set_redaction({}); }
};

TEST_F(RedactTest, QueryValuesAreMaskedKeysKept) {
  EXPECT_EQ(redact_url("ws://host/feed?token=SECRET"), "ws://host/feed?token=***");
  EXPECT_EQ(redact_url("wss://h:8443/a/b?x=1&sig=abc&flag&=v&"), "wss://h:8443/a/b?x=***&sig=***&***&=***&");
  EXPECT_EQ(redact_url("ws://host/feed?"), "ws://host/feed?");
  EXPECT_EQ(redact_url("ws://host/feed"), "ws://host/feed");
  EXPECT_EQ(redact_url("ws://host"), "ws://host");
}

TEST_F(RedactTest, UserinfoAndFragmentAreMasked) {
  EXPECT_EQ(redact_url("wss://user:pw@host/x"), "wss://***@host/x");
  EXPECT_EQ(redact_url("wss://user:p@ss@host:1/x?a=b"), "wss://***@host:1/x?a=***");
  EXPECT_EQ(redact_url("ws://host/x#frag"), "ws://host/x#***");
  EXPECT_EQ(redact_url("ws://host/x?k=v#frag"), "ws://host/x?k=***#***");
  // '@' after the authority is not userinfo.
  EXPECT_EQ(redact_url("ws://host/a@b"), "ws://host/a@b");
}

// [proxy] url and Open.proxy carry credentials in their userinfo (the daemon itself logs only
// the proxy's host:port, and "***@" for credentials: net::ProxySelector::describe).
TEST_F(RedactTest, ProxyUrlCredentialsAreMasked) {
  EXPECT_EQ(redact_url("http://svc:s3cret@egress.corp:3128"), "http://***@egress.corp:3128");
  EXPECT_EQ(redact_url("http://svc:p%40ss@[::1]:3128/"), "http://***@[::1]:3128/");
  EXPECT_EQ(redact_header("proxy-authorization", "Basic c3ZjOnMzY3JldA=="), "***");
}

TEST_F(RedactTest, TextThatIsNoUrlStillLosesItsQuery) {
  EXPECT_EQ(redact_url("not a url?password=x"), "not a url?password=***");
  EXPECT_EQ(redact_url(""), "");
}

TEST_F(RedactTest, SensitiveHeaders) {
  for (const char* name : {"Authorization", "authorization", "COOKIE", "Set-Cookie", "Proxy-Authorization"}) {
    EXPECT_TRUE(is_sensitive_header(name)) << name;
    EXPECT_EQ(redact_header(name, "Bearer abc"), "***") << name;
  }
  EXPECT_EQ(redact_header("X-Request-Id", "42"), "42");
  EXPECT_EQ(redact_header("Sec-WebSocket-Protocol", "token.abc"), "token.abc");  // opt-in only
  set_redaction({true, true});
  EXPECT_EQ(redact_header("sec-websocket-protocol", "token.abc"), "***");
}

TEST_F(RedactTest, OffMeansVerbatim) {
  set_redaction({false, true});
  EXPECT_FALSE(redaction().enabled);
  EXPECT_EQ(redact_url("wss://u:p@h/x?token=S"), "wss://u:p@h/x?token=S");
  EXPECT_EQ(redact_header("Authorization", "Bearer abc"), "Bearer abc");
}

}  // namespace
}  // namespace wsgate::log
