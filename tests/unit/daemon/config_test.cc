// Tests of service/daemon/config: TOML parsing, error messages, validate(), the example file.
#include "service/daemon/config.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wsgate::daemon {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Config parse_ok(const std::string& text) {
  LoadResult r = parse_config(text, "config.toml");
  EXPECT_TRUE(r.config.has_value()) << r.error;
  return r.config.value_or(Config{});
}

std::string parse_error(const std::string& text) {
  LoadResult r = parse_config(text, "config.toml");
  EXPECT_FALSE(r.config.has_value()) << "parsed although it should not:\n" << text;
  EXPECT_FALSE(r.error.empty());
  return r.error;
}

void expect_same(const Config& a, const Config& b) {
  EXPECT_EQ(a.listen.unix_socket, b.listen.unix_socket);
  EXPECT_EQ(a.listen.unix_socket_mode, b.listen.unix_socket_mode);
  EXPECT_EQ(a.listen.tcp, b.listen.tcp);
  EXPECT_EQ(a.log.level, b.log.level);
  EXPECT_EQ(a.log.format, b.log.format);
  EXPECT_EQ(a.log.file, b.log.file);
  EXPECT_EQ(a.log.redact, b.log.redact);
  EXPECT_EQ(a.log.redact_subprotocols, b.log.redact_subprotocols);
  EXPECT_EQ(a.metrics.listen, b.metrics.listen);
  EXPECT_EQ(a.timeouts.connect_ms, b.timeouts.connect_ms);
  EXPECT_EQ(a.timeouts.handshake_ms, b.timeouts.handshake_ms);
  EXPECT_EQ(a.timeouts.close_ms, b.timeouts.close_ms);
  EXPECT_EQ(a.timeouts.drain_ms, b.timeouts.drain_ms);
  EXPECT_EQ(a.admin.allow_uids, b.admin.allow_uids);
  EXPECT_EQ(a.admin.allow_gids, b.admin.allow_gids);
  EXPECT_EQ(a.limits.max_sessions, b.limits.max_sessions);
  EXPECT_EQ(a.limits.max_sessions_per_host, b.limits.max_sessions_per_host);
  EXPECT_EQ(a.limits.max_message_bytes, b.limits.max_message_bytes);
  EXPECT_EQ(a.limits.max_message_bytes_ceiling, b.limits.max_message_bytes_ceiling);
  EXPECT_EQ(a.limits.max_queued_bytes, b.limits.max_queued_bytes);
  EXPECT_EQ(a.limits.max_header_bytes, b.limits.max_header_bytes);
  EXPECT_EQ(a.limits.max_protocol_handles, b.limits.max_protocol_handles);
  EXPECT_EQ(a.limits.max_protocol_handles_per_client, b.limits.max_protocol_handles_per_client);
  EXPECT_EQ(a.limits.max_protocol_queued_bytes, b.limits.max_protocol_queued_bytes);
  EXPECT_EQ(a.limits.max_protocol_pending_operations, b.limits.max_protocol_pending_operations);
  EXPECT_EQ(a.limits.max_protocol_memory_bytes, b.limits.max_protocol_memory_bytes);
  EXPECT_EQ(a.limits.max_protocol_idle_ms, b.limits.max_protocol_idle_ms);
  EXPECT_EQ(a.limits.max_grpc_message_bytes, b.limits.max_grpc_message_bytes);
  EXPECT_EQ(a.pool.keepalive_interval_ms, b.pool.keepalive_interval_ms);
  EXPECT_EQ(a.pool.ping_timeout_ms, b.pool.ping_timeout_ms);
  EXPECT_EQ(a.pool.idle_timeout_ms, b.pool.idle_timeout_ms);
  EXPECT_EQ(a.compression.enabled, b.compression.enabled);
  EXPECT_EQ(a.compression.threshold_bytes, b.compression.threshold_bytes);
  EXPECT_EQ(a.compression.client_no_context_takeover, b.compression.client_no_context_takeover);
  EXPECT_EQ(a.compression.server_no_context_takeover, b.compression.server_no_context_takeover);
  EXPECT_EQ(a.compression.server_max_window_bits, b.compression.server_max_window_bits);
  EXPECT_EQ(a.compression.client_max_window_bits, b.compression.client_max_window_bits);
  EXPECT_EQ(a.policy.allow_hosts, b.policy.allow_hosts);
  EXPECT_EQ(a.policy.deny_hosts, b.policy.deny_hosts);
  EXPECT_EQ(a.policy.allow_cidrs, b.policy.allow_cidrs);
  EXPECT_EQ(a.policy.deny_cidrs, b.policy.deny_cidrs);
  EXPECT_EQ(a.policy.allow_ports, b.policy.allow_ports);
  EXPECT_EQ(a.tls.ca_file, b.tls.ca_file);
  EXPECT_EQ(a.tls.allow_client_file_paths, b.tls.allow_client_file_paths);
  EXPECT_EQ(a.proxy.url, b.proxy.url);
  EXPECT_EQ(a.proxy.no_proxy, b.proxy.no_proxy);
  EXPECT_EQ(a.proxy.authorization, b.proxy.authorization);
  EXPECT_EQ(a.proxy.from_environment, b.proxy.from_environment);
  EXPECT_EQ(a.proxy.allow_session_proxies, b.proxy.allow_session_proxies);
  EXPECT_EQ(a.io_threads, b.io_threads);
  EXPECT_EQ(a.timeouts.connection_attempt_delay_ms, b.timeouts.connection_attempt_delay_ms);
  EXPECT_EQ(a.policy.allow_unix_sockets, b.policy.allow_unix_sockets);
  EXPECT_EQ(a.policy.deny_unix_sockets, b.policy.deny_unix_sockets);
}

// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "wsgate-config-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name, const std::string& content) const {
    const std::string p = (path_ / name).string();
    std::ofstream(p) << content;
    return p;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// ---- defaults -----------------------------------------------------------------------------------

TEST(ConfigDefaults, EmptyFileGivesTheDefaults) {
  const Config c = parse_ok("");
  expect_same(c, Config{});
  EXPECT_EQ(c.listen.unix_socket, "");  // resolved to default_socket_path() by the daemon
  EXPECT_EQ(c.listen.unix_socket_mode, 0660u);
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.format, "text");
  EXPECT_EQ(c.limits.max_message_bytes, 16u << 20);
  EXPECT_EQ(c.pool.keepalive_interval_ms, 30000u);
  EXPECT_FALSE(c.tls.allow_client_file_paths);  // off by default: clients send PEM text
  EXPECT_EQ(c.io_threads, 1u);
}

