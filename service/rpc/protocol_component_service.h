// ProtocolComponentService: the wsgate.v1.ProtocolComponent gRPC service, websocket.h's 13
// functions as RPCs over the sans-I/O engine (service/ws). One RPC is one engine call; the
// engine's semantics (service/ws/README.md) are unchanged, except where the dll hands out
// pointers: there bytes travel instead (see proto/wsgate/v1/protocol_component.proto).
//
// Handles and scoping.
//   - A handle id is 64 bits from OpenSSL's CSPRNG (RAND_bytes), never 0, never reused while
//     live. Ids cannot be listed through any RPC; they are capabilities.
//   - Each handle belongs to the caller that created it. Who the caller is comes from a CallerOf
//     (a constructor argument): `owner` scopes handles, `quota_key` counts them against the
//     per-client quota. The default CallerOf uses one key for both: context->peer() plus the
//     value of the client metadata "wsgate-client-id" when present (absent and empty are
//     different keys). A call naming a handle whose owner differs from the caller's gets
//     NOT_FOUND, exactly as an unknown or deleted id does, so a foreign id reveals nothing.
//     For TCP peers the peer string ("ipv4:1.2.3.4:5678") is per connection, so a reconnecting
//     client cannot reach its old handles. For unix-socket peers the peer string is not per
//     connection (every client of the socket gets the same one), hence the optional metadata:
//     clients sharing a socket should send a random "wsgate-client-id" to keep their handles
//     apart. With the default CallerOf the quota is per owner, so a client that invents many
//     client ids gets many quotas; the daemon-wide limits below still hold. A daemon that knows
//     its peers (e.g. by their credentials) passes a CallerOf with a coarser quota_key.
//   - release_owner(owner) deletes every handle of an owner, e.g. when its connection goes away
//     (the daemon calls it when it learns that). Otherwise a handle lives until DeleteHandle (or
//     the service's destruction), or, with an idle lease (ProtocolComponentLimits::idle_lease,
//     off by default), until no RPC has named it for that long: the next RPC that names or
//     creates any handle deletes it, as DeleteHandle would (the check runs at most every
//     quarter lease, so a handle may stay up to 1.25 leases; while no RPC comes, nothing
//     competes for what it holds).
//     Off by default because a healthy handle can be idle for hours: an app waiting for a
//     message has a Receive queued and nothing to call.
//
// Limits (ProtocolComponentLimits; each refusal is RESOURCE_EXHAUSTED with an ErrorDetail naming
// E_OUTOFMEMORY and the cause in quotes; nothing already accepted is lost and the handle stays
// usable: driving its action loop through the INDICATE_*_COMPLETE actions gives the room back):
//   - max_handles live handles, all callers together: CreateClientHandle / CreateServerHandle
//     beyond it fail ("handle_limit").
//   - max_handles_per_client live handles per quota_key ("handle_quota").
//   - Per handle, max_pending_operations queued Sends + Receives (zero-copy Receives and empty
//     Sends count too: they hold no bytes but an engine queue slot) and
//     max_queued_bytes_per_handle bytes held for them (Send data or close reason, Receive app
//     buffers): a Send or Receive past either fails ("handle_queue_limit"). A single Send larger
//     than the byte bound can never be queued: send such a message as fragments.
//   - max_memory_bytes: the bytes held for queued operations of all handles together; a Send or
//     Receive that would exceed it fails ("memory_budget").
//   Deleting a handle (DeleteHandle, release_owner or the idle lease) returns its bytes and its
//   quota slot.
//
// Buffers the dll requires the app to keep alive are owned by the handle's entry:
//   - Send: the request's bytes (data or close reason) are copied into per-handle storage, kept
//     until that Send's INDICATE_SEND_COMPLETE action is completed (sends complete in FIFO order).
//   - Receive with buffer_length: an app buffer of min(buffer_length, RECEIVE_BUFFER_SIZE) bytes
//     (the engine never fills more than RECEIVE_BUFFER_SIZE bytes of a buffer, so the behaviour is
//     that of the requested length), kept until its INDICATE_RECEIVE_COMPLETE is completed.
//     Without buffer_length the Receive is zero-copy.
//   - RECEIVE_FROM_NETWORK: the engine's buffer descriptor is remembered with its action context;
//     CompleteAction with that context copies `data` into it (more bytes than receive_capacity:
//     INVALID_ARGUMENT and the action stays outstanding; empty data: EOF, i.e. completion with 0).
// SEND_TO_NETWORK buffers and INDICATE_RECEIVE_COMPLETE data are copied into GetActionResponse.
//
// Errors: engine results map through rpc::engine_status (status.h). Failures found here carry an
// ErrorDetail naming the HRESULT the dll would have given: NOT_FOUND (E_INVALIDARG, cause
// "unknown_handle"), INVALID_ARGUMENT for bad enum values, ALLOCATED_BUFFER, oversize data
// (E_INVALIDARG, cause "bad_request"), RESOURCE_EXHAUSTED for the limits above (E_OUTOFMEMORY),
// OUT_OF_RANGE with ErrorDetail.required_size for GetGlobalProperty.
//
// Object lifetime: the service owns every handle; DeleteHandle and release_owner destroy them
// (after the calls already inside them finish, together with every buffer they hold); the
// destructor destroys the rest. The service must outlive the grpc::Server it is registered with
// (shut the server down first).
//
// Thread safety: every method is safe from any thread (gRPC calls them from its callback
// threads). Calls on one handle are serialised by the handle's mutex; calls on different handles
// run in parallel. The handles live in a ws::HandleTable (the one stale-safe handle table);
// its lock, held only for lookups and updates, also guards the per-quota_key counts. The byte
// budget is an atomic counter. release_owner (and the idle lease, which runs on the calling
// gRPC thread before it takes any lock) waits for the calls inside the handles it deletes,
// which are short: no call blocks inside a handle.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "service/ws/handle_table.h"
#include "wsgate/v1/protocol_component.grpc.pb.h"

