#include "service/rpc/session_registry.h"

#include <openssl/rand.h>

#include <asio/ip/address.hpp>

#include <cstdlib>
#include <optional>

namespace wsgate::rpc {
namespace {

std::string new_session_id() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();  // no safe fallback for ids
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

}  // namespace

SessionRegistry::SessionRegistry(std::uint32_t max_sessions, std::uint32_t max_sessions_per_host)
    : max_sessions_(max_sessions), max_sessions_per_host_(max_sessions_per_host) {}

SessionRegistry::Admission SessionRegistry::admit(const std::string& host, std::string* id) {
  std::lock_guard lock(mutex_);
  if (draining_) return Admission::draining;
  if (entries_.size() >= max_sessions_) return Admission::total_limit;
  std::uint32_t& per_host = per_host_[host];
  if (per_host >= max_sessions_per_host_) {
    if (per_host == 0) per_host_.erase(host);
    return Admission::host_limit;
  }
  ++per_host;
  *id = new_session_id();
  entries_.emplace(*id, Entry{host, {}, {}});
  return Admission::admitted;
}

void SessionRegistry::attach(const std::string& id, std::weak_ptr<RegisteredSession> session) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it != entries_.end()) it->second.session = std::move(session);
}

bool SessionRegistry::admit_address(const std::string& id, const std::string& address) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return true;  // released meanwhile: nothing to count
  Entry& entry = it->second;
  if (address == entry.host || address == entry.address) return true;
  std::uint32_t& count = per_host_[address];
  if (count >= max_sessions_per_host_) {
    if (count == 0) per_host_.erase(address);
    return false;
  }
  ++count;
  if (!entry.address.empty()) unref_host(entry.address);
  entry.address = address;
  return true;
}

std::string SessionRegistry::host_key(std::string_view host) {
  std::string h(host);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  for (char& c : h) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  asio::error_code ec;
  const asio::ip::address a = asio::ip::make_address(h, ec);
  if (ec) return h;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string();
  }
  return a.to_string();
}

void SessionRegistry::unref_host(const std::string& key) {
  auto host = per_host_.find(key);
  if (host != per_host_.end() && --host->second == 0) per_host_.erase(host);
}

void SessionRegistry::release(const std::string& id) {
  std::shared_ptr<RegisteredSession> session;
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    session = it->second.session.lock();
  }
  // The last counters, read outside the lock (info() takes the session's own lock).
  std::optional<wsgate::v1::SessionInfo> last;
  if (session) last = session->info();
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;  // a concurrent release() got there first and counted it
  if (last) {
    bytes_sent_ += last->bytes_sent();
    bytes_received_ += last->bytes_received();
    messages_sent_ += last->messages_sent();
    messages_received_ += last->messages_received();
  }
  unref_host(it->second.host);
  if (!it->second.address.empty()) unref_host(it->second.address);
  entries_.erase(it);
  if (entries_.empty()) emptied_.notify_all();
}

std::vector<wsgate::v1::SessionInfo> SessionRegistry::list() const {
  std::vector<std::shared_ptr<RegisteredSession>> live;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, entry] : entries_) {
      if (auto s = entry.session.lock()) live.push_back(std::move(s));
    }
  }
  std::vector<wsgate::v1::SessionInfo> out;
  for (const auto& s : live) out.push_back(s->info());  // outside the lock
  return out;
}

std::size_t SessionRegistry::active() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void SessionRegistry::shutdown_all() {
  std::vector<std::shared_ptr<RegisteredSession>> live;
  {
    std::lock_guard lock(mutex_);
    draining_ = true;
    for (const auto& [id, entry] : entries_) {
      if (auto s = entry.session.lock()) live.push_back(std::move(s));
    }
  }
  for (const auto& s : live) s->shutdown();
}

bool SessionRegistry::wait_until_empty(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return emptied_.wait_for(lock, timeout, [this] { return entries_.empty(); });
}

void SessionRegistry::count_open() {
  std::lock_guard lock(mutex_);
  ++opens_total_;
}

void SessionRegistry::count_failure(const std::string& cause) {
  std::lock_guard lock(mutex_);
  ++failures_[cause];
}

SessionRegistry::Totals SessionRegistry::totals() const {
  Totals t;
  std::vector<std::shared_ptr<RegisteredSession>> live;
  {
    // The ended sessions' totals and the live list in one critical section: release() moves a
    // session from one to the other under the same mutex.
    std::lock_guard lock(mutex_);
    t.active = entries_.size();
    t.opens_total = opens_total_;
    t.failures_by_cause = failures_;
    t.bytes_sent = bytes_sent_;
    t.bytes_received = bytes_received_;
    t.messages_sent = messages_sent_;
    t.messages_received = messages_received_;
    for (const auto& [id, entry] : entries_) {
      if (auto s = entry.session.lock()) {
        live.push_back(std::move(s));
      } else {
        ++t.active_by_state["connecting"];  // admitted, not attached yet
      }
    }
  }
  for (const auto& s : live) {  // outside the lock: info() takes the session's lock
    const wsgate::v1::SessionInfo info = s->info();
    t.bytes_sent += info.bytes_sent();
    t.bytes_received += info.bytes_received();
    t.messages_sent += info.messages_sent();
    t.messages_received += info.messages_received();
    std::string state = wsgate::v1::SessionState_Name(info.state());
    if (state.rfind("SESSION_STATE_", 0) == 0) state.erase(0, 14);
    for (char& c : state) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    ++t.active_by_state[state];
  }
  return t;
}

wsgate::v1::GetStatsResponse SessionRegistry::stats() const {
  const Totals t = totals();
  wsgate::v1::GetStatsResponse out;
  out.set_active_sessions(t.active);
  out.set_opens_total(t.opens_total);
  for (const auto& [cause, n] : t.failures_by_cause) (*out.mutable_failures_by_cause())[cause] = n;
  out.set_bytes_sent(t.bytes_sent);
  out.set_bytes_received(t.bytes_received);
  return out;
}

}  // namespace wsgate::rpc
