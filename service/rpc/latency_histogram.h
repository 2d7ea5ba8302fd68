// LatencyHistogram: a fixed-bucket histogram of durations in milliseconds, for the metrics
// endpoint (Prometheus histogram: cumulative buckets, sum and count).
//
// The buckets (1 ms .. 30 s, roughly x2.5 apart) cover a connect on loopback up to a handshake
// that hits the default 10 s timeout; everything above lands in +Inf.
//
// Lifetime: a plain member of its owner (SessionRegistry). Thread safety: record() and
// snapshot() may run concurrently from any thread; they only touch relaxed atomics, so a
// session's I/O thread never waits for a scrape. A snapshot taken during record() may count a
// sample in its bucket but not yet in the sum; `count` is always the sum of the buckets, so the
// exposition stays self-consistent (+Inf == count).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace wsgate::rpc {

class LatencyHistogram {
 public:
  static constexpr std::array<double, 12> kBoundsMs = {1,   2.5,  5,    10,   25,    50,
                                                       100, 250, 1000, 2500, 10000, 30000};

  void record(double ms) {
    if (!(ms >= 0)) ms = 0;  // negative or NaN: a clock step, count it as instant
    std::size_t i = 0;
    while (i < kBoundsMs.size() && ms > kBoundsMs[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_us_.fetch_add(static_cast<std::uint64_t>(ms * 1000.0), std::memory_order_relaxed);
  }

  struct Snapshot {
    std::array<std::uint64_t, kBoundsMs.size() + 1> cumulative{};  // last: +Inf
    std::uint64_t count = 0;
    double sum_ms = 0;
  };

  Snapshot snapshot() const {
    Snapshot s;
    std::uint64_t running = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      running += buckets_[i].load(std::memory_order_relaxed);
      s.cumulative[i] = running;
    }
    s.count = running;
    s.sum_ms = static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1000.0;
    return s;
  }

 private:
  std::array<std::atomic<std::uint64_t>, kBoundsMs.size() + 1> buckets_{};
  std::atomic<std::uint64_t> sum_us_{0};
};

}  // namespace wsgate::rpc
