// http_proxy_fuzz: fuzz bytes through the sans-I/O HTTP CONNECT proxy pieces
// (service/net/http_proxy.h): a proxy URL, a NO_PROXY list and the proxy's answer to CONNECT.
//
// Input layout:
//   byte 0     which piece: % 3 == 0 proxy URL, 1 NO_PROXY list (+ a host to match), 2 answer
//   bytes 1-2  answer: max_bytes = 1 + (big-endian value % 20000)
//   rest       the text
// Beyond "no crash", checks the documented contract:
//   - a proxy URL: an error is never empty, and never shows the password (the input again with
//     a canary password in its "user:pw@"); a valid one has a host, a port > 0, and builds a
//     CONNECT request ending with the blank line;
//   - a NO_PROXY list: a parse error is never empty; matching any host does not crash, and "*"
//     in the list matches everything;
//   - an answer: need_more only below max_bytes; established only for a 2xx head that is all
//     the bytes; auth_required only for 407/401; invalid and refusals carry a message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "service/net/http_proxy.h"

namespace {

using namespace wsgate::net;

void proxy_url(std::string_view text) {
  const ProxyUrlResult r = parse_proxy_url(text);
  if (!r.proxy && r.error.empty()) __builtin_trap();
  // The same URL with a canary password: an error must not show it.
  const std::size_t scheme = text.find("://");
  const std::size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  const std::string_view rest = text.substr(start);
  const std::size_t at = rest.substr(0, rest.find_first_of("/?#")).rfind('@');
  const std::size_t colon = rest.find(':');
  constexpr std::string_view kCanary = "Zq9Xw7Kp";
  if (at != std::string_view::npos && colon != std::string_view::npos && colon < at &&
      text.find(kCanary) == std::string_view::npos) {  // else a quoted host may hold it
    const std::string canary = std::string(text.substr(0, start + colon + 1)) +
                               std::string(kCanary) + std::string(rest.substr(at));
    const ProxyUrlResult c = parse_proxy_url(canary);
    if (!c.proxy && c.error.find(kCanary) != std::string::npos) __builtin_trap();
  }
  if (!r.proxy) return;
  if (r.proxy->host.empty() || r.proxy->port == 0) __builtin_trap();
  WebSocketUrl target;
  target.host = "example.com";
  target.port = 443;
  const std::string request = build_connect_request(target, *r.proxy);
  if (request.size() < 4 || request.substr(request.size() - 4) != "\r\n\r\n") __builtin_trap();
}

void no_proxy(std::string_view text) {
  const std::size_t split = text.find('\n');
  const std::string_view list = text.substr(0, split);
  const std::string_view host =
      split == std::string_view::npos ? std::string_view("example.com") : text.substr(split + 1);
  std::string error;
  const std::optional<NoProxy> parsed = NoProxy::parse(list, &error);
  if (!parsed) {
    if (error.empty()) __builtin_trap();
    return;
  }
  const bool matched = parsed->matches(host, 443);
  bool star = false;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    const std::size_t end = list.find_first_of(", \t\r\n", pos);
    const std::string_view item =
        list.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    if (item == "*") star = true;
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  if (star && !matched) __builtin_trap();
}

void answer(const char* bytes, std::size_t n, std::size_t max_bytes) {
  const ConnectReply r = parse_connect_reply(n == 0 ? nullptr : bytes, n, max_bytes);
  switch (r.kind) {
    case ConnectReply::Kind::need_more:
      if (n >= max_bytes) __builtin_trap();
      break;
    case ConnectReply::Kind::established:
      if (r.http_status < 200 || r.http_status > 299) __builtin_trap();
      break;
    case ConnectReply::Kind::auth_required:
      if ((r.http_status != 407 && r.http_status != 401) || r.message.empty()) __builtin_trap();
      break;
    case ConnectReply::Kind::refused:
      if (r.http_status >= 200 && r.http_status <= 299) __builtin_trap();
      if (r.message.empty()) __builtin_trap();
      break;
    case ConnectReply::Kind::invalid:
      if (r.message.empty()) __builtin_trap();
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const char* text = reinterpret_cast<const char*>(data + 3);
  const std::size_t n = size - 3;
  switch (data[0] % 3) {
    case 0: proxy_url(std::string_view(text, n)); break;
    case 1: no_proxy(std::string_view(text, n)); break;
    default:
      answer(text, n, 1 + ((std::size_t{data[1]} << 8 | data[2]) % 20000));
      break;
  }
  return 0;
}
