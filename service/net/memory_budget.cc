#include "service/net/memory_budget.h"

namespace wsgate::net {

bool MemoryBudget::try_charge(std::uint64_t n, bool force) noexcept {
  if (force) {
    used_.fetch_add(n, std::memory_order_relaxed);
    return true;
  }
  std::uint64_t used = used_.load(std::memory_order_relaxed);
  do {
    if (n > limit_ || used > limit_ - n) return false;
  } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
  return true;
}

}  // namespace wsgate::net
