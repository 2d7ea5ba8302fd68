#include "service/rpc/protocol_component_service.h"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>

#include "service/log/logging.h"
#include <vector>

#include "service/rpc/status.h"
#include "service/ws/error.h"
#include "service/ws/handle_table.h"
#include "service/ws/protocol_handle.h"
#include "service/ws/types.h"

namespace wsgate::rpc {

namespace v1 = wsgate::v1;

// One handle, an object of the service's ws::HandleTable. `owner` and `quota_key` are immutable
// and `last_used` is atomic (the table's callbacks read them without the handle's lock);
// everything else is guarded by the table's per-handle mutex (HandleTable::with).
struct ProtocolComponentService::Entry {
  Entry(Caller caller, std::atomic<std::size_t>& live_entries,
        std::atomic<std::uint64_t>& accounted_bytes)
      : alive(live_entries),
        owner(std::move(caller.owner)),
        quota_key(std::move(caller.quota_key)),
        accounted(accounted_bytes) {}
  // The table destroys an entry once the calls inside it are done: the engine handle goes first
  // (it may point into the buffers), then the buffers' bytes go back to the service's budget.
  ~Entry() {
    handle.reset();
    accounted -= queued_bytes;
  }
  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;

  // Counts this entry in the service's live_entries() from construction until the very end of
  // its destruction (declared first: destroyed last, after every buffer).
  struct Alive {
    explicit Alive(std::atomic<std::size_t>& n) : count(n) { ++count; }
    ~Alive() { --count; }
    Alive(const Alive&) = delete;
    Alive& operator=(const Alive&) = delete;
    std::atomic<std::size_t>& count;
  } alive;
  const std::string owner;
  const std::string quota_key;
  std::atomic<std::uint64_t>& accounted;  // the service's accounted_bytes_
  // When an RPC last named this handle (steady_clock ticks); read by the idle lease.
  std::atomic<std::int64_t> last_used{0};
  // Bytes held by send_storage and receive_storage together (the service's budget holds them).
  std::uint64_t queued_bytes = 0;
  // Bytes of every queued Send, in queue order (the engine completes sends FIFO). Popped when
  // the INDICATE_SEND_COMPLETE handed out as `send_complete_token` is completed.
  std::deque<std::vector<std::uint8_t>> send_storage;
  std::uint64_t send_complete_token = 0;
  // App buffers of queued Receives, in queue order (nullptr and 0 for zero-copy). Popped when
  // the INDICATE_RECEIVE_COMPLETE handed out as `receive_complete_token` is completed.
  struct ReceiveBuffer {
    std::unique_ptr<std::uint8_t[]> bytes;
    std::uint32_t length = 0;
  };
  std::deque<ReceiveBuffer> receive_storage;
  std::uint64_t receive_complete_token = 0;
  // The outstanding RECEIVE_FROM_NETWORK action (token 0: none).
  std::uint64_t network_read_token = 0;
  std::uint8_t* network_read_buffer = nullptr;
  std::uint32_t network_read_capacity = 0;
  // Extensions offered by BeginClientHandshake: EndClientHandshake's output capacity.
  std::uint32_t offered_extensions = 0;
  // Declared last: destroyed first, before the buffers it may point into.
  std::unique_ptr<ws::ProtocolHandle> handle;
};

namespace {

// --- identity --------------------------------------------------------------------------------

// A CSPRNG value for the handle table; 0 if the CSPRNG fails (the table then refuses).
std::uint64_t random_id() {
  std::uint64_t id = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof id) != 1) return 0;
  return id;
}

// --- statuses --------------------------------------------------------------------------------

grpc::Status bad_request(std::string_view message) {
  return error_status(grpc::StatusCode::INVALID_ARGUMENT, message,
                      hresult_detail(ws::Result::invalid_arg, "bad_request"));
}

grpc::Status not_found(std::uint64_t id) {
  return error_status(grpc::StatusCode::NOT_FOUND,
                      "unknown handle " + std::to_string(id) + " (never created, deleted, or " +
                          "created by another caller)",
                      hresult_detail(ws::Result::invalid_arg, "unknown_handle"));
}

grpc::Status exhausted(std::string_view message, std::string_view cause) {
  return error_status(grpc::StatusCode::RESOURCE_EXHAUSTED, message,
                      hresult_detail(ws::Result::out_of_memory, cause));
}

