#include "service/net/http_response.h"

#include <gtest/gtest.h>

#include <string>

namespace wsgate::net {
namespace {

constexpr std::size_t kMax = 16384;

const std::string kUpgrade =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "\r\n";

HeadParse parse(const std::string& s, std::size_t max_bytes = kMax) {
  return parse_response_head(s.data(), s.size(), max_bytes);
}

void expect_error(const std::string& s, std::string_view needle, std::size_t max_bytes = kMax) {
  const HeadParse r = parse(s, max_bytes);
  EXPECT_EQ(r.status, HeadStatus::error) << s;
  EXPECT_NE(r.error.find(needle), std::string::npos) << "for " << s << " got: " << r.error;
}

void expect_upgrade_head(const HttpResponseHead& h) {
  EXPECT_EQ(h.status, 101);
  EXPECT_EQ(h.reason, "Switching Protocols");
  ASSERT_EQ(h.headers.size(), 3u);
  EXPECT_EQ(h.headers[0], (std::pair<std::string, std::string>{"Upgrade", "websocket"}));
  EXPECT_EQ(h.headers[1], (std::pair<std::string, std::string>{"Connection", "Upgrade"}));
  EXPECT_EQ(h.headers[2], (std::pair<std::string, std::string>{
                              "Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}));
}

TEST(HttpResponse, CompleteInOnePiece) {
  const HeadParse r = parse(kUpgrade);
  ASSERT_EQ(r.status, HeadStatus::complete) << r.error;
  EXPECT_EQ(r.consumed, kUpgrade.size());
  EXPECT_TRUE(r.error.empty());
  expect_upgrade_head(r.head);
}

TEST(HttpResponse, ByteByByteFeeding) {
  for (std::size_t n = 0; n < kUpgrade.size(); ++n) {
    const HeadParse r = parse_response_head(kUpgrade.data(), n, kMax);
    ASSERT_EQ(r.status, HeadStatus::need_more) << "after " << n << " bytes: " << r.error;
    EXPECT_EQ(r.consumed, 0u);
  }
  const HeadParse r = parse_response_head(kUpgrade.data(), kUpgrade.size(), kMax);
  ASSERT_EQ(r.status, HeadStatus::complete);
  EXPECT_EQ(r.consumed, kUpgrade.size());
  expect_upgrade_head(r.head);
}

TEST(HttpResponse, TrailingFrameBytesAreNotConsumed) {
  // A text frame "hi" right after the head, and a frame containing CRLFCRLF bytes.
  const std::string frames = std::string("\x81\x02hi", 4) + "\x82\x04\r\n\r\n";
  const std::string data = kUpgrade + frames;
  const HeadParse r = parse(data);
  ASSERT_EQ(r.status, HeadStatus::complete) << r.error;
  EXPECT_EQ(r.consumed, kUpgrade.size());
  EXPECT_EQ(data.substr(r.consumed), frames);
  expect_upgrade_head(r.head);
}

TEST(HttpResponse, TrailingBytesBeyondMaxBytesDoNotMatter) {
  const std::string data = kUpgrade + std::string(100000, 'x');
  const HeadParse r = parse(data, kUpgrade.size());  // head exactly max_bytes long
  ASSERT_EQ(r.status, HeadStatus::complete) << r.error;
  EXPECT_EQ(r.consumed, kUpgrade.size());
}

TEST(HttpResponse, OversizeHead) {
  expect_error(kUpgrade, "exceeds", kUpgrade.size() - 1);
  // Without a blank line yet: need_more below the limit, error at it.
  const std::string partial = "HTTP/1.1 101 OK\r\nX: " + std::string(100, 'a');
  EXPECT_EQ(parse(partial, partial.size() + 1).status, HeadStatus::need_more);
  ASSERT_EQ(partial.size(), 120u);
  expect_error(partial, "exceeds 120 bytes", partial.size());
  expect_error(partial, "exceeds", 10);
  // A peer streaming one endless header line.
  const std::string endless = "HTTP/1.1 101 OK\r\nX: " + std::string(kMax * 4, 'a');
  expect_error(endless, "exceeds");
  expect_error("", "exceeds", 0);
  EXPECT_EQ(parse_response_head(nullptr, 0, kMax).status, HeadStatus::need_more);
}

TEST(HttpResponse, TooManyHeaders) {
  auto head_with = [](std::size_t count) {
    std::string s = "HTTP/1.1 101 Switching Protocols\r\n";
    for (std::size_t i = 0; i < count; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
    return s + "\r\n";
  };
  const HeadParse ok = parse(head_with(kMaxResponseHeaders));
  ASSERT_EQ(ok.status, HeadStatus::complete) << ok.error;
  EXPECT_EQ(ok.head.headers.size(), kMaxResponseHeaders);
  expect_error(head_with(kMaxResponseHeaders + 1), "more than 100 header fields");
  // Reported before the head is complete.
  std::string unfinished = head_with(kMaxResponseHeaders + 1);
  unfinished.resize(unfinished.size() - 2);
  expect_error(unfinished, "more than 100");
}

TEST(HttpResponse, StatusLines) {
  HeadParse r = parse("HTTP/1.0 200 OK\r\n\r\n");
  ASSERT_EQ(r.status, HeadStatus::complete) << r.error;
  EXPECT_EQ(r.head.status, 200);
  EXPECT_EQ(r.head.reason, "OK");
  EXPECT_TRUE(r.head.headers.empty());

  r = parse("HTTP/1.1 101\r\n\r\n");  // no reason, no space
  ASSERT_EQ(r.status, HeadStatus::complete) << r.error;
  EXPECT_EQ(r.head.status, 101);
  EXPECT_EQ(r.head.reason, "");

  r = parse("HTTP/1.1 404 \r\n\r\n");  // empty reason after the space
  ASSERT_EQ(r.status, HeadStatus::complete) << r.error;
  EXPECT_EQ(r.head.status, 404);
  EXPECT_EQ(r.head.reason, "");

  r = parse("HTTP/1.1 503 Service  Unavailable\t(x) \xe9t\xe9\r\n\r\n");
  ASSERT_EQ(r.status, HeadStatus::complete) << r.error;
  EXPECT_EQ(r.head.status, 503);
  EXPECT_EQ(r.head.reason, "Service  Unavailable\t(x) \xe9t\xe9");

  EXPECT_EQ(parse("HTTP/1.1 100 Continue\r\n\r\n").head.status, 100);
  EXPECT_EQ(parse("HTTP/1.1 599 X\r\n\r\n").head.status, 599);
}

TEST(HttpResponse, BadStatusLines) {
  expect_error("HTTP/2 101 Switching Protocols\r\n\r\n", "unsupported HTTP version");
  expect_error("HTTP/2.0 101 Switching Protocols\r\n\r\n", "unsupported HTTP version");
  expect_error("HTTP/1.2 101 X\r\n\r\n", "unsupported HTTP version");
  expect_error("HTTP/1.1\r\n\r\n", "no status code");
  expect_error("HTTP/1.1 \r\n\r\n", "three-digit");
  expect_error("HTTP/1.1 Switching Protocols\r\n\r\n", "three-digit");
  expect_error("HTTP/1.1 10 OK\r\n\r\n", "three-digit");
  expect_error("HTTP/1.1 1011 OK\r\n\r\n", "three-digit");
  expect_error("HTTP/1.1 10a OK\r\n\r\n", "three-digit");
  expect_error("HTTP/1.1 -01 OK\r\n\r\n", "three-digit");
  expect_error("HTTP/1.1  101 OK\r\n\r\n", "three-digit");
  expect_error("HTTP/1.1 099 OK\r\n\r\n", "out of range 100..599");
  expect_error("HTTP/1.1 600 OK\r\n\r\n", "out of range 100..599");
  expect_error("http/1.1 101 OK\r\n\r\n", "does not start with \"HTTP/\"");
  expect_error("ICY 200 OK\r\n\r\n", "does not start with \"HTTP/\"");
  expect_error("SSH-2.0-OpenSSH_9.2\r\n\r\n", "does not start with");
  expect_error("\r\n\r\n", "empty status line");
  expect_error("\r\nHTTP/1.1 101 OK\r\n\r\n", "empty status line");
  expect_error(std::string("HTTP/1.1 101 O\0K\r\n\r\n", 19), "control character");
  expect_error("HTTP/1.1 101 O\x7fK\r\n\r\n", "control character");
  // Reported as soon as the status line is complete.
  expect_error("HTTP/2 101 Switching Protocols\r\n", "unsupported HTTP version");
}

TEST(HttpResponse, BadHeaderLines) {
  const std::string status = "HTTP/1.1 101 Switching Protocols\r\n";
  expect_error(status + "Upgrade websocket\r\n\r\n", "has no colon");
  expect_error(status + ": websocket\r\n\r\n", "empty name");
  expect_error(status + "Upgrade : websocket\r\n\r\n", "whitespace before the colon");
  expect_error(status + "Upgrade\t: websocket\r\n\r\n", "whitespace before the colon");
  expect_error(status + "Up grade: websocket\r\n\r\n", "invalid character");
  expect_error(status + "Up(grade): websocket\r\n\r\n", "invalid character");
  expect_error(status + "Upgr\xe4" + "de: websocket\r\n\r\n", "invalid character");
  expect_error(status + "X-A: a\r\n b\r\n\r\n", "obsolete line folding");
  expect_error(status + "X-A: a\r\n\tb\r\n\r\n", "obsolete line folding");
  expect_error(status + " X-A: a\r\n\r\n", "obsolete line folding");
  expect_error(status + std::string("X-A: a\0b\r\n\r\n", 12), "control character");
  expect_error(status + "X-A: a\x01" + "b\r\n\r\n", "control character");
  expect_error(status + "X-A: a\rb\r\n\r\n", "bare CR");
  expect_error(status + "X-A: a\r\r\n\r\n", "bare CR");
  // A bare CR is reported before the line is complete once the next byte shows it.
  expect_error(status + "X-A: a\rb", "bare CR");
  EXPECT_EQ(parse(status + "X-A: a\r").status, HeadStatus::need_more);
}

TEST(HttpResponse, HeaderValuesTrimmedAndDuplicatesPreserved) {
  const std::string s =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Set-Cookie: a=1\r\n"
      "X-Empty:\r\n"
      "X-Spaces: \t  padded value \t \r\n"
      "set-cookie:b=2\r\n"
      "Set-Cookie: a=1\r\n"
      "X-Obs: caf\xe9\r\n"
      "X-Colon: a:b: c\r\n"
      "\r\n";
  const HeadParse r = parse(s);
  ASSERT_EQ(r.status, HeadStatus::complete) << r.error;
  EXPECT_EQ(r.consumed, s.size());
  using H = std::pair<std::string, std::string>;
  const std::vector<H> expected = {
      {"Set-Cookie", "a=1"},          {"X-Empty", ""},       {"X-Spaces", "padded value"},
      {"set-cookie", "b=2"},          {"Set-Cookie", "a=1"}, {"X-Obs", "caf\xe9"},
      {"X-Colon", "a:b: c"}};
  EXPECT_EQ(r.head.headers, expected);
}

TEST(HttpResponse, TokenCharactersInNames) {
  const std::string s = "HTTP/1.1 101 X\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n";
  const HeadParse r = parse(s);
  ASSERT_EQ(r.status, HeadStatus::complete) << r.error;
  ASSERT_EQ(r.head.headers.size(), 1u);
  EXPECT_EQ(r.head.headers[0].first, "!#$%&'*+-.^_`|~09azAZ");
}

TEST(HttpResponse, BareLfLineEndsAccepted) {
  const std::string lf =
      "HTTP/1.1 101 Switching Protocols\n"
      "Upgrade: websocket\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\n"
      "\n";
  HeadParse r = parse(lf + "\x81");
  ASSERT_EQ(r.status, HeadStatus::complete) << r.error;
  EXPECT_EQ(r.consumed, lf.size());
  expect_upgrade_head(r.head);

  // Every mix of blank-line forms ends the head where it really ends.
  for (const std::string end : {"\r\n\r\n", "\n\n", "\r\n\n", "\n\r\n"}) {
    const std::string head = "HTTP/1.1 101 X\r\nA: b" + end;
    r = parse(head + "\r\n\r\nrest");
    ASSERT_EQ(r.status, HeadStatus::complete) << r.error;
    EXPECT_EQ(r.consumed, head.size());
    ASSERT_EQ(r.head.headers.size(), 1u);
    EXPECT_EQ(r.head.headers[0].second, "b");
  }
}

TEST(HttpResponse, ByteByByteFeedingWithBareLf) {
  const std::string s = "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n";
  for (std::size_t n = 0; n < s.size(); ++n) {
    ASSERT_EQ(parse_response_head(s.data(), n, kMax).status, HeadStatus::need_more) << n;
  }
  const HeadParse r = parse(s);
  ASSERT_EQ(r.status, HeadStatus::complete) << r.error;
  EXPECT_EQ(r.consumed, s.size());
}

TEST(HttpResponse, ErrorMessagesAreEscapedAndShort) {
  const std::string s = "HTTP/1.1 101 X\r\n" + std::string(5000, '\x01') + "\r\n\r\n";
  const HeadParse r = parse(s);
  ASSERT_EQ(r.status, HeadStatus::error);
  EXPECT_LT(r.error.size(), 400u);
  EXPECT_EQ(r.error.find('\x01'), std::string::npos);
}

}  // namespace
}  // namespace wsgate::net
