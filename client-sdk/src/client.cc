#include "wsgate/client/client.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#ifndef _WIN32
#include <unistd.h>
#endif

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <random>

#include "src/internal.h"
#include "wsgate/v1/admin.grpc.pb.h"

namespace wsgate {
namespace {

// The daemon's default socket, as wsgated's default_socket_path() (service/daemon/posix/paths.cc,
// service/daemon/win32/paths.cc) picks it for the same user.
std::string default_address() {
#ifdef _WIN32
  const char* program_data = std::getenv("ProgramData");
  const std::string base = program_data != nullptr && program_data[0] != '\0' ? program_data : "C:\\ProgramData";
  return "unix:" + base + "\\wsgate\\run\\wsgated.sock";
#else
  if (geteuid() == 0) return "unix:/run/wsgate/wsgated.sock";
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime != nullptr && runtime[0] != '\0')
    return std::string("unix:") + runtime + "/wsgate/wsgated.sock";
  return "unix:/tmp/wsgate-" + std::to_string(geteuid()) + "/wsgated.sock";
#endif
}

}  // namespace

std::string resolve_address(const std::string& options_address) {
  std::string address = options_address;
  if (address.empty()) {
    const char* env = std::getenv("WSGATE_ADDRESS");
    if (env != nullptr && env[0] != '\0') address = env;
  }
  if (address.empty()) return default_address();
  if (address[0] == '/') address = "unix:" + address;
  return address;
}

namespace detail {

void ClientCore::prepare(grpc::ClientContext& context, Deadline deadline) const {
  context.set_deadline(deadline);
  context.AddMetadata("wsgate-client-id", client_id);
}

}  // namespace detail

namespace {

std::string random_id() {
  std::random_device rd;
  static const char hex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 4; ++i) {
    unsigned v = rd();
    for (int j = 0; j < 8; ++j) {
      id += hex[v & 15u];
      v >>= 4;
    }
  }
  return id;
}

}  // namespace

Client::Client(ClientOptions options) : core_(std::make_shared<detail::ClientCore>()) {
  core_->options = std::move(options);
  core_->address = resolve_address(core_->options.address);
  core_->client_id = core_->options.client_id.empty() ? random_id() : core_->options.client_id;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(core_->options.max_message_bytes);
  args.SetMaxSendMessageSize(core_->options.max_message_bytes);
  // A connection of its own: on the unix socket the daemon scopes ProtocolComponent handles to
  // the caller's connection, and gRPC would otherwise share one between Clients of one target.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  core_->channel =
      grpc::CreateCustomChannel(core_->address, grpc::InsecureChannelCredentials(), args);
}

const std::string& Client::address() const { return core_->address; }
const ClientOptions& Client::options() const { return core_->options; }

bool Client::wait_ready(Deadline deadline) const {
  // Health check over the generic stub: HealthCheckRequest{service=""} is the empty message;
  // the response's field 1 (varint) is the serving status, SERVING = 1.
  while (Clock::now() < deadline) {
    if (!core_->channel->WaitForConnected(deadline)) return false;
    grpc::GenericStub stub(core_->channel);
    grpc::ClientContext context;
    context.set_deadline(deadline);
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    grpc::Status status;
    stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                   &response, [&](grpc::Status s) {
                     std::lock_guard<std::mutex> lock(mu);
                     status = std::move(s);
                     done = true;
                     cv.notify_all();
                   });
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done; });  // bounded by the call's deadline
    }
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) return true;
    if (status.ok()) {
      std::vector<grpc::Slice> slices;
      std::string bytes;
      if (response.Dump(&slices).ok()) {
        for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
      if (bytes.size() >= 2 && bytes[0] == 0x08 && bytes[1] == 0x01) return true;
      // NOT_SERVING (e.g. draining): wait for a state change or the deadline.
      grpc_connectivity_state state = core_->channel->GetState(false);
      core_->channel->WaitForStateChange(state, std::min(deadline, Clock::now() +
                                                                       std::chrono::milliseconds(200)));
      continue;
    }
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) return false;
    // UNAVAILABLE and friends: the channel reconnects; loop until the deadline.
    grpc_connectivity_state state = core_->channel->GetState(true);
    core_->channel->WaitForStateChange(state, deadline);
  }
  return false;
}

v1::GetStatsResponse Client::get_stats() const {
  auto stub = v1::Admin::NewStub(core_->channel);
  grpc::ClientContext context;
  core_->prepare(context, core_->default_deadline());
  v1::GetStatsResponse response;
  grpc::Status status = stub->GetStats(&context, v1::GetStatsRequest(), &response);
  if (!status.ok()) throw detail::to_error(status);
  return response;
}

v1::ListSessionsResponse Client::list_sessions() const {
  auto stub = v1::Admin::NewStub(core_->channel);
  grpc::ClientContext context;
  core_->prepare(context, core_->default_deadline());
  v1::ListSessionsResponse response;
  grpc::Status status = stub->ListSessions(&context, v1::ListSessionsRequest(), &response);
  if (!status.ok()) throw detail::to_error(status);
  return response;
}

}  // namespace wsgate