TEST(ConfigDefaults, CommentsAndEmptyTablesGiveTheDefaults) {
  expect_same(parse_ok("# nothing\n[listen]\n[log]\n[timeouts]\n[limits]\n[pool]\n[policy]\n[tls]\n"), Config{});
}

TEST(ConfigDefaults, DefaultsAreValid) { EXPECT_EQ(validate(Config{}), ""); }

TEST(ConfigDefaults, DefaultSocketPath) {
  if (geteuid() == 0) {
    EXPECT_EQ(default_socket_path(), "/run/wsgate/wsgated.sock");
    return;
  }
  const char* old = std::getenv("XDG_RUNTIME_DIR");
  const std::string saved = old != nullptr ? old : "";
  setenv("XDG_RUNTIME_DIR", "/run/user/1234", 1);
  EXPECT_EQ(default_socket_path(), "/run/user/1234/wsgate/wsgated.sock");
  unsetenv("XDG_RUNTIME_DIR");
  EXPECT_EQ(default_socket_path(), "/tmp/wsgate-" + std::to_string(geteuid()) + "/wsgated.sock");
  if (old != nullptr) setenv("XDG_RUNTIME_DIR", saved.c_str(), 1);
}

// ---- every key ----------------------------------------------------------------------------------

TEST(ConfigParse, EveryKey) {
  const Config c = parse_ok(R"(
io_threads = 8

[listen]
unix_socket = "/run/test/gw.sock"
unix_socket_mode = 0o600
tcp = "[::1]:9443"

[log]
level = "debug"
format = "json"
file = "/var/log/wsgated.log"

[timeouts]
connect_ms = 1001
handshake_ms = 1002
close_ms = 1003
drain_ms = 1004

[limits]
max_sessions = 11
max_sessions_per_host = 12
max_message_bytes = 13
max_message_bytes_ceiling = 14
max_queued_bytes = 15
max_header_bytes = 16
max_protocol_handles = 17
max_grpc_message_bytes = 18

[pool]
keepalive_interval_ms = 20000
ping_timeout_ms = 21
idle_timeout_ms = 22

[policy]
allow_hosts = ["example.com", "*.example.org", "192.0.2.1", "::1"]
deny_hosts = ["evil.example.com"]
allow_cidrs = ["10.0.0.0/8", "::1/128", "169.254.169.254/32"]
deny_cidrs = ["10.1.0.0/16", "fd00::/8"]
allow_ports = ["443", "8000-8999", 80]

[tls]
ca_file = "/etc/ssl/private-ca.pem"
allow_client_file_paths = false
)");
  EXPECT_EQ(c.io_threads, 8u);
  EXPECT_EQ(c.listen.unix_socket, "/run/test/gw.sock");
  EXPECT_EQ(c.listen.unix_socket_mode, 0600u);
  EXPECT_EQ(c.listen.tcp, "[::1]:9443");
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.format, "json");
  EXPECT_EQ(c.log.file, "/var/log/wsgated.log");
  EXPECT_EQ(c.timeouts.connect_ms, 1001u);
  EXPECT_EQ(c.timeouts.handshake_ms, 1002u);
  EXPECT_EQ(c.timeouts.close_ms, 1003u);
  EXPECT_EQ(c.timeouts.drain_ms, 1004u);
  EXPECT_EQ(c.limits.max_sessions, 11u);
  EXPECT_EQ(c.limits.max_sessions_per_host, 12u);
  EXPECT_EQ(c.limits.max_message_bytes, 13u);
  EXPECT_EQ(c.limits.max_message_bytes_ceiling, 14u);
  EXPECT_EQ(c.limits.max_queued_bytes, 15u);
  EXPECT_EQ(c.limits.max_header_bytes, 16u);
  EXPECT_EQ(c.limits.max_protocol_handles, 17u);
  EXPECT_EQ(c.limits.max_grpc_message_bytes, 18u);
  EXPECT_EQ(c.pool.keepalive_interval_ms, 20000u);
  EXPECT_EQ(c.pool.ping_timeout_ms, 21u);
  EXPECT_EQ(c.pool.idle_timeout_ms, 22u);
  EXPECT_EQ(c.policy.allow_hosts, (std::vector<std::string>{"example.com", "*.example.org", "192.0.2.1", "::1"}));
  EXPECT_EQ(c.policy.deny_hosts, (std::vector<std::string>{"evil.example.com"}));
  EXPECT_EQ(c.policy.allow_cidrs, (std::vector<std::string>{"10.0.0.0/8", "::1/128", "169.254.169.254/32"}));
  EXPECT_EQ(c.policy.deny_cidrs, (std::vector<std::string>{"10.1.0.0/16", "fd00::/8"}));
  EXPECT_EQ(c.policy.allow_ports, (std::vector<std::string>{"443", "8000-8999", "80"}));
  EXPECT_EQ(c.tls.ca_file, "/etc/ssl/private-ca.pem");
  EXPECT_FALSE(c.tls.allow_client_file_paths);
  EXPECT_EQ(validate(c), "");
}

TEST(ConfigParse, SocketModeDecimalAndLargeSizes) {
  const Config c = parse_ok(
      "[listen]\nunix_socket_mode = 432\n[limits]\nmax_message_bytes = 4294967296\n"
      "max_message_bytes_ceiling = 8589934592\n");
  EXPECT_EQ(c.listen.unix_socket_mode, 0660u);
  EXPECT_EQ(c.limits.max_message_bytes, 4294967296u);  // 64-bit fields take values above 2^32
  EXPECT_EQ(c.limits.max_message_bytes_ceiling, 8589934592u);
}

TEST(ConfigParse, DottedKeysAndInlineTables) {
  const Config c = parse_ok("limits.max_sessions = 5\npool = { ping_timeout_ms = 7 }\n");
  EXPECT_EQ(c.limits.max_sessions, 5u);
  EXPECT_EQ(c.pool.ping_timeout_ms, 7u);
}

