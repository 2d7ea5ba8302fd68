// Handshake functions of ProtocolHandle: README "BeginClientHandshake", "EndClientHandshake",
// "BeginServerHandshake / EndServerHandshake".
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/unit/ws/ws_test_util.h"

namespace wsgate::ws {
namespace {

using test::Headers;
using test::make_handle;

struct ClientBegin {
  Result result;
  Headers headers;
};

ClientBegin begin_client(ProtocolHandle& c, std::vector<const char*> subprotocols = {},
                         std::vector<const char*> extensions = {}, Headers initial = {}) {
  HttpHeader* out = nullptr;
  std::uint32_t n = 0;
  Result r = c.begin_client_handshake(subprotocols.empty() ? nullptr : subprotocols.data(),
                                      static_cast<std::uint32_t>(subprotocols.size()),
                                      extensions.empty() ? nullptr : extensions.data(),
                                      static_cast<std::uint32_t>(extensions.size()), initial.data(),
                                      initial.size(), &out, &n);
  ClientBegin cb{r, {}};
  if (r == Result::ok) cb.headers = Headers::copy_of(out, n);
  return cb;
}

// A response a good server would send to `request`.
Headers good_response(const Headers& request) {
  return Headers{{"Connection", "Upgrade"},
                 {"Upgrade", "websocket"},
                 {"Sec-WebSocket-Accept", accept_key(*request.get("Sec-WebSocket-Key"))}};
}

Headers dotnet_fake_request() {
  return Headers{{"Connection", "Upgrade"},
                 {"Upgrade", "websocket"},
                 {"Sec-WebSocket-Version", "13"},
                 {"Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA=="},
                 {"Host", ""}};
}

Result begin_server(ProtocolHandle& s, Headers request, Headers* response = nullptr,
                    const char* subprotocol = nullptr, std::vector<const char*> extensions = {}) {
  HttpHeader* out = nullptr;
  std::uint32_t n = 0;
  Result r = s.begin_server_handshake(subprotocol, extensions.empty() ? nullptr : extensions.data(),
                                      static_cast<std::uint32_t>(extensions.size()), request.data(),
                                      request.size(), &out, &n);
  if (r == Result::ok && response) *response = Headers::copy_of(out, n);
  return r;
}

// ---- BeginClientHandshake ---------------------------------------------------------------------

TEST(BeginClientHandshake, ReturnsTheFourHeadersInOrder) {
  auto c = make_handle(Role::client);
  ClientBegin cb = begin_client(*c);
  ASSERT_EQ(cb.result, Result::ok);
  EXPECT_EQ(c->state(), State::handshake_started);
  const auto& items = cb.headers.items();
  ASSERT_EQ(items.size(), 4u);
  EXPECT_TRUE(iequals(items[0].first, "Connection"));
  EXPECT_EQ(items[0].second, "Upgrade");
  EXPECT_TRUE(iequals(items[1].first, "Upgrade"));
  EXPECT_EQ(items[1].second, "websocket");
  EXPECT_TRUE(iequals(items[2].first, "Sec-WebSocket-Key"));
  EXPECT_EQ(items[2].second.size(), 24u);
  EXPECT_TRUE(is_valid_client_key(items[2].second));
  EXPECT_TRUE(iequals(items[3].first, "Sec-WebSocket-Version"));
  EXPECT_EQ(items[3].second, "13");
}

TEST(BeginClientHandshake, SubprotocolsAndExtensionsAreJoined) {
  auto c = make_handle(Role::client);
  ClientBegin cb = begin_client(*c, {"chat", "superchat"},
                                {"permessage-deflate; client_max_window_bits", "x-foo"});
  ASSERT_EQ(cb.result, Result::ok);
  const auto& items = cb.headers.items();
  ASSERT_EQ(items.size(), 6u);
  EXPECT_TRUE(iequals(items[4].first, "Sec-WebSocket-Protocol"));
  EXPECT_EQ(items[4].second, "chat, superchat");
  EXPECT_TRUE(iequals(items[5].first, "Sec-WebSocket-Extensions"));
  EXPECT_EQ(items[5].second, "permessage-deflate; client_max_window_bits, x-foo");
}

TEST(BeginClientHandshake, KeyIsNewPerHandle) {
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) {
    auto c = make_handle(Role::client);
    ClientBegin cb = begin_client(*c);
    ASSERT_EQ(cb.result, Result::ok);
    keys.push_back(*cb.headers.get("Sec-WebSocket-Key"));
  }
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(std::unique(keys.begin(), keys.end()), keys.end());
}

TEST(BeginClientHandshake, ReturnedListHoldsOnlyItsOwnHeaders) {
  auto c = make_handle(Role::client);
  Headers initial{{"Host", "example.com"}, {"Connection", "keep-alive"}, {"User-Agent", "x"},
                  {"Sec-WebSocket-Version", "8"}};
  ClientBegin cb = begin_client(*c, {}, {}, initial);
  ASSERT_EQ(cb.result, Result::ok);
  EXPECT_EQ(cb.headers.size(), 4u);
  EXPECT_EQ(cb.headers.count("Host"), 0u);
  EXPECT_EQ(cb.headers.count("User-Agent"), 0u);
  EXPECT_EQ(cb.headers.get("Connection"), "Upgrade");
  EXPECT_EQ(cb.headers.get("Sec-WebSocket-Version"), "13");
}

TEST(BeginClientHandshake, HostIsNotEnforced) {
  auto c = make_handle(Role::client);
  EXPECT_EQ(begin_client(*c, {}, {}, Headers{{"Connection", "Upgrade"}, {"Upgrade", "websocket"}}).result,
            Result::ok);
  auto d = make_handle(Role::client);
  EXPECT_EQ(begin_client(*d).result, Result::ok);
}

TEST(MergeRequestHeaders, ReplacesSameNamedHeadersInPlaceThenAppends) {
  Headers initial{{"Host", "example.com"}, {"connection", "keep-alive"}, {"sec-websocket-version", "8"},
                  {"User-Agent", "ua"}};
  Headers additional{{"Connection", "Upgrade"},
                     {"Upgrade", "websocket"},
                     {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                     {"Sec-WebSocket-Version", "13"}};
  auto merged = merge_request_headers(initial.data(), initial.size(), additional.data(), additional.size());
  ASSERT_EQ(merged.size(), 6u);
  EXPECT_EQ(merged[0].first, "Host");
  EXPECT_EQ(merged[0].second, "example.com");
  EXPECT_TRUE(iequals(merged[1].first, "Connection"));
  EXPECT_EQ(merged[1].second, "Upgrade");
  EXPECT_TRUE(iequals(merged[2].first, "Sec-WebSocket-Version"));
  EXPECT_EQ(merged[2].second, "13");
  EXPECT_EQ(merged[3].first, "User-Agent");
  EXPECT_TRUE(iequals(merged[4].first, "Upgrade"));
  EXPECT_EQ(merged[4].second, "websocket");
  EXPECT_TRUE(iequals(merged[5].first, "Sec-WebSocket-Key"));
  EXPECT_EQ(merged[5].second, "dGhlIHNhbXBsZSBub25jZQ==");
}

TEST(MergeRequestHeaders, EmptyInputs) {
  Headers additional{{"Upgrade", "websocket"}};
  auto a = merge_request_headers(nullptr, 0, additional.data(), additional.size());
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].second, "websocket");
  Headers initial{{"Host", "h"}};
  auto b = merge_request_headers(initial.data(), initial.size(), nullptr, 0);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].first, "Host");
}

