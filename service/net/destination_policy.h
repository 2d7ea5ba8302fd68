// The destination policy: which hosts, addresses and ports the daemon may connect to on behalf
// of its clients (the defence against the gateway being used for SSRF).
//
// Two checks, both needed for every connection:
//   1. check_host(host, port) on the URL's host, before name resolution;
//   2. check_address(sockaddr) on every address the resolver returns (and on the address of an
//      IP-literal host), before connecting to it. A connection must use only addresses that
//      pass; checking after resolution is what defeats DNS names pointing at internal addresses.
//
// Semantics:
//   - deny rules win over allow rules;
//   - an allow list, when non-empty, is exhaustive for its kind (host names, addresses, ports);
//   - host patterns: an exact name ("example.com") or "*.suffix" ("*.example.com" matches
//     "a.example.com" and "a.b.example.com", not "example.com" itself); case-insensitive; a
//     trailing dot and IPv6 brackets are ignored on both sides. Host rules compare names only:
//     an IP literal in a URL is compared as text (use CIDRs for addresses);
//   - CIDRs: "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128). Host bits must
//     be zero ("10.0.0.1/8" is rejected as a likely typo). A CIDR matches addresses of its own
//     family; an IPv6 CIDR inside ::ffff:0:0/96 (prefix >= 96) is converted to the IPv4 CIDR it
//     describes, since IPv4-mapped addresses are checked as IPv4;
//   - always denied: the unspecified addresses 0.0.0.0 and :: (and ::ffff:0.0.0.0);
//   - denied by default: link-local 169.254.0.0/16 (which includes the cloud metadata address
//     169.254.169.254), fe80::/10, and the metadata address fd00:ec2::254, unless an allow_cidrs
//     entry explicitly contains the address: its prefix length must be at least that of the
//     default-denied block (169.254.0.0/16 or longer, fe80::/10 or longer, fd00:ec2::254/128),
//     so "0.0.0.0/0" or "::/0" do not re-enable them;
//   - ports: "443" or "8000-8100" (inclusive); an empty allow_ports allows every port 1..65535.
//
// Unix sockets (ws+unix URLs) are judged by check_unix_socket(path) alone, and are denied
// unless allow_unix_sockets names them: an exact absolute path or a glob (fnmatch(3) with
// FNM_PATHNAME, so '*' and '?' never match '/': "/run/app/*.sock" does not reach
// "/run/app/sub/x.sock"). deny_unix_sockets wins over it. Both the path as written and, when
// it exists, its symlink-resolved form (realpath(3)) must pass: an allowed directory holding a
// symlink to /var/run/docker.sock does not open Docker's socket. (Whoever can replace that
// symlink between the check and the connect can write to the allowed directory, and so can
// place any socket there anyway.) The host, address and port rules do not apply to them.
#pragma once

#include <asio/detail/socket_types.hpp>  // sockaddr: BSD sockets, or Winsock on Windows

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wsgate::net {

// The rules as configured (the daemon's [policy] section; see service/daemon/config.h
// PolicyConfig). Plain data.
struct PolicyRules {
  std::vector<std::string> allow_hosts, deny_hosts, allow_cidrs, deny_cidrs, allow_ports;
  std::vector<std::string> allow_unix_sockets, deny_unix_sockets;  // absolute paths or globs
};

// What is wrong with an allow_unix_sockets / deny_unix_sockets entry (empty when valid): it must
// be an absolute path or glob without NUL, at most kMaxUnixPathLength bytes (url.h). The
// daemon's configuration checks its entries with it too.
std::string unix_socket_pattern_problem(std::string_view entry);

// IP address text, shared by the policy's CIDR lists and NO_PROXY (http_proxy.h).
// `text` as an IPv4 or IPv6 address into `bytes` (16 bytes; IPv4 uses the first 4): true for
// IPv4, false for IPv6, nullopt when it is neither.
std::optional<bool> parse_ip_address(const std::string& text, std::uint8_t* bytes);
// Whether the first `prefix` bits of `a` and `b` agree.
bool prefix_equal(const std::uint8_t* a, const std::uint8_t* b, unsigned prefix);

// A validated, immutable policy. Copyable; does not refer to the PolicyRules it was built from.
// Thread safety: all member functions are const and touch no shared mutable state, so one policy
// may be used from any number of threads at once.
class DestinationPolicy {
 public:
  // Returns nullopt and sets *error for a malformed rule (bad CIDR, bad port range "a-b", bad
  // host pattern); the message names the list and quotes the entry. `error` may be null.
  static std::optional<DestinationPolicy> create(const PolicyRules& rules, std::string* error);

  // Host name check before resolution (exact or "*.suffix" patterns, case-insensitive), plus the
  // port check. Empty string when allowed, else the reason (e.g. "host evil.example is in
  // deny_hosts", "port 22 is not in allow_ports").
  std::string check_host(std::string_view host, std::uint16_t port) const;

  // Address check after resolution, for every resolved address: sockaddr of AF_INET or AF_INET6
  // (IPv4-mapped and NAT64 64:ff9b::/96 IPv6 addresses are checked as the IPv4 address they
  // carry). `address` must point to a complete sockaddr_in or sockaddr_in6 as its sa_family says (as getaddrinfo returns them); its port is
  // ignored (ports are checked by check_host). Other families and null are denied. Empty string
  // when allowed, else the reason (e.g. "address 169.254.169.254 is link-local (denied by
  // default)").
  std::string check_address(const sockaddr* address) const;

  // Unix socket check (see the header comment): `path` is absolute and normalized (as
  // parse_websocket_url makes it). Looks the path up in the file system (realpath) when it
  // exists. Empty string when allowed, else the reason (e.g. "unix socket /run/x.sock is not
  // in allow_unix_sockets (unix sockets are denied by default)").
  std::string check_unix_socket(const std::string& path) const;
  // The pattern part of check_unix_socket, without file system access.
  std::string check_unix_socket_path(const std::string& path) const;

 private:
  struct Cidr {
    bool v4 = false;                       // IPv4 (4 meaningful bytes) or IPv6 (16)
    std::array<std::uint8_t, 16> bytes{};  // network address, host bits zero
    unsigned prefix = 0;                   // 0..32 or 0..128
    std::string text;                      // as configured, for messages
  };
  struct HostPattern {
    bool wildcard = false;  // "*.suffix": `name` holds ".suffix"
    std::string name;       // normalized: lower-case, no brackets, no trailing dot
  };
  struct PortRange {
    std::uint16_t low = 0, high = 0;
  };

  DestinationPolicy() = default;

  static bool host_matches(const std::vector<HostPattern>& patterns, std::string_view host);
  static bool cidr_contains(const Cidr& cidr, bool v4, const std::uint8_t* bytes);

  std::vector<HostPattern> allow_hosts_, deny_hosts_;
  std::vector<Cidr> allow_cidrs_, deny_cidrs_;
  std::vector<PortRange> allow_ports_;
  std::vector<std::string> allow_unix_sockets_, deny_unix_sockets_;
};

}  // namespace wsgate::net
