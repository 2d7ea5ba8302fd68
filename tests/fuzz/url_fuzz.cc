// url_fuzz: fuzz bytes as a WebSocket URL given to parse_websocket_url (service/net/url.h).
//
// Beyond "no crash", checks the documented contract:
//   - exactly one of `url` and `error` is set;
//   - a parsed URL is normalised: lower-case host, target starting with '/', port 1..65535,
//     a Host header that names the host (bracketed for IPv6) and the port when not the default;
//   - re-serialising it as scheme://host_header + target parses again to the same value (so two
//     components that print and re-read the URL agree on where it points).
// Any violation aborts (__builtin_trap), which libFuzzer reports as a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "service/net/url.h"

namespace {

using wsgate::net::parse_websocket_url;
using wsgate::net::UrlResult;
using wsgate::net::WebSocketUrl;

bool same(const WebSocketUrl& a, const WebSocketUrl& b) {
  return a.secure == b.secure && a.host == b.host && a.port == b.port && a.target == b.target &&
         a.host_header == b.host_header;
}

void check_normalised(const WebSocketUrl& u) {
  if (u.host.empty() || u.port == 0 || u.target.empty() || u.target.front() != '/')
    __builtin_trap();
  for (char c : u.host)
    if (c >= 'A' && c <= 'Z') __builtin_trap();
  const bool ipv6 = u.host.find(':') != std::string::npos;
  const std::string host = ipv6 ? "[" + u.host + "]" : u.host;
  const std::uint16_t default_port = u.secure ? 443 : 80;
  const std::string expected =
      u.port == default_port ? host : host + ":" + std::to_string(u.port);
  if (u.host_header != expected) __builtin_trap();
  if (u.target.find('#') != std::string::npos || u.target.find(' ') != std::string::npos)
    __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const UrlResult r = parse_websocket_url(text);
  if (r.url.has_value() == !r.error.empty()) __builtin_trap();
  if (!r.url) return 0;
  if (size > wsgate::net::kMaxUrlLength) __builtin_trap();
  check_normalised(*r.url);
  const std::string again =
      std::string(r.url->secure ? "wss://" : "ws://") + r.url->host_header + r.url->target;
  const UrlResult r2 = parse_websocket_url(again);
  // The normal form may be longer than the input only by "/" and a default-free port, so it
  // stays within the limit unless the input was at the limit already.
  if (!r2.url) {
    if (again.size() > wsgate::net::kMaxUrlLength) return 0;
    __builtin_trap();
  }
  if (!same(*r.url, *r2.url)) __builtin_trap();
  return 0;
}
