#include "service/net/destination_policy.h"
#include "service/net/quote.h"
#include "service/net/url.h"
#include "service/ws/ascii.h"

// inet_pton/inet_ntop, in_addr: BSD sockets, or Winsock on Windows.
#include <asio/detail/socket_types.hpp>
#ifndef _WIN32
#include <fnmatch.h>
#endif

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>

namespace wsgate::net {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// The same, without the quotes, for hosts in reasons ("host evil.example is in deny_hosts").
std::string printable(std::string_view s) {
  std::string q = quote(s);
  return q.substr(1, q.size() - 2);
}

// Lower-case, without surrounding IPv6 brackets, without one trailing dot.
std::string normalize_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return ws::to_lower(host);
}

bool valid_host_chars(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!is_alnum(c) && c != '-' && c != '.' && c != ':' && c != '_') return false;
  }
  return true;
}

// Parses a decimal number of at most `max_digits` digits; nullopt when not all digits.
std::optional<std::uint32_t> parse_number(std::string_view s, std::size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  std::uint32_t value = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
  }
  return value;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  const auto value = parse_number(s, 5);
  if (!value || *value == 0 || *value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(*value);
}

bool is_v4_mapped(const std::uint8_t* b) {
  for (int i = 0; i < 10; ++i) {
    if (b[i] != 0) return false;
  }
  return b[10] == 0xff && b[11] == 0xff;
}

// The NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): such an address reaches the IPv4 host in
// its last 32 bits through a NAT64 gateway, so it is judged as that IPv4 address.
bool is_nat64(const std::uint8_t* b) {
  static constexpr std::uint8_t kPrefix[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  return std::memcmp(b, kPrefix, sizeof kPrefix) == 0;
}

std::string format_address(bool v4, const std::uint8_t* bytes) {
  char buffer[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(v4 ? AF_INET : AF_INET6, bytes, buffer, sizeof buffer) == nullptr) {
    return "(unprintable address)";
  }
  return buffer;
}

// The blocks denied unless explicitly allowed.
struct DefaultDeny {
  bool v4;
  std::uint8_t bytes[16];
  unsigned prefix;
  const char* what;
};
constexpr DefaultDeny kDefaultDeny[] = {
    {true, {169, 254}, 16, "link-local"},
    {false, {0xfe, 0x80}, 10, "link-local"},
    {false, {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}, 128,
     "a cloud metadata address"},
};


bool matches_any(const std::vector<std::string>& patterns, const std::string& path) {
  for (const std::string& p : patterns) {
#ifdef _WIN32
    if (p == path) return true;  // no fnmatch(): exact paths only (Windows, not run: docs)
#else
    if (::fnmatch(p.c_str(), path.c_str(), FNM_PATHNAME) == 0) return true;
#endif
  }
  return false;
}

}  // namespace

std::optional<bool> parse_ip_address(const std::string& text, std::uint8_t* bytes) {
  if (inet_pton(AF_INET, text.c_str(), bytes) == 1) return true;
  if (inet_pton(AF_INET6, text.c_str(), bytes) == 1) return false;
  return std::nullopt;
}

bool prefix_equal(const std::uint8_t* a, const std::uint8_t* b, unsigned prefix) {
  const unsigned whole = prefix / 8;
  if (std::memcmp(a, b, whole) != 0) return false;
  const unsigned bits = prefix % 8;
  if (bits == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - bits));
  return (a[whole] & mask) == (b[whole] & mask);
}

std::string unix_socket_pattern_problem(std::string_view entry) {
  if (entry.find('\0') != std::string_view::npos) return "contains a NUL byte";
  if (entry.empty() || entry.front() != '/') {
    return "is not an absolute path (relative socket paths depend on the daemon's working "
           "directory)";
  }
  if (entry.size() > kMaxUnixPathLength) {
    return "is longer than a unix socket path may be (" + std::to_string(kMaxUnixPathLength) +
           " bytes)";
  }
  return {};
}

std::string DestinationPolicy::check_unix_socket_path(const std::string& path) const {
  if (path.empty() || path.front() != '/') return "unix socket path " + quote(path) + " is not absolute";
  if (matches_any(deny_unix_sockets_, path)) {
    return "unix socket " + printable(path) + " is in deny_unix_sockets";
  }
  if (!matches_any(allow_unix_sockets_, path)) {
    return "unix socket " + printable(path) +
           " is not in allow_unix_sockets (unix sockets are denied by default)";
  }
  return {};
}

