#include "service/ws/state.h"

namespace wsgate::ws {

std::optional<State> next_state(Role role, State state, Event event) noexcept {
  switch (event) {
    case Event::begin_client_handshake:
      if (role == Role::client && state == State::created) return State::handshake_started;
      return std::nullopt;
    case Event::end_client_handshake_ok:
      if (role == Role::client && state == State::handshake_started) return State::open;
      return std::nullopt;
    case Event::end_client_handshake_failed:
      if (role == Role::client && state == State::handshake_started) return State::failed;
      return std::nullopt;
    case Event::begin_server_handshake:
      if (role == Role::server && state == State::created) return State::open;
      return std::nullopt;
    case Event::begin_server_handshake_failed:
      if (role == Role::server && state == State::created) return State::failed;
      return std::nullopt;
    case Event::queue_close:
      if (state == State::open) return State::close_sent;
      if (state == State::close_received) return State::closed;
      return std::nullopt;
    case Event::receive_close:
      if (state == State::open) return State::close_received;
      if (state == State::close_sent) return State::closed;
      return std::nullopt;
    case Event::abort:
      if (handshake_done(state)) return State::aborted;
      return std::nullopt;
  }
  return std::nullopt;
}

std::string_view to_string(State s) noexcept {
  switch (s) {
    case State::created: return "created";
    case State::handshake_started: return "handshake_started";
    case State::open: return "open";
    case State::close_sent: return "close_sent";
    case State::close_received: return "close_received";
    case State::closed: return "closed";
    case State::aborted: return "aborted";
    case State::failed: return "failed";
  }
  return "unknown";
}

}  // namespace wsgate::ws
