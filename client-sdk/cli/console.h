// The terminal and the standard streams of `wsgate`, behind one name per platform:
// posix/console.cc (termios, poll on stdin and a wake pipe, SIGINT) and win32/console.cc
// (console modes, a reader thread for stdin and an event, the console control handler).
// CMake compiles exactly one of the two.
//
// Thread safety: write_stdout() from any thread (callers serialise their own output);
// RawMode and Input are used by the main thread, except Input::wake(), which any thread and
// the interrupt handler may call.
#ifndef WSGATE_CLI_CONSOLE_H_
#define WSGATE_CLI_CONSOLE_H_

#include <cstddef>
#include <memory>
#include <string_view>

namespace wsgate::cli::console {

bool stdin_and_stdout_are_terminals();

// Writes all of `data` to stdout. False when stdout is gone (errno set).
bool write_stdout(std::string_view data);

// Ctrl-C: `handler` runs in a signal handler (POSIX) or on the console's control thread
// (Windows), so it may only touch atomics and call Input::wake(). Broken pipes on stdout are
// reported by write_stdout() instead of ending the process.
void on_interrupt(void (*handler)());

// The terminal's stdin in raw mode (no line editing, no echo, Ctrl-C as a byte) for the
// LineEditor; the constructor switches, restore() (or the destructor) switches back.
class RawMode {
 public:
  RawMode();
  ~RawMode();
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;
  bool active() const;
  void restore();  // idempotent

  struct Saved;

 private:
  std::unique_ptr<Saved> saved_;
};

// Stdin with a wake-up: the main thread waits for input or for wake() (another thread has news).
class Input {
 public:
  enum class Ready { input, woken, timeout, error };

  Input();  // throws std::runtime_error when the wake-up cannot be set up
  ~Input();
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;

  // Waits up to `timeout_ms` (-1: no limit) for stdin (when `with_input`) or a wake-up. A
  // wake-up is consumed by the wait that reports it.
  Ready wait(int timeout_ms, bool with_input);
  // After Ready::input: > 0 bytes read, 0 at the end of input, -1 on an error (errno set; EINTR
  // and EAGAIN mean "wait again").
  long read(char* buffer, std::size_t size);
  // Async-signal-safe on POSIX (one write to a pipe); any thread on Windows.
  void wake();

  struct State;

 private:
  std::shared_ptr<State> state_;  // shared with Windows' reader thread
};

}  // namespace wsgate::cli::console

#endif  // WSGATE_CLI_CONSOLE_H_
