#include "service/session/per_message_deflate.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "service/net/quote.h"
#include "service/ws/ascii.h"
#include "service/ws/handshake.h"

namespace wsgate::session {
namespace {

constexpr std::uint8_t kTail[4] = {0x00, 0x00, 0xff, 0xff};  // RFC 7692 §7.2.1
// Output is produced in steps of this size: the most a bomb makes us hold beyond the limit.
constexpr std::size_t kInflateStep = 16384;
constexpr int kInflateWindowBits = 15;

struct Param {
  std::string name;
  std::optional<std::string> value;  // unquoted
};
struct Element {
  std::string name;
  std::vector<Param> params;
  std::string text;  // as sent, trimmed
};

bool is_tchar(char c) { return ws::is_token(std::string_view(&c, 1)); }

// Splits a Sec-WebSocket-Extensions value into elements (RFC 6455 §9.1 with RFC 7230 quoted
// strings). False when malformed.
bool parse_extension_list(std::string_view s, std::vector<Element>* out) {
  std::size_t i = 0;
  auto ows = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  };
  auto token = [&](std::string* t) {
    const std::size_t start = i;
    while (i < s.size() && is_tchar(s[i])) ++i;
    *t = std::string(s.substr(start, i - start));
    return i > start;
  };
  for (;;) {
    ows();
    if (i == s.size()) return true;  // empty list elements are allowed (RFC 7230 §7)
    if (s[i] == ',') {
      ++i;
      continue;
    }
    const std::size_t element_start = i;
    Element e;
    if (!token(&e.name)) return false;
    for (;;) {
      ows();
      if (i == s.size() || s[i] == ',') break;
      if (s[i] != ';') return false;
      ++i;
      ows();
      Param p;
      if (!token(&p.name)) return false;
      ows();
      if (i < s.size() && s[i] == '=') {
        ++i;
        ows();
        std::string v;
        if (i < s.size() && s[i] == '"') {
          ++i;
          bool closed = false;
          while (i < s.size()) {
            const char c = s[i++];
            if (c == '"') {
              closed = true;
              break;
            }
            if (c == '\\') {
              if (i == s.size()) return false;
              v += s[i++];
            } else {
              v += c;
            }
          }
          if (!closed) return false;
        } else if (!token(&v)) {
          return false;
        }
        p.value = std::move(v);
      }
      e.params.push_back(std::move(p));
    }
    e.text = std::string(ws::trim(s.substr(element_start, i - element_start)));
    out->push_back(std::move(e));
  }
}

// Window bits as RFC 7692 §7.1.2 spells them: 1*DIGIT, 8..15, no leading zero.
std::optional<std::uint32_t> window_bits(const std::string& v) {
  if (v.empty() || v.size() > 2 || v[0] == '0') return std::nullopt;
  std::uint32_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (n < 8 || n > 15) return std::nullopt;
  return n;
}

}  // namespace

std::string deflate_offer(const CompressionSettings& s) {
  std::string out(kPerMessageDeflate);
  if (s.client_no_context_takeover) out += "; client_no_context_takeover";
  if (s.server_no_context_takeover) out += "; server_no_context_takeover";
  if (s.server_max_window_bits != 0) {
    out += "; server_max_window_bits=" + std::to_string(s.server_max_window_bits);
  }
  // Always offered: without it a server that wants to limit our window (Python websockets does
  // by default) must decline compression altogether.
  out += "; client_max_window_bits";
  if (s.client_max_window_bits != 0) out += "=" + std::to_string(s.client_max_window_bits);
  return out;
}

DeflateNegotiation negotiate_deflate(const Headers& response_headers,
                                     const CompressionSettings& offered) {
  DeflateNegotiation out;
  std::vector<Element> elements;
  for (const auto& [name, value] : response_headers) {
    if (!ws::iequals(name, "Sec-WebSocket-Extensions")) continue;
    if (!parse_extension_list(value, &elements)) {
      out.error = "malformed Sec-WebSocket-Extensions header " + net::quote(value);
      return out;
    }
  }
  const Element* found = nullptr;
  for (const Element& e : elements) {
    if (!ws::iequals(e.name, kPerMessageDeflate)) continue;
    if (found != nullptr) {
      out.error = "permessage-deflate is accepted twice";
      return out;
    }
    found = &e;
  }
  if (found == nullptr) return out;  // declined
  out.element = found->text;
  auto refuse = [&](std::string why) {
    out.error = "the server's permessage-deflate answer " + net::quote(found->text) + ": " + why;
    return out;
  };

  DeflateAgreement a;
  a.client_max_window_bits = offered.client_max_window_bits != 0 ? offered.client_max_window_bits
                                                                  : 15;
  bool seen[4] = {};
  for (const Param& p : found->params) {
    int which = -1;
    if (p.name == "client_no_context_takeover") which = 0;
    if (p.name == "server_no_context_takeover") which = 1;
    if (p.name == "client_max_window_bits") which = 2;
    if (p.name == "server_max_window_bits") which = 3;
    if (which < 0) return refuse("unknown parameter " + net::quote(p.name));
    if (seen[which]) return refuse(p.name + " appears twice");
    seen[which] = true;
    if (which <= 1) {
      if (p.value) return refuse(p.name + " takes no value");
      (which == 0 ? a.client_no_context_takeover : a.server_no_context_takeover) = true;
      continue;
    }
    if (!p.value) return refuse(p.name + " needs a value (8..15)");
    const std::optional<std::uint32_t> bits = window_bits(*p.value);
    if (!bits) return refuse(p.name + "=" + net::quote(*p.value) + " is not a window size (8..15)");
    if (which == 2) {
      // Offered always (deflate_offer); the answer may only lower our window.
      if (offered.client_max_window_bits != 0 && *bits > offered.client_max_window_bits) {
        return refuse("client_max_window_bits=" + std::to_string(*bits) + " is above the " +
                      std::to_string(offered.client_max_window_bits) + " offered");
      }
      a.client_max_window_bits = *bits;
    } else {
      if (offered.server_max_window_bits != 0 && *bits > offered.server_max_window_bits) {
        return refuse("server_max_window_bits=" + std::to_string(*bits) + " is above the " +
                      std::to_string(offered.server_max_window_bits) + " offered");
      }
      a.server_max_window_bits = *bits;
    }
  }
  // RFC 7692 §7.1.1.1 and §7.1.2.1: a server accepts these offered parameters by answering them.
  if (offered.server_no_context_takeover && !a.server_no_context_takeover) {
    return refuse("server_no_context_takeover was offered and is missing");
  }
  if (offered.server_max_window_bits != 0 && !seen[3]) {
    return refuse("server_max_window_bits was offered and is missing");
  }
  out.agreement = a;
  return out;
}

