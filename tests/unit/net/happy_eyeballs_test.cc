// The Happy Eyeballs schedule (service/net/happy_eyeballs.h) with a fake clock: the order of
// the addresses, when each attempt starts, and when the connect has failed.
#include "service/net/happy_eyeballs.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

namespace wsgate::net {
namespace {

using std::chrono::milliseconds;
using Step = AttemptSchedule::Step;
constexpr bool v6 = true;
constexpr bool v4 = false;

const AttemptSchedule::TimePoint t0{std::chrono::seconds(1000)};

TEST(HappyEyeballsOrder, FirstFamilyThenAlternate) {
  EXPECT_EQ(AttemptSchedule::interleave({v6, v6, v4, v4, v4}),
            (std::vector<std::size_t>{0, 2, 1, 3, 4}));
  // getaddrinfo put IPv4 first (no IPv6 connectivity): IPv4 leads.
  EXPECT_EQ(AttemptSchedule::interleave({v4, v4, v6}), (std::vector<std::size_t>{0, 2, 1}));
  EXPECT_EQ(AttemptSchedule::interleave({v6, v4, v6, v4}),
            (std::vector<std::size_t>{0, 1, 2, 3}));
  EXPECT_EQ(AttemptSchedule::interleave({v4, v4}), (std::vector<std::size_t>{0, 1}));
  EXPECT_TRUE(AttemptSchedule::interleave({}).empty());
}

TEST(HappyEyeballsSchedule, NextAttemptAfterTheDelay) {
  AttemptSchedule s(3, milliseconds(250));
  Step step = s.begin(t0);
  ASSERT_EQ(step.start, 0u);
  ASSERT_EQ(step.wake, t0 + milliseconds(250));
  EXPECT_FALSE(step.exhausted);

  // A timer that fires early (one set for an earlier schedule) starts nothing.
  step = s.on_timer(t0 + milliseconds(100));
  EXPECT_FALSE(step.start);
  EXPECT_EQ(step.wake, t0 + milliseconds(250));

  step = s.on_timer(t0 + milliseconds(250));
  EXPECT_EQ(step.start, 1u);
  EXPECT_EQ(step.wake, t0 + milliseconds(500));
  step = s.on_timer(t0 + milliseconds(500));
  EXPECT_EQ(step.start, 2u);
  EXPECT_FALSE(step.wake) << "no attempt is left to schedule";
  EXPECT_EQ(s.running(), 3u);
  // Nothing left: a late timer is a no-op.
  step = s.on_timer(t0 + milliseconds(750));
  EXPECT_FALSE(step.start);
  EXPECT_FALSE(step.exhausted);
}

TEST(HappyEyeballsSchedule, FailureOfTheLatestStartsTheNextAtOnce) {
  AttemptSchedule s(3, milliseconds(2000));
  ASSERT_EQ(s.begin(t0).start, 0u);
  Step step = s.on_failed(t0 + milliseconds(5), 0);
  EXPECT_EQ(step.start, 1u) << "no waiting for the delay after a refusal";
  EXPECT_EQ(step.wake, t0 + milliseconds(2005)) << "the delay counts from the new start";
  EXPECT_FALSE(step.exhausted);
}

TEST(HappyEyeballsSchedule, FailureOfAnOlderAttemptLetsTheLatestRunItsDelay) {
  AttemptSchedule s(3, milliseconds(250));
  s.begin(t0);
  ASSERT_EQ(s.on_timer(t0 + milliseconds(250)).start, 1u);
  Step step = s.on_failed(t0 + milliseconds(300), 0);
  EXPECT_FALSE(step.start);
  EXPECT_FALSE(step.exhausted);
  EXPECT_EQ(s.running(), 1u);
  EXPECT_EQ(s.on_timer(t0 + milliseconds(500)).start, 2u);
}

TEST(HappyEyeballsSchedule, ExhaustedWhenEveryAttemptFailed) {
  AttemptSchedule s(2, milliseconds(250));
  s.begin(t0);
  ASSERT_EQ(s.on_timer(t0 + milliseconds(250)).start, 1u);
  EXPECT_FALSE(s.on_failed(t0 + milliseconds(260), 1).exhausted) << "attempt 0 still runs";
  Step step = s.on_failed(t0 + milliseconds(270), 0);
  EXPECT_TRUE(step.exhausted);
  EXPECT_FALSE(step.start);
}

TEST(HappyEyeballsSchedule, OneAddress) {
  AttemptSchedule s(1, milliseconds(250));
  Step step = s.begin(t0);
  EXPECT_EQ(step.start, 0u);
  EXPECT_FALSE(step.wake);
  EXPECT_TRUE(s.on_failed(t0 + milliseconds(1), 0).exhausted);
}

TEST(HappyEyeballsSchedule, NoAddressIsExhaustedAtOnce) {
  AttemptSchedule s(0, milliseconds(250));
  Step step = s.begin(t0);
  EXPECT_TRUE(step.exhausted);
  EXPECT_FALSE(step.start);
}

}  // namespace
}  // namespace wsgate::net
