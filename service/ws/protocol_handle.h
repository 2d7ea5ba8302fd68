// ProtocolHandle: one WebSocket endpoint (client or server role) with the exact semantics of the
// Windows WebSocket Protocol Component API (websocket.h). Specification: shared/spec/websocket-api.md;
// the decisions on its unconfirmed points are in service/ws/README.md.
//
// Sans-I/O: the handle never touches a socket, a clock or a thread. The caller queues work with
// send()/receive(), then pumps get_action()/complete_action(), performing the I/O each action asks
// for. Every method is one websocket.h function with the same arguments, minus the handle.
//
// Object lifetime: created by create(); owned by the caller (the C ABI keeps it in a handle
// table). Pointers handed out by get_action() and the header arrays returned by the handshake
// functions point into memory owned by the handle; they stay valid until the matching
// complete_action() (actions) or the next handshake call / destruction (header arrays).
// Application buffers given to send()/receive() must stay alive until the matching
// INDICATE_*_COMPLETE action has been completed.
//
// Thread safety: none. One thread at a time per handle; the C ABI adds a per-handle lock so a
// send thread and a receive thread may share a handle as .NET's wrapper does.
#pragma once

#include <array>
#include <string_view>
#include <utility>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "service/ws/error.h"
#include "service/ws/frame.h"
#include "service/ws/mask.h"
#include "service/ws/state.h"
#include "service/ws/types.h"
#include "service/ws/utf8.h"

namespace wsgate::ws {

// Property limits (spec §3).
inline constexpr std::uint32_t kDefaultReceiveBufferSize = 4096;
inline constexpr std::uint32_t kDefaultClientSendBufferSize = 4096;
inline constexpr std::uint32_t kDefaultServerSendBufferSize = 16;
inline constexpr std::uint32_t kMinReceiveBufferSize = 256;
inline constexpr std::uint32_t kMinSendBufferSize = 16;
inline constexpr std::uint32_t kMaxBufferSize = 65536;
// An ALLOCATED_BUFFER must hold at least RBS + SBS + this many bytes (what .NET passes).
inline constexpr std::uint32_t kAllocatedBufferOverhead = 144;
inline constexpr std::uint32_t kAllocatedBufferAlignment = 8;

inline constexpr std::uint32_t kDefaultKeepaliveIntervalMs = 30000;
inline constexpr std::uint32_t kMinKeepaliveIntervalMs = 15000;

// Resolved handle properties.
struct HandleOptions {
  std::uint32_t receive_buffer_size = kDefaultReceiveBufferSize;
  std::uint32_t send_buffer_size = kDefaultClientSendBufferSize;
  bool disable_masking = false;
  bool disable_utf8_verification = false;
  std::uint8_t* allocated_buffer = nullptr;  // caller memory, or nullptr: the handle allocates
  std::uint32_t allocated_buffer_size = 0;
};

// Validates `count` properties for a handle of `role` and resolves the defaults.
// E_INVALIDARG for: types 5/6 or unknown types, duplicates, a NULL value, a value size other than
// 4 (ULONG/BOOL), sizes out of range, an allocated buffer that is NULL, misaligned or too small.
Result resolve_properties(Role role, const Property* properties, std::uint32_t count,
                          HandleOptions* out) noexcept;

// WebSocketGetGlobalProperty. KEEPALIVE_INTERVAL (ULONG, ms) and SUPPORTED_VERSIONS (ULONG[] = {13}).
// `*size` is in/out: a buffer that is too small gives HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER)
// with the needed size written back; any other type gives E_INVALIDARG.
Result get_global_property(PropertyType type, void* value, std::uint32_t* size) noexcept;

// The process-wide keepalive interval GetGlobalProperty reports (the daemon sets it from its
// configuration instead of the Windows registry). Values below 15000 ms are raised to 15000.
// Thread safety: both functions are safe from any thread.
void set_keepalive_interval(std::uint32_t milliseconds) noexcept;
std::uint32_t keepalive_interval() noexcept;

class ProtocolHandle {
 public:
  // WebSocketCreateClientHandle / WebSocketCreateServerHandle.
  static Result create(Role role, const Property* properties, std::uint32_t count,
                       std::unique_ptr<ProtocolHandle>* out);

