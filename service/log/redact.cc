// Redaction (see redact.h). The settings are two booleans packed into one atomic so a reader
// never sees half of an update.
#include "service/log/redact.h"

#include <algorithm>
#include <array>
#include <atomic>

namespace wsgate::log {
namespace {

std::atomic<unsigned> g_settings{1};  // bit 0: enabled, bit 1: subprotocols

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

void set_redaction(RedactionSettings s) {
  g_settings.store((s.enabled ? 1u : 0u) | (s.subprotocols ? 2u : 0u), std::memory_order_relaxed);
}

RedactionSettings redaction() {
  const unsigned v = g_settings.load(std::memory_order_relaxed);
  return {(v & 1u) != 0, (v & 2u) != 0};
}

std::string redact_url(std::string_view url) {
  if (!redaction().enabled) return std::string(url);
  std::string out;
  out.reserve(url.size());
  std::size_t pos = 0;
  // userinfo: between "://" and the last '@' of the authority (before the first /, ? or #).
  if (const std::size_t scheme = url.find("://"); scheme != std::string_view::npos) {
    const std::size_t start = scheme + 3;
    const std::size_t end = std::min(url.find_first_of("/?#", start), url.size());
    const std::size_t at = url.substr(start, end - start).rfind('@');
    out.append(url.substr(0, start));
    if (at != std::string_view::npos) {
      out.append(kRedacted);
      out.append(url.substr(start + at, end - start - at));  // "@host:port"
    } else {
      out.append(url.substr(start, end - start));
    }
    pos = end;
  }
  const std::size_t query = url.find('?', pos);
  const std::size_t fragment = url.find('#', pos);
  const std::size_t path_end = std::min({query, fragment, url.size()});
  out.append(url.substr(pos, path_end - pos));
  if (query != std::string_view::npos && query < fragment) {
    const std::size_t query_end = std::min(fragment, url.size());
    out += '?';
    std::string_view q = url.substr(query + 1, query_end - query - 1);
    bool first = true;
    while (true) {
      const std::size_t amp = q.find('&');
      const std::string_view param = q.substr(0, amp);
      if (!first) out += '&';
      first = false;
      const std::size_t eq = param.find('=');
      if (eq != std::string_view::npos) {
        out.append(param.substr(0, eq + 1));
        out.append(kRedacted);
      } else if (!param.empty()) {
        // "?SECRET" (no key): the whole parameter may be the secret.
        out.append(kRedacted);
      }
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
  }
  if (fragment != std::string_view::npos) {
    out += '#';
    out.append(kRedacted);
  }
  return out;
}

bool is_sensitive_header(std::string_view name) {
  static constexpr std::array<std::string_view, 4> kAlways = {"authorization", "cookie", "set-cookie",
                                                              "proxy-authorization"};
  for (std::string_view s : kAlways) {
    if (iequals(name, s)) return true;
  }
  return redaction().subprotocols && iequals(name, "sec-websocket-protocol");
}

std::string redact_header(std::string_view name, std::string_view value) {
  if (redaction().enabled && is_sensitive_header(name)) return std::string(kRedacted);
  return std::string(value);
}

}  // namespace wsgate::log
