// net::SessionLog: the daemon's log behind a session's SessionTrace. Nothing is written below
// the level; at debug each decision is one line with `session` and `event` (the request target
// redacted); frames and socket I/O only at trace.
#include "service/net/session_log.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "service/log/logging.h"
#include "service/session/types.h"

namespace wsgate::net {
namespace {

class SessionLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("session_log_test." + std::to_string(::getpid()) + ".log");
    log::LogConfig c;
    c.file = path_.string();
    c.level = "info";
    log::init_logging(c);
  }
  void TearDown() override {
    log::init_logging(log::LogConfig{});  // back to stderr, info, text
    std::filesystem::remove(path_);
  }
  std::string text() const {
    std::ifstream f(path_);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  // One of each call.
  static void report_everything(SessionLog& l) {
    l.policy_verdict("address", "169.254.169.254", "address 169.254.169.254 is link-local");
    l.resolved(2, 1);
    l.upgrade_sent("/feed?token=SECRET", 120);
    l.timeout(session::Timeout::idle, std::chrono::milliseconds(60000));
    session::CloseInfo info;
    info.code = 1001;
    info.initiator = session::Initiator::gateway;
    info.clean = true;
    l.closed(info);
    l.frame(session::Direction::out, ws::Opcode::text, 5, true);
    l.io(session::Direction::in, 7);
  }

  std::filesystem::path path_;
};

TEST_F(SessionLogTest, NothingBelowTheLevel) {
  SessionLog l("s1");
  EXPECT_FALSE(l.debug());
  EXPECT_FALSE(l.trace());
  report_everything(l);
  EXPECT_EQ(text(), "");
}

TEST_F(SessionLogTest, DecisionsAtDebugWithTheSessionAndRedactedTarget) {
  log::set_log_level("debug");
  SessionLog l("s1");
  EXPECT_TRUE(l.debug());
  EXPECT_FALSE(l.trace());
  report_everything(l);
  const std::string t = text();
  EXPECT_NE(t.find("debug [net] destination denied session=s1 event=policy check=address "
                   "subject=169.254.169.254 verdict=denied "
                   "rule=\"address 169.254.169.254 is link-local\""),
            std::string::npos) << t;
  EXPECT_NE(t.find("[net] resolved session=s1 event=resolve addresses=2 allowed=1"),
            std::string::npos) << t;
  EXPECT_NE(t.find("[gateway] upgrade request sent session=s1 event=upgrade_request "
                   "target=\"/feed?token=***\" bytes=120"),
            std::string::npos) << t;
  EXPECT_NE(t.find("event=timeout timer=idle timeout_ms=60000"), std::string::npos) << t;
  EXPECT_NE(t.find("event=close_decided initiator=gateway code=1001 clean=true"),
            std::string::npos) << t;
  EXPECT_EQ(t.find("SECRET"), std::string::npos) << t;
  EXPECT_EQ(t.find("event=frame"), std::string::npos) << t;
  EXPECT_EQ(t.find("event=read"), std::string::npos) << t;
}

TEST_F(SessionLogTest, FramesAndIoAtTrace) {
  log::set_log_level("trace");
  SessionLog l("s1");
  EXPECT_TRUE(l.trace());
  report_everything(l);
  const std::string t = text();
  EXPECT_NE(t.find("trace [gateway] frame session=s1 event=frame direction=out opcode=text "
                   "length=5 fin=true"),
            std::string::npos) << t;
  EXPECT_NE(t.find("trace [net] read session=s1 event=read bytes=7"), std::string::npos) << t;
}

}  // namespace
}  // namespace wsgate::net
