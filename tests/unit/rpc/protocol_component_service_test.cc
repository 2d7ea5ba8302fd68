// ProtocolComponentService over a real gRPC server on a temporary unix socket, driven only
// through the generated stub: a full client <-> server WebSocket exchange in memory, handle
// scoping (foreign, random and stale ids), the status mapping with its ErrorDetail, enum and
// size validation, GetGlobalProperty, and the bounds: handle limit and per-client quota, queued
// bytes and operations per handle, the daemon-wide byte budget, release_owner.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "google/rpc/status.pb.h"
#include "service/rpc/protocol_component_service.h"
#include "service/rpc/status.h"
#include "service/ws/error.h"
#include "wsgate/v1/protocol_component.grpc.pb.h"

namespace {

namespace v1 = wsgate::v1;
using wsgate::rpc::ProtocolComponentLimits;
using wsgate::rpc::ProtocolComponentService;
using Stub = v1::ProtocolComponent::Stub;

std::uint64_t random_u64() {
  static std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

// "/tmp/wsgate-pc-<pid>-<n>-<random>.sock": unique per test run and per server.
std::string unique_socket_path() {
  static std::atomic<int> counter{0};
  char buf[96];
  std::snprintf(buf, sizeof buf, "/tmp/wsgate-pc-%d-%d-%016llx.sock", static_cast<int>(::getpid()),
                counter.fetch_add(1), static_cast<unsigned long long>(random_u64()));
  return buf;
}

// A server with the service, and a channel to it.
class Server {
 public:
  explicit Server(std::uint32_t max_handles) : Server(with_max_handles(max_handles)) {}
  explicit Server(const ProtocolComponentLimits& limits,
                  ProtocolComponentService::CallerOf caller_of = nullptr,
                  ProtocolComponentService::Clock clock = nullptr)
      : service_(limits, std::move(caller_of), std::move(clock)), path_(unique_socket_path()) {
    ::unlink(path_.c_str());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + path_, grpc::InsecureServerCredentials());
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel("unix:" + path_, grpc::InsecureChannelCredentials());
  }
  ~Server() {
    server_->Shutdown();
    ::unlink(path_.c_str());
  }

  ProtocolComponentService& service() { return service_; }
  static ProtocolComponentLimits with_max_handles(std::uint32_t max_handles) {
    ProtocolComponentLimits limits;
    limits.max_handles = max_handles;
    return limits;
  }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  ProtocolComponentService service_;  // outlives server_ (declared first)
  std::string path_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// One caller: a stub plus the optional "wsgate-client-id" metadata it sends.
class Api {
 public:
  Api(std::shared_ptr<grpc::Channel> channel, std::optional<std::string> client_id)
      : stub_(v1::ProtocolComponent::NewStub(std::move(channel))),
        client_id_(std::move(client_id)) {}

  template <class Req, class Resp>
  grpc::Status call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& request, Resp* response) {
    grpc::ClientContext context;
    if (client_id_) context.AddMetadata("wsgate-client-id", *client_id_);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return (stub_.get()->*method)(&context, request, response);
  }

  // Shorthands; each returns the status and fills `out` when given.
  grpc::Status create(bool server, std::uint64_t* handle,
                      const std::vector<v1::Property>& properties = {}) {
    v1::CreateHandleRequest request;
    for (const auto& p : properties) *request.add_properties() = p;
    v1::CreateHandleResponse response;
    grpc::Status s = server ? call(&Stub::CreateServerHandle, request, &response)
                            : call(&Stub::CreateClientHandle, request, &response);
    if (handle != nullptr) *handle = response.handle();
    return s;
  }
  grpc::Status send(std::uint64_t h, v1::BufferType type, std::optional<std::string> data,
                    std::uint64_t context = 0) {
    v1::SendRequest request;
    request.set_handle(h);
    request.set_buffer_type(type);
    if (data) request.set_data(*data);
    request.set_context(context);
    v1::Empty response;
    return call(&Stub::Send, request, &response);
  }
  grpc::Status send_close(std::uint64_t h, std::uint32_t status, const std::string& reason,
                          std::uint64_t context = 0) {
    v1::SendRequest request;
    request.set_handle(h);
    request.set_buffer_type(v1::BUFFER_TYPE_CLOSE);
    request.mutable_close()->set_status(status);
    request.mutable_close()->set_reason(reason);
    request.set_context(context);
    v1::Empty response;
    return call(&Stub::Send, request, &response);
  }
  grpc::Status receive(std::uint64_t h, std::optional<std::uint32_t> buffer_length,
                       std::uint64_t context = 0) {
    v1::ReceiveRequest request;
    request.set_handle(h);
    if (buffer_length) request.set_buffer_length(*buffer_length);
    request.set_context(context);
    v1::Empty response;
    return call(&Stub::Receive, request, &response);
  }
  grpc::Status get_action(std::uint64_t h, v1::GetActionResponse* out,
                          v1::ActionQueue queue = v1::ACTION_QUEUE_ALL,
                          std::uint32_t capacity = 2) {
    v1::GetActionRequest request;
    request.set_handle(h);
    request.set_queue(queue);
    request.set_buffer_capacity(capacity);
    return call(&Stub::GetAction, request, out);
  }
  grpc::Status complete(std::uint64_t h, std::uint64_t action_context, std::uint32_t bytes,
                        std::optional<std::string> data = std::nullopt) {
    v1::CompleteActionRequest request;
    request.set_handle(h);
    request.set_action_context(action_context);
    request.set_bytes_transferred(bytes);
    if (data) request.set_data(*data);
    v1::Empty response;
    return call(&Stub::CompleteAction, request, &response);
  }
  grpc::Status remove(std::uint64_t h) {
    v1::HandleRequest request;
    request.set_handle(h);
    v1::Empty response;
    return call(&Stub::DeleteHandle, request, &response);
  }
  grpc::Status abort(std::uint64_t h) {
    v1::HandleRequest request;
    request.set_handle(h);
    v1::Empty response;
    return call(&Stub::AbortHandle, request, &response);
  }
  grpc::Status global_property(v1::PropertyType type, std::uint32_t size,
                               v1::GetGlobalPropertyResponse* out) {
    v1::GetGlobalPropertyRequest request;
    request.set_type(type);
    request.set_size(size);
    return call(&Stub::GetGlobalProperty, request, out);
  }

 private:
  std::unique_ptr<Stub> stub_;
  std::optional<std::string> client_id_;
};

v1::Property uint_property(v1::PropertyType type, std::uint32_t value) {
  v1::Property p;
  p.set_type(type);
  p.set_uint_value(value);
  return p;
}

v1::HttpHeader header(const std::string& name, const std::string& value) {
  v1::HttpHeader h;
  h.set_name(name);
  h.set_value(value);
  return h;
}

// The ErrorDetail of a non-OK status, read as a client reads grpc-status-details-bin.
v1::ErrorDetail detail_of(const grpc::Status& status) {
  google::rpc::Status rpc_status;
  EXPECT_TRUE(rpc_status.ParseFromString(status.error_details())) << status.error_message();
  EXPECT_EQ(rpc_status.code(), static_cast<int>(status.error_code()));
  EXPECT_EQ(rpc_status.message(), status.error_message());
  EXPECT_EQ(rpc_status.details_size(), 1);
  v1::ErrorDetail detail;
  if (rpc_status.details_size() >= 1) {
    EXPECT_TRUE(rpc_status.details(0).UnpackTo(&detail));
  }
  return detail;
}

// Expects `status` to be `code` with an ErrorDetail naming `symbol`; returns the detail.
v1::ErrorDetail expect_error(const grpc::Status& status, grpc::StatusCode code,
                             const std::string& symbol) {
  EXPECT_EQ(status.error_code(), code)
      << wsgate::rpc::status_code_name(status.error_code()) << ": " << status.error_message();
  v1::ErrorDetail detail = detail_of(status);
  EXPECT_EQ(detail.hresult_symbol(), symbol) << status.error_message();
  std::optional<wsgate::ws::Result> result = wsgate::ws::from_symbol(symbol);
  EXPECT_TRUE(result.has_value()) << symbol;
  if (result) {
    EXPECT_EQ(detail.hresult_value(), wsgate::ws::numeric_value(*result));
  }
  EXPECT_FALSE(detail.cause().empty());
  return detail;
}

#define EXPECT_OK(expr)                                                                     \
  do {                                                                                      \
    const grpc::Status s_ = (expr);                                                         \
    EXPECT_TRUE(s_.ok()) << #expr << ": " << wsgate::rpc::status_code_name(s_.error_code()) \
                         << " " << s_.error_message();                                     \
  } while (0)

// --- an endpoint pumped through GetAction / CompleteAction ------------------------------------

struct Indication {
  v1::BufferType type;
  std::string data;
  std::uint32_t close_status = 0;
  std::uint64_t application_context = 0;
};

struct Endpoint {
  Api* api = nullptr;
  std::uint64_t handle = 0;
  std::string inbound;  // bytes the peer wrote, not yet read
  std::optional<v1::GetActionResponse> pending_read;  // outstanding RECEIVE_FROM_NETWORK
  std::vector<Indication> received;
  std::vector<std::pair<v1::BufferType, std::uint64_t>> sends_completed;
  std::vector<v1::BufferType> frames_written;  // buffer_type of each SEND_TO_NETWORK
};

void deliver_read(Endpoint& self) {
  const auto capacity = static_cast<std::size_t>(self.pending_read->receive_capacity());
  const std::size_t n = std::min(capacity, self.inbound.size());
  EXPECT_OK(self.api->complete(self.handle, self.pending_read->action_context(), 0,
                               self.inbound.substr(0, n)));
  self.inbound.erase(0, n);
  self.pending_read.reset();
}

// Runs `self`'s action loop until NO_ACTION; bytes written go to peer.inbound. True if anything
// happened.
bool pump(Endpoint& self, Endpoint& peer) {
  bool progress = false;
  if (self.pending_read && !self.inbound.empty()) {
    deliver_read(self);
    progress = true;
  }
  for (int guard = 0; guard < 10000; ++guard) {
    v1::GetActionResponse a;
    const grpc::Status s = self.api->get_action(self.handle, &a);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) return false;
    switch (a.action()) {
      case v1::ACTION_NO_ACTION:
        return progress;
      case v1::ACTION_SEND_TO_NETWORK: {
        std::uint32_t total = 0;
        EXPECT_GE(a.buffers_size(), 1);
        for (const std::string& b : a.buffers()) {
          peer.inbound += b;
          total += static_cast<std::uint32_t>(b.size());
        }
        self.frames_written.push_back(a.buffer_type());
        EXPECT_OK(self.api->complete(self.handle, a.action_context(), total));
        break;
      }
      case v1::ACTION_INDICATE_SEND_COMPLETE:
        self.sends_completed.emplace_back(a.buffer_type(), a.application_context());
        EXPECT_OK(self.api->complete(self.handle, a.action_context(), 0));
        break;
      case v1::ACTION_RECEIVE_FROM_NETWORK:
        EXPECT_GT(a.receive_capacity(), 0u);
        self.pending_read = a;
        if (!self.inbound.empty()) deliver_read(self);
        break;
      case v1::ACTION_INDICATE_RECEIVE_COMPLETE: {
        Indication ind{a.buffer_type(), "", 0, a.application_context()};
        if (a.buffer_type() == v1::BUFFER_TYPE_CLOSE) {
          ind.close_status = a.close_status().status();
          ind.data = a.close_status().reason();
        } else {
          EXPECT_EQ(a.buffers_size(), 1);
          for (const std::string& b : a.buffers()) ind.data += b;
        }
        self.received.push_back(ind);
        EXPECT_OK(self.api->complete(self.handle, a.action_context(), 0));
        break;
      }
      default:
        ADD_FAILURE() << "unexpected action " << a.action();
        return false;
    }
    progress = true;
  }
  ADD_FAILURE() << "action loop did not settle";
  return false;
}

