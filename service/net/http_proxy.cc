#include "service/net/http_proxy.h"

#include <openssl/evp.h>

#include <cstring>

#include "service/net/destination_policy.h"
#include "service/net/http_response.h"
#include "service/net/quote.h"
#include "service/ws/ascii.h"

namespace wsgate::net {
namespace {

constexpr std::string_view kUrlErrorPrefix = "invalid WebSocket URL: ";

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return ws::ascii_lower(c) - 'a' + 10;
}

// RFC 3986 percent-decoding; false on a malformed escape.
bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !is_hex(in[i + 1]) || !is_hex(in[i + 2])) return false;
    out->push_back(static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2])));
    i += 2;
  }
  return true;
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

ProxyUrlResult url_error(std::string message) {
  ProxyUrlResult r;
  r.error = "invalid proxy URL: " + std::move(message);
  return r;
}

// Parses an address or CIDR ("10.0.0.0/8", "::1", "fd00::/8") into an entry; false when `text`
// is not one. *error is set when it looks like one but the prefix is wrong.
bool parse_address(std::string_view text, bool* v4, unsigned char* bytes, unsigned* prefix,
                   std::string* error) {
  std::string_view address = text;
  std::string_view prefix_text;
  if (const std::size_t slash = text.find('/'); slash != std::string_view::npos) {
    address = text.substr(0, slash);
    prefix_text = text.substr(slash + 1);
  }
  const std::optional<bool> family = parse_ip_address(std::string(address), bytes);
  if (!family) return false;
  *v4 = *family;
  const unsigned max = *v4 ? 32 : 128;
  *prefix = max;
  if (text.find('/') != std::string_view::npos) {
    unsigned value = 0;
    if (prefix_text.empty() || prefix_text.size() > 3) {
      *error = quote(text) + ": the prefix length must be 0.." + std::to_string(max);
      return true;
    }
    for (char c : prefix_text) {
      if (c < '0' || c > '9') {
        *error = quote(text) + ": the prefix length must be 0.." + std::to_string(max);
        return true;
      }
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > max) {
      *error = quote(text) + ": the prefix length must be 0.." + std::to_string(max);
      return true;
    }
    *prefix = value;
  }
  return true;
}

std::string strip_dots(std::string_view s) {
  while (!s.empty() && s.front() == '.') s.remove_prefix(1);
  while (!s.empty() && s.back() == '.') s.remove_suffix(1);
  return ws::to_lower(s);
}

