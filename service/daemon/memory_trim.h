// MemoryTrimmer: hands the heap memory that glibc's malloc keeps after a burst of sessions back to
// the kernel (malloc_trim), so that a daemon under a memory limit (a container, a sidecar) does
// not stay at its peak RSS after the sessions are gone.
//
// Why: glibc returns freed memory to the kernel only from the top of each arena, and only when
// that top is free. A burst of 10 k sessions leaves the arenas of gRPC's and Asio's threads
// fragmented, so after every session had closed the daemon kept 340-400 MB of RSS for 2.4 MB of
// heap in use.
// malloc_trim(0) releases the free pages inside every arena too (madvise(MADV_DONTNEED)).
// bench/README.md ("Memory after a burst") compares this with jemalloc and mimalloc.
//
// When: a thread polls the session count (once a second by default) and trims when the count has
// fallen by at least `min_drop` sessions below its peak since the last trim, once the fall has
// stopped (the count did not fall since the previous poll) or has gone on for `max_wait`, and
// once more `settle` later (memory that the closed sessions still held at the first trim). So
// trims follow bursts, never a steady load, and never run on a gRPC or Asio thread: a trim costs
// up to ~0.15 s of arena locks for ~300 MB (measured: bench/README.md), off the hot path.
//
// WSGATE_MALLOC_TRIM=0 in the environment turns it off (for measurements; see
// docs/operations.md). Without glibc (musl, Windows) trim() does nothing.
//
// Lifetime: the thread starts in the constructor and stops (joined) in the destructor; `active`
// and `on_trim` must stay callable until then. Thread safety: `active` and `on_trim` are called
// on the trimmer's thread only; trims() may be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace wsgate::daemon {

class MemoryTrimmer {
 public:
  struct Options {
    std::chrono::milliseconds poll{1000};
    std::size_t min_drop = 256;  // sessions; ~30 KB each, so ~8 MB worth trimming
    std::chrono::milliseconds max_wait{10000};  // trim during a long steady fall, too
    // A second trim this long after a burst's: a session leaves the count before all of its
    // memory is freed (its upstream socket's close, gRPC's stream teardown finish later).
    std::chrono::milliseconds settle{5000};
    // Called on the trimmer's thread after each trim (tests wait on it); may be empty.
    std::function<void()> on_trim;
  };

  MemoryTrimmer(std::function<std::size_t()> active, Options options);
  ~MemoryTrimmer();
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  // False when WSGATE_MALLOC_TRIM is "0", "off" or "false".
  static bool enabled_by_environment();

  // Releases free heap memory now (malloc_trim(0)); returns whether any was released.
  static bool trim();

  std::uint64_t trims() const { return trims_.load(std::memory_order_relaxed); }

 private:
  void run();

  std::function<std::size_t()> active_;
  Options options_;
  std::atomic<std::uint64_t> trims_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after every member above is ready
};

}  // namespace wsgate::daemon