void exchange(Endpoint& a, Endpoint& b) {
  for (int i = 0; i < 1000; ++i) {
    const bool pa = pump(a, b);
    const bool pb = pump(b, a);
    if (!pa && !pb) return;
  }
  ADD_FAILURE() << "exchange did not settle";
}

bool is_final(v1::BufferType t) {
  return t != v1::BUFFER_TYPE_UTF8_FRAGMENT && t != v1::BUFFER_TYPE_BINARY_FRAGMENT;
}

// Queues Receives on `self` (zero-copy, or app buffers of `buffer_length`) until a final
// indication arrives; returns the indications of that message.
std::vector<Indication> receive_message(Endpoint& self, Endpoint& peer,
                                        std::optional<std::uint32_t> buffer_length,
                                        std::uint64_t context) {
  const std::size_t start = self.received.size();
  for (int i = 0; i < 200; ++i) {
    EXPECT_OK(self.api->receive(self.handle, buffer_length, context));
    const std::size_t before = self.received.size();
    exchange(self, peer);
    if (self.received.size() == before) {
      ADD_FAILURE() << "no indication for a queued Receive";
      break;
    }
    if (is_final(self.received.back().type)) break;
  }
  return {self.received.begin() + static_cast<std::ptrdiff_t>(start), self.received.end()};
}

std::string concat(const std::vector<Indication>& parts) {
  std::string out;
  for (const auto& p : parts) out += p.data;
  return out;
}

// Creates a client and a server handle and runs the opening handshake through the RPCs.
void open_pair(Api& api, Endpoint& client, Endpoint& server,
               const std::vector<v1::Property>& client_props = {},
               const std::vector<v1::Property>& server_props = {}) {
  client.api = &api;
  server.api = &api;
  ASSERT_TRUE(api.create(false, &client.handle, client_props).ok());
  ASSERT_TRUE(api.create(true, &server.handle, server_props).ok());
  ASSERT_NE(client.handle, 0u);
  ASSERT_NE(server.handle, 0u);
  ASSERT_NE(client.handle, server.handle);

  v1::BeginClientHandshakeRequest bch;
  bch.set_handle(client.handle);
  bch.add_subprotocols("chat");
  bch.add_subprotocols("superchat");
  *bch.add_initial_headers() = header("Host", "example.com");
  v1::BeginClientHandshakeResponse bch_out;
  ASSERT_TRUE(api.call(&Stub::BeginClientHandshake, bch, &bch_out).ok());
  ASSERT_GE(bch_out.additional_headers_size(), 4);
  EXPECT_EQ(bch_out.additional_headers(0).name(), "Connection");

  v1::BeginServerHandshakeRequest bsh;
  bsh.set_handle(server.handle);
  bsh.set_subprotocol_selected("superchat");
  for (const auto& h : bch_out.additional_headers()) *bsh.add_request_headers() = h;
  *bsh.add_request_headers() = header("Host", "example.com");
  v1::BeginServerHandshakeResponse bsh_out;
  ASSERT_TRUE(api.call(&Stub::BeginServerHandshake, bsh, &bsh_out).ok());
  bool has_accept = false;
  for (const auto& h : bsh_out.response_headers()) has_accept |= h.name() == "Sec-WebSocket-Accept";
  EXPECT_TRUE(has_accept);

  v1::HandleRequest esh;
  esh.set_handle(server.handle);
  v1::Empty empty;
  ASSERT_TRUE(api.call(&Stub::EndServerHandshake, esh, &empty).ok());

  v1::EndClientHandshakeRequest ech;
  ech.set_handle(client.handle);
  for (const auto& h : bsh_out.response_headers()) *ech.add_response_headers() = h;
  v1::EndClientHandshakeResponse ech_out;
  ASSERT_TRUE(api.call(&Stub::EndClientHandshake, ech, &ech_out).ok());
  ASSERT_TRUE(ech_out.has_selected_subprotocol());
  EXPECT_EQ(ech_out.selected_subprotocol(), 1u);  // "superchat"
  EXPECT_EQ(ech_out.selected_extensions_size(), 0);
}