std::string DestinationPolicy::check_unix_socket(const std::string& path) const {
  if (std::string why = check_unix_socket_path(path); !why.empty()) return why;
  // The socket the kernel will reach: a symlink is followed by connect(), so its target must be
  // allowed too. A path that does not exist (yet) fails at the connect.
  std::error_code missing;
  const std::string resolved = std::filesystem::canonical(path, missing).string();
  if (!missing && path != resolved) {
    if (std::string why = check_unix_socket_path(resolved); !why.empty()) {
      return why + " (" + printable(path) + " is a symlink to it)";
    }
  }
  return {};
}

bool DestinationPolicy::cidr_contains(const Cidr& cidr, bool v4, const std::uint8_t* bytes) {
  return cidr.v4 == v4 && prefix_equal(cidr.bytes.data(), bytes, cidr.prefix);
}

bool DestinationPolicy::host_matches(const std::vector<HostPattern>& patterns,
                                     std::string_view host) {
  for (const HostPattern& p : patterns) {
    if (p.wildcard) {
      // ".example.com": the host must be longer than the suffix and end with it.
      if (host.size() > p.name.size() &&
          host.substr(host.size() - p.name.size()) == p.name) {
        return true;
      }
    } else if (host == p.name) {
      return true;
    }
  }
  return false;
}

std::optional<DestinationPolicy> DestinationPolicy::create(const PolicyRules& rules,
                                                           std::string* error) {
  auto fail = [error](std::string message) -> std::optional<DestinationPolicy> {
    if (error != nullptr) *error = std::move(message);
    return std::nullopt;
  };

  DestinationPolicy policy;

  auto parse_hosts = [](const std::vector<std::string>& list, const char* list_name,
                        std::vector<HostPattern>* out) -> std::string {
    for (const std::string& entry : list) {
      HostPattern p;
      std::string_view text = entry;
      if (text.size() >= 2 && text[0] == '*' && text[1] == '.') {
        p.wildcard = true;
        text.remove_prefix(2);
      }
      const std::string name = normalize_host(text);
      if (!valid_host_chars(name) || name.front() == '.') {
        return std::string(list_name) + " entry " + quote(entry) +
               " is not a host name or a \"*.suffix\" pattern";
      }
      p.name = p.wildcard ? "." + name : name;
      out->push_back(std::move(p));
    }
    return {};
  };

  auto parse_cidrs = [](const std::vector<std::string>& list, const char* list_name,
                        std::vector<Cidr>* out) -> std::string {
    for (const std::string& entry : list) {
      const std::string bad = std::string(list_name) + " entry " + quote(entry);
      if (entry.find('\0') != std::string::npos) {
        return bad + " contains a NUL byte";
      }
      const std::size_t slash = entry.find('/');
      const std::string address = entry.substr(0, slash);
      Cidr c;
      c.text = entry;
      const std::optional<bool> family = parse_ip_address(address, c.bytes.data());
      if (!family) return bad + " is not a CIDR (expected e.g. 10.0.0.0/8 or fd00::/8)";
      c.v4 = *family;
      const unsigned max_prefix = c.v4 ? 32 : 128;
      c.prefix = max_prefix;
      if (slash != std::string::npos) {
        const auto prefix = parse_number(std::string_view(entry).substr(slash + 1), 3);
        if (!prefix || *prefix > max_prefix) {
          return bad + " has an invalid prefix length (expected 0.." +
                 std::to_string(max_prefix) + ")";
        }
        c.prefix = *prefix;
      }
      // Host bits must be zero.
      for (unsigned bit = c.prefix; bit < max_prefix; ++bit) {
        if ((c.bytes[bit / 8] >> (7 - bit % 8)) & 1) {
          return bad + " has bits set after the prefix length (a likely typo)";
        }
      }
      // IPv4-mapped IPv6 CIDRs describe IPv4 addresses, which are checked as IPv4.
      if (!c.v4 && c.prefix >= 96 && is_v4_mapped(c.bytes.data())) {
        std::array<std::uint8_t, 16> v4{};
        std::memcpy(v4.data(), c.bytes.data() + 12, 4);
        c.bytes = v4;
        c.v4 = true;
        c.prefix -= 96;
      }
      out->push_back(std::move(c));
    }
    return {};
  };

  std::string message;
  if (!(message = parse_hosts(rules.allow_hosts, "allow_hosts", &policy.allow_hosts_)).empty() ||
      !(message = parse_hosts(rules.deny_hosts, "deny_hosts", &policy.deny_hosts_)).empty() ||
      !(message = parse_cidrs(rules.allow_cidrs, "allow_cidrs", &policy.allow_cidrs_)).empty() ||
      !(message = parse_cidrs(rules.deny_cidrs, "deny_cidrs", &policy.deny_cidrs_)).empty()) {
    return fail(std::move(message));
  }

  for (const auto* list : {&rules.allow_unix_sockets, &rules.deny_unix_sockets}) {
    const char* name = list == &rules.allow_unix_sockets ? "allow_unix_sockets" : "deny_unix_sockets";
    for (const std::string& entry : *list) {
      if (std::string why = unix_socket_pattern_problem(entry); !why.empty()) {
        return fail(std::string(name) + " entry " + quote(entry) + " " + why);
      }
    }
  }
  policy.allow_unix_sockets_ = rules.allow_unix_sockets;
  policy.deny_unix_sockets_ = rules.deny_unix_sockets;

  for (const std::string& entry : rules.allow_ports) {
    const std::size_t dash = entry.find('-');
    PortRange range;
    if (dash == std::string::npos) {
      const auto port = parse_port(entry);
      if (!port) {
        return fail("allow_ports entry " + quote(entry) +
                    " is not a port 1..65535 or a range such as 8000-8100");
      }
      range.low = range.high = *port;
    } else {
      const auto low = parse_port(std::string_view(entry).substr(0, dash));
      const auto high = parse_port(std::string_view(entry).substr(dash + 1));
      if (!low || !high) {
        return fail("allow_ports entry " + quote(entry) +
                    " is not a port range a-b with ports 1..65535");
      }
      if (*low > *high) {
        return fail("allow_ports entry " + quote(entry) +
                    " is an empty range (the first port is greater than the second)");
      }
      range.low = *low;
      range.high = *high;
    }
    policy.allow_ports_.push_back(range);
  }

  if (error != nullptr) error->clear();
  return policy;
}

