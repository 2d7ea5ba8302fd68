// Scripted-peer fault injection: a scenario (handshake, a few messages both ways, a ping, the
// close handshake) is run once to count its I/O completions; then it is rerun once per completion
// and fault kind, completing that one action short, with zero bytes, or after AbortHandle, and the
// engine's results and states are checked against README.md each time.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/unit/ws/ws_test_util.h"

namespace wsgate::ws {
namespace {

using namespace test;

struct Script {
  std::vector<Result> client_results;
  std::vector<Result> server_results;
};

// The scenario. Sends are attempted whatever happened before; their results are recorded.
Script run_scenario(Pair& p) {
  Script s;
  p.client.auto_close_reply = true;
  p.server.auto_close_reply = true;
  p.server.receive_buffer_len = 64;  // the server copies into app buffers, the client is zero-copy
  s.client_results.push_back(p.client.post_receive());
  s.server_results.push_back(p.server.post_receive());
  s.client_results.push_back(p.client.send_data(BufferType::utf8_message, bytes_of("hello")));
  s.client_results.push_back(p.client.send_data(BufferType::binary_fragment, bytes_of("ab")));
  s.client_results.push_back(p.client.send_data(BufferType::binary_message, bytes_of("cd")));
  s.client_results.push_back(p.client.send_control(BufferType::ping_pong));
  s.server_results.push_back(p.server.send_data(BufferType::utf8_message, bytes_of("world")));
  s.server_results.push_back(p.server.send_data(BufferType::binary_message, binary_payload(300)));
  p.pump();
  s.client_results.push_back(p.client.send_data(BufferType::utf8_message, utf8_payload(100)));
  p.pump();
  s.client_results.push_back(p.client.send_close(1000, "done"));
  p.pump();
  return s;
}

struct Baseline {
  int steps = 0;
  std::vector<Message> client_messages, server_messages;
  std::size_t client_pongs = 0;
};

const Baseline& baseline() {
  static const Baseline b = [] {
    Baseline out;
    Pair p;
    Script s = run_scenario(p);
    for (Result r : s.client_results) EXPECT_EQ(r, Result::ok);
    for (Result r : s.server_results) EXPECT_EQ(r, Result::ok);
    out.steps = p.link.steps;
    out.client_messages = p.client.messages;
    out.server_messages = p.server.messages;
    out.client_pongs = p.client.pongs.size();
    return out;
  }();
  return b;
}

TEST(FailLoopBaseline, ScenarioCompletesCleanly) {
  Pair p;
  Script s = run_scenario(p);
  for (Result r : s.client_results) EXPECT_EQ(r, Result::ok);
  for (Result r : s.server_results) EXPECT_EQ(r, Result::ok);
  EXPECT_GE(p.link.steps, 10);
  EXPECT_EQ(p.client.h->state(), State::closed);
  EXPECT_EQ(p.server.h->state(), State::closed);
  ASSERT_EQ(p.server.messages.size(), 3u);
  EXPECT_EQ(string_of(p.server.messages[0].data), "hello");
  EXPECT_EQ(string_of(p.server.messages[1].data), "abcd");
  EXPECT_EQ(p.server.messages[1].type, BufferType::binary_message);
  EXPECT_EQ(p.server.messages[2].data, utf8_payload(100));
  ASSERT_EQ(p.client.messages.size(), 2u);
  EXPECT_EQ(string_of(p.client.messages[0].data), "world");
  EXPECT_EQ(p.client.messages[1].data, binary_payload(300));
  EXPECT_EQ(p.client.pongs.size(), 1u);
  ASSERT_EQ(p.server.closes.size(), 1u);
  EXPECT_EQ(p.server.closes[0].status, 1000);
  EXPECT_EQ(p.server.closes[0].reason, "done");
  ASSERT_EQ(p.client.closes.size(), 1u);
  EXPECT_EQ(p.client.closes[0].status, 1000);
  EXPECT_EQ(p.client.closes[0].reason, "bye");
  EXPECT_EQ(p.client.send_completions, p.client.sends_accepted);
  EXPECT_EQ(p.server.send_completions, p.server.sends_accepted);
  EXPECT_TRUE(p.client.errors.empty());
  EXPECT_TRUE(p.server.errors.empty());
  EXPECT_EQ(p.link.steps, baseline().steps);  // deterministic
}

struct FaultCase {
  Fault fault;
  int step;
};

std::vector<FaultCase> fault_cases() {
  // The step count is fixed by the scenario; 24 is above it (checked below), and steps past
  // the end simply never fire.
  std::vector<FaultCase> out;
  for (Fault f : {Fault::partial, Fault::zero, Fault::abort}) {
    for (int i = 0; i < 24; ++i) out.push_back({f, i});
  }
  return out;
}

std::string fault_name(const ::testing::TestParamInfo<FaultCase>& info) {
  const char* k = info.param.fault == Fault::partial ? "partial" : info.param.fault == Fault::zero ? "zero" : "abort";
  return std::string(k) + "_step" + std::to_string(info.param.step);
}

class FailLoop : public ::testing::TestWithParam<FaultCase> {};

TEST(FailLoopBaseline, StepCountFitsTheTable) {
  EXPECT_LE(baseline().steps, 24);
  EXPECT_GE(baseline().steps, 10);
}

TEST_P(FailLoop, EngineStaysConsistent) {
  const FaultCase fc = GetParam();
  if (fc.step >= baseline().steps) GTEST_SKIP() << "scenario has " << baseline().steps << " steps";
  Pair p;
  p.link.fault_step = fc.step;
  p.link.fault = fc.fault;
  run_scenario(p);
  ASSERT_NE(p.link.faulted, nullptr) << "the fault never fired";
  Endpoint& f = *p.link.faulted;
  Endpoint& peer = &f == &p.client ? p.server : p.client;
  const bool fault_on_send = !f.writes.empty() && [&] {
    // Was the faulted completion a SEND_TO_NETWORK? Re-derive: a send fault shows as a write that
    // did not reach the wire in full.
    std::size_t handed = 0;
    for (const auto& w : f.writes) handed += w.size();
    return handed != f.wire_out.size();
  }();
  const char* who = &f == &p.client ? "client" : "server";
  SCOPED_TRACE(std::string("faulted endpoint: ") + who + ", state before: " + std::string(to_string(p.link.state_before_fault)));

  // Always: the pump found no inconsistency, every accepted Send completed exactly once in order.
  for (const auto& msg : f.failures) ADD_FAILURE() << "faulted endpoint: " << msg;
  for (const auto& msg : peer.failures) ADD_FAILURE() << "peer: " << msg;
  EXPECT_EQ(f.send_completions, f.sends_accepted);
  EXPECT_EQ(peer.send_completions, peer.sends_accepted);
  EXPECT_TRUE(f.errors.empty()) << "the faulted endpoint's own receive side is intact: " << f.errors.front();
  if (peer.errors.empty()) {
    EXPECT_EQ(peer.rereceive_refused, 0);
  }
  if (f.errors.empty()) {
    EXPECT_EQ(f.rereceive_refused, 0);
  }

  switch (fc.fault) {
    case Fault::partial:
      if (fault_on_send) {
        // A partial frame is on the wire: later Sends fail, the stream stays broken.
        EXPECT_EQ(f.h->send(BufferType::ping_pong, nullptr, nullptr), Result::invalid_protocol_operation);
        Buffer b{};
        std::uint8_t x = 'x';
        b.data = {&x, 1};
        EXPECT_EQ(f.h->send(BufferType::binary_message, &b, nullptr), Result::invalid_protocol_operation);
        EXPECT_NE(f.h->state(), State::aborted);
      } else {
        // A short read is ordinary: the outcome equals the baseline exactly.
        EXPECT_TRUE(peer.errors.empty());
        EXPECT_EQ(p.client.h->state(), State::closed);
        EXPECT_EQ(p.server.h->state(), State::closed);
        ASSERT_EQ(p.client.messages.size(), baseline().client_messages.size());
        ASSERT_EQ(p.server.messages.size(), baseline().server_messages.size());
        for (std::size_t i = 0; i < p.client.messages.size(); ++i) {
          EXPECT_EQ(p.client.messages[i].data, baseline().client_messages[i].data);
          EXPECT_EQ(p.client.messages[i].type, baseline().client_messages[i].type);
        }
        for (std::size_t i = 0; i < p.server.messages.size(); ++i) {
          EXPECT_EQ(p.server.messages[i].data, baseline().server_messages[i].data);
          EXPECT_EQ(p.server.messages[i].type, baseline().server_messages[i].type);
        }
        EXPECT_EQ(p.client.pongs.size(), baseline().client_pongs);
        ASSERT_EQ(p.client.closes.size(), 1u);
        EXPECT_EQ(p.client.closes[0].status, 1000);
        ASSERT_EQ(p.server.closes.size(), 1u);
        EXPECT_EQ(p.server.closes[0].status, 1000);
      }
      break;
    case Fault::zero:
      if (fault_on_send) {
        // The frame was dropped whole: the wire holds only complete frames, the stream is intact.
        std::size_t pos = 0;
        int frames = 0;
        while (pos < f.wire_out.size()) {
          Bytes rest(f.wire_out.begin() + static_cast<std::ptrdiff_t>(pos), f.wire_out.end());
          std::size_t used = 0;
          auto fr = parse_whole_frame(rest, &used);
          ASSERT_TRUE(fr.has_value()) << "partial frame on the wire at " << pos;
          pos += used;
          ++frames;
        }
        EXPECT_EQ(frames + 1, static_cast<int>(f.writes.size())) << "exactly one frame dropped";
        if (may_send_control(f.h->state())) {
          EXPECT_EQ(f.h->send(BufferType::ping_pong, nullptr, nullptr), Result::ok);
        }
      } else {
        // EOF: the head Receive completed with CLOSE 1006 and nothing is read any more.
        EXPECT_EQ(p.link.closes_before_fault, 0u);
        ASSERT_FALSE(f.closes.empty());
        EXPECT_EQ(f.closes.back().status, 1006);
        EXPECT_TRUE(f.closes.back().reason.empty());
        EXPECT_EQ(f.h->receive(nullptr, nullptr), Result::invalid_protocol_operation);
        EXPECT_FALSE(f.read_pending);
        // Open -> CloseReceived on EOF (the scenario may then send its own close: Closed);
        // CloseSent -> Closed.
        if (p.link.state_before_fault == State::close_sent) {
          EXPECT_EQ(f.h->state(), State::closed);
        } else {
          EXPECT_TRUE(f.h->state() == State::close_received || f.h->state() == State::closed)
              << to_string(f.h->state());
        }
      }
      break;
    case Fault::abort: {
      EXPECT_EQ(f.h->state(), State::aborted);
      EXPECT_EQ(f.h->send(BufferType::ping_pong, nullptr, nullptr), Result::invalid_protocol_operation);
      EXPECT_EQ(f.h->receive(nullptr, nullptr), Result::invalid_protocol_operation);
      // Drain an outstanding read the way .NET does, then nothing is left.
      if (f.read_pending) {
        f.eof = true;
        p.pump();
      }
      if (p.link.closes_before_fault == 0) {
        ASSERT_EQ(f.closes.size(), 1u) << "the queued Receive completes with CLOSE 1006";
        EXPECT_EQ(f.closes[0].status, 1006);
      } else {
        EXPECT_EQ(f.closes.size(), p.link.closes_before_fault);
      }
      EXPECT_EQ(f.send_completions, f.sends_accepted);
      Buffer bufs[2];
      std::uint32_t n = 2;
      Action a = Action::send_to_network;
      BufferType t;
      void* act = nullptr;
      EXPECT_EQ(f.h->get_action(ActionQueue::all, bufs, &n, &a, &t, nullptr, &act), Result::ok);
      EXPECT_EQ(a, Action::no_action);
      break;
    }
    case Fault::none:
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryStep, FailLoop, ::testing::ValuesIn(fault_cases()), fault_name);

// The same loop with capacity-1 buffers and a client that splits frames at a small send buffer
// (several SEND_TO_NETWORK actions per frame): no crash, sends complete, state sane.
TEST(FailLoopSmallBuffers, EveryStepEveryFault) {
  int steps = 0;
  {
    Pair p(Props().sbs(16).rbs(256), Props().rbs(256));
    p.client.capacity = p.server.capacity = 1;
    run_scenario(p);
    steps = p.link.steps;
    EXPECT_EQ(p.client.h->state(), State::closed);
    EXPECT_EQ(p.server.h->state(), State::closed);
  }
  ASSERT_GT(steps, 20);
  for (Fault fault : {Fault::partial, Fault::zero, Fault::abort}) {
    for (int i = 0; i < steps; ++i) {
      Pair p(Props().sbs(16).rbs(256), Props().rbs(256));
      p.client.capacity = p.server.capacity = 1;
      p.link.fault_step = i;
      p.link.fault = fault;
      run_scenario(p);
      ASSERT_NE(p.link.faulted, nullptr);
      Endpoint& f = *p.link.faulted;
      Endpoint& peer = &f == &p.client ? p.server : p.client;
      SCOPED_TRACE("fault " + std::to_string(static_cast<int>(fault)) + " at step " + std::to_string(i));
      for (const auto& msg : f.failures) ADD_FAILURE() << msg;
      for (const auto& msg : peer.failures) ADD_FAILURE() << msg;
      EXPECT_EQ(f.send_completions, f.sends_accepted);
      EXPECT_EQ(peer.send_completions, peer.sends_accepted);
      EXPECT_TRUE(f.errors.empty());
      if (fault == Fault::abort) {
        EXPECT_EQ(f.h->state(), State::aborted);
      }
    }
  }
}

}  // namespace
}  // namespace wsgate::ws
