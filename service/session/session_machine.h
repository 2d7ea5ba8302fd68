// SessionMachine: the sans-I/O core of one gateway session (one client WebSocket connection
// from wsgated to a remote server). No socket, thread, clock or lock: time is an argument.
//
// Theory of operation. The drivers (the Asio transport in service/net, fed by the gRPC reactor
// in service/rpc) report events; after each event the machine says, in Actions, what I/O to do
// next. It owns what happens from the moment the transport is connected (TCP, plus TLS for
// wss://) until the session ends:
//  - the HTTP/1.1 upgrade: the request it builds with the engine, the response head it parses
//    (bytes that arrive with the 101 are fed to the engine before any read);
//  - the engine's action loop (service/ws ProtocolHandle: get_action -> I/O -> complete_action);
//    the engine's own state (state(), failure_close_code(), receive_frame_remaining()) is asked,
//    never mirrored;
//  - the close policy (who closed, clean or not, echoing the server's code, the close timeout);
//  - the connect and handshake deadlines, keepalive (unsolicited pong), ping timeout, idle
//    timeout, all through one timer;
//  - max_message_bytes (a frame whose declared length cannot fit is refused from its header,
//    1009), the memory-budget charges of incoming messages, and backpressure both ways
//    (max_queued_bytes of client messages not yet handed to a write, plus at most kGatherLimit
//    bytes in the write itself; reads stop while the client side is paused);
//  - batching: every small frame queued while a write is in flight goes out in the next write;
//  - permessage-deflate (RFC 7692, per_message_deflate.h): the offer, the strict check of the
//    answer, inflating (bounded by max_message_bytes on the inflated size, charged to the budget
//    as inflated bytes) and deflating whole messages of at least the threshold.
// Resolve, destination policy and connect (and the TLS handshake) stay in the transport, which
// reports their outcome (transport_connected / transport_ready / transport_failed).
//
// Event/action contract.
//  - Every event method returns the Actions to perform now (also through take_actions()).
//  - At most one write and one read are outstanding: Actions::write is set only when no write
//    is in flight, Actions::read only when no read is. The driver reports each one's outcome
//    exactly once (write_done / bytes_read); buffers stay valid until then.
//  - Actions::timer: (re)arm the session's one timer for `deadline` (replacing the previous
//    one); timer_fired(now) may be called late or spuriously, the machine checks `now`.
//  - Actions::deliver: messages for the client, in order. Actions::room: how many client
//    messages that were waiting for room may now be followed by the next read.
//  - Actions::finish: the last action; then the driver closes the transport and reports the
//    outcome. Later events are ignored (they return empty Actions).
//
// Lifetime: owned by its driver, which outlives every buffer it handed out. Thread safety: none;
// the driver serialises every call (one strand or one mutex per session).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "service/session/per_message_deflate.h"
#include "service/session/types.h"
#include "service/ws/protocol_handle.h"
#include "service/ws/utf8.h"

namespace wsgate::session {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// Engine buffer sizes: the engine's largest, so a large message needs few socket calls and
// actions (16 chunks per MiB, not 64). An idle session does not pay for them: the engine
// allocates them uninitialised and only the pages a message touches become resident (the idle
// RSS slope measured the same with 16 KiB and 64 KiB: bench/README.md).
inline constexpr std::uint32_t kReceiveBufferSize = ws::kMaxBufferSize;
inline constexpr std::uint32_t kSendBufferSize = ws::kMaxBufferSize;
// Frames smaller than kZeroCopyFrom are copied and gathered into one write of up to
// kGatherLimit bytes; larger ones are written from the engine's buffer.
inline constexpr std::size_t kZeroCopyFrom = 8192;
inline constexpr std::size_t kGatherLimit = 65536;

// Why the gateway closes a session on its own (typed: no reason string is matched).
enum class ShutdownReason { daemon_stopping };

struct ConstBuffer {
  const void* data;
  std::size_t size;
};
struct MutableBuffer {
  void* data;
  std::size_t size;
};

// A message for the client.
struct Delivery {
  enum class Kind { open, message, pong };
  Kind kind = Kind::message;
  OpenInfo open;         // open
  bool text = false;     // message
  std::string data;      // message, pong
  bool final = true;     // message: the message's end (stream_fragments sends chunks)
  net::BudgetCharge charge;  // message: its bytes against Settings::budget; keep while queued
};

// How the session ended: failed before it was open, or closed after.
struct Outcome {
  bool opened = false;
  CloseInfo closed;  // opened
  Failure failure;   // !opened
};

struct Actions {
  std::vector<ConstBuffer> write;  // non-empty: write all of these (one gathered write)
  std::optional<MutableBuffer> read;  // read some bytes into this buffer
  std::optional<TimePoint> timer;     // arm the one timer for this deadline
  std::vector<Delivery> deliver;
  std::size_t room = 0;
  // Boxed: the machine keeps an Actions between events, and an Outcome held inline (about 220
  // bytes) would be carried by every idle session.
  std::unique_ptr<Outcome> finish;

