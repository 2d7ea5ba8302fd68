// Tests of service/log/logging: formats (text, JSON with escaping), levels, component loggers,
// reopening after rotation, concurrent use.
#include "service/log/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

namespace wsgate::log {
namespace {

// ---- a strict checker for the one JSON shape we write: a flat object of string values ----------

class JsonObjectReader {
 public:
  explicit JsonObjectReader(std::string_view text) : s_(text) {}

  // The object's members with their values unescaped, or nullopt (with error()) if `text` is not
  // exactly one such JSON object.
  std::optional<std::map<std::string, std::string>> read() {
    std::map<std::string, std::string> out;
    if (!eat('{')) return fail("expected {");
    if (!eat('}')) {
      while (true) {
        std::string key;
        std::string value;
        if (!string(&key)) return std::nullopt;
        if (!eat(':')) return fail("expected :");
        if (!string(&value)) return std::nullopt;
        if (!out.emplace(key, value).second) return fail("duplicate key " + key);
        if (eat(',')) continue;
        if (eat('}')) break;
        return fail("expected , or }");
      }
    }
    if (i_ != s_.size()) return fail("trailing characters");
    return out;
  }
  const std::string& error() const { return error_; }

 private:
  std::nullopt_t fail(const std::string& why) {
    error_ = why + " at offset " + std::to_string(i_);
    return std::nullopt;
  }
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  static void put_utf8(std::string* out, unsigned cp) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xc0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xe0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      *out += static_cast<char>(0xf0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  bool hex4(unsigned* out) {
    if (i_ + 4 > s_.size()) return false;
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else return false;
    }
    *out = v;
    return true;
  }
  bool string(std::string* out) {
    if (!eat('"')) return fail("expected \""), false;
    while (i_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return fail("raw control character in a string"), false;
      if (c >= 0x80) {  // must be valid UTF-8
        const std::size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        if (len == 0 || c > 0xf4 || i_ + len > s_.size()) return fail("invalid UTF-8"), false;
        for (std::size_t k = 1; k < len; ++k) {
          const auto b = static_cast<unsigned char>(s_[i_ + k]);
          if (b < 0x80 || b > 0xbf) return fail("invalid UTF-8"), false;
        }
        out->append(s_.substr(i_, len));
        i_ += len;
        continue;
      }
      ++i_;
      if (c != '\\') {
        *out += static_cast<char>(c);
        continue;
      }
      if (i_ >= s_.size()) return fail("truncated escape"), false;
      const char e = s_[i_++];
      switch (e) {
        case '"': *out += '"'; break;
        case '\\': *out += '\\'; break;
        case '/': *out += '/'; break;
        case 'b': *out += '\b'; break;
        case 'f': *out += '\f'; break;
        case 'n': *out += '\n'; break;
        case 'r': *out += '\r'; break;
        case 't': *out += '\t'; break;
        case 'u': {
          unsigned cp = 0;
          if (!hex4(&cp)) return fail("bad \\u escape"), false;
          if (cp >= 0xd800 && cp <= 0xdbff) {
            unsigned lo = 0;
            if (!eat('\\') || !eat('u') || !hex4(&lo) || lo < 0xdc00 || lo > 0xdfff) {
              return fail("unpaired surrogate"), false;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            return fail("unpaired surrogate"), false;
          }
          put_utf8(out, cp);
          break;
        }
        default: return fail(std::string("unknown escape \\") + e), false;
      }
    }
    return fail("unterminated string"), false;
  }

  std::string_view s_;
  std::size_t i_ = 0;
  std::string error_;
};

TEST(JsonObjectReader, AcceptsAndRejects) {
  auto ok = JsonObjectReader(R"({"a":"x\"\\\n\u0001\u00e9\ud83d\ude00","b":""})").read();
  ASSERT_TRUE(ok);
  EXPECT_EQ((*ok)["a"], "x\"\\\n\x01\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_FALSE(JsonObjectReader("{\"a\":\"\n\"}").read());     // raw newline
  EXPECT_FALSE(JsonObjectReader(R"({"a":"\"})").read());        // unterminated
  EXPECT_FALSE(JsonObjectReader(R"({"a":"\x"})").read());       // bad escape
  EXPECT_FALSE(JsonObjectReader("{\"a\":\"\xff\"}").read());    // bad UTF-8
  EXPECT_FALSE(JsonObjectReader(R"({"a":"b"} )").read());       // trailing
}

// ---- fixtures -----------------------------------------------------------------------------------

std::vector<std::string> read_lines(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "wsgate-logging-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    init_logging(LogConfig{});  // back to stderr, info, text
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::filesystem::path file(const char* name) const { return dir_ / name; }
  void init(const std::string& format, const std::filesystem::path& path, const std::string& level = "trace") {
    LogConfig c;
    c.format = format;
    c.file = path.string();
    c.level = level;
    init_logging(c);
  }

  std::filesystem::path dir_;
};

const std::regex kTimestamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d)");

// ---- text ---------------------------------------------------------------------------------------

TEST_F(LoggingTest, TextFormat) {
  const auto path = file("text.log");
  init("text", path);
  logger("rpc")->info("hello {}", 42);
  logger("net")->warn("careful");
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(std::regex_match(lines[0], std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d info \[rpc\] hello 42)")))
      << lines[0];
  EXPECT_TRUE(lines[1].ends_with(" warn [net] careful")) << lines[1];  // "warn", as in the config
}

TEST_F(LoggingTest, TextFormatKeepsOneEventOnOneLine) {
  const auto path = file("text.log");
  init("text", path);
  logger("gateway")->info("close reason: {}", std::string("bye\nFAKE critical [daemon] x\r\t\x01\x7f \xc3\xa9\xff end"));
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].ends_with(R"(info [gateway] close reason: bye\nFAKE critical [daemon] x\r\t\x01\x7f )"
                                "\xc3\xa9" R"(\xff end)"))
      << lines[0];
}