grpc::Status engine_failure(std::string_view function, ws::Result result) {
  std::string message(function);
  message += ": ";
  message += ws::symbol(result);
  return engine_status(result, message);
}

// --- enum mapping (proto value = websocket.h index + 1; 0 is UNSPECIFIED) ---------------------

std::optional<ws::BufferType> to_engine(v1::BufferType type) {
  const int v = static_cast<int>(type);
  if (v < v1::BUFFER_TYPE_UTF8_MESSAGE || v > v1::BUFFER_TYPE_UNSOLICITED_PONG) return std::nullopt;
  return static_cast<ws::BufferType>(static_cast<std::uint32_t>(ws::BufferType::utf8_message) +
                                     static_cast<std::uint32_t>(v - 1));
}

v1::BufferType to_proto(ws::BufferType type) {
  const std::uint32_t index =
      static_cast<std::uint32_t>(type) - static_cast<std::uint32_t>(ws::BufferType::utf8_message);
  if (index > 6) return v1::BUFFER_TYPE_UNSPECIFIED;
  return static_cast<v1::BufferType>(index + 1);
}

v1::Action to_proto(ws::Action action) {
  const auto index = static_cast<std::uint32_t>(action);
  if (index > 4) return v1::ACTION_UNSPECIFIED;
  return static_cast<v1::Action>(index + 1);
}

std::optional<ws::ActionQueue> to_engine(v1::ActionQueue queue) {
  switch (queue) {
    case v1::ACTION_QUEUE_SEND: return ws::ActionQueue::send;
    case v1::ACTION_QUEUE_RECEIVE: return ws::ActionQueue::receive;
    case v1::ACTION_QUEUE_ALL: return ws::ActionQueue::all;
    default: return std::nullopt;
  }
}

// PropertyType: proto X = websocket.h value X - 1. ALLOCATED_BUFFER is handled by the callers.
std::optional<ws::PropertyType> to_engine(v1::PropertyType type) {
  const int v = static_cast<int>(type);
  if (v < v1::PROPERTY_TYPE_RECEIVE_BUFFER_SIZE || v > v1::PROPERTY_TYPE_SUPPORTED_VERSIONS) {
    return std::nullopt;
  }
  return static_cast<ws::PropertyType>(v - 1);
}

// --- values ----------------------------------------------------------------------------------

void* to_pointer(std::uint64_t value) {
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>(value));
}

std::uint64_t from_pointer(const void* pointer) {
  return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(pointer));
}

// Views of the request's header bytes, valid while the request lives (the engine only reads).
std::vector<ws::HttpHeader> to_engine(
    const google::protobuf::RepeatedPtrField<v1::HttpHeader>& headers) {
  std::vector<ws::HttpHeader> out;
  out.reserve(static_cast<std::size_t>(headers.size()));
  for (const v1::HttpHeader& h : headers) {
    out.push_back({const_cast<char*>(h.name().data()), static_cast<std::uint32_t>(h.name().size()),
                   const_cast<char*>(h.value().data()),
                   static_cast<std::uint32_t>(h.value().size())});
  }
  return out;
}

void to_proto(const ws::HttpHeader* headers, std::uint32_t count,
              google::protobuf::RepeatedPtrField<v1::HttpHeader>* out) {
  for (std::uint32_t i = 0; i < count; ++i) {
    v1::HttpHeader* h = out->Add();
    h->set_name(headers[i].name, headers[i].name_length);
    h->set_value(headers[i].value, headers[i].value_length);
  }
}

// C strings for the engine's NUL-terminated arguments. A string holding NUL cannot be expressed
// through websocket.h: false.
bool to_c_strings(const google::protobuf::RepeatedPtrField<std::string>& strings,
                  std::vector<const char*>* out) {
  out->reserve(static_cast<std::size_t>(strings.size()));
  for (const std::string& s : strings) {
    if (s.find('\0') != std::string::npos) return false;
    out->push_back(s.c_str());
  }
  return true;
}

std::uint32_t size32(std::size_t n) { return static_cast<std::uint32_t>(n); }

}  // namespace

// --- the table -------------------------------------------------------------------------------