class ProtocolComponentTest : public ::testing::Test {
 protected:
  Server server_{64};
  Api api_{server_.channel(), std::string("test-client")};
};

// --- the full exchange ------------------------------------------------------------------------

TEST_F(ProtocolComponentTest, FullExchangeThroughRpcsOnly) {
  Endpoint client, server;
  open_pair(api_, client, server);
  EXPECT_EQ(server_.service().handle_count(), 2u);

  // Text, client -> server, zero-copy receive; the contexts come back.
  EXPECT_OK(api_.send(client.handle, v1::BUFFER_TYPE_UTF8_MESSAGE, "hello", 11));
  auto text = receive_message(server, client, std::nullopt, 21);
  ASSERT_EQ(text.size(), 1u);
  EXPECT_EQ(text[0].type, v1::BUFFER_TYPE_UTF8_MESSAGE);
  EXPECT_EQ(text[0].data, "hello");
  EXPECT_EQ(text[0].application_context, 21u);
  ASSERT_EQ(client.sends_completed.size(), 1u);
  EXPECT_EQ(client.sends_completed[0].first, v1::BUFFER_TYPE_UTF8_MESSAGE);
  EXPECT_EQ(client.sends_completed[0].second, 11u);

  // Binary, server -> client (header + payload buffers), into 100-byte app buffers: chunks.
  std::string blob(300, '\0');
  for (std::size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>(i * 7);
  EXPECT_OK(api_.send(server.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, blob, 12));
  auto bin = receive_message(client, server, 100u, 22);
  ASSERT_EQ(bin.size(), 3u);
  EXPECT_EQ(bin[0].type, v1::BUFFER_TYPE_BINARY_FRAGMENT);
  EXPECT_EQ(bin[0].data.size(), 100u);
  EXPECT_EQ(bin[2].type, v1::BUFFER_TYPE_BINARY_MESSAGE);
  EXPECT_EQ(bin[2].application_context, 22u);
  EXPECT_EQ(concat(bin), blob);
  ASSERT_EQ(server.sends_completed.size(), 1u);
  EXPECT_EQ(server.sends_completed[0].second, 12u);

  // A large masked binary message (several SEND_TO_NETWORK actions), zero-copy chunks.
  std::string big(10000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 251);
  EXPECT_OK(api_.send(client.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, big, 13));
  auto big_in = receive_message(server, client, std::nullopt, 23);
  ASSERT_GE(big_in.size(), 3u);
  EXPECT_EQ(big_in.back().type, v1::BUFFER_TYPE_BINARY_MESSAGE);
  EXPECT_EQ(concat(big_in), big);

  // Fragments: text in three frames, received into app buffers.
  EXPECT_OK(api_.send(client.handle, v1::BUFFER_TYPE_UTF8_FRAGMENT, "Hel", 14));
  EXPECT_OK(api_.send(client.handle, v1::BUFFER_TYPE_UTF8_FRAGMENT, "lo, ", 15));
  EXPECT_OK(api_.send(client.handle, v1::BUFFER_TYPE_UTF8_MESSAGE, "w\xc3\xb6rld", 16));
  auto frags = receive_message(server, client, 64u, 24);
  ASSERT_EQ(frags.size(), 3u);
  EXPECT_EQ(frags[0].type, v1::BUFFER_TYPE_UTF8_FRAGMENT);
  EXPECT_EQ(frags[1].type, v1::BUFFER_TYPE_UTF8_FRAGMENT);
  EXPECT_EQ(frags[2].type, v1::BUFFER_TYPE_UTF8_MESSAGE);
  EXPECT_EQ(concat(frags), "Hello, w\xc3\xb6rld");

  // An empty message.
  EXPECT_OK(api_.send(server.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, std::string(), 17));
  auto empty = receive_message(client, server, std::nullopt, 25);
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(empty[0].type, v1::BUFFER_TYPE_BINARY_MESSAGE);
  EXPECT_EQ(empty[0].data, "");

  // Ping from the client: the server answers automatically (not indicated), the client's
  // Receive sees the pong.
  EXPECT_OK(api_.receive(server.handle, std::nullopt, 40));
  EXPECT_OK(api_.send(client.handle, v1::BUFFER_TYPE_PING_PONG, std::nullopt, 31));
  const std::size_t server_received = server.received.size();
  auto pong = receive_message(client, server, std::nullopt, 41);
  ASSERT_EQ(pong.size(), 1u);
  EXPECT_EQ(pong[0].type, v1::BUFFER_TYPE_PING_PONG);
  EXPECT_EQ(pong[0].application_context, 41u);
  EXPECT_EQ(server.received.size(), server_received);  // the ping is not indicated
  ASSERT_FALSE(server.frames_written.empty());
  EXPECT_EQ(server.frames_written.back(), v1::BUFFER_TYPE_PING_PONG);  // the automatic pong
  EXPECT_EQ(client.sends_completed.back().first, v1::BUFFER_TYPE_PING_PONG);
  EXPECT_EQ(client.sends_completed.back().second, 31u);

  // Close, client first: the server's pending Receive (context 40) gets it.
  EXPECT_OK(api_.send_close(client.handle, 1000, "bye", 32));
  exchange(client, server);
  ASSERT_EQ(server.received.size(), server_received + 1);
  EXPECT_EQ(server.received.back().type, v1::BUFFER_TYPE_CLOSE);
  EXPECT_EQ(server.received.back().close_status, 1000u);
  EXPECT_EQ(server.received.back().data, "bye");
  EXPECT_EQ(server.received.back().application_context, 40u);
  // Data after our close is refused.
  expect_error(api_.send(client.handle, v1::BUFFER_TYPE_UTF8_MESSAGE, "late"),
               grpc::StatusCode::FAILED_PRECONDITION, "E_INVALID_PROTOCOL_OPERATION");

  // The server closes back; the client receives it into an app buffer.
  EXPECT_OK(api_.send_close(server.handle, 1001, "going away", 33));
  auto close = receive_message(client, server, 16u, 42);
  ASSERT_EQ(close.size(), 1u);
  EXPECT_EQ(close[0].type, v1::BUFFER_TYPE_CLOSE);
  EXPECT_EQ(close[0].close_status, 1001u);
  EXPECT_EQ(close[0].data, "going away");
  EXPECT_EQ(server.sends_completed.back().first, v1::BUFFER_TYPE_CLOSE);
  EXPECT_EQ(server.sends_completed.back().second, 33u);
  EXPECT_EQ(client.sends_completed.back().second, 32u);
  EXPECT_TRUE(client.inbound.empty());
  EXPECT_TRUE(server.inbound.empty());

  EXPECT_OK(api_.remove(client.handle));
  EXPECT_OK(api_.remove(server.handle));
  EXPECT_EQ(server_.service().handle_count(), 0u);
}

TEST_F(ProtocolComponentTest, ServerClosesFirstAndAbortDrains) {
  Endpoint client, server;
  open_pair(api_, client, server);
  EXPECT_OK(api_.send_close(server.handle, 4000, "", 1));
  auto close = receive_message(client, server, std::nullopt, 2);
  ASSERT_EQ(close.size(), 1u);
  EXPECT_EQ(close[0].close_status, 4000u);
  EXPECT_EQ(close[0].data, "");
  EXPECT_OK(api_.send_close(client.handle, 4000, "", 3));
  auto back = receive_message(server, client, std::nullopt, 4);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].close_status, 4000u);

  // Abort on a fresh pair: a queued Receive completes with CLOSE 1006.
  Endpoint c2, s2;
  open_pair(api_, c2, s2);
  EXPECT_OK(api_.receive(s2.handle, 8u, 9));
  EXPECT_OK(api_.abort(s2.handle));
  exchange(s2, c2);
  ASSERT_EQ(s2.received.size(), 1u);
  EXPECT_EQ(s2.received[0].type, v1::BUFFER_TYPE_CLOSE);
  EXPECT_EQ(s2.received[0].close_status, 1006u);
  EXPECT_EQ(s2.received[0].application_context, 9u);
  expect_error(api_.receive(s2.handle, std::nullopt), grpc::StatusCode::FAILED_PRECONDITION,
               "E_INVALID_PROTOCOL_OPERATION");
}

