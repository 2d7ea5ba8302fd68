// wsgated's logging (see logging.h): a process-wide table of component loggers and one sink that
// all of them share. The sink object never changes; init_logging() and reopen_logs() swap what is
// inside it (FILE*, formatter) under the sink's own mutex, so loggers never need new sinks.
#include "service/log/logging.h"

#include <array>
#include <cerrno>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>

#include <spdlog/details/log_msg.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "service/log/redact.h"

namespace wsgate::log {

namespace {

using spdlog::memory_buf_t;
using spdlog::details::log_msg;

constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%e%z %l [%n] %v";
constexpr const char* kTimestampPattern = "%Y-%m-%dT%H:%M:%S.%e%z";

// Indexed by spdlog::level::level_enum; the configuration's names ("warn", not "warning").
constexpr std::array<std::string_view, 7> kLevelNames = {"trace", "debug",    "info", "warn",
                                                         "error", "critical", "off"};

std::string_view level_name(spdlog::level::level_enum level) {
  const auto i = static_cast<std::size_t>(level);
  return i < kLevelNames.size() ? kLevelNames[i] : std::string_view("unknown");
}

spdlog::level::level_enum parse_level(std::string_view name) {
  for (std::size_t i = 0; i < kLevelNames.size(); ++i) {
    if (kLevelNames[i] == name) return static_cast<spdlog::level::level_enum>(i);
  }
  throw std::invalid_argument("unknown log level \"" + std::string(name) +
                              "\" (expected one of trace, debug, info, warn, error, critical, off)");
}

void append(memory_buf_t& dest, std::string_view s) { dest.append(s.data(), s.data() + s.size()); }

void append_hex_escape(memory_buf_t& dest, const char* prefix, unsigned value, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  append(dest, prefix);
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) dest.push_back(kHex[(value >> shift) & 0xf]);
}

// Length of the valid UTF-8 sequence at s[i], or 0 if the bytes there are not one.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;  // allowed range of the second byte
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    if (b0 == 0xe0) lo = 0xa0;  // overlong
    if (b0 == 0xed) hi = 0x9f;  // surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    if (b0 == 0xf0) lo = 0x90;  // overlong
    if (b0 == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  const auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < 0x80 || b > 0xbf) return 0;
  }
  return len;
}

// Appends `s` as the inside of a JSON string: quote, backslash and control characters escaped,
// invalid UTF-8 replaced by \ufffd.
void append_json_escaped(memory_buf_t& dest, std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      const std::size_t len = utf8_sequence_length(s, i);
      if (len == 0) {
        append(dest, "\\ufffd");
        ++i;
      } else {
        append(dest, s.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"': append(dest, "\\\""); break;
      case '\\': append(dest, "\\\\"); break;
      case '\n': append(dest, "\\n"); break;
      case '\r': append(dest, "\\r"); break;
      case '\t': append(dest, "\\t"); break;
      case '\b': append(dest, "\\b"); break;
      case '\f': append(dest, "\\f"); break;
      default:
        if (u < 0x20 || u == 0x7f) {
          append_hex_escape(dest, "\\u", u, 4);
        } else {
          dest.push_back(c);
        }
    }
    ++i;
  }
}

// Appends `s` with control characters and bytes that are not UTF-8 written as escapes (text
// format: one event, one line, readable whatever the bytes).
void append_text_escaped(memory_buf_t& dest, std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      const std::size_t len = utf8_sequence_length(s, i);
      if (len == 0) {
        append_hex_escape(dest, "\\x", u, 2);
        ++i;
      } else {
        append(dest, s.substr(i, len));
        i += len;
      }
      continue;
    }
    if (u >= 0x20 && u != 0x7f) {
      dest.push_back(c);
    } else {
      switch (c) {
        case '\n': append(dest, "\\n"); break;
        case '\r': append(dest, "\\r"); break;
        case '\t': append(dest, "\\t"); break;
        default: append_hex_escape(dest, "\\x", u, 2);
      }
    }
    ++i;
  }
}

std::string_view payload(const log_msg& msg) { return {msg.payload.data(), msg.payload.size()}; }

