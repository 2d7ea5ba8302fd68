#include "service/net/quote.h"

namespace wsgate::net {

std::string quote(std::string_view s) {
  constexpr std::size_t kMaxQuoted = 64;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  const std::size_t n = s.size() < kMaxQuoted ? s.size() : kMaxQuoted;
  for (std::size_t i = 0; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b >= 0x20 && b < 0x7f && b != '"' && b != '\\') {
      out += s[i];
    } else {
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0xf];
    }
  }
  if (n < s.size()) out += "...";
  out += '"';
  return out;
}

}  // namespace wsgate::net