// ---- JSON ---------------------------------------------------------------------------------------

TEST_F(LoggingTest, JsonLinesAreValidJsonWithEscapedContent) {
  const auto path = file("json.log");
  init("json", path);
  const std::string tricky = std::string("quote \" backslash \\ newline \n cr \r tab \t ctl \x01 del \x7f ") +
                             "slash / utf8 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 end";
  logger("protocol")->error("{}", tricky);
  logger("daemon")->info("plain");

  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 2u);
  // The raw text carries the escapes themselves.
  EXPECT_NE(lines[0].find(R"(quote \" backslash \\ newline \n cr \r tab \t ctl \u0001 del \u007f )"), std::string::npos)
      << lines[0];

  JsonObjectReader reader(lines[0]);
  auto obj = reader.read();
  ASSERT_TRUE(obj) << reader.error() << "\n" << lines[0];
  EXPECT_EQ(obj->size(), 4u);
  EXPECT_EQ((*obj)["msg"], tricky);  // round trip
  EXPECT_EQ((*obj)["level"], "error");
  EXPECT_EQ((*obj)["component"], "protocol");
  EXPECT_TRUE(std::regex_match((*obj)["ts"], kTimestamp)) << (*obj)["ts"];
  EXPECT_TRUE(lines[0].starts_with("{\"ts\":\"")) << lines[0];

  auto second = JsonObjectReader(lines[1]).read();
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)["msg"], "plain");
  EXPECT_EQ((*second)["component"], "daemon");
}

TEST_F(LoggingTest, JsonReplacesInvalidUtf8) {
  const auto path = file("json.log");
  init("json", path);
  // A lone continuation byte, a truncated sequence, an overlong '/', a surrogate, 0xff.
  logger("net")->info("{}", std::string("a\x80" "b\xe2\x82" "c\xc0\xaf" "d\xed\xa0\x80" "e\xff"));
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 1u);
  JsonObjectReader reader(lines[0]);
  auto obj = reader.read();
  ASSERT_TRUE(obj) << reader.error() << "\n" << lines[0];
  const std::string r = "\xef\xbf\xbd";  // U+FFFD
  EXPECT_EQ((*obj)["msg"], "a" + r + "b" + r + r + "c" + r + r + "d" + r + r + r + "e" + r);
}

TEST_F(LoggingTest, JsonEscapesTheComponentName) {
  const auto path = file("json.log");
  init("json", path);
  logger("odd\"name\\")->info("x");
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 1u);
  auto obj = JsonObjectReader(lines[0]).read();
  ASSERT_TRUE(obj) << lines[0];
  EXPECT_EQ((*obj)["component"], "odd\"name\\");
}

// ---- levels and components ----------------------------------------------------------------------

// ---- structured events (log_event) ------------------------------------------------------------

TEST_F(LoggingTest, JsonEventsCarryFieldsAsMembers) {
  const auto path = file("fields.log");
  init("json", path);
  log_event(*logger("gateway"), spdlog::level::info, "session closed",
            {{"session", "ab12"}, {"url", std::string("ws://h/\"x\"")}, {"code", 1000},
             {"bytes_in", std::uint64_t{18446744073709551615u}}, {"clean", true}});
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].ends_with(R"("component":"gateway","msg":"session closed","session":"ab12",)"
                                 R"("url":"ws://h/\"x\"","code":1000,"bytes_in":18446744073709551615,)"
                                 R"("clean":true})"))
      << lines[0];
  // The fields belong to that event only.
  logger("gateway")->info("plain");
  EXPECT_TRUE(read_lines(path).at(1).ends_with(R"("msg":"plain"})")) << read_lines(path).at(1);
}

