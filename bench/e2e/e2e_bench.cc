// e2e_bench: end-to-end benchmark of wsgated (bench/README.md, "e2e"; shared/bench/PROTOCOL.md).
//
// Three legs against the same Beast echo server (e2e_echo_server, its own process), same run,
// interleaved A/B/C:
//   1 direct   a Beast WebSocket client (sync) -> echo server over TCP 127.0.0.1
//   2 grpc     the same gRPC client -> a trivial Gateway::Connect echo (callback API, the daemon's
//              message-size settings) in its own process (this binary, --serve-grpc-echo) on a
//              unix socket: what gRPC itself costs
//   3 gateway  the same gRPC client -> unix socket -> wsgated -> ws:// -> echo server and back
// Cases: closed-loop 64 B / 4 KiB round trips, pipelined 64 B (window 64), 1 MiB throughput, RSS
// per idle session (wsgated's VmRSS) and wsgated's CPU over 10 s with the idle sessions open,
// opens per second at concurrency 1/8/64, and 64 B / 16 KiB text through the gateway with and
// without permessage-deflate (the echo server compresses when offered).
// Every loop is bounded in count; a watchdog ends the run (and its children) after --timeout s.
#include <utility>  // before Boost 1.74 Asio: awaitable.hpp uses std::exchange
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <functional>
#include <memory>
#include <mutex>
#include <semaphore>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "wsgate/v1/gateway.grpc.pb.h"

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using wsgate::v1::ClientMessage;
using wsgate::v1::Gateway;
using wsgate::v1::ServerMessage;

namespace {

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
  int reps = 5;
  int samples = 20000;        // closed loop: per leg and size, over all repetitions
  int pipelined = 20000;      // pipelined 64 B: messages per leg and repetition
  int mib = 48;               // 1 MiB: messages per leg and repetition (window 4)
  std::vector<int> idle = {1000, 5000};
  int burst = 10000;          // burst case: sessions opened, then all closed, per allocator
  std::vector<std::string> allocators = {"glibc", "glibc+trim", "jemalloc", "jemalloc+bg", "mimalloc"};
  int opens = 400;            // opens per leg, concurrency level and repetition
  int timeout_s = 900;
  std::string wsgated = WSGATED_PATH;
  std::string echo_server = E2E_ECHO_SERVER_PATH;
  std::string perf_out;       // perf record -e cpu-clock -g on wsgated during the cases run
  std::string only;           // run these cases (comma-separated): closed, pipelined, mib, idle, opens, wss, burst, deflate
  std::vector<int> wss_idle = {1000, 3000};  // wss: idle sessions (RSS slope)
  int stime_s = 5;            // wss: seconds per `openssl s_time` run
};

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// ---------------------------------------------------------------------------------------------
// Child processes: fork + exec, killed with the driver (PR_SET_PDEATHSIG) and at exit.

std::mutex g_children_mu;
std::vector<pid_t> g_children;

// `env_extra` ("NAME=value") is added to (and overrides) this process's environment.
pid_t spawn(const std::vector<std::string>& args, int* stdout_fd, const std::string& stderr_path,
            int* stdin_fd, const std::vector<std::string>& env_extra = {}) {
  int out_pipe[2] = {-1, -1};
  int in_pipe[2] = {-1, -1};
  if (stdout_fd && ::pipe2(out_pipe, O_CLOEXEC) != 0) return -1;
  if (stdin_fd && ::pipe2(in_pipe, O_CLOEXEC) != 0) return -1;
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // Built before fork: the child of a threaded process must not allocate.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    const bool overridden = std::any_of(env_extra.begin(), env_extra.end(), [&](const std::string& x) {
      return x.compare(0, name.size() + 1, name + "=") == 0;
    });
    if (!overridden) env_strings.push_back(entry);
  }
  env_strings.insert(env_strings.end(), env_extra.begin(), env_extra.end());
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    if (stdout_fd) ::dup2(out_pipe[1], 1);
    if (stdin_fd) ::dup2(in_pipe[0], 0);
    if (!stderr_path.empty()) {
      int fd = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) ::dup2(fd, 2);
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  if (stdout_fd) {
    ::close(out_pipe[1]);
    *stdout_fd = out_pipe[0];
  }
  if (stdin_fd) {
    ::close(in_pipe[0]);
    *stdin_fd = in_pipe[1];
  }
  std::lock_guard lock(g_children_mu);
  g_children.push_back(pid);
  return pid;
}

// SIGTERM, then wait up to `grace`; SIGKILL after that. Returns the wait status (-1 if killed).
int stop_child(pid_t pid, std::chrono::milliseconds grace) {
  ::kill(pid, SIGTERM);
  const auto t0 = Clock::now();
  int status = 0;
  while (true) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) return -1;
    if (Clock::now() - t0 > grace) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      status = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::lock_guard lock(g_children_mu);
  g_children.erase(std::remove(g_children.begin(), g_children.end(), pid), g_children.end());
  return status;
}

void kill_children_now() {
  std::lock_guard lock(g_children_mu);
  for (pid_t p : g_children) ::kill(p, SIGKILL);
}

std::string g_tmpdir;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "e2e_bench: %s\n", what.c_str());
  kill_children_now();
  if (!g_tmpdir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(g_tmpdir, ec);
  }
  ::_exit(1);
}

