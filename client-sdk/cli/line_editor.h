// LineEditor: the prompt of `wsgate cat` when stdin and stdout are a terminal.
//
// It keeps the line being typed in its own buffer and echoes it itself, so that a message
// printed while the user types (print_above) is written above the input line, which is then
// redrawn intact: "\r" + clear line + message + newline + prompt + buffer. The terminal driver
// cannot do that in canonical mode, where it owns the buffer.
//
// Keys: printable text and UTF-8 are inserted at the end; Enter sends the line; Backspace
// deletes one character (a whole UTF-8 sequence); Ctrl-U clears the line; Ctrl-D on an empty
// line is end of input; Ctrl-C is an interrupt; escape sequences (arrows, function keys) and
// other control characters are ignored. No cursor movement or history (out of scope).
//
// Lifetime: the constructor switches stdin to raw mode (console.h: non-canonical, no echo, and
// Ctrl-C arrives as a byte, so the client can abort the session itself); the destructor (or
// restore()) puts the saved settings back. Construct at most one at a time.
//
// Thread safety: feed() is called by the one input thread; print_above() and restore() may be
// called from any thread; all terminal output is serialised by an internal mutex.
#ifndef WSGATE_CLI_LINE_EDITOR_H_
#define WSGATE_CLI_LINE_EDITOR_H_

#include <mutex>
#include <string>
#include <string_view>

#include "console.h"

namespace wsgate::cli {

class LineEditor {
 public:
  enum class Event { none, line, eof, interrupt };

  explicit LineEditor(std::string prompt);
  ~LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // Processes one input byte. Event::line moves the completed line into *line.
  Event feed(char byte, std::string* line);
  // Writes `text` and a newline above the input line, then redraws the prompt and the buffer.
  void print_above(std::string_view text);
  // Clears the input line and restores the terminal settings (idempotent).
  void restore();

 private:
  void write_all(std::string_view bytes);
  void redraw_locked();

  std::mutex mu_;
  std::string prompt_;
  std::string buffer_;
  int escape_ = 0;  // 0: none; 1: after ESC; 2: inside a CSI/SS3 sequence
  console::RawMode raw_;  // the terminal's raw mode while active
};

}  // namespace wsgate::cli

#endif  // WSGATE_CLI_LINE_EDITOR_H_