  bool empty() const {
    return write.empty() && !read && !timer && deliver.empty() && room == 0 && !finish;
  }
};

// Counters for Admin stats (the driver publishes them).
struct Counters {
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_received = 0;
};

class SessionMachine {
 public:
  explicit SessionMachine(Settings settings);
  ~SessionMachine();
  SessionMachine(const SessionMachine&) = delete;
  SessionMachine& operator=(const SessionMachine&) = delete;

  // --- transport events -----------------------------------------------------------------------
  // Resolving/connecting starts now: arms the connect deadline.
  Actions start(TimePoint now);
  // Through a proxy (Settings::proxy_name): the TCP connection to the proxy is made and the
  // CONNECT request goes out; the connect deadline keeps running (a timeout now says the proxy
  // did not answer). transport_connected follows once the tunnel is up.
  Actions tunnel_requested(TimePoint now);
  // TCP is connected (through a proxy: the tunnel is up): arms the handshake deadline (TLS and
  // upgrade together).
  Actions transport_connected(TimePoint now);
  // The stream is ready for bytes (after TLS for wss://): writes the upgrade request.
  Actions transport_ready(TimePoint now);
  // Resolve, policy, connect or TLS failed.
  Actions transport_failed(Failure failure);
  // The outstanding write finished: `ok` false on error (`error` says what).
  Actions write_done(TimePoint now, std::size_t bytes, bool ok, std::string_view error = {});
  // The outstanding read finished: `ok` false on EOF or error.
  Actions bytes_read(TimePoint now, std::size_t bytes, bool ok, std::string_view error = {});
  Actions timer_fired(TimePoint now);

  // --- client events --------------------------------------------------------------------------
  // A message from the client. `*room`: true when the client may send its next one now; else
  // an Actions::room grant follows once the queue drains (never, if the session ends).
  // Messages after a close are dropped (and *room is false).
  Actions client_message(TimePoint now, OutgoingMessage message, bool* room);
  // The client closes (code 0: no status), or its stream ended (1001).
  Actions client_close(TimePoint now, std::uint16_t code, std::string reason,
                       Initiator initiator = Initiator::client);
  // The client side stopped (or resumed) consuming: reads from the server stop meanwhile.
  Actions client_paused(TimePoint now, bool paused);
  // The client is gone, or the gateway must end the session now: no close frame.
  Actions abort(Failure failure);
  // The daemon stops: a 1001 close, reported as a shutdown (the stream ends OK).
  Actions shutdown(TimePoint now, ShutdownReason reason);

  // The session's settings, fixed for its life. The machine holds the session's one copy; the
  // transport reads the URL, the limits it applies itself and the trace from here.
  const Settings& settings() const noexcept { return settings_; }
  bool finished() const noexcept { return phase_ == Phase::done; }
  bool open() const noexcept { return phase_ == Phase::open; }
  const Counters& counters() const noexcept { return counters_; }
  // For tests: the engine's state (nullopt before the upgrade request).
  std::optional<ws::State> engine_state() const;

 private:
  enum class Phase { idle, connecting, handshaking, upgrading, open, done };
  enum class Io { none, request, response, send_queue, receive_queue, gathered };

