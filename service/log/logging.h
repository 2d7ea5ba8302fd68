// wsgated's logging: one spdlog logger per component (kComponents below, or any other name),
// all writing to one shared sink: stderr, or a file that reopen_logs() reopens by name (SIGHUP
// after log rotation).
//
// Formats (log.format):
//   text: 2024-05-01T12:00:00.123+02:00 info [rpc] message
//   json: {"ts":"2024-05-01T12:00:00.123+02:00","level":"info","component":"rpc","msg":"message"}
//         one object per line; strings are JSON-escaped, invalid UTF-8 becomes U+FFFD.
// An event logged with log_event() carries fields besides its message: in json they are members
// of the object (numbers unquoted), in text they follow the message as key=value (a value with
// spaces, quotes or '=' is quoted):
//   text: 2024-05-01T12:00:00.123+02:00 info [gateway] session closed session=ab12 code=1000
//   json: {...,"msg":"session closed","session":"ab12","code":1000}
// Level names are the configuration's: trace, debug, info, warn, error, critical. In the text
// format, control characters of a message are written as escapes (\n, \t, \x01), so one event is
// always one line whatever a peer put in a close reason or a header; bytes that are not UTF-8
// are written as \xNN.
//
// Thread safety: every function may be called from any thread, concurrently with logging. The
// sink serializes writes. None of them is async-signal-safe: call reopen_logs()/set_log_level()
// from the thread that handles signals (e.g. an asio::signal_set), not from a signal handler.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include <spdlog/logger.h>

#include "service/log/log_config.h"

namespace wsgate::log {

// The components wsgated logs under (docs/configuration.md says what each one logs). init_logging
// creates their loggers, so spdlog::get() finds them from the start.
inline constexpr std::array<std::string_view, 5> kComponents = {"daemon", "rpc", "net", "gateway",
                                                                "protocol"};

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

// The current level's name (trace ... off).
std::string log_level();

// One field of a structured event: a key (a fixed identifier chosen by the code, e.g. "session")
// and a string or integer value. A string value is copied: the field may outlive its source.
class LogField {
 public:
  LogField(std::string_view key, std::string_view value) : key_(key), text_(value) {}
  LogField(std::string_view key, const char* value) : key_(key), text_(value) {}
  LogField(std::string_view key, const std::string& value) : key_(key), text_(value) {}
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  LogField(std::string_view key, T value) : key_(key), text_(std::to_string(value)), number_(true) {}
  LogField(std::string_view key, bool value) : key_(key), text_(value ? "true" : "false"), number_(true) {}

  std::string_view key() const { return key_; }
  const std::string& text() const { return text_; }
  bool is_number() const { return number_; }  // written unquoted in json (numbers, booleans)

 private:
  std::string_view key_;
  std::string text_;
  bool number_ = false;
};

// Logs `message` with `fields` on `log` at `level` (nothing is built when the level is off).
// The fields reach the formatter of the shared sink (init_logging); a logger on another sink
// gets the message alone. Values are not redacted here: pass redact_url(url) (redact.h).
void log_event(spdlog::logger& log, spdlog::level::level_enum level, std::string_view message,
               std::initializer_list<LogField> fields);

// The fields of a Gateway session's open, close and failure events (docs/configuration.md lists
// them). `url` is the session's URL as the client gave it: log_session_event() redacts it.
// bytes/messages "in" come from upstream, "out" go to upstream.
struct SessionEvent {
  std::string_view session = {};
  std::string_view url = {};
  std::string_view event = {};  // "open", "close", "failed"
  int code = 0;                // close code (0: none, e.g. a failed open)
  std::string_view cause = {};      // ErrorDetail.cause of a failure ("" when none)
  std::string_view initiator = {};  // "client", "server", "gateway" ("" on open)
  std::uint64_t duration_ms = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t messages_in = 0;
  std::uint64_t messages_out = 0;
};

// One session event with the fields of `e` (an "open" event: session, url and event only; the
// others: all of them), the url redacted per log.redact.
void log_session_event(spdlog::logger& log, spdlog::level::level_enum level, std::string_view message,
                       const SessionEvent& e);

}  // namespace wsgate::log
