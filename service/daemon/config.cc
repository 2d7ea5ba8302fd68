// wsgated's configuration: TOML -> Config (toml++), plus the rules of validate().
//
// Two layers of checks:
//  - parse_config() rejects anything that does not fit the schema: unknown tables and keys, wrong
//    TOML types, numbers outside the field's range, and values that break a rule of their own key
//    (a malformed CIDR, an unknown log level...). Its errors name the source, the key and the line.
//  - validate() re-runs the per-key rules on a finished Config (which command-line flags may have
//    changed after the file was read) and adds the rules that involve several keys.
// Both use the same check_* functions below, so a file and a flag get the same message.
//
// An empty listen.unix_socket means "default_socket_path()"; the daemon resolves it at start-up.
#include "service/daemon/config.h"
#include "service/net/destination_policy.h"

// Asio's portable socket headers (BSD sockets on POSIX, Winsock on Windows): inet_pton and
// the size of a unix socket path (sockaddr_un_type: sockaddr_un, or Asio's twin on Windows).
#include <asio/detail/socket_types.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string_view>

#include <toml++/toml.h>

#include "service/net/http_proxy.h"

namespace wsgate::daemon {

namespace {

constexpr std::uint32_t kKeepaliveFloorMs = 15000;
constexpr std::uint32_t kMaxIoThreads = 64;
constexpr std::uint32_t kMaxSocketMode = 07777;
constexpr std::uint32_t kMaxId = 4294967294u;  // (uid_t)-1 means "no id"

// gRPC takes its maximum message size as an int.
constexpr std::uint64_t kMaxGrpcMessageBytes = std::numeric_limits<std::int32_t>::max();

constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug", "info", "warn",
                                                        "error", "critical", "off"};
constexpr std::array<std::string_view, 2> kLogFormats = {"text", "json"};

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

template <std::size_t N>
std::string join(const std::array<std::string_view, N>& names) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i) {
    if (i != 0) out += ", ";
    out += names[i];
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Parses a decimal port number (no sign, no spaces, at most 5 digits) into *out.
bool parse_port_number(std::string_view s, std::uint32_t* out) {
  if (!all_digits(s) || s.size() > 5) return false;
  std::uint32_t v = 0;
  for (char c : s) v = v * 10 + static_cast<std::uint32_t>(c - '0');
  *out = v;
  return v <= 65535;
}

bool is_ipv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& s) {
  in6_addr a{};
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

// A DNS name: dot-separated labels of letters, digits, '-' and '_', 1..63 characters each, at most
// 253 in all, no leading/trailing '-' in a label, and a last label that is not all digits.
bool is_hostname(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    const std::string_view label =
        s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_';
      if (!ok) return false;
    }
    if (dot == std::string_view::npos) return !all_digits(label);  // "999.1.1.1" is no name
    start = dot + 1;
  }
}

// ---- per-key rules, shared by parse_config() and validate(); each returns "" when valid --------

std::string check_log_level(std::string_view v) {
  if (std::find(kLogLevels.begin(), kLogLevels.end(), v) != kLogLevels.end()) return {};
  return "unknown log level " + quoted(v) + " (expected one of " + join(kLogLevels) + ")";
}

std::string check_log_format(std::string_view v) {
  if (std::find(kLogFormats.begin(), kLogFormats.end(), v) != kLogFormats.end()) return {};
  return "unknown log format " + quoted(v) + " (expected one of " + join(kLogFormats) + ")";
}

std::string check_unix_socket(std::string_view path) {
  if (path.find('\0') != std::string_view::npos) return "the path contains a NUL character";
  constexpr std::size_t kSunPath = sizeof(asio::detail::sockaddr_un_type{}.sun_path);
  if (path.size() >= kSunPath) {
    return "the path is " + std::to_string(path.size()) + " bytes long; a unix socket path has at most " +
           std::to_string(kSunPath - 1);
  }
  return {};
}

std::string check_socket_mode(std::uint32_t mode) {
  if (mode <= kMaxSocketMode) return {};
  char buf[32];
  std::snprintf(buf, sizeof buf, "0o%o", mode);
  return std::string("file mode ") + buf + " is out of range (at most 0o7777)";
}

