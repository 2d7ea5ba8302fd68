#include "service/daemon/win32/service.h"

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iterator>
#include <mutex>

#include "service/log/logging.h"
#include "service/daemon/server.h"
#include "service/daemon/win32/paths.h"

namespace wsgate::daemon::win32 {
namespace {

// The SCM's callbacks take no user pointer for ServiceMain, so the state is file-static.
struct ServiceState {
  Config config;
  std::string config_path;
  SERVICE_STATUS_HANDLE handle = nullptr;
  std::mutex mutex;  // guards status
  SERVICE_STATUS status{};
  std::mutex server_mutex;  // guards server: the handler never uses a destroyed Server
  Server* server = nullptr;
  int exit_code = 0;
};
ServiceState* g_state = nullptr;

void report(DWORD state, DWORD win32_exit = NO_ERROR, DWORD wait_hint_ms = 0,
            DWORD service_exit = 0) {
  std::lock_guard lock(g_state->mutex);
  SERVICE_STATUS& s = g_state->status;
  s.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
  s.dwCurrentState = state;
  s.dwWin32ExitCode = win32_exit;
  s.dwServiceSpecificExitCode = service_exit;
  s.dwWaitHint = wait_hint_ms;
  s.dwControlsAccepted =
      state == SERVICE_RUNNING
          ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PRESHUTDOWN |
                SERVICE_ACCEPT_PARAMCHANGE
          : 0;
  const bool pending = state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING;
  s.dwCheckPoint = pending ? s.dwCheckPoint + 1 : 0;
  if (g_state->handle) ::SetServiceStatus(g_state->handle, &s);
}

DWORD WINAPI control_handler(DWORD control, DWORD /*event_type*/, LPVOID /*event_data*/,
                             LPVOID /*context*/) {
  switch (control) {
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN:
    case SERVICE_CONTROL_PRESHUTDOWN: {
      // Same path as SIGTERM: Server::run() returns after the drain.
      report(SERVICE_STOP_PENDING, NO_ERROR, g_state->config.timeouts.drain_ms + 5000);
      std::lock_guard lock(g_state->server_mutex);
      if (g_state->server) g_state->server->request_shutdown();  // only posts to its loop
      return NO_ERROR;
    }
    case SERVICE_CONTROL_PARAMCHANGE: {
      // `sc.exe control wsgated paramchange`: what SIGHUP does on POSIX (log file reopened,
      // log.level and the redaction settings re-read).
      std::lock_guard lock(g_state->server_mutex);
      if (g_state->server) g_state->server->request_reload("PARAMCHANGE");  // posts to its loop
      return NO_ERROR;
    }
    case SERVICE_CONTROL_INTERROGATE: {
      std::lock_guard lock(g_state->mutex);
      if (g_state->handle) ::SetServiceStatus(g_state->handle, &g_state->status);
      return NO_ERROR;
    }
    default:
      return ERROR_CALL_NOT_IMPLEMENTED;
  }
}

void WINAPI service_main(DWORD /*argc*/, LPWSTR* /*argv*/) {
  g_state->handle =
      ::RegisterServiceCtrlHandlerExW(kServiceName, control_handler, nullptr);
  if (!g_state->handle) {
    g_state->exit_code = 1;
    return;
  }
  report(SERVICE_START_PENDING, NO_ERROR, 10000);

  Config& config = g_state->config;
  if (config.log.file.empty()) config.log.file = default_service_log_file();
  try {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(config.log.file).parent_path(), ec);
    log::init_logging(config.log);
  } catch (const std::exception&) {
    // Keep going on the default sink: a service must still report its status.
  }

  try {
    Server server(config, g_state->config_path);
    if (std::string error = server.start(); !error.empty()) {
      log::logger("daemon")->critical("cannot start: {}", error);
      g_state->exit_code = 1;
      report(SERVICE_STOPPED, ERROR_SERVICE_SPECIFIC_ERROR, 0, 1);
      return;
    }
    {
      std::lock_guard lock(g_state->server_mutex);
      g_state->server = &server;
    }
    report(SERVICE_RUNNING);
    g_state->exit_code = server.run();  // returns after the drain
    {
      std::lock_guard lock(g_state->server_mutex);
      g_state->server = nullptr;
    }
    report(SERVICE_STOP_PENDING, NO_ERROR, 5000);
  } catch (const std::exception& e) {
    log::logger("daemon")->critical("service stopped by an exception: {}", e.what());
    g_state->exit_code = 1;
  }
  report(SERVICE_STOPPED, g_state->exit_code == 0 ? NO_ERROR : ERROR_SERVICE_SPECIFIC_ERROR, 0,
         static_cast<DWORD>(g_state->exit_code));
}

}  // namespace

std::string default_service_log_file() {
  return (program_data_dir() / "logs" / "wsgated.log").string();
}

int run_service(const Config& config, const std::string& config_path) {
  static ServiceState state;
  state.config = config;
  state.config_path = config_path;
  g_state = &state;
  wchar_t name[sizeof kServiceName / sizeof kServiceName[0]];
  std::copy(std::begin(kServiceName), std::end(kServiceName), name);
  const SERVICE_TABLE_ENTRYW table[] = {{name, service_main}, {nullptr, nullptr}};
  if (!::StartServiceCtrlDispatcherW(table)) {
    const DWORD error = ::GetLastError();
    if (error == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
      std::fprintf(stderr, "wsgated: --service is for the Service Control Manager "
                           "(deploy/windows/install-service.ps1); run without it in a console\n");
      return 3;
    }
    std::fprintf(stderr, "wsgated: StartServiceCtrlDispatcher failed (error %lu)\n",
                 static_cast<unsigned long>(error));
    return 1;
  }
  return state.exit_code;
}

}  // namespace wsgate::daemon::win32