TEST(BeginClientHandshake, InvalidArguments) {
  const char* good[] = {"chat"};
  const char* null_element[] = {"chat", nullptr};
  HttpHeader* out = nullptr;
  std::uint32_t n = 0;
  {
    auto c = make_handle(Role::client);
    EXPECT_EQ(c->begin_client_handshake(nullptr, 0, nullptr, 0, nullptr, 0, nullptr, &n), Result::invalid_arg);
    EXPECT_EQ(c->begin_client_handshake(nullptr, 0, nullptr, 0, nullptr, 0, &out, nullptr), Result::invalid_arg);
    EXPECT_EQ(c->begin_client_handshake(nullptr, 1, nullptr, 0, nullptr, 0, &out, &n), Result::invalid_arg);
    EXPECT_EQ(c->begin_client_handshake(nullptr, 0, nullptr, 1, nullptr, 0, &out, &n), Result::invalid_arg);
    EXPECT_EQ(c->begin_client_handshake(nullptr, 0, nullptr, 0, nullptr, 1, &out, &n), Result::invalid_arg);
    EXPECT_EQ(c->begin_client_handshake(null_element, 2, nullptr, 0, nullptr, 0, &out, &n), Result::invalid_arg);
    EXPECT_EQ(c->begin_client_handshake(nullptr, 0, null_element, 2, nullptr, 0, &out, &n), Result::invalid_arg);
    // E_INVALIDARG leaves the handle as it was: a correct call still works.
    EXPECT_EQ(c->state(), State::created);
    EXPECT_EQ(c->begin_client_handshake(good, 1, nullptr, 0, nullptr, 0, &out, &n), Result::ok);
  }
  for (const char* bad : {"", "a b", "a,b", "chat;x", "a:b", "caf\xC3\xA9", "a\tb"}) {
    auto c = make_handle(Role::client);
    EXPECT_EQ(begin_client(*c, {bad}).result, Result::invalid_arg) << "subprotocol '" << bad << "'";
  }
  for (const char* bad : {"", "x\r\ny: z", "x\ny", "x\r"}) {
    auto c = make_handle(Role::client);
    EXPECT_EQ(begin_client(*c, {}, {bad}).result, Result::invalid_arg) << "extension";
  }
  {
    auto c = make_handle(Role::client);  // extension parameters are allowed
    EXPECT_EQ(begin_client(*c, {}, {"permessage-deflate; client_max_window_bits=10"}).result, Result::ok);
  }
}