TEST_F(ProtocolComponentTest, EmptyDataIsEof) {
  Endpoint client, server;
  open_pair(api_, client, server);
  EXPECT_OK(api_.receive(server.handle, std::nullopt, 5));
  v1::GetActionResponse a;
  EXPECT_OK(api_.get_action(server.handle, &a));
  ASSERT_EQ(a.action(), v1::ACTION_RECEIVE_FROM_NETWORK);
  EXPECT_OK(api_.complete(server.handle, a.action_context(), 77, std::string()));  // EOF
  EXPECT_OK(api_.get_action(server.handle, &a));
  ASSERT_EQ(a.action(), v1::ACTION_INDICATE_RECEIVE_COMPLETE);
  EXPECT_EQ(a.buffer_type(), v1::BUFFER_TYPE_CLOSE);
  EXPECT_EQ(a.close_status().status(), 1006u);
  EXPECT_EQ(a.application_context(), 5u);
  EXPECT_OK(api_.complete(server.handle, a.action_context(), 0));
}

TEST_F(ProtocolComponentTest, DataLargerThanReceiveCapacityIsInvalidArgument) {
  Endpoint client, server;
  open_pair(api_, client, server, {},
            {uint_property(v1::PROPERTY_TYPE_RECEIVE_BUFFER_SIZE, 256)});
  EXPECT_OK(api_.receive(server.handle, std::nullopt, 6));
  v1::GetActionResponse a;
  EXPECT_OK(api_.get_action(server.handle, &a));
  ASSERT_EQ(a.action(), v1::ACTION_RECEIVE_FROM_NETWORK);
  EXPECT_EQ(a.receive_capacity(), 256u);
  auto detail = expect_error(
      api_.complete(server.handle, a.action_context(), 0, std::string(257, 'x')),
      grpc::StatusCode::INVALID_ARGUMENT, "E_INVALIDARG");
  EXPECT_EQ(detail.cause(), "bad_request");

  // The read is still outstanding: real bytes complete it.
  EXPECT_OK(api_.send(client.handle, v1::BUFFER_TYPE_UTF8_MESSAGE, "fits", 7));
  server.pending_read = a;
  exchange(client, server);
  ASSERT_EQ(server.received.size(), 1u);
  EXPECT_EQ(server.received[0].data, "fits");
  EXPECT_EQ(server.received[0].application_context, 6u);
}

// --- handle scoping ---------------------------------------------------------------------------

void expect_not_found(Api& api, std::uint64_t h) {
  const auto nf = grpc::StatusCode::NOT_FOUND;
  v1::Empty empty;
  v1::HandleRequest hr;
  hr.set_handle(h);
  v1::BeginClientHandshakeRequest bch;
  bch.set_handle(h);
  v1::BeginClientHandshakeResponse bch_out;
  v1::EndClientHandshakeRequest ech;
  ech.set_handle(h);
  v1::EndClientHandshakeResponse ech_out;
  v1::BeginServerHandshakeRequest bsh;
  bsh.set_handle(h);
  v1::BeginServerHandshakeResponse bsh_out;
  v1::GetActionResponse ga;
  for (const grpc::Status& s : {
           api.call(&Stub::BeginClientHandshake, bch, &bch_out),
           api.call(&Stub::EndClientHandshake, ech, &ech_out),
           api.call(&Stub::BeginServerHandshake, bsh, &bsh_out),
           api.call(&Stub::EndServerHandshake, hr, &empty),
           api.send(h, v1::BUFFER_TYPE_UTF8_MESSAGE, "x"),
           api.receive(h, std::nullopt),
           api.get_action(h, &ga),
           api.complete(h, 1, 0),
           api.abort(h),
           api.remove(h),
       }) {
    auto detail = expect_error(s, nf, "E_INVALIDARG");
    EXPECT_EQ(detail.cause(), "unknown_handle");
  }
}

TEST_F(ProtocolComponentTest, RandomHandleIsNotFound) {
  std::uint64_t mine = 0;
  EXPECT_OK(api_.create(false, &mine));
  std::uint64_t forged = random_u64();
  if (forged == mine) ++forged;
  expect_not_found(api_, forged);
  expect_not_found(api_, 0);
  EXPECT_EQ(server_.service().handle_count(), 1u);
}

TEST_F(ProtocolComponentTest, ForeignHandleIsNotFound) {
  std::uint64_t h = 0;
  EXPECT_OK(api_.create(false, &h));
  Api other(server_.channel(), std::string("another-client"));
  Api anonymous(server_.channel(), std::nullopt);
  Api empty_id(server_.channel(), std::string());
  expect_not_found(other, h);
  expect_not_found(anonymous, h);
  expect_not_found(empty_id, h);
  EXPECT_EQ(server_.service().handle_count(), 1u);  // their DeleteHandle did nothing

  // The owner still has it, untouched; so does a second stub with the same id (same owner key).
  Api same(server_.channel(), std::string("test-client"));
  v1::BeginClientHandshakeRequest bch;
  bch.set_handle(h);
  v1::BeginClientHandshakeResponse out;
  EXPECT_OK(same.call(&Stub::BeginClientHandshake, bch, &out));
  EXPECT_OK(api_.remove(h));

  // Handles of the anonymous caller are its own too.
  std::uint64_t a = 0;
  EXPECT_OK(anonymous.create(true, &a));
  expect_not_found(api_, a);
  EXPECT_OK(anonymous.remove(a));
}

TEST_F(ProtocolComponentTest, StaleHandleAfterDeleteIsNotFound) {
  std::uint64_t h = 0;
  EXPECT_OK(api_.create(true, &h));
  EXPECT_EQ(server_.service().handle_count(), 1u);
  EXPECT_OK(api_.remove(h));
  EXPECT_EQ(server_.service().handle_count(), 0u);
  expect_not_found(api_, h);

  // Ids are distinct and non-zero.
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 16; ++i) {
    std::uint64_t id = 0;
    EXPECT_OK(api_.create(i % 2 == 0, &id));
    EXPECT_NE(id, 0u);
    EXPECT_NE(id, h);
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
  for (auto id : ids) EXPECT_OK(api_.remove(id));
}

// --- statuses ---------------------------------------------------------------------------------

TEST_F(ProtocolComponentTest, EngineErrorsCarryErrorDetail) {
  std::uint64_t client = 0, server = 0;
  EXPECT_OK(api_.create(false, &client));
  EXPECT_OK(api_.create(true, &server));

  auto d = expect_error(api_.send(client, v1::BUFFER_TYPE_UTF8_MESSAGE, "early"),
                        grpc::StatusCode::FAILED_PRECONDITION, "E_INVALID_OPERATION");
  EXPECT_EQ(d.hresult_value(), 0x80000050u);
  EXPECT_EQ(d.cause(), "invalid_operation");
  v1::GetActionResponse ga;
  expect_error(api_.get_action(client, &ga), grpc::StatusCode::FAILED_PRECONDITION,
               "E_INVALID_OPERATION");

  // A server handshake request with version 12: UNIMPLEMENTED.
  v1::BeginClientHandshakeRequest bch;
  bch.set_handle(client);
  v1::BeginClientHandshakeResponse bch_out;
  EXPECT_OK(api_.call(&Stub::BeginClientHandshake, bch, &bch_out));
  v1::BeginServerHandshakeRequest bsh;
  bsh.set_handle(server);
  for (const auto& h : bch_out.additional_headers()) {
    *bsh.add_request_headers() =
        h.name() == "Sec-WebSocket-Version" ? header(h.name(), "12") : h;
  }
  v1::BeginServerHandshakeResponse bsh_out;
  d = expect_error(api_.call(&Stub::BeginServerHandshake, bsh, &bsh_out),
                   grpc::StatusCode::UNIMPLEMENTED, "E_PROTOCOL_VERSION_NOT_SUPPORTED");

  // A response without Sec-WebSocket-Accept: DATA_LOSS.
  v1::EndClientHandshakeRequest ech;
  ech.set_handle(client);
  *ech.add_response_headers() = header("Connection", "Upgrade");
  *ech.add_response_headers() = header("Upgrade", "websocket");
  v1::EndClientHandshakeResponse ech_out;
  d = expect_error(api_.call(&Stub::EndClientHandshake, ech, &ech_out),
                   grpc::StatusCode::DATA_LOSS, "E_INVALID_PROTOCOL_FORMAT");
  EXPECT_EQ(d.hresult_value(), 0x80000052u);
}