TEST(ConfigParse, TcpEndpoints) {
  for (const char* ok : {"127.0.0.1:9000", "localhost:1", "[::]:65535", "[fe80::1]:80", "0.0.0.0:0",
                         "gw.example.com:8443"}) {
    Config c;
    c.listen.tcp = ok;
    EXPECT_EQ(validate(c), "") << ok;
  }
  for (const char* bad : {"127.0.0.1", "::1:9000", "[::1]9000", "[::1:9000", "host:", ":9000", "host:65536",
                          "host:-1", "host:http", "[example.com]:80", "bad host:80", "999.1.1.1:80x"}) {
    Config c;
    c.listen.tcp = bad;
    EXPECT_THAT(validate(c), HasSubstr("listen.tcp: ")) << bad;
  }
}

// ---- errors -------------------------------------------------------------------------------------

TEST(ConfigErrors, SyntaxErrorHasFileAndLine) {
  const std::string e = parse_error("[limits]\nmax_sessions = = 3\n");
  EXPECT_THAT(e, HasSubstr("config.toml:2:"));
}

TEST(ConfigErrors, LeadingZeroOctalIsASyntaxError) {
  EXPECT_THAT(parse_error("[listen]\nunix_socket_mode = 0660\n"), HasSubstr("config.toml:2:"));
}

TEST(ConfigErrors, UnknownTopLevelKey) {
  EXPECT_THAT(parse_error("io_thread = 2\n"), HasSubstr("config.toml: io_thread: unknown key or table; did you mean io_threads?"));
}

TEST(ConfigErrors, UnknownTable) {
  const std::string e = parse_error("[limit]\nmax_sessions = 3\n");
  EXPECT_THAT(e, HasSubstr("config.toml: limit: unknown key or table"));
  EXPECT_THAT(e, HasSubstr("did you mean limits?"));
}

TEST(ConfigErrors, UnknownKeyInTable) {
  const std::string e = parse_error("[limits]\nmax_sesions = 3\n");
  EXPECT_THAT(e, HasSubstr("config.toml: limits.max_sesions: unknown key; did you mean max_sessions?"));
  EXPECT_THAT(e, HasSubstr("(line 2)"));
  EXPECT_THAT(parse_error("[tls]\nverify = false\n"), HasSubstr("tls.verify: unknown key"));
}

TEST(ConfigErrors, NestedTableIsUnknown) {
  EXPECT_THAT(parse_error("[limits.extra]\nx = 1\n"), HasSubstr("limits.extra: unknown key"));
}

TEST(ConfigErrors, WrongTypes) {
  EXPECT_THAT(parse_error("[limits]\nmax_sessions = \"10\"\n"),
              HasSubstr("config.toml: limits.max_sessions: expected a positive integer, got a string"));
  EXPECT_THAT(parse_error("[timeouts]\nconnect_ms = 1.5\n"),
              HasSubstr("timeouts.connect_ms: expected a positive integer, got a floating-point number"));
  EXPECT_THAT(parse_error("[log]\nlevel = 3\n"), HasSubstr("log.level: expected a string, got an integer"));
  EXPECT_THAT(parse_error("[tls]\nallow_client_file_paths = \"no\"\n"),
              HasSubstr("tls.allow_client_file_paths: expected a boolean"));
  EXPECT_THAT(parse_error("[policy]\nallow_hosts = \"example.com\"\n"),
              HasSubstr("policy.allow_hosts: expected an array of strings, got a string"));
  EXPECT_THAT(parse_error("[policy]\ndeny_cidrs = [\"10.0.0.0/8\", 7]\n"),
              HasSubstr("policy.deny_cidrs[1]: expected a string, got an integer"));
  EXPECT_THAT(parse_error("[policy]\nallow_ports = [true]\n"),
              HasSubstr("policy.allow_ports[0]: expected a string or integer, got a boolean"));
  EXPECT_THAT(parse_error("limits = 5\n"), HasSubstr("config.toml: limits: expected a table, got an integer"));
  EXPECT_THAT(parse_error("[[pool]]\n"), HasSubstr("pool: expected a table, got an array"));
  EXPECT_THAT(parse_error("[listen]\nunix_socket_mode = \"0660\"\n"),
              HasSubstr("listen.unix_socket_mode: expected an integer file mode"));
}

TEST(ConfigErrors, OutOfRangeNumbers) {
  EXPECT_THAT(parse_error("[limits]\nmax_sessions = 0\n"),
              HasSubstr("config.toml: limits.max_sessions: expected a positive integer, got 0"));
  EXPECT_THAT(parse_error("[limits]\nmax_queued_bytes = -1\n"),
              HasSubstr("limits.max_queued_bytes: expected a positive integer, got -1"));
  EXPECT_THAT(parse_error("[timeouts]\ndrain_ms = 4294967296\n"),
              HasSubstr("timeouts.drain_ms: 4294967296 is out of range (at most 4294967295)"));
  EXPECT_THAT(parse_error("[pool]\nping_timeout_ms = -5\n"),
              HasSubstr("pool.ping_timeout_ms: expected a non-negative integer, got -5"));
  EXPECT_THAT(parse_error("io_threads = 0\n"), HasSubstr("io_threads: expected an integer from 1 to 64, got 0"));
  EXPECT_THAT(parse_error("io_threads = 65\n"), HasSubstr("io_threads: 65 is out of range (at most 64)"));
  EXPECT_THAT(parse_error("[listen]\nunix_socket_mode = 0o10000\n"),
              HasSubstr("listen.unix_socket_mode: file mode 0o10000 is out of range"));
  EXPECT_THAT(parse_error("[listen]\nunix_socket_mode = -1\n"), HasSubstr("listen.unix_socket_mode: "));
  EXPECT_THAT(parse_error("[listen]\nunix_socket_mode = 0o777777777777\n"),
              HasSubstr("file mode 0o777777777777 is out of range"));
  EXPECT_THAT(parse_error("[limits]\nmax_grpc_message_bytes = 2147483648\n"),
              HasSubstr("limits.max_grpc_message_bytes: must be at most 2147483647"));
}