std::string DestinationPolicy::check_host(std::string_view host, std::uint16_t port) const {
  const std::string name = normalize_host(host);
  if (name.empty()) return "host is empty";
  if (host_matches(deny_hosts_, name)) return "host " + printable(name) + " is in deny_hosts";
  if (!allow_hosts_.empty() && !host_matches(allow_hosts_, name)) {
    return "host " + printable(name) + " is not in allow_hosts";
  }
  if (port == 0) return "port 0 is not a valid port";
  if (!allow_ports_.empty()) {
    bool allowed = false;
    for (const PortRange& r : allow_ports_) {
      if (port >= r.low && port <= r.high) {
        allowed = true;
        break;
      }
    }
    if (!allowed) return "port " + std::to_string(port) + " is not in allow_ports";
  }
  return {};
}

std::string DestinationPolicy::check_address(const sockaddr* address) const {
  if (address == nullptr) return "no address";
  std::uint8_t raw[16] = {};
  bool v4 = false;
  if (address->sa_family == AF_INET) {
    sockaddr_in in4{};
    std::memcpy(&in4, address, sizeof in4);
    std::memcpy(raw, &in4.sin_addr, 4);
    v4 = true;
  } else if (address->sa_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address, sizeof in6);
    std::memcpy(raw, &in6.sin6_addr, 16);
    if (is_v4_mapped(raw) || is_nat64(raw)) {
      std::uint8_t mapped[4];
      std::memcpy(mapped, raw + 12, 4);
      std::memset(raw, 0, sizeof raw);
      std::memcpy(raw, mapped, 4);
      v4 = true;
    }
  } else {
    return "address family " + std::to_string(address->sa_family) + " is not supported";
  }

  const std::string text = format_address(v4, raw);
  static constexpr std::uint8_t kZero[16] = {};
  if (std::memcmp(raw, kZero, v4 ? 4 : 16) == 0) {
    return "address " + text + " is unspecified (always denied)";
  }

  for (const Cidr& c : deny_cidrs_) {
    if (cidr_contains(c, v4, raw)) return "address " + text + " is in deny_cidrs (" + c.text + ")";
  }

  for (const DefaultDeny& block : kDefaultDeny) {
    if (block.v4 != v4 || !prefix_equal(block.bytes, raw, block.prefix)) continue;
    bool explicitly_allowed = false;
    for (const Cidr& c : allow_cidrs_) {
      if (c.prefix >= block.prefix && cidr_contains(c, v4, raw)) {
        explicitly_allowed = true;
        break;
      }
    }
    if (!explicitly_allowed) {
      return "address " + text + " is " + block.what + " (denied by default)";
    }
  }

  if (!allow_cidrs_.empty()) {
    bool allowed = false;
    for (const Cidr& c : allow_cidrs_) {
      if (cidr_contains(c, v4, raw)) {
        allowed = true;
        break;
      }
    }
    if (!allowed) return "address " + text + " is not in allow_cidrs";
  }
  return {};
}

}  // namespace wsgate::net