ProtocolComponentService::ProtocolComponentService(const ProtocolComponentLimits& limits,
                                                   CallerOf caller_of, Clock clock)
    : limits_(limits),
      caller_of_(std::move(caller_of)),
      clock_(std::move(clock)),
      table_(&random_id) {}

ProtocolComponentService::~ProtocolComponentService() = default;

std::size_t ProtocolComponentService::handle_count() const { return table_.size(); }

ProtocolComponentService::Caller ProtocolComponentService::caller(
    const grpc::CallbackServerContext& context) const {
  return caller_of_ ? caller_of_(context) : default_caller(context);
}

ProtocolComponentService::Caller ProtocolComponentService::default_caller(
    const grpc::CallbackServerContext& context) {
  std::string key = context.peer();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kClientIdMetadata);
  if (it == metadata.end()) {
    key += "\n-";
  } else {
    key += "\n+";
    key.append(it->second.data(), it->second.size());
  }
  return {key, key};
}

void ProtocolComponentService::drop_quota(const std::string& quota_key) {
  auto it = handles_per_quota_key_.find(quota_key);
  if (it != handles_per_quota_key_.end() && --it->second == 0) handles_per_quota_key_.erase(it);
}

std::chrono::steady_clock::time_point ProtocolComponentService::now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

void ProtocolComponentService::reap_idle() {
  if (limits_.idle_lease.count() <= 0) return;
  const std::int64_t now_ticks = now().time_since_epoch().count();
  const auto lease =
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(limits_.idle_lease).count();
  std::int64_t due = next_reap_.load();
  // One caller per period does the scan; the others go on at once.
  if (now_ticks < due ||
      !next_reap_.compare_exchange_strong(due, now_ticks + std::max<std::int64_t>(lease / 4, 1))) {
    return;
  }
  delete_where([&](const Entry& e) { return now_ticks - e.last_used.load() > lease; });
}

bool ProtocolComponentService::reserve(std::uint64_t bytes) {
  std::uint64_t used = accounted_bytes_.load();
  do {
    if (bytes > limits_.max_memory_bytes - std::min(used, limits_.max_memory_bytes)) return false;
  } while (!accounted_bytes_.compare_exchange_weak(used, used + bytes));
  return true;
}

grpc::Status ProtocolComponentService::admit(Entry& e, std::uint64_t bytes,
                                             std::string_view function) {
  const std::string name(function);
  const std::size_t pending = e.send_storage.size() + e.receive_storage.size();
  if (pending >= limits_.max_pending_operations) {
    return exhausted(name + ": " + std::to_string(pending) +
                         " sends and receives are queued on this handle, its limit; drive its " +
                         "action loop (GetAction / CompleteAction) so that they complete",
                     "handle_queue_limit");
  }
  const std::uint64_t bound = limits_.max_queued_bytes_per_handle;
  if (bytes > bound - e.queued_bytes) {  // queued_bytes <= bound always
    std::string message = name + ": " + std::to_string(bytes) + " more bytes would exceed the " +
                          std::to_string(bound) + " bytes a handle may hold for queued sends " +
                          "and receives (" + std::to_string(e.queued_bytes) + " held); ";
    message += bytes > bound ? "send a message this large as fragments"
                             : "drive the handle's action loop so that they complete";
    return exhausted(message, "handle_queue_limit");
  }
  if (!reserve(bytes)) {
    return exhausted(name + ": the daemon's budget of " + std::to_string(limits_.max_memory_bytes) +
                         " bytes for queued ProtocolComponent sends and receives is used up; " +
                         "retry once handles complete or are deleted",
                     "memory_budget");
  }
  e.queued_bytes += bytes;
  return grpc::Status::OK;
}

void ProtocolComponentService::give_back(Entry& e, std::uint64_t bytes) {
  e.queued_bytes -= bytes;
  accounted_bytes_ -= bytes;
}

void ProtocolComponentService::release_owner(const std::string& owner) {
  delete_where([&](const Entry& e) { return e.owner == owner; });
}

void ProtocolComponentService::delete_where(const std::function<bool(const Entry&)>& doomed_if) {
  // The table destroys each entry after the calls already inside it, outside its lock.
  const std::size_t count = table_.erase_where(
      doomed_if, [this](const Entry& e) { drop_quota(e.quota_key); });
  if (count != 0) {
    log::log_event(*log::logger("protocol"), spdlog::level::debug, "handles deleted",
                      {{"event", "handles_deleted"}, {"count", count},
                       {"remaining", handle_count()}});
  }
}