TEST(BeginClientHandshake, InvalidInitialHeaders) {
  const std::vector<Headers> bad = {
      Headers{{"Host:", "example.com"}},
      Headers{{"Ho st", "example.com"}},
      Headers{{"", "x"}},
      Headers{{"X-A", "a\r\nX-B: b"}},
      Headers{{"X-A", "a\nb"}},
      Headers{{"X-A", std::string("a\0b", 3)}},
  };
  for (Headers h : bad) {
    auto c = make_handle(Role::client);
    EXPECT_EQ(begin_client(*c, {}, {}, h).result, Result::invalid_arg) << h.items()[0].first;
    EXPECT_EQ(c->state(), State::created);
  }
}

TEST(BeginClientHandshake, WrongRoleOrState) {
  auto s = make_handle(Role::server);
  EXPECT_EQ(begin_client(*s).result, Result::invalid_operation);
  auto c = make_handle(Role::client);
  ASSERT_EQ(begin_client(*c).result, Result::ok);
  EXPECT_EQ(begin_client(*c).result, Result::invalid_operation);
  EXPECT_EQ(c->state(), State::handshake_started);
}

// ---- EndClientHandshake -----------------------------------------------------------------------

struct Started {
  std::unique_ptr<ProtocolHandle> c;
  Headers request;
};
Started started(std::vector<const char*> subprotocols = {}, std::vector<const char*> extensions = {}) {
  Started s{make_handle(Role::client), {}};
  ClientBegin cb = begin_client(*s.c, subprotocols, extensions);
  EXPECT_EQ(cb.result, Result::ok);
  s.request = cb.headers;
  return s;
}

