// Subcommands of the `wsgate` command-line client (see docs/cli.md). Each run_* function returns
// the process exit status (exit_status.h) and prints failures as one line on stderr.
#ifndef WSGATE_CLI_CLI_H_
#define WSGATE_CLI_CLI_H_

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace wsgate::cli {

// A bad argument found after parsing (main prints it with the usage line and exits 2).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct CatOptions {
  std::string url;
  bool binary = false;          // stdin records become binary messages
  bool null_separated = false;  // records end with NUL instead of newline (input and output)
  std::string binary_output = "hex";  // received binary messages: "hex" or "raw"
  std::vector<std::string> subprotocols;
  std::vector<std::string> headers;  // "Name: value"
  std::string ca_file;               // read here, sent as PEM (the daemon may not see the file)
  std::string server_name;
  bool insecure = false;
  double ping_interval_s = 0;        // 0: no pings
  std::vector<std::string> close;    // CODE [REASON], sent at end of input
  double timeout_s = 30;             // open and close
  double linger_s = 0;               // after end of input, close after this long without a message
  bool no_prompt = false;            // never the interactive prompt
};

// The daemon address: --address, $WSGATE_ADDRESS (the daemon's variable too: the container image
// and the systemd unit set it), then the SDK's default socket, falling back to the system socket
// /run/wsgate/wsgated.sock when the per-user one does not exist.
std::string daemon_address(const std::string& option);

int run_cat(const CatOptions& options, const std::string& address);
int run_sessions(const std::string& address, bool json);
int run_stats(const std::string& address, bool json);
int run_health(const std::string& address, long timeout_ms);
int run_version();

}  // namespace wsgate::cli

#endif  // WSGATE_CLI_CLI_H_