// A port after the last ':' ("name:8080"); 0 and *error set when malformed.
std::uint16_t parse_port(std::string_view text, std::string_view entry, std::string* error) {
  unsigned long value = 0;
  if (text.empty() || text.size() > 5) {
    *error = quote(entry) + ": the port must be 1..65535";
    return 0;
  }
  for (char c : text) {
    if (c < '0' || c > '9') {
      *error = quote(entry) + ": the port must be 1..65535";
      return 0;
    }
    value = value * 10 + static_cast<unsigned long>(c - '0');
  }
  if (value == 0 || value > 65535) {
    *error = quote(entry) + ": the port must be 1..65535";
    return 0;
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

std::string ProxyEndpoint::authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

ProxyUrlResult parse_proxy_url(std::string_view text) {
  if (text.size() > kMaxUrlLength) {
    return url_error("longer than " + std::to_string(kMaxUrlLength) + " bytes");
  }
  std::string_view rest = text;
  if (const std::size_t sep = text.find("://"); sep != std::string_view::npos) {
    const std::string scheme = ws::to_lower(text.substr(0, sep));
    rest = text.substr(sep + 3);
    if (scheme == "https") {
      return url_error(
          "https:// proxies (TLS to the proxy) are not supported: use an http:// proxy URL (a "
          "wss:// session's TLS still runs end to end through the tunnel)");
    }
    if (scheme.starts_with("socks")) {
      return url_error("SOCKS proxies are not supported: use an HTTP proxy that accepts CONNECT");
    }
    if (scheme != "http") {
      return url_error("scheme " + quote(scheme) + " is not supported (expected http://)");
    }
  }
  const std::size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (end != std::string_view::npos && rest.substr(end) != "/") {
    return url_error("a proxy URL has no path, query or fragment (expected http://host:port)");
  }

  ProxyEndpoint proxy;
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    for (char c : userinfo) {
      const auto b = static_cast<unsigned char>(c);
      if (b <= 0x20 || b >= 0x7f) {
        return url_error("the user info has a space, control or non-ASCII character "
                         "(percent-encode it)");
      }
    }
    const std::size_t colon = userinfo.find(':');
    std::string user, password;
    if (!percent_decode(userinfo.substr(0, colon), &user) ||
        (colon != std::string_view::npos &&
         !percent_decode(userinfo.substr(colon + 1), &password))) {
      return url_error("the user info has a malformed %-escape");
    }
    if (user.find(':') != std::string::npos) {
      return url_error("the user name has a ':' (Basic authentication cannot carry it)");
    }
    if (!user.empty() || colon != std::string_view::npos) {
      proxy.authorization = "Basic " + base64(user + ":" + password);
    }
  }
  if (authority.empty()) return url_error("no host (expected http://host:port)");

  // The host and port follow the WebSocket URL rules (url.h): the same strict host forms.
  const std::string host_port(authority);
  UrlResult plain = parse_websocket_url("ws://" + host_port + "/");
  if (!plain.url) {
    std::string why = plain.error;
    if (why.starts_with(kUrlErrorPrefix)) why.erase(0, kUrlErrorPrefix.size());
    return url_error(why);
  }
  // An explicit port reads the same under both schemes; a missing one gets curl's default.
  UrlResult secure = parse_websocket_url("wss://" + host_port + "/");
  const bool explicit_port = secure.url && secure.url->port == plain.url->port;
  proxy.host = plain.url->host;
  proxy.port = explicit_port ? plain.url->port : kDefaultProxyPort;
  ProxyUrlResult out;
  out.proxy = std::move(proxy);
  return out;
}

std::optional<NoProxy> NoProxy::parse(std::string_view list, std::string* error) {
  NoProxy out;
  std::string ignored;
  std::string& why = error != nullptr ? *error : ignored;
  std::size_t pos = 0;
  while (pos < list.size()) {
    const std::size_t end = list.find_first_of(", \t\r\n", pos);
    const std::string_view item = list.substr(pos, end == std::string_view::npos
                                                       ? std::string_view::npos
                                                       : end - pos);
    pos = end == std::string_view::npos ? list.size() : end + 1;
    if (item.empty()) continue;
    if (item == "*") {
      out.all_ = true;
      continue;
    }
    Entry e;
    std::string_view host = item;
    std::string bracketed_cidr;
    // "[v6]" or "[v6]:port"; "name:port" or "a.b.c.d:port" (one colon); else an IPv6 address
    // or CIDR without brackets (several colons).
    if (item.front() == '[') {
      const std::size_t close = item.find(']');
      if (close == std::string_view::npos) {
        why = quote(item) + ": '[' without ']'";
        return std::nullopt;
      }
      host = item.substr(1, close - 1);
      const std::string_view after = item.substr(close + 1);
      if (!after.empty() && after.front() == '/') {
        // "[fd00::]/8": a CIDR in brackets.
        bracketed_cidr = std::string(host) + std::string(after);
        host = bracketed_cidr;
      } else if (!after.empty()) {
        if (after.front() != ':') {
          why = quote(item) + ": expected ':port' after ']'";
          return std::nullopt;
        }
        e.port = parse_port(after.substr(1), item, &why);
        if (e.port == 0) return std::nullopt;
      }
    } else if (const std::size_t colon = item.find(':');
               colon != std::string_view::npos &&
               item.find(':', colon + 1) == std::string_view::npos) {
      host = item.substr(0, colon);
      e.port = parse_port(item.substr(colon + 1), item, &why);
      if (e.port == 0) return std::nullopt;
    }
    std::string address_error;
    if (parse_address(host, &e.v4, e.bytes, &e.prefix, &address_error)) {
      if (!address_error.empty()) {
        why = address_error;
        return std::nullopt;
      }
      e.kind = Entry::Kind::address;
    } else {
      e.kind = Entry::Kind::name;
      e.name = strip_dots(host);
      if (e.name.empty()) continue;  // "." alone: nothing to match
    }
    out.entries_.push_back(std::move(e));
  }
  return out;
}

bool NoProxy::matches(std::string_view host, std::uint16_t port) const {
  if (all_) return true;
  if (entries_.empty()) return false;
  const std::string name = strip_dots(host);
  unsigned char bytes[16] = {};
  const std::optional<bool> v4 = parse_ip_address(name, bytes);
  for (const Entry& e : entries_) {
    if (e.port != 0 && e.port != port) continue;
    if (e.kind == Entry::Kind::address) {
      if (v4 && e.v4 == *v4 && prefix_equal(e.bytes, bytes, e.prefix)) return true;
      continue;
    }
    if (name == e.name) return true;
    if (name.size() > e.name.size() && name.ends_with(e.name) &&
        name[name.size() - e.name.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

ProxyEnvironment read_proxy_environment(const std::function<const char*(const char*)>& lookup) {
  ProxyEnvironment env;
  auto first = [&lookup](std::initializer_list<const char*> names, std::string* value,
                         std::string* from) {
    for (const char* name : names) {
      const char* v = lookup(name);
      if (v != nullptr && v[0] != '\0') {
        *value = v;
        *from = name;
        return;
      }
    }
  };
  first({"http_proxy"}, &env.http_proxy, &env.http_proxy_from);  // not HTTP_PROXY (httpoxy)
  first({"https_proxy", "HTTPS_PROXY"}, &env.https_proxy, &env.https_proxy_from);
  first({"all_proxy", "ALL_PROXY"}, &env.all_proxy, &env.all_proxy_from);
  first({"no_proxy", "NO_PROXY"}, &env.no_proxy, &env.no_proxy_from);
  return env;
}

std::optional<ProxySelector> ProxySelector::create(const ProxyRules& rules,
                                                   const ProxyEnvironment& env,
                                                   std::string* error) {
  std::string ignored;
  std::string& why = error != nullptr ? *error : ignored;
  ProxySelector out;
  auto use = [&](const std::string& url, const std::string& from, Choice* choice) {
    ProxyUrlResult parsed = parse_proxy_url(url);
    if (!parsed.proxy) {
      why = from + ": " + parsed.error;
      return false;
    }
    choice->proxy = std::move(parsed.proxy);
    choice->from = from;
    return true;
  };
  if (!rules.url.empty()) {
    if (!use(rules.url, "proxy.url", &out.ws_)) return std::nullopt;
    if (!rules.authorization.empty()) {
      if (!out.ws_.proxy->authorization.empty()) {
        why = "proxy.authorization: the proxy.url has credentials already; set one or the other";
        return std::nullopt;
      }
      out.ws_.proxy->authorization = rules.authorization;
    }
    out.wss_ = out.ws_;
  } else if (rules.from_environment) {
    const std::string& ws = env.http_proxy.empty() ? env.all_proxy : env.http_proxy;
    const std::string& ws_from = env.http_proxy.empty() ? env.all_proxy_from : env.http_proxy_from;
    const std::string& wss = env.https_proxy.empty() ? env.all_proxy : env.https_proxy;
    const std::string& wss_from =
        env.https_proxy.empty() ? env.all_proxy_from : env.https_proxy_from;
    if (!ws.empty() && !use(ws, ws_from, &out.ws_)) return std::nullopt;
    if (!wss.empty() && !use(wss, wss_from, &out.wss_)) return std::nullopt;
    for (Choice* c : {&out.ws_, &out.wss_}) {
      if (c->proxy && !rules.authorization.empty() && c->proxy->authorization.empty()) {
        c->proxy->authorization = rules.authorization;
      }
    }
  }
  if (!rules.no_proxy.empty()) {
    out.no_proxy_text_ = rules.no_proxy;
    out.no_proxy_from_ = "proxy.no_proxy";
  } else if (rules.from_environment && !env.no_proxy.empty()) {
    out.no_proxy_text_ = env.no_proxy;
    out.no_proxy_from_ = env.no_proxy_from;
  }
  std::string list_error;
  std::optional<NoProxy> list = NoProxy::parse(out.no_proxy_text_, &list_error);
  if (!list) {
    why = out.no_proxy_from_ + ": " + list_error;
    return std::nullopt;
  }
  out.no_proxy_ = std::move(*list);
  return out;
}

std::optional<ProxyEndpoint> ProxySelector::select(const WebSocketUrl& target) const {
  const Choice& c = target.secure ? wss_ : ws_;
  if (!c.proxy || no_proxy_.matches(target.host, target.port)) return std::nullopt;
  return c.proxy;
}

std::string ProxySelector::describe() const {
  auto one = [](const Choice& c) {
    if (!c.proxy) return std::string("direct");
    return "http://" + std::string(c.proxy->authorization.empty() ? "" : "***@") +
           c.proxy->authority() + " (" + c.from + ")";
  };
  std::string out = "ws:// " + one(ws_) + ", wss:// " + one(wss_);
  if (!no_proxy_text_.empty()) {
    out += ", no_proxy " + quote(no_proxy_text_) + " (" + no_proxy_from_ + ")";
  }
  return out;
}

std::string build_connect_request(const WebSocketUrl& target, const ProxyEndpoint& proxy) {
  const bool v6 = target.host.find(':') != std::string::npos;
  const std::string authority =
      (v6 ? "[" + target.host + "]" : target.host) + ":" + std::to_string(target.port);
  std::string out = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
  if (!proxy.authorization.empty()) {
    out += "Proxy-Authorization: " + proxy.authorization + "\r\n";
  }
  out += "\r\n";
  return out;
}

ConnectReply parse_connect_reply(const char* data, std::size_t size, std::size_t max_bytes) {
  ConnectReply out;
  HeadParse head = parse_response_head(data, size, max_bytes);
  switch (head.status) {
    case HeadStatus::need_more:
      return out;
    case HeadStatus::error:
      out.kind = ConnectReply::Kind::invalid;
      out.message = std::move(head.error);
      return out;
    case HeadStatus::complete:
      break;
  }
  out.http_status = head.head.status;
  if (out.http_status >= 200 && out.http_status <= 299) {
    if (head.consumed < size) {
      out.kind = ConnectReply::Kind::invalid;
      out.message = "the proxy sent " + std::to_string(size - head.consumed) +
                    " bytes after its " + std::to_string(out.http_status) +
                    " answer to CONNECT, before the server could have spoken";
      return out;
    }
    out.kind = ConnectReply::Kind::established;
    return out;
  }
  // 407 asks for credentials; some proxies (tinyproxy) answer wrong ones with 401.
  out.kind = out.http_status == 407 || out.http_status == 401 ? ConnectReply::Kind::auth_required
                                                              : ConnectReply::Kind::refused;
  out.message = std::to_string(out.http_status) + " " + quote(head.head.reason);
  out.headers = std::move(head.head.headers);
  return out;
}

}  // namespace wsgate::net
