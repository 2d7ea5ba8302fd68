// http_response_fuzz: fuzz bytes as the head of an HTTP/1.1 upgrade response, given to
// parse_response_head (service/net/http_response.h).
//
// Input layout:
//   bytes 0-1  max_bytes = 1 + (big-endian value % 20000) (the daemon's limits.max_header_bytes
//              is at most a few tens of KiB in practice)
//   rest       the bytes received so far
// Beyond "no crash", checks the documented contract:
//   - complete: 0 < consumed <= size and consumed <= max_bytes; status 100..599; at most
//     kMaxResponseHeaders headers, names non-empty, values trimmed; the same call on exactly the
//     `consumed` bytes gives the same head, and on one byte fewer gives need_more (the parser
//     keeps no state, so a head cut anywhere is only "not yet", never an error);
//   - need_more: the bytes so far fit in max_bytes, and no error is set;
//   - error: a non-empty message;
//   - re-serialising a complete head (CRLF line ends, "name: value") parses to the same head.
#include <cstddef>
#include <cstdint>
#include <string>

#include "service/net/http_response.h"

namespace {

using wsgate::net::HeadParse;
using wsgate::net::HeadStatus;
using wsgate::net::HttpResponseHead;
using wsgate::net::parse_response_head;

bool same(const HttpResponseHead& a, const HttpResponseHead& b) {
  return a.status == b.status && a.reason == b.reason && a.headers == b.headers;
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t max_bytes = 1 + ((std::size_t{data[0]} << 8 | data[1]) % 20000);
  const char* bytes = reinterpret_cast<const char*>(data + 2);
  const std::size_t n = size - 2;
  const HeadParse r = parse_response_head(n == 0 ? nullptr : bytes, n, max_bytes);
  switch (r.status) {
    case HeadStatus::error:
      if (r.error.empty()) __builtin_trap();
      return 0;
    case HeadStatus::need_more:
      if (!r.error.empty() || n > max_bytes) __builtin_trap();
      return 0;
    case HeadStatus::complete:
      break;
  }
  if (r.consumed == 0 || r.consumed > n || r.consumed > max_bytes) __builtin_trap();
  const HttpResponseHead& head = r.head;
  if (head.status < 100 || head.status > 599) __builtin_trap();
  if (head.headers.size() > wsgate::net::kMaxResponseHeaders) __builtin_trap();
  for (const auto& [name, value] : head.headers) {
    if (name.empty()) __builtin_trap();
    if (!value.empty() && (is_ows(value.front()) || is_ows(value.back()))) __builtin_trap();
  }

  // Exactly the head: the same result. One byte fewer: not complete yet.
  const HeadParse exact = parse_response_head(bytes, r.consumed, max_bytes);
  if (exact.status != HeadStatus::complete || exact.consumed != r.consumed ||
      !same(exact.head, head))
    __builtin_trap();
  const HeadParse cut = parse_response_head(bytes, r.consumed - 1, max_bytes);
  if (cut.status != HeadStatus::need_more) __builtin_trap();

  // Re-serialised with CRLF line ends: the same head (the limit is lifted, since "name: value"
  // may be longer than the bytes received, e.g. "a:b").
  std::string text = "HTTP/1.1 " + std::to_string(head.status);
  if (!head.reason.empty()) text += " " + head.reason;
  text += "\r\n";
  for (const auto& [name, value] : head.headers) text += name + ": " + value + "\r\n";
  text += "\r\n";
  const HeadParse again = parse_response_head(text.data(), text.size(), text.size());
  if (again.status != HeadStatus::complete || again.consumed != text.size() ||
      !same(again.head, head))
    __builtin_trap();
  return 0;
}