TEST(EndClientHandshake, DotnetMinimalResponseWithNullOutputs) {
  Started s = started();
  Headers resp = good_response(s.request);
  EXPECT_EQ(s.c->end_client_handshake(resp.data(), resp.size(), nullptr, nullptr, nullptr), Result::ok);
  EXPECT_EQ(s.c->state(), State::open);
}

TEST(EndClientHandshake, HeaderMatchingIsCaseInsensitive) {
  Started s = started();
  Headers resp{{"upgrade", "WebSocket"},
               {"CONNECTION", "keep-alive, UPGRADE"},
               {"sec-websocket-accept", accept_key(*s.request.get("Sec-WebSocket-Key"))},
               {"Server", "x"}};
  EXPECT_EQ(s.c->end_client_handshake(resp.data(), resp.size(), nullptr, nullptr, nullptr), Result::ok);
  EXPECT_EQ(s.c->state(), State::open);
}

void expect_fails(Headers resp, Result want, std::vector<const char*> subprotocols = {},
                  std::vector<const char*> extensions = {}, const char* what = "") {
  Started s = started(subprotocols, extensions);
  // Fill in the right accept value where the test left a placeholder.
  Headers fixed;
  for (auto [n, v] : resp.items()) {
    if (v == "<accept>") v = accept_key(*s.request.get("Sec-WebSocket-Key"));
    fixed.add(n, v);
  }
  std::uint32_t ext[4] = {};
  std::uint32_t ext_count = 4;
  std::uint32_t sub = 0;
  EXPECT_EQ(s.c->end_client_handshake(fixed.data(), fixed.size(), ext, &ext_count, &sub), want) << what;
  EXPECT_EQ(s.c->state(), State::failed) << what;
  // A failed handle: every later call but Delete is E_INVALID_OPERATION, Abort is a no-op.
  Headers good = good_response(s.request);
  EXPECT_EQ(s.c->end_client_handshake(good.data(), good.size(), nullptr, nullptr, nullptr),
            Result::invalid_operation);
  EXPECT_EQ(s.c->send(BufferType::close, nullptr, nullptr), Result::invalid_operation);
  EXPECT_EQ(s.c->receive(nullptr, nullptr), Result::invalid_operation);
  Buffer b[2];
  std::uint32_t n = 2;
  Action a;
  BufferType t;
  void* act = nullptr;
  EXPECT_EQ(s.c->get_action(ActionQueue::all, b, &n, &a, &t, nullptr, &act), Result::invalid_operation);
  HttpHeader* out = nullptr;
  std::uint32_t on = 0;
  EXPECT_EQ(s.c->begin_client_handshake(nullptr, 0, nullptr, 0, nullptr, 0, &out, &on), Result::invalid_operation);
  s.c->abort();
  EXPECT_EQ(s.c->state(), State::failed);
}

TEST(EndClientHandshake, BadResponsesFailTheHandle) {
  const Result F = Result::invalid_protocol_format;
  expect_fails(Headers{{"Connection", "Upgrade"}, {"Sec-WebSocket-Accept", "<accept>"}}, F, {}, {}, "no Upgrade");
  expect_fails(Headers{{"Upgrade", "websocket"}, {"Sec-WebSocket-Accept", "<accept>"}}, F, {}, {}, "no Connection");
  expect_fails(Headers{{"Connection", "Upgrade"}, {"Upgrade", "websocket"}}, F, {}, {}, "no accept");
  expect_fails(Headers{{"Connection", "Upgrade"}, {"Upgrade", "h2c"}, {"Sec-WebSocket-Accept", "<accept>"}}, F, {},
               {}, "Upgrade: h2c");
  expect_fails(Headers{{"Connection", "keep-alive"}, {"Upgrade", "websocket"}, {"Sec-WebSocket-Accept", "<accept>"}},
               F, {}, {}, "Connection without upgrade");
  expect_fails(Headers{{"Connection", "Upgrade"},
                       {"Upgrade", "websocket"},
                       {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}},
               F, {}, {}, "wrong accept");
  expect_fails(Headers{{"Connection", "Upgrade"},
                       {"Upgrade", "websocket"},
                       {"Sec-WebSocket-Accept", "<accept>"},
                       {"Sec-WebSocket-Accept", "<accept>"}},
               F, {}, {}, "two accept headers");
}

