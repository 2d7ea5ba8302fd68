#include "service/net/url.h"

// inet_pton/inet_ntop, in_addr: BSD sockets, or Winsock on Windows.
#include <asio/detail/socket_types.hpp>

#include <algorithm>
#include <string>
#include <utility>

#include "service/net/quote.h"
#include "service/ws/ascii.h"

namespace wsgate::net {
namespace {

constexpr std::size_t kMaxHostLength = 253;
constexpr std::size_t kMaxLabelLength = 63;

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
using ws::iequals;
std::string lower(std::string_view s) { return ws::to_lower(s); }

UrlResult fail(std::string message) {
  UrlResult r;
  r.error = "invalid WebSocket URL: " + std::move(message);
  return r;
}

// A label that resolvers (inet_aton) would read as a number: decimal digits, or 0x + hex digits.
bool is_numeric_label(std::string_view label) {
  if (label.empty()) return false;
  if (label.size() >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X')) {
    for (std::size_t i = 2; i < label.size(); ++i) {
      if (!is_hex(label[i])) return false;
    }
    return true;
  }
  for (char c : label) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// Validates a host that is not a bracketed IPv6 literal. Empty string when valid.
std::string check_name_host(std::string_view host) {
  if (host.size() > kMaxHostLength) {
    return "host name is longer than " + std::to_string(kMaxHostLength) + " characters";
  }
  for (char c : host) {
    if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.') {
      if (c == ':') return "IPv6 addresses must be in brackets, e.g. ws://[::1]:8080/";
      return "host " + quote(host) +
             " contains a character that is not a letter, digit, '-' or '.'";
    }
  }
  if (host.back() == '.') return "host " + quote(host) + " must not end with '.'";
  std::size_t start = 0;
  std::string_view last_label;
  while (start <= host.size()) {
    std::size_t dot = host.find('.', start);
    if (dot == std::string_view::npos) dot = host.size();
    const std::string_view label = host.substr(start, dot - start);
    if (label.empty()) return "host " + quote(host) + " has an empty label";
    if (label.size() > kMaxLabelLength) {
      return "host " + quote(host) + " has a label longer than " +
             std::to_string(kMaxLabelLength) + " characters";
    }
    last_label = label;
    start = dot + 1;
  }
  if (is_numeric_label(last_label)) {
    const std::string copy(host);
    in_addr a4{};
    if (inet_pton(AF_INET, copy.c_str(), &a4) != 1) {
      return "host " + quote(host) + " is not a valid IPv4 address (expected a dotted quad)";
    }
  }
  return {};
}

// ws+unix:///path/to.sock:/request/path?query ("rest" is what follows "ws+unix://").
UrlResult parse_unix_url(std::string_view rest) {
  if (rest.empty() || rest.front() != '/') {
    return fail("a ws+unix URL names an absolute socket path and no host, e.g. "
                "ws+unix:///run/app.sock:/chat");
  }
  for (char c : rest) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '#') return fail("fragments ('#') are not allowed in WebSocket URLs");
    if (b == ' ') return fail("the socket path, path or query contains a space");
    if (b < 0x20 || b >= 0x7f) {
      return fail("the socket path, path or query contains a control or non-ASCII character");
    }
  }
  const std::size_t end = rest.find_first_of(":?");
  const std::string_view path = rest.substr(0, end);
  if (path.size() > kMaxUnixPathLength) {
    return fail("the socket path is longer than a unix socket path may be (" +
                std::to_string(kMaxUnixPathLength) + " bytes)");
  }
  // Normalized, so that the destination policy's patterns see the path the kernel will open.
  for (std::size_t start = 1;;) {
    const std::size_t slash = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, slash - start);
    if (part.empty()) {
      return fail("socket path " + quote(path) +
                  (slash == path.size() ? " names a directory (it ends with '/')"
                                        : " has an empty component (\"//\")"));
    }
    if (part == "." || part == "..") {
      return fail("socket path " + quote(path) + " has a \".\" or \"..\" component");
    }
    if (slash == path.size()) break;
    start = slash + 1;
  }
  WebSocketUrl url;
  url.unix_path = std::string(path);
  std::string_view target;
  std::string_view query;
  if (end != std::string_view::npos && rest[end] == ':') {
    target = rest.substr(end + 1);
    const std::size_t q = target.find('?');
    if (q != std::string_view::npos) {
      query = target.substr(q);
      target = target.substr(0, q);
    }
    if (!target.empty() && target.front() != '/') {
      return fail("the request path after the socket path's ':' must start with '/', got " +
                  quote(target));
    }
  } else if (end != std::string_view::npos) {
    query = rest.substr(end);
  }
  url.target = target.empty() ? "/" : std::string(target);
  url.target += query;
  url.host_header = "localhost";
  UrlResult result;
  result.url = std::move(url);
  return result;
}

}  // namespace

