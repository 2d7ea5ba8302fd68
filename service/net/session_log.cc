#include "service/net/session_log.h"

#include "service/log/logging.h"
#include "service/log/redact.h"
#include "service/session/types.h"

namespace wsgate::net {
namespace {

constexpr auto kDebug = spdlog::level::debug;
constexpr auto kTrace = spdlog::level::trace;

const char* initiator_name(session::Initiator i) {
  switch (i) {
    case session::Initiator::client: return "client";
    case session::Initiator::server: return "server";
    case session::Initiator::gateway: return "gateway";
  }
  return "unknown";
}

const char* opcode_name(ws::Opcode op) {
  switch (op) {
    case ws::Opcode::continuation: return "continuation";
    case ws::Opcode::text: return "text";
    case ws::Opcode::binary: return "binary";
    case ws::Opcode::close: return "close";
    case ws::Opcode::ping: return "ping";
    case ws::Opcode::pong: return "pong";
  }
  return "unknown";
}

const char* direction_name(session::Direction d) {
  return d == session::Direction::in ? "in" : "out";
}

}  // namespace

SessionLog::SessionLog(std::string session_id)
    : session_(std::move(session_id)), gateway_(log::logger("gateway")), net_(log::logger("net")) {}

// One logger is asked: log.level sets every component's level at once (set_log_level), and the
// `net` lines check their own logger again before anything is built.
bool SessionLog::debug() const { return gateway_->should_log(kDebug); }
bool SessionLog::trace() const { return gateway_->should_log(kTrace); }

void SessionLog::policy_verdict(std::string_view check, std::string_view subject,
                                std::string_view denied_by) {
  const bool allowed = denied_by.empty();
  log::log_event(*net_, kDebug, allowed ? "destination allowed" : "destination denied",
                 {{"session", session_}, {"event", "policy"}, {"check", check},
                  {"subject", subject}, {"verdict", allowed ? "allowed" : "denied"},
                  {"rule", allowed ? std::string_view("no rule denies it") : denied_by}});
}

void SessionLog::resolved(std::size_t addresses, std::size_t allowed) {
  log::log_event(*net_, kDebug, "resolved",
                 {{"session", session_}, {"event", "resolve"}, {"addresses", addresses},
                  {"allowed", allowed}});
}

void SessionLog::connecting(std::size_t candidates) {
  log::log_event(*net_, kDebug, "connecting",
                 {{"session", session_}, {"event", "connect"}, {"candidates", candidates}});
}

void SessionLog::connected(std::string_view address) {
  log::log_event(*net_, kDebug, "connected",
                 {{"session", session_}, {"event", "connected"}, {"address", address}});
}

void SessionLog::tls_ready(std::string_view version, std::string_view cipher,
                           std::string_view verify) {
  log::log_event(*net_, kDebug, "TLS handshake done",
                 {{"session", session_}, {"event", "tls"}, {"version", version},
                  {"cipher", cipher}, {"verify", verify}});
}

void SessionLog::upgrade_sent(std::string_view target, std::size_t bytes) {
  if (!gateway_->should_log(kDebug)) return;
  log::log_event(*gateway_, kDebug, "upgrade request sent",
                 {{"session", session_}, {"event", "upgrade_request"},
                  {"target", log::redact_url(target)}, {"bytes", bytes}});
}

void SessionLog::upgrade_response(int status) {
  log::log_event(*gateway_, kDebug, "upgrade response",
                 {{"session", session_}, {"event", "upgrade_response"}, {"status", status}});
}

void SessionLog::negotiated(std::string_view subprotocol,
                            const std::vector<std::string>& extensions) {
  if (!gateway_->should_log(kDebug)) return;
  std::string joined;
  for (const std::string& e : extensions) {
    if (!joined.empty()) joined += ", ";
    joined += e;
  }
  log::log_event(*gateway_, kDebug, "upgrade accepted",
                 {{"session", session_}, {"event", "negotiated"},
                  {"subprotocol", log::redact_header("Sec-WebSocket-Protocol", subprotocol)},
                  {"extensions", joined}});
}

void SessionLog::timeout(session::Timeout which, std::chrono::milliseconds configured) {
  log::log_event(*gateway_, kDebug, "timeout",
                 {{"session", session_}, {"event", "timeout"}, {"timer", session::to_string(which)},
                  {"timeout_ms", static_cast<std::int64_t>(configured.count())}});
}

void SessionLog::reads_paused(bool paused) {
  log::log_event(*gateway_, kDebug,
                 paused ? "client not keeping up: reads from the server paused"
                        : "client caught up: reads from the server resumed",
                 {{"session", session_}, {"event", paused ? "reads_paused" : "reads_resumed"}});
}

void SessionLog::queue_full(std::uint64_t queued_bytes, std::uint64_t limit) {
  log::log_event(*gateway_, kDebug, "upstream queue full: the client's next message waits",
                 {{"session", session_}, {"event", "queue_full"}, {"queued_bytes", queued_bytes},
                  {"limit", limit}});
}

void SessionLog::queue_room(std::uint64_t queued_bytes, std::size_t grants) {
  log::log_event(*gateway_, kDebug, "upstream queue has room: the client may send again",
                 {{"session", session_}, {"event", "queue_room"}, {"queued_bytes", queued_bytes},
                  {"grants", grants}});
}

void SessionLog::close_sent(session::Initiator initiator, std::uint16_t code) {
  log::log_event(*gateway_, kDebug, "close frame queued",
                 {{"session", session_}, {"event", "close_sent"},
                  {"initiator", initiator_name(initiator)}, {"code", code}});
}

void SessionLog::closed(const session::CloseInfo& info) {
  log::log_event(*gateway_, kDebug, "close decided",
                 {{"session", session_}, {"event", "close_decided"},
                  {"initiator", initiator_name(info.initiator)}, {"code", info.code},
                  {"clean", info.clean},
                  {"cause", info.failure ? session::to_string(info.failure->cause) : ""}});
}

void SessionLog::frame(session::Direction direction, ws::Opcode opcode, std::uint64_t length,
                       bool fin) {
  log::log_event(*gateway_, kTrace, "frame",
                 {{"session", session_}, {"event", "frame"},
                  {"direction", direction_name(direction)}, {"opcode", opcode_name(opcode)},
                  {"length", length}, {"fin", fin}});
}

void SessionLog::io(session::Direction direction, std::size_t bytes) {
  const char* what = direction == session::Direction::in ? "read" : "write";
  log::log_event(*net_, kTrace, what, {{"session", session_}, {"event", what}, {"bytes", bytes}});
}

}  // namespace wsgate::net
