#include "service/net/destination_policy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace wsgate::net {
namespace {

// A sockaddr_in or sockaddr_in6 for a textual address (port 443).
struct Address {
  sockaddr_storage storage{};
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

Address make_address(const std::string& text) {
  Address a;
  sockaddr_in in4{};
  sockaddr_in6 in6{};
  if (inet_pton(AF_INET, text.c_str(), &in4.sin_addr) == 1) {
    in4.sin_family = AF_INET;
    in4.sin_port = htons(443);
    std::memcpy(&a.storage, &in4, sizeof in4);
  } else if (inet_pton(AF_INET6, text.c_str(), &in6.sin6_addr) == 1) {
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(443);
    std::memcpy(&a.storage, &in6, sizeof in6);
  } else {
    ADD_FAILURE() << "bad test address " << text;
  }
  return a;
}

DestinationPolicy make_policy(const PolicyRules& rules) {
  std::string error = "unchanged";
  std::optional<DestinationPolicy> p = DestinationPolicy::create(rules, &error);
  EXPECT_TRUE(p.has_value()) << error;
  EXPECT_TRUE(error.empty()) << error;
  if (!p) p = DestinationPolicy::create({}, nullptr);
  return *p;
}

std::string check(const DestinationPolicy& p, const std::string& address) {
  return p.check_address(make_address(address).get());
}

void expect_bad_rules(const PolicyRules& rules, std::string_view needle) {
  std::string error;
  EXPECT_FALSE(DestinationPolicy::create(rules, &error).has_value()) << needle;
  EXPECT_NE(error.find(needle), std::string::npos) << "got: " << error;
}

TEST(DestinationPolicy, EmptyRulesAllowOrdinaryDestinations) {
  const DestinationPolicy p = make_policy({});
  EXPECT_EQ(p.check_host("example.com", 443), "");
  EXPECT_EQ(p.check_host("example.com", 1), "");
  EXPECT_EQ(p.check_host("example.com", 65535), "");
  EXPECT_EQ(check(p, "93.184.216.34"), "");
  EXPECT_EQ(check(p, "127.0.0.1"), "");
  EXPECT_EQ(check(p, "10.0.0.1"), "");
  EXPECT_EQ(check(p, "2001:db8::1"), "");
  EXPECT_EQ(check(p, "::1"), "");
  EXPECT_EQ(check(p, "::ffff:8.8.8.8"), "");
  EXPECT_EQ(check(p, "fd00:ec2::253"), "");  // next to the metadata address
  EXPECT_EQ(check(p, "169.253.255.255"), "");
  EXPECT_EQ(check(p, "169.255.0.0"), "");
  EXPECT_EQ(check(p, "fec0::1"), "");  // just past fe80::/10
}

TEST(DestinationPolicy, DefaultDenies) {
  const DestinationPolicy p = make_policy({});
  EXPECT_EQ(check(p, "169.254.169.254"),
            "address 169.254.169.254 is link-local (denied by default)");
  EXPECT_EQ(check(p, "169.254.0.1"), "address 169.254.0.1 is link-local (denied by default)");
  EXPECT_EQ(check(p, "fe80::1"), "address fe80::1 is link-local (denied by default)");
  EXPECT_EQ(check(p, "febf:ffff::1"), "address febf:ffff::1 is link-local (denied by default)");
  EXPECT_EQ(check(p, "fd00:ec2::254"),
            "address fd00:ec2::254 is a cloud metadata address (denied by default)");
  // IPv4-mapped addresses are checked as IPv4.
  EXPECT_EQ(check(p, "::ffff:169.254.169.254"),
            "address 169.254.169.254 is link-local (denied by default)");
  // So are NAT64 (64:ff9b::/96) addresses, which reach the embedded IPv4 host.
  EXPECT_EQ(check(p, "64:ff9b::a9fe:a9fe"),
            "address 169.254.169.254 is link-local (denied by default)");
  EXPECT_EQ(check(p, "64:ff9b::808:808"), "");
}

TEST(DestinationPolicy, UnspecifiedAddressesAlwaysDenied) {
  PolicyRules rules;
  rules.allow_cidrs = {"0.0.0.0/0", "::/0", "0.0.0.0/32", "::/128"};
  for (const DestinationPolicy& p : {make_policy({}), make_policy(rules)}) {
    EXPECT_EQ(check(p, "0.0.0.0"), "address 0.0.0.0 is unspecified (always denied)");
    EXPECT_EQ(check(p, "::"), "address :: is unspecified (always denied)");
    EXPECT_EQ(check(p, "::ffff:0.0.0.0"), "address 0.0.0.0 is unspecified (always denied)");
  }
}

TEST(DestinationPolicy, ExplicitAllowOfLinkLocal) {
  PolicyRules rules;
  rules.allow_cidrs = {"169.254.0.0/16"};
  const DestinationPolicy p = make_policy(rules);
  EXPECT_EQ(check(p, "169.254.169.254"), "");
  EXPECT_EQ(check(p, "::ffff:169.254.169.254"), "");
  EXPECT_EQ(check(p, "169.254.1.1"), "");
  // The allow list is now exhaustive for addresses.
  EXPECT_EQ(check(p, "8.8.8.8"), "address 8.8.8.8 is not in allow_cidrs");
  EXPECT_EQ(check(p, "2001:db8::1"), "address 2001:db8::1 is not in allow_cidrs");
  // IPv6 link-local still needs its own explicit allow.
  EXPECT_EQ(check(p, "fe80::1"), "address fe80::1 is link-local (denied by default)");

  rules.allow_cidrs = {"169.254.169.254/32", "fe80::/10", "fd00:ec2::254/128", "0.0.0.0/0"};
  const DestinationPolicy q = make_policy(rules);
  EXPECT_EQ(check(q, "169.254.169.254"), "");
  EXPECT_EQ(check(q, "169.254.169.253"),
            "address 169.254.169.253 is link-local (denied by default)");
  EXPECT_EQ(check(q, "fe80::1234"), "");
  EXPECT_EQ(check(q, "fd00:ec2::254"), "");
  EXPECT_EQ(check(q, "8.8.8.8"), "");

  // A bare address is a /32 or /128.
  rules.allow_cidrs = {"fd00:ec2::254", "169.254.169.254"};
  const DestinationPolicy r = make_policy(rules);
  EXPECT_EQ(check(r, "fd00:ec2::254"), "");
  EXPECT_EQ(check(r, "169.254.169.254"), "");
}

TEST(DestinationPolicy, BroadAllowIsNotExplicit) {
  PolicyRules rules;
  rules.allow_cidrs = {"0.0.0.0/0", "::/0", "169.0.0.0/8", "fe00::/9", "fd00::/8"};
  const DestinationPolicy p = make_policy(rules);
  EXPECT_EQ(check(p, "8.8.8.8"), "");
  EXPECT_EQ(check(p, "2001:db8::1"), "");
  EXPECT_EQ(check(p, "169.254.169.254"),
            "address 169.254.169.254 is link-local (denied by default)");
  EXPECT_EQ(check(p, "fe80::1"), "address fe80::1 is link-local (denied by default)");
  EXPECT_EQ(check(p, "fd00:ec2::254"),
            "address fd00:ec2::254 is a cloud metadata address (denied by default)");
  // A long-enough allow that does not contain the address does not count either.
  rules.allow_cidrs = {"169.254.1.0/24", "0.0.0.0/0"};
  EXPECT_NE(check(make_policy(rules), "169.254.169.254"), "");
  EXPECT_EQ(check(make_policy(rules), "169.254.1.7"), "");
}

TEST(DestinationPolicy, DenyBeatsAllow) {
  PolicyRules rules;
  rules.allow_cidrs = {"10.0.0.0/8", "169.254.0.0/16"};
  rules.deny_cidrs = {"10.1.0.0/16", "169.254.169.254/32"};
  rules.allow_hosts = {"*.example.com", "api.example.org"};
  rules.deny_hosts = {"admin.example.com", "api.example.org"};
  const DestinationPolicy p = make_policy(rules);
  EXPECT_EQ(check(p, "10.2.3.4"), "");
  EXPECT_EQ(check(p, "10.1.2.3"), "address 10.1.2.3 is in deny_cidrs (10.1.0.0/16)");
  EXPECT_EQ(check(p, "169.254.169.254"),
            "address 169.254.169.254 is in deny_cidrs (169.254.169.254/32)");
  EXPECT_EQ(check(p, "169.254.0.9"), "");
  EXPECT_EQ(p.check_host("www.example.com", 443), "");
  EXPECT_EQ(p.check_host("admin.example.com", 443), "host admin.example.com is in deny_hosts");
  EXPECT_EQ(p.check_host("api.example.org", 443), "host api.example.org is in deny_hosts");
}

TEST(DestinationPolicy, DenyCidrsWithoutAllow) {
  PolicyRules rules;
  rules.deny_cidrs = {"127.0.0.0/8", "::1/128", "fc00::/7"};
  const DestinationPolicy p = make_policy(rules);
  EXPECT_EQ(check(p, "127.0.0.1"), "address 127.0.0.1 is in deny_cidrs (127.0.0.0/8)");
  EXPECT_EQ(check(p, "::ffff:127.0.0.1"), "address 127.0.0.1 is in deny_cidrs (127.0.0.0/8)");
  EXPECT_EQ(check(p, "::1"), "address ::1 is in deny_cidrs (::1/128)");
  EXPECT_EQ(check(p, "fd12::1"), "address fd12::1 is in deny_cidrs (fc00::/7)");
  EXPECT_EQ(check(p, "128.0.0.1"), "");
  EXPECT_EQ(check(p, "::2"), "");
  // A CIDR matches only its own family: 127.0.0.0/8 says nothing about ::7f00:1.
  EXPECT_EQ(check(p, "::7f00:1"), "");
}

TEST(DestinationPolicy, MappedCidrRulesApplyToIpv4) {
  PolicyRules rules;
  rules.deny_cidrs = {"::ffff:10.0.0.0/104"};
  const DestinationPolicy p = make_policy(rules);
  EXPECT_EQ(check(p, "10.9.9.9"), "address 10.9.9.9 is in deny_cidrs (::ffff:10.0.0.0/104)");
  EXPECT_EQ(check(p, "::ffff:10.9.9.9"),
            "address 10.9.9.9 is in deny_cidrs (::ffff:10.0.0.0/104)");
  EXPECT_EQ(check(p, "11.0.0.1"), "");

  rules = {};
  rules.allow_cidrs = {"::ffff:169.254.0.0/112"};  // = 169.254.0.0/16: explicit
  EXPECT_EQ(check(make_policy(rules), "169.254.169.254"), "");
}

TEST(DestinationPolicy, OtherFamiliesAndNullAreDenied) {
  const DestinationPolicy p = make_policy({});
  EXPECT_EQ(p.check_address(nullptr), "no address");
  sockaddr_storage storage{};
  storage.ss_family = AF_UNIX;
  EXPECT_NE(p.check_address(reinterpret_cast<const sockaddr*>(&storage)).find("not supported"),
            std::string::npos);
}

TEST(DestinationPolicy, HostPatterns) {
  PolicyRules rules;
  rules.allow_hosts = {"Example.COM", "*.Example.net", "[::1]", "10.0.0.1"};
  const DestinationPolicy p = make_policy(rules);
  EXPECT_EQ(p.check_host("example.com", 443), "");
  EXPECT_EQ(p.check_host("EXAMPLE.com", 443), "");
  EXPECT_EQ(p.check_host("example.com.", 443), "");  // trailing dot ignored
  EXPECT_EQ(p.check_host("a.example.net", 443), "");
  EXPECT_EQ(p.check_host("A.B.EXAMPLE.NET", 443), "");
  EXPECT_EQ(p.check_host("::1", 443), "");
  EXPECT_EQ(p.check_host("[::1]", 443), "");
  EXPECT_EQ(p.check_host("10.0.0.1", 443), "");
  EXPECT_EQ(p.check_host("example.net", 443), "host example.net is not in allow_hosts");
  EXPECT_EQ(p.check_host("badexample.net", 443), "host badexample.net is not in allow_hosts");
  EXPECT_EQ(p.check_host("www.example.com", 443), "host www.example.com is not in allow_hosts");
  EXPECT_EQ(p.check_host("example.com.evil", 443), "host example.com.evil is not in allow_hosts");
  EXPECT_EQ(p.check_host("", 443), "host is empty");

  rules = {};
  rules.deny_hosts = {"evil.example", "*.internal"};
  const DestinationPolicy q = make_policy(rules);
  EXPECT_EQ(q.check_host("evil.example", 80), "host evil.example is in deny_hosts");
  EXPECT_EQ(q.check_host("EVIL.example.", 80), "host evil.example is in deny_hosts");
  EXPECT_EQ(q.check_host("db.internal", 80), "host db.internal is in deny_hosts");
  EXPECT_EQ(q.check_host("a.b.internal", 80), "host a.b.internal is in deny_hosts");
  EXPECT_EQ(q.check_host("internal", 80), "");
  EXPECT_EQ(q.check_host("notevil.example", 80), "");
  EXPECT_EQ(q.check_host("xinternal", 80), "");
}

TEST(DestinationPolicy, HostReasonsAreEscaped) {
  PolicyRules rules;
  rules.allow_hosts = {"ok.example"};
  const std::string reason = make_policy(rules).check_host("a\nb", 80);
  EXPECT_EQ(reason, "host a\\x0ab is not in allow_hosts");
}

TEST(DestinationPolicy, Ports) {
  PolicyRules rules;
  rules.allow_ports = {"443", "8000-8100", "1", "65535"};
  const DestinationPolicy p = make_policy(rules);
  EXPECT_EQ(p.check_host("h", 443), "");
  EXPECT_EQ(p.check_host("h", 8000), "");
  EXPECT_EQ(p.check_host("h", 8050), "");
  EXPECT_EQ(p.check_host("h", 8100), "");
  EXPECT_EQ(p.check_host("h", 1), "");
  EXPECT_EQ(p.check_host("h", 65535), "");
  EXPECT_EQ(p.check_host("h", 22), "port 22 is not in allow_ports");
  EXPECT_EQ(p.check_host("h", 7999), "port 7999 is not in allow_ports");
  EXPECT_EQ(p.check_host("h", 8101), "port 8101 is not in allow_ports");
  EXPECT_EQ(p.check_host("h", 80), "port 80 is not in allow_ports");
  EXPECT_EQ(p.check_host("h", 0), "port 0 is not a valid port");

  rules.allow_ports = {"80-80"};
  EXPECT_EQ(make_policy(rules).check_host("h", 80), "");
  EXPECT_NE(make_policy(rules).check_host("h", 81), "");
}

TEST(DestinationPolicy, MalformedCidrs) {
  const char* bad[] = {"",           "10.0.0.0/",  "10.0.0.0/33", "::/129",      "10.0.0/8",
                       "10.0.0.0/8/8", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/0x8", "::1/1000",
                       "fe80::1%eth0/64", "example.com/8", " 10.0.0.0/8", "10.0.0.0/8 ",
                       "/8",         "10.0.0.0/08a"};
  for (const char* entry : bad) {
    PolicyRules rules;
    rules.allow_cidrs = {entry};
    expect_bad_rules(rules, "allow_cidrs entry \"" + std::string(entry) + "\"");
    rules = {};
    rules.deny_cidrs = {"10.0.0.0/8", entry};
    expect_bad_rules(rules, "deny_cidrs entry");
  }
  PolicyRules rules;
  rules.deny_cidrs = {"10.0.0.1/8"};
  expect_bad_rules(rules, "bits set after the prefix length");
  rules.deny_cidrs = {"fe80::1/10"};
  expect_bad_rules(rules, "bits set after the prefix length");
  rules.deny_cidrs = {std::string("10.0.0.0\0/8", 11)};
  expect_bad_rules(rules, "NUL");
}

TEST(DestinationPolicy, GoodCidrEdgeCases) {
  PolicyRules rules;
  rules.deny_cidrs = {"0.0.0.0/0", "::/0", "1.2.3.4/32", "1.2.3.4", "2001:db8::/32",
                      "10.0.0.0/008", "::ffff:0:0/96"};
  const DestinationPolicy p = make_policy(rules);
  EXPECT_EQ(check(p, "8.8.8.8"), "address 8.8.8.8 is in deny_cidrs (0.0.0.0/0)");
  EXPECT_EQ(check(p, "2001:db8::1"), "address 2001:db8::1 is in deny_cidrs (::/0)");
}

TEST(DestinationPolicy, MalformedPorts) {
  const char* bad[] = {"",     "0",      "65536", "-",     "80-",  "-80",  "100-99",
                       "a",    "80-90-100", "1-65536", " 80",  "80 ", "+80",  "0x50",
                       "8080808080"};
  for (const char* entry : bad) {
    PolicyRules rules;
    rules.allow_ports = {"443", entry};
    expect_bad_rules(rules, "allow_ports entry \"" + std::string(entry) + "\"");
  }
  PolicyRules rules;
  rules.allow_ports = {"100-99"};
  expect_bad_rules(rules, "empty range");
}

TEST(DestinationPolicy, MalformedHostPatterns) {
  const char* bad[] = {"", "*", "*.", "**.example.com", "a.*.example.com", "exa mple.com",
                       "example.com/x", ".example.com", "*..example.com", "*.", "[]", "."};
  for (const char* entry : bad) {
    PolicyRules rules;
    rules.deny_hosts = {entry};
    expect_bad_rules(rules, "deny_hosts entry \"" + std::string(entry) + "\"");
    rules = {};
    rules.allow_hosts = {entry};
    expect_bad_rules(rules, "allow_hosts entry");
  }
}

TEST(DestinationPolicy, CreateWithNullError) {
  PolicyRules rules;
  rules.allow_ports = {"x"};
  EXPECT_FALSE(DestinationPolicy::create(rules, nullptr).has_value());
  EXPECT_TRUE(DestinationPolicy::create({}, nullptr).has_value());
}

// ---- unix sockets ------------------------------------------------------------------------

TEST(UnixSocketPolicy, DeniedByDefault) {
  const DestinationPolicy p = make_policy({});
  EXPECT_EQ(p.check_unix_socket("/run/app.sock"),
            "unix socket /run/app.sock is not in allow_unix_sockets (unix sockets are denied by "
            "default)");
  // An open TCP policy says nothing about unix sockets.
  PolicyRules open;
  open.allow_cidrs = {"0.0.0.0/0"};
  EXPECT_NE(make_policy(open).check_unix_socket("/run/app.sock"), "");
}

TEST(UnixSocketPolicy, ExactPathsAndGlobsThatDoNotCrossSlash) {
  PolicyRules rules;
  rules.allow_unix_sockets = {"/run/app/*.sock", "/tmp/exact.sock"};
  rules.deny_unix_sockets = {"/run/app/admin.sock"};
  const DestinationPolicy p = make_policy(rules);
  EXPECT_EQ(p.check_unix_socket_path("/run/app/api.sock"), "");
  EXPECT_EQ(p.check_unix_socket_path("/tmp/exact.sock"), "");
  EXPECT_NE(p.check_unix_socket_path("/tmp/exact.sock2"), "");
  EXPECT_NE(p.check_unix_socket_path("/run/app/sub/api.sock"), "") << "'*' must not cross '/'";
  EXPECT_NE(p.check_unix_socket_path("/run/app/api.socket"), "");
  EXPECT_EQ(p.check_unix_socket_path("/run/app/admin.sock"),
            "unix socket /run/app/admin.sock is in deny_unix_sockets");
  EXPECT_NE(p.check_unix_socket_path("run/app/api.sock"), "") << "relative";
}

TEST(UnixSocketPolicy, BadEntriesAreRefused) {
  std::string error;
  PolicyRules rules;
  rules.allow_unix_sockets = {"app.sock"};
  EXPECT_FALSE(DestinationPolicy::create(rules, &error));
  EXPECT_NE(error.find("allow_unix_sockets entry \"app.sock\" is not an absolute path"),
            std::string::npos)
      << error;
  rules.allow_unix_sockets = {};
  rules.deny_unix_sockets = {std::string("/a\0b", 4)};
  EXPECT_FALSE(DestinationPolicy::create(rules, &error));
  EXPECT_NE(error.find("contains a NUL byte"), std::string::npos) << error;
  rules.deny_unix_sockets = {"/" + std::string(107, 'a')};
  EXPECT_FALSE(DestinationPolicy::create(rules, &error));
  EXPECT_NE(error.find("longer than a unix socket path"), std::string::npos) << error;
}

// A symlink in an allowed directory does not open a socket elsewhere.
TEST(UnixSocketPolicy, SymlinkTargetMustBeAllowedToo) {
  std::string base = (std::filesystem::temp_directory_path() / "wsgate-policy-XXXXXX").string();
  ASSERT_NE(mkdtemp(base.data()), nullptr);
  std::filesystem::create_directories(base + "/allowed");
  std::filesystem::create_directories(base + "/other");
  std::ofstream(base + "/other/target.sock") << "";
  std::filesystem::create_symlink(base + "/other/target.sock", base + "/allowed/link.sock");

  PolicyRules rules;
  rules.allow_unix_sockets = {base + "/allowed/*.sock"};
  const std::string why = make_policy(rules).check_unix_socket(base + "/allowed/link.sock");
  EXPECT_NE(why.find("other/target.sock is not in allow_unix_sockets"), std::string::npos) << why;
  EXPECT_NE(why.find("is a symlink to it"), std::string::npos) << why;

  rules.allow_unix_sockets.push_back(base + "/other/target.sock");
  EXPECT_EQ(make_policy(rules).check_unix_socket(base + "/allowed/link.sock"), "");
  // A path that does not exist is judged as written (the connect reports it missing).
  EXPECT_EQ(make_policy(rules).check_unix_socket(base + "/allowed/missing.sock"), "");
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace wsgate::net
