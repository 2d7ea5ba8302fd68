// SessionTrace: where one gateway session reports the decisions worth seeing in a debug log
// (destination policy verdicts, resolve and connect, TLS, the upgrade, backpressure, timeouts,
// close decisions) and, at trace level, each frame and each read and write size.
//
// Why an interface: the SessionMachine is sans-I/O and does not log (service/session links no
// logging library). It calls this seam at each decision; the daemon gives every session an
// implementation backed by its log (net::SessionLog, service/net/session_log.h) through
// Settings::trace, tests give a recorder, and nullptr means none (trace_or_none()). The
// transport (service/net) reports the connect-phase decisions, which are its own, to the same
// object.
//
// Cost: every caller asks debug() or trace() first and passes scalars or views only, so when the
// level is off a decision costs one virtual call and nothing is built or formatted. Frames are
// only parsed for the trace when trace() is true.
//
// Payloads never reach a trace: frames are described by opcode, length and fin.
//
// Lifetime: shared (Settings::trace is a shared_ptr) by the machine and its transport; it
// outlives both. Thread safety: each session calls its trace from one thread at a time (the
// driver serialises the machine and the connect phase); an implementation shared by several
// sessions must be safe to call concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "service/ws/frame.h"

namespace wsgate::session {

struct CloseInfo;
enum class Initiator;

// Which deadline expired.
enum class Timeout { connect, handshake, close, idle, ping };
const char* to_string(Timeout timeout);

// in: from the server; out: to the server.
enum class Direction { in, out };

class SessionTrace {
 public:
  virtual ~SessionTrace() = default;

  // Is the level of the decisions (debug) or of frames and I/O sizes (trace) on right now? The
  // answer may change at run time (SIGHUP): callers ask each time.
  virtual bool debug() const { return false; }
  virtual bool trace() const { return false; }

  // --- connect phase (the transport) ----------------------------------------------------------
  // A destination policy check: `check` "host" (before resolving) or "address" (each resolved
  // address); `subject` what was checked; `denied_by` the rule that refused it, empty: allowed.
  virtual void policy_verdict(std::string_view /*check*/, std::string_view /*subject*/,
                              std::string_view /*denied_by*/) {}
  // The resolver's answer: how many addresses, how many the policy left.
  virtual void resolved(std::size_t /*addresses*/, std::size_t /*allowed*/) {}
  // Connecting to `candidates` addresses in turn, then connected to one.
  virtual void connecting(std::size_t /*candidates*/) {}
  virtual void connected(std::string_view /*address*/) {}
  // TLS handshake done: protocol version, cipher, certificate verification result.
  virtual void tls_ready(std::string_view /*version*/, std::string_view /*cipher*/,
                         std::string_view /*verify*/) {}

  // --- the session machine --------------------------------------------------------------------
  // The upgrade request is written: its target (path and query, to be redacted) and size.
  virtual void upgrade_sent(std::string_view /*target*/, std::size_t /*bytes*/) {}
  // The upgrade response head arrived with this status.
  virtual void upgrade_response(int /*status*/) {}
  // The session is open with this subprotocol ("" none) and these extensions.
  virtual void negotiated(std::string_view /*subprotocol*/,
                          const std::vector<std::string>& /*extensions*/) {}
  // A deadline expired; `configured` is its setting.
  virtual void timeout(Timeout /*which*/, std::chrono::milliseconds /*configured*/) {}
  // Backpressure towards the server: the client stopped (true) or resumed (false) consuming, so
  // reads from the server stop or resume.
  virtual void reads_paused(bool /*paused*/) {}
  // Backpressure towards the client: its messages not yet written reached max_queued_bytes (the
  // next one waits), or fell below it again and `grants` waiting messages may follow.
  virtual void queue_full(std::uint64_t /*queued_bytes*/, std::uint64_t /*limit*/) {}
  virtual void queue_room(std::uint64_t /*queued_bytes*/, std::size_t /*grants*/) {}
  // A close frame is queued: who decided it and its code (0: no status).
  virtual void close_sent(Initiator /*initiator*/, std::uint16_t /*code*/) {}
  // The session ends after it was open: how (code, initiator, clean, failure cause).
  virtual void closed(const CloseInfo& /*info*/) {}

  // --- trace level ----------------------------------------------------------------------------
  // One frame: written (out), or indicated by the engine (in: a frame, or the part of it that
  // filled the receive buffer). Never the payload.
  virtual void frame(Direction /*direction*/, ws::Opcode /*opcode*/, std::uint64_t /*length*/,
                     bool /*fin*/) {}
  // One socket read (in) or write (out) completed with `bytes`.
  virtual void io(Direction /*direction*/, std::size_t /*bytes*/) {}
};

// `trace`, or a trace that reports nothing when it is null.
SessionTrace& trace_or_none(const std::shared_ptr<SessionTrace>& trace);

}  // namespace wsgate::session
