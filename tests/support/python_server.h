// PythonServer: runs `/usr/bin/python3 <script> <args...>` as a child process for integration
// tests. The script prints the TCP port it listens on as its first stdout line; start() waits for
// that line with a poll() timeout (no sleeping). The destructor closes the child's stdin (the
// script's cue to exit), kills it with SIGKILL and reaps it.
//
// Thread safety: none. Not copyable or movable (owns a process).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wsgate::test {

class PythonServer {
 public:
  // Starts the script; nullptr with *error set when it cannot start or prints no port within
  // `timeout_ms`.
  static std::unique_ptr<PythonServer> start(const std::string& script,
                                             const std::vector<std::string>& args,
                                             int timeout_ms, std::string* error);
  ~PythonServer();
  PythonServer(const PythonServer&) = delete;
  PythonServer& operator=(const PythonServer&) = delete;

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }

 private:
  PythonServer(pid_t pid, int stdin_fd, int stdout_fd) noexcept
      : pid_(pid), stdin_fd_(stdin_fd), stdout_fd_(stdout_fd) {}

  pid_t pid_;
  int stdin_fd_;
  int stdout_fd_;
  std::uint16_t port_ = 0;
};

}  // namespace wsgate::test
