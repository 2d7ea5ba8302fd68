// Happy Eyeballs v2 (RFC 8305) without I/O: in which order the addresses of a host are tried,
// and when each connection attempt starts. The Asio part (service/net/connector.h) feeds it
// events (begin, timer fired, attempt failed) and does what the returned Step says, so the
// schedule is unit-tested with a fake clock (tests/unit/net/happy_eyeballs_test.cc).
//
// What is kept from RFC 8305 and what is not:
//   - Resolution (section 3): getaddrinfo() returns both families in one answer, sorted by RFC
//     6724; separate AAAA and A queries, and so the "Resolution Delay", are not possible
//     through it. The attempts start once the whole answer is there.
//   - Sorting (section 4): the family of getaddrinfo's first address goes first (IPv6 on a
//     host with IPv6 connectivity, as RFC 6724 sorts), then the families alternate, each
//     family keeping getaddrinfo's order ("First Address Family Count" 1).
//   - Attempts (section 5): one attempt starts at a time; the next starts when the "Connection
//     Attempt Delay" has passed since the last start, or at once when the most recently started
//     attempt fails (or when nothing is running any more). Earlier attempts keep running; the
//     first to connect wins and the caller cancels the others. The overall connect_timeout is
//     the session machine's, outside this class.
//
// Lifetime and thread safety: a plain value, owned by one connector; not synchronised (the
// connector uses it on its strand only).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <vector>

namespace wsgate::net {

class AttemptSchedule {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;
  using Duration = Clock::duration;

  // The order of the attempts, as indices into the resolver's answer, whose i-th address is
  // IPv6 when is_v6[i]: the first address's family first, then alternating (see above).
  static std::vector<std::size_t> interleave(const std::vector<bool>& is_v6);

  // `count` attempts (positions 0..count-1 of the order the caller chose), `delay` apart.
  AttemptSchedule(std::size_t count, Duration delay);

  // What the caller does now. Every field may be set at once.
  struct Step {
    std::optional<std::size_t> start;  // start this attempt now
    std::optional<TimePoint> wake;     // call on_timer() at this time (replaces an earlier one)
    bool exhausted = false;            // every attempt failed: the connect failed
  };

  Step begin(TimePoint now);
  Step on_timer(TimePoint now);
  // Attempt `attempt` (started earlier, not failed before) failed.
  Step on_failed(TimePoint now, std::size_t attempt);

  std::size_t started() const { return next_; }
  std::size_t running() const { return running_; }

 private:
  Step start_next(TimePoint now);

  std::size_t count_;
  Duration delay_;
  std::size_t next_ = 0;     // attempts started so far
  std::size_t running_ = 0;  // started and not failed
  TimePoint last_start_{};
};

}  // namespace wsgate::net
