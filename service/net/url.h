// Parsing of the ws://, wss:// and ws+unix:// URLs that Gateway clients ask wsgate to connect to.
//
// The input is untrusted (it comes from a client of the daemon), so the parser is strict: it
// accepts the subset of RFC 3986 / RFC 6455 §3 that a WebSocket client needs, and it rejects
// everything that could be read differently by another component (user info, fragments, control
// characters, spaces, numeric host forms other than a dotted-quad IPv4 address). Errors are
// human-readable and quote at most a short, escaped part of the input.
//
// Pure functions over their arguments: no global state, safe to call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsgate::net {

// The longest URL parse_websocket_url accepts, in bytes.
inline constexpr std::size_t kMaxUrlLength = 8192;

// The longest unix socket path a ws+unix URL may name, in bytes: sockaddr_un::sun_path holds 108
// bytes on Linux, one of which is the terminating NUL.
inline constexpr std::size_t kMaxUnixPathLength = 107;

// A parsed WebSocket URL. A plain value: owns its strings, no lifetime ties to the input.
struct WebSocketUrl {
  bool secure = false;        // wss
  std::string host;           // without brackets for IPv6; lower-cased
  std::uint16_t port = 0;     // explicit or default 80/443
  std::string target;         // path + "?" + query; "/" when empty; fragment rejected
  std::string host_header;    // what the Host header must say: host, [v6], plus :port when non-default
  // ws+unix: the absolute path of the unix socket to connect to (then host is empty, port 0,
  // secure false and host_header "localhost"); empty for ws:// and wss://.
  std::string unix_path;
};

// "host:port" ("[v6]:port" for IPv6), or "unix:/path" for a unix socket: how messages name
// the destination.
std::string describe_endpoint(const WebSocketUrl& url);

// The result of parse_websocket_url: `url` when valid, else `error` says why (never empty then).
struct UrlResult {
  std::optional<WebSocketUrl> url;
  std::string error;
};

// Parses `text` as a WebSocket URL:
//   - scheme "ws" or "wss", case-insensitive, followed by "://";
//   - no user info ("user@host" is rejected);
//   - host: a registered name (letters, digits, '-', '.'; labels of 1..63 characters, at most
//     253 characters, no trailing dot), a dotted-quad IPv4 address, or an IPv6 address in
//     brackets ("[::1]"; zone identifiers are not supported). Host names are lower-cased. A name
//     whose last label is numeric ("127.1", "0x7f.0.0.1") must be a valid dotted quad, since
//     resolvers would otherwise read it as an address in a legacy form;
//   - optional port: 1..65535, digits only (an empty port after ':' is rejected);
//   - optional path and query: printable ASCII without spaces; '#' (a fragment) is rejected. A
//     query without a path gets the path "/" ("ws://h?x" gives the target "/?x").
//   - at most kMaxUrlLength bytes in total.
// Or, for a server on a unix socket, the form Node's `ws` and websocat use:
//   ws+unix:///absolute/socket/path.sock:/request/path?query
//   - the socket path runs from the "/" after "ws+unix://" to the first ':' (or '?', or the
//     end); the request target is what follows that ':' ("/" when nothing follows), then the
//     query. So a socket path cannot contain ':' or '?'. No percent-decoding: the path is taken
//     byte for byte;
//   - the socket path must be absolute and normalized (no empty, "." or ".." component, no
//     trailing '/'), printable ASCII without spaces, at most kMaxUnixPathLength bytes;
//   - "wss+unix" is refused: a local socket's protection is its file permissions, and there
//     is no host name to verify a certificate against;
//   - the Host header sent is "localhost" (what Node's http client sends over a socketPath).
// Never throws for malformed input (std::bad_alloc aside); thread-safe.
UrlResult parse_websocket_url(std::string_view text);

}  // namespace wsgate::net