namespace wsgate::rpc {

// The service's bounds (see above). The defaults are those of docs/configuration.md.
struct ProtocolComponentLimits {
  std::uint32_t max_handles = 1024;
  // 1/16 of max_handles: at least 16 clients can hold their whole quota at once, and one client
  // still gets far more handles than it drives WebSocket connections in practice.
  std::uint32_t max_handles_per_client = 64;
  // The gateway's default max_message_bytes: a message it accepts by default fits in one Send.
  std::uint64_t max_queued_bytes_per_handle = 16u << 20;
  // A driven handle holds a few operations (a Receive, a Send or two); 1024 leaves room to
  // batch while capping the engine's queues (100 k Receives took ~400 MB without a bound).
  std::uint32_t max_pending_operations = 1024;
  // Daemon-wide: what all clients together can make the daemon hold, whatever the other bounds
  // multiply to (1024 handles x 16 MiB would be 16 GiB); 16 full handle queues.
  std::uint64_t max_memory_bytes = 256u << 20;
  // Handles no RPC named for this long are deleted (see above); 0: never.
  std::chrono::milliseconds idle_lease{0};
};

class ProtocolComponentService final : public wsgate::v1::ProtocolComponent::CallbackService {
 public:
  // Client metadata key naming the caller inside a shared peer (see above).
  static constexpr const char* kClientIdMetadata = "wsgate-client-id";

  // Who is calling: `owner` scopes handles (lookups by another owner are NOT_FOUND), `quota_key`
  // counts them against max_handles_per_client.
  struct Caller {
    std::string owner;
    std::string quota_key;
  };
  // Called on gRPC's threads, for every RPC that names or creates a handle. Empty: the default
  // rule (peer + "wsgate-client-id" as owner, quota_key = owner).
  using CallerOf = std::function<Caller(const grpc::CallbackServerContext&)>;
  // The default rule, for a CallerOf that knows only some of its peers.
  static Caller default_caller(const grpc::CallbackServerContext& context);

  // The clock of the idle lease; empty: std::chrono::steady_clock::now (tests pass a fake one).
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  explicit ProtocolComponentService(const ProtocolComponentLimits& limits,
                                    CallerOf caller_of = nullptr, Clock clock = nullptr);
  ~ProtocolComponentService() override;
  ProtocolComponentService(const ProtocolComponentService&) = delete;
  ProtocolComponentService& operator=(const ProtocolComponentService&) = delete;

  // Live handles, all callers together (Admin's GetStats.protocol_handles).
  std::size_t handle_count() const;

  // Deletes every handle of `owner`, as DeleteHandle would each (after the calls inside it
  // finish). Safe from any thread, also while calls on those handles are in flight.
  void release_owner(const std::string& owner);

  // Bytes held for queued operations, all handles together (what max_memory_bytes bounds).
  std::uint64_t accounted_bytes() const { return accounted_bytes_.load(); }
  // Handle entries alive, including deleted ones that calls still in flight hold: 0 once every
  // handle is deleted and its calls are done, i.e. nothing of a deleted handle is kept.
  std::size_t live_entries() const { return live_entries_.load(); }

