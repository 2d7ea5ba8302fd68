#include "service/rpc/client_message.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>

#include "service/net/quote.h"
#include "service/net/url.h"
#include "service/session/per_message_deflate.h"
#include "service/ws/ascii.h"
#include "service/ws/frame.h"
#include "service/ws/handshake.h"

namespace wsgate::rpc {
namespace {

// TLS contexts per configuration: making one loads the trust store (the system bundle is a few
// hundred certificates) and parses the PEM, which costs far more than the handshake's own work,
// so sessions with the same TLS settings share one (an SSL_CTX is safe to share across threads
// once set up). Only settings without file paths from the Open are cached (a named file is read
// for each session, as before); entries expire after a minute, so a rotated trust store or
// [tls] ca_file is picked up, and the cache is bounded. server_name is not part of the context
// (it is set per connection). Thread safety: one mutex.
net::TlsContextResult cached_tls_context(const net::TlsSettings& tls,
                                         const std::string& default_ca_file) {
  const bool names_files =
      !tls.ca_file.empty() || !tls.client_cert_file.empty() || !tls.client_key_file.empty();
  if (names_files) return net::make_tls_context(tls, default_ca_file);
  constexpr std::size_t kMaxEntries = 64;
  constexpr auto kLifetime = std::chrono::seconds(60);
  struct Entry {
    std::shared_ptr<asio::ssl::context> context;
    std::chrono::steady_clock::time_point made;
  };
  static std::mutex mutex;
  static std::map<std::string, Entry> cache;
  std::string key;
  for (const std::string* part : {&tls.ca_pem, &tls.client_cert_pem, &tls.client_key_pem,
                                  &default_ca_file}) {
    key += std::to_string(part->size()) + ":" + *part;
  }
  key += tls.min_version == net::TlsMinVersion::tls1_3 ? "3" : "2";
  key += tls.insecure_skip_verify ? "i" : "v";
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex);
    auto it = cache.find(key);
    if (it != cache.end() && now - it->second.made < kLifetime) {
      return {it->second.context, ""};
    }
  }
  net::TlsContextResult made = net::make_tls_context(tls, default_ca_file);  // outside the lock
  if (made.context) {
    std::lock_guard lock(mutex);
    if (cache.size() >= kMaxEntries) cache.clear();
    cache[key] = Entry{made.context, now};
  }
  return made;
}

using v1::ClientMessage;

OpenValidation refuse(std::string message,
                      grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT) {
  OpenValidation out;
  out.refusal.code = code;
  out.refusal.message = std::move(message);
  return out;
}

std::string at(const char* field, int index) {
  return std::string("open.") + field + "[" + std::to_string(index) + "]";
}

bool is_tchar(char c) {
  return ws::is_token(std::string_view(&c, 1));
}

// quoted-string (RFC 7230 §3.2.6) at the start of `s`; returns its length, 0 when malformed.
std::size_t quoted_string_length(std::string_view s) {
  if (s.empty() || s[0] != '"') return 0;
  for (std::size_t i = 1; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') return i + 1;
    if (c == '\\') {
      if (++i == s.size()) return 0;
      continue;
    }
    if (c < 0x20 && c != '\t') return 0;
    if (c == 0x7f) return 0;
  }
  return 0;
}

}  // namespace

bool is_valid_extension_offer(std::string_view s) {
  // extension = token *( OWS ";" OWS token [ "=" ( token / quoted-string ) ] )  (RFC 6455 §9.1)
  std::size_t i = 0;
  auto skip_ows = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  };
  auto token = [&] {
    const std::size_t start = i;
    while (i < s.size() && is_tchar(s[i])) ++i;
    return i > start;
  };
  skip_ows();
  if (!token()) return false;
  for (;;) {
    skip_ows();
    if (i == s.size()) return true;
    if (s[i] != ';') return false;
    ++i;
    skip_ows();
    if (!token()) return false;
    skip_ows();
    if (i < s.size() && s[i] == '=') {
      ++i;
      skip_ows();
      if (i < s.size() && s[i] == '"') {
        const std::size_t n = quoted_string_length(s.substr(i));
        if (n == 0) return false;
        i += n;
      } else if (!token()) {
        return false;
      }
    }
  }
}