TEST_F(LoggingTest, TextEventsCarryFieldsAsKeyValue) {
  const auto path = file("fields.log");
  init("text", path);
  log_event(*logger("net"), spdlog::level::warn, "session failed",
            {{"session", "ab12"}, {"cause", "tls_error"}, {"reason", "a b=\"c\"\n"}, {"empty", ""},
             {"code", -1}});
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].ends_with(R"(warn [net] session failed session=ab12 cause=tls_error )"
                                 R"(reason="a b=\"c\"\n" empty="" code=-1)"))
      << lines[0];
}

TEST_F(LoggingTest, EventsBelowTheLevelAreNotWritten) {
  const auto path = file("fields.log");
  init("json", path, "info");
  log_event(*logger("net"), spdlog::level::debug, "decision", {{"verdict", "deny"}});
  EXPECT_TRUE(read_lines(path).empty());
  set_log_level("debug");
  EXPECT_EQ(log_level(), "debug");
  log_event(*logger("net"), spdlog::level::debug, "decision", {{"verdict", "deny"}});
  ASSERT_EQ(read_lines(path).size(), 1u);
  EXPECT_TRUE(read_lines(path)[0].ends_with(R"("msg":"decision","verdict":"deny"})"));
}

TEST_F(LoggingTest, SessionEventsCarryTheDocumentedFieldsWithTheUrlRedacted) {
  const auto path = file("session.log");
  init("json", path);
  log_session_event(*logger("gateway"), spdlog::level::info, "session open",
                    {.session = "ab12", .url = "wss://u:p@h/feed?token=S", .event = "open"});
  SessionEvent close{.session = "ab12", .url = "wss://h/feed?token=S", .event = "close", .code = 1006,
                     .cause = "connection_lost", .initiator = "server", .duration_ms = 1500,
                     .bytes_in = 10, .bytes_out = 20, .messages_in = 1, .messages_out = 2};
  log_session_event(*logger("gateway"), spdlog::level::info, "session closed", close);
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(lines[0].ends_with(R"("msg":"session open","session":"ab12","url":"wss://***@h/feed?token=***",)"
                                 R"("event":"open"})"))
      << lines[0];
  EXPECT_TRUE(lines[1].ends_with(R"("session":"ab12","url":"wss://h/feed?token=***","event":"close",)"
                                 R"("code":1006,"cause":"connection_lost","initiator":"server",)"
                                 R"("duration_ms":1500,"bytes_in":10,"bytes_out":20,"messages_in":1,)"
                                 R"("messages_out":2})"))
      << lines[1];
}

TEST_F(LoggingTest, LevelsFilterAndCanChange) {
  const auto path = file("levels.log");
  init("text", path, "warn");
  logger("net")->info("hidden");
  logger("net")->warn("shown 1");
  set_log_level("debug");
  logger("net")->debug("shown 2");
  logger("brand-new")->debug("shown 3");  // a logger created after the change gets the new level
  logger("net")->trace("hidden");
  set_log_level("off");
  logger("net")->critical("hidden");
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(lines[0].ends_with("warn [net] shown 1"));
  EXPECT_TRUE(lines[1].ends_with("debug [net] shown 2"));
  EXPECT_TRUE(lines[2].ends_with("debug [brand-new] shown 3"));
}

TEST_F(LoggingTest, BadSettingsThrowAndKeepTheOldSink) {
  const auto path = file("keep.log");
  init("text", path);
  EXPECT_THROW(set_log_level("verbose"), std::invalid_argument);
  EXPECT_THROW(set_log_level("warning"), std::invalid_argument);  // the config's names only
  LogConfig bad;
  bad.level = "loud";
  EXPECT_THROW(init_logging(bad), std::invalid_argument);
  bad = LogConfig{};
  bad.format = "xml";
  EXPECT_THROW(init_logging(bad), std::invalid_argument);
  bad = LogConfig{};
  bad.file = (dir_ / "no-such-dir" / "x.log").string();
  EXPECT_THROW(init_logging(bad), std::system_error);
  logger("daemon")->info("still here");
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].ends_with("info [daemon] still here")) << lines[0];
}