  ~ProtocolHandle();
  ProtocolHandle(const ProtocolHandle&) = delete;
  ProtocolHandle& operator=(const ProtocolHandle&) = delete;

  // WebSocketBeginClientHandshake. `subprotocols`/`extensions` are NUL-terminated strings.
  // On success *additional_headers points at handle-owned headers (Connection, Upgrade,
  // Sec-WebSocket-Key, Sec-WebSocket-Version and, when offered, Sec-WebSocket-Protocol and
  // -Extensions), valid until the next handshake call or destruction. They replace any
  // same-named initial header: see merge_request_headers().
  Result begin_client_handshake(const char* const* subprotocols, std::uint32_t subprotocol_count,
                                const char* const* extensions, std::uint32_t extension_count,
                                const HttpHeader* initial_headers,
                                std::uint32_t initial_header_count,
                                HttpHeader** additional_headers,
                                std::uint32_t* additional_header_count);

  // WebSocketEndClientHandshake. Outputs are optional; see README.md for what is written when
  // nothing was selected.
  Result end_client_handshake(const HttpHeader* response_headers,
                              std::uint32_t response_header_count,
                              std::uint32_t* selected_extensions,
                              std::uint32_t* selected_extension_count,
                              std::uint32_t* selected_subprotocol);

  // WebSocketBeginServerHandshake.
  Result begin_server_handshake(const char* subprotocol_selected,
                                const char* const* extensions_selected,
                                std::uint32_t extension_selected_count,
                                const HttpHeader* request_headers,
                                std::uint32_t request_header_count,
                                HttpHeader** response_headers,
                                std::uint32_t* response_header_count);

  // WebSocketEndServerHandshake (optional): frees the handshake memory.
  Result end_server_handshake();

  // WebSocketSend / WebSocketReceive: queue work; the caller's buffers must outlive it.
  Result send(BufferType type, const Buffer* buffer, void* context);
  Result receive(const Buffer* buffer, void* context);

  // WebSocketGetAction. `*buffer_count` is the capacity of `buffers` on input (at least 1) and
  // the number filled on output.
  Result get_action(ActionQueue queue, Buffer* buffers, std::uint32_t* buffer_count,
                    Action* action, BufferType* buffer_type, void** application_context,
                    void** action_context);

  // WebSocketCompleteAction. Unknown or already-completed contexts are ignored.
  void complete_action(void* action_context, std::uint32_t bytes_transferred);

  // WebSocketAbortHandle.
  void abort();

  // Beyond websocket.h, for wsgate's own layers.
  Role role() const noexcept { return role_; }
  State state() const noexcept { return state_; }
  // After get_action returned a peer violation: the close code to send (1002, 1007, ...); else 0.
  std::uint16_t failure_close_code() const noexcept { return receive_failure_close_code_; }
  // Payload bytes of the data frame being received that have not been indicated yet: its
  // declared length, less what was indicated, from the moment its header is parsed (by a
  // get_action on the receive side); 0 between frames and inside control frames. A read-only
  // view: it lets the daemon refuse a frame that can never fit its message limit as soon as the
  // header arrives, without waiting for the payload. Changes no websocket.h behaviour.
  std::uint64_t receive_frame_remaining() const noexcept {
    return in_frame_ && !is_control(frame_.opcode) ? frame_remaining_ : 0;
  }
  const HandleOptions& options() const noexcept { return options_; }