void PerMessageDeflate::StreamDeleter::operator()(z_stream_s* z) const noexcept {
  if (inflater) {
    inflateEnd(z);
  } else {
    deflateEnd(z);
  }
  delete z;
}

PerMessageDeflate::PerMessageDeflate(const DeflateAgreement& agreement) : agreement_(agreement) {}

PerMessageDeflate::~PerMessageDeflate() = default;

PerMessageDeflate::InflateStatus PerMessageDeflate::run_inflate(const std::uint8_t* data,
                                                                std::size_t size,
                                                                std::string* out,
                                                                std::size_t start,
                                                                std::uint64_t limit,
                                                                std::string* error) {
  z_stream* z = inflater_.get();
  z->next_in = const_cast<Bytef*>(data);
  z->avail_in = static_cast<uInt>(size);  // a chunk of the engine's receive buffer: < 4 GiB
  for (;;) {
    const std::uint64_t produced = out->size() - start;
    // One byte beyond the limit is asked for, so "exactly the limit" and "more" differ.
    const std::uint64_t left = limit - produced;
    const std::uint64_t room = left >= kInflateStep ? kInflateStep : left + 1;
    const std::size_t used = out->size();
    out->resize(used + room);
    z->next_out = reinterpret_cast<Bytef*>(out->data() + used);
    z->avail_out = static_cast<uInt>(room);
    const int rc = ::inflate(z, Z_SYNC_FLUSH);
    out->resize(used + room - z->avail_out);
    if (out->size() - start > limit) return InflateStatus::too_big;
    if (rc == Z_STREAM_END) {
      // A block with BFINAL set (§7.2.3.4): the server's next bytes start a new stream.
      inflateReset(z);
      if (z->avail_in == 0) return InflateStatus::ok;
      continue;
    }
    if (rc == Z_BUF_ERROR && z->avail_in == 0) return InflateStatus::ok;  // needs more input
    if (rc != Z_OK) {
      *error = z->msg != nullptr ? z->msg : "zlib error " + std::to_string(rc);
      return InflateStatus::corrupt;
    }
    if (z->avail_in == 0 && z->avail_out != 0) return InflateStatus::ok;  // all of it, flushed
  }
}

PerMessageDeflate::InflateStatus PerMessageDeflate::inflate(const std::uint8_t* data,
                                                            std::size_t size, bool final,
                                                            std::string* out,
                                                            std::uint64_t limit,
                                                            std::string* error) {
  if (!inflater_) {
    Stream z(new z_stream{}, StreamDeleter{true});
    if (inflateInit2(z.get(), -kInflateWindowBits) != Z_OK) {
      delete z.release();  // nothing to end: init failed
      *error = "zlib cannot make a decompressor (out of memory)";
      return InflateStatus::corrupt;
    }
    inflater_ = std::move(z);
  }
  const std::size_t start = out->size();
  InflateStatus s = run_inflate(data, size, out, start, limit, error);
  if (s == InflateStatus::ok && final) {
    s = run_inflate(kTail, sizeof kTail, out, start, limit, error);
    if (s == InflateStatus::ok && agreement_.server_no_context_takeover) inflateReset(inflater_.get());
  }
  return s;
}

bool PerMessageDeflate::deflate(const std::uint8_t* data, std::size_t size, std::string* out) {
  if (!can_compress() || size > 0xFFFFFFFFu) return false;
  if (!deflater_) {
    Stream z(new z_stream{}, StreamDeleter{false});
    if (deflateInit2(z.get(), Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                     -static_cast<int>(agreement_.client_max_window_bits), 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      delete z.release();
      return false;
    }
    deflater_ = std::move(z);
  }
  z_stream* z = deflater_.get();
  out->clear();
  z->next_in = const_cast<Bytef*>(data);
  z->avail_in = static_cast<uInt>(size);
  // deflateBound is for a finished stream; a sync flush adds its empty block (5 bytes).
  std::size_t step = deflateBound(z, static_cast<uLong>(size)) + 16;
  do {
    const std::size_t used = out->size();
    out->resize(used + step);
    z->next_out = reinterpret_cast<Bytef*>(out->data() + used);
    z->avail_out = static_cast<uInt>(step);
    const int rc = ::deflate(z, Z_SYNC_FLUSH);
    out->resize(used + step - z->avail_out);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      deflater_.reset();  // its state is unknown: a new one next time
      return false;
    }
    step = 4096;
  } while (z->avail_out == 0);
  if (out->size() >= 4 && std::memcmp(out->data() + out->size() - 4, kTail, 4) == 0) {
    out->resize(out->size() - 4);
  }
  if (agreement_.client_no_context_takeover) deflateReset(z);
  return true;
}

}  // namespace wsgate::session
