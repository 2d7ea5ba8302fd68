// wsgated's logging: one spdlog logger per component ("daemon", "rpc", "net", "pool", "gateway",
// "protocol", or any other name), all writing to one shared sink: stderr, or a file that
// reopen_logs() reopens by name (SIGHUP after log rotation).
//
// Formats (log.format):
//   text: 2024-05-01T12:00:00.123+02:00 info [rpc] message
//   json: {"ts":"2024-05-01T12:00:00.123+02:00","level":"info","component":"rpc","msg":"message"}
//         one object per line; strings are JSON-escaped, invalid UTF-8 becomes U+FFFD.
// Level names are the configuration's: trace, debug, info, warn, error, critical. In the text
// format, control characters of a message are written as escapes (\n, \t, \x01), so one event is
// always one line whatever a peer put in a close reason or a header; bytes that are not UTF-8
// are written as \xNN.
//
// Thread safety: every function may be called from any thread, concurrently with logging. The
// sink serializes writes. None of them is async-signal-safe: call reopen_logs()/set_log_level()
// from the thread that handles signals (e.g. an asio::signal_set), not from a signal handler.
#pragma once

#include <memory>
#include <string_view>

#include <spdlog/logger.h>

#include "service/daemon/config.h"

namespace wsgate::daemon {

// Points every logger at a new sink built from `config`: sets the format, opens log.file (append)
// or uses stderr, and applies log.level. May be called again (e.g. on reload). Throws
// std::invalid_argument for an unknown level or format and std::system_error when the file cannot
// be opened; the previous sink stays in use in both cases. Before the first call, loggers write
// text to stderr at level info.
void init_logging(const LogConfig& config);

// Closes and reopens the log file by its name (after logrotate renamed it). A no-op for stderr.
// If the file cannot be reopened, logging continues to the old file and an error is logged there.
void reopen_logs();

// The logger for `component`, created on the shared sink at the current level on first use. Loggers
// are also registered with spdlog (spdlog::get(name)) unless that name is taken; "daemon" becomes
// spdlog's default logger.
std::shared_ptr<spdlog::logger> logger(std::string_view component);

// Sets the level of every logger, existing and future. Throws std::invalid_argument for a name
// that is not one of trace, debug, info, warn, error, critical, off.
void set_log_level(std::string_view level);

}  // namespace wsgate::daemon