TEST(EndClientHandshake, SubprotocolSelection) {
  Started s = started({"chat", "superchat"});
  Headers resp = good_response(s.request);
  resp.add("Sec-WebSocket-Protocol", "superchat");
  std::uint32_t sub = 99;
  ASSERT_EQ(s.c->end_client_handshake(resp.data(), resp.size(), nullptr, nullptr, &sub), Result::ok);
  EXPECT_EQ(sub, 1u);
  EXPECT_EQ(s.c->state(), State::open);
}

TEST(EndClientHandshake, SubprotocolAbsentLeavesOutputUntouched) {
  Started s = started({"chat"});
  Headers resp = good_response(s.request);
  std::uint32_t sub = 0xDEADBEEF;
  std::uint32_t ext_count = 5;
  ASSERT_EQ(s.c->end_client_handshake(resp.data(), resp.size(), nullptr, &ext_count, &sub), Result::ok);
  EXPECT_EQ(sub, 0xDEADBEEFu);
  EXPECT_EQ(ext_count, 0u);  // always written on success
}

TEST(EndClientHandshake, SubprotocolErrors) {
  const Headers accept{{"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Sec-WebSocket-Accept", "<accept>"}};
  auto with = [&](std::vector<std::pair<std::string, std::string>> extra) {
    Headers h = accept;
    for (auto& [n, v] : extra) h.add(n, v);
    return h;
  };
  expect_fails(with({{"Sec-WebSocket-Protocol", "Chat"}}), Result::subprotocol_not_supported, {"chat"}, {},
               "case differs");
  expect_fails(with({{"Sec-WebSocket-Protocol", "other"}}), Result::subprotocol_not_supported, {"chat"}, {},
               "not offered");
  expect_fails(with({{"Sec-WebSocket-Protocol", "chat"}}), Result::subprotocol_not_supported, {}, {},
               "none offered");
  expect_fails(with({{"Sec-WebSocket-Protocol", "chat"}, {"Sec-WebSocket-Protocol", "chat"}}),
               Result::invalid_protocol_format, {"chat"}, {}, "two headers");
  expect_fails(with({{"Sec-WebSocket-Protocol", "chat, superchat"}}), Result::invalid_protocol_format,
               {"chat", "superchat"}, {}, "a list");
}

TEST(EndClientHandshake, ExtensionSelection) {
  {
    Started s = started({}, {"permessage-deflate; client_max_window_bits", "x-foo"});
    Headers resp = good_response(s.request);
    resp.add("Sec-WebSocket-Extensions", "x-foo");
    std::uint32_t ext[2] = {77, 77};
    std::uint32_t count = 2;
    ASSERT_EQ(s.c->end_client_handshake(resp.data(), resp.size(), ext, &count, nullptr), Result::ok);
    ASSERT_EQ(count, 1u);
    EXPECT_EQ(ext[0], 1u);
  }
  {
    Started s = started({}, {"permessage-deflate; client_max_window_bits", "x-foo"});
    Headers resp = good_response(s.request);
    resp.add("Sec-WebSocket-Extensions", "PerMessage-Deflate; server_no_context_takeover");
    resp.add("Sec-WebSocket-Extensions", "x-foo");
    std::uint32_t ext[3] = {77, 77, 77};
    std::uint32_t count = 3;
    ASSERT_EQ(s.c->end_client_handshake(resp.data(), resp.size(), ext, &count, nullptr), Result::ok);
    ASSERT_EQ(count, 2u);
    std::vector<std::uint32_t> got(ext, ext + 2);
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::uint32_t>{0, 1}));
  }
}