  Actions take();
  void fail(Failure failure);
  void finish(CloseInfo info);
  void release_charges();
  void arm(TimePoint deadline);
  void read_response();
  void on_response(TimePoint now);
  void pump(TimePoint now);
  bool pump_send(TimePoint now);
  bool pump_receive(TimePoint now);
  void start_write(Io io, void* context, const ws::Buffer* buffers, std::uint32_t count);
  void on_indication(TimePoint now, ws::BufferType type, const ws::Buffer& buffer);
  bool inflate_chunk(const ws::Buffer& buffer, bool text, bool final);
  void engine_send(OutgoingMessage& message);
  void release_written(TimePoint now);
  void on_protocol_violation(ws::Result result);
  void abandon_receive(std::uint16_t code, const std::string& reason, Failure failure);
  void on_message_too_big();
  void on_over_budget();
  void send_close(TimePoint now, std::uint16_t code, const std::string& reason, CloseInfo report,
                  bool unanswered_is_failure);
  void flush_close();
  void begin_close(TimePoint now, std::uint16_t code, std::string reason, Initiator initiator,
                   std::optional<Failure> failure);
  void keepalive_deadline(TimePoint now);
  void on_keepalive(TimePoint now);
  bool closing() const noexcept { return pending_close_ != nullptr; }
  // How the close would be reported now (CloseInfo's defaults when none is pending).
  CloseInfo close_report() const { return pending_close_ ? *pending_close_ : CloseInfo{}; }
  bool close_received() const noexcept;

  Settings settings_;
  SessionTrace& trace_;  // settings_.trace, or one that reports nothing
  Phase phase_ = Phase::idle;
  Actions out_;
  std::optional<TimePoint> deadline_;
  TimePoint started_at_{};    // start(): the connect phase began
  TimePoint connected_at_{};  // transport_connected(): the handshake phase began
  bool tunnel_requested_ = false;  // the CONNECT request went to Settings::proxy_name

  std::unique_ptr<ws::ProtocolHandle> engine_;
  std::string request_text_;
  std::string response_buffer_;  // the upgrade response; bytes after its head feed the engine
  std::size_t response_used_ = 0;
  std::size_t leftover_offset_ = 0;

  // The one outstanding write and the one outstanding read: what they are for, and the engine
  // action they complete (nullptr for the upgrade's own I/O and gathered writes).
  struct Pending {
    Io io = Io::none;
    void* context = nullptr;
  };
  Pending write_;
  Pending read_;
  // The receive side's automatic pong, waiting for the send side's write to finish.
  void* held_pong_context_ = nullptr;
  std::vector<ConstBuffer> held_pong_;
  // Small frames gathered into one write: each is copied here and its action completed at once,
  // so the engine hands out the next; written together (Io::gathered). A close frame is never
  // gathered (the session may end once it is written): it waits here until the gathered write
  // is done.
  std::string gather_;
  void* held_send_context_ = nullptr;
  std::vector<ConstBuffer> held_send_;

  bool receive_queued_ = false;
  bool reading_paused_ = false;
  bool receive_abandoned_ = false;  // no more reads: our close is the last word
  bool ping_outstanding_ = false;
  bool unanswered_is_failure_ = false;
  TimePoint ping_sent_at_{};
  std::string message_;             // the incoming message being assembled
  std::uint64_t message_size_ = 0;  // bytes of the incoming message so far (also when streamed)
  net::BudgetCharge message_charge_;
  bool message_text_ = false;
  // Handed to the engine, not yet completed. A list: the engine points into the messages, so
  // they must not move, and an empty list holds no memory (an empty libstdc++ deque holds a
  // 512-byte node and its map, per idle session).
  std::list<OutgoingMessage> queued_;
  std::uint64_t queued_bytes_ = 0;
  std::size_t waiting_for_room_ = 0;
  // How the close will be reported once it completes; null until a close is sent. Boxed, like
  // Actions::finish: an idle session would carry a CloseInfo (136 bytes) inline.
  std::unique_ptr<CloseInfo> pending_close_;
  TimePoint last_activity_{};       // any frame either way
  TimePoint last_data_activity_{};  // a data message either way
  Counters counters_;
  // permessage-deflate, once the server accepted it (nullptr: not negotiated): RSV1 messages
  // are inflated into message_ and their text checked here (the engine cannot check it).
  std::unique_ptr<PerMessageDeflate> deflate_;
  ws::Utf8Validator inflated_utf8_;
};

}  // namespace wsgate::session
