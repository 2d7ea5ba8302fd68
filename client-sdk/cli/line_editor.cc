#include "line_editor.h"

namespace wsgate::cli {

LineEditor::LineEditor(std::string prompt) : prompt_(std::move(prompt)) {
  std::lock_guard<std::mutex> lock(mu_);
  redraw_locked();
}

LineEditor::~LineEditor() { restore(); }

void LineEditor::restore() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!raw_.active()) return;
  write_all("\r\x1b[K");
  raw_.restore();
}

void LineEditor::write_all(std::string_view bytes) {
  // A failure means the terminal is gone: nothing sensible left to show.
  console::write_stdout(bytes);
}

void LineEditor::redraw_locked() { write_all("\r\x1b[K" + prompt_ + buffer_); }

void LineEditor::print_above(std::string_view text) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out = "\r\x1b[K";
  out.append(text);
  out += "\n";
  write_all(out);
  if (raw_.active()) redraw_locked();
}

LineEditor::Event LineEditor::feed(char byte, std::string* line) {
  const auto b = static_cast<unsigned char>(byte);
  std::lock_guard<std::mutex> lock(mu_);
  if (escape_ == 1) {  // ESC [ ... or ESC O x: skip the whole sequence
    escape_ = (b == '[' || b == 'O') ? 2 : 0;
    return Event::none;
  }
  if (escape_ == 2) {
    if (b >= 0x40 && b <= 0x7e) escape_ = 0;  // the final byte of the sequence
    return Event::none;
  }
  switch (b) {
    case 0x03:
      return Event::interrupt;
    case 0x04:
      return buffer_.empty() ? Event::eof : Event::none;
    case '\r':
    case '\n':
      write_all("\n");
      *line = std::move(buffer_);
      buffer_.clear();
      redraw_locked();
      return Event::line;
    case 0x7f:
    case 0x08:
      // Drop UTF-8 continuation bytes, then the lead byte.
      while (!buffer_.empty() && (static_cast<unsigned char>(buffer_.back()) & 0xC0) == 0x80)
        buffer_.pop_back();
      if (!buffer_.empty()) buffer_.pop_back();
      redraw_locked();
      return Event::none;
    case 0x15:
      buffer_.clear();
      redraw_locked();
      return Event::none;
    case 0x1b:
      escape_ = 1;
      return Event::none;
    default:
      break;
  }
  if (b < 0x20) return Event::none;
  buffer_.push_back(byte);
  write_all(std::string_view(&byte, 1));
  return Event::none;
}

}  // namespace wsgate::cli
