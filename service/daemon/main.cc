// wsgated: parse flags and the config file, then hand over to Server (service/daemon/server.h).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <cstdlib>
#include <vector>

#include "service/daemon/config.h"
#include "service/daemon/platform.h"
#include "service/log/logging.h"
#include "service/log/redact.h"
#include "service/daemon/server.h"
#include "service/rpc/fd_budget.h"
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif
#ifdef _WIN32  // deploy: the Windows service entry (service/daemon/win32/)
#include "service/daemon/win32/service.h"
#endif

namespace {

// One "wsgated: " line per error (the configuration reports every error, one per line).
void print_errors(const std::string& errors) {
  std::size_t start = 0;
  while (start <= errors.size()) {
    const std::size_t end = std::min(errors.find('\n', start), errors.size());
    std::fprintf(stderr, "wsgated: %s\n", errors.substr(start, end - start).c_str());
    start = end + 1;
  }
}

// The unix socket to listen on, from the environment: WSGATE_ADDRESS, the clients' variable (one
// name for the socket on both sides; docs/configuration.md, "Environment"), in its unix forms
// (unix:PATH, unix:///ABS, /ABS); WSGATE_SOCKET, its deprecated alias, when it is unset. Returns
// false, with `error`, for a value the daemon cannot listen on (a TCP target: that is WSGATE_TCP).
bool socket_from_environment(std::string& socket, std::string& error,
                             std::vector<std::string>& warnings) {
  const char* address = std::getenv("WSGATE_ADDRESS");
  const char* legacy = std::getenv("WSGATE_SOCKET");
  const bool has_address = address != nullptr && address[0] != '\0';
  const bool has_legacy = legacy != nullptr && legacy[0] != '\0';
  if (has_legacy) {
    warnings.push_back(has_address
        ? "WSGATE_SOCKET is deprecated and ignored: WSGATE_ADDRESS is set"
        : "WSGATE_SOCKET is deprecated: set WSGATE_ADDRESS=unix:" + std::string(legacy));
  }
  if (!has_address) {
    if (has_legacy) socket = legacy;
    return true;
  }
  const std::string value = address;
  std::string path;
  if (value.rfind("unix://", 0) == 0) {
    path = value.substr(7);  // gRPC's unix://ABSOLUTE_PATH
    if (path.empty() || path[0] != '/') path.clear();
  } else if (value.rfind("unix:", 0) == 0) {
    path = value.substr(5);
  } else if (value[0] == '/') {
    path = value;
  } else {
    error = "WSGATE_ADDRESS: \"" + value + "\": the daemon listens on a unix socket (unix:PATH); "
            "for a TCP listener set WSGATE_TCP (or --tcp)";
    return false;
  }
  if (path.empty()) {
    error = "WSGATE_ADDRESS: \"" + value + "\": no socket path (expected unix:PATH)";
    return false;
  }
  socket = path;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace wsgate::daemon;
  CLI::App app{"wsgated: WebSocket gateway daemon (gRPC on a local socket, ws:// and wss:// out)"};
  std::string config_path, socket, tcp, log_level, log_format;
  bool check_only = false;
  app.set_version_flag("--version", std::string("wsgated ") + WSGATE_VERSION);
  app.add_option("-c,--config", config_path, "TOML configuration file")->envname("WSGATE_CONFIG");
  // deploy: each override flag can also come from the environment (containers); a flag given
  // on the command line wins over its variable.
  // --socket's variable is WSGATE_ADDRESS (unix:PATH), read below: it is the clients' too.
  app.add_option("--socket", socket,
                 "unix socket path (overrides listen.unix_socket; env WSGATE_ADDRESS=unix:PATH)");
  app.add_option("--tcp", tcp, "also listen on HOST:PORT (overrides listen.tcp)")
      ->envname("WSGATE_TCP");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|critical|off")
      ->envname("WSGATE_LOG_LEVEL");
  app.add_option("--log-format", log_format, "text|json")->envname("WSGATE_LOG_FORMAT");
  app.add_flag("--check-config", check_only, "validate the configuration and exit");
#ifdef _WIN32  // deploy: started by the Service Control Manager
  bool windows_service = false;
  app.add_flag("--service", windows_service, "run as the Windows service (install-service.ps1)");
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end here too (status 0); any flag error exits 2, as documented
    // (docs/operations.md), not with CLI11's own codes (e.g. 109 for an unknown flag).
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  std::vector<std::string> env_warnings;
  if (std::string error; socket.empty() && !socket_from_environment(socket, error, env_warnings)) {
    std::fprintf(stderr, "wsgated: %s\n", error.c_str());
    return 2;
  }

  LoadResult loaded = config_path.empty() ? parse_config("", "defaults") : load_config_file(config_path);
  if (!loaded.config) {
    print_errors(loaded.error);
    return 2;
  }
  Config config = *loaded.config;
  if (!socket.empty()) config.listen.unix_socket = socket;
  if (!tcp.empty()) config.listen.tcp = tcp;
  if (!log_level.empty()) config.log.level = log_level;
  if (!log_format.empty()) config.log.format = log_format;
  if (config.listen.unix_socket.empty()) config.listen.unix_socket = default_socket_path();
  if (std::string error = validate(config); !error.empty()) {
    print_errors(error);
    return 2;
  }
  // The open-file limit start-up will raise the soft limit to (the hard limit): refuse a
  // max_sessions it cannot hold here already, so --check-config catches it.
  if (std::string error = wsgate::rpc::FdBudget::check_limit(
          config.limits.max_sessions, platform::reachable_file_limit());
      !error.empty()) {
    std::fprintf(stderr, "wsgated: %s\n", error.c_str());
    return 2;
  }
  if (check_only) {
    for (const std::string& w : env_warnings)
      std::fprintf(stderr, "wsgated: warning: %s\n", w.c_str());
    for (const std::string& w : warnings(config)) std::fprintf(stderr, "wsgated: warning: %s\n", w.c_str());
    std::printf("wsgated: configuration OK\n");
    return 0;
  }
  wsgate::log::set_redaction({config.log.redact, config.log.redact_subprotocols});
#ifdef _WIN32  // deploy: the service sets up its own log file and status reporting
  if (windows_service) return win32::run_service(config, config_path);
#endif
  wsgate::log::init_logging(config.log);
  for (const std::string& w : env_warnings) wsgate::log::logger("daemon")->warn("{}", w);
  Server server(config, config_path);
  server.set_log_level_override(log_level);
  if (std::string error = server.start(); !error.empty()) {
    wsgate::log::logger("daemon")->critical("cannot start: {}", error);
    return 1;
  }
  const int status = server.run();
  // Leave without tearing down gRPC's global state: after a clean drain nothing is left to
  // release, and with gRPC 1.51 the library's executor threads can keep grpc_shutdown() (run by
  // ~Server) waiting up to 10 s in epoll_wait before the process may exit.
  wsgate::log::logger("daemon")->flush();
  std::fflush(nullptr);
#if defined(__SANITIZE_ADDRESS__)
  // _Exit skips LeakSanitizer's exit-time check: run it here (the ASan daemon tests).
  __lsan_do_leak_check();
#endif
  std::_Exit(status);
}
