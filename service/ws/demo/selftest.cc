// wsgate-selftest: runs a client handle and a server handle of the engine against each other in
// memory (handshake, text, binary, fragmented message, ping/pong, close) and prints a transcript.
// It is what README's "run" command starts until the daemon exists; exit status 0 means every
// step behaved as specified.
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "service/ws/error.h"
#include "service/ws/handshake.h"
#include "service/ws/protocol_handle.h"

namespace ws = wsgate::ws;

namespace {

int g_failures = 0;

void check(bool ok, const char* what) {
  std::printf("  [%s] %s\n", ok ? " ok " : "FAIL", what);
  if (!ok) ++g_failures;
}

// One direction of the in-memory "network".
using Wire = std::deque<std::uint8_t>;

struct Received {
  ws::BufferType type;
  std::string bytes;
  std::uint16_t close_status = 0;
};

// Pumps one handle until it has nothing more to do: writes go to `out`, reads come from `in`,
// receive indications are collected. Returns the first error.
// A read the engine asked for while `in` was empty: it stays outstanding (as a blocked socket
// read would) until bytes arrive.
struct PendingRead {
  ws::Buffer buffer{};
  void* context = nullptr;
};

std::uint32_t fill(const ws::Buffer& buffer, Wire& in) {
  std::uint32_t bytes = 0;
  while (!in.empty() && bytes < buffer.data.length) {
    buffer.data.buffer[bytes++] = in.front();
    in.pop_front();
  }
  return bytes;
}

ws::Result pump(ws::ProtocolHandle& h, PendingRead& pending, Wire& in, Wire& out,
                std::vector<Received>& got) {
  if (pending.context != nullptr && !in.empty()) {
    h.complete_action(pending.context, fill(pending.buffer, in));
    pending = {};
  }
  for (int guard = 0; guard < 100000; ++guard) {
    ws::Buffer buffers[2];
    std::uint32_t count = 2;
    ws::Action action;
    ws::BufferType type;
    void* app = nullptr;
    void* ctx = nullptr;
    ws::Result r = h.get_action(ws::ActionQueue::all, buffers, &count, &action, &type, &app, &ctx);
    if (r != ws::Result::ok) return r;
    std::uint32_t bytes = 0;
    switch (action) {
      case ws::Action::no_action:
        return ws::Result::ok;
      case ws::Action::send_to_network:
        for (std::uint32_t i = 0; i < count; ++i) {
          out.insert(out.end(), buffers[i].data.buffer,
                     buffers[i].data.buffer + buffers[i].data.length);
          bytes += buffers[i].data.length;
        }
        break;
      case ws::Action::receive_from_network:
        if (in.empty()) {  // would block: the read stays outstanding
          pending = {buffers[0], ctx};
          return ws::Result::ok;
        }
        bytes = fill(buffers[0], in);
        break;
      case ws::Action::indicate_receive_complete:
        if (type == ws::BufferType::close) {
          const auto& c = buffers[0].close_status;
          got.push_back({type, std::string(reinterpret_cast<char*>(c.reason), c.reason_length),
                         c.status});
        } else {
          got.push_back({type, std::string(reinterpret_cast<char*>(buffers[0].data.buffer),
                                           buffers[0].data.length)});
        }
        break;
      case ws::Action::indicate_send_complete:
        break;
    }
    h.complete_action(ctx, bytes);
  }
  return ws::Result::fail;
}

}  // namespace