// Gateway hardening keys: defaults, and the bounds of each.
TEST(ConfigParse, GatewayHardeningKeys) {
  const Config d = parse_ok("");
  EXPECT_EQ(d.limits.max_request_headers, 64u);
  EXPECT_EQ(d.limits.max_request_header_bytes, 16384u);
  EXPECT_EQ(d.limits.memory_budget_bytes, 256u << 20);
  const Config c = parse_ok(
      "[limits]\nmax_request_headers = 1000\nmax_request_header_bytes = 1048576\n"
      "memory_budget_bytes = 1048576\n");
  EXPECT_EQ(c.limits.max_request_headers, 1000u);
  EXPECT_EQ(c.limits.max_request_header_bytes, 1048576u);
  EXPECT_EQ(c.limits.memory_budget_bytes, 1048576u);
  EXPECT_EQ(validate(c), "");
  EXPECT_THAT(parse_error("[limits]\nmax_request_headers = 0\n"),
              HasSubstr("limits.max_request_headers: expected an integer from 1 to 1000, got 0"));
  EXPECT_THAT(parse_error("[limits]\nmax_request_headers = 1001\n"),
              HasSubstr("limits.max_request_headers: 1001 is out of range (at most 1000)"));
  EXPECT_THAT(parse_error("[limits]\nmax_request_header_bytes = 1048577\n"),
              HasSubstr("limits.max_request_header_bytes: 1048577 is out of range (at most 1048576)"));
  EXPECT_THAT(parse_error("[limits]\nmemory_budget_bytes = 1048575\n"),
              HasSubstr("limits.memory_budget_bytes: expected an integer from 1048576 to "
                        "4611686018427387904, got 1048575"));
  Config bad = d;
  bad.limits.max_request_headers = 0;
  bad.limits.memory_budget_bytes = 5;
  EXPECT_THAT(validate(bad), HasSubstr("limits.max_request_headers: must be from 1 to 1000, got 0"));
  EXPECT_THAT(validate(bad), HasSubstr("limits.memory_budget_bytes: must be from 1048576"));
}

// [compression]: defaults (off), every key, and the window-bits bounds.
TEST(ConfigParse, CompressionKeys) {
  const Config d = parse_ok("");
  EXPECT_FALSE(d.compression.enabled);
  EXPECT_EQ(d.compression.threshold_bytes, 128u);
  EXPECT_EQ(d.compression.server_max_window_bits, 0u);
  EXPECT_EQ(d.compression.client_max_window_bits, 0u);
  const Config c = parse_ok(
      "[compression]\nenabled = true\nthreshold_bytes = 0\nclient_no_context_takeover = true\n"
      "server_no_context_takeover = true\nserver_max_window_bits = 8\nclient_max_window_bits = 9\n");
  EXPECT_TRUE(c.compression.enabled);
  EXPECT_EQ(c.compression.threshold_bytes, 0u);
  EXPECT_TRUE(c.compression.client_no_context_takeover);
  EXPECT_TRUE(c.compression.server_no_context_takeover);
  EXPECT_EQ(c.compression.server_max_window_bits, 8u);
  EXPECT_EQ(c.compression.client_max_window_bits, 9u);
  EXPECT_EQ(validate(c), "");
  EXPECT_THAT(parse_error("[compression]\nclient_max_window_bits = 8\n"),
              HasSubstr("compression.client_max_window_bits: must be 0 or from 9 to 15, got 8 "
                        "(zlib cannot deflate with a 256-byte window: use 9) (line 2)"));
  EXPECT_THAT(parse_error("[compression]\nserver_max_window_bits = 7\n"),
              HasSubstr("compression.server_max_window_bits: must be 0 or from 8 to 15, got 7"));
  EXPECT_THAT(parse_error("[compression]\nserver_max_window_bits = 16\n"),
              HasSubstr("compression.server_max_window_bits: 16 is out of range (at most 15)"));
  EXPECT_THAT(parse_error("[compression]\nenabled = 1\n"),
              HasSubstr("compression.enabled: expected a boolean"));
  EXPECT_THAT(parse_error("[compression]\nthreshold_byte = 1\n"),
              HasSubstr("compression.threshold_byte: unknown key; did you mean threshold_bytes?"));
  Config bad = d;
  bad.compression.client_max_window_bits = 20;
  EXPECT_THAT(validate(bad), HasSubstr("compression.client_max_window_bits: must be 0 or from 9 to 15"));
}

TEST(ConfigErrors, BadCidr) {
  EXPECT_THAT(parse_error("[policy]\nallow_cidrs = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n"),
              HasSubstr("config.toml: policy.allow_cidrs[1]: \"10.0.0.0/33\": prefix length 33 is out of range"));
  EXPECT_THAT(parse_error("[policy]\ndeny_cidrs = [\"10.0.0.0\"]\n"),
              HasSubstr("policy.deny_cidrs[0]: \"10.0.0.0\" is not a CIDR"));
  EXPECT_THAT(parse_error("[policy]\ndeny_cidrs = [\"10.0.0.256/32\"]\n"),
              HasSubstr("policy.deny_cidrs[0]: \"10.0.0.256/32\": \"10.0.0.256\" is not an IPv4 or IPv6 address"));
  EXPECT_THAT(parse_error("[policy]\ndeny_cidrs = [\"10.1.2.3/8\"]\n"),
              HasSubstr("policy.deny_cidrs[0]: \"10.1.2.3/8\": the address has bits set beyond the /8 prefix"));
  EXPECT_THAT(parse_error("[policy]\ndeny_cidrs = [\"::/129\"]\n"), HasSubstr("prefix length 129 is out of range"));
  EXPECT_THAT(parse_error("[policy]\ndeny_cidrs = [\"::/-1\"]\n"), HasSubstr("policy.deny_cidrs[0]: "));
  EXPECT_THAT(parse_error("[policy]\ndeny_cidrs = [\"10.0.0.0/\"]\n"), HasSubstr("policy.deny_cidrs[0]: "));
  EXPECT_THAT(parse_error("[policy]\ndeny_cidrs = [\"[::1]/128\"]\n"), HasSubstr("policy.deny_cidrs[0]: "));
  const Config c = parse_ok("[policy]\ndeny_cidrs = [\"0.0.0.0/0\", \"::/0\", \"fe80::/10\", \"fd00:ec2::254/128\"]\n");
  EXPECT_EQ(c.policy.deny_cidrs.size(), 4u);
}

