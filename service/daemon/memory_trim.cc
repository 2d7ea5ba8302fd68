#include "service/daemon/memory_trim.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "service/log/logging.h"

namespace wsgate::daemon {
namespace {

// VmRSS in KB, for the debug log; -1 when unknown.
long rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

}  // namespace

MemoryTrimmer::MemoryTrimmer(std::function<std::size_t()> active, Options options)
    : active_(std::move(active)), options_(options), thread_([this] { run(); }) {}

MemoryTrimmer::~MemoryTrimmer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool MemoryTrimmer::enabled_by_environment() {
  const char* v = std::getenv("WSGATE_MALLOC_TRIM");
  if (v == nullptr) return true;
  const std::string_view s(v);
  return !(s == "0" || s == "off" || s == "false");
}

bool MemoryTrimmer::trim() {
#if defined(__GLIBC__)
  return ::malloc_trim(0) != 0;
#else
  return false;
#endif
}

void MemoryTrimmer::run() {
  using Clock = std::chrono::steady_clock;
  std::size_t peak = active_();
  std::size_t previous = peak;
  Clock::time_point falling_since{};
  Clock::time_point follow_up{};  // zero: none due
  auto trim_now = [this](const char* why, std::size_t from, std::size_t to) {
    const long before = rss_kb();
    const auto t0 = Clock::now();
    trim();
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
    trims_.fetch_add(1, std::memory_order_relaxed);
    log::logger("daemon")->debug("malloc_trim ({}, sessions {} -> {}): RSS {} KB -> {} KB in {} us", why,
                            from, to, before, rss_kb(), us);
    if (options_.on_trim) options_.on_trim();
  };
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, options_.poll, [this] { return stop_; })) {
    lock.unlock();
    const std::size_t now = active_();
    const auto t = Clock::now();
    if (now > peak) peak = now;
    if (peak - now < options_.min_drop) {
      falling_since = {};
    } else {
      if (falling_since == Clock::time_point{}) falling_since = t;
      if (now >= previous || t - falling_since >= options_.max_wait) {
        trim_now("burst over", peak, now);
        peak = now;
        falling_since = {};
        follow_up = t + options_.settle;
      }
    }
    if (follow_up != Clock::time_point{} && t >= follow_up) {
      trim_now("follow-up", now, now);
      follow_up = {};
    }
    previous = now;
    lock.lock();
  }
}

}  // namespace wsgate::daemon
