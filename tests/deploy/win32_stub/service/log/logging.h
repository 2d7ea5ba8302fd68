// Stub of service/log/logging.h for the mingw-w64 syntax check (no spdlog for mingw here).
#pragma once

#include <memory>
#include <string_view>

#include "service/log/log_config.h"

namespace wsgate::log {

struct StubLogger {
  template <class... A> void trace(A&&...) {}
  template <class... A> void debug(A&&...) {}
  template <class... A> void info(A&&...) {}
  template <class... A> void warn(A&&...) {}
  template <class... A> void error(A&&...) {}
  template <class... A> void critical(A&&...) {}
};

void init_logging(const LogConfig& config);
void reopen_logs();
std::shared_ptr<StubLogger> logger(std::string_view component);
void set_log_level(std::string_view level);

}  // namespace wsgate::log