  grpc::ServerUnaryReactor* CreateClientHandle(grpc::CallbackServerContext* context,
                                               const wsgate::v1::CreateHandleRequest* request,
                                               wsgate::v1::CreateHandleResponse* response) override;
  grpc::ServerUnaryReactor* CreateServerHandle(grpc::CallbackServerContext* context,
                                               const wsgate::v1::CreateHandleRequest* request,
                                               wsgate::v1::CreateHandleResponse* response) override;
  grpc::ServerUnaryReactor* BeginClientHandshake(
      grpc::CallbackServerContext* context, const wsgate::v1::BeginClientHandshakeRequest* request,
      wsgate::v1::BeginClientHandshakeResponse* response) override;
  grpc::ServerUnaryReactor* EndClientHandshake(
      grpc::CallbackServerContext* context, const wsgate::v1::EndClientHandshakeRequest* request,
      wsgate::v1::EndClientHandshakeResponse* response) override;
  grpc::ServerUnaryReactor* BeginServerHandshake(
      grpc::CallbackServerContext* context, const wsgate::v1::BeginServerHandshakeRequest* request,
      wsgate::v1::BeginServerHandshakeResponse* response) override;
  grpc::ServerUnaryReactor* EndServerHandshake(grpc::CallbackServerContext* context,
                                               const wsgate::v1::HandleRequest* request,
                                               wsgate::v1::Empty* response) override;
  grpc::ServerUnaryReactor* Send(grpc::CallbackServerContext* context,
                                 const wsgate::v1::SendRequest* request,
                                 wsgate::v1::Empty* response) override;
  grpc::ServerUnaryReactor* Receive(grpc::CallbackServerContext* context,
                                    const wsgate::v1::ReceiveRequest* request,
                                    wsgate::v1::Empty* response) override;
  grpc::ServerUnaryReactor* GetAction(grpc::CallbackServerContext* context,
                                      const wsgate::v1::GetActionRequest* request,
                                      wsgate::v1::GetActionResponse* response) override;
  grpc::ServerUnaryReactor* CompleteAction(grpc::CallbackServerContext* context,
                                           const wsgate::v1::CompleteActionRequest* request,
                                           wsgate::v1::Empty* response) override;
  grpc::ServerUnaryReactor* AbortHandle(grpc::CallbackServerContext* context,
                                        const wsgate::v1::HandleRequest* request,
                                        wsgate::v1::Empty* response) override;
  grpc::ServerUnaryReactor* DeleteHandle(grpc::CallbackServerContext* context,
                                         const wsgate::v1::HandleRequest* request,
                                         wsgate::v1::Empty* response) override;
  grpc::ServerUnaryReactor* GetGlobalProperty(
      grpc::CallbackServerContext* context, const wsgate::v1::GetGlobalPropertyRequest* request,
      wsgate::v1::GetGlobalPropertyResponse* response) override;

 private:
  struct Entry;  // one handle: owner key, engine handle, buffers (in the .cc)

  grpc::ServerUnaryReactor* create_handle(grpc::CallbackServerContext* context, bool server,
                                          const wsgate::v1::CreateHandleRequest* request,
                                          wsgate::v1::CreateHandleResponse* response);
  Caller caller(const grpc::CallbackServerContext& context) const;
  std::chrono::steady_clock::time_point now() const;
  // Deletes the handles idle longer than the lease, at most every quarter lease. Called before
  // a call takes any lock, so retiring an entry never waits while holding another.
  void reap_idle();
  // Removes every entry doomed_if() picks from the table, then retires them (DeleteHandle's
  // path for many handles: release_owner, the idle lease).
  void delete_where(const std::function<bool(const Entry&)>& doomed_if);
  // Takes `bytes` from the daemon-wide budget; false (nothing taken) if they do not fit.
  bool reserve(std::uint64_t bytes);
  // Admits a Send or Receive holding `bytes` on `entry` (its lock held): checks the per-handle
  // bounds, takes the bytes from the budget and counts them on the entry; else the refusal.
  grpc::Status admit(Entry& entry, std::uint64_t bytes, std::string_view function);
  // Returns `bytes` an operation of `entry` (its lock held) no longer holds.
  void give_back(Entry& entry, std::uint64_t bytes);
  // Called under the table's lock (a removal callback): one handle fewer for `quota_key`.
  void drop_quota(const std::string& quota_key);
  // Runs fn(Entry&) -> grpc::Status under the entry's lock if `id` exists and belongs to the
  // caller (marked used now, for the idle lease), or answers NOT_FOUND.
  template <class Fn>
  grpc::ServerUnaryReactor* with_entry(grpc::CallbackServerContext* context, std::uint64_t id,
                                       Fn&& fn);

  const ProtocolComponentLimits limits_;
  const CallerOf caller_of_;
  const Clock clock_;
  // reap_idle() does nothing before this time (steady_clock ticks).
  std::atomic<std::int64_t> next_reap_{0};
  // Declared before table_, which is destroyed first: an Entry updates them when it dies.
  std::atomic<std::uint64_t> accounted_bytes_{0};
  std::atomic<std::size_t> live_entries_{0};
  // Live handles per quota_key; a key is erased when its count drops to 0. Guarded by the
  // table's lock: only touched in table_'s admission and removal callbacks.
  std::unordered_map<std::string, std::uint32_t> handles_per_quota_key_;
  ws::HandleTable<Entry> table_;
};

}  // namespace wsgate::rpc
