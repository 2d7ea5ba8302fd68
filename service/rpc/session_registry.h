// SessionRegistry: the daemon's table of Gateway sessions, with its limits and counters.
// It decides admission (total and per-host limits, refusal while draining), lists sessions for
// the Admin service, counts opens/failures/bytes for stats, and closes every session on drain.
//
// Object lifetime: one per daemon, owned by the Server, outliving every session and service.
// Sessions are held by weak_ptr: the registry never keeps a session alive.
// Thread safety: every member is safe from any thread (one mutex; no callback runs under it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "wsgate/v1/admin.pb.h"

namespace wsgate::rpc {

// What the registry needs from a session.
class RegisteredSession {
 public:
  virtual ~RegisteredSession() = default;
  virtual wsgate::v1::SessionInfo info() const = 0;
  // Close with 1001 (going away) because the daemon is draining.
  virtual void shutdown() = 0;
};

class SessionRegistry {
 public:
  SessionRegistry(std::uint32_t max_sessions, std::uint32_t max_sessions_per_host);

  enum class Admission { admitted, total_limit, host_limit, draining };
  // Reserves a slot for a session to `host` (a host_key()); on success *id is its new
  // unguessable id.
  Admission admit(const std::string& host, std::string* id);
  // Once connected: counts session `id` against the per-host limit of the address it reached
  // as well (a host_key(); nothing more when it equals the session's host). False when that
  // address has no slot left; the session keeps its host slot until release().
  bool admit_address(const std::string& id, const std::string& address);
  // What the per-host limit counts: the host lower-cased, without brackets, an IPv6 address in
  // its canonical form and an IPv4-mapped IPv6 address as the IPv4 address, so "LOCALHOST" and
  // "localhost", or "[::ffff:7f00:1]" and "127.0.0.1", are one host.
  static std::string host_key(std::string_view host);
  void attach(const std::string& id, std::weak_ptr<RegisteredSession> session);
  // Frees the slot (idempotent).
  void release(const std::string& id);

  std::vector<wsgate::v1::SessionInfo> list() const;
  std::size_t active() const;

  // Refuses new sessions from now on and asks every session to close with 1001.
  void shutdown_all();
  // Waits until no session is left or `timeout` passes; true when empty.
  bool wait_until_empty(std::chrono::milliseconds timeout);

  void count_open();
  void count_failure(const std::string& cause);
  void add_bytes(std::uint64_t sent, std::uint64_t received);
  wsgate::v1::GetStatsResponse stats() const;

 private:
  struct Entry {
    std::string host;
    std::string address;  // the resolved address's key when counted apart from `host`
    std::weak_ptr<RegisteredSession> session;
  };
  void unref_host(const std::string& key);  // with mutex_ held
  const std::uint32_t max_sessions_;
  const std::uint32_t max_sessions_per_host_;
  mutable std::mutex mutex_;
  std::condition_variable emptied_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::uint32_t> per_host_;
  bool draining_ = false;
  std::uint64_t opens_total_ = 0;
  std::map<std::string, std::uint64_t> failures_;
  std::uint64_t bytes_sent_ = 0;
  std::uint64_t bytes_received_ = 0;
};

}  // namespace wsgate::rpc