TEST_F(LoggingTest, ComponentsShareTheSinkAndAreRegistered) {
  const auto path = file("shared.log");
  init("text", path);
  for (std::string_view name : kComponents) {
    auto l = logger(name);
    EXPECT_EQ(l, logger(name));
    EXPECT_EQ(spdlog::get(std::string(name)), l) << name;
    l->info("from {}", name);
  }
  auto custom = logger("custom-component");
  EXPECT_EQ(custom, logger("custom-component"));
  ASSERT_EQ(custom->sinks().size(), 1u);
  EXPECT_EQ(custom->sinks()[0], logger("daemon")->sinks()[0]);
  custom->info("from custom");
  spdlog::info("via the default logger");

  const auto lines = read_lines(path);
  const std::size_t n = kComponents.size();
  ASSERT_EQ(lines.size(), n + 2);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string name(kComponents[i]);
    const std::string tail = "[" + name + "] from " + name;
    EXPECT_TRUE(lines[i].ends_with(tail)) << lines[i];
  }
  EXPECT_TRUE(lines[n].ends_with("[custom-component] from custom"));
  EXPECT_TRUE(lines[n + 1].ends_with("[daemon] via the default logger"));
}

TEST_F(LoggingTest, InitAgainSwitchesFileAndFormatForExistingLoggers) {
  const auto first = file("first.log");
  const auto second = file("second.log");
  init("text", first);
  auto l = logger("rpc");
  l->info("one");
  init("json", second);
  l->info("two");
  EXPECT_EQ(read_lines(first).size(), 1u);
  const auto lines = read_lines(second);
  ASSERT_EQ(lines.size(), 1u);
  auto obj = JsonObjectReader(lines[0]).read();
  ASSERT_TRUE(obj);
  EXPECT_EQ((*obj)["msg"], "two");
}

// ---- rotation -----------------------------------------------------------------------------------

TEST_F(LoggingTest, ReopenWritesToANewFileAfterRename) {
  const auto path = file("wsgated.log");
  const auto rotated = file("wsgated.log.1");
  init("text", path);
  logger("daemon")->info("one");
  std::filesystem::rename(path, rotated);
  logger("daemon")->info("two");  // still the old (renamed) file until reopened
  reopen_logs();
  logger("daemon")->info("three");
  logger("net")->info("four");

  const auto old_lines = read_lines(rotated);
  ASSERT_EQ(old_lines.size(), 2u);
  EXPECT_TRUE(old_lines[0].ends_with("one"));
  EXPECT_TRUE(old_lines[1].ends_with("two"));
  const auto new_lines = read_lines(path);
  ASSERT_EQ(new_lines.size(), 2u);
  EXPECT_TRUE(new_lines[0].ends_with("[daemon] three"));
  EXPECT_TRUE(new_lines[1].ends_with("[net] four"));
}

TEST_F(LoggingTest, ReopenAppendsToAnExistingFile) {
  const auto path = file("append.log");
  std::ofstream(path) << "earlier line\n";
  init("text", path);
  logger("daemon")->info("after");
  reopen_logs();
  logger("daemon")->info("after reopen");
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "earlier line");
}

TEST_F(LoggingTest, FailedReopenKeepsTheOldFileAndSaysSo) {
  const auto sub = dir_ / "sub";
  std::filesystem::create_directory(sub);
  init("text", sub / "x.log");
  logger("daemon")->info("before");
  std::filesystem::rename(sub, dir_ / "moved");  // the directory is gone: reopening must fail
  reopen_logs();
  logger("daemon")->info("after");
  const auto lines = read_lines(dir_ / "moved" / "x.log");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[1].find("error [daemon] cannot reopen the log file"), std::string::npos) << lines[1];
  EXPECT_TRUE(lines[2].ends_with("after"));
}

TEST_F(LoggingTest, ReopenIsANoOpOnStderr) {
  init_logging(LogConfig{});
  reopen_logs();
  SUCCEED();
}

// ---- threads ------------------------------------------------------------------------------------

TEST_F(LoggingTest, ConcurrentLoggingWithReopenAndLevelChanges) {
  const auto path = file("mt.log");
  init("json", path, "info");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    for (unsigned n = 0; !stop.load(); ++n) {
      reopen_logs();
      set_log_level("info");
      logger("churn-" + std::to_string(n % 4));
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([t] {
      auto l = logger(t % 2 == 0 ? "rpc" : "gateway");
      for (int i = 0; i < kPerThread; ++i) l->info("thread {} line {} \"quoted\"\n", t, i);
    });
  }
  for (auto& w : writers) w.join();
  stop = true;
  churn.join();

  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kPerThread));
  for (const auto& line : lines) {
    JsonObjectReader reader(line);
    ASSERT_TRUE(reader.read()) << reader.error() << "\n" << line;
  }
}

}  // namespace
}  // namespace wsgate::log
