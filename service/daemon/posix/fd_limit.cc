#include "service/daemon/posix/fd_limit.h"

#include <dirent.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace wsgate::daemon::posix {
namespace {

std::uint64_t nr_open() {
  unsigned long long v = 1048576;  // the kernel's default fs.nr_open
  if (std::FILE* f = std::fopen("/proc/sys/fs/nr_open", "r")) {
    if (std::fscanf(f, "%llu", &v) != 1) v = 1048576;
    std::fclose(f);
  }
  return v;
}

}  // namespace

std::uint64_t reachable_nofile_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_max == RLIM_INFINITY) return nr_open();
  return rl.rlim_max;
}

NofileLimit raise_nofile_limit() {
  NofileLimit out;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    out.soft = out.before = 1024;
    out.warning = std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
    return out;
  }
  out.before = out.soft = rl.rlim_cur;
  const std::uint64_t target = reachable_nofile_limit();
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < target) {
    rlimit raised = rl;
    raised.rlim_cur = static_cast<rlim_t>(target);
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      out.soft = target;
    } else {
      out.warning = "cannot raise the open-file limit from " + std::to_string(rl.rlim_cur) +
                    " to " + std::to_string(target) + ": " + std::strerror(errno);
    }
  }
  return out;
}

std::uint64_t count_open_fds(std::uint64_t fallback) {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return fallback;
  std::uint64_t n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n > 0 ? n - 1 : 0;  // not the directory's own fd
}

}  // namespace wsgate::daemon::posix
