// The handle state machine: every state, every transition, in this one file (h11's Rule 1).
//
//   client: created --begin_client_handshake--> handshake_started --end_ok--> open
//                                                                  --end_failed--> failed
//   server: created --begin_server_handshake--> open   (EndServerHandshake is optional)
//                   --begin_server_handshake_failed--> failed
//   both:   open --queue_close--> close_sent --receive_close--> closed
//           open --receive_close--> close_received --queue_close--> closed
//           open/close_sent/close_received/closed --abort--> aborted
//   Abort in created or handshake_started is a no-op (spec §1). Delete destroys any state.
//
// A peer's protocol violation does not change the state: it latches a receive failure in the
// handle (see protocol_handle.h), so the app can still send its close frame.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace wsgate::ws {

enum class Role : std::uint8_t { client, server };

enum class State : std::uint8_t {
  created,            // handle exists; no handshake call yet
  handshake_started,  // client: BeginClientHandshake succeeded, waiting for the response headers
  open,               // handshake done; data flows both ways
  close_sent,         // our close frame is queued; only control frames may be sent
  close_received,     // the peer's close frame was indicated; nothing more is received
  closed,             // both closes exchanged
  aborted,            // AbortHandle: queued work drains, nothing new is accepted
  failed,             // a handshake function failed on the peer's headers: the handle is dead, only Delete is useful
};

enum class Event : std::uint8_t {
  begin_client_handshake,
  end_client_handshake_ok,
  end_client_handshake_failed,
  begin_server_handshake,
  begin_server_handshake_failed,
  queue_close,    // Send(CLOSE) accepted
  receive_close,  // a close frame (or EOF, reported as 1006) was indicated
  abort,
};

// The state after `event`, or nullopt when the event is not allowed in `state` for `role`.
std::optional<State> next_state(Role role, State state, Event event) noexcept;

// What a state permits.
constexpr bool handshake_done(State s) {
  return s == State::open || s == State::close_sent || s == State::close_received ||
         s == State::closed || s == State::aborted;
}
constexpr bool may_send_data(State s) { return s == State::open || s == State::close_received; }
constexpr bool may_send_control(State s) {
  return s == State::open || s == State::close_sent || s == State::close_received;
}
constexpr bool may_receive(State s) { return s == State::open || s == State::close_sent; }

std::string_view to_string(State s) noexcept;

}  // namespace wsgate::ws