OpenValidation validate_open(const v1::Open& open, const GatewayDefaults& defaults) {
  net::UrlResult parsed = net::parse_websocket_url(open.url());
  if (!parsed.url) return refuse("open.url: " + parsed.error);

  // The request head: counted before anything is looked at item by item, so a client cannot
  // make the daemon walk 10 000 headers.
  if (static_cast<std::uint64_t>(open.headers_size()) > defaults.max_request_headers) {
    return refuse("open.headers: " + std::to_string(open.headers_size()) +
                  " extra headers, more than limits.max_request_headers (" +
                  std::to_string(defaults.max_request_headers) + ")");
  }
  std::uint64_t head_bytes = 0;
  for (const auto& h : open.headers()) head_bytes += h.name().size() + h.value().size() + 4;
  for (const auto& s : open.subprotocols()) head_bytes += s.size() + 2;
  for (const auto& e : open.extensions()) head_bytes += e.size() + 2;
  if (head_bytes > defaults.max_request_header_bytes) {
    return refuse("open: the extra headers, subprotocols and extensions take " +
                  std::to_string(head_bytes) +
                  " bytes of the upgrade request, more than limits.max_request_header_bytes (" +
                  std::to_string(defaults.max_request_header_bytes) + ")");
  }

  session::Settings settings;
  net::ConnectOptions connect;
  settings.url = std::move(*parsed.url);
  for (int i = 0; i < open.subprotocols_size(); ++i) {
    const std::string& s = open.subprotocols(i);
    if (!ws::is_token(s)) {
      return refuse(at("subprotocols", i) + ": " + net::quote(s) +
                    " is not an HTTP token (RFC 7230 tchar+)");
    }
    for (int j = 0; j < i; ++j) {
      if (open.subprotocols(j) == s) {
        return refuse(at("subprotocols", i) + ": " + net::quote(s) + " is offered twice");
      }
    }
    settings.subprotocols.push_back(s);
  }
  for (int i = 0; i < open.extensions_size(); ++i) {
    const std::string& e = open.extensions(i);
    if (!is_valid_extension_offer(e)) {
      return refuse(at("extensions", i) + ": " + net::quote(e) +
                    " is not one extension offer (token *(\";\" param[=value]))");
    }
    // The gateway frames and decodes every message itself, so it can only offer extensions it
    // implements: one whose frames it cannot read would fail the session at the first one.
    const std::string_view name = ws::trim(std::string_view(e).substr(0, e.find(';')));
    if (ws::iequals(name, session::kPerMessageDeflate)) {
      return refuse(at("extensions", i) +
                    ": permessage-deflate is negotiated by the gateway itself: set "
                    "open.compression.mode = COMPRESSION_MODE_ON (and its parameters) instead");
    }
    return refuse(at("extensions", i) + ": " + net::quote(std::string(name)) +
                  " is not implemented by the gateway (it implements permessage-deflate, "
                  "offered through open.compression)");
  }
  for (int i = 0; i < open.headers_size(); ++i) {
    const auto& h = open.headers(i);
    net::HeaderProblem problem = net::check_extra_header(h.name(), h.value());
    if (!problem.message.empty()) {
      return refuse(at("headers", i) + (problem.in_name ? ".name: " : ".value: ") +
                    problem.message);
    }
    settings.headers.emplace_back(h.name(), h.value());
  }

  const auto& tls = open.tls();
  const bool names_files = !tls.ca_file().empty() || !tls.client_cert_file().empty() ||
                           !tls.client_key_file().empty();
  if (names_files && !defaults.allow_client_file_paths) {
    return refuse(
        "open.tls: file paths are disabled by the daemon's configuration "
        "(tls.allow_client_file_paths); send PEM text instead",
        grpc::StatusCode::PERMISSION_DENIED);
  }
  net::TlsOptions tls_options;
  tls_options.ca_file = tls.ca_file();
  tls_options.ca_pem = tls.ca_pem();
  tls_options.client_cert_file = tls.client_cert_file();
  tls_options.client_cert_pem = tls.client_cert_pem();
  tls_options.client_key_file = tls.client_key_file();
  tls_options.client_key_pem = tls.client_key_pem();
  tls_options.server_name = tls.server_name();
  tls_options.min_version = tls.min_version() == v1::TLS_VERSION_1_3
                                ? net::TlsMinVersion::tls1_3
                                : net::TlsMinVersion::tls1_2;
  tls_options.insecure_skip_verify = tls.insecure_skip_verify();
  tls_options.default_ca_file = defaults.default_ca_file;
  const bool names_tls_material = names_files || !tls.ca_pem().empty() ||
                                  !tls.client_cert_pem().empty() || !tls.client_key_pem().empty();
  if (settings.url.secure || names_tls_material) {
    // OpenSSL parses the PEM text (and reads the allowed files) now, not after the connect.
    net::TlsContextResult made = cached_tls_context(tls_options, tls_options.default_ca_file);
    if (!made.context) return refuse("open.tls: " + made.error);
    if (settings.url.secure) {
      // Only wss:// keeps them: a ws:// session (its TLS material checked all the same) carries
      // no TLS options.
      tls_options.context = std::move(made.context);
      connect.tls = std::make_unique<const net::TlsOptions>(std::move(tls_options));
    }
  }

  auto pick = [](std::uint32_t requested, std::chrono::milliseconds fallback) {
    return requested != 0 ? std::chrono::milliseconds(requested) : fallback;
  };
  static_cast<session::Tuning&>(settings) = defaults;  // then what the client may override
  settings.connect_timeout = pick(open.timeouts().connect_ms(), defaults.connect_timeout);
  settings.handshake_timeout = pick(open.timeouts().handshake_ms(), defaults.handshake_timeout);
  settings.close_timeout = pick(open.timeouts().close_ms(), defaults.close_timeout);
  connect.connection_attempt_delay = defaults.connection_attempt_delay;
  settings.max_message_bytes =
      open.limits().max_message_bytes() != 0
          ? std::min(open.limits().max_message_bytes(), defaults.max_message_bytes_ceiling)
          : defaults.max_message_bytes;
  settings.max_queued_bytes =
      open.limits().max_queued_bytes() != 0
          ? std::min(open.limits().max_queued_bytes(), defaults.max_queued_bytes)
          : defaults.max_queued_bytes;
  settings.stream_fragments = open.stream_fragments();
  // permessage-deflate: the daemon's [compression] settings (copied with the tuning above),
  // then what the client asks for (zero/false: the daemon's).
  const v1::Compression& c = open.compression();
  session::CompressionSettings& z = settings.compression;
  if (!v1::Compression::Mode_IsValid(c.mode())) {
    return refuse("open.compression.mode: " + std::to_string(c.mode()) +
                  " is not a Compression.Mode");
  }
  if (c.mode() == v1::Compression::COMPRESSION_MODE_ON) z.enabled = true;
  if (c.mode() == v1::Compression::COMPRESSION_MODE_OFF) z.enabled = false;
  z.client_no_context_takeover |= c.client_no_context_takeover();
  z.server_no_context_takeover |= c.server_no_context_takeover();
  if (c.server_max_window_bits() != 0) {
    if (c.server_max_window_bits() < 8 || c.server_max_window_bits() > 15) {
      return refuse("open.compression.server_max_window_bits: " +
                    std::to_string(c.server_max_window_bits()) + " is not 8..15 (or 0: default)");
    }
    z.server_max_window_bits = c.server_max_window_bits();
  }
  if (c.client_max_window_bits() != 0) {
    if (c.client_max_window_bits() < 9 || c.client_max_window_bits() > 15) {
      return refuse("open.compression.client_max_window_bits: " +
                    std::to_string(c.client_max_window_bits()) +
                    " is not 9..15 (or 0: default); 8 is valid in RFC 7692 but zlib cannot "
                    "deflate with a 256-byte window");
    }
    z.client_max_window_bits = c.client_max_window_bits();
  }
  if (c.threshold_bytes() != 0) z.threshold_bytes = c.threshold_bytes();

  // The HTTP proxy: the session's own choice, else the daemon's (config/environment, with its
  // no_proxy list). A proxy a client names is checked against the destination policy too.
  if (!settings.url.unix_path.empty() && !open.proxy().empty() &&
      !ws::iequals(open.proxy(), "direct")) {
    return refuse("open.proxy: a ws+unix URL is reached directly, never through a proxy");
  }
  if (ws::iequals(open.proxy(), "direct") || !settings.url.unix_path.empty()) {
    connect.proxy.reset();
  } else if (!open.proxy().empty()) {
    net::ProxyUrlResult proxy = net::parse_proxy_url(open.proxy());
    if (!proxy.proxy) {
      return refuse("open.proxy: " + proxy.error + " (or \"direct\", or empty for the daemon's)");
    }
    if (!defaults.allow_session_proxies) {
      return refuse("open.proxy: proxies named by a session are disabled by the daemon's "
                    "configuration (proxy.allow_session_proxies); leave it empty for the "
                    "daemon's proxy or say \"direct\"",
                    grpc::StatusCode::PERMISSION_DENIED);
    }
    proxy.proxy->check_policy = true;
    connect.proxy = std::move(proxy.proxy);
  } else if (defaults.proxy) {
    connect.proxy = defaults.proxy->select(settings.url);
  }
  if (connect.proxy) settings.proxy_name = connect.proxy->authority();
  OpenValidation out;
  out.settings = std::move(settings);
  out.connect = std::move(connect);
  return out;
}

