// `wsgate cat URL`: stdin records -> WebSocket messages, messages -> stdout, through wsgated.
//
// Threads: the main thread reads stdin (console::Input: stdin or a wake-up) and sends; the
// Session's reader thread prints received messages (on_message) and records the end of the
// session, then wakes the main thread so that it stops waiting for input it no longer needs.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>

#include "cli.h"
#include "console.h"
#include "exit_status.h"
#include "line_editor.h"

namespace wsgate::cli {
namespace {

using namespace std::chrono_literals;

// Input records longer than this are refused instead of growing without bound; it is the SDK's
// gRPC message limit, so a longer record could not be sent anyway.
constexpr std::size_t kMaxRecord = 64u << 20;
// How long an aborted session waits for the answer to its close 1001.
constexpr std::chrono::milliseconds kAbortCloseWait{2000};

std::atomic<console::Input*> g_input{nullptr};
std::atomic<bool> g_interrupted{false};

// Ctrl-C (a signal handler on POSIX): only atomics and Input::wake().
void on_ctrl_c() {
  g_interrupted = true;
  if (console::Input* input = g_input.load()) input->wake();
}

std::string to_hex(std::string_view data) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (unsigned char c : data) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// Control characters of a received text would move the cursor or change the terminal's state;
// in the interactive view they are shown escaped (\n, \t stay).
std::string printable(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
    } else if (c == '\n' || c == '\t') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::string describe_close(const CloseInfo& c) {
  std::string who;
  switch (c.initiator) {
    case Initiator::client: who = "closed"; break;
    case Initiator::server: who = "closed by the server"; break;
    case Initiator::gateway: who = "closed by wsgated"; break;
    default: who = "closed"; break;
  }
  if (c.code == 1006) {
    return "connection lost (1006" + (c.reason.empty() ? "" : ": " + c.reason) + ")";
  }
  std::string line = who + " with " + std::to_string(c.code);
  if (!c.reason.empty()) line += " \"" + c.reason + "\"";
  return line;
}

std::uint16_t parse_close_code(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text.c_str(), &end, 10);
  // 1004-1006 and 1015 are reserved: never sent in a close frame (RFC 6455 7.4.1).
  if (errno != 0 || end == text.c_str() || *end != '\0' || v < 1000 || v > 4999 || v == 1004 ||
      v == 1005 || v == 1006 || v == 1015) {
    throw UsageError("--close: " + text + " is not a close code that may be sent (1000-4999, "
                     "not 1004-1006 or 1015)");
  }
  return static_cast<std::uint16_t>(v);
}

SessionOptions session_options(const CatOptions& o) {
  SessionOptions so;
  so.subprotocols = o.subprotocols;
  for (const std::string& h : o.headers) {
    const std::size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0) {
      throw UsageError("-H " + h + ": expected name:value");
    }
    std::string value = h.substr(colon + 1);
    const std::size_t start = value.find_first_not_of(" \t");
    value = start == std::string::npos ? "" : value.substr(start);
    so.headers.emplace_back(h.substr(0, colon), value);
  }
  if (!o.ca_file.empty()) {
    std::ifstream in(o.ca_file, std::ios::binary);
    std::ostringstream pem;
    if (!in || !(pem << in.rdbuf())) {
      throw UsageError("--ca " + o.ca_file + ": cannot read the file: " + std::strerror(errno));
    }
    so.tls.set_ca_pem(pem.str());
  }
  if (!o.server_name.empty()) so.tls.set_server_name(o.server_name);
  so.tls.set_insecure_skip_verify(o.insecure);
  return so;
}

// What the reader thread learned about the end of the session.
struct EndState {
  std::mutex mu;
  std::optional<CloseInfo> closed;
  std::optional<Error> error;
  bool ended = false;
  std::string output_error;  // stdout failed (e.g. `| head -1` exited): abort
};

}  // namespace