std::string describe_endpoint(const WebSocketUrl& url) {
  if (!url.unix_path.empty()) return "unix:" + url.unix_path;
  const bool ipv6 = url.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port);
}

UrlResult parse_websocket_url(std::string_view text) {
  if (text.empty()) return fail("empty URL");
  if (text.size() > kMaxUrlLength) {
    return fail("URL is longer than " + std::to_string(kMaxUrlLength) + " bytes");
  }

  // Scheme.
  const std::size_t sep = text.find("://");
  if (sep == std::string_view::npos) return fail("missing \"ws://\" or \"wss://\" prefix");
  const std::string_view scheme = text.substr(0, sep);
  WebSocketUrl url;
  if (iequals(scheme, "ws+unix")) return parse_unix_url(text.substr(sep + 3));
  if (iequals(scheme, "wss+unix")) {
    return fail("wss+unix is not supported: a unix socket is protected by its file permissions "
                "and has no host name to verify a certificate against; use ws+unix");
  }
  if (iequals(scheme, "ws")) {
    url.secure = false;
  } else if (iequals(scheme, "wss")) {
    url.secure = true;
  } else {
    return fail("scheme " + quote(scheme) + " is not ws, wss or ws+unix");
  }
  const std::uint16_t default_port = url.secure ? 443 : 80;

  // Authority: up to the first '/', '?' or '#'.
  const std::string_view rest = text.substr(sep + 3);
  const std::size_t auth_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, auth_end);
  const std::string_view tail =
      auth_end == std::string_view::npos ? std::string_view{} : rest.substr(auth_end);

  for (char c : authority) {
    const auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b >= 0x7f) {
      return fail("host and port must not contain spaces, control or non-ASCII characters");
    }
  }
  if (authority.find('@') != std::string_view::npos) {
    return fail("user information (\"user@\") is not allowed");
  }
  if (authority.empty()) return fail("missing host");

  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  bool ipv6 = false;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("IPv6 address is missing its closing ']'");
    host = authority.substr(1, close - 1);
    ipv6 = true;
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("unexpected characters after the IPv6 address");
      has_port = true;
      port_text = after.substr(1);
    }
    if (host.empty()) return fail("empty IPv6 address");
    if (host.find('%') != std::string_view::npos) {
      return fail("IPv6 zone identifiers are not supported");
    }
    const std::string copy(host);
    in6_addr a6{};
    if (inet_pton(AF_INET6, copy.c_str(), &a6) != 1) {
      return fail("host " + quote(host) + " is not a valid IPv6 address");
    }
  } else {
    const std::size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
      if (port_text.find(':') != std::string_view::npos) {
        return fail("IPv6 addresses must be in brackets, e.g. ws://[::1]:8080/");
      }
    }
    if (host.empty()) return fail("missing host");
    std::string host_error = check_name_host(host);
    if (!host_error.empty()) return fail(std::move(host_error));
  }
  url.host = lower(host);

  // Port.
  url.port = default_port;
  if (has_port) {
    if (port_text.empty()) return fail("empty port after ':'");
    std::uint32_t value = 0;
    for (char c : port_text) {
      if (!is_digit(c)) return fail("port " + quote(port_text) + " is not a number");
      value = value * 10 + static_cast<std::uint32_t>(c - '0');
      if (value > 65535) return fail("port " + quote(port_text) + " is out of range 1..65535");
    }
    if (value == 0) return fail("port 0 is out of range 1..65535");
    url.port = static_cast<std::uint16_t>(value);
  }

  // Path and query.
  for (char c : tail) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '#') return fail("fragments ('#') are not allowed in WebSocket URLs");
    if (b == ' ') return fail("the path or query contains a space (use %20)");
    if (b < 0x20 || b >= 0x7f) {
      return fail(
          "the path or query contains a control or non-ASCII character (percent-encode it)");
    }
  }
  if (tail.empty()) {
    url.target = "/";
  } else if (tail.front() == '?') {
    url.target = "/";
    url.target += tail;
  } else {
    url.target = std::string(tail);
  }

  // Host header.
  url.host_header = ipv6 ? "[" + url.host + "]" : url.host;
  if (url.port != default_port) url.host_header += ":" + std::to_string(url.port);

  UrlResult result;
  result.url = std::move(url);
  return result;
}

}  // namespace wsgate::net
