// MemoryBudget: the daemon-wide bound on message payload held in memory by Gateway sessions,
// both directions (client -> upstream messages not yet written to the socket, upstream ->
// client messages being assembled or waiting for the gRPC client). Each session's queues are
// bounded by max_queued_bytes, but a single message is not (up to max_message_bytes_ceiling or
// the gRPC limit), so many sessions each holding one large message could exhaust the host; the
// budget refuses the large message that would go past it (limits.memory_budget_bytes).
//
// Small messages (at most kAlwaysAdmittedBytes) are counted but never refused: a full budget
// does not stall ordinary traffic, and their total is already bounded by the per-session
// max_queued_bytes.
//
// BudgetCharge is the bytes one message (or message being assembled) holds: move-only, it
// releases them when reset or destroyed, so a message dropped on any path gives its bytes back.
//
// Lifetime: the budget is shared (shared_ptr) by the Gateway service and every charge against
// it. Thread safety: MemoryBudget is safe from any thread (one atomic counter); a BudgetCharge
// is a value used by one thread at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace wsgate::net {

class MemoryBudget {
 public:
  // Messages up to this size are always admitted (see above).
  static constexpr std::uint64_t kAlwaysAdmittedBytes = 64 * 1024;

  explicit MemoryBudget(std::uint64_t limit) : limit_(limit) {}

  // Adds `n` bytes unless that would go past the limit (`force`: add them anyway).
  bool try_charge(std::uint64_t n, bool force = false) noexcept;
  void release(std::uint64_t n) noexcept { used_.fetch_sub(n, std::memory_order_relaxed); }

  std::uint64_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
  std::uint64_t limit() const noexcept { return limit_; }

 private:
  const std::uint64_t limit_;
  std::atomic<std::uint64_t> used_{0};
};

class BudgetCharge {
 public:
  BudgetCharge() = default;
  explicit BudgetCharge(std::shared_ptr<MemoryBudget> budget) : budget_(std::move(budget)) {}
  ~BudgetCharge() { reset(); }
  BudgetCharge(BudgetCharge&& other) noexcept
      : budget_(std::move(other.budget_)), bytes_(other.bytes_) {
    other.bytes_ = 0;
  }
  BudgetCharge& operator=(BudgetCharge&& other) noexcept {
    if (this != &other) {
      reset();
      budget_ = std::move(other.budget_);
      bytes_ = other.bytes_;
      other.bytes_ = 0;
    }
    return *this;
  }
  BudgetCharge(const BudgetCharge&) = delete;
  BudgetCharge& operator=(const BudgetCharge&) = delete;

  // Charges `n` more bytes of a message whose size is now `message_size` (so a small message
  // is never refused). True when charged, or when there is no budget.
  bool grow(std::uint64_t n, std::uint64_t message_size) noexcept {
    if (!budget_ || n == 0) return true;
    if (!budget_->try_charge(n, message_size <= MemoryBudget::kAlwaysAdmittedBytes)) return false;
    bytes_ += n;
    return true;
  }
  // Gives the bytes back (the charge stays attached to its budget).
  void reset() noexcept {
    if (budget_ && bytes_ != 0) budget_->release(bytes_);
    bytes_ = 0;
  }
  std::uint64_t bytes() const noexcept { return bytes_; }
  const std::shared_ptr<MemoryBudget>& budget() const noexcept { return budget_; }

 private:
  std::shared_ptr<MemoryBudget> budget_;
  std::uint64_t bytes_ = 0;
};

}  // namespace wsgate::net