  // Beyond websocket.h: the extension seam between the frame layer and the message layer. The
  // engine implements no extension (it stays zlib-free); an extension above it that uses RSV1
  // per message (RFC 7692 permessage-deflate, in service/session) opts in once it is negotiated:
  //  - receive: a data message's first frame may carry RSV1; receive_message_rsv1() says whether
  //    the message being indicated (every chunk of it, up to its *_MESSAGE) had it, and such a
  //    message's UTF-8 is not checked here (its bytes are the extension's encoding: the extension
  //    checks what it decodes). RSV1 on a continuation or control frame, and RSV2/RSV3, stay
  //    1002 violations.
  //  - send: send(..., rsv1 = true) sets RSV1 on the frame that starts a data message
  //    (E_INVALIDARG without the opt-in, for a non-data type, or inside an open message).
  // Without allow_rsv1() nothing changes: RSV bits are 1002, as websocket.h has it.
  void allow_rsv1() noexcept { allow_rsv1_ = true; }
  bool receive_message_rsv1() const noexcept { return receive_message_rsv1_; }
  Result send(BufferType type, const Buffer* buffer, void* context, bool rsv1);

 private:
  struct SendOp {
    BufferType type;
    Opcode opcode;
    bool fin;
    const std::uint8_t* data;  // payload, or the close reason
    std::uint32_t length;
    std::uint16_t close_status;  // CLOSE with a body
    bool close_has_body;
    void* context;
    bool rsv1 = false;  // the extension seam: RSV1 on this frame (see allow_rsv1)
  };
  struct ReceiveOp {
    std::uint8_t* buffer;  // app buffer, or nullptr for zero-copy
    std::uint32_t length;
    void* context;
  };
  // A growing FIFO that reuses its storage: no allocation once it has reached its high-water
  // mark (steady state). Capacity is a power of two so indexing is a mask, not a division.
  template <class T>
  class Ring {
   public:
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    T& front() noexcept { return items_[head_]; }
    T& back() noexcept { return items_[(head_ + size_ - 1) & (items_.size() - 1)]; }
    void push(const T& v);
    void pop() noexcept {
      head_ = (head_ + 1) & (items_.size() - 1);  // capacity is a power of two
      --size_;
    }

   private:
    std::vector<T> items_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
  };
  // An action handed out by get_action and not yet completed.
  struct Outstanding {
    Action action = Action::no_action;
    std::uintptr_t token = 0;  // the action context handed out
    std::uint32_t expected_bytes = 0;  // SEND_TO_NETWORK: sum of buffer lengths
    bool first_of_frame = false;  // SEND_TO_NETWORK: the frame's first action
    std::uint32_t payload_bytes = 0;  // SEND_TO_NETWORK: payload bytes this action carries
    bool pong = false;                // SEND_TO_NETWORK of the automatic pong
  };
  // What the receive side has ready for the head Receive.
  struct Indication {
    bool ready = false;
    BufferType type = BufferType::binary_message;
    std::uint8_t* data = nullptr;
    std::uint32_t length = 0;
    std::uint16_t close_status = 0;
    std::uint32_t consumed = 0;  // wire bytes to release from the receive area on completion
  };

  ProtocolHandle(Role role, const HandleOptions& options);

  Result apply(Event event);
  std::uintptr_t next_token(Action action) noexcept;

  // Send side.
  Result next_send_action(Buffer* buffers, std::uint32_t capacity, std::uint32_t* count,
                          Action* action, BufferType* type, void** app_context,
                          void** action_context);
  void build_send_frame(std::uint32_t capacity, Buffer* buffers, std::uint32_t* count);
  void complete_send(std::uint32_t bytes);
  void complete_receive(std::uint32_t bytes);
  // Stores `headers` in handle memory and points *out at them (the arrays the handshake
  // functions return).
  void set_headers(const std::vector<std::pair<std::string_view, std::string_view>>& headers,
                   HttpHeader** out, std::uint32_t* out_count);
  void release_headers() noexcept;
  // Receive side.
  Result next_receive_action(Buffer* buffers, std::uint32_t capacity, std::uint32_t* count,
                             Action* action, BufferType* type, void** app_context,
                             void** action_context);
  void emit_pong(Outstanding& slot, Buffer* buffers, std::uint32_t* count, Action* action,
                 BufferType* type, void** action_context);
  // Is a frame of ours on the wire or half written (so no other frame may start)?
  bool wire_busy() const noexcept {
    return send_in_frame_ || send_outstanding_.action == Action::send_to_network ||
           receive_outstanding_.action == Action::send_to_network;
  }
  Result parse_received();  // fills indication_ or returns need-more (ok) / a violation
  Result fail_receive(Result result, std::uint16_t close_code);
  void indicate_close(std::uint16_t status, const std::uint8_t* reason, std::uint32_t length,
                      std::uint32_t consumed);
  void compact_receive_area() noexcept;

