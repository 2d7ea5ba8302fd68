// Parsing of the head of the HTTP/1.1 response to a WebSocket upgrade request (status line and
// header fields, up to the blank line). Sans-I/O: the caller feeds the bytes it has received so
// far and calls again with more until the result is complete or an error.
//
// Pure functions over their arguments: no global state, safe to call from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace wsgate::net {

// The most header fields parse_response_head accepts; one more is an error.
inline constexpr std::size_t kMaxResponseHeaders = 100;

// The head of the HTTP/1.1 response to an upgrade request. A plain value (owns its strings).
struct HttpResponseHead {
  int status = 0;                 // e.g. 101
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;  // in order, values trimmed
};

enum class HeadStatus { complete, need_more, error };

struct HeadParse {
  HeadStatus status;
  std::size_t consumed = 0;       // bytes of the head incl. the final CRLFCRLF (when complete)
  HttpResponseHead head;          // when complete
  std::string error;              // when error
};

// Parses [data, data+size): the bytes received so far, from the first byte of the response.
//
//   - need_more until the blank line that ends the head arrives. Call again with the same bytes
//     plus the new ones (the parser keeps no state; a call costs O(size), and size is bounded by
//     max_bytes, so feeding byte by byte costs at most O(max_bytes^2) in total).
//   - complete: `consumed` is the length of the head including the blank line; bytes after it
//     (the first WebSocket frames) are not looked at and are left to the caller.
//   - error, with a human-readable `error`, when:
//       * the head (including the blank line) would exceed max_bytes;
//       * the status line is not "HTTP/1.1 DDD reason" or "HTTP/1.0 DDD reason" (DDD three
//         digits, 100..599; the reason may be empty, with or without the space before it);
//       * a header line has no colon, an empty name, a name that is not an RFC 9110 token
//         (which includes whitespace before the colon), or starts with a space or tab
//         (obsolete line folding);
//       * a line contains a control character other than a tab (e.g. NUL, a CR not followed by
//         LF);
//       * there are more than kMaxResponseHeaders header fields.
//     Errors in complete lines are reported as soon as they are seen, before the head is
//     complete.
//
// Line ends: CRLF, and also a bare LF (lenient, like browsers and most clients); a CR is only
// accepted directly before LF. A blank line ends the head whichever form it takes ("\r\n\r\n",
// "\n\n", "\r\n\n", "\n\r\n"); `consumed` counts the bytes actually present.
//
// Header values are trimmed of leading and trailing spaces and tabs; names are kept as received
// (compare them case-insensitively). Duplicate headers are preserved in order. Bytes 0x80..0xFF
// (obs-text) are accepted in the reason and in values. `data` may be null when size is 0.
HeadParse parse_response_head(const char* data, std::size_t size, std::size_t max_bytes);

}  // namespace wsgate::net