std::string read_line(int fd, std::chrono::milliseconds timeout) {
  std::string line;
  const auto t0 = Clock::now();
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  while (Clock::now() - t0 < timeout) {
    char c;
    const ssize_t n = ::read(fd, &c, 1);
    if (n == 1) {
      if (c == '\n') return line;
      line.push_back(c);
    } else if (n == 0) {
      break;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  return line;
}

std::string run_cmd(const std::string& cmd) {
  std::string out;
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    ::pclose(f);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// The sum of the named fields of a /proc status file ("Name:\tvalue ..." lines), read once;
// -1 when none of them is there (the process or thread is gone).
long status_fields(const std::filesystem::path& file, std::initializer_list<std::string_view> names) {
  std::ifstream f(file);
  std::string line;
  long total = -1;
  while (std::getline(f, line)) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string_view name(line.data(), colon);
    if (std::find(names.begin(), names.end(), name) == names.end()) continue;
    total = std::max(total, 0L) + std::strtol(line.c_str() + colon + 1, nullptr, 10);
  }
  return total;
}

std::filesystem::path proc_status(pid_t pid) {
  return "/proc/" + std::to_string(pid) + "/status";
}

long vm_rss_kb(pid_t pid) { return status_fields(proc_status(pid), {"VmRSS"}); }

int count_threads(pid_t pid) {
  return static_cast<int>(status_fields(proc_status(pid), {"Threads"}));
}

// CPU time (user + system) in seconds, from one reading of /proc/PID/stat: the process's own
// (fields 14 and 15) and that of its children it has waited for (fields 16 and 17); -1 when the
// process is gone.
struct CpuTimes {
  double own = -1;
  double reaped_children = -1;
};

CpuTimes cpu_times(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return {};
  std::istringstream rest(stat.substr(close_paren + 2));
  std::string field;
  unsigned long long ticks[4] = {};  // utime, stime, cutime, cstime
  for (int i = 3; i <= 17 && rest >> field; ++i) {  // field 3 is the state
    if (i >= 14) ticks[i - 14] = std::stoull(field);
  }
  const double per_second = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return {static_cast<double>(ticks[0] + ticks[1]) / per_second,
          static_cast<double>(ticks[2] + ticks[3]) / per_second};
}

double cpu_seconds(pid_t pid) { return cpu_times(pid).own; }

// Context switches (voluntary + involuntary) of all the process's live threads, summed over
// /proc/PID/task/*/status. A thread that exits between two readings takes its count with it; the
// daemons here keep their threads.
long context_switches(pid_t pid) {
  long total = 0;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    total += std::max(0L, status_fields(task.path() / "status",
                                        {"voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"}));
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Statistics

struct Summary {
  std::size_t n = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};

Summary summarize(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    std::size_t i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
    return v[std::min(i, v.size() - 1)];
  };
  s.n = v.size();
  s.p50 = at(0.50);
  s.p90 = at(0.90);
  s.p99 = at(0.99);
  s.p999 = at(0.999);
  s.max = v.back();
  return s;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

std::string spread(const std::vector<double>& v, const char* fmt = "%.1f") {
  if (v.empty()) return "-";
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  char a[32], b[32];
  std::snprintf(a, sizeof a, fmt, *lo);
  std::snprintf(b, sizeof b, fmt, *hi);
  return std::string(a) + "–" + b;
}

// ---------------------------------------------------------------------------------------------
// Pre-flight: raw-socket 64 B ping-pong to an echo thread (TCP 127.0.0.1 and a UNIX socketpair).

Summary raw_pingpong(bool use_tcp, int samples) {
  int a = -1, b = -1;
  int listener = -1;
  if (use_tcp) {
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listener, 1);
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    a = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(a, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("preflight connect");
    b = ::accept(listener, nullptr, nullptr);
    int one = 1;
    ::setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  } else {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) die("socketpair");
    a = sv[0];
    b = sv[1];
  }
  auto read_full = [](int fd, char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t r = ::read(fd, p, n);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  };
  std::thread echo([&] {
    char buf[64];
    while (read_full(b, buf, 64)) {
      if (::write(b, buf, 64) != 64) break;
    }
  });
  char buf[64] = {};
  std::vector<double> lat;
  lat.reserve(static_cast<std::size_t>(samples));
  for (int i = 0; i < samples + 1000; ++i) {
    const auto t0 = Clock::now();
    if (::write(a, buf, 64) != 64 || !read_full(a, buf, 64)) die("preflight ping-pong");
    if (i >= 1000) lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  ::shutdown(a, SHUT_WR);
  echo.join();
  ::close(a);
  ::close(b);
  if (listener >= 0) ::close(listener);
  return summarize(std::move(lat));
}

// ---------------------------------------------------------------------------------------------
// Leg 1: direct WebSocket client (Beast, synchronous).

class DirectConn {
 public:
  DirectConn(net::io_context& ioc, unsigned short port) : ws_(ioc) {
    tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port);
    ws_.next_layer().connect(ep);
    ws_.next_layer().set_option(tcp::no_delay(true));
    ws_.read_message_max(64u << 20);
    ws_.auto_fragment(false);
    ws_.handshake("127.0.0.1:" + std::to_string(port), "/");
    ws_.binary(true);
  }
  bool round_trip(const std::string& payload) {
    beast::error_code ec;
    ws_.write(net::buffer(payload), ec);
    if (ec) return false;
    ws_.read(buffer_, ec);
    if (ec) return false;
    const bool ok = buffer_.size() == payload.size();
    buffer_.consume(buffer_.size());
    return ok;
  }

 private:
  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buffer_;
};

// ---------------------------------------------------------------------------------------------
// Legs 2 and 3: the gRPC client (synchronous API, one bidi stream per session).

struct GrpcConn {
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientReaderWriter<ClientMessage, ServerMessage>> rw;
  ClientMessage out;
  ServerMessage in;

  // `ca_pem`: wss://, the PEM the server's certificate is checked against; `compression`: the
  // session's Open.compression.
  bool open(Gateway::Stub& stub, const std::string& url, std::string* error,
            const std::string* ca_pem = nullptr,
            const wsgate::v1::Compression* compression = nullptr) {
    ctx = std::make_unique<grpc::ClientContext>();
    rw = stub.Connect(ctx.get());
    ClientMessage m;
    m.mutable_open()->set_url(url);
    if (compression != nullptr) *m.mutable_open()->mutable_compression() = *compression;
    if (ca_pem) m.mutable_open()->mutable_tls()->set_ca_pem(*ca_pem);
    if (!rw->Write(m)) {
      *error = "open: write failed: " + finish();
      return false;
    }
    ServerMessage r;
    if (!rw->Read(&r) || !r.has_opened()) {
      *error = "open: no `opened`: " + r.ShortDebugString() + " " + finish();
      return false;
    }
    return true;
  }
  void set_payload(const std::string& payload) { out.set_binary(payload); }
  void set_text(const std::string& payload) { out.set_text(payload); }
  bool send() { return rw->Write(out); }
  bool receive(std::size_t expect) {
    return rw->Read(&in) && in.has_message() && in.message().data().size() == expect;
  }
  bool round_trip(std::size_t expect) { return send() && receive(expect); }
  std::string finish() {
    if (!rw) return "";
    grpc::Status st = rw->Finish();
    rw.reset();
    return st.ok() ? std::string("OK") : std::to_string(st.error_code()) + " " + st.error_message();
  }
  // Clean close: Close{1000}, wait for `closed`, half-close, finish.
  void close() {
    if (!rw) return;
    ClientMessage m;
    m.mutable_close()->set_code(1000);
    if (rw->Write(m)) {
      ServerMessage r;
      while (rw->Read(&r) && !r.has_closed()) {
      }
    }
    rw->WritesDone();
    finish();
  }
  // Abort (the gateway sends close 1001 upstream).
  void cancel() {
    if (!rw) return;
    ctx->TryCancel();
    rw->Finish();
    rw.reset();
  }
};

std::shared_ptr<grpc::Channel> make_channel(const std::string& socket_path, int id) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(68 << 20);
  args.SetMaxSendMessageSize(68 << 20);
  args.SetInt("bench_channel_id", id);  // distinct channels get distinct connections
  return grpc::CreateCustomChannel("unix:" + socket_path, grpc::InsecureChannelCredentials(), args);
}

// ---------------------------------------------------------------------------------------------
// Leg 2's server: Gateway::Connect that answers `open` with `opened` and echoes text/binary as
// `message`. The callback API, like wsgated, and wsgated's message-size limits (68 MiB).

class EchoReactor : public grpc::ServerBidiReactor<ClientMessage, ServerMessage> {
 public:
  EchoReactor() { StartRead(&in_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    out_.Clear();
    switch (in_.kind_case()) {
      case ClientMessage::kOpen:
        out_.mutable_opened()->set_session_id("echo");
        out_.mutable_opened()->set_http_status(101);
        break;
      case ClientMessage::kText: {
        auto* m = out_.mutable_message();
        m->set_text(true);
        m->set_data(std::move(*in_.mutable_text()));
        m->set_final(true);
        break;
      }
      case ClientMessage::kBinary: {
        auto* m = out_.mutable_message();
        m->set_data(std::move(*in_.mutable_binary()));
        m->set_final(true);
        break;
      }
      case ClientMessage::kClose: {
        auto* c = out_.mutable_closed();
        c->set_code(in_.close().code());
        c->set_initiator(wsgate::v1::INITIATOR_CLIENT);
        c->set_clean(true);
        break;
      }
      default:
        StartRead(&in_);
        return;
    }
    StartWrite(&out_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    StartRead(&in_);
  }
  void OnDone() override { delete this; }

 private:
  ClientMessage in_;
  ServerMessage out_;
};

class EchoService final : public Gateway::CallbackService {
  grpc::ServerBidiReactor<ClientMessage, ServerMessage>* Connect(
      grpc::CallbackServerContext*) override {
    return new EchoReactor;
  }
};

int serve_grpc_echo(const std::string& path) {
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  EchoService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + path, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(68 << 20);
  builder.SetMaxSendMessageSize(68 << 20);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) return 1;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  sigwait(&set, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The benchmark

const char* kLegName[3] = {"1 direct", "2 grpc-only", "3 gateway"};

struct Env {
  unsigned short echo_port = 0;
  std::string url;
  unsigned short tls_port = 0;  // wss case: the echo server's TLS 1.3 port (0: not started)
  std::string wss_url, ca_pem;
  pid_t wsgated = -1;
  pid_t grpc_echo = -1;
  pid_t echo_server = -1;
  std::string gw_socket, echo_socket;
  std::unique_ptr<Gateway::Stub> gw_stub, echo_stub;
  net::io_context ioc;
};

// What the processes spent while one leg ran: CPU time and context switches, read before and
// after each stretch of the leg (cost_now) and summed per leg, printed per message. On a machine
// whose CPUs the run saturates, throughput follows the total CPU per message, so the totals of
// two legs bound the ratio of their rates; the switches count the thread hand-offs (wake-ups).
// "tools" is what the bench's finished children used (`openssl s_time`: /proc/self/stat's
// cutime and cstime; the servers are reaped only at the end).
enum Proc { kBench, kEchoServer, kGrpcEcho, kWsgated, kTools, kProcs };
const char* const kProcName[kProcs] = {"bench (client)", "echo server", "gRPC echo", "wsgated",
                                       "tools (s_time)"};

struct CostSnapshot {
  double cpu[kProcs] = {};
  long switches[kProcs] = {};
  Clock::time_point at;
};

CostSnapshot cost_now(const Env& env) {
  const pid_t pids[kWsgated + 1] = {::getpid(), env.echo_server, env.grpc_echo, env.wsgated};
  CostSnapshot s;
  for (int p = 0; p <= kWsgated; ++p) {
    if (pids[p] <= 0) continue;
    const CpuTimes cpu = cpu_times(pids[p]);
    s.cpu[p] = cpu.own;
    if (p == kBench) s.cpu[kTools] = cpu.reaped_children;
    s.switches[p] = context_switches(pids[p]);
  }
  s.at = Clock::now();
  return s;
}

struct Cost {
  double cpu[kProcs] = {};
  double switches[kProcs] = {};
  double wall = 0;
  double count = 0;  // messages echoed, or opens
  void add(const CostSnapshot& before, const CostSnapshot& after, double n) {
    for (int p = 0; p < kProcs; ++p) {
      cpu[p] += after.cpu[p] - before.cpu[p];
      switches[p] += static_cast<double>(after.switches[p] - before.switches[p]);
    }
    wall += std::chrono::duration<double>(after.at - before.at).count();
    count += n;
  }
  double total_cpu() const {
    double t = 0;
    for (double c : cpu) t += c;
    return t;
  }
  double cpu_per_item() const { return total_cpu() / std::max(1.0, count); }
};

// One table: per leg, CPU µs and context switches per item (`per`: a message echoed, an open) by
// process, and how busy the CPUs were (all processes' CPU time over the wall time). Processes
// that did nothing in any leg are left out.
void print_costs(const std::string& what, const char* per,
                 const std::vector<std::pair<std::string, const Cost*>>& legs) {
  bool shown[kProcs] = {};
  for (const auto& [name, c] : legs) {
    for (int p = 0; p < kProcs; ++p) shown[p] = shown[p] || c->cpu[p] > 0 || c->switches[p] > 0;
  }
  std::printf("\n%s: per %s, CPU µs / context switches, by process (/proc, all threads); busy = "
              "CPU time of all over wall time, in CPUs of %u\n| leg |",
              what.c_str(), per, std::thread::hardware_concurrency());
  int columns = 0;
  for (int p = 0; p < kProcs; ++p) {
    if (shown[p]) std::printf(" %s |", kProcName[p]), ++columns;
  }
  std::printf(" total | busy |\n|---|");
  for (int i = 0; i < columns + 2; ++i) std::printf("---|");
  std::printf("\n");
  for (const auto& [name, c] : legs) {
    const double n = std::max(1.0, c->count);
    std::printf("| %s |", name.c_str());
    double switches = 0;
    for (int p = 0; p < kProcs; ++p) {
      switches += c->switches[p];
      if (shown[p]) std::printf(" %.1f / %.2f |", 1e6 * c->cpu[p] / n, c->switches[p] / n);
    }
    std::printf(" %.1f / %.2f | %.2f |\n", 1e6 * c->total_cpu() / n, switches / n,
                c->wall > 0 ? c->total_cpu() / c->wall : 0.0);
  }
}

// The legs' rows of a cost table, by kLegName.
std::vector<std::pair<std::string, const Cost*>> leg_rows(const Cost* costs,
                                                          std::initializer_list<int> legs) {
  std::vector<std::pair<std::string, const Cost*>> rows;
  for (int leg : legs) rows.emplace_back(kLegName[leg], &costs[leg]);
  return rows;
}

std::string payload_of(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

// Text as applications send it (JSON records), so compression has something realistic to do.
std::string json_text_of(std::size_t n) {
  std::string out;
  for (int i = 0; out.size() < n; ++i) {
    out += "{\"seq\":" + std::to_string(i) + ",\"symbol\":\"WSG" + std::to_string(i % 7) +
           "\",\"price\":" + std::to_string(100 + (i * 37) % 900) + "." +
           std::to_string(i % 100) + ",\"side\":\"" + (i % 2 ? "buy" : "sell") + "\"},";
  }
  out.resize(n);
  return out;
}

// permessage-deflate: closed-loop text round trips through the gateway (leg 3), one session
// without compression and one with it (threshold 1, so 64 B is compressed too), interleaved.
void deflate_case(Env& env, const Options& o) {
  const std::size_t sizes[2] = {64, 16384};
  const int per_rep = std::max(1, o.samples / o.reps);
  wsgate::v1::Compression on;
  on.set_mode(wsgate::v1::Compression::COMPRESSION_MODE_ON);
  on.set_threshold_bytes(1);
  GrpcConn conn[2];
  std::string err;
  if (!conn[0].open(*env.gw_stub, env.url, &err)) die("deflate, plain: " + err);
  if (!conn[1].open(*env.gw_stub, env.url, &err, nullptr, &on)) die("deflate, compressed: " + err);
  const char* name[2] = {"3 gateway, no compression", "3 gateway, permessage-deflate"};
  std::printf("\n## permessage-deflate: closed-loop JSON text through the gateway, %d samples per "
              "mode and size (%d reps x %d), interleaved\n", per_rep * o.reps, o.reps, per_rep);
  std::printf("| size | mode | p50 µs | p99 µs | p50 per rep |\n|---|---|---|---|---|\n");
  for (std::size_t size : sizes) {
    const std::string text = json_text_of(size);
    std::vector<double> all[2], rep_p50[2];
    auto one = [&](int k) {
      conn[k].set_text(text);
      const auto t0 = Clock::now();
      if (!conn[k].round_trip(size)) die(std::string("round trip failed: ") + name[k]);
      return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    };
    for (int k = 0; k < 2; ++k) {
      for (int i = 0; i < 200; ++i) one(k);  // warm-up
    }
    for (int r = 0; r < o.reps; ++r) {
      for (int j = 0; j < 2; ++j) {
        const int k = (r + j) % 2;
        std::vector<double> rep;
        for (int i = 0; i < per_rep; ++i) rep.push_back(one(k));
        rep_p50[k].push_back(summarize(rep).p50);
        all[k].insert(all[k].end(), rep.begin(), rep.end());
      }
    }
    for (int k = 0; k < 2; ++k) {
      const Summary s = summarize(all[k]);
      std::printf("| %zu B | %s | %.1f | %.1f | %.1f [%s] |\n", size, name[k], s.p50, s.p99,
                  median(rep_p50[k]), spread(rep_p50[k]).c_str());
    }
  }
  std::fflush(stdout);
  for (GrpcConn& c : conn) c.close();
}

void closed_loop(Env& env, const Options& o) {
  const std::size_t sizes[2] = {64, 4096};
  const int per_rep = std::max(1, o.samples / o.reps);
  DirectConn direct(env.ioc, env.echo_port);
  GrpcConn legs[2];
  std::string err;
  if (!legs[0].open(*env.echo_stub, env.url, &err)) die("leg 2: " + err);
  if (!legs[1].open(*env.gw_stub, env.url, &err)) die("leg 3: " + err);

  std::printf("\n## Closed loop: one message in flight, %d samples per leg and size (%d reps x %d), "
              "interleaved\n",
              per_rep * o.reps, o.reps, per_rep);
  for (std::size_t size : sizes) {
    const std::string payload = payload_of(size);
    legs[0].set_payload(payload);
    legs[1].set_payload(payload);
    std::vector<double> all[3];
    std::vector<double> rep_p50[3], rep_p99[3], rep_over50, rep_over99;
    auto one = [&](int leg) {
      const auto t0 = Clock::now();
      const bool ok = leg == 0 ? direct.round_trip(payload) : legs[leg - 1].round_trip(size);
      if (!ok) die(std::string("round trip failed on leg ") + kLegName[leg]);
      return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    };
    for (int leg = 0; leg < 3; ++leg) {
      for (int i = 0; i < 500; ++i) one(leg);  // warm-up
    }
    Cost cost[3];
    for (int r = 0; r < o.reps; ++r) {
      std::vector<double> rep[3];
      for (int k = 0; k < 3; ++k) {
        const int leg = (r + k) % 3;
        rep[leg].reserve(static_cast<std::size_t>(per_rep));
        const CostSnapshot before = cost_now(env);
        for (int i = 0; i < per_rep; ++i) rep[leg].push_back(one(leg));
        cost[leg].add(before, cost_now(env), per_rep);
      }
      Summary s[3];
      for (int leg = 0; leg < 3; ++leg) {
        s[leg] = summarize(rep[leg]);
        rep_p50[leg].push_back(s[leg].p50);
        rep_p99[leg].push_back(s[leg].p99);
        all[leg].insert(all[leg].end(), rep[leg].begin(), rep[leg].end());
      }
      rep_over50.push_back(s[2].p50 - s[0].p50);
      rep_over99.push_back(s[2].p99 - s[0].p99);
    }
    std::printf("\n%zu B round trip, µs (all samples pooled; per-rep median p50 [min–max])\n", size);
    std::printf("| leg | n | p50 | p90 | p99 | p99.9 | max | p50 per rep | p99 per rep |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|\n");
    Summary pooled[3];
    for (int leg = 0; leg < 3; ++leg) {
      pooled[leg] = summarize(all[leg]);
      const Summary& s = pooled[leg];
      std::printf("| %s | %zu | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f [%s] | %.1f [%s] |\n",
                  kLegName[leg], s.n, s.p50, s.p90, s.p99, s.p999, s.max, median(rep_p50[leg]),
                  spread(rep_p50[leg]).c_str(), median(rep_p99[leg]),
                  spread(rep_p99[leg]).c_str());
    }
    std::printf("gateway overhead (leg 3 - leg 1), %zu B: p50 %.1f µs (per rep median %.1f [%s]), "
                "p99 %.1f µs (per rep median %.1f [%s]); target <= 60 / <= 200 µs\n",
                size, pooled[2].p50 - pooled[0].p50, median(rep_over50), spread(rep_over50).c_str(),
                pooled[2].p99 - pooled[0].p99, median(rep_over99), spread(rep_over99).c_str());
    std::printf("gRPC-only cost (leg 2 - leg 1), %zu B: p50 %.1f µs, p99 %.1f µs; "
                "gateway beyond gRPC (leg 3 - leg 2): p50 %.1f µs, p99 %.1f µs\n",
                size, pooled[1].p50 - pooled[0].p50, pooled[1].p99 - pooled[0].p99,
                pooled[2].p50 - pooled[1].p50, pooled[2].p99 - pooled[1].p99);
    print_costs("Closed loop " + std::to_string(size) + " B", "message echoed",
                leg_rows(cost, {0, 1, 2}));
    std::fflush(stdout);
  }
  legs[0].close();
  legs[1].close();
}

// Pipelined: a writer thread keeps up to `window` messages in flight; the reader releases a slot
// per echo. Returns messages per second (echoes received).
double pipelined_run(GrpcConn& c, std::size_t size, int count, int window) {
  c.set_payload(payload_of(size));
  std::counting_semaphore<1024> slots(window);
  std::atomic<bool> failed{false};
  const auto t0 = Clock::now();
  std::thread writer([&] {
    for (int i = 0; i < count; ++i) {
      slots.acquire();
      if (failed.load() || !c.send()) {
        failed = true;
        return;
      }
    }
  });
  for (int i = 0; i < count; ++i) {
    if (!c.receive(size)) {
      failed = true;
      slots.release(window);
      break;
    }
    slots.release();
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  writer.join();
  if (failed) die("pipelined run failed");
  return count / secs;
}

void pipelined(Env& env, const Options& o) {
  GrpcConn legs[2];
  std::string err;
  if (!legs[0].open(*env.echo_stub, env.url, &err)) die("leg 2: " + err);
  if (!legs[1].open(*env.gw_stub, env.url, &err)) die("leg 3: " + err);
  pipelined_run(legs[0], 64, 2000, 64);
  pipelined_run(legs[1], 64, 2000, 64);
  std::vector<double> rate[2];
  Cost cost[2];
  for (int r = 0; r < o.reps; ++r) {
    for (int k = 0; k < 2; ++k) {
      const int leg = (r + k) % 2;
      const CostSnapshot before = cost_now(env);
      rate[leg].push_back(pipelined_run(legs[leg], 64, o.pipelined, 64));
      cost[leg].add(before, cost_now(env), o.pipelined);
    }
  }
  std::printf("\n## Pipelined 64 B, window 64, %d messages per leg and rep, %d reps (msg/s)\n",
              o.pipelined, o.reps);
  std::printf("| leg | median | min–max |\n|---|---|---|\n");
  for (int leg = 0; leg < 2; ++leg) {
    std::printf("| %s | %.0f | %s |\n", kLegName[leg + 1], median(rate[leg]),
                spread(rate[leg], "%.0f").c_str());
  }
  std::printf("gateway: %.0f msg/s; target >= 100000\n", median(rate[1]));
  print_costs("Pipelined 64 B", "message echoed",
              {{kLegName[1], &cost[0]}, {kLegName[2], &cost[1]}});
  std::printf("CPU per message, gRPC-only / gateway: %.2f (the bound of the rate ratio while the "
              "CPUs are saturated)\n",
              cost[0].cpu_per_item() / cost[1].cpu_per_item());
  legs[0].close();
  legs[1].close();
  std::fflush(stdout);
}

void mib(Env& env, const Options& o) {
  const std::size_t size = 1u << 20;
  const std::string payload = payload_of(size);
  DirectConn direct(env.ioc, env.echo_port);
  GrpcConn legs[2];
  std::string err;
  if (!legs[0].open(*env.echo_stub, env.url, &err)) die("leg 2: " + err);
  if (!legs[1].open(*env.gw_stub, env.url, &err)) die("leg 3: " + err);
  for (auto& l : legs) pipelined_run(l, size, 8, 4);
  std::vector<double> w4[2], w1[3];
  Cost cost4[2];
  const int closed_count = std::max(4, o.mib / 3);
  for (int r = 0; r < o.reps; ++r) {
    for (int k = 0; k < 2; ++k) {
      const int leg = (r + k) % 2;
      const CostSnapshot before = cost_now(env);
      w4[leg].push_back(pipelined_run(legs[leg], size, o.mib, 4) * static_cast<double>(size) / 1e6);
      cost4[leg].add(before, cost_now(env), o.mib);
    }
    for (int k = 0; k < 3; ++k) {
      const int leg = (r + k) % 3;
      const auto t0 = Clock::now();
      for (int i = 0; i < closed_count; ++i) {
        const bool ok = leg == 0 ? direct.round_trip(payload)
                                 : (legs[leg - 1].set_payload(payload), legs[leg - 1].round_trip(size));
        if (!ok) die("1 MiB round trip failed");
      }
      w1[leg].push_back(closed_count * static_cast<double>(size) / 1e6 /
                        std::chrono::duration<double>(Clock::now() - t0).count());
    }
  }
  std::printf("\n## 1 MiB messages, MB/s echoed (each way), %d reps\n", o.reps);
  std::printf("| leg | window 4 (%d msgs/rep) median [min–max] | window 1 (%d msgs/rep) median [min–max] |\n",
              o.mib, closed_count);
  std::printf("|---|---|---|\n");
  for (int leg = 0; leg < 3; ++leg) {
    std::printf("| %s | %s | %.0f [%s] |\n", kLegName[leg],
                leg == 0 ? "-"
                         : (std::to_string(static_cast<long>(median(w4[leg - 1]))) + " [" +
                            spread(w4[leg - 1], "%.0f") + "]")
                               .c_str(),
                median(w1[leg]), spread(w1[leg], "%.0f").c_str());
  }
  std::vector<double> ratio;
  for (int r = 0; r < o.reps; ++r) ratio.push_back(w4[1][static_cast<std::size_t>(r)] / w4[0][static_cast<std::size_t>(r)]);
  std::printf("gateway / grpc-only, window 4: %.0f %% (per rep %s %%); window 1: %.0f %%; target >= 90 %%\n",
              100 * median(ratio), spread([&] { auto v = ratio; for (auto& x : v) x *= 100; return v; }(), "%.0f").c_str(),
              100 * median(w1[2]) / median(w1[1]));
  print_costs("1 MiB, window 4", "message echoed",
              {{kLegName[1], &cost4[0]}, {kLegName[2], &cost4[1]}});
  legs[0].close();
  legs[1].close();
  std::fflush(stdout);
}

void idle(Env& env, const Options& o) {
  auto channel = make_channel(env.gw_socket, 100);
  auto stub = Gateway::NewStub(channel);
  std::vector<std::unique_ptr<GrpcConn>> sessions;
  std::string err;
  // Warm up the daemon's allocator and gRPC (one session opened and closed), then settle.
  {
    GrpcConn c;
    if (!c.open(*stub, env.url, &err)) die("idle warm-up: " + err);
    c.close();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const long base = vm_rss_kb(env.wsgated);
  std::printf("\n## Idle ws:// sessions: wsgated VmRSS (KB)\n");
  std::printf("| sessions | VmRSS KB | threads | KB per session vs 0 | KB per session vs previous | open time s |\n");
  std::printf("|---|---|---|---|---|---|\n");
  std::printf("| 0 | %ld | %d | - | - | - |\n", base, count_threads(env.wsgated));
  long prev = base;
  std::size_t prev_n = 0;
  for (int n : o.idle) {
    const auto t0 = Clock::now();
    while (sessions.size() < static_cast<std::size_t>(n)) {
      auto c = std::make_unique<GrpcConn>();
      if (!c->open(*stub, env.url, &err)) die("idle open #" + std::to_string(sessions.size()) + ": " + err);
      sessions.push_back(std::move(c));
    }
    const double open_s = ms_since(t0) / 1000;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const long rss = vm_rss_kb(env.wsgated);
    std::printf("| %d | %ld | %d | %.2f | %.2f | %.1f |\n", n, rss, count_threads(env.wsgated),
                static_cast<double>(rss - base) / n,
                static_cast<double>(rss - prev) / static_cast<double>(static_cast<std::size_t>(n) - prev_n), open_s);
    std::fflush(stdout);
    prev = rss;
    prev_n = static_cast<std::size_t>(n);
  }
  std::printf("target <= 8 KB per ws:// session (slope)\n");
  {
    // What the idle sessions cost in CPU: wsgated's user + system time over 10 s of doing
    // nothing but keeping them (keepalive timers included).
    constexpr double kWindowS = 10;
    const double c0 = cpu_seconds(env.wsgated);
    const auto w0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(kWindowS * 1000)));
    const double wall = ms_since(w0) / 1000;
    const double used = cpu_seconds(env.wsgated) - c0;
    std::printf("%zu idle sessions: wsgated used %.3f s CPU in %.1f s = %.2f %% of one CPU; "
                "target <= 1 %%\n", prev_n, used, wall, 100 * used / wall);
    std::fflush(stdout);
  }
  const auto t0 = Clock::now();
  for (auto& s : sessions) s->cancel();
  sessions.clear();
  // The same idle streams against leg 2's server: what one idle gRPC stream (callback API, one
  // reactor with a pending read) costs by itself, without any WebSocket connection.
  {
    auto ch = make_channel(env.echo_socket, 101);
    auto st = Gateway::NewStub(ch);
    std::vector<std::unique_ptr<GrpcConn>> g;
    {
      GrpcConn c;
      if (!c.open(*st, env.url, &err)) die("idle grpc warm-up: " + err);
      c.close();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const long gbase = vm_rss_kb(env.grpc_echo);
    std::printf("leg 2 server (gRPC echo only), VmRSS KB: 0 sessions %ld", gbase);
    for (int n : o.idle) {
      while (g.size() < static_cast<std::size_t>(n)) {
        auto c = std::make_unique<GrpcConn>();
        if (!c->open(*st, env.url, &err)) die("idle grpc open: " + err);
        g.push_back(std::move(c));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      const long rss = vm_rss_kb(env.grpc_echo);
      std::printf("; %d sessions %ld (%.2f KB per session)", n, rss,
                  static_cast<double>(rss - gbase) / n);
    }
    std::printf("\n");
    for (auto& c : g) c->cancel();
  }
  // Let the daemon finish the upstream closes before the next case.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  std::printf("(closed %s sessions in %.1f s; VmRSS after close %ld KB)\n",
              std::to_string(prev_n).c_str(), ms_since(t0) / 1000, vm_rss_kb(env.wsgated));
  std::fflush(stdout);
}

void opens(Env& env, const Options& o) {
  const int levels[3] = {1, 8, 64};
  std::printf("\n## Opens per second (ws://, sessions held open until the level's count is reached, "
              "then closed untimed), %d opens per leg, level and rep, %d reps\n",
              o.opens, o.reps);
  std::printf("| concurrency | leg | opens/s median [min–max] | open latency p50 / p99 µs |\n");
  std::printf("|---|---|---|---|\n");
  auto channel2 = make_channel(env.echo_socket, 200);
  auto channel3 = make_channel(env.gw_socket, 201);
  auto stub2 = Gateway::NewStub(channel2);
  auto stub3 = Gateway::NewStub(channel3);
  std::vector<double> gw_rates;
  for (int c : levels) {
    std::vector<double> rate[3], lat[3];
    Cost cost[3];
    for (int r = 0; r < o.reps; ++r) {
      for (int k = 0; k < 3; ++k) {
        const int leg = (r + k) % 3;
        std::vector<std::unique_ptr<DirectConn>> direct(static_cast<std::size_t>(o.opens));
        std::vector<std::unique_ptr<GrpcConn>> grpcs(static_cast<std::size_t>(o.opens));
        std::vector<double> l(static_cast<std::size_t>(o.opens));
        std::atomic<int> next{0};
        std::atomic<bool> failed{false};
        std::string fail_msg;
        std::mutex fail_mu;
        const CostSnapshot before = cost_now(env);
        const auto t0 = Clock::now();
        std::vector<std::thread> threads;
        for (int t = 0; t < c; ++t) {
          threads.emplace_back([&] {
            // Synchronous Beast calls on distinct sockets may share env.ioc across threads: it is
            // never run, and it outlives the connections.
            net::io_context& ioc = env.ioc;
            while (!failed) {
              const int i = next.fetch_add(1);
              if (i >= o.opens) return;
              const auto s0 = Clock::now();
              const auto idx = static_cast<std::size_t>(i);
              try {
                if (leg == 0) {
                  direct[idx] = std::make_unique<DirectConn>(ioc, env.echo_port);
                } else {
                  grpcs[idx] = std::make_unique<GrpcConn>();
                  std::string e;
                  if (!grpcs[idx]->open(leg == 1 ? *stub2 : *stub3, env.url, &e)) throw std::runtime_error(e);
                }
              } catch (const std::exception& ex) {
                std::lock_guard lock(fail_mu);
                fail_msg = ex.what();
                failed = true;
                return;
              }
              l[idx] = std::chrono::duration<double, std::micro>(Clock::now() - s0).count();
            }
          });
        }
        for (auto& t : threads) t.join();
        const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
        cost[leg].add(before, cost_now(env), o.opens);
        if (failed) die(std::string("opens on leg ") + kLegName[leg] + ": " + fail_msg);
        rate[leg].push_back(o.opens / secs);
        lat[leg].insert(lat[leg].end(), l.begin(), l.end());
        for (auto& g : grpcs) {
          if (g) g->cancel();
        }
        direct.clear();
        // Give the daemon (upstream closes) and the echo server time to settle.
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    for (int leg = 0; leg < 3; ++leg) {
      const Summary s = summarize(lat[leg]);
      std::printf("| %d | %s | %.0f [%s] | %.0f / %.0f |\n", c, kLegName[leg], median(rate[leg]),
                  spread(rate[leg], "%.0f").c_str(), s.p50, s.p99);
    }
    print_costs("Opens at concurrency " + std::to_string(c), "open", leg_rows(cost, {0, 1, 2}));
    std::fflush(stdout);
  }
  std::printf("target >= 10000 opens/s through the gateway\n");
}

// ---------------------------------------------------------------------------------------------
// wss:// (PROTOCOL.md): opens per second through the gateway against `openssl s_time -new`
// (a full TLS 1.3 handshake per connection, one at a time) to the same echo server's TLS port,
// interleaved in the same run; then wsgated's RSS per idle wss:// session. The certificate is a
// P-256 one made by openssl when the run starts, trusted through Open.tls.ca_pem.

void wss(Env& env, const Options& o) {
  if (env.tls_port == 0) die("wss: the echo server has no TLS port");
  const std::string stime = "openssl s_time -connect 127.0.0.1:" + std::to_string(env.tls_port) +
                            " -new -tls1_3 -time " + std::to_string(o.stime_s) + " 2>&1";
  std::printf("\n## wss:// opens per second (TLS 1.3, P-256), concurrency 1, %d reps: the gateway "
              "(%d opens per rep, held open, then cancelled untimed) vs `openssl s_time -new "
              "-time %d` against the same server\n",
              o.reps, o.opens, o.stime_s);
  std::printf("| rep | openssl s_time conn/s | gateway opens/s | ratio | gateway open p50 / p99 µs |\n");
  std::printf("|---|---|---|---|---|\n");
  std::vector<double> ratios, gw_rates, st_rates;
  Cost st_cost, gw_cost;
  for (int r = 0; r < o.reps; ++r) {
    // s_time prints "N connections in X real seconds" with X whole; the wall time of the
    // command is finer (it includes starting openssl, a few ms in o.stime_s seconds).
    const CostSnapshot st_before = cost_now(env);
    const auto s0 = Clock::now();
    const std::string out = run_cmd(stime);
    const double st_secs = ms_since(s0) / 1000;
    const CostSnapshot st_after = cost_now(env);
    const auto pos = out.rfind(" connections in ");
    long conns = 0;
    if (pos != std::string::npos) {
      auto start = out.rfind('\n', pos);
      conns = std::strtol(out.c_str() + (start == std::string::npos ? 0 : start + 1), nullptr, 10);
    }
    if (conns <= 0) die("openssl s_time gave no count: " + out);
    const double st_rate = static_cast<double>(conns) / st_secs;
    st_cost.add(st_before, st_after, static_cast<double>(conns));

    std::vector<std::unique_ptr<GrpcConn>> sessions;
    std::vector<double> lat;
    std::string err;
    const CostSnapshot gw_before = cost_now(env);
    const auto g0 = Clock::now();
    for (int i = 0; i < o.opens; ++i) {
      const auto t0 = Clock::now();
      auto c = std::make_unique<GrpcConn>();
      if (!c->open(*env.gw_stub, env.wss_url, &err, &env.ca_pem)) die("wss open: " + err);
      lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      sessions.push_back(std::move(c));
    }
    const double gw_rate = o.opens / (ms_since(g0) / 1000);
    gw_cost.add(gw_before, cost_now(env), o.opens);
    for (auto& c : sessions) c->cancel();
    const Summary sl = summarize(lat);
    std::printf("| %d | %.0f | %.0f | %.2f | %.0f / %.0f |\n", r + 1, st_rate, gw_rate,
                gw_rate / st_rate, sl.p50, sl.p99);
    std::fflush(stdout);
    ratios.push_back(gw_rate / st_rate);
    gw_rates.push_back(gw_rate);
    st_rates.push_back(st_rate);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  std::printf("median: s_time %.0f conn/s, gateway %.0f opens/s, ratio %.2f [%s]; target >= 0.9\n",
              median(st_rates), median(gw_rates), median(ratios), spread(ratios, "%.2f").c_str());
  print_costs("wss:// opens, concurrency 1", "open",
              {{"openssl s_time -new", &st_cost}, {kLegName[2], &gw_cost}});

  // Idle wss:// sessions: wsgated's RSS slope.
  std::vector<std::unique_ptr<GrpcConn>> sessions;
  std::string err;
  {
    GrpcConn c;
    if (!c.open(*env.gw_stub, env.wss_url, &err, &env.ca_pem)) die("wss idle warm-up: " + err);
    c.close();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const long base = vm_rss_kb(env.wsgated);
  std::printf("\n## Idle wss:// sessions: wsgated VmRSS (KB)\n");
  std::printf("| sessions | VmRSS KB | KB per session vs 0 | KB per session vs previous |\n");
  std::printf("|---|---|---|---|\n| 0 | %ld | - | - |\n", base);
  long prev = base;
  std::size_t prev_n = 0;
  for (int n : o.wss_idle) {
    while (sessions.size() < static_cast<std::size_t>(n)) {
      auto c = std::make_unique<GrpcConn>();
      if (!c->open(*env.gw_stub, env.wss_url, &err, &env.ca_pem)) die("wss idle open: " + err);
      sessions.push_back(std::move(c));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const long rss = vm_rss_kb(env.wsgated);
    std::printf("| %d | %ld | %.2f | %.2f |\n", n, rss, static_cast<double>(rss - base) / n,
                static_cast<double>(rss - prev) /
                    static_cast<double>(static_cast<std::size_t>(n) - prev_n));
    std::fflush(stdout);
    prev = rss;
    prev_n = static_cast<std::size_t>(n);
  }
  std::printf("target <= 24 KB per wss:// session\n");
  for (auto& c : sessions) c->cancel();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
}

// ---------------------------------------------------------------------------------------------
// Memory after a burst (issue item 10): one wsgated per allocator variant, in turn, same run.
// Each: warm-up session, closed-loop 64 B (latency), `--burst` sessions opened from one thread
// (opens/s), VmRSS at the peak, every session cancelled, VmRSS 3 s and 15 s later. The 15 s
// reading lets allocators that release on a timer (jemalloc's 10 s decay) act.

struct Allocator {
  std::string name;
  std::vector<std::string> env;  // for wsgated
  std::string library;           // must exist, else the variant is skipped
};

std::vector<Allocator> allocator_variants() {
  const std::string lib = "/usr/lib/x86_64-linux-gnu/";
  return {
      {"glibc", {"WSGATE_MALLOC_TRIM=0"}, ""},
      {"glibc+trim", {"WSGATE_MALLOC_TRIM=1"}, ""},
      {"jemalloc", {"WSGATE_MALLOC_TRIM=0", "LD_PRELOAD=" + lib + "libjemalloc.so.2"}, lib + "libjemalloc.so.2"},
      // jemalloc's decay runs only on allocator activity unless its background thread is on.
      {"jemalloc+bg",
       {"WSGATE_MALLOC_TRIM=0", "LD_PRELOAD=" + lib + "libjemalloc.so.2", "MALLOC_CONF=background_thread:true"},
       lib + "libjemalloc.so.2"},
      {"mimalloc", {"WSGATE_MALLOC_TRIM=0", "LD_PRELOAD=" + lib + "libmimalloc.so.2"}, lib + "libmimalloc.so.2"},
  };
}

void write_config(const std::string& path, const std::string& socket, int max_sessions) {
  std::ofstream f(path);
  f << "[listen]\nunix_socket = \"" << socket << "\"\n"
    << "[log]\nlevel = \"warn\"\n"
    << "[timeouts]\ndrain_ms = 2000\n"
    << "[limits]\nmax_sessions = " << max_sessions << "\nmax_sessions_per_host = " << max_sessions
    << "\n";
}

void burst(Env& env, const Options& o) {
  std::printf("\n## Memory after a burst: %d ws:// sessions opened (one thread), then all cancelled; "
              "wsgated VmRSS (MB)\n", o.burst);
  std::printf("| allocator | start | peak | +3 s | +15 s | 64 B round trip p50 / p99 µs | opens/s |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  int id = 300;
  for (const Allocator& a : allocator_variants()) {
    if (std::find(o.allocators.begin(), o.allocators.end(), a.name) == o.allocators.end()) continue;
    if (!a.library.empty() && !std::filesystem::exists(a.library)) {
      std::printf("| %s | not installed (%s) | | | | | |\n", a.name.c_str(), a.library.c_str());
      continue;
    }
    const std::string socket = g_tmpdir + "/burst-" + std::to_string(id) + ".sock";
    const std::string config = g_tmpdir + "/burst-" + std::to_string(id) + ".toml";
    write_config(config, socket, o.burst + 2000);
    const pid_t pid = spawn({o.wsgated, "--config", config}, nullptr,
                            g_tmpdir + "/burst-" + std::to_string(id) + ".log", nullptr, a.env);
    if (pid < 0) die("cannot start wsgated for " + a.name);
    auto channel = make_channel(socket, id++);
    const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(15);
    while (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::milliseconds(200))) {
      if (std::chrono::system_clock::now() > deadline) die("cannot connect to wsgated (" + a.name + ")");
    }
    auto stub = Gateway::NewStub(channel);
    std::string err;
    std::vector<double> lat;
    {
      GrpcConn c;
      if (!c.open(*stub, env.url, &err)) die("burst warm-up (" + a.name + "): " + err);
      const std::string payload = payload_of(64);
      c.set_payload(payload);
      for (int i = 0; i < 3000; ++i) {
        const auto t0 = Clock::now();
        if (!c.round_trip(64)) die("burst round trip (" + a.name + ")");
        if (i >= 500) lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      c.close();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const long start = vm_rss_kb(pid);
    std::vector<std::unique_ptr<GrpcConn>> sessions;
    sessions.reserve(static_cast<std::size_t>(o.burst));
    const auto t0 = Clock::now();
    while (sessions.size() < static_cast<std::size_t>(o.burst)) {
      auto c = std::make_unique<GrpcConn>();
      if (!c->open(*stub, env.url, &err)) die("burst open (" + a.name + "): " + err);
      sessions.push_back(std::move(c));
    }
    const double opens_per_s = o.burst / (ms_since(t0) / 1000);
    const long peak = vm_rss_kb(pid);
    for (auto& c : sessions) c->cancel();
    sessions.clear();
    std::this_thread::sleep_for(std::chrono::seconds(3));
    const long after3 = vm_rss_kb(pid);
    std::this_thread::sleep_for(std::chrono::seconds(12));
    const long after15 = vm_rss_kb(pid);
    const Summary s = summarize(lat);
    auto mb = [](long kb) { return static_cast<double>(kb) / 1024; };
    std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f / %.1f | %.0f |\n", a.name.c_str(), mb(start),
                mb(peak), mb(after3), mb(after15), s.p50, s.p99, opens_per_s);
    std::fflush(stdout);
    stub.reset();
    channel.reset();
    stop_child(pid, std::chrono::seconds(5));
  }
}

void watchdog(int seconds) {
  std::thread([seconds] {
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    die("watchdog: the run took longer than --timeout " + std::to_string(seconds) + " s");
  }).detach();
}

std::vector<std::string> parse_names(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(item);
  return v;
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(std::atoi(item.c_str()));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--serve-grpc-echo") return serve_grpc_echo(argv[2]);
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--reps") o.reps = std::atoi(val().c_str());
    else if (a == "--samples") o.samples = std::atoi(val().c_str());
    else if (a == "--pipelined") o.pipelined = std::atoi(val().c_str());
    else if (a == "--mib") o.mib = std::atoi(val().c_str());
    else if (a == "--idle") o.idle = parse_list(val());
    else if (a == "--wss-idle") o.wss_idle = parse_list(val());
    else if (a == "--stime") o.stime_s = std::atoi(val().c_str());
    else if (a == "--burst") o.burst = std::atoi(val().c_str());
    else if (a == "--allocators") o.allocators = parse_names(val());
    else if (a == "--opens") o.opens = std::atoi(val().c_str());
    else if (a == "--timeout") o.timeout_s = std::atoi(val().c_str());
    else if (a == "--wsgated") o.wsgated = val();
    else if (a == "--echo-server") o.echo_server = val();
    else if (a == "--perf-out") o.perf_out = val();
    else if (a == "--only") o.only = val();
    else {
      std::printf(
          "usage: e2e_bench [--reps 5] [--samples 20000] [--pipelined 20000] [--mib 48]\n"
          "                 [--idle 1000,5000] [--opens 400] [--timeout 900] [--only CASE]\n"
          "                 [--burst 10000] [--allocators glibc,glibc+trim,jemalloc,jemalloc+bg,mimalloc]\n"
          "                 [--perf-out FILE] [--wsgated PATH] [--echo-server PATH]\n"
          "                 [--wss-idle 1000,3000] [--stime 5]\n"
          "CASE: closed, pipelined, mib, idle, opens, wss, burst, deflate\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (o.reps < 1) die("--reps must be >= 1");
  const std::string self = std::filesystem::canonical("/proc/self/exe").string();
  ::signal(SIGPIPE, SIG_IGN);
  watchdog(o.timeout_s);
  ::signal(SIGINT, [](int) { die("interrupted"); });
  ::signal(SIGTERM, [](int) { die("terminated"); });

  // Raise RLIMIT_NOFILE to the hard limit (children inherit it).
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  int max_idle = 0;
  for (int n : o.idle) max_idle = std::max(max_idle, n);
  for (int n : o.wss_idle) max_idle = std::max(max_idle, n);
  max_idle = std::max(max_idle, o.burst);
  if (static_cast<long>(rl.rlim_cur) < max_idle + 1000) {
    die("RLIMIT_NOFILE " + std::to_string(rl.rlim_cur) + " is too low for --idle " + std::to_string(max_idle));
  }

  // Run context.
  utsname u{};
  ::uname(&u);
  std::string cpu = run_cmd("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2");
  std::printf("# e2e_bench (bench/README.md, e2e)\n");
  std::printf("commit %s (%s uncommitted paths), nproc %u, kernel %s %s, cpu%s\n",
              run_cmd("git -C " WSGATE_SOURCE_DIR " rev-parse HEAD").c_str(),
              run_cmd("git -C " WSGATE_SOURCE_DIR " status --porcelain | wc -l").c_str(),
              std::thread::hardware_concurrency(), u.sysname, u.release, cpu.c_str());
  std::printf("loadavg %s; RLIMIT_NOFILE %lu\n", run_cmd("cut -d' ' -f1-3 /proc/loadavg").c_str(),
              static_cast<unsigned long>(rl.rlim_cur));
  const Summary tcp_pp = raw_pingpong(true, 20000);
  const Summary uds_pp = raw_pingpong(false, 20000);
  std::printf("pre-flight raw 64 B ping-pong to an echo thread, µs: TCP 127.0.0.1 p50 %.1f p99 %.1f "
              "p99.9 %.1f; UNIX socketpair p50 %.1f p99 %.1f p99.9 %.1f (20000 samples each)\n",
              tcp_pp.p50, tcp_pp.p99, tcp_pp.p999, uds_pp.p50, uds_pp.p99, uds_pp.p999);
  std::fflush(stdout);

  // Processes: echo server, gRPC echo (leg 2), wsgated (leg 3).
  char tmpl[] = "/tmp/wsgate-e2e-XXXXXX";
  if (!::mkdtemp(tmpl)) die("mkdtemp");
  g_tmpdir = tmpl;
  Env env;
  // --only takes one case or a comma-separated list.
  auto want = [&](const char* c) {
    return o.only.empty() || ("," + o.only + ",").find("," + std::string(c) + ",") != std::string::npos;
  };
  std::vector<std::string> echo_argv = {o.echo_server};
  if (want("wss")) {
    // A P-256 certificate for 127.0.0.1, made now (PROTOCOL.md: the wss:// cases).
    const std::string cert = g_tmpdir + "/cert.pem", key = g_tmpdir + "/key.pem";
    run_cmd("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + key +
            " -out " + cert + " -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>&1");
    std::ifstream f(cert);
    env.ca_pem.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    if (env.ca_pem.find("BEGIN CERTIFICATE") == std::string::npos) die("openssl made no certificate");
    echo_argv.insert(echo_argv.end(), {"--tls", cert, key});
  }
  int echo_out = -1, echo_in = -1;
  const pid_t echo_pid = spawn(echo_argv, &echo_out, g_tmpdir + "/echo.log", &echo_in);
  if (echo_pid < 0) die("cannot start " + o.echo_server);
  const std::string port_line = read_line(echo_out, std::chrono::seconds(10));
  if (port_line.rfind("PORT ", 0) != 0) die("echo server did not print its port");
  env.echo_port = static_cast<unsigned short>(std::atoi(port_line.c_str() + 5));
  env.url = "ws://127.0.0.1:" + std::to_string(env.echo_port) + "/";
  env.echo_server = echo_pid;
  if (want("wss")) {
    const std::string tls_line = read_line(echo_out, std::chrono::seconds(10));
    if (tls_line.rfind("TLSPORT ", 0) != 0) die("echo server did not print its TLS port");
    env.tls_port = static_cast<unsigned short>(std::atoi(tls_line.c_str() + 8));
    env.wss_url = "wss://127.0.0.1:" + std::to_string(env.tls_port) + "/";
  }

  env.echo_socket = g_tmpdir + "/echo.sock";
  const pid_t grpc_echo_pid = spawn({self, "--serve-grpc-echo", env.echo_socket}, nullptr,
                                    g_tmpdir + "/grpc-echo.log", nullptr);
  env.grpc_echo = grpc_echo_pid;

  env.gw_socket = g_tmpdir + "/wsgated.sock";
  const std::string config_path = g_tmpdir + "/wsgated.toml";
  {
    write_config(config_path, env.gw_socket, std::max(12000, max_idle + 2000));
  }
  env.wsgated = spawn({o.wsgated, "--config", config_path}, nullptr, g_tmpdir + "/wsgated.log", nullptr);
  if (env.wsgated < 0 || grpc_echo_pid < 0) die("cannot start wsgated or the gRPC echo");

  auto ch2 = make_channel(env.echo_socket, 1);
  auto ch3 = make_channel(env.gw_socket, 2);
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(15);
  for (auto* ch : {&ch2, &ch3}) {
    while (!(*ch)->WaitForConnected(std::chrono::system_clock::now() + std::chrono::milliseconds(200))) {
      if (std::chrono::system_clock::now() > deadline) {
        die("cannot connect to " + std::string(ch == &ch2 ? "the gRPC echo" : "wsgated") +
            " (log: " + g_tmpdir + "/wsgated.log)");
      }
    }
  }
  env.echo_stub = Gateway::NewStub(ch2);
  env.gw_stub = Gateway::NewStub(ch3);
  std::printf("echo server pid %d port %u; grpc echo pid %d; wsgated pid %d (%s), config: "
              "max_sessions(_per_host) %d, io_threads 1; wsgated VmRSS at start %ld KB\n",
              echo_pid, env.echo_port, grpc_echo_pid, env.wsgated, o.wsgated.c_str(),
              std::max(12000, max_idle + 2000), vm_rss_kb(env.wsgated));
  std::fflush(stdout);

  pid_t perf = -1;
  if (!o.perf_out.empty()) {
    perf = spawn({"/usr/bin/perf", "record", "-e", "cpu-clock", "-g", "-o", o.perf_out, "-p",
                  std::to_string(env.wsgated)},
                 nullptr, g_tmpdir + "/perf.log", nullptr);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }

  const auto t_all = Clock::now();
  if (want("closed")) closed_loop(env, o);
  if (want("pipelined")) pipelined(env, o);
  if (want("mib")) mib(env, o);
  if (want("idle")) idle(env, o);
  if (want("opens")) opens(env, o);
  if (want("wss")) wss(env, o);
  if (want("burst")) burst(env, o);
  if (want("deflate")) deflate_case(env, o);
  if (perf > 0) {
    ::kill(perf, SIGINT);
    int st;
    ::waitpid(perf, &st, 0);
    std::lock_guard lock(g_children_mu);
    g_children.erase(std::remove(g_children.begin(), g_children.end(), perf), g_children.end());
  }

  env.gw_stub.reset();
  env.echo_stub.reset();
  const int st = stop_child(env.wsgated, std::chrono::seconds(5));
  stop_child(grpc_echo_pid, std::chrono::seconds(3));
  ::close(echo_in);
  stop_child(echo_pid, std::chrono::seconds(3));
  std::printf("\nwsgated stopped with SIGTERM: %s; cases took %.1f s\n",
              st >= 0 && WIFEXITED(st) ? ("exit " + std::to_string(WEXITSTATUS(st))).c_str()
                                       : "killed after the grace period",
              ms_since(t_all) / 1000);
  std::error_code ec;
  if (o.perf_out.empty()) std::filesystem::remove_all(g_tmpdir, ec);
  else std::printf("logs kept in %s\n", g_tmpdir.c_str());
  return 0;
}
