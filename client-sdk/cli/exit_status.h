// Exit statuses of the `wsgate` command-line client, and the one-line messages it prints on
// stderr for a failure. The table is the documented contract (docs/cli.md repeats it; the tests
// in tests/cli/ check every row they can provoke):
//
//   0    the session closed with 1000 (normal closure); `sessions`/`stats`/`version` succeeded;
//        `health`: the daemon is SERVING
//   1    any other failure (unexpected gRPC status, I/O error such as a closed stdout);
//        `health`: not SERVING or unreachable
//   2    usage error (unknown flag, missing or malformed argument)
//   3    wsgated could not be reached at the address (no daemon, wrong socket, no permission)
//   4    the server refused the WebSocket upgrade (HTTP status other than 101, or a 101 that is
//        not a valid WebSocket answer): causes upgrade_refused, handshake_rejected
//   5    network failure before the upgrade: connection_refused, dns_failure, connect_timeout
//   6    TLS failure: tls_handshake_failed (untrusted certificate, wrong name, protocol)
//   7    refused by the daemon: destination_denied, session_limit, bad_request (bad URL/option)
//   8    the session closed with a code other than 1000 and 1006 (1001..4999, 1005 = no status)
//   9    the connection was lost (close 1006) or the session failed after it opened
//        (queue_overflow, the daemon went away...)
//   130  interrupted (Ctrl-C / SIGINT); the session is closed with 1001 (going away)
//
// Distinct codes let scripts tell "the server said no" (4) from "the network said no" (5, 6) and
// from "the gateway's policy said no" (7) without parsing stderr.
#ifndef WSGATE_CLI_EXIT_STATUS_H_
#define WSGATE_CLI_EXIT_STATUS_H_

#include <wsgate/client.h>

#include <string>

namespace wsgate::cli {

enum Exit : int {
  kOk = 0,
  kFailure = 1,
  kUsage = 2,
  kUnreachable = 3,
  kUpgradeRefused = 4,
  kNetwork = 5,
  kTls = 6,
  kRefused = 7,
  kCloseCode = 8,
  kLost = 9,
  kInterrupted = 130,
};

// The status for a session that ended with this close code.
int exit_for_close(std::uint32_t code);

// The status for an Error thrown while opening a session (or ending one later: `opened`).
int exit_for_error(const Error& e, bool opened);

// One line, without "wsgate: " and without newline, describing `e` for a person:
// "upgrade refused: HTTP 403 Forbidden", "cannot reach wsgated at unix:/x: ...".
std::string describe(const Error& e, const std::string& address);

}  // namespace wsgate::cli

#endif  // WSGATE_CLI_EXIT_STATUS_H_