TEST(EndClientHandshake, ExtensionErrors) {
  const Headers accept{{"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Sec-WebSocket-Accept", "<accept>"}};
  auto with = [&](std::string v) {
    Headers h = accept;
    h.add("Sec-WebSocket-Extensions", v);
    return h;
  };
  expect_fails(with("x-bar"), Result::extensions_not_supported, {}, {"x-foo"}, "not offered");
  expect_fails(with("x-foo"), Result::extensions_not_supported, {}, {}, "none offered");
  expect_fails(with("x-foo, x-foo"), Result::invalid_protocol_format, {}, {"x-foo"}, "twice");
}

TEST(EndClientHandshake, OutputArgumentRulesKeepTheState) {
  Started s = started({}, {"a", "b"});
  Headers resp = good_response(s.request);
  std::uint32_t ext[2];
  std::uint32_t count = 1;  // less than the offered count
  EXPECT_EQ(s.c->end_client_handshake(resp.data(), resp.size(), ext, &count, nullptr), Result::invalid_arg);
  EXPECT_EQ(s.c->state(), State::handshake_started);
  EXPECT_EQ(s.c->end_client_handshake(resp.data(), resp.size(), ext, nullptr, nullptr), Result::invalid_arg);
  EXPECT_EQ(s.c->state(), State::handshake_started);
  count = 1;
  EXPECT_EQ(s.c->end_client_handshake(resp.data(), resp.size(), nullptr, &count, nullptr), Result::invalid_arg);
  EXPECT_EQ(s.c->state(), State::handshake_started);
  EXPECT_EQ(s.c->end_client_handshake(nullptr, 2, nullptr, nullptr, nullptr), Result::invalid_arg);
  EXPECT_EQ(s.c->state(), State::handshake_started);
  count = 2;
  EXPECT_EQ(s.c->end_client_handshake(resp.data(), resp.size(), ext, &count, nullptr), Result::ok);
  EXPECT_EQ(count, 0u);
  EXPECT_EQ(s.c->state(), State::open);
}

TEST(EndClientHandshake, WrongRoleOrState) {
  auto fresh = make_handle(Role::client);
  Headers any{{"Connection", "Upgrade"}};
  EXPECT_EQ(fresh->end_client_handshake(any.data(), any.size(), nullptr, nullptr, nullptr), Result::invalid_operation);
  EXPECT_EQ(fresh->state(), State::created);
  auto s = make_handle(Role::server);
  EXPECT_EQ(s->end_client_handshake(any.data(), any.size(), nullptr, nullptr, nullptr), Result::invalid_operation);
  Started st = started();
  Headers resp = good_response(st.request);
  ASSERT_EQ(st.c->end_client_handshake(resp.data(), resp.size(), nullptr, nullptr, nullptr), Result::ok);
  EXPECT_EQ(st.c->end_client_handshake(resp.data(), resp.size(), nullptr, nullptr, nullptr),
            Result::invalid_operation);
  EXPECT_EQ(st.c->state(), State::open);
}

TEST(ClientHandshake, AbortBeforeTheHandshakeIsANoOp) {
  auto c = make_handle(Role::client);
  c->abort();
  EXPECT_EQ(c->state(), State::created);
  ClientBegin cb = begin_client(*c);
  ASSERT_EQ(cb.result, Result::ok);
  c->abort();
  EXPECT_EQ(c->state(), State::handshake_started);
  Headers resp = good_response(cb.headers);
  EXPECT_EQ(c->end_client_handshake(resp.data(), resp.size(), nullptr, nullptr, nullptr), Result::ok);
  EXPECT_EQ(c->state(), State::open);
}

// ---- BeginServerHandshake / EndServerHandshake ------------------------------------------------

TEST(BeginServerHandshake, DotnetFakeRequestWithEmptyHost) {
  auto s = make_handle(Role::server);
  Headers resp;
  ASSERT_EQ(begin_server(*s, dotnet_fake_request(), &resp), Result::ok);
  EXPECT_EQ(s->state(), State::open);
  const auto& items = resp.items();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_TRUE(iequals(items[0].first, "Connection"));
  EXPECT_EQ(items[0].second, "Upgrade");
  EXPECT_TRUE(iequals(items[1].first, "Upgrade"));
  EXPECT_EQ(items[1].second, "websocket");
  EXPECT_TRUE(iequals(items[2].first, "Sec-WebSocket-Accept"));
  EXPECT_EQ(items[2].second, accept_key("AAAAAAAAAAAAAAAAAAAAAA=="));
}