TEST_F(ProtocolComponentTest, PeerViolationIsDataLossWithCloseCode) {
  Endpoint client, server;
  open_pair(api_, client, server);
  EXPECT_OK(api_.receive(server.handle, std::nullopt));
  v1::GetActionResponse a;
  EXPECT_OK(api_.get_action(server.handle, &a));
  ASSERT_EQ(a.action(), v1::ACTION_RECEIVE_FROM_NETWORK);
  // An unmasked text frame to a server: a protocol violation (1002).
  EXPECT_OK(api_.complete(server.handle, a.action_context(), 0, std::string("\x81\x02hi", 4)));
  const grpc::Status s = api_.get_action(server.handle, &a);
  expect_error(s, grpc::StatusCode::DATA_LOSS, "E_INVALID_PROTOCOL_FORMAT");
  EXPECT_NE(s.error_message().find("1002"), std::string::npos) << s.error_message();
}

TEST_F(ProtocolComponentTest, InvalidEnumsAndArgumentsAreInvalidArgument) {
  const auto ia = grpc::StatusCode::INVALID_ARGUMENT;
  std::uint64_t h = 0;
  v1::Property p;
  p.set_type(v1::PROPERTY_TYPE_UNSPECIFIED);
  p.set_uint_value(1);
  EXPECT_EQ(expect_error(api_.create(false, &h, {p}), ia, "E_INVALIDARG").cause(), "bad_request");
  p.set_type(static_cast<v1::PropertyType>(42));
  expect_error(api_.create(true, &h, {p}), ia, "E_INVALIDARG");
  p.set_type(v1::PROPERTY_TYPE_ALLOCATED_BUFFER);
  const grpc::Status allocated = api_.create(false, &h, {p});
  expect_error(allocated, ia, "E_INVALIDARG");
  EXPECT_NE(allocated.error_message().find("caller memory cannot cross a socket"),
            std::string::npos);
  // Rejected by the engine: out-of-range size, a global-only type, a missing value.
  EXPECT_EQ(expect_error(api_.create(false, &h,
                                     {uint_property(v1::PROPERTY_TYPE_RECEIVE_BUFFER_SIZE, 100)}),
                         ia, "E_INVALIDARG")
                .cause(),
            "invalid_arg");
  expect_error(api_.create(false, &h, {uint_property(v1::PROPERTY_TYPE_KEEPALIVE_INTERVAL, 1)}),
               ia, "E_INVALIDARG");
  v1::Property no_value;
  no_value.set_type(v1::PROPERTY_TYPE_DISABLE_MASKING);
  expect_error(api_.create(false, &h, {no_value}), ia, "E_INVALIDARG");
  EXPECT_EQ(server_.service().handle_count(), 0u);
  // Accepted: bool and uint values.
  v1::Property masking;
  masking.set_type(v1::PROPERTY_TYPE_DISABLE_MASKING);
  masking.set_bool_value(true);
  EXPECT_OK(api_.create(false, &h, {masking, uint_property(v1::PROPERTY_TYPE_SEND_BUFFER_SIZE, 16)}));
  EXPECT_OK(api_.remove(h));

  Endpoint client, server;
  open_pair(api_, client, server);
  expect_error(api_.send(client.handle, v1::BUFFER_TYPE_UNSPECIFIED, "x"), ia, "E_INVALIDARG");
  expect_error(api_.send(client.handle, static_cast<v1::BufferType>(99), "x"), ia,
               "E_INVALIDARG");
  expect_error(api_.send(client.handle, v1::BUFFER_TYPE_PING_PONG, "payload"), ia,
               "E_INVALIDARG");
  expect_error(api_.send_close(client.handle, 1005, ""), ia, "E_INVALIDARG");
  expect_error(api_.send_close(client.handle, 65536 + 1000, ""), ia, "E_INVALIDARG");
  expect_error(api_.receive(client.handle, 0u), ia, "E_INVALIDARG");
  v1::GetActionResponse a;
  expect_error(api_.get_action(client.handle, &a, v1::ACTION_QUEUE_UNSPECIFIED), ia,
               "E_INVALIDARG");
  expect_error(api_.get_action(client.handle, &a, static_cast<v1::ActionQueue>(7)), ia,
               "E_INVALIDARG");
  expect_error(api_.get_action(client.handle, &a, v1::ACTION_QUEUE_ALL, 0), ia, "E_INVALIDARG");
  v1::GetGlobalPropertyResponse g;
  expect_error(api_.global_property(v1::PROPERTY_TYPE_UNSPECIFIED, 4, &g), ia, "E_INVALIDARG");
  expect_error(api_.global_property(v1::PROPERTY_TYPE_ALLOCATED_BUFFER, 8, &g), ia,
               "E_INVALIDARG");
  expect_error(api_.global_property(v1::PROPERTY_TYPE_RECEIVE_BUFFER_SIZE, 4, &g), ia,
               "E_INVALIDARG");
  // The handle is still usable after all that.
  EXPECT_OK(api_.send(client.handle, v1::BUFFER_TYPE_UTF8_MESSAGE, "still fine"));
  auto m = receive_message(server, client, std::nullopt, 0);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].data, "still fine");
}

TEST(ProtocolComponentLimitTest, MaxHandlesIsResourceExhausted) {
  Server server(2);
  Api api(server.channel(), std::string("limited"));
  std::uint64_t a = 0, b = 0, c = 0;
  EXPECT_OK(api.create(false, &a));
  EXPECT_OK(api.create(true, &b));
  auto d = expect_error(api.create(false, &c), grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "E_OUTOFMEMORY");
  EXPECT_EQ(d.cause(), "handle_limit");
  // The limit is global, not per caller.
  Api other(server.channel(), std::string("other"));
  expect_error(other.create(true, &c), grpc::StatusCode::RESOURCE_EXHAUSTED, "E_OUTOFMEMORY");
  EXPECT_EQ(server.service().handle_count(), 2u);
  EXPECT_OK(api.remove(a));
  EXPECT_OK(other.create(true, &c));
  EXPECT_EQ(server.service().handle_count(), 2u);
}

TEST_F(ProtocolComponentTest, GetGlobalProperty) {
  v1::GetGlobalPropertyResponse g;
  EXPECT_OK(api_.global_property(v1::PROPERTY_TYPE_KEEPALIVE_INTERVAL, 4, &g));
  EXPECT_EQ(g.size(), 4u);
  EXPECT_EQ(g.value(), std::string("\x30\x75\x00\x00", 4));  // 30000, little-endian
  EXPECT_OK(api_.global_property(v1::PROPERTY_TYPE_KEEPALIVE_INTERVAL, 1000, &g));
  EXPECT_EQ(g.size(), 4u);
  EXPECT_OK(api_.global_property(v1::PROPERTY_TYPE_SUPPORTED_VERSIONS, 4, &g));
  EXPECT_EQ(g.value(), std::string("\x0d\x00\x00\x00", 4));  // {13}

  for (std::uint32_t small : {0u, 3u}) {
    const grpc::Status s = api_.global_property(v1::PROPERTY_TYPE_KEEPALIVE_INTERVAL, small, &g);
    auto d = expect_error(s, grpc::StatusCode::OUT_OF_RANGE,
                          "HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER)");
    EXPECT_EQ(d.hresult_value(), 0x8007007Au);
    EXPECT_EQ(d.required_size(), 4u);
  }
}

