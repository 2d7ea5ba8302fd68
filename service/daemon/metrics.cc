// The metrics endpoint (see metrics.h): the exposition text and a one-request-per-connection
// HTTP server for it.
#include "service/daemon/metrics.h"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <sstream>
#include <string_view>

#include "service/daemon/platform.h"
#include "service/log/logging.h"

namespace wsgate::daemon {
namespace {

// ---- exposition ------------------------------------------------------------------------------

std::string escape_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(std::string_view name, std::string_view labels, const std::string& value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  void gauge(std::string_view name, std::string_view help, std::uint64_t value) {
    family(name, "gauge", help);
    sample(name, "", value);
  }
  // Milliseconds in, seconds out (the Prometheus base unit).
  void histogram(std::string_view name, std::string_view help, const rpc::LatencyHistogram::Snapshot& s) {
    family(name, "histogram", help);
    const std::string bucket = std::string(name) + "_bucket";
    for (std::size_t i = 0; i < rpc::LatencyHistogram::kBoundsMs.size(); ++i) {
      sample(bucket, "le=\"" + format_double(rpc::LatencyHistogram::kBoundsMs[i] / 1000.0) + "\"",
             s.cumulative[i]);
    }
    sample(bucket, "le=\"+Inf\"", s.count);
    sample(std::string(name) + "_sum", "", format_double(s.sum_ms / 1000.0));
    sample(std::string(name) + "_count", "", s.count);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

// read_process_figures(): per platform, in posix/platform.cc and win32/platform.cc.

std::string render_metrics(const MetricsSources& src) {
  Exposition e;
  if (src.registry != nullptr) {
    const rpc::SessionRegistry::Totals t = src.registry->totals();
    e.family("wsgate_sessions_active", "gauge", "Gateway sessions that hold a slot, by state.");
    // Every state is always present (0 included), so a query never sees a series vanish.
    for (const char* state : {"connecting", "open", "closing", "closed"}) {
      auto it = t.active_by_state.find(state);
      e.sample("wsgate_sessions_active", std::string("state=\"") + state + "\"",
               it == t.active_by_state.end() ? 0 : it->second);
    }
    e.family("wsgate_session_opens_total", "counter", "Gateway sessions whose WebSocket opened.");
    e.sample("wsgate_session_opens_total", "", t.opens_total);
    e.family("wsgate_session_failures_total", "counter",
             "Gateway sessions that failed or were refused, by ErrorDetail.cause.");
    for (const auto& [cause, n] : t.failures_by_cause) {
      e.sample("wsgate_session_failures_total", "cause=\"" + escape_label(cause) + "\"", n);
    }
    e.family("wsgate_messages_total", "counter",
             "WebSocket messages: sent = client to upstream, received = upstream to client (live).");
    e.sample("wsgate_messages_total", "direction=\"sent\"", t.messages_sent);
    e.sample("wsgate_messages_total", "direction=\"received\"", t.messages_received);
    e.family("wsgate_payload_bytes_total", "counter",
             "WebSocket payload bytes: sent = client to upstream, received = upstream to client (live).");
    e.sample("wsgate_payload_bytes_total", "direction=\"sent\"", t.bytes_sent);
    e.sample("wsgate_payload_bytes_total", "direction=\"received\"", t.bytes_received);
    e.histogram("wsgate_connect_latency_seconds", "Time to resolve and connect to the upstream (TCP).",
                src.registry->connect_latency());
    e.histogram("wsgate_handshake_latency_seconds", "Time of TLS and the WebSocket opening handshake.",
                src.registry->handshake_latency());
  }
  if (src.protocol_handles) {
    e.gauge("wsgate_protocol_handles", "ProtocolComponent handles that exist.", src.protocol_handles());
  }
  if (src.protocol_accounted_bytes) {
    e.gauge("wsgate_protocol_queued_bytes",
            "Bytes queued in all ProtocolComponent handles (limits.max_protocol_memory_bytes).",
            src.protocol_accounted_bytes());
  }
  if (src.grpc_streams_active) {
    e.gauge("wsgate_grpc_calls_active", "gRPC calls in progress (all services).", src.grpc_streams_active());
  }
  if (src.grpc_streams_total) {
    e.family("wsgate_grpc_calls_total", "counter", "gRPC calls started (all services).");
    e.sample("wsgate_grpc_calls_total", "", src.grpc_streams_total());
  }
  if (src.gateway_queued_bytes) {
    e.gauge("wsgate_gateway_queued_bytes",
            "Payload bytes Gateway sessions hold, both directions (limits.memory_budget_bytes).",
            src.gateway_queued_bytes());
  }
  if (src.fd_budget_in_use) {
    e.gauge("wsgate_fd_budget_in_use", "File descriptors the fd budget counts as in use.",
            src.fd_budget_in_use());
  }
  const ProcessFigures p = read_process_figures();
  e.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", p.resident_bytes);
  e.gauge("process_open_fds", "Open file descriptors.", p.open_fds);
  e.gauge("process_max_fds", "The open-file limit (soft).", p.max_fds);
  e.gauge("process_threads", "Threads of the process.", p.threads);
  return e.take();
}

// ---- the HTTP server -------------------------------------------------------------------------

struct MetricsServer::Shared {
  explicit Shared(asio::io_context& io) : strand(asio::make_strand(io)) {}
  std::function<std::string()> render;
  std::atomic<int> connections{0};
  asio::strand<asio::io_context::executor_type> strand;  // the acceptors' operations
  std::optional<asio::ip::tcp::acceptor> tcp;
  std::optional<asio::local::stream_protocol::acceptor> local;
};

namespace {

std::string response(std::string_view status, std::string_view content_type, const std::string& body,
                     bool head, std::string_view extra_headers = {}) {
  std::string out = "HTTP/1.1 ";
  out += status;
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size());
  out += "\r\nConnection: close\r\n";
  out += extra_headers;
  out += "\r\n";
  if (!head) out += body;
  return out;
}

// What to answer to one request head ("GET /metrics HTTP/1.1\r\n...").
std::string answer(std::string_view head, const std::function<std::string()>& render) {
  const std::size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) {
    return response("400 Bad Request", "text/plain; charset=utf-8", "bad request\n", false);
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  const bool head_only = method == "HEAD";
  auto logged = [&](int status, std::string out) {
    log::log_event(*log::logger("daemon"), spdlog::level::debug, "metrics request",
                   {{"method", method}, {"path", target}, {"status", status}});
    return out;
  };
  if (target != "/metrics") {
    return logged(404, response("404 Not Found", "text/plain; charset=utf-8",
                                "only /metrics is served here\n", head_only));
  }
  if (method != "GET" && !head_only) {
    return logged(405, response("405 Method Not Allowed", "text/plain; charset=utf-8", "use GET\n", false,
                                "Allow: GET, HEAD\r\n"));
  }
  return logged(200, response("200 OK", "text/plain; version=0.0.4; charset=utf-8", render(), head_only));
}

template <class Socket>
class Connection : public std::enable_shared_from_this<Connection<Socket>> {
 public:
  Connection(Socket socket, std::shared_ptr<MetricsServer::Shared> shared)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), shared_(std::move(shared)) {
    ++shared_->connections;
  }
  ~Connection() { --shared_->connections; }

  void start() {
    auto self = this->shared_from_this();
    timer_.expires_after(MetricsServer::kRequestTimeout);
    timer_.async_wait([self](const asio::error_code& ec) {
      if (!ec) {
        log::logger("daemon")->debug(
            "metrics: request not complete within {} s, connection closed",
            MetricsServer::kRequestTimeout.count());
        asio::error_code ignored;
        self->socket_.close(ignored);
      }
    });
    read();
  }

 private:
  void read() {
    auto self = this->shared_from_this();
    socket_.async_read_some(asio::buffer(chunk_), [self](const asio::error_code& ec, std::size_t n) {
      if (ec) return self->finish();
      self->request_.append(self->chunk_.data(), n);
      if (self->request_.find("\r\n\r\n") != std::string::npos) {
        return self->write(answer(self->request_, self->shared_->render));
      }
      if (self->request_.size() >= MetricsServer::kMaxRequestBytes) {
        return self->write(response("431 Request Header Fields Too Large", "text/plain; charset=utf-8",
                                    "request head too large\n", false));
      }
      self->read();
    });
  }

  void write(std::string out) {
    out_ = std::move(out);
    auto self = this->shared_from_this();
    asio::async_write(socket_, asio::buffer(out_), [self](const asio::error_code&, std::size_t) {
      asio::error_code ignored;
      self->socket_.shutdown(Socket::shutdown_both, ignored);
      self->finish();
    });
  }

  void finish() {
    asio::error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
  }

  Socket socket_;
  asio::steady_timer timer_;
  std::shared_ptr<MetricsServer::Shared> shared_;
  std::array<char, 2048> chunk_{};
  std::string request_;
  std::string out_;
};

template <class Acceptor>
void accept_loop(Acceptor& acceptor, std::shared_ptr<MetricsServer::Shared> shared, asio::io_context& io) {
  acceptor.async_accept(
      asio::make_strand(io),
      [&acceptor, shared, &io](const asio::error_code& ec, typename Acceptor::protocol_type::socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
        if (!ec) {
          if (shared->connections.load() >= MetricsServer::kMaxConnections) {
            asio::error_code ignored;
            socket.close(ignored);  // a scraper retries at its next interval
          } else {
            std::make_shared<Connection<typename Acceptor::protocol_type::socket>>(std::move(socket), shared)
                ->start();
          }
        }
        // EMFILE and the like: the next accept is tried at once; the daemon's fd budget keeps
        // room for this listener's few connections.
        accept_loop(acceptor, shared, io);
      });
}

}  // namespace

MetricsServer::MetricsServer(asio::io_context& io, std::function<std::string()> render)
    : io_(io), shared_(std::make_shared<Shared>(io)) {
  shared_->render = std::move(render);
}

MetricsServer::~MetricsServer() { close(); }

std::string MetricsServer::listen(const std::string& spec) {
  asio::error_code ec;
  if (spec.rfind("unix:", 0) == 0) {
    const std::string path = spec.substr(5);
    std::error_code fs_ec;
    const std::filesystem::file_status st = std::filesystem::symlink_status(path, fs_ec);
    if (!fs_ec && std::filesystem::exists(st)) {
      if (!platform::is_socket_file(st)) return "metrics.listen: " + path + " exists and is not a socket";
      asio::local::stream_protocol::socket probe(io_);
      probe.connect(asio::local::stream_protocol::endpoint(path), ec);
      if (!ec) return "metrics.listen: another process is already listening on " + path;
      std::filesystem::remove(path, fs_ec);  // a stale socket from an earlier run
    }
    auto& acceptor = shared_->local.emplace(shared_->strand);
    acceptor.open(asio::local::stream_protocol(), ec);
    if (!ec) acceptor.bind(asio::local::stream_protocol::endpoint(path), ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return "metrics.listen: cannot listen on " + path + ": " + ec.message();
    unix_path_ = path;
    address_ = "unix:" + path;
    asio::post(shared_->strand, [shared = shared_, &io = io_] { accept_loop(*shared->local, shared, io); });
    return "";
  }
  const std::size_t colon = spec.rfind(':');
  if (colon == std::string::npos) return "metrics.listen: expected HOST:PORT or unix:/path, got " + spec;
  std::string host = spec.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) return "metrics.listen: " + host + " is not an IP address";
  const unsigned long port = std::strtoul(spec.c_str() + colon + 1, nullptr, 10);
  const asio::ip::tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  auto& acceptor = shared_->tcp.emplace(shared_->strand);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return "metrics.listen: cannot listen on " + spec + ": " + ec.message();
  const asio::ip::tcp::endpoint bound = acceptor.local_endpoint(ec);
  const std::string shown = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                                    : bound.address().to_string();
  address_ = "http://" + shown + ":" + std::to_string(bound.port()) + "/metrics";
  asio::post(shared_->strand, [shared = shared_, &io = io_] { accept_loop(*shared->tcp, shared, io); });
  return "";
}

void MetricsServer::close() {
  auto close_acceptors = [](Shared& shared) {
    asio::error_code ignored;
    if (shared.tcp) shared.tcp->close(ignored);
    if (shared.local) shared.local->close(ignored);
  };
  if (io_.stopped()) {
    close_acceptors(*shared_);  // no thread runs the io_context: nothing can race with us
  } else {
    // On the acceptors' strand: an accept handler may be running on an I/O thread right now.
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> closed = done->get_future();
    asio::post(shared_->strand, [shared = shared_, done, close_acceptors] {
      close_acceptors(*shared);
      done->set_value();
    });
    closed.wait_for(std::chrono::seconds(5));
  }
  if (!unix_path_.empty()) {
    std::error_code ec;
    std::filesystem::remove(unix_path_, ec);
    unix_path_.clear();
  }
}

}  // namespace wsgate::daemon