TEST(ConfigErrors, BadPortRange) {
  EXPECT_THAT(parse_error("[policy]\nallow_ports = [\"443\", \"9000-8000\"]\n"),
              HasSubstr("config.toml: policy.allow_ports[1]: \"9000-8000\": the range is empty"));
  for (const char* bad : {"0", "65536", "1-65536", "http", "80-", "-80", " 80", "80 ", "1--2", "+80", ""}) {
    Config c;
    c.policy.allow_ports = {bad};
    EXPECT_THAT(validate(c), HasSubstr("policy.allow_ports[0]: ")) << bad;
  }
  EXPECT_THAT(parse_error("[policy]\nallow_ports = [0]\n"), HasSubstr("policy.allow_ports[0]: \"0\" is not a port"));
  const Config c = parse_ok("[policy]\nallow_ports = [\"1\", \"65535\", \"1-65535\", \"80-80\"]\n");
  EXPECT_EQ(c.policy.allow_ports.size(), 4u);
}

TEST(ConfigErrors, BadHostPattern) {
  EXPECT_THAT(parse_error("[policy]\nallow_hosts = [\"*\"]\n"), HasSubstr("policy.allow_hosts[0]: \"*\": to allow every host"));
  EXPECT_THAT(parse_error("[policy]\ndeny_hosts = [\"foo.*.com\"]\n"), HasSubstr("policy.deny_hosts[0]: "));
  EXPECT_THAT(parse_error("[policy]\ndeny_hosts = [\"\"]\n"), HasSubstr("policy.deny_hosts[0]: "));
  EXPECT_THAT(parse_error("[policy]\ndeny_hosts = [\"a b.com\"]\n"), HasSubstr("policy.deny_hosts[0]: "));
}

TEST(ConfigErrors, BadLogLevelAndFormat) {
  EXPECT_THAT(parse_error("[log]\nlevel = \"verbose\"\n"),
              HasSubstr("config.toml: log.level: unknown log level \"verbose\" (expected one of trace, debug, info, "
                        "warn, error, critical, off)"));
  EXPECT_THAT(parse_error("[log]\nlevel = \"INFO\"\n"), HasSubstr("log.level: "));
  EXPECT_THAT(parse_error("[log]\nformat = \"xml\"\n"), HasSubstr("log.format: unknown log format \"xml\""));
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    EXPECT_EQ(parse_ok(std::string("[log]\nlevel = \"") + level + "\"\n").log.level, level);
  }
}

TEST(ConfigErrors, KeepaliveBelowFloor) {
  EXPECT_THAT(parse_error("[pool]\nkeepalive_interval_ms = 14999\n"),
              HasSubstr("config.toml: pool.keepalive_interval_ms: must be at least 15000 ms (the keepalive floor), got 14999"));
  EXPECT_THAT(parse_error("[pool]\nkeepalive_interval_ms = 0\n"), HasSubstr("pool.keepalive_interval_ms: must be at least 15000"));
  EXPECT_EQ(parse_ok("[pool]\nkeepalive_interval_ms = 15000\n").pool.keepalive_interval_ms, 15000u);
}

TEST(ConfigErrors, SocketPathTooLong) {
  EXPECT_THAT(parse_error("[listen]\nunix_socket = \"/" + std::string(120, 'a') + "\"\n"),
              HasSubstr("listen.unix_socket: the path is 121 bytes long"));
}

TEST(ConfigErrors, UnreadableFile) {
  TempDir dir;
  const std::string missing = (dir.path() / "missing.toml").string();
  LoadResult r = load_config_file(missing);
  EXPECT_FALSE(r.config);
  EXPECT_THAT(r.error, HasSubstr(missing + ": cannot read the configuration file: No such file or directory"));

  r = load_config_file(dir.path().string());
  EXPECT_FALSE(r.config);
  EXPECT_THAT(r.error, HasSubstr("cannot read the configuration file: Is a directory"));
}

TEST(ConfigFile, LoadsAndNamesTheFileInErrors) {
  TempDir dir;
  const std::string good = dir.file("good.toml", "[log]\nlevel = \"warn\"\n");
  LoadResult r = load_config_file(good);
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->log.level, "warn");

  const std::string bad = dir.file("bad.toml", "\n\n[limits]\nmax_sessions = 0\n");
  r = load_config_file(bad);
  EXPECT_FALSE(r.config);
  EXPECT_THAT(r.error, HasSubstr(bad + ": limits.max_sessions: expected a positive integer, got 0 (line 4)"));
}

// ---- ProtocolComponent bounds ------------------------------------------------------------------

TEST(ConfigParse, ProtocolComponentBounds) {
  const Config d;
  EXPECT_EQ(d.limits.max_protocol_handles_per_client, 64u);
  EXPECT_EQ(d.limits.max_protocol_queued_bytes, 16u << 20);
  EXPECT_EQ(d.limits.max_protocol_pending_operations, 1024u);
  EXPECT_EQ(d.limits.max_protocol_memory_bytes, 256u << 20);
  EXPECT_EQ(d.limits.max_protocol_idle_ms, 0u);  // off

  const Config c = parse_ok(
      "[limits]\nmax_protocol_handles_per_client = 1\nmax_protocol_queued_bytes = 5000000000\n"
      "max_protocol_pending_operations = 4294967295\nmax_protocol_memory_bytes = 1\n"
      "max_protocol_idle_ms = 600000\n");
  EXPECT_EQ(c.limits.max_protocol_handles_per_client, 1u);
  EXPECT_EQ(c.limits.max_protocol_queued_bytes, 5000000000u);  // 64-bit
  EXPECT_EQ(c.limits.max_protocol_pending_operations, 4294967295u);
  EXPECT_EQ(c.limits.max_protocol_memory_bytes, 1u);
  EXPECT_EQ(c.limits.max_protocol_idle_ms, 600000u);
  EXPECT_EQ(parse_ok("[limits]\nmax_protocol_idle_ms = 0\n").limits.max_protocol_idle_ms, 0u);
  EXPECT_THAT(parse_error("[limits]\nmax_protocol_idle_ms = -1\n"),
              HasSubstr("limits.max_protocol_idle_ms: expected a non-negative integer, got -1"));
  EXPECT_THAT(parse_error("[limits]\nmax_protocol_idle_ms = 4294967296\n"),
              HasSubstr("limits.max_protocol_idle_ms: 4294967296 is out of range (at most 4294967295)"));

  for (const char* key : {"max_protocol_handles_per_client", "max_protocol_queued_bytes",
                          "max_protocol_pending_operations", "max_protocol_memory_bytes"}) {
    const std::string k = key;
    EXPECT_THAT(parse_error("[limits]\n" + k + " = 0\n"),
                HasSubstr("config.toml: limits." + k + ": expected a positive integer, got 0 (line 2)"));
    EXPECT_THAT(parse_error("[limits]\n" + k + " = \"1\"\n"),
                HasSubstr("limits." + k + ": expected a positive integer, got a string"));
  }
  EXPECT_THAT(parse_error("[limits]\nmax_protocol_handles_per_client = 4294967296\n"),
              HasSubstr("limits.max_protocol_handles_per_client: 4294967296 is out of range (at most 4294967295)"));
  EXPECT_THAT(parse_error("[limits]\nmax_protocol_pending_operations = 4294967296\n"),
              HasSubstr("limits.max_protocol_pending_operations: 4294967296 is out of range"));
  EXPECT_THAT(parse_error("[limits]\nmax_protocol_queued_byte = 1\n"),
              HasSubstr("did you mean max_protocol_queued_bytes?"));

  Config v;  // e.g. changed by a flag after the file was read
  v.limits.max_protocol_handles_per_client = 0;
  v.limits.max_protocol_queued_bytes = 0;
  v.limits.max_protocol_pending_operations = 0;
  v.limits.max_protocol_memory_bytes = 0;
  const std::string e = validate(v);
  EXPECT_THAT(e, HasSubstr("limits.max_protocol_handles_per_client: must be greater than 0"));
  EXPECT_THAT(e, HasSubstr("limits.max_protocol_queued_bytes: must be greater than 0"));
  EXPECT_THAT(e, HasSubstr("limits.max_protocol_pending_operations: must be greater than 0"));
  EXPECT_THAT(e, HasSubstr("limits.max_protocol_memory_bytes: must be greater than 0"));
}

