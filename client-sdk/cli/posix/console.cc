// console.h on POSIX: termios, poll on stdin and a wake pipe, SIGINT.
#include "../console.h"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <stdexcept>

namespace wsgate::cli::console {
namespace {

void (*g_interrupt)() = nullptr;

extern "C" void on_sigint(int) {
  if (g_interrupt != nullptr) g_interrupt();
}

}  // namespace

bool stdin_and_stdout_are_terminals() { return ::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO); }

bool write_stdout(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(STDOUT_FILENO, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void on_interrupt(void (*handler)()) {
  g_interrupt = handler;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout is reported by write() instead
}

struct RawMode::Saved {
  termios settings{};
  bool active = false;
};

RawMode::RawMode() : saved_(std::make_unique<Saved>()) {
  if (tcgetattr(STDIN_FILENO, &saved_->settings) == 0) {
    termios raw = saved_->settings;
    // Output processing (OPOST/ONLCR) stays on: "\n" still moves to the start of the next line.
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG | IEXTEN);
    raw.c_iflag &= ~static_cast<tcflag_t>(IXON);  // Ctrl-S/Ctrl-Q are ordinary (ignored) keys
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    saved_->active = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
  }
}

RawMode::~RawMode() { restore(); }

bool RawMode::active() const { return saved_->active; }

void RawMode::restore() {
  if (!saved_->active) return;
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_->settings);
  saved_->active = false;
}

struct Input::State {
  int fds[2] = {-1, -1};  // the wake pipe
};

Input::Input() : state_(std::make_shared<State>()) {
  if (::pipe2(state_->fds, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe failed");
}

Input::~Input() {
  ::close(state_->fds[0]);
  ::close(state_->fds[1]);
}

Input::Ready Input::wait(int timeout_ms, bool with_input) {
  pollfd fds[2] = {{state_->fds[0], POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
  const int n = ::poll(fds, with_input ? 2 : 1, timeout_ms);
  if (n < 0) return errno == EINTR ? Ready::woken : Ready::error;
  if (n == 0) return Ready::timeout;
  if (fds[0].revents & POLLIN) {
    char drain[64];
    [[maybe_unused]] const ssize_t got = ::read(state_->fds[0], drain, sizeof drain);
    return Ready::woken;
  }
  return (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) ? Ready::input : Ready::timeout;
}

long Input::read(char* buffer, std::size_t size) { return ::read(STDIN_FILENO, buffer, size); }

void Input::wake() {
  const char b = 'w';
  [[maybe_unused]] const ssize_t n = ::write(state_->fds[1], &b, 1);
}

}  // namespace wsgate::cli::console
