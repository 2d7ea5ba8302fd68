// Tests of service/daemon/posix/socket_dir: who may own and write the unix socket's directory.
#include "service/daemon/posix/socket_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wsgate::daemon::posix {
namespace {

using ::testing::HasSubstr;

constexpr uid_t kUs = 1000;
constexpr uid_t kOther = 1001;

PathFacts dir(uid_t owner, mode_t mode) {
  PathFacts f;
  f.exists = true;
  f.is_dir = true;
  f.owner = owner;
  f.mode = mode;
  return f;
}

PathFacts none() { return PathFacts{}; }

PathFacts socket_of(uid_t owner) {
  PathFacts f;
  f.exists = true;
  f.owner = owner;
  f.mode = 0660;
  return f;
}

std::string judge(const PathFacts& d, const PathFacts& s, bool private_dir) {
  return judge_socket_directory("/d", d, "/d/wsgated.sock", s, kUs, private_dir);
}

TEST(SocketDirectory, PrivateDefaultMustBeOursAndClosed) {
  EXPECT_EQ(judge(dir(kUs, 0700), none(), true), "");
  EXPECT_EQ(judge(dir(kUs, 0755), none(), true), "");
  EXPECT_THAT(judge(dir(kOther, 0700), none(), true), HasSubstr("is owned by uid 1001"));
  EXPECT_THAT(judge(dir(0, 0700), none(), true), HasSubstr("is owned by uid 0"));
  EXPECT_THAT(judge(dir(kUs, 0777), none(), true), HasSubstr("writable by other users"));
  EXPECT_THAT(judge(dir(kUs, 0770), none(), true), HasSubstr("writable by other users"));
  // Even sticky: the private directory is nobody else's business.
  EXPECT_THAT(judge(dir(kUs, 01777), none(), true), HasSubstr("writable by other users"));
  PathFacts link = dir(kUs, 0700);
  link.is_dir = false;
  link.is_symlink = true;
  EXPECT_THAT(judge(link, none(), true), HasSubstr("symbolic link"));
  EXPECT_THAT(judge(dir(kOther, 0777), none(), true), HasSubstr("XDG_RUNTIME_DIR"));
}

TEST(SocketDirectory, ConfiguredDirectoryRules) {
  EXPECT_EQ(judge(dir(kUs, 0750), none(), false), "");
  EXPECT_EQ(judge(dir(0, 0755), none(), false), "");  // e.g. /run/wsgate made by root
  EXPECT_THAT(judge(dir(kOther, 0755), none(), false), HasSubstr("not by wsgated's uid 1000 or root"));
  EXPECT_THAT(judge(dir(kUs, 0777), none(), false), HasSubstr("not sticky"));
  EXPECT_THAT(judge(dir(0, 0775), none(), false), HasSubstr("not sticky"));
  // A sticky shared directory like /tmp: fine while the socket's name is free or ours.
  EXPECT_EQ(judge(dir(0, 01777), none(), false), "");
  EXPECT_EQ(judge(dir(0, 01777), socket_of(kUs), false), "");
  EXPECT_THAT(judge(dir(0, 01777), socket_of(kOther), false),
              HasSubstr("/d/wsgated.sock already exists and is owned by uid 1001"));
  // In a directory only we (or root) can write, a leftover entry is ours to replace.
  EXPECT_EQ(judge(dir(kUs, 0700), socket_of(kOther), false), "");
  PathFacts file = dir(kUs, 0644);
  file.is_dir = false;
  EXPECT_THAT(judge(file, none(), false), HasSubstr("is not a directory"));
  EXPECT_THAT(judge(none(), none(), false), HasSubstr("does not exist"));
}

TEST(SocketDirectory, PrepareCreatesAPrivateDirectory0700) {
  const std::string base = ::testing::TempDir() + "/socket_dir_test_" + std::to_string(::getpid());
  std::filesystem::remove_all(base);
  ASSERT_TRUE(std::filesystem::create_directory(base));
  const std::string path = base + "/private/wsgated.sock";
  EXPECT_EQ(prepare_socket_directory(path, true), "");
  struct stat st {};
  ASSERT_EQ(::lstat((base + "/private").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, ::geteuid());

  // A world-writable directory that is not sticky is refused.
  const std::string open_dir = base + "/open";
  ASSERT_TRUE(std::filesystem::create_directory(open_dir));
  ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
  EXPECT_THAT(prepare_socket_directory(open_dir + "/s.sock", false), HasSubstr("not sticky"));
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace wsgate::daemon::posix