// ---- validate() ---------------------------------------------------------------------------------

TEST(ConfigValidate, CrossFieldAndPerKeyRules) {
  Config c;
  c.limits.max_message_bytes = c.limits.max_message_bytes_ceiling + 1;
  EXPECT_THAT(validate(c), HasSubstr("limits.max_message_bytes: 67108865 is above limits.max_message_bytes_ceiling"));

  c = Config{};
  c.pool.keepalive_interval_ms = 0;
  EXPECT_THAT(validate(c), HasSubstr("pool.keepalive_interval_ms: must be at least 15000"));

  c = Config{};
  c.timeouts.handshake_ms = 0;
  EXPECT_THAT(validate(c), HasSubstr("timeouts.handshake_ms: must be greater than 0"));

  c = Config{};
  c.limits.max_protocol_handles = 0;
  EXPECT_THAT(validate(c), HasSubstr("limits.max_protocol_handles: must be greater than 0"));

  c = Config{};
  c.io_threads = 0;
  EXPECT_THAT(validate(c), HasSubstr("io_threads: must be from 1 to 64"));
  c.io_threads = 65;
  EXPECT_THAT(validate(c), HasSubstr("io_threads: must be from 1 to 64"));

  c = Config{};
  c.log.level = "loud";  // e.g. from --log-level
  c.log.format = "yaml";
  const std::string e = validate(c);
  EXPECT_THAT(e, HasSubstr("log.level: unknown log level \"loud\""));
  EXPECT_THAT(e, HasSubstr("\nlog.format: unknown log format \"yaml\""));  // every error, one per line

  c = Config{};
  c.listen.unix_socket_mode = 010000;
  EXPECT_THAT(validate(c), HasSubstr("listen.unix_socket_mode: "));

  c = Config{};
  c.policy.allow_cidrs = {"10.0.0.0/8", "1.2.3.4/40"};
  EXPECT_THAT(validate(c), HasSubstr("policy.allow_cidrs[1]: "));
}

TEST(ConfigWarnings, DrainBelowCloseIsFlagged) {
  Config c;
  EXPECT_TRUE(warnings(c).empty());
  c.timeouts.close_ms = 5000;
  c.timeouts.drain_ms = 5000;
  EXPECT_TRUE(warnings(c).empty());
  c.timeouts.drain_ms = 4999;
  ASSERT_EQ(warnings(c).size(), 1u);
  EXPECT_THAT(warnings(c)[0], HasSubstr("timeouts.drain_ms: 4999 is below timeouts.close_ms (5000)"));
  EXPECT_EQ(validate(c), "");  // a warning, not an error: a short drain can be deliberate
}

// ---- [admin] -------------------------------------------------------------------------------------

TEST(ConfigAdmin, AllowListsOfIds) {
  Config c = parse_ok("[admin]\nallow_uids = [0, 1000, 4294967294]\nallow_gids = [27]\n");
  EXPECT_EQ(c.admin.allow_uids, (std::vector<std::uint32_t>{0, 1000, 4294967294u}));
  EXPECT_EQ(c.admin.allow_gids, std::vector<std::uint32_t>{27});
  EXPECT_TRUE(Config{}.admin.allow_uids.empty());
  EXPECT_TRUE(Config{}.admin.allow_gids.empty());
}

TEST(ConfigAdmin, BoundsAndTypes) {
  EXPECT_THAT(parse_error("[admin]\nallow_uids = [4294967295]\n"),
              HasSubstr("admin.allow_uids[0]: 4294967295 is out of range (at most 4294967294) (line 2)"));
  EXPECT_THAT(parse_error("[admin]\nallow_gids = [1, -1]\n"),
              HasSubstr("admin.allow_gids[1]: expected an integer from 0 to 4294967294, got -1"));
  EXPECT_THAT(parse_error("[admin]\nallow_uids = [\"root\"]\n"),
              HasSubstr("admin.allow_uids[0]: expected an integer from 0 to 4294967294, got a string"));
  EXPECT_THAT(parse_error("[admin]\nallow_uids = 0\n"),
              HasSubstr("admin.allow_uids: expected an array of integers (uids or gids), got an integer"));
  EXPECT_THAT(parse_error("[admin]\nallow_users = [0]\n"), HasSubstr("admin.allow_users: unknown key"));
}

// ---- the example file ---------------------------------------------------------------------------

TEST(ConfigExample, ParsesValidatesAndStatesTheDefaults) {
  LoadResult r = load_config_file(WSGATE_EXAMPLE_CONFIG);
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(validate(*r.config), "");
  expect_same(*r.config, Config{});  // the example documents every default
}

