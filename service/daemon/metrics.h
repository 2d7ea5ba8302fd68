// The metrics endpoint (metrics.listen): a minimal HTTP/1.1 server over the daemon's Asio
// io_context that answers GET /metrics with the Prometheus text exposition format (0.0.4, which
// Prometheus and OpenMetrics scrapers both read), and 404 to any other path.
//
// Why hand-written: Debian has no prometheus-cpp, and the endpoint needs one path, one method
// and no keep-alive, which is smaller than a dependency. Each connection reads one request
// head (at most kMaxRequestBytes, within kRequestTimeout), writes one response and closes; at
// most kMaxConnections are served at once (more wait in the backlog), so a slow or hostile
// client costs a bounded amount of memory and fds.
//
// render_metrics() builds the exposition from MetricsSources; it is separate from the server so
// a unit test can check the text without sockets.
//
// Lifetime: owned by the Server; close() must run before the io_context's threads are joined;
// the connections hold the server's shared state (never the MetricsServer itself), so they may
// outlive it until the io_context stops. Thread safety: listen() and close() from the main
// thread; everything else runs on the io_context's threads, on one strand per connection.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "service/rpc/session_registry.h"

namespace wsgate::daemon {

// Where the numbers come from; each callback may be empty (that series is left out).
struct MetricsSources {
  const rpc::SessionRegistry* registry = nullptr;
  std::function<std::uint64_t()> protocol_handles;
  std::function<std::uint64_t()> protocol_accounted_bytes;
  std::function<std::uint64_t()> grpc_streams_active;
  std::function<std::uint64_t()> grpc_streams_total;
  std::function<std::uint64_t()> fd_budget_in_use;
  std::function<std::uint64_t()> gateway_queued_bytes;
};

// The whole exposition in the text format 0.0.4 (no "# EOF": that is OpenMetrics-only).
std::string render_metrics(const MetricsSources& sources);

// Process figures from /proc/self (0 where unreadable): resident bytes, open fds, threads.
struct ProcessFigures {
  std::uint64_t resident_bytes = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t threads = 0;
  std::uint64_t max_fds = 0;
};
ProcessFigures read_process_figures();

class MetricsServer {
 public:
  static constexpr std::size_t kMaxRequestBytes = 8192;
  static constexpr std::chrono::seconds kRequestTimeout{10};
  static constexpr int kMaxConnections = 16;

  MetricsServer(asio::io_context& io, std::function<std::string()> render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds `spec` ("HOST:PORT" with an IP literal, "[v6]:PORT", or "unix:/path") and starts
  // accepting. Returns "" or why not. A unix socket path is removed first if it is a stale
  // socket, and again by close().
  std::string listen(const std::string& spec);
  // What listen() bound, for the log: "http://127.0.0.1:9464/metrics" or "unix:/path".
  const std::string& address() const { return address_; }
  void close();

  struct Shared;  // state shared with the connections (metrics.cc)

 private:
  asio::io_context& io_;
  std::shared_ptr<Shared> shared_;
  std::string address_;
  std::string unix_path_;
};

}  // namespace wsgate::daemon