int run_cat(const CatOptions& o, const std::string& address) {
  const std::uint16_t close_code = o.close.empty() ? 1000 : parse_close_code(o.close[0]);
  const std::string close_reason = o.close.size() > 1 ? o.close[1] : "";
  if (close_reason.size() > 123) throw UsageError("--close: the reason is longer than 123 bytes");
  if (o.binary_output != "hex" && o.binary_output != "raw") {
    throw UsageError("--binary-output: expected hex or raw, got " + o.binary_output);
  }
  const SessionOptions so = session_options(o);
  const auto timeout =
      std::chrono::milliseconds(static_cast<long long>(o.timeout_s * 1000.0));
  const bool interactive = !o.no_prompt && console::stdin_and_stdout_are_terminals();
  const char sep = o.null_separated ? '\0' : '\n';

  // What the Session's callbacks use is declared before it, so that it outlives the reader
  // thread whichever way this function is left.
  console::Input input;
  EndState end;
  std::unique_ptr<LineEditor> editor;
  // steady_clock ticks of the last received message (for --linger).
  std::atomic<std::chrono::steady_clock::rep> last_activity{0};
  // A closed stdout is reported by write_stdout() and ends the session.
  const auto output = [&](std::string_view data) {
    if (console::write_stdout(data)) return;
    const int err = errno;
    std::lock_guard<std::mutex> lock(end.mu);
    if (end.output_error.empty()) {
      end.output_error = std::string("writing stdout: ") + std::strerror(err);
    }
    input.wake();
  };

  ClientOptions co;
  co.address = address;
  Client client(co);
  std::optional<Session> session;
  try {
    session.emplace(Session::open(client, o.url, so, deadline_after(timeout)));
  } catch (const Error& e) {
    std::fprintf(stderr, "wsgate: %s\n", describe(e, client.address()).c_str());
    return exit_for_error(e, false);
  }

  if (interactive) {
    std::string info = "connected to " + o.url;
    if (!session->subprotocol().empty()) info += " (subprotocol " + session->subprotocol() + ")";
    std::fprintf(stderr, "%s; Ctrl-D closes, Ctrl-C aborts\n", info.c_str());
    editor = std::make_unique<LineEditor>("> ");
  }
  g_input = &input;
  console::on_interrupt(on_ctrl_c);

  session->on_message(
      [&](const Message& m) {
        last_activity = std::chrono::steady_clock::now().time_since_epoch().count();
        switch (m.kind) {
          case Message::Kind::text:
            if (editor) {
              editor->print_above("< " + printable(m.data));
            } else {
              std::string out = m.data;
              out += sep;
              output(out);
            }
            break;
          case Message::Kind::binary:
            if (editor) {
              editor->print_above("< [binary, " + std::to_string(m.data.size()) + " bytes] " +
                                  to_hex(m.data));
            } else if (o.binary_output == "raw") {
              output(m.data);
            } else {
              output(to_hex(m.data) + sep);
            }
            break;
          case Message::Kind::pong:
            break;
          case Message::Kind::closed: {
            std::lock_guard<std::mutex> lock(end.mu);
            end.closed = m.close;
            input.wake();
            break;
          }
        }
      },
      [&](const Error* e) {
        std::lock_guard<std::mutex> lock(end.mu);
        end.ended = true;
        if (e) end.error = *e;
        input.wake();
      });

  // The session is over (closed or its stream ended): nothing more to send.
  const auto session_over = [&] {
    std::lock_guard<std::mutex> lock(end.mu);
    return end.closed.has_value() || end.ended;
  };
  // The loops stop: the session is over, or stdout failed (the session is then closed below).
  const auto finished = [&] {
    if (session_over()) return true;
    std::lock_guard<std::mutex> lock(end.mu);
    return !end.output_error.empty();
  };

  std::string pending;  // an incomplete input record
  bool input_done = false;
  bool interrupted = false;
  std::string failure;  // a local failure that ends the session (printed below)
  const auto ping_period =
      std::chrono::milliseconds(static_cast<long long>(o.ping_interval_s * 1000.0));
  auto next_ping = std::chrono::steady_clock::now() + ping_period;

  const auto send_record = [&](std::string_view record) {
    if (o.binary) {
      session->send_binary(record);
    } else {
      session->send_text(record);
    }
  };

  try {
    while (!input_done && !finished() && !g_interrupted) {
      int wait_ms = -1;
      if (ping_period.count() > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            next_ping - std::chrono::steady_clock::now());
        wait_ms = static_cast<int>(std::max<long long>(0, left.count()));
      }
      const console::Input::Ready ready = input.wait(wait_ms, true);
      if (ready == console::Input::Ready::error) {
        failure = std::string("waiting for stdin: ") + std::strerror(errno);
        break;
      }
      if (ping_period.count() > 0 && std::chrono::steady_clock::now() >= next_ping) {
        session->ping();
        next_ping = std::chrono::steady_clock::now() + ping_period;
      }
      if (ready != console::Input::Ready::input) continue;
      char buf[65536];
      const long got = input.read(buf, sizeof buf);
      if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        failure = std::string("reading stdin: ") + std::strerror(errno);
        break;
      }
      if (got == 0) {
        // End of input: a last record without its separator is still a record.
        if (!pending.empty() && !editor) send_record(pending);
        input_done = true;
        break;
      }
      const std::string_view chunk(buf, static_cast<std::size_t>(got));
      if (editor) {
        for (char c : chunk) {
          std::string line;
          switch (editor->feed(c, &line)) {
            case LineEditor::Event::line: send_record(line); break;
            case LineEditor::Event::eof: input_done = true; break;
            case LineEditor::Event::interrupt: interrupted = true; break;
            case LineEditor::Event::none: break;
          }
          if (input_done || interrupted) break;
        }
        if (interrupted) break;
        continue;
      }
      if (o.binary && !o.null_separated) {  // raw chunks: each read is one message
        send_record(chunk);
        continue;
      }
      pending.append(chunk);
      std::size_t start = 0;
      for (std::size_t pos; (pos = pending.find(sep, start)) != std::string::npos;) {
        send_record(std::string_view(pending).substr(start, pos - start));
        start = pos + 1;
      }
      pending.erase(0, start);
      if (pending.size() > kMaxRecord) {
        failure = "an input record is longer than " + std::to_string(kMaxRecord) + " bytes";
        break;
      }
    }
  } catch (const Error& e) {
    // A send failed because the stream ended: the reader reports how (below).
    if (e.cause() != "session_closed") failure = describe(e, client.address());
  }
  // --linger: replies to the last records may still be on their way, and a server stops sending
  // once it sees our close. Close only after S seconds without a message (or when the server
  // closes first, or on an interrupt).
  if (input_done && o.linger_s > 0 && failure.empty()) {
    const auto period = std::chrono::milliseconds(static_cast<long long>(o.linger_s * 1000.0));
    last_activity = std::chrono::steady_clock::now().time_since_epoch().count();
    while (!finished() && !g_interrupted) {
      const auto last = std::chrono::steady_clock::time_point(
          std::chrono::steady_clock::duration(last_activity.load()));
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          last + period - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      input.wait(static_cast<int>(left.count()), false);  // a message or the end wakes it
    }
  }
  interrupted = interrupted || g_interrupted;
  {
    std::lock_guard<std::mutex> lock(end.mu);
    if (failure.empty() && !end.output_error.empty()) failure = end.output_error;
  }

  int status = kOk;
  std::optional<CloseInfo> closed;
  std::optional<Error> error;
  if (interrupted || !failure.empty()) {
    // Abort: close with 1001 (going away) rather than only cancelling the stream, which the
    // daemon answers by dropping the upstream TCP connection (the server would see 1006). The
    // wait is short: an interrupt should not hang on a slow server. A failed stdout is such an
    // abort too, so the test is whether the session is over, not whether the loops stopped.
    if (!session_over()) {
      try {
        session->close(1001, {}, deadline_after(std::min(timeout, kAbortCloseWait)));
      } catch (const Error&) {
        // Too slow or already gone: destroying the Session cancels the stream.
      }
    }
    if (editor) editor->restore();
    std::fprintf(stderr, "wsgate: %s\n", interrupted ? "interrupted" : failure.c_str());
    status = interrupted ? kInterrupted : kFailure;
  } else {
    if (input_done && !finished()) {
      try {
        closed = session->close(close_code, close_reason, deadline_after(timeout));
      } catch (const Error& e) {
        error = e;
      }
    }
    {
      std::lock_guard<std::mutex> lock(end.mu);
      if (!closed) closed = end.closed;
      // The stream's own status says more than close()'s "session_closed".
      if (!closed && end.error) error = end.error;
    }
    if (editor) editor->restore();
    if (closed) {
      status = exit_for_close(closed->code);
      if (status != kOk || editor) {
        std::fprintf(stderr, "wsgate: %s\n", describe_close(*closed).c_str());
      }
    } else if (error) {
      std::fprintf(stderr, "wsgate: %s\n", describe(*error, client.address()).c_str());
      status = exit_for_error(*error, true);
    } else {
      std::fprintf(stderr, "wsgate: the session ended without a close\n");
      status = kLost;
    }
  }
  // Stop the reader thread (it may still print) before the terminal settings are restored.
  session.reset();
  g_input = nullptr;
  return status;
}

}  // namespace wsgate::cli