TEST(ConfigExample, NamesEveryKey) {
  std::ifstream in(WSGATE_EXAMPLE_CONFIG);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* key :
       {"io_threads =", "[listen]", "unix_socket =", "unix_socket_mode =", "tcp =", "[log]", "level =", "format =",
        "file =", "[timeouts]", "connect_ms =", "handshake_ms =", "close_ms =", "drain_ms =", "[limits]",
        "max_sessions =", "max_sessions_per_host =", "max_message_bytes =", "max_message_bytes_ceiling =",
        "max_queued_bytes =", "max_header_bytes =", "max_protocol_handles =",
        "max_protocol_handles_per_client =", "max_protocol_queued_bytes =", "max_protocol_pending_operations =",
        "max_protocol_memory_bytes =", "max_protocol_idle_ms =", "max_grpc_message_bytes =", "[pool]",
        "keepalive_interval_ms =", "ping_timeout_ms =", "idle_timeout_ms =", "[policy]", "allow_hosts =",
        "deny_hosts =", "allow_cidrs =", "deny_cidrs =", "allow_ports =", "[tls]", "ca_file =",
        "allow_client_file_paths =", "[admin]", "allow_uids =", "allow_gids =", "redact =",
        "redact_subprotocols =", "[metrics]", "listen =", "[compression]", "enabled =",
        "threshold_bytes =", "client_no_context_takeover =", "server_no_context_takeover =",
        "server_max_window_bits =", "client_max_window_bits =", "connection_attempt_delay_ms =",
        "allow_unix_sockets =", "deny_unix_sockets =", "[proxy]", "url =", "no_proxy =",
        "authorization =", "from_environment =", "allow_session_proxies ="}) {
    EXPECT_NE(text.find(std::string("\n") + key), std::string::npos) << key;
  }
}

// ---- every error in one run, [metrics], log.redact --------------------------------------

TEST(ConfigErrors, EveryErrorOfTheFileInOneRun) {
  const std::string e = parse_error(
      "io_thread = 2\n"
      "[log]\nlevel = \"loud\"\nformt = \"json\"\n"
      "[timeouts]\nconnect_ms = -1\n"
      "[limits]\nmax_sessions = \"many\"\nmax_sesions = 3\n");
  EXPECT_THAT(e, HasSubstr("io_thread: unknown key or table; did you mean io_threads? (line 1)"));
  EXPECT_THAT(e, HasSubstr("log.level: unknown log level \"loud\""));
  EXPECT_THAT(e, HasSubstr("log.formt: unknown key; did you mean format? (line 4)"));
  EXPECT_THAT(e, HasSubstr("timeouts.connect_ms: expected a positive integer, got -1 (line 6)"));
  EXPECT_THAT(e, HasSubstr("limits.max_sessions: expected a positive integer, got a string (line 8)"));
  EXPECT_THAT(e, HasSubstr("limits.max_sesions: unknown key; did you mean max_sessions? (line 9)"));
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 5) << e;  // six errors, one per line
}

TEST(ConfigParse, MetricsAndRedactionKeys) {
  LoadResult r = parse_config(
      "[metrics]\nlisten = \"127.0.0.1:9464\"\n[log]\nredact = false\nredact_subprotocols = true\n", "c");
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->metrics.listen, "127.0.0.1:9464");
  EXPECT_FALSE(r.config->log.redact);
  EXPECT_TRUE(r.config->log.redact_subprotocols);
  for (const char* ok : {"[::1]:0", "0.0.0.0:65535", "unix:/run/wsgate/metrics.sock", ""}) {
    LoadResult good = parse_config(std::string("[metrics]\nlisten = \"") + ok + "\"\n", "c");
    EXPECT_TRUE(good.config) << ok << ": " << good.error;
  }
  EXPECT_TRUE(parse_config("[metrics]\n", "c").config->metrics.listen.empty());  // off by default
  Config c;
  EXPECT_TRUE(c.log.redact);  // on by default
}

TEST(ConfigErrors, MetricsListenBounds) {
  EXPECT_THAT(parse_error("[metrics]\nlisten = \"localhost:9464\"\n"),
              HasSubstr("metrics.listen: \"localhost:9464\": the host must be an IP address"));
  EXPECT_THAT(parse_error("[metrics]\nlisten = \"127.0.0.1:65536\"\n"),
              HasSubstr("metrics.listen: \"127.0.0.1:65536\": the port must be a number from 0 to 65535"));
  EXPECT_THAT(parse_error("[metrics]\nlisten = \"9464\"\n"), HasSubstr("expected host:port"));
  EXPECT_THAT(parse_error("[metrics]\nlisten = \"unix:relative.sock\"\n"),
              HasSubstr("the unix socket path must be absolute"));
  EXPECT_THAT(parse_error("[metrics]\nlisten = \"unix:/" + std::string(200, 'a') + "\"\n"),
              HasSubstr("a unix socket path has at most"));
  EXPECT_THAT(parse_error("[metrics]\nlisten = 9464\n"), HasSubstr("metrics.listen: expected a string"));
  EXPECT_THAT(parse_error("[metrics]\nport = 9464\n"), HasSubstr("metrics.port: unknown key"));
  EXPECT_THAT(parse_error("[log]\nredact = \"yes\"\n"), HasSubstr("log.redact: expected a boolean"));
  Config c;
  c.metrics.listen = "example.com:1";
  EXPECT_THAT(validate(c), HasSubstr("metrics.listen:"));
}

TEST(ConfigWarnings, RedactionOffIsFlagged) {
  Config c;
  EXPECT_TRUE(warnings(c).empty());
  c.log.redact = false;
  ASSERT_EQ(warnings(c).size(), 1u);
  EXPECT_THAT(warnings(c)[0], HasSubstr("log.redact is false"));
}

// ---- [proxy] ----------------------------------------------------------------------------------