template <class Fn>
grpc::ServerUnaryReactor* ProtocolComponentService::with_entry(
    grpc::CallbackServerContext* context, std::uint64_t id, Fn&& fn) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status status = not_found(id);
  reap_idle();
  const std::string owner = caller(*context).owner;
  table_.with(id, [&](Entry& e) {
    if (e.owner != owner) return;  // another caller's handle: NOT_FOUND, as an unknown one
    e.last_used = now().time_since_epoch().count();
    status = std::forward<Fn>(fn)(e);
  });
  reactor->Finish(status);
  return reactor;
}

// --- Create / Delete -------------------------------------------------------------------------

grpc::ServerUnaryReactor* ProtocolComponentService::create_handle(
    grpc::CallbackServerContext* context, bool server, const v1::CreateHandleRequest* request,
    v1::CreateHandleResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto finish = [reactor](const grpc::Status& status) {
    reactor->Finish(status);
    return reactor;
  };

  // Properties: 4-byte values for ULONG/BOOL; an unset value is websocket.h's NULL pvValue.
  const int count = request->properties_size();
  std::vector<std::uint32_t> values(static_cast<std::size_t>(count));
  std::vector<ws::Property> properties(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const v1::Property& p = request->properties(i);
    const auto index = static_cast<std::size_t>(i);
    if (p.type() == v1::PROPERTY_TYPE_ALLOCATED_BUFFER) {
      return finish(bad_request("PROPERTY_TYPE_ALLOCATED_BUFFER: caller memory cannot cross a "
                                "socket"));
    }
    std::optional<ws::PropertyType> type = to_engine(p.type());
    if (!type) {
      return finish(bad_request("properties[" + std::to_string(i) + "]: invalid PropertyType " +
                                std::to_string(static_cast<int>(p.type()))));
    }
    properties[index].type = *type;
    switch (p.value_case()) {
      case v1::Property::kUintValue: values[index] = p.uint_value(); break;
      case v1::Property::kBoolValue: values[index] = p.bool_value() ? 1u : 0u; break;
      case v1::Property::VALUE_NOT_SET: break;
    }
    if (p.value_case() == v1::Property::VALUE_NOT_SET) {
      properties[index].value = nullptr;
      properties[index].value_size = 0;
    } else {
      properties[index].value = &values[index];
      properties[index].value_size = sizeof(std::uint32_t);
    }
  }

  std::unique_ptr<ws::ProtocolHandle> handle;
  const ws::Result r = ws::ProtocolHandle::create(
      server ? ws::Role::server : ws::Role::client, properties.empty() ? nullptr : properties.data(),
      size32(properties.size()), &handle);
  const char* function = server ? "CreateServerHandle" : "CreateClientHandle";
  if (r != ws::Result::ok) return finish(engine_failure(function, r));

  reap_idle();  // before the limits are checked: expired handles give their room back
  auto entry = std::make_unique<Entry>(caller(*context), live_entries_, accounted_bytes_);
  entry->handle = std::move(handle);
  entry->last_used = now().time_since_epoch().count();
  const std::string owner = entry->owner;
  bool full = false;
  bool over_quota = false;
  // The limits are checked and the quota counted in the same step as the insertion (under the
  // table's lock); a refused entry is destroyed by the table, outside its lock.
  const std::uint64_t id =
      table_.insert(std::move(entry), [&](std::size_t live, const Entry& e) {
        auto quota = handles_per_quota_key_.find(e.quota_key);
        if (live >= limits_.max_handles) {
          full = true;
        } else if (quota != handles_per_quota_key_.end() &&
                   quota->second >= limits_.max_handles_per_client) {
          over_quota = true;
        } else {
          ++handles_per_quota_key_[e.quota_key];
          return true;
        }
        return false;
      });
  const bool rng_failed = id == 0 && !full && !over_quota;
  if (id != 0) response->set_handle(id);
  const char* verdict = full ? "handle_limit" : over_quota ? "handle_quota" : rng_failed ? "internal" : "created";
  log::log_event(*log::logger("protocol"), spdlog::level::debug, "create handle",
                 {{"event", "create_handle"}, {"role", server ? "server" : "client"},
                  {"owner", owner}, {"verdict", verdict}});
  if (full) {
    return finish(exhausted(std::string(function) + ": the limit of " +
                                std::to_string(limits_.max_handles) +
                                " protocol handles is reached",
                            "handle_limit"));
  }
  if (over_quota) {
    return finish(exhausted(std::string(function) + ": this client holds " +
                                std::to_string(limits_.max_handles_per_client) +
                                " protocol handles, its quota; delete one first",
                            "handle_quota"));
  }
  if (rng_failed) {
    return finish(error_status(grpc::StatusCode::INTERNAL,
                               std::string(function) + ": the CSPRNG failed",
                               hresult_detail(ws::Result::fail, "internal")));
  }
  return finish(grpc::Status::OK);
}