// "host:port"; IPv6 literals in brackets; port 0..65535 (0: the system picks one).
std::string check_tcp_endpoint(std::string_view v) {
  if (v.empty()) return {};  // no TCP listener
  std::string host;
  std::string_view port;
  if (v.front() == '[') {
    const std::size_t close = v.find(']');
    if (close == std::string_view::npos) return quoted(v) + ": missing ']' after the IPv6 address";
    host = std::string(v.substr(1, close - 1));
    if (!is_ipv6(host)) return quoted(v) + ": " + quoted(host) + " is not an IPv6 address";
    if (close + 1 >= v.size() || v[close + 1] != ':') {
      return quoted(v) + ": expected host:port, e.g. [::1]:9000";
    }
    port = v.substr(close + 2);
  } else {
    const std::size_t colon = v.rfind(':');
    if (colon == std::string_view::npos) return quoted(v) + ": expected host:port, e.g. 127.0.0.1:9000";
    host = std::string(v.substr(0, colon));
    if (host.find(':') != std::string::npos) {
      return quoted(v) + ": an IPv6 address needs brackets, e.g. [::1]:9000";
    }
    if (!is_ipv4(host) && !is_hostname(host)) return quoted(v) + ": " + quoted(host) + " is not a host name or address";
    port = v.substr(colon + 1);
  }
  std::uint32_t p = 0;
  if (!parse_port_number(port, &p)) return quoted(v) + ": the port must be a number from 0 to 65535";
  return {};
}

// Host names ("example.com"), wildcards for subdomains ("*.example.com") and IP literals.
std::string check_host_pattern(std::string_view v) {
  if (v == "*") return quoted(v) + ": to allow every host, leave the list empty";
  std::string_view name = v;
  if (name.starts_with("*.")) name.remove_prefix(2);
  std::string literal(name);
  if (literal.size() >= 2 && literal.front() == '[' && literal.back() == ']') {
    literal = literal.substr(1, literal.size() - 2);
  }
  if (name.size() == v.size() && (is_ipv4(literal) || is_ipv6(literal))) return {};
  if (is_hostname(name)) return {};
  return quoted(v) + " is not a host name, *.domain wildcard or IP address";
}

// [proxy]: the URL and list rules are http_proxy.h's (the errors never show credentials).
std::string check_proxy_url(std::string_view v) {
  if (v.empty()) return {};
  net::ProxyUrlResult r = net::parse_proxy_url(v);
  return r.proxy ? std::string() : r.error;
}

std::string check_no_proxy(std::string_view v) {
  std::string error;
  return net::NoProxy::parse(v, &error) ? std::string() : error;
}

std::string check_proxy_authorization(std::string_view v) {
  if (v.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    return "the value has CR, LF or NUL";
  }
  return {};
}

// "address/prefix", IPv4 or IPv6, no host bits set beyond the prefix.
std::string check_cidr(std::string_view v) {
  const std::size_t slash = v.find('/');
  if (slash == std::string_view::npos) {
    return quoted(v) + " is not a CIDR: expected address/prefix, e.g. 10.0.0.0/8 or ::1/128";
  }
  const std::string addr(v.substr(0, slash));
  const std::string_view prefix_text = v.substr(slash + 1);
  std::array<unsigned char, 16> bytes{};
  std::size_t bits = 0;
  if (inet_pton(AF_INET, addr.c_str(), bytes.data()) == 1) {
    bits = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), bytes.data()) == 1) {
    bits = 128;
  } else {
    return quoted(v) + ": " + quoted(addr) + " is not an IPv4 or IPv6 address";
  }
  if (!all_digits(prefix_text) || prefix_text.size() > 3) {
    return quoted(v) + ": the prefix length must be a number from 0 to " + std::to_string(bits);
  }
  const std::size_t prefix = static_cast<std::size_t>(std::stoul(std::string(prefix_text)));
  if (prefix > bits) {
    return quoted(v) + ": prefix length " + std::to_string(prefix) + " is out of range (0 to " +
           std::to_string(bits) + ")";
  }
  for (std::size_t bit = prefix; bit < bits; ++bit) {
    if (bytes[bit / 8] & (0x80u >> (bit % 8))) {
      return quoted(v) + ": the address has bits set beyond the /" + std::to_string(prefix) +
             " prefix (write the network address)";
    }
  }
  return {};
}