ClientMessageTranslator::Result ClientMessageTranslator::translate(ClientMessage& in) {
  Result out;
  auto refuse_with = [&](std::string message,
                         grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT) {
    out.kind = Result::Kind::refuse;
    out.refusal.code = code;
    out.refusal.message = std::move(message);
    return std::move(out);
  };
  auto valid_utf8 = [](const std::string& data) {
    return ws::is_valid_utf8(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  };
  if (close_sent_ && in.kind_case() != ClientMessage::KIND_NOT_SET &&
      in.kind_case() != ClientMessage::kOpen) {
    // The closing handshake has started: the upstream connection sends nothing more, and a
    // message dropped without a word would look delivered.
    out.refusal.cause = "after_close";
    return refuse_with("a message after the client's `close` cannot be sent",
                       grpc::StatusCode::FAILED_PRECONDITION);
  }
  net::OutgoingMessage& m = out.message;
  switch (in.kind_case()) {
    case ClientMessage::kText:
      if (fragment_open_) {
        return refuse_with("a text message cannot start inside a fragmented message");
      }
      if (!valid_utf8(in.text())) return refuse_with("text must be valid UTF-8");
      m.kind = net::OutgoingMessage::Kind::text;
      m.data = std::move(*in.mutable_text());
      break;
    case ClientMessage::kBinary:
      if (fragment_open_) {
        return refuse_with("a binary message cannot start inside a fragmented message");
      }
      m.kind = net::OutgoingMessage::Kind::binary;
      m.data = std::move(*in.mutable_binary());
      break;
    case ClientMessage::kFragment: {
      const bool text = fragment_open_ ? fragment_text_ : in.fragment().text();
      if (text) {
        // Validated per fragment, carrying incomplete sequences to the next one.
        const auto& d = in.fragment().data();
        if (!fragment_open_) fragment_utf8_.reset();
        if (!fragment_utf8_.feed(reinterpret_cast<const std::uint8_t*>(d.data()), d.size(),
                                 in.fragment().final())) {
          return refuse_with("text fragments must be valid UTF-8");
        }
      }
      m.kind = text ? net::OutgoingMessage::Kind::text_fragment
                    : net::OutgoingMessage::Kind::binary_fragment;
      m.data = std::move(*in.mutable_fragment()->mutable_data());
      m.final = in.fragment().final();
      fragment_text_ = text;
      fragment_open_ = !m.final;
      break;
    }
    case ClientMessage::kPing:
      m.kind = net::OutgoingMessage::Kind::ping;
      break;
    case ClientMessage::kClose: {
      const auto code = in.close().code();
      if (code != 0 &&
          (code > 0xFFFF || !ws::is_valid_wire_close_code(static_cast<std::uint16_t>(code)))) {
        return refuse_with("close.code " + std::to_string(code) +
                           " cannot be sent (use 1000-1003, 1007-1014 or 3000-4999, or 0 for "
                           "none)");
      }
      if (in.close().reason().size() > ws::kMaxCloseReasonLength) {
        return refuse_with("close.reason is longer than 123 bytes");
      }
      if (code == 0 && !in.close().reason().empty()) {
        return refuse_with("close.reason needs a close.code");
      }
      if (!valid_utf8(in.close().reason())) return refuse_with("text must be valid UTF-8");
      m.kind = net::OutgoingMessage::Kind::close;
      m.close_code = static_cast<std::uint16_t>(code);
      m.data = in.close().reason();
      out.kind = Result::Kind::close;
      close_sent_ = true;
      return out;
    }
    case ClientMessage::kOpen:
      return refuse_with("the session is already open");
    case ClientMessage::KIND_NOT_SET:
      return refuse_with("empty ClientMessage");
  }
  out.kind = Result::Kind::send;
  return out;
}

}  // namespace wsgate::rpc