// Different handles in parallel, each with its own caller id.
TEST_F(ProtocolComponentTest, ParallelCallers) {
  std::vector<std::thread> threads;
  std::atomic<int> done{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t, &done] {
      Api api(server_.channel(), "parallel-" + std::to_string(t));
      Endpoint client, server;
      open_pair(api, client, server);
      for (int i = 0; i < 20; ++i) {
        const std::string text = "message " + std::to_string(t) + "/" + std::to_string(i);
        EXPECT_OK(api.send(client.handle, v1::BUFFER_TYPE_UTF8_MESSAGE, text));
        auto m = receive_message(server, client, std::nullopt, 0);
        EXPECT_EQ(concat(m), text);
      }
      EXPECT_OK(api.remove(client.handle));
      EXPECT_OK(api.remove(server.handle));
      ++done;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(done.load(), 4);
  EXPECT_EQ(server_.service().handle_count(), 0u);
}

// --- bounds -----------------------------------------------------------------------------------

// Expects RESOURCE_EXHAUSTED naming E_OUTOFMEMORY with `cause`; returns the message.
std::string expect_exhausted(const grpc::Status& status, const std::string& cause) {
  const v1::ErrorDetail d =
      expect_error(status, grpc::StatusCode::RESOURCE_EXHAUSTED, "E_OUTOFMEMORY");
  EXPECT_EQ(d.cause(), cause) << status.error_message();
  return status.error_message();
}

// A CallerOf reading "owner/quota_key" from the wsgate-client-id metadata, standing in for the
// daemon's peer credentials (e.g. owner = the connection, quota_key = the uid).
ProtocolComponentService::Caller caller_from_metadata(const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(ProtocolComponentService::kClientIdMetadata);
  const std::string id =
      it == metadata.end() ? "" : std::string(it->second.data(), it->second.size());
  const std::size_t slash = id.find('/');
  return {id.substr(0, slash), slash == std::string::npos ? id : id.substr(slash + 1)};
}

TEST(ProtocolComponentBoundsTest, QueuedBytesPerHandleAreBounded) {
  ProtocolComponentLimits limits;
  limits.max_queued_bytes_per_handle = 3000;
  Server server(limits);
  ProtocolComponentService& service = server.service();
  Api api(server.channel(), std::string("bytes"));
  Endpoint client, peer;
  open_pair(api, client, peer);

  // 300 x 1 MiB Sends used to be all kept; now the handle holds at most 3000 bytes.
  const std::vector<std::string> messages = {std::string(1000, 'a'), std::string(1000, 'b'),
                                             std::string(1000, 'c')};
  for (const std::string& m : messages) {
    EXPECT_OK(api.send(client.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, m));
  }
  EXPECT_EQ(service.accounted_bytes(), 3000u);
  const std::string message =
      expect_exhausted(api.send(client.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, "x"),
                       "handle_queue_limit");
  EXPECT_NE(message.find("3000"), std::string::npos) << message;
  // A close reason counts as well; a refused operation takes nothing.
  expect_exhausted(api.send_close(client.handle, 1000, "bye"), "handle_queue_limit");
  EXPECT_EQ(service.accounted_bytes(), 3000u);
  // One Send larger than the bound can never be queued: the message says what to do instead.
  const std::string huge = expect_exhausted(
      api.send(peer.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, std::string(3001, 'h')),
      "handle_queue_limit");
  EXPECT_NE(huge.find("fragments"), std::string::npos) << huge;

  // Driving the loop completes the Sends and gives their bytes back; nothing accepted is lost.
  pump(client, peer);
  EXPECT_EQ(client.sends_completed.size(), 3u);
  EXPECT_EQ(service.accounted_bytes(), 0u);
  for (const std::string& m : messages) {
    EXPECT_EQ(concat(receive_message(peer, client, std::nullopt, 0)), m);
  }

  // Receive app buffers count too (they are held until INDICATE_RECEIVE_COMPLETE).
  EXPECT_OK(api.send(client.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, std::string(3000, 'd')));
  EXPECT_OK(api.receive(peer.handle, 2000));
  EXPECT_EQ(service.accounted_bytes(), 5000u);  // the client's 3000 and the peer's 2000
  expect_exhausted(api.receive(peer.handle, 1001), "handle_queue_limit");
  EXPECT_OK(api.receive(peer.handle, 1000));
  exchange(client, peer);
  ASSERT_EQ(peer.received.size(), 5u);
  EXPECT_EQ(peer.received[3].type, v1::BUFFER_TYPE_BINARY_FRAGMENT);
  EXPECT_EQ(peer.received[3].data + peer.received[4].data, std::string(3000, 'd'));
  EXPECT_EQ(service.accounted_bytes(), 0u);

  EXPECT_OK(api.remove(client.handle));
  EXPECT_OK(api.remove(peer.handle));
  EXPECT_EQ(service.live_entries(), 0u);
}

TEST(ProtocolComponentBoundsTest, PendingOperationsPerHandleAreBounded) {
  ProtocolComponentLimits limits;
  limits.max_pending_operations = 4;
  Server server(limits);
  ProtocolComponentService& service = server.service();
  Api api(server.channel(), std::string("count"));
  Endpoint client, peer;
  open_pair(api, client, peer);

  // Zero-copy Receives hold no bytes but an engine queue slot each (100 k of them used to be
  // accepted): the count bounds them.
  for (std::uint64_t i = 1; i <= 4; ++i) EXPECT_OK(api.receive(peer.handle, std::nullopt, i));
  const std::string message =
      expect_exhausted(api.receive(peer.handle, std::nullopt, 5), "handle_queue_limit");
  EXPECT_NE(message.find("4 sends and receives"), std::string::npos) << message;
  expect_exhausted(api.receive(peer.handle, 16, 5), "handle_queue_limit");
  // Sends and Receives share the count.
  expect_exhausted(api.send(peer.handle, v1::BUFFER_TYPE_UTF8_MESSAGE, "no room"),
                   "handle_queue_limit");
  EXPECT_EQ(service.accounted_bytes(), 0u);

  // One message completes one Receive: a slot is free again. The four accepted ones all work.
  EXPECT_OK(api.send(client.handle, v1::BUFFER_TYPE_UTF8_MESSAGE, "one"));
  exchange(client, peer);
  ASSERT_EQ(peer.received.size(), 1u);
  EXPECT_EQ(peer.received[0].application_context, 1u);
  EXPECT_OK(api.receive(peer.handle, std::nullopt, 5));
  expect_exhausted(api.receive(peer.handle, std::nullopt, 6), "handle_queue_limit");
  for (const char* text : {"two", "three", "four", "five"}) {
    EXPECT_OK(api.send(client.handle, v1::BUFFER_TYPE_UTF8_MESSAGE, text));
  }
  exchange(client, peer);
  ASSERT_EQ(peer.received.size(), 5u);
  const std::vector<std::string> expected = {"one", "two", "three", "four", "five"};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(peer.received[i].data, expected[i]);
    EXPECT_EQ(peer.received[i].application_context, i + 1);
  }
  EXPECT_OK(api.receive(peer.handle, std::nullopt, 7));  // the queue is empty again
}