// "443" or "8000-8999", within 1..65535.
std::string check_port_spec(std::string_view v) {
  const std::size_t dash = v.find('-');
  std::uint32_t lo = 0;
  std::uint32_t hi = 0;
  const bool ok = dash == std::string_view::npos
                      ? parse_port_number(v, &lo) && (hi = lo, true)
                      : parse_port_number(v.substr(0, dash), &lo) && parse_port_number(v.substr(dash + 1), &hi);
  if (!ok || lo == 0 || hi == 0) {
    return quoted(v) + " is not a port or port range (expected a number from 1 to 65535, or a-b)";
  }
  if (lo > hi) return quoted(v) + ": the range is empty (the first port is above the last)";
  return {};
}

std::string check_keepalive(std::uint32_t ms) {
  if (ms >= kKeepaliveFloorMs) return {};
  return "must be at least " + std::to_string(kKeepaliveFloorMs) + " ms (the keepalive floor), got " +
         std::to_string(ms);
}

std::string check_positive(std::uint64_t v) { return v > 0 ? std::string() : "must be greater than 0"; }

// [compression] window bits: 0 (the default) or the range RFC 7692 allows; the gateway's own
// window starts at 9, since zlib cannot deflate with 8.
std::string check_window_bits(std::uint32_t v, std::uint32_t min) {
  if (v == 0 || (v >= min && v <= 15)) return {};
  std::string why = "must be 0 or from " + std::to_string(min) + " to 15, got " + std::to_string(v);
  if (v == 8) why += " (zlib cannot deflate with a 256-byte window: use 9)";
  return why;
}

// Gateway hardening keys: bounds of limits.max_request_headers, max_request_header_bytes and
// memory_budget_bytes.
constexpr std::uint64_t kMaxRequestHeaders = 1000;
constexpr std::uint64_t kMaxRequestHeaderBytes = 1u << 20;
constexpr std::uint64_t kMinMemoryBudgetBytes = 1u << 20;
constexpr std::uint64_t kMaxMemoryBudgetBytes = std::uint64_t{1} << 62;
std::string check_range(std::uint64_t v, std::uint64_t min, std::uint64_t max) {
  if (v >= min && v <= max) return {};
  return "must be from " + std::to_string(min) + " to " + std::to_string(max) + ", got " +
         std::to_string(v);
}

// Happy Eyeballs' connection attempt delay: RFC 8305 section 8 bounds it to 100 ms .. 2 s.
constexpr std::uint64_t kMinAttemptDelayMs = 100;
constexpr std::uint64_t kMaxAttemptDelayMs = 2000;
std::string check_unix_socket_pattern(std::string_view v) { return net::unix_socket_pattern_problem(v); }

std::string check_io_threads(std::uint32_t v) {
  if (v >= 1 && v <= kMaxIoThreads) return {};
  return "must be from 1 to " + std::to_string(kMaxIoThreads) + ", got " + std::to_string(v);
}

std::string check_grpc_message_bytes(std::uint64_t v) {
  if (v == 0) return "must be greater than 0";
  if (v > kMaxGrpcMessageBytes) {
    return "must be at most " + std::to_string(kMaxGrpcMessageBytes) + " (gRPC's limit), got " + std::to_string(v);
  }
  return {};
}

// ---- the TOML walker -----------------------------------------------------------------------------

struct ParseFailure {
  std::string message;
};

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0u : 1u)});
      diag = up;
    }
  }
  return row[b.size()];
}

class Walker {
 public:
  using Handler = std::function<void(const toml::node&, const std::string& key)>;
  struct Field {
    std::string_view name;
    Handler handle;
  };

  explicit Walker(std::string source) : source_(std::move(source)) {}

  // Every error met so far, one per key (walk() goes on with the next key after one fails).
  const std::vector<std::string>& errors() const { return errors_; }

  [[noreturn]] void fail(const std::string& key, const toml::node& node, const std::string& why) const {
    std::string msg = source_ + ": " + key + ": " + why;
    const auto& begin = node.source().begin;
    if (begin.line != 0) msg += " (line " + std::to_string(begin.line) + ")";
    throw ParseFailure{std::move(msg)};
  }

