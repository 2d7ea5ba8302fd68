// `wsgate sessions`, `stats`, `health`, `version`, and the daemon address rules.
#include <google/protobuf/util/json_util.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cli.h"
#include "deploy/health/health_check.h"
#include "exit_status.h"

#ifndef WSGATE_VERSION
#error "WSGATE_VERSION must be defined by the build"
#endif

namespace wsgate::cli {
namespace {

constexpr const char* kSystemSocket = "unix:/run/wsgate/wsgated.sock";

bool socket_exists(const std::string& target) {
  if (target.rfind("unix:", 0) != 0) return false;
  std::string path = target.substr(5);
  if (path.rfind("//", 0) == 0) path = path.substr(2);  // unix:///path
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
#ifdef _WIN32
  // Windows names no socket type: an AF_UNIX socket is a reparse point of unknown type.
  return !ec && st.type() == std::filesystem::file_type::unknown;
#else
  return !ec && std::filesystem::is_socket(st);
#endif
}

std::string to_json(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, options).ok()) out = "{}";
  return out;
}

const char* state_name(v1::SessionState s) {
  switch (s) {
    case v1::SESSION_STATE_CONNECTING: return "connecting";
    case v1::SESSION_STATE_OPEN: return "open";
    case v1::SESSION_STATE_CLOSING: return "closing";
    case v1::SESSION_STATE_CLOSED: return "closed";
    default: return "unknown";
  }
}

std::string age(std::uint64_t ms) {
  char buf[32];
  if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%llum%02llus", static_cast<unsigned long long>(ms / 60'000),
                  static_cast<unsigned long long>(ms / 1000 % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lluh%02llum", static_cast<unsigned long long>(ms / 3'600'000),
                  static_cast<unsigned long long>(ms / 60'000 % 60));
  }
  return buf;
}

// Runs one Admin call; prints the failure like `cat` does.
template <typename F>
int admin_call(const std::string& address, F&& f) {
  ClientOptions co;
  co.address = address;
  co.default_timeout = std::chrono::seconds(10);
  Client client(co);
  try {
    f(client);
    return kOk;
  } catch (const Error& e) {
    std::fprintf(stderr, "wsgate: %s\n", describe(e, client.address()).c_str());
    return exit_for_error(e, false);
  }
}

}  // namespace

std::string daemon_address(const std::string& option) {
  if (!option.empty()) return resolve_address(option);
  if (const char* env = std::getenv("WSGATE_ADDRESS"); env != nullptr && env[0] != '\0')
    return resolve_address(env);
  // A user's per-user default, unless only the system daemon (systemd, /run/wsgate) is there.
  const std::string fallback = resolve_address();
  if (!socket_exists(fallback) && socket_exists(kSystemSocket)) return kSystemSocket;
  return fallback;
}

int run_sessions(const std::string& address, bool json) {
  return admin_call(address, [&](const Client& client) {
    const v1::ListSessionsResponse r = client.list_sessions();
    if (json) {
      std::printf("%s\n", to_json(r).c_str());
      return;
    }
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"ID", "STATE", "AGE", "MSGS OUT", "BYTES OUT", "MSGS IN", "BYTES IN", "URL"});
    for (const v1::SessionInfo& s : r.sessions()) {
      rows.push_back({s.id(), state_name(s.state()), age(s.age_ms()),
                      std::to_string(s.messages_sent()), std::to_string(s.bytes_sent()),
                      std::to_string(s.messages_received()), std::to_string(s.bytes_received()),
                      s.url()});
    }
    std::vector<std::size_t> width(rows[0].size(), 0);
    for (const auto& row : rows) {
      for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    }
    for (const auto& row : rows) {
      std::string line;
      for (std::size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
      }
      std::printf("%s\n", line.c_str());
    }
    if (r.sessions().empty()) std::printf("(no sessions)\n");
  });
}

int run_stats(const std::string& address, bool json) {
  return admin_call(address, [&](const Client& client) {
    const v1::GetStatsResponse r = client.get_stats();
    if (json) {
      std::printf("%s\n", to_json(r).c_str());
      return;
    }
    std::printf("active_sessions   %llu\n", static_cast<unsigned long long>(r.active_sessions()));
    std::printf("opens_total       %llu\n", static_cast<unsigned long long>(r.opens_total()));
    std::printf("bytes_sent        %llu\n", static_cast<unsigned long long>(r.bytes_sent()));
    std::printf("bytes_received    %llu\n", static_cast<unsigned long long>(r.bytes_received()));
    std::printf("protocol_handles  %llu\n", static_cast<unsigned long long>(r.protocol_handles()));
    // Sorted: the map's order is unspecified.
    const std::map<std::string, std::uint64_t> failures(r.failures_by_cause().begin(),
                                                        r.failures_by_cause().end());
    for (const auto& [cause, n] : failures) {
      std::printf("failures.%s  %llu\n", cause.c_str(), static_cast<unsigned long long>(n));
    }
  });
}

int run_health(const std::string& address, long timeout_ms) {
  // Same call, output and exit status as wsgate-health (deploy/health/health_check.h).
  const health::CheckResult result = health::check(address, std::chrono::milliseconds(timeout_ms));
  if (!result.rpc_ok) {
    std::fprintf(stderr, "wsgate: %s: %s\n", address.c_str(), result.error.c_str());
    return kFailure;
  }
  std::printf("%s: %s\n", address.c_str(), result.name());
  return result.serving_ok() ? kOk : kFailure;
}

int run_version() {
  std::printf("wsgate %s\n", WSGATE_VERSION);
  return kOk;
}

}  // namespace wsgate::cli
