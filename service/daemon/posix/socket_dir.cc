#include "service/daemon/posix/socket_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace wsgate::daemon::posix {
namespace {

std::string octal(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

PathFacts facts_of(const std::string& path, bool follow) {
  PathFacts f;
  struct stat st {};
  if ((follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0) return f;
  f.exists = true;
  f.is_dir = S_ISDIR(st.st_mode);
  f.is_symlink = S_ISLNK(st.st_mode);
  f.owner = st.st_uid;
  f.mode = st.st_mode & 07777;
  return f;
}

}  // namespace

std::string judge_socket_directory(const std::string& dir, const PathFacts& d,
                                   const std::string& socket_path, const PathFacts& s,
                                   uid_t euid, bool private_dir) {
  const std::string risk =
      ": another user could replace the socket and read the clients' messages";
  const std::string fix = private_dir
                              ? "; remove it, or set XDG_RUNTIME_DIR or listen.unix_socket "
                                "(--socket) to a directory of your own"
                              : "; choose a directory of your own for listen.unix_socket "
                                "(--socket), or fix its owner and mode";
  if (!d.exists) return "the socket directory " + dir + " does not exist";
  if (d.is_symlink) {
    return "the socket directory " + dir + " is a symbolic link" + risk + fix;
  }
  if (!d.is_dir) return "the socket directory " + dir + " is not a directory" + fix;
  if (private_dir ? d.owner != euid : (d.owner != euid && d.owner != 0)) {
    return "the socket directory " + dir + " is owned by uid " + std::to_string(d.owner) +
           ", not by wsgated's uid " + std::to_string(euid) + (private_dir ? "" : " or root") +
           risk + fix;
  }
  const bool writable_by_others = (d.mode & 022) != 0;
  if (!writable_by_others) return {};
  if (private_dir || (d.mode & S_ISVTX) == 0) {
    return "the socket directory " + dir + " (mode " + octal(d.mode) +
           ") is writable by other users" + (private_dir ? "" : " and not sticky") + risk + fix;
  }
  if (s.exists && s.owner != euid) {
    return socket_path + " already exists and is owned by uid " + std::to_string(s.owner) +
           " in the shared directory " + dir + risk + "; remove it or choose another path";
  }
  return {};
}

std::string prepare_socket_directory(const std::string& socket_path, bool private_dir) {
  std::string dir = std::filesystem::path(socket_path).parent_path().string();
  if (dir.empty()) dir = ".";
  if (private_dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return "cannot create the socket directory " + dir + ": " + std::strerror(errno);
    }
  } else {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return "cannot create the directory of " + socket_path + ": " + ec.message();
  }
  // A private directory must itself be no symlink; a configured one may be reached through
  // one (/var/run -> /run), so its target is judged.
  return judge_socket_directory(dir, facts_of(dir, !private_dir), socket_path,
                                facts_of(socket_path, false), ::geteuid(), private_dir);
}

}  // namespace wsgate::daemon::posix