  // Runs the handler of each key of `table`; unknown keys are errors.
  void walk(const toml::table& table, const std::string& prefix, const std::vector<Field>& fields,
            std::string_view what) const {
    for (auto&& [k, node] : table) {
      const std::string_view name = k.str();
      const std::string key = prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
      auto it = std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.name == name; });
      if (it == fields.end()) {
        std::string why = std::string("unknown ") + std::string(what);
        std::string_view best;
        std::size_t best_distance = 3;
        for (const Field& f : fields) {
          const std::size_t d = edit_distance(name, f.name);
          if (d < best_distance) {
            best_distance = d;
            best = f.name;
          }
        }
        if (!best.empty()) why += "; did you mean " + std::string(best) + "?";
        try {
          fail(key, node, why);
        } catch (const ParseFailure& f) {
          errors_.push_back(f.message);
        }
        continue;
      }
      try {
        it->handle(node, key);
      } catch (const ParseFailure& f) {
        errors_.push_back(f.message);  // report it with the others; the key keeps its default
      }
    }
  }

  std::int64_t integer(const toml::node& n, const std::string& key, std::string_view expected) const {
    if (!n.is_integer()) fail(key, n, "expected " + std::string(expected) + ", got " + std::string(type_name(n)));
    return n.as_integer()->get();
  }

  // An unsigned field: rejects other types and values outside [min, max].
  template <class T>
  void unsigned_field(const toml::node& n, const std::string& key, T* out, std::uint64_t min,
                      std::uint64_t max = std::numeric_limits<T>::max()) const {
    std::string expected;
    if (max == std::numeric_limits<T>::max()) {
      expected = min == 0 ? "a non-negative integer" : "a positive integer";
    } else {
      expected = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
    }
    const std::int64_t v = integer(n, key, expected);
    if (v < 0 || static_cast<std::uint64_t>(v) < min) fail(key, n, "expected " + expected + ", got " + std::to_string(v));
    if (static_cast<std::uint64_t>(v) > max) {
      fail(key, n, std::to_string(v) + " is out of range (at most " + std::to_string(max) + ")");
    }
    *out = static_cast<T>(v);
  }

  void string_field(const toml::node& n, const std::string& key, std::string* out) const {
    if (!n.is_string()) fail(key, n, "expected a string, got " + std::string(type_name(n)));
    *out = n.as_string()->get();
  }

  void bool_field(const toml::node& n, const std::string& key, bool* out) const {
    if (!n.is_boolean()) fail(key, n, "expected a boolean (true or false), got " + std::string(type_name(n)));
    *out = n.as_boolean()->get();
  }

  // An array of strings; with allow_integers, integer elements are taken as their decimal text.
  void string_list(const toml::node& n, const std::string& key, std::vector<std::string>* out,
                   const std::function<std::string(std::string_view)>& check, bool allow_integers = false) const {
    const toml::array* arr = n.as_array();
    const std::string expected = allow_integers ? "an array of strings or integers" : "an array of strings";
    if (arr == nullptr) fail(key, n, "expected " + expected + ", got " + std::string(type_name(n)));
    out->clear();
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const toml::node& e = *arr->get(i);
      const std::string ekey = key + "[" + std::to_string(i) + "]";
      std::string value;
      if (e.is_string()) {
        value = e.as_string()->get();
      } else if (allow_integers && e.is_integer()) {
        value = std::to_string(e.as_integer()->get());
      } else {
        fail(ekey, e, "expected " + std::string(allow_integers ? "a string or integer" : "a string") + ", got " +
                          std::string(type_name(e)));
      }
      if (std::string why = check(value); !why.empty()) fail(ekey, e, why);
      out->push_back(std::move(value));
    }
  }

  // An array of ids (uids or gids): integers from 0 to 4294967294 (-1 is no id).
  void id_list(const toml::node& n, const std::string& key, std::vector<std::uint32_t>* out) const {
    const toml::array* arr = n.as_array();
    if (arr == nullptr) fail(key, n, "expected an array of integers (uids or gids), got " + std::string(type_name(n)));
    out->clear();
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const toml::node& e = *arr->get(i);
      std::uint32_t id = 0;
      unsigned_field(e, key + "[" + std::to_string(i) + "]", &id, 0, kMaxId);
      out->push_back(id);
    }
  }

  const toml::table& table(const toml::node& n, const std::string& key) const {
    const toml::table* t = n.as_table();
    if (t == nullptr) fail(key, n, "expected a table, got " + std::string(type_name(n)));
    return *t;
  }

  // Applies a per-key rule to a value already stored.
  void check(const toml::node& n, const std::string& key, const std::string& why) const {
    if (!why.empty()) fail(key, n, why);
  }

  // Records an error (already formatted) found outside walk().
  void record(std::string message) const { errors_.push_back(std::move(message)); }

 private:
  std::string source_;
  mutable std::vector<std::string> errors_;
};

