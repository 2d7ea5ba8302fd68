// SessionRegistry: the daemon's table of Gateway sessions, with its limits and counters.
// It decides admission (total and per-host limits, refusal while draining), lists sessions for
// the Admin service, counts opens/failures/bytes for stats, and closes every session on drain.
//
// Stats are live: totals() (and so Admin.GetStats and the metrics endpoint) is the sum of the
// sessions that ended (their last info(), taken in release()) and of the live sessions' info()
// now, so one open session that moved 1000 bytes shows 1000 bytes before it closes. A session is
// in exactly one of the two at any time (release() moves it under the mutex), so a session is
// never counted twice nor missed.
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

#include "service/rpc/latency_histogram.h"
#include "wsgate/v1/admin.pb.h"

namespace wsgate::rpc {

// What the registry needs from a session.
class RegisteredSession {
 public:
  virtual ~RegisteredSession() = default;
  // The session's current state and counters. Called from any thread, also from release():
  // a session must not hold a lock that info() takes while it calls release().
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
  // Frees the slot (idempotent) and moves the session's counters (its info() now) into the
  // totals of ended sessions.
  void release(const std::string& id);

  std::vector<wsgate::v1::SessionInfo> list() const;
  std::size_t active() const;

  // Refuses new sessions from now on and asks every session to close with 1001.
  void shutdown_all();
  // Waits until no session is left or `timeout` passes; true when empty.
  bool wait_until_empty(std::chrono::milliseconds timeout);

  void count_open();
  void count_failure(const std::string& cause);
  wsgate::v1::GetStatsResponse stats() const;

  // Everything stats() and the metrics endpoint report, live (see the header comment).
  struct Totals {
    std::uint64_t active = 0;
    // Live sessions by SessionState name without its prefix, lower-case ("connecting", "open",
    // "closing", "closed"); a slot admitted but not attached yet counts as "connecting".
    std::map<std::string, std::uint64_t> active_by_state;
    std::uint64_t opens_total = 0;
    std::map<std::string, std::uint64_t> failures_by_cause;
    std::uint64_t bytes_sent = 0;  // client -> upstream payload bytes
    std::uint64_t bytes_received = 0;
    std::uint64_t messages_sent = 0;
    std::uint64_t messages_received = 0;
  };
  Totals totals() const;

  // Latencies measured by the session code: TCP (and TLS) connect, and the WebSocket opening
  // handshake, in milliseconds. Lock-free (LatencyHistogram).
  void record_connect_latency(double ms) { connect_latency_.record(ms); }
  void record_handshake_latency(double ms) { handshake_latency_.record(ms); }
  LatencyHistogram::Snapshot connect_latency() const { return connect_latency_.snapshot(); }
  LatencyHistogram::Snapshot handshake_latency() const { return handshake_latency_.snapshot(); }

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
  // Counters of the sessions that ended (moved here by release()).
  std::uint64_t bytes_sent_ = 0;
  std::uint64_t bytes_received_ = 0;
  std::uint64_t messages_sent_ = 0;
  std::uint64_t messages_received_ = 0;
  LatencyHistogram connect_latency_;
  LatencyHistogram handshake_latency_;
};

}  // namespace wsgate::rpc
