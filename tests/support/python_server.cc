#include "tests/support/python_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace wsgate::test {

std::unique_ptr<PythonServer> PythonServer::start(const std::string& script,
                                                  const std::vector<std::string>& args,
                                                  int timeout_ms, std::string* error) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) {
    *error = std::string("pipe2: ") + std::strerror(errno);
    return nullptr;
  }
  if (::pipe2(out, O_CLOEXEC) != 0) {
    *error = std::string("pipe2: ") + std::strerror(errno);
    ::close(in[0]);
    ::close(in[1]);
    return nullptr;
  }
  // argv is built before fork: the child only calls async-signal-safe functions.
  std::vector<std::string> strings = {"/usr/bin/python3", "-u", script};
  strings.insert(strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
    return nullptr;
  }
  if (pid == 0) {
    // dup2 clears O_CLOEXEC on the new descriptors; the pipe ends themselves close on exec.
    if (::dup2(in[0], STDIN_FILENO) < 0 || ::dup2(out[1], STDOUT_FILENO) < 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  std::unique_ptr<PythonServer> server(new PythonServer(pid, in[1], out[0]));

  // The first stdout line is the port.
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (line.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      *error = "no port line from " + script + " within " + std::to_string(timeout_ms) + " ms";
      return nullptr;
    }
    pollfd p{server->stdout_fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      *error = std::string("poll: ") + std::strerror(errno);
      return nullptr;
    }
    if (ready == 0) continue;  // the deadline check above reports it
    char buf[256];
    ssize_t n = ::read(server->stdout_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = script + " exited before printing its port";
      return nullptr;
    }
    line.append(buf, static_cast<std::size_t>(n));
  }
  line.resize(line.find('\n'));
  char* end = nullptr;
  long port = std::strtol(line.c_str(), &end, 10);
  if (end == line.c_str() || port <= 0 || port > 65535) {
    *error = "bad port line from " + script + ": '" + line + "'";
    return nullptr;
  }
  server->port_ = static_cast<std::uint16_t>(port);
  return server;
}

PythonServer::~PythonServer() {
  ::close(stdin_fd_);  // the script's cue to exit
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  ::close(stdout_fd_);
}

}  // namespace wsgate::test
