// ASCII case helpers, written once: HTTP header names, URL schemes and host names compare
// case-insensitively in ASCII only (RFC 9110 §5.1, RFC 3986 §3.1/§3.2.2), never by locale.
// Header-only and pure, so the sans-I/O network pieces (service/net url, destination policy)
// share it with the engine's handshake without linking the engine.
// Thread safety: pure functions, safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace wsgate::ws {

constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

}  // namespace wsgate::ws
