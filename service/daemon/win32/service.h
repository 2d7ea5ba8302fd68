// wsgated as a Windows service. main() calls run_service() when started with --service (the
// command line that deploy/windows/install-service.ps1 registers with the Service Control
// Manager).
//
//   SERVICE_CONTROL_STOP, SERVICE_CONTROL_SHUTDOWN, SERVICE_CONTROL_PRESHUTDOWN
//       -> Server::request_shutdown(): the same drain as SIGTERM on POSIX (sessions closed with
//          1001, at most timeouts.drain_ms), reported as SERVICE_STOP_PENDING with a wait hint
//          of drain_ms + 5 s.
//   SERVICE_CONTROL_PARAMCHANGE -> Server::request_reload(): what SIGHUP does on POSIX (reopen
//          the log file, re-read log.level and the redaction settings).
//   SERVICE_CONTROL_INTERROGATE -> the current status again.
//
// Logs: a service has no console, so when log.file is empty the log goes to
// %ProgramData%\wsgate\logs\wsgated.log (the directory is created).
//
// Thread safety: the SCM calls the control handler on the dispatcher thread while ServiceMain
// runs the server on its own thread; the status and the Server pointer are mutex-protected.
#pragma once

#include <string>

#include "service/daemon/config.h"

namespace wsgate::daemon::win32 {

inline constexpr wchar_t kServiceName[] = L"wsgated";

// Connects to the SCM and serves until the service is stopped. Returns the process exit code:
// 0 after a clean stop, 1 when the server could not start, 3 when the process was not started
// by the SCM (StartServiceCtrlDispatcher fails with ERROR_FAILED_SERVICE_CONTROLLER_CONNECT).
int run_service(const Config& config, const std::string& config_path);

// %ProgramData%\wsgate\logs\wsgated.log (falls back to C:\ProgramData when unset).
std::string default_service_log_file();

}  // namespace wsgate::daemon::win32
