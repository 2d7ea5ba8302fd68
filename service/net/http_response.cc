#include "service/net/http_response.h"
#include "service/net/quote.h"

#include <cstring>
#include <string_view>

namespace wsgate::net {
namespace {

HeadParse error(std::string message) {
  HeadParse r{HeadStatus::error, 0, {}, "invalid HTTP response: " + std::move(message)};
  return r;
}

HeadParse need_more() { return HeadParse{HeadStatus::need_more, 0, {}, {}}; }

// RFC 9110 tchar.
bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// Field-value and reason-phrase bytes: HTAB, SP, VCHAR, obs-text.
bool is_text(char c) {
  const auto b = static_cast<unsigned char>(c);
  return b == '\t' || (b >= 0x20 && b != 0x7f);
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Parses the status line (without its line end) into `head`. Empty string when valid.
std::string parse_status_line(std::string_view line, HttpResponseHead* head) {
  if (line.empty()) return "empty status line";
  if (line.size() < 5 || line.substr(0, 5) != "HTTP/") {
    return "status line " + quote(line) + " does not start with \"HTTP/\"";
  }
  const std::size_t sp = line.find(' ');
  const std::string_view version = line.substr(0, sp);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return "unsupported HTTP version " + quote(version) + " (expected HTTP/1.1)";
  }
  if (sp == std::string_view::npos) return "status line " + quote(line) + " has no status code";
  const std::string_view rest = line.substr(sp + 1);
  if (rest.size() < 3 || !(rest[0] >= '0' && rest[0] <= '9') ||
      !(rest[1] >= '0' && rest[1] <= '9') || !(rest[2] >= '0' && rest[2] <= '9') ||
      (rest.size() > 3 && rest[3] != ' ')) {
    return "status line " + quote(line) + " does not have a three-digit status code";
  }
  const int code = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
  if (code < 100 || code > 599) {
    return "status code " + std::to_string(code) + " is out of range 100..599";
  }
  const std::string_view reason = rest.size() > 3 ? rest.substr(4) : std::string_view{};
  for (char c : reason) {
    if (!is_text(c)) return "status line " + quote(line) + " contains a control character";
  }
  head->status = code;
  head->reason = std::string(reason);
  return {};
}

// Parses one header line (without its line end) and appends it. Empty string when valid.
std::string parse_header_line(std::string_view line, HttpResponseHead* head) {
  if (is_ows(line.front())) {
    return "header line " + quote(line) + " starts with whitespace (obsolete line folding)";
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return "header line " + quote(line) + " has no colon";
  if (colon == 0) return "header line " + quote(line) + " has an empty name";
  const std::string_view name = line.substr(0, colon);
  if (is_ows(name.back())) {
    return "header line " + quote(line) + " has whitespace before the colon";
  }
  for (char c : name) {
    if (!is_tchar(c)) return "header name " + quote(name) + " contains an invalid character";
  }
  const std::string_view value = line.substr(colon + 1);
  for (char c : value) {
    if (!is_text(c)) {
      return "value of header " + quote(name) + " contains a control character";
    }
  }
  if (head->headers.size() >= kMaxResponseHeaders) {
    return "more than " + std::to_string(kMaxResponseHeaders) + " header fields";
  }
  head->headers.emplace_back(std::string(name), std::string(trim(value)));
  return {};
}

}  // namespace

HeadParse parse_response_head(const char* data, std::size_t size, std::size_t max_bytes) {
  if (data == nullptr) size = 0;
  // Only the first max_bytes bytes can belong to an acceptable head.
  const std::string_view input(data == nullptr ? "" : data, size < max_bytes ? size : max_bytes);

  HttpResponseHead head;
  bool first = true;
  std::size_t pos = 0;
  for (;;) {
    // Find the end of the line starting at pos.
    std::size_t lf = input.find('\n', pos);
    if (lf == std::string_view::npos) {
      // A complete line would need more bytes; are there errors in the partial line already?
      const std::string_view partial = input.substr(pos);
      const std::size_t cr = partial.find('\r');
      if (cr != std::string_view::npos && cr + 1 < partial.size()) {
        return error("bare CR (not followed by LF) in line " + quote(partial));
      }
      if (size >= max_bytes) {
        return error("response head exceeds " + std::to_string(max_bytes) + " bytes");
      }
      return need_more();
    }
    std::string_view line = input.substr(pos, lf - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) {
      return error("bare CR (not followed by LF) in line " + quote(line));
    }
    pos = lf + 1;

    if (first) {
      std::string message = parse_status_line(line, &head);
      if (!message.empty()) return error(std::move(message));
      first = false;
      continue;
    }
    if (line.empty()) {
      HeadParse result{HeadStatus::complete, pos, std::move(head), {}};
      return result;
    }
    std::string message = parse_header_line(line, &head);
    if (!message.empty()) return error(std::move(message));
  }
}

}  // namespace wsgate::net
