// HTTP CONNECT proxies for Gateway sessions, sans-I/O: which proxy (if any) a session goes
// through, and the bytes of the CONNECT exchange. The Asio transport (upstream_connection.cc)
// does the I/O: it connects to ProxyEndpoint, writes build_connect_request(), feeds what it
// reads to parse_connect_reply() until that is not need_more, then runs TLS (wss://) and the
// upgrade through the tunnel exactly as after a direct connect.
//
// Conventions (curl's, documented in docs/configuration.md):
//  - proxy URLs: "http://[user[:password]@]host[:port][/]", or "host[:port]" (http:// assumed);
//    the port defaults to 1080; user and password are percent-decoded and sent as
//    "Proxy-Authorization: Basic base64(user:password)". https:// (TLS to the proxy) and SOCKS
//    proxies are refused with a message that says so.
//  - the environment: wss:// uses https_proxy, then HTTPS_PROXY; ws:// uses http_proxy only (the
//    upper-case HTTP_PROXY is ignored, as curl does: CGI servers set HTTP_PROXY from a client's
//    "Proxy:" request header); both fall back to all_proxy, then ALL_PROXY. The list of hosts
//    that go direct is no_proxy, then NO_PROXY. Lower case wins; an empty value counts as unset.
//  - NO_PROXY lists (NoProxy): entries separated by commas and/or whitespace; "*" alone matches
//    every host; a name matches itself and its subdomains ("example.com" and ".example.com"
//    both match "example.com" and "a.example.com", not "badexample.com"); an IP address or a CIDR
//    ("10.0.0.0/8", "::1", "[::1]", "fd00::/8") matches URLs whose host is an IP literal in it
//    (names are compared as names, never resolved); "name:port" or "[v6]:port" matches that port
//    only. Case-insensitive; trailing dots are ignored.
//  - precedence (ProxySelector): proxy.url from the configuration, else the environment (when
//    proxy.from_environment); proxy.no_proxy when set, else the environment's no_proxy. A
//    session's Open.proxy ("direct" or a URL) overrides both, and no_proxy does not apply to it.
//
// Lifetime and thread safety: plain values and pure functions; a ProxySelector is immutable once
// created and may be shared by any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "service/net/url.h"

namespace wsgate::net {

// The default port of a proxy URL without one (curl's).
inline constexpr std::uint16_t kDefaultProxyPort = 1080;

// One proxy to tunnel through. A plain value; `authorization` is a secret (never log it).
struct ProxyEndpoint {
  std::string host;           // lower-cased; IPv6 without brackets
  std::uint16_t port = kDefaultProxyPort;
  std::string authorization;  // the Proxy-Authorization value ("Basic ..."); empty: none
  // Judge the proxy's host, port and addresses with the destination policy (a proxy a session
  // named); false for the daemon's own proxy, which its configuration trusts.
  bool check_policy = false;

  // "host:port" ("[v6]:port"): how messages name the proxy (never with credentials).
  std::string authority() const;
};

struct ProxyUrlResult {
  std::optional<ProxyEndpoint> proxy;
  std::string error;  // set when !proxy: what is wrong, without the credentials
};

// Parses a proxy URL (see the conventions above). Errors never quote the userinfo.
ProxyUrlResult parse_proxy_url(std::string_view text);

// A NO_PROXY list (see the conventions above). Immutable once parsed; copyable.
class NoProxy {
 public:
  NoProxy() = default;  // matches nothing
  // nullopt and *error for an entry that cannot be read (a CIDR prefix out of range, a port that
  // is not 1..65535). `error` may be null.
  static std::optional<NoProxy> parse(std::string_view list, std::string* error);

  // Does the list send `host` (as WebSocketUrl::host holds it) on `port` direct?
  bool matches(std::string_view host, std::uint16_t port) const;
  bool empty() const { return !all_ && entries_.empty(); }

 private:
  struct Entry {
    enum class Kind { name, address } kind = Kind::name;
    std::string name;                       // name: lower-case, no leading/trailing dot
    bool v4 = false;                        // address
    unsigned char bytes[16] = {};           // address: network bytes
    unsigned prefix = 0;                    // address: prefix length
    std::uint16_t port = 0;                 // 0: any
  };
  bool all_ = false;
  std::vector<Entry> entries_;
};

// The proxy variables of the environment, as read (empty: unset). `from` names the variable each
// value came from, for messages.
struct ProxyEnvironment {
  std::string http_proxy, http_proxy_from;
  std::string https_proxy, https_proxy_from;
  std::string all_proxy, all_proxy_from;
  std::string no_proxy, no_proxy_from;
};
// Reads them with `lookup` (getenv, or a map in tests), following the conventions above.
ProxyEnvironment read_proxy_environment(const std::function<const char*(const char*)>& lookup);

// The daemon's [proxy] section (service/daemon/config.h ProxyConfig), as plain data.
struct ProxyRules {
  std::string url;            // empty: none configured
  std::string no_proxy;       // empty: the environment's (when from_environment)
  std::string authorization;  // a Proxy-Authorization value to send instead of the URL's userinfo
  bool from_environment = true;
};

// The daemon-wide proxy choice: the configuration and the environment, validated once at
// start-up. Immutable; share it by pointer.
class ProxySelector {
 public:
  // nullopt and *error (naming the key or variable) when a URL or list cannot be used.
  static std::optional<ProxySelector> create(const ProxyRules& rules, const ProxyEnvironment& env,
                                             std::string* error);

  // The proxy for a session to `target` that did not name one (nullopt: connect direct).
  std::optional<ProxyEndpoint> select(const WebSocketUrl& target) const;

  // One line for the start-up log: which proxy for ws:// and wss://, from where, and the
  // no_proxy list; credentials are shown as "***".
  std::string describe() const;

 private:
  ProxySelector() = default;
  struct Choice {
    std::optional<ProxyEndpoint> proxy;
    std::string from;  // "proxy.url", "https_proxy", ...
  };
  Choice ws_, wss_;
  NoProxy no_proxy_;
  std::string no_proxy_text_, no_proxy_from_;
};

// The CONNECT request for `target` ("CONNECT host:port HTTP/1.1", Host, and Proxy-Authorization
// when the endpoint has credentials), ending with the blank line.
std::string build_connect_request(const WebSocketUrl& target, const ProxyEndpoint& proxy);

// The proxy's answer to CONNECT.
struct ConnectReply {
  enum class Kind {
    need_more,      // the head is not complete yet: read more, call again with all bytes
    established,    // 2xx: the tunnel is open
    auth_required,  // 407, or 401 (how some proxies, tinyproxy among them, refuse credentials)
    refused,        // any other status
    invalid,        // not an HTTP answer, too long, or bytes after a 2xx head
  };
  Kind kind = Kind::need_more;
  int http_status = 0;  // auth_required, refused (and established)
  std::vector<std::pair<std::string, std::string>> headers;  // auth_required, refused
  // auth_required, refused: the status line, e.g. `403 "Forbidden"` (the reason quoted);
  // invalid: what is wrong.
  std::string message;
};

// Parses the bytes received so far after the CONNECT request. The head may take at most
// `max_bytes` (limits.max_header_bytes). A 2xx head must be all there is: a CONNECT tunnel
// carries nothing before the client speaks (TLS ClientHello or the upgrade request), so bytes
// after it mean the proxy is not a CONNECT proxy (invalid, never handed on). Bytes after a
// refusal's head (its body) are ignored.
ConnectReply parse_connect_reply(const char* data, std::size_t size, std::size_t max_bytes);

}  // namespace wsgate::net
