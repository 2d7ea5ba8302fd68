#include "service/net/happy_eyeballs.h"

namespace wsgate::net {

std::vector<std::size_t> AttemptSchedule::interleave(const std::vector<bool>& is_v6) {
  std::vector<std::size_t> first;
  std::vector<std::size_t> other;
  for (std::size_t i = 0; i < is_v6.size(); ++i) {
    (is_v6[i] == is_v6.front() ? first : other).push_back(i);
  }
  std::vector<std::size_t> order;
  order.reserve(is_v6.size());
  for (std::size_t i = 0; i < first.size() || i < other.size(); ++i) {
    if (i < first.size()) order.push_back(first[i]);
    if (i < other.size()) order.push_back(other[i]);
  }
  return order;
}

AttemptSchedule::AttemptSchedule(std::size_t count, Duration delay)
    : count_(count), delay_(delay) {}

AttemptSchedule::Step AttemptSchedule::start_next(TimePoint now) {
  Step step;
  step.start = next_++;
  ++running_;
  last_start_ = now;
  if (next_ < count_) step.wake = now + delay_;
  return step;
}

AttemptSchedule::Step AttemptSchedule::begin(TimePoint now) {
  if (count_ == 0) {
    Step step;
    step.exhausted = true;
    return step;
  }
  return start_next(now);
}

AttemptSchedule::Step AttemptSchedule::on_timer(TimePoint now) {
  if (next_ >= count_) return {};
  const TimePoint due = last_start_ + delay_;
  if (now < due) {  // early (a timer set for an earlier schedule): wait on
    Step step;
    step.wake = due;
    return step;
  }
  return start_next(now);
}

AttemptSchedule::Step AttemptSchedule::on_failed(TimePoint now, std::size_t attempt) {
  if (running_ > 0) --running_;
  const bool latest = attempt + 1 == next_;
  if (next_ < count_ && (latest || running_ == 0)) return start_next(now);
  Step step;
  step.exhausted = next_ >= count_ && running_ == 0;
  return step;
}

}  // namespace wsgate::net