// metrics.listen: "" (off), "IP:PORT", "[IPv6]:PORT" or "unix:/absolute/path". An IP literal,
// not a name: the endpoint is bound before any resolver matters, and a name could resolve to an
// address the operator did not mean to expose.
std::string check_metrics_listen(std::string_view v) {
  if (v.empty()) return {};
  if (v.starts_with("unix:")) {
    const std::string_view path = v.substr(5);
    if (!path.starts_with("/")) return quoted(v) + ": the unix socket path must be absolute, e.g. unix:/run/wsgate/metrics.sock";
    return check_unix_socket(path);
  }
  if (std::string why = check_tcp_endpoint(v); !why.empty()) return why + " (or unix:/path)";
  std::string host(v.substr(0, v.rfind(':')));
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (!is_ipv4(host) && !is_ipv6(host)) {
    return quoted(v) + ": the host must be an IP address, e.g. 127.0.0.1:9464";
  }
  return {};
}

void parse_into(const toml::table& root, const Walker& w, Config& c) {
  using F = Walker::Field;
  auto u32 = [&w](std::uint32_t* out, std::uint64_t min) {
    return [&w, out, min](const toml::node& n, const std::string& key) { w.unsigned_field(n, key, out, min); };
  };
  auto u64 = [&w](std::uint64_t* out, std::uint64_t min) {
    return [&w, out, min](const toml::node& n, const std::string& key) { w.unsigned_field(n, key, out, min); };
  };
  auto str = [&w](std::string* out, std::string (*rule)(std::string_view) = nullptr) {
    return [&w, out, rule](const toml::node& n, const std::string& key) {
      w.string_field(n, key, out);
      if (rule != nullptr) w.check(n, key, rule(*out));
    };
  };
  auto list = [&w](std::vector<std::string>* out, std::string (*rule)(std::string_view), bool ints = false) {
    return [&w, out, rule, ints](const toml::node& n, const std::string& key) { w.string_list(n, key, out, rule, ints); };
  };
  auto section = [&w](std::string_view name, std::vector<F> fields) {
    return F{name, [&w, fields = std::move(fields)](const toml::node& n, const std::string& key) {
               w.walk(w.table(n, key), key, fields, "key");
             }};
  };

  const std::vector<F> top = {
      section("listen",
              {
                  {"unix_socket", str(&c.listen.unix_socket, check_unix_socket)},
                  {"unix_socket_mode",
                   [&](const toml::node& n, const std::string& key) {
                     const std::int64_t v = w.integer(n, key, "an integer file mode, e.g. 0o660");
                     if (v < 0) w.fail(key, n, "expected an integer file mode, e.g. 0o660, got " + std::to_string(v));
                     if (v > static_cast<std::int64_t>(kMaxSocketMode)) {
                       char buf[32];
                       std::snprintf(buf, sizeof buf, "0o%llo", static_cast<unsigned long long>(v));
                       w.fail(key, n, std::string("file mode ") + buf + " is out of range (at most 0o7777)");
                     }
                     c.listen.unix_socket_mode = static_cast<std::uint32_t>(v);
                   }},
                  {"tcp", str(&c.listen.tcp, check_tcp_endpoint)},
              }),
      section("log",
              {
                  {"level", str(&c.log.level, check_log_level)},
                  {"format", str(&c.log.format, check_log_format)},
                  {"file", str(&c.log.file)},
                  {"redact",
                   [&](const toml::node& n, const std::string& key) { w.bool_field(n, key, &c.log.redact); }},
                  {"redact_subprotocols",
                   [&](const toml::node& n, const std::string& key) {
                     w.bool_field(n, key, &c.log.redact_subprotocols);
                   }},
              }),
      section("timeouts",
              {
                  {"connect_ms", u32(&c.timeouts.connect_ms, 1)},
                  {"handshake_ms", u32(&c.timeouts.handshake_ms, 1)},
                  {"close_ms", u32(&c.timeouts.close_ms, 1)},
                  {"drain_ms", u32(&c.timeouts.drain_ms, 1)},
                  {"connection_attempt_delay_ms",
                   [&](const toml::node& n, const std::string& key) {
                     w.unsigned_field(n, key, &c.timeouts.connection_attempt_delay_ms,
                                      kMinAttemptDelayMs, kMaxAttemptDelayMs);
                   }},
              }),
      section("limits",
              {
                  {"max_sessions", u32(&c.limits.max_sessions, 1)},
                  {"max_sessions_per_host", u32(&c.limits.max_sessions_per_host, 1)},
                  {"max_message_bytes", u64(&c.limits.max_message_bytes, 1)},
                  {"max_message_bytes_ceiling", u64(&c.limits.max_message_bytes_ceiling, 1)},
                  {"max_queued_bytes", u64(&c.limits.max_queued_bytes, 1)},
                  {"max_header_bytes", u32(&c.limits.max_header_bytes, 1)},
                  {"max_protocol_handles", u32(&c.limits.max_protocol_handles, 1)},
                  {"max_protocol_handles_per_client", u32(&c.limits.max_protocol_handles_per_client, 1)},
                  {"max_protocol_queued_bytes", u64(&c.limits.max_protocol_queued_bytes, 1)},
                  {"max_protocol_pending_operations", u32(&c.limits.max_protocol_pending_operations, 1)},
                  {"max_protocol_memory_bytes", u64(&c.limits.max_protocol_memory_bytes, 1)},
                  {"max_protocol_idle_ms", u32(&c.limits.max_protocol_idle_ms, 0)},
                  {"max_grpc_message_bytes",
                   [&](const toml::node& n, const std::string& key) {
                     w.unsigned_field(n, key, &c.limits.max_grpc_message_bytes, 1);
                     w.check(n, key, check_grpc_message_bytes(c.limits.max_grpc_message_bytes));
                   }},
                  {"max_request_headers",
                   [&](const toml::node& n, const std::string& key) {
                     w.unsigned_field(n, key, &c.limits.max_request_headers, 1, kMaxRequestHeaders);
                   }},
                  {"max_request_header_bytes",
                   [&](const toml::node& n, const std::string& key) {
                     w.unsigned_field(n, key, &c.limits.max_request_header_bytes, 1,
                                      kMaxRequestHeaderBytes);
                   }},
                  {"memory_budget_bytes",
                   [&](const toml::node& n, const std::string& key) {
                     w.unsigned_field(n, key, &c.limits.memory_budget_bytes, kMinMemoryBudgetBytes,
                                      kMaxMemoryBudgetBytes);
                   }},
              }),
      section("pool",
              {
                  {"keepalive_interval_ms",
                   [&](const toml::node& n, const std::string& key) {
                     w.unsigned_field(n, key, &c.pool.keepalive_interval_ms, 0);
                     w.check(n, key, check_keepalive(c.pool.keepalive_interval_ms));
                   }},
                  {"ping_timeout_ms", u32(&c.pool.ping_timeout_ms, 0)},
                  {"idle_timeout_ms", u32(&c.pool.idle_timeout_ms, 0)},
              }),
      section("compression",
              {
                  {"enabled",
                   [&](const toml::node& n, const std::string& key) { w.bool_field(n, key, &c.compression.enabled); }},
                  {"threshold_bytes", u32(&c.compression.threshold_bytes, 0)},
                  {"client_no_context_takeover",
                   [&](const toml::node& n, const std::string& key) {
                     w.bool_field(n, key, &c.compression.client_no_context_takeover);
                   }},
                  {"server_no_context_takeover",
                   [&](const toml::node& n, const std::string& key) {
                     w.bool_field(n, key, &c.compression.server_no_context_takeover);
                   }},
                  {"server_max_window_bits",
                   [&](const toml::node& n, const std::string& key) {
                     w.unsigned_field(n, key, &c.compression.server_max_window_bits, 0, 15);
                     w.check(n, key, check_window_bits(c.compression.server_max_window_bits, 8));
                   }},
                  {"client_max_window_bits",
                   [&](const toml::node& n, const std::string& key) {
                     w.unsigned_field(n, key, &c.compression.client_max_window_bits, 0, 15);
                     w.check(n, key, check_window_bits(c.compression.client_max_window_bits, 9));
                   }},
              }),
      section("policy",
              {
                  {"allow_hosts", list(&c.policy.allow_hosts, check_host_pattern)},
                  {"deny_hosts", list(&c.policy.deny_hosts, check_host_pattern)},
                  {"allow_cidrs", list(&c.policy.allow_cidrs, check_cidr)},
                  {"deny_cidrs", list(&c.policy.deny_cidrs, check_cidr)},
                  {"allow_ports", list(&c.policy.allow_ports, check_port_spec, true)},
                  {"allow_unix_sockets", list(&c.policy.allow_unix_sockets, check_unix_socket_pattern)},
                  {"deny_unix_sockets", list(&c.policy.deny_unix_sockets, check_unix_socket_pattern)},
              }),
      section("tls",
              {
                  {"ca_file", str(&c.tls.ca_file)},
                  {"allow_client_file_paths",
                   [&](const toml::node& n, const std::string& key) { w.bool_field(n, key, &c.tls.allow_client_file_paths); }},
              }),
      section("admin",
              {
                  {"allow_uids",
                   [&](const toml::node& n, const std::string& key) { w.id_list(n, key, &c.admin.allow_uids); }},
                  {"allow_gids",
                   [&](const toml::node& n, const std::string& key) { w.id_list(n, key, &c.admin.allow_gids); }},
              }),
      section("metrics",
              {
                  {"listen", str(&c.metrics.listen, check_metrics_listen)},
              }),
      section("proxy",
              {
                  {"url", str(&c.proxy.url, check_proxy_url)},
                  {"no_proxy", str(&c.proxy.no_proxy, check_no_proxy)},
                  {"authorization", str(&c.proxy.authorization, check_proxy_authorization)},
                  {"from_environment",
                   [&](const toml::node& n, const std::string& key) { w.bool_field(n, key, &c.proxy.from_environment); }},
                  {"allow_session_proxies",
                   [&](const toml::node& n, const std::string& key) {
                     w.bool_field(n, key, &c.proxy.allow_session_proxies);
                   }},
              }),
      {"io_threads",
       [&](const toml::node& n, const std::string& key) { w.unsigned_field(n, key, &c.io_threads, 1, kMaxIoThreads); }},
  };
  w.walk(root, "", top, "key or table");
}

}  // namespace