  Role role_;
  State state_ = State::created;
  HandleOptions options_;
  // The receive and send areas when the caller gave no memory (ALLOCATED_BUFFER). Large areas
  // are their own anonymous mapping where the platform has one (see the constructor).
  struct OwnedMemory {
    std::size_t mapped;  // bytes mapped; 0: allocated with new[]
    void operator()(std::uint8_t* memory) const noexcept;
  };
  std::unique_ptr<std::uint8_t[], OwnedMemory> owned_memory_;
  std::uint8_t* receive_area_ = nullptr;  // receive_buffer_size bytes of wire data
  std::uint8_t* send_area_ = nullptr;     // send_buffer_size bytes for masked/gathered payload
  std::uintptr_t token_counter_ = 0;

  // Handshake.
  std::string client_key_;
  std::vector<std::string> offered_subprotocols_;
  std::vector<std::string> offered_extensions_;
  std::vector<std::string> header_strings_;  // backing store of headers_
  std::vector<HttpHeader> headers_;          // arrays returned by the handshake functions
  bool server_handshake_ended_ = false;

  // Send side.
  Ring<SendOp> send_queue_;
  bool send_message_open_ = false;  // a *_FRAGMENT was queued and its *_MESSAGE not yet
  bool send_message_text_ = false;
  bool send_stream_broken_ = false;  // a short write left a partial frame on the wire
  Outstanding send_outstanding_;
  bool send_in_frame_ = false;       // the head op's frame is partly written
  bool send_complete_ready_ = false; // the head op is done; INDICATE_SEND_COMPLETE is next
  std::uint64_t send_offset_ = 0;    // payload bytes of the head op already handed out
  MaskKey send_mask_key_{};
  std::array<std::uint8_t, kMaxFrameHeaderLength> data_header_{};
  std::array<std::uint8_t, kMaxFrameHeaderLength + kMaxControlPayload> control_frame_{};

  // Automatic pong: the latest ping's payload, sent on the RECEIVE queue.
  bool pong_pending_ = false;
  std::uint8_t pong_length_ = 0;
  std::array<std::uint8_t, kMaxFrameHeaderLength + kMaxControlPayload> pong_frame_{};

  // Receive side.
  Ring<ReceiveOp> receive_queue_;
  Outstanding receive_outstanding_;
  std::uint32_t read_pos_ = 0;   // first unparsed byte in receive_area_
  std::uint32_t write_pos_ = 0;  // one past the last received byte
  bool in_frame_ = false;
  FrameHeader frame_{};
  std::uint64_t frame_remaining_ = 0;
  std::size_t frame_mask_offset_ = 0;
  bool receive_message_open_ = false;
  bool receive_message_text_ = false;
  bool allow_rsv1_ = false;            // see allow_rsv1()
  bool receive_message_rsv1_ = false;  // the message being received started with RSV1
  Utf8Validator utf8_;
  Indication indication_;
  bool receive_done_ = false;  // close (or EOF) indicated: later Receives get the same close
  std::uint16_t final_close_status_ = 0;
  std::uint8_t final_close_reason_length_ = 0;
  std::array<std::uint8_t, kMaxCloseReasonLength> final_close_reason_{};
  Result receive_failure_ = Result::ok;
  std::uint16_t receive_failure_close_code_ = 0;
  bool aborted_ = false;
};

// Builds the request header list an app sends: `initial` with every header whose name (case-
// insensitively) also appears in `additional` replaced by the additional one, then the rest of
// `additional`. The daemon uses this to build its upgrade request.
std::vector<std::pair<std::string, std::string>> merge_request_headers(
    const HttpHeader* initial, std::uint32_t initial_count, const HttpHeader* additional,
    std::uint32_t additional_count);

}  // namespace wsgate::ws