TEST(ProtocolComponentBoundsTest, MemoryBudgetSpansHandlesAndCallers) {
  ProtocolComponentLimits limits;
  limits.max_memory_bytes = 4000;
  Server server(limits);
  ProtocolComponentService& service = server.service();
  Api alice(server.channel(), std::string("alice"));
  Api bob(server.channel(), std::string("bob"));
  Endpoint a_client, a_peer, b_client, b_peer;
  open_pair(alice, a_client, a_peer);
  open_pair(bob, b_client, b_peer);

  EXPECT_OK(alice.send(a_client.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, std::string(3000, 'a')));
  const std::string message = expect_exhausted(
      bob.send(b_client.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, std::string(1001, 'b')),
      "memory_budget");
  EXPECT_NE(message.find("4000"), std::string::npos) << message;
  EXPECT_OK(bob.send(b_client.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, std::string(1000, 'b')));
  EXPECT_EQ(service.accounted_bytes(), 4000u);
  // Operations without bytes still fit; any byte does not, on any handle.
  EXPECT_OK(bob.receive(b_peer.handle, std::nullopt));
  expect_exhausted(alice.receive(a_peer.handle, 1), "memory_budget");

  // The first handle's completion frees the budget for the second.
  pump(a_client, a_peer);
  EXPECT_EQ(service.accounted_bytes(), 1000u);
  EXPECT_OK(bob.send(b_client.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, std::string(3000, 'c')));
  EXPECT_EQ(service.accounted_bytes(), 4000u);

  exchange(b_client, b_peer);
  ASSERT_EQ(b_peer.received.size(), 1u);
  EXPECT_EQ(b_peer.received[0].data, std::string(1000, 'b'));
  EXPECT_EQ(concat(receive_message(b_peer, b_client, std::nullopt, 0)), std::string(3000, 'c'));
  EXPECT_EQ(concat(receive_message(a_peer, a_client, std::nullopt, 0)), std::string(3000, 'a'));
  EXPECT_EQ(service.accounted_bytes(), 0u);
}

TEST(ProtocolComponentBoundsTest, PerClientHandleQuota) {
  ProtocolComponentLimits limits;
  limits.max_handles_per_client = 2;
  Server server(limits);
  Api alice(server.channel(), std::string("alice"));
  Api bob(server.channel(), std::string("bob"));
  std::uint64_t a1 = 0, a2 = 0, b1 = 0, b2 = 0, h = 0;
  EXPECT_OK(alice.create(false, &a1));
  EXPECT_OK(alice.create(true, &a2));
  const std::string message = expect_exhausted(alice.create(false, &h), "handle_quota");
  EXPECT_NE(message.find("quota"), std::string::npos) << message;
  expect_exhausted(alice.create(true, &h), "handle_quota");
  // Another client is not locked out by the first.
  EXPECT_OK(bob.create(false, &b1));
  EXPECT_OK(bob.create(true, &b2));
  expect_exhausted(bob.create(true, &h), "handle_quota");
  EXPECT_EQ(server.service().handle_count(), 4u);
  // Deleting gives the slot back to its client only.
  EXPECT_OK(alice.remove(a1));
  expect_exhausted(bob.create(true, &h), "handle_quota");
  EXPECT_OK(alice.create(false, &a1));
  EXPECT_EQ(server.service().handle_count(), 4u);
}

TEST(ProtocolComponentBoundsTest, QuotaIsCountedByQuotaKeyAndHandlesScopedByOwner) {
  ProtocolComponentLimits limits;
  limits.max_handles_per_client = 2;
  Server server(limits, caller_from_metadata);
  Api conn1(server.channel(), std::string("conn1/uid1"));
  Api conn2(server.channel(), std::string("conn2/uid1"));
  Api conn3(server.channel(), std::string("conn3/uid2"));
  std::uint64_t h1 = 0, h2 = 0, h3 = 0, h = 0;
  EXPECT_OK(conn1.create(false, &h1));
  EXPECT_OK(conn2.create(false, &h2));
  expect_exhausted(conn2.create(false, &h), "handle_quota");  // uid1's two are used
  expect_exhausted(conn1.create(false, &h), "handle_quota");
  EXPECT_OK(conn3.create(false, &h3));
  // Same quota key, different owners: each other's handles are unknown.
  expect_error(conn2.remove(h1), grpc::StatusCode::NOT_FOUND, "E_INVALIDARG");
  expect_error(conn1.send(h2, v1::BUFFER_TYPE_UTF8_MESSAGE, "x"), grpc::StatusCode::NOT_FOUND,
               "E_INVALIDARG");
  EXPECT_OK(conn1.remove(h1));
  EXPECT_OK(conn2.create(true, &h));
}

TEST(ProtocolComponentBoundsTest, ReleaseOwnerDeletesHandlesAndReturnsQuotaAndBytes) {
  ProtocolComponentLimits limits;
  limits.max_handles_per_client = 2;
  Server server(limits, caller_from_metadata);
  ProtocolComponentService& service = server.service();
  Api gone(server.channel(), std::string("conn1/uid1"));
  Api same_user(server.channel(), std::string("conn2/uid1"));
  Api bystander(server.channel(), std::string("conn3/uid2"));
  Endpoint g_client, g_peer, b_client, b_peer;
  open_pair(gone, g_client, g_peer);
  open_pair(bystander, b_client, b_peer);
  EXPECT_OK(gone.send(g_client.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, std::string(5000, 'g')));
  EXPECT_OK(gone.receive(g_peer.handle, 100));
  EXPECT_OK(gone.receive(g_peer.handle, 100));
  EXPECT_OK(bystander.send(b_client.handle, v1::BUFFER_TYPE_UTF8_MESSAGE, "still here"));
  EXPECT_EQ(service.accounted_bytes(), 5210u);
  std::uint64_t h = 0;
  expect_exhausted(same_user.create(false, &h), "handle_quota");

  // What the daemon does when conn1's connection goes away.
  service.release_owner("conn1");
  EXPECT_EQ(service.handle_count(), 2u);
  EXPECT_EQ(service.accounted_bytes(), 10u);  // the bystander's Send
  EXPECT_EQ(service.live_entries(), 2u);      // nothing of the released handles is kept
  expect_error(gone.send(g_client.handle, v1::BUFFER_TYPE_UTF8_MESSAGE, "x"),
               grpc::StatusCode::NOT_FOUND, "E_INVALIDARG");
  expect_error(gone.remove(g_peer.handle), grpc::StatusCode::NOT_FOUND, "E_INVALIDARG");
  // uid1's quota is free again.
  std::uint64_t n1 = 0, n2 = 0;
  EXPECT_OK(same_user.create(false, &n1));
  EXPECT_OK(same_user.create(true, &n2));
  // Others are untouched; unknown owners are a no-op.
  service.release_owner("nobody");
  service.release_owner("");
  EXPECT_EQ(concat(receive_message(b_peer, b_client, std::nullopt, 0)), "still here");

  service.release_owner("conn2");
  service.release_owner("conn3");
  EXPECT_EQ(service.handle_count(), 0u);
  EXPECT_EQ(service.accounted_bytes(), 0u);
  EXPECT_EQ(service.live_entries(), 0u);
}

TEST(ProtocolComponentBoundsTest, DeleteHandleKeepsNothing) {
  Server server(Server::with_max_handles(8));
  ProtocolComponentService& service = server.service();
  Api api(server.channel(), std::string("delete"));
  Endpoint client, peer;
  open_pair(api, client, peer);
  EXPECT_EQ(service.live_entries(), 2u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_OK(api.send(client.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, std::string(700, 's')));
  }
  EXPECT_OK(api.receive(peer.handle, 300));
  EXPECT_OK(api.receive(peer.handle, std::nullopt));
  EXPECT_OK(api.receive(client.handle, 50));
  pump(client, peer);  // some bytes are in flight: SEND_TO_NETWORK handed out and completed
  EXPECT_OK(api.send(client.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, std::string(1000, 't')));
  EXPECT_EQ(service.accounted_bytes(), 1000u + 300u + 50u);
  EXPECT_OK(api.remove(client.handle));
  EXPECT_EQ(service.accounted_bytes(), 300u);
  EXPECT_EQ(service.live_entries(), 1u);
  EXPECT_OK(api.remove(peer.handle));
  EXPECT_EQ(service.accounted_bytes(), 0u);
  EXPECT_EQ(service.live_entries(), 0u);
  EXPECT_EQ(service.handle_count(), 0u);
}