// default_socket_path(): per platform, in posix/paths.cc and win32/paths.cc.

LoadResult parse_config(const std::string& toml_text, const std::string& source_name) {
  LoadResult result;
  toml::table root;
#if TOML_EXCEPTIONS
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    result.error = source_name + ":" + std::to_string(begin.line) + ":" + std::to_string(begin.column) +
                   ": " + std::string(e.description());
    return result;
  }
#else
  toml::parse_result parsed = toml::parse(toml_text, source_name);
  if (!parsed) {
    const auto& e = parsed.error();
    const auto& begin = e.source().begin;
    result.error = source_name + ":" + std::to_string(begin.line) + ":" + std::to_string(begin.column) +
                   ": " + std::string(e.description());
    return result;
  }
  root = std::move(parsed).table();
#endif
  Config config;
  Walker walker(source_name);
  try {
    parse_into(root, walker, config);
  } catch (const ParseFailure& f) {
    walker.record(f.message);
  }
  if (!walker.errors().empty()) {
    for (const std::string& e : walker.errors()) {
      if (!result.error.empty()) result.error += '\n';
      result.error += e;
    }
    return result;
  }
  result.config = std::move(config);
  return result;
}

LoadResult load_config_file(const std::string& path) {
  LoadResult result;
  auto cannot_read = [&](int err) {
    result.error = path + ": cannot read the configuration file: " + std::strerror(err);
    return result;
  };
  // A directory: fopen fails on Windows, and on POSIX the first fread fails with EISDIR.
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return cannot_read(errno);
  std::string text;
  char buf[8192];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) return cannot_read(err);
  return parse_config(text, path);
}