TEST(BeginServerHandshake, Rfc6455SampleKey) {
  auto s = make_handle(Role::server);
  Headers req = dotnet_fake_request();
  req.set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
  Headers resp;
  ASSERT_EQ(begin_server(*s, req, &resp), Result::ok);
  EXPECT_EQ(resp.get("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(BeginServerHandshake, NoHostAndCaseInsensitiveValues) {
  auto s = make_handle(Role::server);
  Headers req{{"connection", "keep-alive, UPGRADE"},
              {"UPGRADE", "WebSocket"},
              {"sec-websocket-version", "13"},
              {"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="}};
  EXPECT_EQ(begin_server(*s, req), Result::ok);
  EXPECT_EQ(s->state(), State::open);
}

TEST(BeginServerHandshake, Version8IsNotSupported) {
  auto s = make_handle(Role::server);
  Headers req = dotnet_fake_request();
  req.set("Sec-WebSocket-Version", "8");
  EXPECT_EQ(begin_server(*s, req), Result::protocol_version_not_supported);
  EXPECT_EQ(s->state(), State::failed);
  EXPECT_EQ(s->send(BufferType::close, nullptr, nullptr), Result::invalid_operation);
  EXPECT_EQ(begin_server(*s, dotnet_fake_request()), Result::invalid_operation);
}

TEST(BeginServerHandshake, MalformedRequests) {
  struct Case {
    const char* what;
    void (*edit)(Headers&);
  };
  const Case cases[] = {
      {"no Connection", [](Headers& h) { h.remove("Connection"); }},
      {"Connection: keep-alive", [](Headers& h) { h.set("Connection", "keep-alive"); }},
      {"no Upgrade", [](Headers& h) { h.remove("Upgrade"); }},
      {"Upgrade: h2c", [](Headers& h) { h.set("Upgrade", "h2c"); }},
      {"no key", [](Headers& h) { h.remove("Sec-WebSocket-Key"); }},
      {"short key", [](Headers& h) { h.set("Sec-WebSocket-Key", "AAAA"); }},
      {"15-byte key", [](Headers& h) { h.set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"); }},
      {"17-byte key", [](Headers& h) { h.set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA="); }},
      {"two keys", [](Headers& h) { h.add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="); }},
      {"no version", [](Headers& h) { h.remove("Sec-WebSocket-Version"); }},
      {"two versions", [](Headers& h) { h.add("Sec-WebSocket-Version", "13"); }},
  };
  for (const Case& c : cases) {
    auto s = make_handle(Role::server);
    Headers req = dotnet_fake_request();
    c.edit(req);
    EXPECT_EQ(begin_server(*s, req), Result::invalid_protocol_format) << c.what;
    EXPECT_EQ(s->state(), State::failed) << c.what;
  }
}

TEST(BeginServerHandshake, ChosenSubprotocolAndExtensions) {
  auto s = make_handle(Role::server);
  Headers resp;
  ASSERT_EQ(begin_server(*s, dotnet_fake_request(), &resp, "chat", {"x-foo"}), Result::ok);
  const auto& items = resp.items();
  ASSERT_EQ(items.size(), 5u);
  EXPECT_TRUE(iequals(items[3].first, "Sec-WebSocket-Protocol"));
  EXPECT_EQ(items[3].second, "chat");
  EXPECT_TRUE(iequals(items[4].first, "Sec-WebSocket-Extensions"));
  EXPECT_EQ(items[4].second, "x-foo");

  auto s2 = make_handle(Role::server);
  Headers resp2;
  ASSERT_EQ(begin_server(*s2, dotnet_fake_request(), &resp2, nullptr, {"x-foo", "x-bar"}), Result::ok);
  EXPECT_EQ(resp2.count("Sec-WebSocket-Protocol"), 0u);
  std::string all;
  for (const auto& [n, v] : resp2.items()) {
    if (iequals(n, "Sec-WebSocket-Extensions")) all += v + ",";
  }
  EXPECT_TRUE(list_contains_token(all, "x-foo"));
  EXPECT_TRUE(list_contains_token(all, "x-bar"));
}

TEST(BeginServerHandshake, ChosenSubprotocolMustBeAToken) {
  for (const char* bad : {"a b", "", "a,b"}) {
    auto s = make_handle(Role::server);
    EXPECT_EQ(begin_server(*s, dotnet_fake_request(), nullptr, bad), Result::invalid_arg) << bad;
  }
}

TEST(BeginServerHandshake, InvalidArgumentsAndWrongRoleOrState) {
  auto s = make_handle(Role::server);
  Headers req = dotnet_fake_request();
  HttpHeader* out = nullptr;
  std::uint32_t n = 0;
  EXPECT_EQ(s->begin_server_handshake(nullptr, nullptr, 0, req.data(), req.size(), nullptr, &n), Result::invalid_arg);
  EXPECT_EQ(s->begin_server_handshake(nullptr, nullptr, 0, req.data(), req.size(), &out, nullptr),
            Result::invalid_arg);
  EXPECT_EQ(s->begin_server_handshake(nullptr, nullptr, 0, nullptr, 3, &out, &n), Result::invalid_arg);
  EXPECT_EQ(s->begin_server_handshake(nullptr, nullptr, 1, req.data(), req.size(), &out, &n), Result::invalid_arg);
  auto c = make_handle(Role::client);
  EXPECT_EQ(begin_server(*c, dotnet_fake_request()), Result::invalid_operation);
  auto ok = make_handle(Role::server);
  ASSERT_EQ(begin_server(*ok, dotnet_fake_request()), Result::ok);
  EXPECT_EQ(begin_server(*ok, dotnet_fake_request()), Result::invalid_operation);
  EXPECT_EQ(ok->state(), State::open);
}

TEST(EndServerHandshake, Rules) {
  auto s = make_handle(Role::server);
  EXPECT_EQ(s->end_server_handshake(), Result::invalid_operation);  // before Begin
  ASSERT_EQ(begin_server(*s, dotnet_fake_request()), Result::ok);
  EXPECT_EQ(s->end_server_handshake(), Result::ok);
  EXPECT_EQ(s->end_server_handshake(), Result::invalid_operation);  // once
  EXPECT_EQ(s->state(), State::open);
  EXPECT_EQ(s->send(BufferType::binary_message, nullptr, nullptr), Result::invalid_arg);  // still usable
  auto c = make_handle(Role::client);
  EXPECT_EQ(c->end_server_handshake(), Result::invalid_operation);
  auto failed = make_handle(Role::server);
  Headers req = dotnet_fake_request();
  req.set("Sec-WebSocket-Version", "8");
  ASSERT_EQ(begin_server(*failed, req), Result::protocol_version_not_supported);
  EXPECT_EQ(failed->end_server_handshake(), Result::invalid_operation);
}

TEST(ServerHandshake, EndServerHandshakeIsOptional) {
  test::Endpoint client(make_handle(Role::client));
  test::Endpoint server(make_handle(Role::server));
  test::do_handshake(*client.h, *server.h);
  test::Link link(client, server);
  ASSERT_EQ(client.post_receive(), Result::ok);
  ASSERT_EQ(server.send_data(BufferType::binary_message, test::bytes_of("no EndServerHandshake")), Result::ok);
  link.pump();
  ASSERT_EQ(client.messages.size(), 1u);
  EXPECT_EQ(test::string_of(client.messages[0].data), "no EndServerHandshake");
}

}  // namespace
}  // namespace wsgate::ws