TEST(ConfigProxy, KeysAndDefaults) {
  const Config d;
  EXPECT_EQ(d.proxy.url, "");
  EXPECT_TRUE(d.proxy.from_environment);  // curl's variables are read unless switched off
  EXPECT_FALSE(d.proxy.allow_session_proxies);
  const Config c = parse_ok(
      "[proxy]\nurl = \"http://user:pw@proxy.corp:3128\"\nno_proxy = \"localhost, .svc, 10.0.0.0/8\"\n"
      "from_environment = false\nallow_session_proxies = true\n");
  EXPECT_EQ(c.proxy.url, "http://user:pw@proxy.corp:3128");
  EXPECT_EQ(c.proxy.no_proxy, "localhost, .svc, 10.0.0.0/8");
  EXPECT_FALSE(c.proxy.from_environment);
  EXPECT_TRUE(c.proxy.allow_session_proxies);
  EXPECT_EQ(validate(c), "");
  const Config h = parse_ok("[proxy]\nurl = \"proxy.corp\"\nauthorization = \"Bearer abc\"\n");
  EXPECT_EQ(h.proxy.authorization, "Bearer abc");
  EXPECT_EQ(validate(h), "");
}

TEST(ConfigProxy, BadValuesNameTheKeyAndLine) {
  EXPECT_THAT(parse_error("[proxy]\nurl = \"socks5://p:1080\"\n"),
              HasSubstr("proxy.url: invalid proxy URL: SOCKS proxies are not supported"));
  EXPECT_THAT(parse_error("[proxy]\nurl = \"https://p:3128\"\n"),
              HasSubstr("https:// proxies (TLS to the proxy) are not supported"));
  EXPECT_THAT(parse_error("\n[proxy]\nurl = \"http://p:99999\"\n"), HasSubstr("(line 3)"));
  const std::string secret = parse_error("[proxy]\nurl = \"http://u:s3cret@p:0\"\n");
  EXPECT_THAT(secret, HasSubstr("proxy.url: "));
  EXPECT_THAT(secret, Not(HasSubstr("s3cret")));
  EXPECT_THAT(parse_error("[proxy]\nno_proxy = \"10.0.0.0/33\"\n"),
              HasSubstr("proxy.no_proxy: \"10.0.0.0/33\": the prefix length must be 0..32"));
  EXPECT_THAT(parse_error("[proxy]\nno_proxy = \"h:0\"\n"), HasSubstr("the port must be 1..65535"));
  EXPECT_THAT(parse_error("[proxy]\nauthorization = \"Basic a\\r\\nX: y\"\n"),
              HasSubstr("proxy.authorization: the value has CR, LF or NUL"));
  EXPECT_THAT(parse_error("[proxy]\nfrom_environment = \"no\"\n"),
              HasSubstr("proxy.from_environment: expected a boolean"));
  EXPECT_THAT(parse_error("[proxy]\nalow_session_proxies = true\n"),
              HasSubstr("did you mean allow_session_proxies?"));
  Config both;
  both.proxy.url = "http://u:p@proxy:3128";
  both.proxy.authorization = "Basic abc";
  EXPECT_THAT(validate(both), HasSubstr("proxy.authorization: proxy.url has credentials already"));
  Config bad;
  bad.proxy.url = "ftp://p";
  EXPECT_THAT(validate(bad), HasSubstr("proxy.url: invalid proxy URL: scheme \"ftp\""));
}

}  // namespace
// ---- Happy Eyeballs delay, unix-socket upstreams ----------------------------------------

TEST(ConfigConnect, AttemptDelayAndUnixSocketKeys) {
  EXPECT_EQ(Config{}.timeouts.connection_attempt_delay_ms, 250u);  // RFC 8305's recommendation
  EXPECT_TRUE(Config{}.policy.allow_unix_sockets.empty());         // unix sockets denied
  const Config c = parse_ok(
      "[timeouts]\nconnection_attempt_delay_ms = 100\n"
      "[policy]\nallow_unix_sockets = [\"/run/app/*.sock\", \"/tmp/x.sock\"]\n"
      "deny_unix_sockets = [\"/run/app/admin.sock\"]\n");
  EXPECT_EQ(c.timeouts.connection_attempt_delay_ms, 100u);
  EXPECT_EQ(c.policy.allow_unix_sockets, (std::vector<std::string>{"/run/app/*.sock", "/tmp/x.sock"}));
  EXPECT_EQ(c.policy.deny_unix_sockets, (std::vector<std::string>{"/run/app/admin.sock"}));
  EXPECT_EQ(validate(c), "");
  EXPECT_EQ(parse_ok("[timeouts]\nconnection_attempt_delay_ms = 2000\n").timeouts.connection_attempt_delay_ms,
            2000u);
}

TEST(ConfigConnect, AttemptDelayBoundsAreTheRfcs) {
  EXPECT_THAT(parse_error("[timeouts]\nconnection_attempt_delay_ms = 99\n"),
              HasSubstr("timeouts.connection_attempt_delay_ms: expected an integer from 100 to 2000, got 99"));
  EXPECT_THAT(parse_error("[timeouts]\nconnection_attempt_delay_ms = 2001\n"),
              HasSubstr("timeouts.connection_attempt_delay_ms: 2001 is out of range (at most 2000)"));
  Config c;
  c.timeouts.connection_attempt_delay_ms = 0;
  EXPECT_THAT(validate(c), HasSubstr("timeouts.connection_attempt_delay_ms: must be from 100 to 2000, got 0"));
}

TEST(ConfigConnect, BadUnixSocketPatterns) {
  EXPECT_THAT(parse_error("[policy]\nallow_unix_sockets = [\"run/app.sock\"]\n"),
              HasSubstr("policy.allow_unix_sockets[0]: is not an absolute path"));
  EXPECT_THAT(parse_error("[policy]\ndeny_unix_sockets = [\"\"]\n"),
              HasSubstr("policy.deny_unix_sockets[0]: is not an absolute path"));
  EXPECT_THAT(parse_error("[policy]\nallow_unix_sockets = [\"/" + std::string(107, 'a') + "\"]\n"),
              HasSubstr("longer than a unix socket path may be (107 bytes)"));
  EXPECT_THAT(parse_error("[policy]\nallow_unix_sockets = [\"/a\\u0000b\"]\n"), HasSubstr("contains a NUL byte"));
  EXPECT_THAT(parse_error("[policy]\nallow_unix_sockets = \"/run/x.sock\"\n"),
              HasSubstr("policy.allow_unix_sockets: expected an array of strings, got a string"));
  Config c;
  c.policy.allow_unix_sockets = {"relative.sock"};
  EXPECT_THAT(validate(c), HasSubstr("policy.allow_unix_sockets[0]: is not an absolute path"));
}

}  // namespace wsgate::daemon
