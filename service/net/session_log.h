// SessionLog: a session::SessionTrace backed by the daemon's log (service/log), so a Gateway
// session's decisions appear at debug and its frames at trace (docs/operations.md lists the
// events and their fields). Every line carries `session` and `event`; a request target is
// redacted like a URL (log.redact). Connect-phase lines (policy, resolve, connect, TLS, socket
// read/write sizes) go to the `net` component, the session's own decisions and frames to
// `gateway`.
//
// Cost: debug()/trace() are one atomic load of a logger's level; nothing is formatted when the
// level is off (the machine asks them before every call, and each method checks again, since
// the level may change between the two).
//
// Lifetime: one per session, shared by its machine and transport (Settings::trace). Thread
// safety: the session calls it from one thread at a time; the loggers are thread-safe.
#pragma once

#include <memory>
#include <string>

#include <spdlog/logger.h>

#include "service/session/trace.h"

namespace wsgate::net {

class SessionLog final : public session::SessionTrace {
 public:
  explicit SessionLog(std::string session_id);

  bool debug() const override;
  bool trace() const override;

  void policy_verdict(std::string_view check, std::string_view subject,
                      std::string_view denied_by) override;
  void resolved(std::size_t addresses, std::size_t allowed) override;
  void connecting(std::size_t candidates) override;
  void connected(std::string_view address) override;
  void tls_ready(std::string_view version, std::string_view cipher,
                 std::string_view verify) override;

  void upgrade_sent(std::string_view target, std::size_t bytes) override;
  void upgrade_response(int status) override;
  void negotiated(std::string_view subprotocol,
                  const std::vector<std::string>& extensions) override;
  void timeout(session::Timeout which, std::chrono::milliseconds configured) override;
  void reads_paused(bool paused) override;
  void queue_full(std::uint64_t queued_bytes, std::uint64_t limit) override;
  void queue_room(std::uint64_t queued_bytes, std::size_t grants) override;
  void close_sent(session::Initiator initiator, std::uint16_t code) override;
  void closed(const session::CloseInfo& info) override;

  void frame(session::Direction direction, ws::Opcode opcode, std::uint64_t length,
             bool fin) override;
  void io(session::Direction direction, std::size_t bytes) override;

 private:
  std::string session_;
  std::shared_ptr<spdlog::logger> gateway_;  // the session's decisions and frames
  std::shared_ptr<spdlog::logger> net_;      // connect phase, socket I/O sizes
};

}  // namespace wsgate::net