// The fields of the event being logged on this thread (log_event), read by the formatters. spdlog's
// synchronous loggers format in the caller's thread, inside logger::log(), so a thread-local
// carries them there without putting them in the message text (where a peer's bytes could
// imitate them).
thread_local const std::initializer_list<LogField>* t_fields = nullptr;

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

// " key=value" for each field (text format); values escaped like messages.
void append_text_fields(memory_buf_t& dest) {
  if (t_fields == nullptr) return;
  for (const LogField& f : *t_fields) {
    dest.push_back(' ');
    append_text_escaped(dest, f.key());
    dest.push_back('=');
    if (!f.is_number() && needs_quotes(f.text())) {
      dest.push_back('"');
      for (char c : f.text()) {
        if (c == '"' || c == '\\') dest.push_back('\\');
        append_text_escaped(dest, std::string_view(&c, 1));
      }
      dest.push_back('"');
    } else {
      append_text_escaped(dest, f.text());
    }
  }
}

// %l: the configuration's level names.
class LevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const log_msg& msg, const std::tm&, memory_buf_t& dest) override {
    append(dest, level_name(msg.level));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<LevelFlag>(); }
};

// %v: the message with control characters escaped.
class EscapedMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const log_msg& msg, const std::tm&, memory_buf_t& dest) override {
    append_text_escaped(dest, payload(msg));
    append_text_fields(dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessageFlag>();
  }
};

std::unique_ptr<spdlog::formatter> make_text_formatter() {
  auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::local, "\n");
  f->add_flag<LevelFlag>('l').add_flag<EscapedMessageFlag>('v').set_pattern(kTextPattern);
  return f;
}

// {"ts":"...","level":"...","component":"...","msg":"..."}\n
class JsonFormatter final : public spdlog::formatter {
 public:
  JsonFormatter()
      : timestamp_(std::make_unique<spdlog::pattern_formatter>(kTimestampPattern,
                                                               spdlog::pattern_time_type::local, "")) {}

  void format(const log_msg& msg, memory_buf_t& dest) override {
    append(dest, "{\"ts\":\"");
    timestamp_->format(msg, dest);
    append(dest, "\",\"level\":\"");
    append(dest, level_name(msg.level));
    append(dest, "\",\"component\":\"");
    append_json_escaped(dest, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    append(dest, "\",\"msg\":\"");
    append_json_escaped(dest, payload(msg));
    dest.push_back('"');
    if (t_fields != nullptr) {
      for (const LogField& f : *t_fields) {
        append(dest, ",\"");
        append_json_escaped(dest, f.key());
        append(dest, "\":");
        if (f.is_number()) {
          append(dest, f.text());
        } else {
          dest.push_back('"');
          append_json_escaped(dest, f.text());
          dest.push_back('"');
        }
      }
    }
    append(dest, "}\n");
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }

 private:
  std::unique_ptr<spdlog::pattern_formatter> timestamp_;
};

// The one sink: stderr or a named file, flushed after every event (so a crash loses nothing and
// readers of the file see whole lines).
class SharedSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  SharedSink() { formatter_ = make_text_formatter(); }
  ~SharedSink() override { close_file(); }

  void configure(std::FILE* file, std::string path, std::unique_ptr<spdlog::formatter> formatter) {
    std::lock_guard<std::mutex> lock(mutex_);
    close_file();
    file_ = file;
    path_ = std::move(path);
    formatter_ = std::move(formatter);
  }

  // Returns 0, or the errno of a failed open (the old file stays in use).
  int reopen() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (path_.empty()) return 0;
    std::FILE* f = std::fopen(path_.c_str(), "ae");
    if (f == nullptr) return errno;
    close_file();
    file_ = f;
    return 0;
  }

  std::string path() {
    std::lock_guard<std::mutex> lock(mutex_);
    return path_;
  }

 protected:
  void sink_it_(const log_msg& msg) override {
    memory_buf_t buf;
    formatter_->format(msg, buf);
    std::fwrite(buf.data(), 1, buf.size(), file_);
    std::fflush(file_);
  }
  void flush_() override { std::fflush(file_); }

 private:
  void close_file() {
    if (file_ != stderr) std::fclose(file_);
    file_ = stderr;
  }

  std::FILE* file_ = stderr;
  std::string path_;  // empty: stderr
};

