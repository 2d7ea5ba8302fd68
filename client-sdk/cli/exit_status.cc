#include "exit_status.h"

namespace wsgate::cli {

int exit_for_close(std::uint32_t code) {
  if (code == 1000) return kOk;
  if (code == 1006) return kLost;
  return kCloseCode;
}

namespace {

// The daemon reachable but the stream failed without an ErrorDetail is still "unreachable"
// only when no detail came at all: gRPC itself failed to connect (UNAVAILABLE).
bool unreachable(const Error& e) {
  return !e.has_detail() && e.code() == StatusCode::unavailable;
}

}  // namespace

int exit_for_error(const Error& e, bool opened) {
  if (unreachable(e)) return opened ? kLost : kUnreachable;
  const std::string& c = e.cause();
  if (c == "upgrade_refused" || c == "handshake_rejected") return kUpgradeRefused;
  if (c == "connection_refused" || c == "dns_failure" || c == "connect_timeout") return kNetwork;
  if (c == "tls_handshake_failed") return kTls;
  if (c == "destination_denied" || c == "session_limit" || c == "bad_request") return kRefused;
  if (opened) return kLost;
  return kFailure;
}

std::string describe(const Error& e, const std::string& address) {
  if (unreachable(e)) return "cannot reach wsgated at " + address + ": " + e.message();
  if (!e.has_detail() || e.cause().empty()) {
    return std::string(e.code_name()) + ": " + e.message();
  }
  std::string cause = e.cause();
  for (char& ch : cause) {
    if (ch == '_') ch = ' ';
  }
  if (e.cause() == "upgrade_refused") {
    // The daemon's message ends with "HTTP <status> <reason>"; keep that part.
    const std::size_t http = e.message().rfind("HTTP ");
    if (http != std::string::npos) return cause + ": " + e.message().substr(http);
    return cause + ": HTTP " + std::to_string(e.http_status());
  }
  std::string line = cause + ": " + e.message();
  if (!e.hresult_symbol().empty()) line += " (" + e.hresult_symbol() + ")";
  return line;
}

}  // namespace wsgate::cli
