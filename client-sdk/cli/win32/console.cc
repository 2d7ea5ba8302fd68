// console.h on Windows: console modes, a reader thread for stdin (a console or pipe handle
// cannot be waited on together with an event the way poll() waits on fds), an event for
// wake(), and the console control handler for Ctrl-C.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include "../console.h"

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <algorithm>

namespace wsgate::cli::console {
namespace {

void (*g_interrupt)() = nullptr;

BOOL WINAPI control_handler(DWORD event) {
  if (event != CTRL_C_EVENT && event != CTRL_BREAK_EVENT) return FALSE;  // default: end
  if (g_interrupt != nullptr) g_interrupt();
  return TRUE;
}

bool is_console(HANDLE h) {
  DWORD mode = 0;
  return h != INVALID_HANDLE_VALUE && h != nullptr && ::GetConsoleMode(h, &mode);
}

}  // namespace

bool stdin_and_stdout_are_terminals() {
  return is_console(::GetStdHandle(STD_INPUT_HANDLE)) && is_console(::GetStdHandle(STD_OUTPUT_HANDLE));
}

bool write_stdout(std::string_view data) {
  const HANDLE out = ::GetStdHandle(STD_OUTPUT_HANDLE);
  while (!data.empty()) {
    DWORD written = 0;
    const DWORD chunk = static_cast<DWORD>(std::min<std::size_t>(data.size(), 1u << 20));
    if (!::WriteFile(out, data.data(), chunk, &written, nullptr) || written == 0) {
      errno = EPIPE;  // the reader went away (ERROR_NO_DATA / ERROR_BROKEN_PIPE) or worse
      return false;
    }
    data.remove_prefix(written);
  }
  return true;
}

void on_interrupt(void (*handler)()) {
  g_interrupt = handler;
  ::SetConsoleCtrlHandler(control_handler, TRUE);
}

struct RawMode::Saved {
  DWORD in_mode = 0;
  DWORD out_mode = 0;
  UINT in_cp = 0;
  UINT out_cp = 0;
  bool active = false;
};

RawMode::RawMode() : saved_(std::make_unique<Saved>()) {
  const HANDLE in = ::GetStdHandle(STD_INPUT_HANDLE);
  const HANDLE out = ::GetStdHandle(STD_OUTPUT_HANDLE);
  if (!::GetConsoleMode(in, &saved_->in_mode) || !::GetConsoleMode(out, &saved_->out_mode)) return;
  saved_->in_cp = ::GetConsoleCP();
  saved_->out_cp = ::GetConsoleOutputCP();
  // Keys as bytes (no line editing, no echo, Ctrl-C as 0x03 as with ISIG off), arrows as
  // VT sequences (which the LineEditor skips), UTF-8 both ways, VT output for "\x1b[K".
  DWORD in_mode = saved_->in_mode;
  in_mode &= ~static_cast<DWORD>(ENABLE_LINE_INPUT | ENABLE_ECHO_INPUT | ENABLE_PROCESSED_INPUT);
  in_mode |= ENABLE_VIRTUAL_TERMINAL_INPUT;
  const DWORD out_mode = saved_->out_mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING;
  ::SetConsoleCP(CP_UTF8);
  ::SetConsoleOutputCP(CP_UTF8);
  saved_->active = ::SetConsoleMode(in, in_mode) && ::SetConsoleMode(out, out_mode);
  if (!saved_->active) {
    ::SetConsoleMode(in, saved_->in_mode);
    ::SetConsoleMode(out, saved_->out_mode);
    ::SetConsoleCP(saved_->in_cp);
    ::SetConsoleOutputCP(saved_->out_cp);
  }
}

RawMode::~RawMode() { restore(); }

bool RawMode::active() const { return saved_->active; }

void RawMode::restore() {
  if (!saved_->active) return;
  ::SetConsoleMode(::GetStdHandle(STD_INPUT_HANDLE), saved_->in_mode);
  ::SetConsoleMode(::GetStdHandle(STD_OUTPUT_HANDLE), saved_->out_mode);
  ::SetConsoleCP(saved_->in_cp);
  ::SetConsoleOutputCP(saved_->out_cp);
  saved_->active = false;
}

// The reader thread blocks in ReadFile and queues what it reads; the main thread waits on the
// condition variable for data, the end of input or a wake-up. The thread is not joined: a
// ReadFile on a console or pipe cannot be interrupted portably, and the process ends soon after
// the session does (`wsgate cat` runs one session); it only touches the State it shares.
struct Input::State {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> chunks;
  bool eof = false;
  int error = 0;  // errno-style, after a failed ReadFile
  bool woken = false;
  bool reader_started = false;
};

namespace {

DWORD WINAPI reader_main(LPVOID arg) {
  // A reference of its own: the State outlives Input if the thread is still blocked.
  auto* keep = static_cast<std::shared_ptr<Input::State>*>(arg);
  const std::shared_ptr<Input::State> state = *keep;
  delete keep;
  const HANDLE in = ::GetStdHandle(STD_INPUT_HANDLE);
  std::string buffer(65536, '\0');
  while (true) {
    DWORD got = 0;
    const BOOL ok = ::ReadFile(in, buffer.data(), static_cast<DWORD>(buffer.size()), &got, nullptr);
    std::lock_guard lock(state->mu);
    if (!ok) {
      const DWORD error = ::GetLastError();
      if (error == ERROR_BROKEN_PIPE || error == ERROR_HANDLE_EOF) {
        state->eof = true;
      } else {
        state->error = EIO;
      }
    } else if (got == 0) {
      state->eof = true;
    } else {
      state->chunks.emplace_back(buffer.data(), got);
    }
    state->cv.notify_all();
    if (state->eof || state->error != 0) return 0;
  }
}

}  // namespace

Input::Input() : state_(std::make_shared<State>()) {}

Input::~Input() = default;

Input::Ready Input::wait(int timeout_ms, bool with_input) {
  if (with_input && !state_->reader_started) {
    // Started on first use: a `wsgate cat` that never reads stdin never blocks a thread on it.
    auto* arg = new std::shared_ptr<State>(state_);
    const HANDLE thread = ::CreateThread(nullptr, 0, reader_main, arg, 0, nullptr);
    if (thread == nullptr) {
      delete arg;
      return Ready::error;
    }
    ::CloseHandle(thread);
    state_->reader_started = true;
  }
  State& s = *state_;
  std::unique_lock lock(s.mu);
  const auto ready = [&] {
    return s.woken || (with_input && (!s.chunks.empty() || s.eof || s.error != 0));
  };
  if (timeout_ms < 0) {
    s.cv.wait(lock, ready);
  } else if (!s.cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready)) {
    return Ready::timeout;
  }
  if (s.woken) {
    s.woken = false;
    return Ready::woken;
  }
  return Ready::input;
}

long Input::read(char* buffer, std::size_t size) {
  State& s = *state_;
  std::lock_guard lock(s.mu);
  if (!s.chunks.empty()) {
    std::string& front = s.chunks.front();
    const std::size_t n = std::min(size, front.size());
    front.copy(buffer, n);
    front.erase(0, n);
    if (front.empty()) s.chunks.pop_front();
    return static_cast<long>(n);
  }
  if (s.error != 0) {
    errno = s.error;
    return -1;
  }
  if (s.eof) return 0;
  errno = EAGAIN;
  return -1;
}

void Input::wake() {
  State& s = *state_;
  {
    std::lock_guard lock(s.mu);
    s.woken = true;
  }
  s.cv.notify_all();
}

}  // namespace wsgate::cli::console
