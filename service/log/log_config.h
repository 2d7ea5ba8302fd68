// The [log] section of wsgated's configuration (docs/configuration.md), on its own so that the
// logging library (service/log) needs nothing of the daemon; service/daemon/config.h embeds it.
//
// Lifetime/thread safety: a plain value, copied where it is used.
#pragma once

#include <string>

namespace wsgate::log {

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off (reloadable)
  std::string format = "text"; // text or json
  std::string file;            // empty: stderr; SIGHUP reopens it
  // Redaction (service/log/redact.h) of URL userinfo/query values and credential headers in
  // logs, Admin answers and metrics labels; the subprotocol opt-in masks Sec-WebSocket-Protocol.
  bool redact = true;
  bool redact_subprotocols = false;
};

}  // namespace wsgate::log