grpc::ServerUnaryReactor* ProtocolComponentService::CreateClientHandle(
    grpc::CallbackServerContext* context, const v1::CreateHandleRequest* request,
    v1::CreateHandleResponse* response) {
  return create_handle(context, false, request, response);
}

grpc::ServerUnaryReactor* ProtocolComponentService::CreateServerHandle(
    grpc::CallbackServerContext* context, const v1::CreateHandleRequest* request,
    v1::CreateHandleResponse* response) {
  return create_handle(context, true, request, response);
}

grpc::ServerUnaryReactor* ProtocolComponentService::DeleteHandle(
    grpc::CallbackServerContext* context, const v1::HandleRequest* request, v1::Empty*) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reap_idle();
  const std::uint64_t id = request->handle();
  const std::string owner = caller(*context).owner;
  // Another caller's handle is NOT_FOUND, as an unknown one. The table destroys the entry after
  // the calls already inside it.
  if (table_.erase_where(
          id, [&](const Entry& e) { return e.owner == owner; },
          [this](const Entry& e) { drop_quota(e.quota_key); }) == 0) {
    reactor->Finish(not_found(id));
    return reactor;
  }
  log::log_event(*log::logger("protocol"), spdlog::level::debug, "handle deleted",
                 {{"event", "delete_handle"}, {"owner", owner}});
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

// --- Handshakes ------------------------------------------------------------------------------