struct State {
  std::mutex mu;
  std::shared_ptr<SharedSink> sink = std::make_shared<SharedSink>();
  std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers;
  spdlog::level::level_enum level = spdlog::level::info;
};

State& state() {
  static State* s = new State;  // never destroyed: loggers may be used during static destruction
  return *s;
}

std::shared_ptr<spdlog::logger> get_or_create(State& s, std::string_view component) {
  if (auto it = s.loggers.find(component); it != s.loggers.end()) return it->second;
  auto l = std::make_shared<spdlog::logger>(std::string(component), s.sink);
  l->set_level(s.level);
  s.loggers.emplace(std::string(component), l);
  if (component == "daemon") {
    spdlog::set_default_logger(l);
  } else if (spdlog::get(l->name()) == nullptr) {
    try {
      spdlog::register_logger(l);
    } catch (const spdlog::spdlog_ex&) {
      // Someone registered the name in between: ours still works, it just is not spdlog::get()'s.
    }
  }
  return l;
}

}  // namespace

void init_logging(const LogConfig& config) {
  const spdlog::level::level_enum level = parse_level(config.level);
  std::unique_ptr<spdlog::formatter> formatter;
  if (config.format == "text") {
    formatter = make_text_formatter();
  } else if (config.format == "json") {
    formatter = std::make_unique<JsonFormatter>();
  } else {
    throw std::invalid_argument("unknown log format \"" + config.format + "\" (expected text or json)");
  }
  std::FILE* file = stderr;
  if (!config.file.empty()) {
    file = std::fopen(config.file.c_str(), "ae");
    if (file == nullptr) {
      throw std::system_error(errno, std::generic_category(), "log.file: cannot open " + config.file);
    }
  }

  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.sink->configure(file, config.file, std::move(formatter));
  s.level = level;
  for (std::string_view name : kComponents) get_or_create(s, name);
  for (auto& [name, l] : s.loggers) l->set_level(level);
}

void reopen_logs() {
  State& s = state();
  const int err = s.sink->reopen();
  if (err != 0) {
    logger("daemon")->error("cannot reopen the log file {}: {}; still writing to the old one", s.sink->path(),
                            std::generic_category().message(err));
  }
}

std::shared_ptr<spdlog::logger> logger(std::string_view component) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  return get_or_create(s, component);
}

std::string log_level() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  return std::string(level_name(s.level));
}

void log_event(spdlog::logger& log, spdlog::level::level_enum level, std::string_view message,
               std::initializer_list<LogField> fields) {
  if (!log.should_log(level)) return;
  const auto* saved = t_fields;  // a formatter never logs, but stay correct if one did
  t_fields = &fields;
  try {
    log.log(level, spdlog::string_view_t(message.data(), message.size()));
  } catch (...) {
    t_fields = saved;
    throw;
  }
  t_fields = saved;
}

void log_session_event(spdlog::logger& log, spdlog::level::level_enum level, std::string_view message,
                       const SessionEvent& e) {
  if (!log.should_log(level)) return;
  const std::string url = redact_url(e.url);
  if (e.event == "open") {
    log_event(log, level, message, {{"session", e.session}, {"url", url}, {"event", e.event}});
    return;
  }
  log_event(log, level, message,
            {{"session", e.session}, {"url", url}, {"event", e.event}, {"code", e.code},
             {"cause", e.cause}, {"initiator", e.initiator}, {"duration_ms", e.duration_ms},
             {"bytes_in", e.bytes_in}, {"bytes_out", e.bytes_out}, {"messages_in", e.messages_in},
             {"messages_out", e.messages_out}});
}

void set_log_level(std::string_view level) {
  const spdlog::level::level_enum l = parse_level(level);
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.level = l;
  for (auto& [name, lg] : s.loggers) lg->set_level(l);
}

}  // namespace wsgate::log