// A clock the test moves by hand (the idle lease is never tested by waiting).
class FakeClock {
 public:
  ProtocolComponentService::Clock clock() {
    return [this] { return std::chrono::steady_clock::time_point(std::chrono::milliseconds(ms_)); };
  }
  void advance(std::chrono::milliseconds d) { ms_ += d.count(); }

 private:
  std::atomic<std::int64_t> ms_{1000000};
};

TEST(ProtocolComponentBoundsTest, IdleLeaseDeletesHandlesNoCallNamed) {
  using namespace std::chrono_literals;
  FakeClock clock;
  ProtocolComponentLimits limits;
  limits.idle_lease = 60s;
  limits.max_handles_per_client = 2;
  Server server(limits, nullptr, clock.clock());
  ProtocolComponentService& service = server.service();
  Api alice(server.channel(), std::string("alice"));
  Api bob(server.channel(), std::string("bob"));  // e.g. gone without DeleteHandle
  Endpoint a_client, a_peer, b_client, b_peer;
  open_pair(alice, a_client, a_peer);
  open_pair(bob, b_client, b_peer);
  EXPECT_OK(bob.send(b_client.handle, v1::BUFFER_TYPE_BINARY_MESSAGE, std::string(1000, 'b')));
  EXPECT_EQ(service.accounted_bytes(), 1000u);

  clock.advance(30s);
  v1::GetActionResponse a;
  EXPECT_OK(alice.get_action(a_client.handle, &a));
  EXPECT_OK(alice.get_action(a_peer.handle, &a));
  EXPECT_EQ(service.handle_count(), 4u);  // nobody idle for 60 s yet

  clock.advance(40s);  // bob's handles: 70 s idle; alice's: 40 s
  EXPECT_OK(alice.get_action(a_client.handle, &a));
  EXPECT_EQ(service.handle_count(), 2u);
  EXPECT_EQ(service.accounted_bytes(), 0u);
  EXPECT_EQ(service.live_entries(), 2u);
  expect_error(bob.get_action(b_client.handle, &a), grpc::StatusCode::NOT_FOUND, "E_INVALIDARG");
  // bob's quota came back with the handles; alice's handles work on.
  std::uint64_t h1 = 0, h2 = 0;
  EXPECT_OK(bob.create(false, &h1));
  EXPECT_OK(bob.create(true, &h2));
  EXPECT_OK(alice.send(a_client.handle, v1::BUFFER_TYPE_UTF8_MESSAGE, "alive"));
  EXPECT_EQ(concat(receive_message(a_peer, a_client, std::nullopt, 0)), "alive");
}

TEST(ProtocolComponentBoundsTest, WithoutIdleLeaseIdleHandlesLiveOn) {
  using namespace std::chrono_literals;
  FakeClock clock;
  Server server(ProtocolComponentLimits{}, nullptr, clock.clock());
  Api api(server.channel(), std::string("patient"));
  Endpoint client, peer;
  open_pair(api, client, peer);
  clock.advance(1000h);
  v1::GetActionResponse a;
  EXPECT_OK(api.get_action(client.handle, &a));
  EXPECT_EQ(server.service().handle_count(), 2u);
}

// release_owner from another thread while the owner's calls are running: they end with OK,
// NOT_FOUND or a bound, never a crash, and nothing is left behind.
TEST(ProtocolComponentBoundsTest, ReleaseOwnerWhileCallsAreInFlight) {
  ProtocolComponentLimits limits;
  limits.max_pending_operations = 64;
  Server server(limits, caller_from_metadata);
  ProtocolComponentService& service = server.service();
  constexpr int kThreads = 4;
  std::vector<std::unique_ptr<Api>> apis;
  std::vector<std::pair<Endpoint, Endpoint>> pairs(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    apis.push_back(std::make_unique<Api>(server.channel(), std::string("victim/uid")));
    open_pair(*apis.back(), pairs[t].first, pairs[t].second);
  }
  constexpr int kCallsBeforeRelease = 200;
  std::mutex mutex;
  std::condition_variable running;
  int calls = 0;  // guarded by mutex
  std::atomic<int> unexpected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Api& api = *apis[static_cast<std::size_t>(t)];
      const std::uint64_t c = pairs[static_cast<std::size_t>(t)].first.handle;
      const std::uint64_t p = pairs[static_cast<std::size_t>(t)].second.handle;
      auto acceptable = [&](const grpc::Status& s) {
        const auto code = s.error_code();
        if (code != grpc::StatusCode::OK && code != grpc::StatusCode::NOT_FOUND &&
            code != grpc::StatusCode::RESOURCE_EXHAUSTED) {
          ++unexpected;
        }
        {
          std::lock_guard lock(mutex);
          if (++calls == kCallsBeforeRelease) running.notify_all();
        }
        return code != grpc::StatusCode::NOT_FOUND;
      };
      for (int i = 0; i < 100000; ++i) {
        if (!acceptable(api.send(c, v1::BUFFER_TYPE_BINARY_MESSAGE, std::string(100, 'x')))) break;
        if (!acceptable(api.receive(p, 64))) break;
        // The client's loop: hand its frames to nobody and complete each action.
        v1::GetActionResponse a;
        if (!acceptable(api.get_action(c, &a))) break;
        if (a.action() != v1::ACTION_NO_ACTION) {
          std::uint32_t bytes = 0;
          for (const std::string& b : a.buffers()) bytes += static_cast<std::uint32_t>(b.size());
          if (!acceptable(api.complete(c, a.action_context(), bytes))) break;
        }
      }
    });
  }
  {
    std::unique_lock lock(mutex);
    EXPECT_TRUE(running.wait_for(lock, std::chrono::seconds(30),
                                 [&] { return calls >= kCallsBeforeRelease; }));
  }
  service.release_owner("victim");  // while the threads keep calling
  for (auto& th : threads) th.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(service.handle_count(), 0u);
  EXPECT_EQ(service.accounted_bytes(), 0u);
  EXPECT_EQ(service.live_entries(), 0u);
}

// --- status.h ---------------------------------------------------------------------------------

TEST(RpcStatusTest, Mapping) {
  using wsgate::ws::Result;
  using wsgate::rpc::status_code_for;
  EXPECT_EQ(status_code_for(Result::invalid_arg), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status_code_for(Result::invalid_operation), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(status_code_for(Result::invalid_protocol_operation),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(status_code_for(Result::invalid_protocol_format), grpc::StatusCode::DATA_LOSS);
  EXPECT_EQ(status_code_for(Result::extensions_not_supported), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(status_code_for(Result::subprotocol_not_supported), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(status_code_for(Result::protocol_version_not_supported),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(status_code_for(Result::insufficient_buffer), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(status_code_for(Result::out_of_memory), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(status_code_for(Result::fail), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(wsgate::rpc::status_code_name(grpc::StatusCode::UNAVAILABLE), "UNAVAILABLE");
  EXPECT_EQ(wsgate::rpc::status_code_name(grpc::StatusCode::DATA_LOSS), "DATA_LOSS");
  EXPECT_EQ(wsgate::rpc::status_code_name(grpc::StatusCode::DO_NOT_USE), "UNKNOWN");

  const grpc::Status s =
      wsgate::rpc::engine_status(Result::invalid_protocol_operation, "Send: not now");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "Send: not now");
  const v1::ErrorDetail d = detail_of(s);
  EXPECT_EQ(d.hresult_symbol(), "E_INVALID_PROTOCOL_OPERATION");
  EXPECT_EQ(d.hresult_value(), 0x80000051u);
  EXPECT_EQ(d.cause(), "invalid_protocol_operation");

  v1::ErrorDetail custom;
  custom.set_cause("connection_refused");
  custom.set_http_status(403);
  const grpc::Status e =
      wsgate::rpc::error_status(grpc::StatusCode::UNAVAILABLE, "refused", custom);
  EXPECT_EQ(e.error_code(), grpc::StatusCode::UNAVAILABLE);
  const v1::ErrorDetail back = detail_of(e);
  EXPECT_EQ(back.cause(), "connection_refused");
  EXPECT_EQ(back.http_status(), 403u);
}

}  // namespace