std::string validate(const Config& c) {
  std::vector<std::string> errors;
  auto add = [&errors](const std::string& key, const std::string& why) {
    if (!why.empty()) errors.push_back(key + ": " + why);
  };

  add("listen.unix_socket", check_unix_socket(c.listen.unix_socket));
  add("listen.unix_socket_mode", check_socket_mode(c.listen.unix_socket_mode));
  add("listen.tcp", check_tcp_endpoint(c.listen.tcp));
  add("log.level", check_log_level(c.log.level));
  add("log.format", check_log_format(c.log.format));

  add("timeouts.connect_ms", check_positive(c.timeouts.connect_ms));
  add("timeouts.handshake_ms", check_positive(c.timeouts.handshake_ms));
  add("timeouts.close_ms", check_positive(c.timeouts.close_ms));
  add("timeouts.drain_ms", check_positive(c.timeouts.drain_ms));
  add("timeouts.connection_attempt_delay_ms",
      check_range(c.timeouts.connection_attempt_delay_ms, kMinAttemptDelayMs, kMaxAttemptDelayMs));

  add("limits.max_sessions", check_positive(c.limits.max_sessions));
  add("limits.max_sessions_per_host", check_positive(c.limits.max_sessions_per_host));
  add("limits.max_message_bytes", check_positive(c.limits.max_message_bytes));
  add("limits.max_message_bytes_ceiling", check_positive(c.limits.max_message_bytes_ceiling));
  add("limits.max_queued_bytes", check_positive(c.limits.max_queued_bytes));
  add("limits.max_header_bytes", check_positive(c.limits.max_header_bytes));
  add("limits.max_protocol_handles", check_positive(c.limits.max_protocol_handles));
  add("limits.max_protocol_handles_per_client", check_positive(c.limits.max_protocol_handles_per_client));
  add("limits.max_protocol_queued_bytes", check_positive(c.limits.max_protocol_queued_bytes));
  add("limits.max_protocol_pending_operations", check_positive(c.limits.max_protocol_pending_operations));
  add("limits.max_protocol_memory_bytes", check_positive(c.limits.max_protocol_memory_bytes));
  add("limits.max_grpc_message_bytes", check_grpc_message_bytes(c.limits.max_grpc_message_bytes));
  add("limits.max_request_headers", check_range(c.limits.max_request_headers, 1, kMaxRequestHeaders));
  add("limits.max_request_header_bytes",
      check_range(c.limits.max_request_header_bytes, 1, kMaxRequestHeaderBytes));
  add("limits.memory_budget_bytes",
      check_range(c.limits.memory_budget_bytes, kMinMemoryBudgetBytes, kMaxMemoryBudgetBytes));
  if (c.limits.max_message_bytes > c.limits.max_message_bytes_ceiling) {
    add("limits.max_message_bytes",
        std::to_string(c.limits.max_message_bytes) + " is above limits.max_message_bytes_ceiling (" +
            std::to_string(c.limits.max_message_bytes_ceiling) + ")");
  }

  add("pool.keepalive_interval_ms", check_keepalive(c.pool.keepalive_interval_ms));
  add("compression.server_max_window_bits", check_window_bits(c.compression.server_max_window_bits, 8));
  add("compression.client_max_window_bits", check_window_bits(c.compression.client_max_window_bits, 9));

  auto each = [&add](const char* key, const std::vector<std::string>& list, std::string (*rule)(std::string_view)) {
    for (std::size_t i = 0; i < list.size(); ++i) add(std::string(key) + "[" + std::to_string(i) + "]", rule(list[i]));
  };
  each("policy.allow_hosts", c.policy.allow_hosts, check_host_pattern);
  each("policy.deny_hosts", c.policy.deny_hosts, check_host_pattern);
  each("policy.allow_cidrs", c.policy.allow_cidrs, check_cidr);
  each("policy.deny_cidrs", c.policy.deny_cidrs, check_cidr);
  each("policy.allow_ports", c.policy.allow_ports, check_port_spec);
  each("policy.allow_unix_sockets", c.policy.allow_unix_sockets, check_unix_socket_pattern);
  each("policy.deny_unix_sockets", c.policy.deny_unix_sockets, check_unix_socket_pattern);

  add("metrics.listen", check_metrics_listen(c.metrics.listen));
  add("proxy.url", check_proxy_url(c.proxy.url));
  add("proxy.no_proxy", check_no_proxy(c.proxy.no_proxy));
  add("proxy.authorization", check_proxy_authorization(c.proxy.authorization));
  if (!c.proxy.authorization.empty() && c.proxy.url.find('@') != std::string::npos) {
    add("proxy.authorization", "proxy.url has credentials already; set one or the other");
  }
  add("io_threads", check_io_threads(c.io_threads));

  std::string out;
  for (const std::string& e : errors) {
    if (!out.empty()) out += '\n';
    out += e;
  }
  return out;
}

std::vector<std::string> warnings(const Config& c) {
  std::vector<std::string> out;
  if (c.timeouts.drain_ms < c.timeouts.close_ms) {
    out.push_back("timeouts.drain_ms: " + std::to_string(c.timeouts.drain_ms) +
                  " is below timeouts.close_ms (" + std::to_string(c.timeouts.close_ms) +
                  "): on SIGTERM, sessions whose peer is slow to answer the close are cut "
                  "before their closing handshake may end; set drain_ms to at least close_ms");
  }
  if (!c.log.redact) {
    out.push_back("log.redact is false: URLs (with their query tokens) and credential headers are "
                  "written to the log and shown by Admin.ListSessions as they are");
  }
  return out;
}

}  // namespace wsgate::daemon
