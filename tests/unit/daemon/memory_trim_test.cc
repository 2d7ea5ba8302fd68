// MemoryTrimmer's policy (service/daemon/memory_trim.h): when it trims, driven by a session count
// the test sets, with short poll periods. Waits on the trimmer's own events (each poll, each trim)
// with a timeout; never on time alone.
#include "service/daemon/memory_trim.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace wsgate::daemon {
namespace {

using std::chrono::milliseconds;

// The count the trimmer polls, and what it did, with waits on both.
class Probe {
 public:
  std::size_t poll() {
    std::lock_guard lock(mu_);
    ++polls_;
    if (step_ != 0) count_ = count_ > step_ ? count_ - step_ : 0;
    cv_.notify_all();
    return count_;
  }
  void trimmed() {
    std::lock_guard lock(mu_);
    trims_at_.push_back(count_);
    cv_.notify_all();
  }
  void set(std::size_t count, std::size_t step = 0) {
    std::lock_guard lock(mu_);
    count_ = count;
    step_ = step;
  }
  // Waits until `n` more polls have happened; false on timeout.
  bool wait_polls(int n) {
    std::unique_lock lock(mu_);
    const int target = polls_ + n;
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return polls_ >= target; });
  }
  bool wait_trims(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return trims_at_.size() >= n; });
  }
  std::vector<std::size_t> trims_at() {
    std::lock_guard lock(mu_);
    return trims_at_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int polls_ = 0;
  std::size_t count_ = 0;
  std::size_t step_ = 0;
  std::vector<std::size_t> trims_at_;
};

MemoryTrimmer::Options fast(Probe& probe) {
  MemoryTrimmer::Options o;
  o.poll = milliseconds(2);
  o.min_drop = 256;
  o.max_wait = milliseconds(10000);
  o.settle = milliseconds(30);
  o.on_trim = [&probe] { probe.trimmed(); };
  return o;
}

TEST(MemoryTrimmer, TrimsWhenABurstIsOverThenOnceMoreAfterSettle) {
  Probe probe;
  probe.set(1000);
  MemoryTrimmer trimmer([&] { return probe.poll(); }, fast(probe));
  ASSERT_TRUE(probe.wait_polls(3));
  probe.set(0);
  ASSERT_TRUE(probe.wait_trims(2));
  // Nothing more while the count stays where it is.
  ASSERT_TRUE(probe.wait_polls(50));
  EXPECT_EQ(probe.trims_at(), (std::vector<std::size_t>{0, 0}));
  EXPECT_EQ(trimmer.trims(), 2u);
}

TEST(MemoryTrimmer, DoesNotTrimForSmallFallsOrASteadyLoad) {
  Probe probe;
  probe.set(1000);
  MemoryTrimmer trimmer([&] { return probe.poll(); }, fast(probe));
  ASSERT_TRUE(probe.wait_polls(3));
  probe.set(800);  // 200 fewer: below min_drop
  ASSERT_TRUE(probe.wait_polls(20));
  probe.set(1000);
  ASSERT_TRUE(probe.wait_polls(20));
  probe.set(745);  // 255 below the peak
  ASSERT_TRUE(probe.wait_polls(50));
  EXPECT_EQ(trimmer.trims(), 0u);
  EXPECT_TRUE(probe.trims_at().empty());
}

TEST(MemoryTrimmer, ALongSteadyFallTrimsAfterMaxWait) {
  Probe probe;
  probe.set(1000000);
  auto options = fast(probe);
  options.max_wait = milliseconds(20);
  options.settle = milliseconds(1000000);  // no follow-up in this test
  MemoryTrimmer trimmer([&] { return probe.poll(); }, options);
  ASSERT_TRUE(probe.wait_polls(3));
  probe.set(1000000, 100);  // 100 fewer at every poll: never "over"
  ASSERT_TRUE(probe.wait_trims(1));
  const auto at = probe.trims_at();
  EXPECT_GT(at.front(), 0u) << "trimmed only once the fall had ended";
}

TEST(MemoryTrimmer, EnvironmentTurnsItOff) {
  ::unsetenv("WSGATE_MALLOC_TRIM");
  EXPECT_TRUE(MemoryTrimmer::enabled_by_environment());
  for (const char* off : {"0", "off", "false"}) {
    ::setenv("WSGATE_MALLOC_TRIM", off, 1);
    EXPECT_FALSE(MemoryTrimmer::enabled_by_environment()) << off;
  }
  ::setenv("WSGATE_MALLOC_TRIM", "1", 1);
  EXPECT_TRUE(MemoryTrimmer::enabled_by_environment());
  ::unsetenv("WSGATE_MALLOC_TRIM");
}

}  // namespace
}  // namespace wsgate::daemon
