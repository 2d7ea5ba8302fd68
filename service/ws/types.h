// Value types of the wsgate WebSocket protocol engine.
//
// Every enum value and every struct layout here is identical to the Windows websocket.h
// (WEB_SOCKET_* names), so the C ABI in service/ws/capi can hand these objects to C callers
// by reinterpret_cast without copying. The static_asserts in capi/websocket.cc keep it so.
#pragma once

#include <cstdint>

namespace wsgate::ws {

// WEB_SOCKET_BUFFER_TYPE. Values are the websocket.h ones (0x80000000 + n).
enum class BufferType : std::uint32_t {
  utf8_message = 0x80000000u,      // last (or only) part of a text message
  utf8_fragment = 0x80000001u,     // non-final part of a text message
  binary_message = 0x80000002u,    // last (or only) part of a binary message
  binary_fragment = 0x80000003u,   // non-final part of a binary message
  close = 0x80000004u,             // close frame; Buffer::close_status is used
  ping_pong = 0x80000005u,         // ping when sending, pong when received
  unsolicited_pong = 0x80000006u,  // unsolicited pong (heartbeat)
};

// WEB_SOCKET_ACTION.
enum class Action : std::uint32_t {
  no_action = 0,
  send_to_network = 1,
  indicate_send_complete = 2,
  receive_from_network = 3,
  indicate_receive_complete = 4,
};

// WEB_SOCKET_ACTION_QUEUE.
enum class ActionQueue : std::uint32_t {
  send = 0x1,
  receive = 0x2,
  all = 0x3,
};

// WEB_SOCKET_CLOSE_STATUS.
enum class CloseStatus : std::uint16_t {
  success = 1000,
  endpoint_unavailable = 1001,
  protocol_error = 1002,
  invalid_data_type = 1003,
  empty = 1005,  // no status code in the close frame
  aborted = 1006,  // no close frame at all (connection lost); never on the wire
  invalid_payload = 1007,
  policy_violation = 1008,
  message_too_big = 1009,
  unsupported_extensions = 1010,
  server_error = 1011,
  secure_handshake_error = 1015,  // never on the wire
};

// WEB_SOCKET_PROPERTY_TYPE.
enum class PropertyType : std::uint32_t {
  receive_buffer_size = 0,
  send_buffer_size = 1,
  disable_masking = 2,
  allocated_buffer = 3,
  disable_utf8_verification = 4,
  keepalive_interval = 5,  // GetGlobalProperty only
  supported_versions = 6,  // GetGlobalProperty only
};

inline constexpr std::uint32_t kMaxCloseReasonLength = 123;  // WEB_SOCKET_MAX_CLOSE_REASON_LENGTH

// WEB_SOCKET_HTTP_HEADER: byte strings with explicit lengths, not NUL-terminated.
struct HttpHeader {
  char* name;
  std::uint32_t name_length;
  char* value;
  std::uint32_t value_length;
};

// WEB_SOCKET_PROPERTY. `value` points at the value (ULONG/BOOL: 4 bytes; ALLOCATED_BUFFER: a
// pointer to a PVOID holding the buffer address, with `value_size` the buffer's size).
struct Property {
  PropertyType type;
  void* value;
  std::uint32_t value_size;
};

// WEB_SOCKET_BUFFER: `data` for every buffer type except CLOSE, `close_status` for CLOSE.
union Buffer {
  struct {
    std::uint8_t* buffer;
    std::uint32_t length;
  } data;
  struct {
    std::uint8_t* reason;  // UTF-8, NULL when reason_length is 0
    std::uint32_t reason_length;  // 0..123
    std::uint16_t status;
  } close_status;
};

constexpr bool is_data_type(BufferType t) { return t <= BufferType::binary_fragment; }
constexpr bool is_fragment_type(BufferType t) {
  return t == BufferType::utf8_fragment || t == BufferType::binary_fragment;
}
constexpr bool is_text_type(BufferType t) {
  return t == BufferType::utf8_message || t == BufferType::utf8_fragment;
}

}  // namespace wsgate::ws