int main() {
  std::printf("wsgate engine self-test: client and server handles in memory\n");
  std::unique_ptr<ws::ProtocolHandle> client, server;
  check(ws::ProtocolHandle::create(ws::Role::client, nullptr, 0, &client) == ws::Result::ok,
        "create client handle with defaults");
  check(ws::ProtocolHandle::create(ws::Role::server, nullptr, 0, &server) == ws::Result::ok,
        "create server handle with defaults");

  // Handshake.
  const char* protocols[] = {"chat", "superchat"};
  ws::HttpHeader* request = nullptr;
  std::uint32_t request_count = 0;
  check(client->begin_client_handshake(protocols, 2, nullptr, 0, nullptr, 0, &request,
                                       &request_count) == ws::Result::ok,
        "BeginClientHandshake");
  for (std::uint32_t i = 0; i < request_count; ++i) {
    std::printf("    > %s: %s\n", std::string(ws::name_of(request[i])).c_str(),
                std::string(ws::value_of(request[i])).c_str());
  }
  std::vector<ws::HttpHeader> request_copy(request, request + request_count);
  ws::HttpHeader* response = nullptr;
  std::uint32_t response_count = 0;
  check(server->begin_server_handshake("chat", nullptr, 0, request_copy.data(), request_count,
                                       &response, &response_count) == ws::Result::ok,
        "BeginServerHandshake accepts the client's request");
  for (std::uint32_t i = 0; i < response_count; ++i) {
    std::printf("    < %s: %s\n", std::string(ws::name_of(response[i])).c_str(),
                std::string(ws::value_of(response[i])).c_str());
  }
  std::uint32_t selected = 99;
  check(client->end_client_handshake(response, response_count, nullptr, nullptr, &selected) ==
                ws::Result::ok &&
            selected == 0,
        "EndClientHandshake accepts the response; subprotocol index 0 (chat)");

  Wire to_server, to_client;
  std::vector<Received> at_server, at_client;
  PendingRead server_read, client_read;

  // Ping from the server; the client's engine answers by itself.
  server->send(ws::BufferType::ping_pong, nullptr, nullptr);
  server->receive(nullptr, nullptr);
  client->receive(nullptr, nullptr);
  for (int round = 0; round < 10 && at_server.empty(); ++round) {
    pump(*server, server_read, to_server, to_client, at_server);
    pump(*client, client_read, to_client, to_server, at_client);
  }
  check(at_server.size() == 1 && at_server[0].type == ws::BufferType::ping_pong,
        "server's ping answered by the client's automatic pong");
  at_server.clear();

  // Messages.
  std::string text = "hello, wsgate";
  std::vector<std::uint8_t> binary(100000);
  for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<std::uint8_t>(i * 7);
  ws::Buffer b{};
  b.data = {reinterpret_cast<std::uint8_t*>(text.data()), static_cast<std::uint32_t>(text.size())};
  client->send(ws::BufferType::utf8_message, &b, nullptr);
  b.data = {binary.data(), static_cast<std::uint32_t>(binary.size())};
  client->send(ws::BufferType::binary_message, &b, nullptr);
  std::string part1 = "frag", part2 = "mented";
  b.data = {reinterpret_cast<std::uint8_t*>(part1.data()), 4};
  client->send(ws::BufferType::utf8_fragment, &b, nullptr);
  b.data = {reinterpret_cast<std::uint8_t*>(part2.data()), 6};
  client->send(ws::BufferType::utf8_message, &b, nullptr);
  ws::Buffer close{};
  const char* reason = "bye";
  close.close_status = {reinterpret_cast<std::uint8_t*>(const_cast<char*>(reason)), 3, 1000};
  client->send(ws::BufferType::close, &close, nullptr);

  std::size_t queued_receives = 0;
  for (int round = 0; round < 10000; ++round) {
    // Keep one zero-copy Receive queued on the server while it may receive.
    if (at_server.size() >= queued_receives) {
      if (server->receive(nullptr, nullptr) == ws::Result::ok) ++queued_receives;
    }
    std::size_t before = at_server.size() + at_client.size() + to_server.size() + to_client.size();
    if (pump(*client, client_read, to_client, to_server, at_client) != ws::Result::ok) break;
    if (pump(*server, server_read, to_server, to_client, at_server) != ws::Result::ok) break;
    if (!at_server.empty() && at_server.back().type == ws::BufferType::close) break;
    if (before == at_server.size() + at_client.size() + to_server.size() + to_client.size() &&
        to_server.empty() && to_client.empty() && round > 2) {
      break;
    }
  }

  // Reassemble what the server received.
  std::vector<std::string> messages;
  std::string current;
  std::uint16_t close_status = 0;
  std::string close_reason;
  for (const Received& r : at_server) {
    if (r.type == ws::BufferType::close) {
      close_status = r.close_status;
      close_reason = r.bytes;
      continue;
    }
    current += r.bytes;
    if (!ws::is_fragment_type(r.type)) {
      messages.push_back(current);
      current.clear();
    }
  }
  check(messages.size() == 3, "server received 3 messages");
  check(messages.size() > 0 && messages[0] == text, "text message intact");
  check(messages.size() > 1 &&
            messages[1] == std::string(binary.begin(), binary.end()),
        "100000-byte binary message intact (delivered in chunks of the receive buffer)");
  check(messages.size() > 2 && messages[2] == "fragmented", "fragmented text message reassembled");
  check(close_status == 1000 && close_reason == "bye", "close 1000 \"bye\" received by the server");
  check(server->state() == ws::State::close_received, "server state is close_received");

  std::printf("%d passed, %d failed\n", 11 - g_failures, g_failures);
  return g_failures == 0 ? 0 : 1;
}
