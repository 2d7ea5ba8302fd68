// handshake_fuzz: fuzz bytes as handshake headers, given to end_client_handshake (as the server's
// response) and to begin_server_handshake (as the client's request).
//
// Input layout:
//   byte 0  flags: bit 0 add the correct Sec-WebSocket-Accept to the response
//                  bit 1 the client offers subprotocols and extensions
//                  bit 2 add a valid Connection/Upgrade/Sec-WebSocket-Key/-Version to the request
//                  bit 3 the server selects subprotocol "chat" and extension "x-foo"
//                  bit 4 pass NULL selection outputs to end_client_handshake
//   rest    header lines separated by '\n'; each is split at its first ':' into name and value
//           (a line without ':' is a name with an empty value). At most 64 headers.
// Whatever the result, the handles must stay usable (or dead, as documented) and never crash.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "service/ws/handshake.h"
#include "service/ws/protocol_handle.h"

namespace {

using wsgate::ws::Action;
using wsgate::ws::ActionQueue;
using wsgate::ws::Buffer;
using wsgate::ws::BufferType;
using wsgate::ws::HttpHeader;
using wsgate::ws::ProtocolHandle;
using wsgate::ws::Result;
using wsgate::ws::Role;
using wsgate::ws::State;

struct Headers {
  std::vector<std::string> names, values;
  void add(std::string_view n, std::string_view v) {
    names.emplace_back(n);
    values.emplace_back(v);
  }
  std::vector<HttpHeader> views() {
    std::vector<HttpHeader> out;
    for (std::size_t i = 0; i < names.size(); ++i)
      out.push_back({names[i].data(), static_cast<std::uint32_t>(names[i].size()),
                     values[i].data(), static_cast<std::uint32_t>(values[i].size())});
    return out;
  }
};

Headers Parse(std::string_view text) {
  Headers h;
  while (!text.empty() && h.names.size() < 64) {
    std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      h.add(line, {});
    else
      h.add(line.substr(0, colon), line.substr(colon + 1));
  }
  return h;
}

// A few actions on an open handle: one send, drained.
void Exercise(ProtocolHandle& h) {
  static std::uint8_t payload[] = {'o', 'k'};
  Buffer b{};
  b.data.buffer = payload;
  b.data.length = sizeof payload;
  if (h.send(BufferType::binary_message, &b, nullptr) != Result::ok) __builtin_trap();
  for (int i = 0; i < 16; ++i) {
    Buffer buffers[2]{};
    std::uint32_t count = 2;
    Action action = Action::no_action;
    BufferType type = BufferType::binary_message;
    void* app = nullptr;
    void* ctx = nullptr;
    if (h.get_action(ActionQueue::send, buffers, &count, &action, &type, &app, &ctx) != Result::ok)
      __builtin_trap();
    if (action == Action::no_action) return;
    std::uint32_t total = 0;
    if (action == Action::send_to_network)
      for (std::uint32_t i2 = 0; i2 < count; ++i2) total += buffers[i2].data.length;
    h.complete_action(ctx, total);
  }
  __builtin_trap();
}

void Client(std::uint8_t flags, const Headers& parsed) {
  std::unique_ptr<ProtocolHandle> client;
  if (ProtocolHandle::create(Role::client, nullptr, 0, &client) != Result::ok) __builtin_trap();
  const char* subprotocols[] = {"chat", "superchat"};
  const char* extensions[] = {"permessage-deflate; client_max_window_bits", "x-foo"};
  bool offer = flags & 2;
  HttpHeader* additional = nullptr;
  std::uint32_t additional_count = 0;
  if (client->begin_client_handshake(offer ? subprotocols : nullptr, offer ? 2 : 0,
                                     offer ? extensions : nullptr, offer ? 2 : 0, nullptr, 0,
                                     &additional, &additional_count) != Result::ok)
    __builtin_trap();
  Headers response = parsed;
  if (flags & 1) {
    auto key = wsgate::ws::find_header(additional, additional_count, "Sec-WebSocket-Key");
    if (!key) __builtin_trap();
    response.add("Sec-WebSocket-Accept", wsgate::ws::accept_key(*key));
  }
  auto views = response.views();
  std::uint32_t selected[2] = {99, 99};
  std::uint32_t selected_count = 2;
  std::uint32_t subprotocol = 99;
  bool null_outputs = flags & 16;
  Result r = client->end_client_handshake(views.data(), static_cast<std::uint32_t>(views.size()),
                                          null_outputs ? nullptr : selected,
                                          null_outputs ? nullptr : &selected_count,
                                          null_outputs ? nullptr : &subprotocol);
  if (r == Result::ok) {
    if (client->state() != State::open) __builtin_trap();
    if (!null_outputs) {
      if (selected_count > 2) __builtin_trap();
      for (std::uint32_t i = 0; i < selected_count; ++i)
        if (selected[i] >= 2) __builtin_trap();
      if (subprotocol != 99 && subprotocol >= 2) __builtin_trap();
    }
    Exercise(*client);
  } else if (r == Result::invalid_arg) {
    // README: E_INVALIDARG for the arguments leaves the handle as it was.
    if (client->state() != State::handshake_started) __builtin_trap();
  } else {
    // A content failure leaves the handle dead.
    if (client->state() != State::failed) __builtin_trap();
    if (client->send(BufferType::ping_pong, nullptr, nullptr) != Result::invalid_operation)
      __builtin_trap();
    client->abort();
  }
}

void Server(std::uint8_t flags, const Headers& parsed) {
  std::unique_ptr<ProtocolHandle> server;
  if (ProtocolHandle::create(Role::server, nullptr, 0, &server) != Result::ok) __builtin_trap();
  Headers request = parsed;
  if (flags & 4) {
    request.add("Connection", "Upgrade");
    request.add("Upgrade", "websocket");
    request.add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    request.add("Sec-WebSocket-Version", "13");
  }
  auto views = request.views();
  const char* extensions[] = {"x-foo"};
  bool choose = flags & 8;
  HttpHeader* response = nullptr;
  std::uint32_t response_count = 0;
  Result r = server->begin_server_handshake(
      choose ? "chat" : nullptr, choose ? extensions : nullptr, choose ? 1 : 0, views.data(),
      static_cast<std::uint32_t>(views.size()), &response, &response_count);
  if (r == Result::ok) {
    if (server->state() != State::open || response == nullptr || response_count < 3)
      __builtin_trap();
    // Touch the returned headers.
    std::size_t total = 0;
    for (std::uint32_t i = 0; i < response_count; ++i)
      total += wsgate::ws::name_of(response[i]).size() + wsgate::ws::value_of(response[i]).size();
    if (total == 0) __builtin_trap();
    if (server->end_server_handshake() != Result::ok) __builtin_trap();
    Exercise(*server);
  } else if (server->state() == State::open) {
    __builtin_trap();  // a failed handshake never opens the handle
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::uint8_t flags = data[0];
  Headers parsed = Parse(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  Client(flags, parsed);
  Server(flags, parsed);
  return 0;
}
