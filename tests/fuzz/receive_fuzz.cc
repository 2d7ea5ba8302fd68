// receive_fuzz: fuzz bytes as network input to an open client handle and an open server handle.
//
// Input layout:
//   byte 0  flags: bits 0-2 number of piece-size bytes (0-7)
//                  bit 3 first Receive zero-copy (else into an app buffer); later ones alternate
//                  bit 4 DISABLE_UTF8_VERIFICATION      bit 5 queue a ping and a message first
//                  bit 6 DISABLE_MASKING                bit 7 RECEIVE_BUFFER_SIZE 256 (else 4096)
//   byte 1  app buffer size seed (1..256)
//   then    the piece sizes (each read returns at most that many bytes; 0 means "all it can"),
//   rest    the byte stream, fed to both handles; its end is EOF.
// The action loop runs until NO_ACTION or a receive failure (then the app's close is sent, as
// the README's loop says). It must never crash, hang, or exceed a generous action budget.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "service/ws/protocol_handle.h"

namespace {

using wsgate::ws::Action;
using wsgate::ws::ActionQueue;
using wsgate::ws::Buffer;
using wsgate::ws::BufferType;
using wsgate::ws::HttpHeader;
using wsgate::ws::Property;
using wsgate::ws::PropertyType;
using wsgate::ws::ProtocolHandle;
using wsgate::ws::Result;
using wsgate::ws::Role;

struct Config {
  std::uint32_t receive_buffer_size = 4096;
  int disable_utf8 = 0;
  int disable_masking = 0;
};

std::unique_ptr<ProtocolHandle> Create(Role role, const Config& config) {
  Config c = config;
  Property props[3] = {
      {PropertyType::receive_buffer_size, &c.receive_buffer_size, 4},
      {PropertyType::disable_utf8_verification, &c.disable_utf8, 4},
      {PropertyType::disable_masking, &c.disable_masking, 4},
  };
  std::unique_ptr<ProtocolHandle> h;
  if (ProtocolHandle::create(role, props, 3, &h) != Result::ok) __builtin_trap();
  return h;
}

// An in-memory handshake between a fresh client and a fresh server; both end up open.
void Handshake(ProtocolHandle& client, ProtocolHandle& server) {
  static char connection[] = "Connection", upgrade_token[] = "Upgrade", upgrade[] = "Upgrade",
              websocket[] = "websocket";
  HttpHeader initial[2] = {{connection, 10, upgrade_token, 7}, {upgrade, 7, websocket, 9}};
  HttpHeader* additional = nullptr;
  std::uint32_t additional_count = 0;
  if (client.begin_client_handshake(nullptr, 0, nullptr, 0, initial, 2, &additional,
                                    &additional_count) != Result::ok)
    __builtin_trap();
  auto merged = wsgate::ws::merge_request_headers(initial, 2, additional, additional_count);
  merged.emplace_back("Host", "fuzz");
  std::vector<HttpHeader> request;
  for (auto& [name, value] : merged)
    request.push_back({name.data(), static_cast<std::uint32_t>(name.size()), value.data(),
                       static_cast<std::uint32_t>(value.size())});
  HttpHeader* response = nullptr;
  std::uint32_t response_count = 0;
  if (server.begin_server_handshake(nullptr, nullptr, 0, request.data(),
                                    static_cast<std::uint32_t>(request.size()), &response,
                                    &response_count) != Result::ok)
    __builtin_trap();
  if (client.end_client_handshake(response, response_count, nullptr, nullptr, nullptr) !=
      Result::ok)
    __builtin_trap();
}

struct Feed {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t pos = 0;
  const std::uint8_t* pieces;
  std::size_t piece_count;
  std::size_t next_piece = 0;
};

void Drive(ProtocolHandle& h, Feed feed, bool zero_copy_first, std::uint32_t app_size,
           bool send_first) {
  std::vector<std::uint8_t> app(app_size);
  bool zero_copy = zero_copy_first;
  auto queue_receive = [&]() {
    Buffer b{};
    b.data.buffer = app.data();
    b.data.length = app_size;
    Result r = h.receive(zero_copy ? nullptr : &b, reinterpret_cast<void*>(0x1234));
    zero_copy = !zero_copy;
    return r == Result::ok;
  };
  if (!queue_receive()) __builtin_trap();  // the handle is open: Receive must be accepted
  static const std::uint8_t kPayload[] = "outgoing message";
  if (send_first) {
    if (h.send(BufferType::ping_pong, nullptr, nullptr) != Result::ok) __builtin_trap();
    Buffer b{};
    b.data.buffer = const_cast<std::uint8_t*>(kPayload);
    b.data.length = sizeof kPayload - 1;
    if (h.send(BufferType::utf8_message, &b, nullptr) != Result::ok) __builtin_trap();
  }

  // Every action either consumes input or finishes an operation, so the count is bounded by the
  // input size; a livelock shows up as a trap instead of a timeout.
  std::size_t budget = 64 * feed.size + 10000;
  bool close_sent = false;
  for (;;) {
    if (budget-- == 0) __builtin_trap();
    Buffer buffers[2]{};
    std::uint32_t count = 2;
    Action action = Action::no_action;
    BufferType type = BufferType::binary_message;
    void* app_context = nullptr;
    void* action_context = nullptr;
    Result r = h.get_action(ActionQueue::all, buffers, &count, &action, &type, &app_context,
                            &action_context);
    if (r != Result::ok) {
      // A peer violation: it must say which close code to send, and the send side must still
      // work so the app can send it.
      std::uint16_t code = h.failure_close_code();
      if (code == 0) __builtin_trap();
      if (close_sent) return;
      close_sent = true;
      Buffer b{};
      b.close_status.status = code;
      (void)h.send(BufferType::close, &b, nullptr);
      for (int i = 0; i < 64; ++i) {
        count = 2;
        if (h.get_action(ActionQueue::send, buffers, &count, &action, &type, &app_context,
                         &action_context) != Result::ok ||
            action == Action::no_action)
          return;
        std::uint32_t total = 0;
        if (action == Action::send_to_network)
          for (std::uint32_t i2 = 0; i2 < count; ++i2) total += buffers[i2].data.length;
        h.complete_action(action_context, total);
      }
      __builtin_trap();  // 64 send actions for a close frame and two small messages: a livelock
    }
    switch (action) {
      case Action::no_action:
        return;
      case Action::send_to_network: {
        if (count == 0 || count > 2) __builtin_trap();
        std::uint32_t total = 0;
        for (std::uint32_t i = 0; i < count; ++i) {
          if (buffers[i].data.length != 0 && buffers[i].data.buffer == nullptr) __builtin_trap();
          total += buffers[i].data.length;
        }
        h.complete_action(action_context, total);
        break;
      }
      case Action::indicate_send_complete:
        h.complete_action(action_context, 0);
        break;
      case Action::receive_from_network: {
        std::uint32_t room = buffers[0].data.length;
        if (count != 1 || room == 0 || buffers[0].data.buffer == nullptr) __builtin_trap();
        std::size_t n = feed.size - feed.pos;
        if (feed.piece_count != 0) {
          std::size_t piece = feed.pieces[feed.next_piece++ % feed.piece_count];
          if (piece != 0 && n > piece) n = piece;
        }
        if (n > room) n = room;
        std::memcpy(buffers[0].data.buffer, feed.data + feed.pos, n);
        feed.pos += n;
        h.complete_action(action_context, static_cast<std::uint32_t>(n));  // 0 at the end: EOF
        break;
      }
      case Action::indicate_receive_complete: {
        // Touch every indicated byte (ASan checks the pointers).
        const std::uint8_t* p = type == BufferType::close ? buffers[0].close_status.reason
                                                          : buffers[0].data.buffer;
        std::uint32_t n = type == BufferType::close ? buffers[0].close_status.reason_length
                                                    : buffers[0].data.length;
        if (type == BufferType::close && n > 123) __builtin_trap();
        volatile std::uint8_t sink = 0;
        for (std::uint32_t i = 0; i < n; ++i) sink = static_cast<std::uint8_t>(sink ^ p[i]);
        (void)sink;
        h.complete_action(action_context, 0);
        if (type == BufferType::close) {
          if (!close_sent) {
            close_sent = true;
            (void)h.send(BufferType::close, nullptr, nullptr);
          }
        } else if (!queue_receive()) {
          __builtin_trap();  // nothing was closed or violated: Receive must be accepted
        }
        break;
      }
      default:
        __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::uint8_t flags = data[0];
  std::uint32_t app_size = 1u + data[1];
  std::size_t piece_count = flags & 7u;
  if (size < 2 + piece_count) return 0;
  Config config;
  config.disable_utf8 = (flags >> 4) & 1;
  config.disable_masking = (flags >> 6) & 1;
  config.receive_buffer_size = (flags & 0x80) ? 256 : 4096;
  Feed feed{data + 2 + piece_count, size - 2 - piece_count, 0, data + 2, piece_count};
  bool zero_copy_first = (flags >> 3) & 1;
  bool send_first = (flags >> 5) & 1;

  auto client = Create(Role::client, config);
  auto server = Create(Role::server, config);
  Handshake(*client, *server);
  Drive(*client, feed, zero_copy_first, app_size, send_first);
  Drive(*server, feed, !zero_copy_first, app_size, send_first);
  client->abort();
  server->abort();
  return 0;
}
