// wsgated's configuration: one value type with every option and its default, loaded from a TOML
// file (toml++) and overridden by command-line flags. docs/configuration.md documents each key.
//
// Lifetime/thread safety: a plain value; copied into the components at start-up and on SIGHUP
// reload (only the fields marked "reloadable" are applied to a running daemon).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "service/log/log_config.h"

namespace wsgate::daemon {

struct ListenConfig {
  // Unix socket path. Default: $XDG_RUNTIME_DIR/wsgate/wsgated.sock for an ordinary user,
  // /run/wsgate/wsgated.sock for root (default_socket_path()).
  std::string unix_socket;
  std::uint32_t unix_socket_mode = 0660;
  // "host:port" for an additional TCP listener; empty (the default) means none.
  std::string tcp;
};

// The [log] section lives with the logging library (service/log/log_config.h).
using LogConfig = log::LogConfig;

// The metrics endpoint (service/daemon/metrics.h). Empty listen: off.
struct MetricsConfig {
  std::string listen;  // "127.0.0.1:9464", "[::1]:9464" or "unix:/run/wsgate/metrics.sock"
};

struct TimeoutConfig {
  std::uint32_t connect_ms = 10000;
  std::uint32_t handshake_ms = 10000;
  std::uint32_t close_ms = 5000;
  std::uint32_t drain_ms = 10000;  // SIGTERM: how long sessions get to close
  // Happy Eyeballs (RFC 8305): how long one connection attempt runs before the next address is
  // tried as well; 100..2000 ms, the RFC's bounds (250 ms is its recommended value).
  std::uint32_t connection_attempt_delay_ms = 250;
};

struct LimitConfig {
  std::uint32_t max_sessions = 10000;
  std::uint32_t max_sessions_per_host = 1000;
  std::uint64_t max_message_bytes = 16u << 20;  // default per session
  std::uint64_t max_message_bytes_ceiling = 64u << 20;  // what a client may ask for at most
  std::uint64_t max_queued_bytes = 8u << 20;
  std::uint32_t max_header_bytes = 16384;   // HTTP upgrade response
  std::uint32_t max_protocol_handles = 1024;  // ProtocolComponent handles per daemon
  // ProtocolComponent bounds (service/rpc/protocol_component_service.h says why these defaults).
  std::uint32_t max_protocol_handles_per_client = 64;
  std::uint64_t max_protocol_queued_bytes = 16u << 20;     // per handle, queued Sends + Receives
  std::uint32_t max_protocol_pending_operations = 1024;    // per handle, queued Sends + Receives
  std::uint64_t max_protocol_memory_bytes = 256u << 20;    // all handles together
  std::uint32_t max_protocol_idle_ms = 0;  // >0: delete handles no RPC named this long; 0: off
  std::uint32_t max_grpc_message_bytes = 68u << 20;
  // Gateway hardening: the upgrade request a client may ask for (extra headers; bytes of the
  // extra headers, subprotocols and extensions), and the payload bytes all sessions together may
  // hold in memory (see docs/configuration.md for the default's rationale).
  std::uint32_t max_request_headers = 64;
  std::uint32_t max_request_header_bytes = 16384;
  std::uint64_t memory_budget_bytes = 256u << 20;
};

struct PoolConfig {
  std::uint32_t keepalive_interval_ms = 30000;  // unsolicited pong when idle; floor 15000
  std::uint32_t ping_timeout_ms = 0;            // >0: ping when idle, abort if no pong in time
  std::uint32_t idle_timeout_ms = 0;            // >0: close sessions idle this long (1001)
};

// permessage-deflate (RFC 7692) for Gateway sessions: what is offered unless Open.compression
// says otherwise. Off by default: compression costs CPU and per-session memory (a compressor
// holds up to ~256 KiB), and it is no protection against a peer reading secrets from compressed
// lengths (CRIME/BREACH-style), so it is an operator's choice.
struct CompressionConfig {
  bool enabled = false;
  std::uint32_t threshold_bytes = 128;  // smaller messages go out uncompressed
  bool client_no_context_takeover = false;
  bool server_no_context_takeover = false;
  std::uint32_t server_max_window_bits = 0;  // 8..15; 0: not offered
  std::uint32_t client_max_window_bits = 0;  // 9..15; 0: offered without a value
};

struct PolicyConfig {
  // Destination policy, checked after DNS resolution. Entries: host names ("example.com",
  // "*.example.com"), CIDRs ("10.0.0.0/8", "::1/128"), and for ports, numbers or ranges.
  std::vector<std::string> allow_hosts;   // empty: every host not denied
  std::vector<std::string> deny_hosts;
  std::vector<std::string> allow_cidrs;   // empty: every address not denied
  std::vector<std::string> deny_cidrs;
  std::vector<std::string> allow_ports;   // empty: every port
  // Link-local (169.254.0.0/16, fe80::/10) and cloud metadata (fd00:ec2::254) addresses are
  // denied unless a CIDR in allow_cidrs names them explicitly.
  // ws+unix upstreams: absolute socket paths or globs ("/run/app/*.sock", fnmatch with
  // FNM_PATHNAME). Denied unless allow_unix_sockets names them; deny_unix_sockets wins.
  std::vector<std::string> allow_unix_sockets;
  std::vector<std::string> deny_unix_sockets;
};

struct TlsConfig {
  std::string ca_file;  // default trust store; empty: the system's
  // May Gateway clients name files (CA, cert, key) on the daemon host? Off by default: a client
  // could otherwise make the daemon read any file it can; clients send PEM text instead.
  bool allow_client_file_paths = false;
};

// HTTP CONNECT proxy for Gateway sessions (service/net/http_proxy.h has the conventions;
// docs/configuration.md [proxy] the precedence). Read at start-up (not reloadable).
struct ProxyConfig {
  std::string url;       // "http://[user:password@]host[:port]"; empty: the environment's
  std::string no_proxy;  // curl's list of hosts that go direct; empty: the environment's
  // A Proxy-Authorization value sent instead of credentials in the URL (e.g. "Bearer ...").
  std::string authorization;
  bool from_environment = true;  // read https_proxy, http_proxy, all_proxy, no_proxy
  // May Open.proxy name a proxy URL? Off by default; when on, such a proxy must pass the
  // destination policy. Open.proxy = "direct" is always allowed.
  bool allow_session_proxies = false;
};

// Who may call the Admin service (which shows every session's URL). Unix-socket callers are
// known by their kernel credentials (SO_PEERCRED); the daemon's own uid and root are always
// allowed (they can read the daemon's memory anyway); Admin over listen.tcp is always refused.
struct AdminConfig {
  std::vector<std::uint32_t> allow_uids;  // more uids allowed
  std::vector<std::uint32_t> allow_gids;  // callers whose primary gid is one of these
};

struct Config {
  ListenConfig listen;
  LogConfig log;
  TimeoutConfig timeouts;
  LimitConfig limits;
  PoolConfig pool;
  CompressionConfig compression;
  PolicyConfig policy;
  TlsConfig tls;
  AdminConfig admin;
  MetricsConfig metrics;
  ProxyConfig proxy;
  std::uint32_t io_threads = 1;  // Asio threads (the gRPC library runs its own)
};

// The default unix socket path for the current user (see ListenConfig::unix_socket); on
// Windows %ProgramData%\wsgate\run\wsgated.sock (posix/paths.cc, win32/paths.cc).
std::string default_socket_path();

// Parses TOML text into a Config (defaults for absent keys). Unknown keys, wrong types and
// out-of-range values are errors: the returned string has one line per error (every error of
// the file, not only the first), each naming the key and line, with a suggestion for a
// misspelt key. A TOML syntax error stops the parser: it is reported alone.
struct LoadResult {
  std::optional<Config> config;
  std::string error;  // set when !config
};
LoadResult parse_config(const std::string& toml_text, const std::string& source_name);
LoadResult load_config_file(const std::string& path);

// Checks cross-field rules (e.g. keepalive floor, CIDR syntax, log level names).
std::string validate(const Config& config);  // empty when valid, else one line per error

// Settings that are valid but probably not meant (e.g. timeouts.drain_ms below close_ms): one
// line each, naming the key. --check-config prints them and start-up logs them; they do not
// stop the daemon (a short drain can be deliberate).
std::vector<std::string> warnings(const Config& config);

}  // namespace wsgate::daemon
