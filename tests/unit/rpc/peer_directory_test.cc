// Tests of service/rpc/peer_directory (SO_PEERCRED, hang-up watching, fd reuse) and
// service/rpc/fd_budget.h, on real socketpairs.
#include "service/rpc/peer_directory.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "service/rpc/fd_budget.h"

namespace wsgate::rpc {
namespace {

class Retired {
 public:
  void add(const PeerInfo& info) {
    std::lock_guard lock(mutex_);
    ids_.push_back(info.connection_id);
    changed_.notify_all();
  }
  bool wait_for(std::size_t n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return ids_.size() >= n; });
  }
  std::vector<std::uint64_t> ids() {
    std::lock_guard lock(mutex_);
    return ids_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::uint64_t> ids_;
};

struct Pair {
  Pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0); }
  ~Pair() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  void close_end(int i) {
    ::close(fds[i]);
    fds[i] = -1;
  }
  int fds[2] = {-1, -1};
};

TEST(PeerDirectory, ReadsCredentialsAndNamesTheConnectionLikeGrpc) {
  Retired retired;
  PeerDirectory dir([&](const PeerInfo& p) { retired.add(p); });
  Pair a;
  PeerError error;
  auto info = dir.add(a.fds[0], &error);
  ASSERT_TRUE(info) << error.message;
  EXPECT_EQ(info->uid, ::geteuid());
  EXPECT_EQ(info->gid, ::getegid());
  EXPECT_EQ(info->pid, ::getpid());
  EXPECT_GE(info->connection_id, 1u);
  auto found = dir.find("fd:" + std::to_string(a.fds[0]));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->connection_id, info->connection_id);
  EXPECT_FALSE(dir.find("ipv4:127.0.0.1:5000"));
  EXPECT_FALSE(dir.find("fd:" + std::to_string(a.fds[0]) + "x"));
  EXPECT_FALSE(dir.find("fd:"));
}

TEST(PeerDirectory, PeerHangUpRetiresTheConnectionOnce) {
  Retired retired;
  PeerDirectory dir([&](const PeerInfo& p) { retired.add(p); });
  Pair a;
  PeerError error;
  auto info = dir.add(a.fds[0], &error);
  ASSERT_TRUE(info) << error.message;
  a.close_end(1);  // the client goes away; the server's fd stays open (gRPC's)
  ASSERT_TRUE(retired.wait_for(1));
  EXPECT_EQ(retired.ids(), std::vector<std::uint64_t>{info->connection_id});
  EXPECT_FALSE(dir.find("fd:" + std::to_string(a.fds[0])));
  EXPECT_EQ(dir.size(), 0u);
}

TEST(PeerDirectory, ServerSideShutdownRetiresTheConnection) {
  Retired retired;
  PeerDirectory dir([&](const PeerInfo& p) { retired.add(p); });
  Pair a;
  PeerError error;
  auto info = dir.add(a.fds[0], &error);
  ASSERT_TRUE(info) << error.message;
  // What gRPC does when it drops a connection: shutdown(SHUT_RDWR), then close.
  ::shutdown(a.fds[0], SHUT_RDWR);
  a.close_end(0);
  ASSERT_TRUE(retired.wait_for(1));
}

TEST(PeerDirectory, AReusedFdNumberRetiresTheOldConnectionFirst) {
  Retired retired;
  PeerDirectory dir([&](const PeerInfo& p) { retired.add(p); });
  Pair a;
  PeerError error;
  auto first = dir.add(a.fds[0], &error);
  ASSERT_TRUE(first) << error.message;
  // Register the same fd number again, as accept() would after gRPC closed the old one.
  auto second = dir.add(a.fds[0], &error);
  ASSERT_TRUE(second) << error.message;
  EXPECT_NE(first->connection_id, second->connection_id);
  ASSERT_TRUE(retired.wait_for(1));
  EXPECT_EQ(retired.ids().front(), first->connection_id);
  EXPECT_EQ(dir.find("fd:" + std::to_string(a.fds[0]))->connection_id, second->connection_id);
  EXPECT_EQ(dir.size(), 1u);
}

TEST(PeerDirectory, NotASocketIsAnError) {
  PeerDirectory dir;
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  PeerError error;
  EXPECT_FALSE(dir.add(p[0], &error));
  EXPECT_NE(error.message.find("SO_PEERCRED"), std::string::npos) << error.message;
  EXPECT_EQ(error.code, ENOTSOCK);
  EXPECT_FALSE(error.out_of_fds());
  ::close(p[0]);
  ::close(p[1]);
}

// The listener pauses accept on this error alone, so it is told apart by its code (which
// survives the listener closing the fd before it looks), not by errno or the message.
TEST(PeerDirectory, NoFdLeftForTheWatchIsOutOfFds) {
  PeerDirectory dir;
  Pair a;
  // The lowest free fd number becomes the limit: the dup of the watch finds no number.
  const int lowest_free = ::dup(a.fds[0]);
  ASSERT_GE(lowest_free, 0);
  ::close(lowest_free);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(lowest_free);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  PeerError error;
  const auto info = dir.add(a.fds[0], &error);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_FALSE(info);
  EXPECT_EQ(error.code, EMFILE) << error.message;
  EXPECT_TRUE(error.out_of_fds());
  EXPECT_NE(error.message.find("dup"), std::string::npos) << error.message;
  EXPECT_EQ(dir.size(), 0u);
}

TEST(FdBudget, CheckLimitNamesTheKeyTheLimitAndTheFix) {
  EXPECT_EQ(FdBudget::check_limit(10000, 65536), "");
  EXPECT_EQ(FdBudget::check_limit(32, 128), "");
  const std::string e = FdBudget::check_limit(10000, 1024);
  EXPECT_NE(e.find("limits.max_sessions"), std::string::npos) << e;
  EXPECT_NE(e.find("1024"), std::string::npos) << e;
  EXPECT_NE(e.find("LimitNOFILE"), std::string::npos) << e;
  EXPECT_NE(e.find("ulimit -n"), std::string::npos) << e;
  // needed_limit() is the smallest limit that fits.
  for (std::uint64_t s : {1u, 32u, 1000u, 10000u}) {
    const std::uint64_t l = FdBudget::needed_limit(s);
    EXPECT_EQ(FdBudget::check_limit(s, l), "") << s;
    EXPECT_NE(FdBudget::check_limit(s, l - 1), "") << s;
  }
}

TEST(FdBudget, AdmitsUntilTheReserve) {
  FdBudget budget(128);  // reserve 72: at most 56 fds in use after admitting
  budget.set_base(20);
  std::size_t sessions = 0;
  budget.set_session_counter([&] { return sessions; });
  EXPECT_EQ(budget.admit_session(), "");
  for (int i = 0; i < 17; ++i) budget.connection_opened();  // 20 + 34 = 54
  EXPECT_EQ(budget.admit_session(), "");                      // 55 <= 56
  sessions = 2;                                               // 56
  EXPECT_NE(budget.admit_session().find("short of file descriptors"), std::string::npos);
  budget.connection_closed();
  EXPECT_EQ(budget.admit_session(), "");
}

}  // namespace
}  // namespace wsgate::rpc
