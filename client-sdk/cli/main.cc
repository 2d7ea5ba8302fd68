// wsgate: the command-line client of wsgated (docs/cli.md).
//
//   wsgate [--address TARGET] cat URL [options]   stdin <-> a WebSocket, through the daemon
//   wsgate sessions [--json] | stats [--json] | health [--timeout-ms N] | version
//
// Usage errors print one line and the subcommand's usage, and exit 2 (exit_status.h).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "cli.h"
#include "exit_status.h"

namespace {

const char* usage_line(const std::string& subcommand) {
  if (subcommand == "cat") {
    return "usage: wsgate cat [--binary] [--null] [--binary-output hex|raw] [--subprotocol P]... "
           "[-H NAME:VALUE]... [--ca FILE] [--server-name NAME] [--insecure] "
           "[--ping-interval S] [--timeout S] [--linger S] [--no-prompt] URL "
           "[--close CODE [REASON]]";
  }
  if (subcommand == "sessions") return "usage: wsgate sessions [--json]";
  if (subcommand == "stats") return "usage: wsgate stats [--json]";
  if (subcommand == "health") return "usage: wsgate health [--timeout-ms N]";
  if (subcommand == "version") return "usage: wsgate version";
  return "usage: wsgate [--address TARGET] {cat|sessions|stats|health|version} ...";
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = wsgate::cli;
  CLI::App app{"wsgate: talk to WebSocket servers through wsgated, and inspect the daemon"};
  app.require_subcommand(1);
  std::string address;
  app.add_option("--address", address,
                 "wsgated's gRPC target: unix:/path, /path or host:port (default: "
                 "$WSGATE_ADDRESS, then the default socket)")
      ->option_text("TARGET");
  app.set_version_flag("--version", std::string("wsgate ") + WSGATE_VERSION);

  cli::CatOptions cat;
  CLI::App* cat_cmd = app.add_subcommand(
      "cat", "Send stdin records as messages and print received messages (like websocat)");
  cat_cmd->fallthrough();
  cat_cmd->add_option("URL", cat.url, "ws://, wss:// or ws+unix:///socket.sock:/path URL")->required();
  cat_cmd->add_flag("--binary", cat.binary, "send binary messages: raw stdin chunks, or records "
                                            "with --null");
  cat_cmd->add_flag("-0,--null", cat.null_separated,
                    "records end with NUL instead of newline (stdin and stdout)");
  cat_cmd->add_option("--binary-output", cat.binary_output,
                      "print received binary messages as hex (one per record) or raw bytes")
      ->option_text("hex|raw");
  cat_cmd->add_option("--subprotocol", cat.subprotocols, "offer a subprotocol (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->option_text("NAME");
  cat_cmd->add_option("-H,--header", cat.headers, "extra request header (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->option_text("NAME:VALUE");
  cat_cmd->add_option("--ca", cat.ca_file, "PEM file of trusted CAs for wss:// (read here)")
      ->option_text("FILE");
  cat_cmd->add_option("--server-name", cat.server_name, "TLS name to verify (default: the host)");
  cat_cmd->add_flag("-k,--insecure", cat.insecure, "do not verify the server's certificate");
  cat_cmd->add_option("--ping-interval", cat.ping_interval_s, "send a ping every S seconds")
      ->check(CLI::Range(0.0, 86400.0))
      ->option_text("S");
  cat_cmd->add_option("--close", cat.close,
                      "close code and reason sent at end of input (default 1000)")
      ->expected(1, 2)
      ->option_text("CODE [REASON]");
  cat_cmd->add_option("--timeout", cat.timeout_s, "seconds to open and to close (default 30)")
      ->check(CLI::Range(0.1, 3600.0))
      ->option_text("S");
  cat_cmd->add_option("--linger", cat.linger_s,
                      "after end of input, close only once no message came for S seconds")
      ->check(CLI::Range(0.0, 3600.0))
      ->option_text("S");
  cat_cmd->add_flag("--no-prompt", cat.no_prompt, "no interactive prompt even in a terminal");

  bool json = false;
  CLI::App* sessions_cmd = app.add_subcommand("sessions", "List the daemon's sessions");
  sessions_cmd->fallthrough();
  sessions_cmd->add_flag("--json", json, "print the ListSessions response as JSON");
  CLI::App* stats_cmd = app.add_subcommand("stats", "Print the daemon's counters");
  stats_cmd->fallthrough();
  stats_cmd->add_flag("--json", json, "print the GetStats response as JSON");
  long timeout_ms = 3000;
  CLI::App* health_cmd = app.add_subcommand(
      "health", "Exit 0 when the daemon's health service answers SERVING, 1 otherwise");
  health_cmd->fallthrough();
  health_cmd->add_option("--timeout-ms", timeout_ms, "deadline of the check (default 3000)")
      ->check(CLI::PositiveNumber);
  CLI::App* version_cmd = app.add_subcommand("version", "Print the client's version");
  version_cmd->fallthrough();

  const auto subcommand_name = [&]() -> std::string {
    for (const CLI::App* sub : {cat_cmd, sessions_cmd, stats_cmd, health_cmd, version_cmd}) {
      if (sub->parsed()) return sub->get_name();
    }
    return {};
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // With no subcommand recognised, CLI11 reports the missing subcommand before the argument
    // it could not place; that argument is the more useful message.
    std::string message = e.what();
    const std::vector<std::string> rest = app.remaining();
    if (subcommand_name().empty() && !rest.empty()) {
      message = "unknown subcommand or option: " + rest.front();
    }
    std::fprintf(stderr, "wsgate: %s\n%s\n", message.c_str(), usage_line(subcommand_name()));
    return cli::kUsage;
  }

  try {
    if (version_cmd->parsed()) return cli::run_version();
    const std::string target = cli::daemon_address(address);
    if (cat_cmd->parsed()) return cli::run_cat(cat, target);
    if (sessions_cmd->parsed()) return cli::run_sessions(target, json);
    if (stats_cmd->parsed()) return cli::run_stats(target, json);
    if (health_cmd->parsed()) return cli::run_health(target, timeout_ms);
  } catch (const cli::UsageError& e) {
    std::fprintf(stderr, "wsgate: %s\n%s\n", e.what(), usage_line(subcommand_name()));
    return cli::kUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wsgate: %s\n", e.what());
    return cli::kFailure;
  }
  return cli::kUsage;
}