grpc::ServerUnaryReactor* ProtocolComponentService::BeginClientHandshake(
    grpc::CallbackServerContext* context, const v1::BeginClientHandshakeRequest* request,
    v1::BeginClientHandshakeResponse* response) {
  return with_entry(context, request->handle(), [&](Entry& e) {
    std::vector<const char*> subprotocols;
    std::vector<const char*> extensions;
    if (!to_c_strings(request->subprotocols(), &subprotocols) ||
        !to_c_strings(request->extensions(), &extensions)) {
      return bad_request("BeginClientHandshake: a subprotocol or extension holds a NUL byte");
    }
    const std::vector<ws::HttpHeader> initial = to_engine(request->initial_headers());
    ws::HttpHeader* additional = nullptr;
    std::uint32_t additional_count = 0;
    const ws::Result r = e.handle->begin_client_handshake(
        subprotocols.empty() ? nullptr : subprotocols.data(), size32(subprotocols.size()),
        extensions.empty() ? nullptr : extensions.data(), size32(extensions.size()),
        initial.empty() ? nullptr : initial.data(), size32(initial.size()), &additional,
        &additional_count);
    if (r != ws::Result::ok) return engine_failure("BeginClientHandshake", r);
    e.offered_extensions = size32(extensions.size());
    to_proto(additional, additional_count, response->mutable_additional_headers());
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ProtocolComponentService::EndClientHandshake(
    grpc::CallbackServerContext* context, const v1::EndClientHandshakeRequest* request,
    v1::EndClientHandshakeResponse* response) {
  return with_entry(context, request->handle(), [&](Entry& e) {
    const std::vector<ws::HttpHeader> headers = to_engine(request->response_headers());
    std::vector<std::uint32_t> selected(std::max<std::uint32_t>(e.offered_extensions, 1));
    auto selected_count = size32(selected.size());
    constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
    std::uint32_t subprotocol = kNone;
    const ws::Result r = e.handle->end_client_handshake(
        headers.empty() ? nullptr : headers.data(), size32(headers.size()), selected.data(),
        &selected_count, &subprotocol);
    if (r != ws::Result::ok) return engine_failure("EndClientHandshake", r);
    if (subprotocol != kNone) response->set_selected_subprotocol(subprotocol);
    for (std::uint32_t i = 0; i < selected_count && i < selected.size(); ++i) {
      response->add_selected_extensions(selected[i]);
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ProtocolComponentService::BeginServerHandshake(
    grpc::CallbackServerContext* context, const v1::BeginServerHandshakeRequest* request,
    v1::BeginServerHandshakeResponse* response) {
  return with_entry(context, request->handle(), [&](Entry& e) {
    std::vector<const char*> extensions;
    if (!to_c_strings(request->extensions_selected(), &extensions) ||
        (request->has_subprotocol_selected() &&
         request->subprotocol_selected().find('\0') != std::string::npos)) {
      return bad_request("BeginServerHandshake: a subprotocol or extension holds a NUL byte");
    }
    const std::vector<ws::HttpHeader> headers = to_engine(request->request_headers());
    ws::HttpHeader* out = nullptr;
    std::uint32_t out_count = 0;
    const ws::Result r = e.handle->begin_server_handshake(
        request->has_subprotocol_selected() ? request->subprotocol_selected().c_str() : nullptr,
        extensions.empty() ? nullptr : extensions.data(), size32(extensions.size()),
        headers.empty() ? nullptr : headers.data(), size32(headers.size()), &out, &out_count);
    if (r != ws::Result::ok) return engine_failure("BeginServerHandshake", r);
    to_proto(out, out_count, response->mutable_response_headers());
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ProtocolComponentService::EndServerHandshake(
    grpc::CallbackServerContext* context, const v1::HandleRequest* request, v1::Empty*) {
  return with_entry(context, request->handle(), [&](Entry& e) {
    const ws::Result r = e.handle->end_server_handshake();
    if (r != ws::Result::ok) return engine_failure("EndServerHandshake", r);
    return grpc::Status::OK;
  });
}

// --- Send / Receive --------------------------------------------------------------------------

grpc::ServerUnaryReactor* ProtocolComponentService::Send(grpc::CallbackServerContext* context,
                                                         const v1::SendRequest* request,
                                                         v1::Empty*) {
  return with_entry(context, request->handle(), [&](Entry& e) {
    std::optional<ws::BufferType> type = to_engine(request->buffer_type());
    if (!type) {
      return bad_request("Send: invalid BufferType " +
                         std::to_string(static_cast<int>(request->buffer_type())));
    }
    // The bytes must outlive the Send: they go into the entry's storage, which keeps them until
    // the Send's INDICATE_SEND_COMPLETE is completed.
    std::vector<std::uint8_t> bytes;
    ws::Buffer buffer{};
    const ws::Buffer* pointer = nullptr;
    switch (request->buffer_case()) {
      case v1::SendRequest::kData:
        bytes.assign(request->data().begin(), request->data().end());
        buffer.data = {bytes.empty() ? nullptr : bytes.data(), size32(bytes.size())};
        pointer = &buffer;
        break;
      case v1::SendRequest::kClose: {
        const v1::CloseStatus& close = request->close();
        if (close.status() > std::numeric_limits<std::uint16_t>::max()) {
          return bad_request("Send: close status " + std::to_string(close.status()) +
                             " is not a 16-bit value");
        }
        bytes.assign(close.reason().begin(), close.reason().end());
        buffer.close_status = {bytes.empty() ? nullptr : bytes.data(), size32(bytes.size()),
                               static_cast<std::uint16_t>(close.status())};
        pointer = &buffer;
        break;
      }
      case v1::SendRequest::BUFFER_NOT_SET: break;
    }
    if (grpc::Status s = admit(e, bytes.size(), "Send"); !s.ok()) return s;
    // A vector's heap block does not move when the vector itself is moved into the deque.
    const ws::Result r = e.handle->send(*type, pointer, to_pointer(request->context()));
    if (r != ws::Result::ok) {
      give_back(e, bytes.size());
      return engine_failure("Send", r);
    }
    e.send_storage.push_back(std::move(bytes));
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ProtocolComponentService::Receive(grpc::CallbackServerContext* context,
                                                            const v1::ReceiveRequest* request,
                                                            v1::Empty*) {
  return with_entry(context, request->handle(), [&](Entry& e) {
    // The engine fills at most RECEIVE_BUFFER_SIZE bytes of an app buffer (chunks come from the
    // receive area; a pong payload or close reason is shorter), so a longer buffer behaves
    // exactly like one of that size; clamping keeps a client from making us allocate 4 GiB.
    const std::uint32_t length =
        request->has_buffer_length()
            ? std::min(request->buffer_length(), e.handle->options().receive_buffer_size)
            : 0;  // zero-copy: no bytes, but still a queued operation
    if (grpc::Status s = admit(e, length, "Receive"); !s.ok()) return s;
    Entry::ReceiveBuffer storage;
    ws::Buffer buffer{};
    const ws::Buffer* pointer = nullptr;
    if (request->has_buffer_length()) {
      storage.bytes = std::make_unique<std::uint8_t[]>(std::max<std::uint32_t>(length, 1));
      storage.length = length;
      buffer.data = {storage.bytes.get(), length};  // length 0: the engine's E_INVALIDARG
      pointer = &buffer;
    }
    const ws::Result r = e.handle->receive(pointer, to_pointer(request->context()));
    if (r != ws::Result::ok) {
      give_back(e, storage.length);
      return engine_failure("Receive", r);
    }
    e.receive_storage.push_back(std::move(storage));
    return grpc::Status::OK;
  });
}

// --- GetAction / CompleteAction --------------------------------------------------------------

grpc::ServerUnaryReactor* ProtocolComponentService::GetAction(
    grpc::CallbackServerContext* context, const v1::GetActionRequest* request,
    v1::GetActionResponse* response) {
  return with_entry(context, request->handle(), [&](Entry& e) {
    std::optional<ws::ActionQueue> queue = to_engine(request->queue());
    if (!queue) {
      return bad_request("GetAction: invalid ActionQueue " +
                         std::to_string(static_cast<int>(request->queue())));
    }
    // The engine never fills more than 2 buffers, so a larger capacity behaves as 2.
    std::array<ws::Buffer, 2> buffers{};
    std::uint32_t count = std::min<std::uint32_t>(request->buffer_capacity(), 2);
    ws::Action action = ws::Action::no_action;
    ws::BufferType type = ws::BufferType::binary_message;
    void* app_context = nullptr;
    void* action_context = nullptr;
    const ws::Result r = e.handle->get_action(*queue, buffers.data(), &count, &action, &type,
                                              &app_context, &action_context);
    if (r != ws::Result::ok) {
      std::string message = "GetAction: ";
      message += ws::symbol(r);
      if (const std::uint16_t code = e.handle->failure_close_code(); code != 0) {
        message += " (peer protocol violation; send a close with status " +
                   std::to_string(code) + ")";
      }
      return engine_status(r, message);
    }
    response->set_action(to_proto(action));
    if (action == ws::Action::no_action) return grpc::Status::OK;
    response->set_buffer_type(to_proto(type));
    response->set_application_context(from_pointer(app_context));
    const std::uint64_t token = from_pointer(action_context);
    response->set_action_context(token);
    count = std::min<std::uint32_t>(count, static_cast<std::uint32_t>(buffers.size()));
    switch (action) {
      case ws::Action::send_to_network:
        for (std::uint32_t i = 0; i < count; ++i) {
          response->add_buffers(buffers[i].data.buffer, buffers[i].data.length);
        }
        break;
      case ws::Action::indicate_send_complete:
        e.send_complete_token = token;
        break;
      case ws::Action::receive_from_network:
        e.network_read_token = token;
        e.network_read_buffer = buffers[0].data.buffer;
        e.network_read_capacity = buffers[0].data.length;
        response->set_receive_capacity(buffers[0].data.length);
        break;
      case ws::Action::indicate_receive_complete:
        e.receive_complete_token = token;
        if (type == ws::BufferType::close) {
          const auto& c = buffers[0].close_status;
          v1::CloseStatus* close = response->mutable_close_status();
          close->set_status(c.status);
          if (c.reason_length != 0) {
            close->set_reason(reinterpret_cast<const char*>(c.reason), c.reason_length);
          }
        } else if (buffers[0].data.length != 0) {
          response->add_buffers(buffers[0].data.buffer, buffers[0].data.length);
        } else {
          response->add_buffers();  // an empty message is one empty buffer
        }
        break;
      case ws::Action::no_action:
        break;
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ProtocolComponentService::CompleteAction(
    grpc::CallbackServerContext* context, const v1::CompleteActionRequest* request, v1::Empty*) {
  return with_entry(context, request->handle(), [&](Entry& e) {
    const std::uint64_t token = request->action_context();
    std::uint32_t bytes = request->bytes_transferred();
    if (token != 0 && token == e.network_read_token) {
      const std::string& data = request->data();
      if (data.size() > e.network_read_capacity) {
        return bad_request("CompleteAction: " + std::to_string(data.size()) +
                           " bytes of data exceed the receive_capacity of " +
                           std::to_string(e.network_read_capacity));
      }
      if (!data.empty()) std::memcpy(e.network_read_buffer, data.data(), data.size());
      bytes = size32(data.size());  // 0: EOF
      e.network_read_token = 0;
      e.network_read_buffer = nullptr;
      e.network_read_capacity = 0;
    }
    // The engine ignores unknown and stale contexts; it never dereferences them.
    e.handle->complete_action(to_pointer(token), bytes);
    if (token != 0 && token == e.send_complete_token) {
      e.send_complete_token = 0;
      if (!e.send_storage.empty()) {
        give_back(e, e.send_storage.front().size());
        e.send_storage.pop_front();
      }
    } else if (token != 0 && token == e.receive_complete_token) {
      e.receive_complete_token = 0;
      if (!e.receive_storage.empty()) {
        give_back(e, e.receive_storage.front().length);
        e.receive_storage.pop_front();
      }
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ProtocolComponentService::AbortHandle(
    grpc::CallbackServerContext* context, const v1::HandleRequest* request, v1::Empty*) {
  return with_entry(context, request->handle(), [&](Entry& e) {
    e.handle->abort();
    return grpc::Status::OK;
  });
}

// --- GetGlobalProperty -----------------------------------------------------------------------

grpc::ServerUnaryReactor* ProtocolComponentService::GetGlobalProperty(
    grpc::CallbackServerContext* context, const v1::GetGlobalPropertyRequest* request,
    v1::GetGlobalPropertyResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status status = grpc::Status::OK;
  std::optional<ws::PropertyType> type = to_engine(request->type());
  if (request->type() == v1::PROPERTY_TYPE_ALLOCATED_BUFFER) {
    status = bad_request("PROPERTY_TYPE_ALLOCATED_BUFFER: caller memory cannot cross a socket");
  } else if (!type) {
    status = bad_request("GetGlobalProperty: invalid PropertyType " +
                         std::to_string(static_cast<int>(request->type())));
  } else {
    // Every global property fits in a few ULONGs; a larger size behaves the same.
    std::array<std::uint8_t, 64> value{};
    std::uint32_t size = std::min<std::uint32_t>(request->size(), size32(value.size()));
    const ws::Result r = ws::get_global_property(*type, value.data(), &size);
    if (r == ws::Result::insufficient_buffer) {
      v1::ErrorDetail detail = hresult_detail(r, engine_cause(r));
      detail.set_required_size(size);
      status = error_status(status_code_for(r),
                            "GetGlobalProperty: the buffer of " + std::to_string(request->size()) +
                                " bytes is too small; " + std::to_string(size) + " are needed",
                            detail);
    } else if (r != ws::Result::ok) {
      status = engine_failure("GetGlobalProperty", r);
    } else {
      // The engine writes host-order ULONGs; the proto says little-endian.
      size = std::min<std::uint32_t>(size, size32(value.size()));
      std::string bytes;
      for (std::uint32_t i = 0; i + 4 <= size; i += 4) {
        std::uint32_t word = 0;
        std::memcpy(&word, value.data() + i, 4);
        for (int b = 0; b < 4; ++b) bytes.push_back(static_cast<char>((word >> (8 * b)) & 0xFFu));
      }
      response->set_value(bytes);
      response->set_size(size);
    }
  }
  reactor->Finish(status);
  return reactor;
}

}  // namespace wsgate::rpc
