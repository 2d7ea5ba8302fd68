// state.h: the full transition table, for both roles, every state and every event.
#include "service/ws/state.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <tuple>

namespace wsgate::ws {
namespace {

constexpr State kStates[] = {State::created, State::handshake_started, State::open, State::close_sent,
                             State::close_received, State::closed, State::aborted, State::failed};
constexpr Event kEvents[] = {Event::begin_client_handshake, Event::end_client_handshake_ok,
                             Event::end_client_handshake_failed, Event::begin_server_handshake,
                             Event::queue_close, Event::receive_close, Event::abort};

// The README's state diagram, as a table. Anything not listed is disallowed.
std::optional<State> expected(Role role, State s, Event e) {
  using K = std::tuple<Role, State, Event>;
  static const std::map<K, State> kAllowed = [] {
    std::map<K, State> m;
    m[{Role::client, State::created, Event::begin_client_handshake}] = State::handshake_started;
    m[{Role::client, State::handshake_started, Event::end_client_handshake_ok}] = State::open;
    m[{Role::client, State::handshake_started, Event::end_client_handshake_failed}] = State::failed;
    m[{Role::server, State::created, Event::begin_server_handshake}] = State::open;
    for (Role r : {Role::client, Role::server}) {
      m[{r, State::open, Event::queue_close}] = State::close_sent;
      m[{r, State::close_received, Event::queue_close}] = State::closed;
      m[{r, State::open, Event::receive_close}] = State::close_received;
      m[{r, State::close_sent, Event::receive_close}] = State::closed;
      for (State st : {State::open, State::close_sent, State::close_received, State::closed, State::aborted}) {
        m[{r, st, Event::abort}] = State::aborted;
      }
    }
    return m;
  }();
  auto it = kAllowed.find({role, s, e});
  if (it == kAllowed.end()) return std::nullopt;
  return it->second;
}

TEST(StateMachine, EveryTransitionMatchesTheDiagram) {
  for (Role r : {Role::client, Role::server}) {
    for (State s : kStates) {
      for (Event e : kEvents) {
        EXPECT_EQ(next_state(r, s, e), expected(r, s, e))
            << "role=" << static_cast<int>(r) << " state=" << to_string(s) << " event=" << static_cast<int>(e);
      }
    }
  }
}

TEST(StateMachine, AbortBeforeHandshakeAndOnFailedIsNotATransition) {
  for (Role r : {Role::client, Role::server}) {
    EXPECT_FALSE(next_state(r, State::created, Event::abort).has_value());
    EXPECT_FALSE(next_state(r, State::handshake_started, Event::abort).has_value());
    EXPECT_FALSE(next_state(r, State::failed, Event::abort).has_value());
  }
}

TEST(StateMachine, Predicates) {
  EXPECT_FALSE(handshake_done(State::created));
  EXPECT_FALSE(handshake_done(State::handshake_started));
  EXPECT_FALSE(handshake_done(State::failed));
  for (State s : {State::open, State::close_sent, State::close_received, State::closed, State::aborted}) {
    EXPECT_TRUE(handshake_done(s)) << to_string(s);
  }
  for (State s : kStates) {
    EXPECT_EQ(may_send_data(s), s == State::open || s == State::close_received) << to_string(s);
    EXPECT_EQ(may_send_control(s), s == State::open || s == State::close_sent || s == State::close_received)
        << to_string(s);
    EXPECT_EQ(may_receive(s), s == State::open || s == State::close_sent) << to_string(s);
  }
}

TEST(StateMachine, ToStringNamesEveryState) {
  EXPECT_EQ(to_string(State::created), "created");
  EXPECT_EQ(to_string(State::handshake_started), "handshake_started");
  EXPECT_EQ(to_string(State::open), "open");
  EXPECT_EQ(to_string(State::close_sent), "close_sent");
  EXPECT_EQ(to_string(State::close_received), "close_received");
  EXPECT_EQ(to_string(State::closed), "closed");
  EXPECT_EQ(to_string(State::aborted), "aborted");
  EXPECT_EQ(to_string(State::failed), "failed");
}

}  // namespace
}  // namespace wsgate::ws
