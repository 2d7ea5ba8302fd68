// libwebsocket-remote.so: the websocket.h C ABI with every call executed by wsgated's engine
// through wsgate::ProtocolClient (ProtocolComponent over gRPC).
//
// Local state per handle (what the dll hands out by pointer must live in this process):
// - handles are local values (never reused, never 0) mapped to the daemon's 64-bit handles, so
//   NULL, forged and deleted handles give E_INVALIDARG without a round trip;
// - the header arrays of Begin*Handshake, valid until the next handshake call on the handle,
//   EndServerHandshake or DeleteHandle;
// - the buffers of each GetAction, valid until its CompleteAction (or DeleteHandle):
//   SEND_TO_NETWORK bytes (the unmasked payload is handed out in the app's own Send buffer when
//   its bytes are identical, as the dll does), RECEIVE_FROM_NETWORK a local buffer of
//   receive_capacity bytes whose first ulBytesTransferred bytes CompleteAction sends,
//   INDICATE_RECEIVE_COMPLETE data copied into the app's Receive buffer (or local memory for
//   zero-copy Receives and close reasons).
// Send buffers are copied at Send time (they travel in the request).
//
// WEB_SOCKET_ALLOCATED_BUFFER_PROPERTY_TYPE: caller memory cannot cross the socket and the
// daemon rejects the property. This backend validates it as the engine does (non-NULL, 8-byte
// aligned, at least RECEIVE+SEND buffer sizes + 144 bytes), then strips it: the handle's memory
// lives in the daemon and the app's buffer is left unused.
//
// Errors: ErrorDetail.hresult_value when the daemon sent one (.NET table; with
// WSGATE_HRESULT_TABLE=winerror, E_INVALID_PROTOCOL_* are switched to the 0x8376xxxx values);
// otherwise by gRPC code: NOT_FOUND/INVALID_ARGUMENT E_INVALIDARG, FAILED_PRECONDITION
// E_INVALID_OPERATION, RESOURCE_EXHAUSTED E_OUTOFMEMORY, anything else (daemon unreachable,
// deadline) E_FAIL. The VOID functions ignore failures.
//
// Connection: one wsgate::Client per process, created on first use, address from
// WSGATE_ADDRESS or the SDK's default socket path; each call has a deadline of
// WSGATE_TIMEOUT_MS (default 30000) ms.
#include <websocket.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "wsgate/client/client.h"
#include "wsgate/client/error.h"
#include "wsgate/client/protocol_client.h"

#ifdef _WIN32
#define WSGATE_EXPORT extern "C" __declspec(dllexport)
#else
#define WSGATE_EXPORT extern "C" __attribute__((visibility("default")))
#endif

namespace {

using wsgate::v1::PropertyType;

constexpr HRESULT kInvalidArg = static_cast<HRESULT>(0x80070057u);
constexpr HRESULT kOutOfMemory = static_cast<HRESULT>(0x8007000Eu);
constexpr HRESULT kFail = static_cast<HRESULT>(0x80004005u);
constexpr HRESULT kInvalidOperation = static_cast<HRESULT>(0x80000050u);

const wsgate::ProtocolClient& protocol() {
  static const wsgate::ProtocolClient* client = [] {
    wsgate::ClientOptions options;
    if (const char* t = std::getenv("WSGATE_TIMEOUT_MS"); t != nullptr && t[0] != '\0') {
      const unsigned long ms = std::strtoul(t, nullptr, 10);
      if (ms != 0) options.default_timeout = std::chrono::milliseconds(ms);  // 0/garbage: default
    }
    return new wsgate::ProtocolClient(wsgate::Client(options));  // lives until exit
  }();
  return *client;
}

HRESULT to_hresult(const wsgate::Error& e) {
  if (e.hresult_value() != 0) {
    std::uint32_t v = e.hresult_value();
    const char* table = std::getenv("WSGATE_HRESULT_TABLE");
    if (table != nullptr && std::strcmp(table, "winerror") == 0) {
      if (v == 0x80000051u) v = 0x83760001u;
      if (v == 0x80000052u) v = 0x83760002u;
    }
    return static_cast<HRESULT>(v);
  }
  switch (e.code()) {
    case wsgate::StatusCode::not_found:
    case wsgate::StatusCode::invalid_argument: return kInvalidArg;
    case wsgate::StatusCode::failed_precondition: return kInvalidOperation;
    case wsgate::StatusCode::resource_exhausted: return kOutOfMemory;
    default: return kFail;
  }
}

struct PendingSend {
  const BYTE* data;
  ULONG length;
  std::uint64_t context;
};

struct PendingReceive {
  PBYTE buffer;  // nullptr: zero-copy
  ULONG length;
};

// The memory of one handed-out action, valid until its CompleteAction.
struct Outstanding {
  WEB_SOCKET_ACTION action = WEB_SOCKET_NO_ACTION;
  std::vector<std::string> buffers;       // SEND_TO_NETWORK / indicated data
  std::vector<unsigned char> read_buffer;  // RECEIVE_FROM_NETWORK
};

struct Handle {
  std::mutex mu;  // serialises the calls on this handle
  std::uint64_t remote = 0;
  bool server = false;
  ULONG offered_extensions = 0;
  std::vector<std::string> header_text;
  std::vector<WEB_SOCKET_HTTP_HEADER> headers;
  std::deque<PendingSend> sends;
  std::deque<PendingReceive> receives;
  std::map<std::uint64_t, Outstanding> actions;
};

std::mutex g_table_mu;
std::unordered_map<std::uintptr_t, std::shared_ptr<Handle>> g_table;
std::uintptr_t g_next = 0x10000;

std::shared_ptr<Handle> lookup(WEB_SOCKET_HANDLE h) {
  std::lock_guard<std::mutex> lock(g_table_mu);
  auto it = g_table.find(reinterpret_cast<std::uintptr_t>(h));
  return it == g_table.end() ? nullptr : it->second;
}

WEB_SOCKET_HANDLE insert(std::shared_ptr<Handle> handle) {
  std::lock_guard<std::mutex> lock(g_table_mu);
  std::uintptr_t key = g_next;
  g_next += 0x10;
  g_table.emplace(key, std::move(handle));
  return reinterpret_cast<WEB_SOCKET_HANDLE>(key);
}

// Runs `f`, turning a wsgate::Error into its HRESULT.
template <typename F>
HRESULT guarded(F&& f) {
  try {
    return f();
  } catch (const wsgate::Error& e) {
    return to_hresult(e);
  } catch (const std::bad_alloc&) {
    return kOutOfMemory;
  } catch (...) {
    return kFail;
  }
}

bool add_header(google::protobuf::RepeatedPtrField<wsgate::v1::HttpHeader>* out,
                const WEB_SOCKET_HTTP_HEADER& h) {
  if ((h.pcName == nullptr && h.ulNameLength != 0) ||
      (h.pcValue == nullptr && h.ulValueLength != 0))
    return false;
  wsgate::v1::HttpHeader* x = out->Add();
  if (h.ulNameLength != 0) x->set_name(h.pcName, h.ulNameLength);
  if (h.ulValueLength != 0) x->set_value(h.pcValue, h.ulValueLength);
  return true;
}

// Keeps `in` in the handle's memory and points *out / *count at it.
void store_headers(Handle& handle,
                   const google::protobuf::RepeatedPtrField<wsgate::v1::HttpHeader>& in,
                   PWEB_SOCKET_HTTP_HEADER* out, ULONG* count) {
  handle.header_text.clear();
  handle.headers.clear();
  handle.header_text.reserve(static_cast<std::size_t>(in.size()) * 2);
  for (const auto& h : in) {
    handle.header_text.push_back(h.name());
    handle.header_text.push_back(h.value());
  }
  for (std::size_t i = 0; i < handle.header_text.size(); i += 2) {
    WEB_SOCKET_HTTP_HEADER x;
    x.pcName = handle.header_text[i].data();
    x.ulNameLength = static_cast<ULONG>(handle.header_text[i].size());
    x.pcValue = handle.header_text[i + 1].data();
    x.ulValueLength = static_cast<ULONG>(handle.header_text[i + 1].size());
    handle.headers.push_back(x);
  }
  *out = handle.headers.empty() ? nullptr : handle.headers.data();
  *count = static_cast<ULONG>(handle.headers.size());
}

void clear_headers(Handle& handle) {
  handle.headers.clear();
  handle.header_text.clear();
}

HRESULT create(bool server, const PWEB_SOCKET_PROPERTY props, ULONG count,
               WEB_SOCKET_HANDLE* out) {
  if (out == nullptr || (props == nullptr && count != 0)) return kInvalidArg;
  wsgate::v1::CreateHandleRequest request;
  std::uint32_t rbs = 4096, sbs = server ? 16u : 4096u;
  const WEB_SOCKET_PROPERTY* allocated = nullptr;
  for (ULONG i = 0; i < count; ++i) {
    const WEB_SOCKET_PROPERTY& p = props[i];
    if (static_cast<std::uint32_t>(p.Type) > 6u) return kInvalidArg;
    if (p.Type == WEB_SOCKET_ALLOCATED_BUFFER_PROPERTY_TYPE) {
      if (allocated != nullptr) return kInvalidArg;  // given twice
      allocated = &p;
      continue;
    }
    wsgate::v1::Property* x = request.add_properties();
    x->set_type(static_cast<PropertyType>(static_cast<int>(p.Type) + 1));
    if (p.pvValue == nullptr) continue;  // the daemon sees websocket.h's NULL pvValue
    if (p.ulValueSize != sizeof(ULONG)) return kInvalidArg;
    ULONG v;
    std::memcpy(&v, p.pvValue, sizeof v);
    switch (p.Type) {
      case WEB_SOCKET_DISABLE_MASKING_PROPERTY_TYPE:
      case WEB_SOCKET_DISABLE_UTF8_VERIFICATION_PROPERTY_TYPE:
        x->set_bool_value(v != 0);
        break;
      default:
        x->set_uint_value(v);
        if (p.Type == WEB_SOCKET_RECEIVE_BUFFER_SIZE_PROPERTY_TYPE) rbs = v;
        if (p.Type == WEB_SOCKET_SEND_BUFFER_SIZE_PROPERTY_TYPE) sbs = v;
        break;
    }
  }
  if (allocated != nullptr) {
    // .NET's form: pvValue points at a PVOID holding the buffer; ulValueSize is its size.
    if (allocated->pvValue == nullptr) return kInvalidArg;
    void* buffer = nullptr;
    std::memcpy(&buffer, allocated->pvValue, sizeof buffer);
    if (buffer == nullptr || reinterpret_cast<std::uintptr_t>(buffer) % 8 != 0 ||
        static_cast<std::uint64_t>(allocated->ulValueSize) <
            static_cast<std::uint64_t>(rbs) + sbs + 144u)
      return kInvalidArg;
  }
  return guarded([&]() -> HRESULT {
    wsgate::v1::CreateHandleResponse r = server ? protocol().create_server_handle(request)
                                                : protocol().create_client_handle(request);
    auto handle = std::make_shared<Handle>();
    handle->remote = r.handle();
    handle->server = server;
    *out = insert(std::move(handle));
    return S_OK;
  });
}

}  // namespace

WSGATE_EXPORT HRESULT WINAPI WebSocketCreateClientHandle(const PWEB_SOCKET_PROPERTY pProperties,
                                                         ULONG ulPropertyCount,
                                                         WEB_SOCKET_HANDLE* phWebSocket) {
  return create(false, pProperties, ulPropertyCount, phWebSocket);
}

WSGATE_EXPORT HRESULT WINAPI WebSocketCreateServerHandle(const PWEB_SOCKET_PROPERTY pProperties,
                                                         ULONG ulPropertyCount,
                                                         WEB_SOCKET_HANDLE* phWebSocket) {
  return create(true, pProperties, ulPropertyCount, phWebSocket);
}

WSGATE_EXPORT HRESULT WINAPI WebSocketBeginClientHandshake(
    WEB_SOCKET_HANDLE hWebSocket, PCSTR* pszSubprotocols, ULONG ulSubprotocolCount,
    PCSTR* pszExtensions, ULONG ulExtensionCount, const PWEB_SOCKET_HTTP_HEADER pInitialHeaders,
    ULONG ulInitialHeaderCount, PWEB_SOCKET_HTTP_HEADER* pAdditionalHeaders,
    ULONG* pulAdditionalHeaderCount) {
  auto handle = lookup(hWebSocket);
  if (!handle) return kInvalidArg;
  if (pAdditionalHeaders == nullptr || pulAdditionalHeaderCount == nullptr) return kInvalidArg;
  if ((pszSubprotocols == nullptr && ulSubprotocolCount != 0) ||
      (pszExtensions == nullptr && ulExtensionCount != 0) ||
      (pInitialHeaders == nullptr && ulInitialHeaderCount != 0))
    return kInvalidArg;
  wsgate::v1::BeginClientHandshakeRequest request;
  request.set_handle(handle->remote);
  for (ULONG i = 0; i < ulSubprotocolCount; ++i) {
    if (pszSubprotocols[i] == nullptr) return kInvalidArg;
    request.add_subprotocols(pszSubprotocols[i]);
  }
  for (ULONG i = 0; i < ulExtensionCount; ++i) {
    if (pszExtensions[i] == nullptr) return kInvalidArg;
    request.add_extensions(pszExtensions[i]);
  }
  for (ULONG i = 0; i < ulInitialHeaderCount; ++i)
    if (!add_header(request.mutable_initial_headers(), pInitialHeaders[i])) return kInvalidArg;
  std::lock_guard<std::mutex> lock(handle->mu);
  return guarded([&]() -> HRESULT {
    auto r = protocol().begin_client_handshake(request);
    handle->offered_extensions = ulExtensionCount;
    store_headers(*handle, r.additional_headers(), pAdditionalHeaders, pulAdditionalHeaderCount);
    return S_OK;
  });
}

WSGATE_EXPORT HRESULT WINAPI WebSocketEndClientHandshake(
    WEB_SOCKET_HANDLE hWebSocket, const PWEB_SOCKET_HTTP_HEADER pResponseHeaders,
    ULONG ulReponseHeaderCount, ULONG* pulSelectedExtensions, ULONG* pulSelectedExtensionCount,
    ULONG* pulSelectedSubprotocol) {
  auto handle = lookup(hWebSocket);
  if (!handle) return kInvalidArg;
  if (pResponseHeaders == nullptr && ulReponseHeaderCount != 0) return kInvalidArg;
  std::lock_guard<std::mutex> lock(handle->mu);
  if (pulSelectedExtensions != nullptr && pulSelectedExtensionCount == nullptr) return kInvalidArg;
  if (pulSelectedExtensionCount != nullptr && *pulSelectedExtensionCount < handle->offered_extensions)
    return kInvalidArg;
  wsgate::v1::EndClientHandshakeRequest request;
  request.set_handle(handle->remote);
  for (ULONG i = 0; i < ulReponseHeaderCount; ++i)
    if (!add_header(request.mutable_response_headers(), pResponseHeaders[i])) return kInvalidArg;
  return guarded([&]() -> HRESULT {
    auto r = protocol().end_client_handshake(request);
    clear_headers(*handle);
    if (pulSelectedExtensionCount != nullptr) {
      ULONG n = 0;
      for (std::uint32_t index : r.selected_extensions()) {
        if (pulSelectedExtensions != nullptr && n < *pulSelectedExtensionCount)
          pulSelectedExtensions[n] = index;
        ++n;
      }
      *pulSelectedExtensionCount = n;
    }
    if (r.has_selected_subprotocol() && pulSelectedSubprotocol != nullptr)
      *pulSelectedSubprotocol = r.selected_subprotocol();
    return S_OK;
  });
}

WSGATE_EXPORT HRESULT WINAPI WebSocketBeginServerHandshake(
    WEB_SOCKET_HANDLE hWebSocket, PCSTR pszSubprotocolSelected, PCSTR* pszExtensionSelected,
    ULONG ulExtensionSelectedCount, const PWEB_SOCKET_HTTP_HEADER pRequestHeaders,
    ULONG ulRequestHeaderCount, PWEB_SOCKET_HTTP_HEADER* pResponseHeaders,
    ULONG* pulResponseHeaderCount) {
  auto handle = lookup(hWebSocket);
  if (!handle) return kInvalidArg;
  if (pResponseHeaders == nullptr || pulResponseHeaderCount == nullptr) return kInvalidArg;
  if ((pszExtensionSelected == nullptr && ulExtensionSelectedCount != 0) ||
      (pRequestHeaders == nullptr && ulRequestHeaderCount != 0))
    return kInvalidArg;
  wsgate::v1::BeginServerHandshakeRequest request;
  request.set_handle(handle->remote);
  if (pszSubprotocolSelected != nullptr) request.set_subprotocol_selected(pszSubprotocolSelected);
  for (ULONG i = 0; i < ulExtensionSelectedCount; ++i) {
    if (pszExtensionSelected[i] == nullptr) return kInvalidArg;
    request.add_extensions_selected(pszExtensionSelected[i]);
  }
  for (ULONG i = 0; i < ulRequestHeaderCount; ++i)
    if (!add_header(request.mutable_request_headers(), pRequestHeaders[i])) return kInvalidArg;
  std::lock_guard<std::mutex> lock(handle->mu);
  return guarded([&]() -> HRESULT {
    auto r = protocol().begin_server_handshake(request);
    store_headers(*handle, r.response_headers(), pResponseHeaders, pulResponseHeaderCount);
    return S_OK;
  });
}

WSGATE_EXPORT HRESULT WINAPI WebSocketEndServerHandshake(WEB_SOCKET_HANDLE hWebSocket) {
  auto handle = lookup(hWebSocket);
  if (!handle) return kInvalidArg;
  std::lock_guard<std::mutex> lock(handle->mu);
  return guarded([&]() -> HRESULT {
    protocol().end_server_handshake(handle->remote);
    clear_headers(*handle);
    return S_OK;
  });
}

WSGATE_EXPORT HRESULT WINAPI WebSocketSend(WEB_SOCKET_HANDLE hWebSocket,
                                           WEB_SOCKET_BUFFER_TYPE BufferType,
                                           WEB_SOCKET_BUFFER* pBuffer, PVOID Context) {
  auto handle = lookup(hWebSocket);
  if (!handle) return kInvalidArg;
  const std::uint32_t t = static_cast<std::uint32_t>(BufferType);
  if (t < 0x80000000u || t > 0x80000006u) return kInvalidArg;
  wsgate::v1::SendRequest request;
  request.set_handle(handle->remote);
  request.set_buffer_type(static_cast<wsgate::v1::BufferType>(t - 0x80000000u + 1u));
  request.set_context(reinterpret_cast<std::uintptr_t>(Context));
  PendingSend pending{nullptr, 0, request.context()};
  if (pBuffer != nullptr) {
    if (BufferType == WEB_SOCKET_CLOSE_BUFFER_TYPE) {
      const auto& c = pBuffer->CloseStatus;
      if ((c.pbReason == nullptr) != (c.ulReasonLength == 0)) return kInvalidArg;
      request.mutable_close()->set_status(c.usStatus);
      if (c.ulReasonLength != 0)
        request.mutable_close()->set_reason(c.pbReason, c.ulReasonLength);
    } else {
      const auto& d = pBuffer->Data;
      if (d.pbBuffer == nullptr && d.ulBufferLength != 0) return kInvalidArg;
      request.set_data(d.pbBuffer, d.ulBufferLength);
      pending.data = d.pbBuffer;
      pending.length = d.ulBufferLength;
    }
  }
  std::lock_guard<std::mutex> lock(handle->mu);
  return guarded([&]() -> HRESULT {
    protocol().send(request);
    handle->sends.push_back(pending);
    return S_OK;
  });
}

WSGATE_EXPORT HRESULT WINAPI WebSocketReceive(WEB_SOCKET_HANDLE hWebSocket,
                                              WEB_SOCKET_BUFFER* pBuffer, PVOID pvContext) {
  auto handle = lookup(hWebSocket);
  if (!handle) return kInvalidArg;
  wsgate::v1::ReceiveRequest request;
  request.set_handle(handle->remote);
  request.set_context(reinterpret_cast<std::uintptr_t>(pvContext));
  PendingReceive pending{nullptr, 0};
  if (pBuffer != nullptr) {
    if (pBuffer->Data.pbBuffer == nullptr || pBuffer->Data.ulBufferLength == 0) return kInvalidArg;
    request.set_buffer_length(pBuffer->Data.ulBufferLength);
    pending = {pBuffer->Data.pbBuffer, pBuffer->Data.ulBufferLength};
  }
  std::lock_guard<std::mutex> lock(handle->mu);
  return guarded([&]() -> HRESULT {
    protocol().receive(request);
    handle->receives.push_back(pending);
    return S_OK;
  });
}

WSGATE_EXPORT HRESULT WINAPI WebSocketGetAction(
    WEB_SOCKET_HANDLE hWebSocket, WEB_SOCKET_ACTION_QUEUE eActionQueue,
    WEB_SOCKET_BUFFER* pDataBuffers, ULONG* pulDataBufferCount, WEB_SOCKET_ACTION* pAction,
    WEB_SOCKET_BUFFER_TYPE* pBufferType, PVOID* pvApplicationContext, PVOID* pvActionContext) {
  auto handle = lookup(hWebSocket);
  if (!handle) return kInvalidArg;
  if (pDataBuffers == nullptr || pulDataBufferCount == nullptr || pAction == nullptr ||
      pBufferType == nullptr || pvActionContext == nullptr)
    return kInvalidArg;
  const auto q = static_cast<std::uint32_t>(eActionQueue);
  if (q < 1u || q > 3u) return kInvalidArg;
  wsgate::v1::GetActionRequest request;
  request.set_handle(handle->remote);
  request.set_queue(static_cast<wsgate::v1::ActionQueue>(q));
  request.set_buffer_capacity(*pulDataBufferCount);
  std::lock_guard<std::mutex> lock(handle->mu);
  return guarded([&]() -> HRESULT {
    wsgate::v1::GetActionResponse r = protocol().get_action(request);
    const ULONG capacity = *pulDataBufferCount;
    const auto action = static_cast<WEB_SOCKET_ACTION>(r.action() > 0 ? r.action() - 1 : 0);
    *pAction = action;
    *pBufferType = static_cast<WEB_SOCKET_BUFFER_TYPE>(
        0x80000000u + static_cast<std::uint32_t>(r.buffer_type() > 0 ? r.buffer_type() - 1 : 0));
    if (pvApplicationContext != nullptr)
      *pvApplicationContext = reinterpret_cast<PVOID>(static_cast<std::uintptr_t>(r.application_context()));
    *pvActionContext = reinterpret_cast<PVOID>(static_cast<std::uintptr_t>(r.action_context()));
    if (action == WEB_SOCKET_NO_ACTION) {
      *pulDataBufferCount = 0;
      return S_OK;
    }
    Outstanding& out = handle->actions[r.action_context()];
    out = Outstanding();
    out.action = action;
    ULONG n = 0;
    switch (action) {
      case WEB_SOCKET_SEND_TO_NETWORK_ACTION: {
        for (int i = 0; i < r.buffers_size() && n < capacity; ++i) out.buffers.push_back(r.buffers(i));
        for (std::size_t i = 0; i < out.buffers.size(); ++i) {
          std::string& b = out.buffers[i];
          PBYTE p = reinterpret_cast<PBYTE>(b.data());
          // The unmasked payload of a Send: hand out the app's own buffer, as the dll does.
          if (i == 1 && !b.empty()) {
            for (const PendingSend& s : handle->sends) {
              if (s.data != nullptr && s.length == b.size() &&
                  std::memcmp(s.data, b.data(), b.size()) == 0) {
                p = const_cast<PBYTE>(s.data);
                break;
              }
            }
          }
          pDataBuffers[n].Data.pbBuffer = p;
          pDataBuffers[n].Data.ulBufferLength = static_cast<ULONG>(b.size());
          ++n;
        }
        break;
      }
      case WEB_SOCKET_INDICATE_SEND_COMPLETE_ACTION: {
        for (auto it = handle->sends.begin(); it != handle->sends.end(); ++it) {
          if (it->context == r.application_context()) {
            handle->sends.erase(it);
            break;
          }
        }
        break;
      }
      case WEB_SOCKET_RECEIVE_FROM_NETWORK_ACTION: {
        out.read_buffer.resize(r.receive_capacity() == 0 ? 1 : r.receive_capacity());
        pDataBuffers[0].Data.pbBuffer = out.read_buffer.data();
        pDataBuffers[0].Data.ulBufferLength = r.receive_capacity();
        n = 1;
        break;
      }
      case WEB_SOCKET_INDICATE_RECEIVE_COMPLETE_ACTION: {
        PendingReceive receive{nullptr, 0};
        if (!handle->receives.empty()) {
          receive = handle->receives.front();
          handle->receives.pop_front();
        }
        if (r.buffer_type() == wsgate::v1::BUFFER_TYPE_CLOSE) {
          out.buffers.push_back(r.close_status().reason());
          std::string& reason = out.buffers.back();
          pDataBuffers[0].CloseStatus.pbReason =
              reason.empty() ? nullptr : reinterpret_cast<PBYTE>(reason.data());
          pDataBuffers[0].CloseStatus.ulReasonLength = static_cast<ULONG>(reason.size());
          pDataBuffers[0].CloseStatus.usStatus = static_cast<USHORT>(r.close_status().status());
        } else {
          std::string data;
          for (const auto& b : r.buffers()) data += b;
          out.buffers.push_back(std::move(data));
          std::string& d = out.buffers.back();
          PBYTE p = reinterpret_cast<PBYTE>(d.data());
          if (receive.buffer != nullptr && !d.empty() && d.size() <= receive.length) {
            std::memcpy(receive.buffer, d.data(), d.size());
            p = receive.buffer;
          }
          pDataBuffers[0].Data.pbBuffer = p;
          pDataBuffers[0].Data.ulBufferLength = static_cast<ULONG>(d.size());
        }
        n = 1;
        break;
      }
      default:
        break;
    }
    *pulDataBufferCount = n;
    return S_OK;
  });
}

WSGATE_EXPORT VOID WINAPI WebSocketCompleteAction(WEB_SOCKET_HANDLE hWebSocket,
                                                  PVOID pvActionContext,
                                                  ULONG ulBytesTransferred) {
  auto handle = lookup(hWebSocket);
  if (!handle) return;
  std::lock_guard<std::mutex> lock(handle->mu);
  const auto ctx = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(pvActionContext));
  wsgate::v1::CompleteActionRequest request;
  request.set_handle(handle->remote);
  request.set_action_context(ctx);
  request.set_bytes_transferred(ulBytesTransferred);
  auto it = handle->actions.find(ctx);
  if (it != handle->actions.end() && it->second.action == WEB_SOCKET_RECEIVE_FROM_NETWORK_ACTION) {
    // The bytes read; a count larger than the buffer is EOF, as in the engine.
    const auto& b = it->second.read_buffer;
    if (ulBytesTransferred <= b.size())
      request.set_data(b.data(), ulBytesTransferred);
  }
  (void)guarded([&]() -> HRESULT {
    protocol().complete_action(request);
    return S_OK;
  });
  if (it != handle->actions.end()) handle->actions.erase(it);
}

WSGATE_EXPORT VOID WINAPI WebSocketAbortHandle(WEB_SOCKET_HANDLE hWebSocket) {
  auto handle = lookup(hWebSocket);
  if (!handle) return;
  std::lock_guard<std::mutex> lock(handle->mu);
  (void)guarded([&]() -> HRESULT {
    protocol().abort_handle(handle->remote);
    return S_OK;
  });
}

WSGATE_EXPORT VOID WINAPI WebSocketDeleteHandle(WEB_SOCKET_HANDLE hWebSocket) {
  std::shared_ptr<Handle> handle;
  {
    std::lock_guard<std::mutex> lock(g_table_mu);
    auto it = g_table.find(reinterpret_cast<std::uintptr_t>(hWebSocket));
    if (it == g_table.end()) return;
    handle = std::move(it->second);
    g_table.erase(it);
  }
  std::lock_guard<std::mutex> lock(handle->mu);
  (void)guarded([&]() -> HRESULT {
    protocol().delete_handle(handle->remote);
    return S_OK;
  });
}

WSGATE_EXPORT HRESULT WINAPI WebSocketGetGlobalProperty(WEB_SOCKET_PROPERTY_TYPE eType,
                                                        PVOID pvValue, ULONG* ulSize) {
  if (ulSize == nullptr) return kInvalidArg;
  if (static_cast<std::uint32_t>(eType) > 6u) return kInvalidArg;
  wsgate::v1::GetGlobalPropertyRequest request;
  request.set_type(static_cast<PropertyType>(static_cast<int>(eType) + 1));
  request.set_size(*ulSize);
  try {
    auto r = protocol().get_global_property(request);
    if (pvValue == nullptr) return kInvalidArg;
    std::memcpy(pvValue, r.value().data(), std::min<std::size_t>(r.value().size(), *ulSize));
    *ulSize = r.size();
    return S_OK;
  } catch (const wsgate::Error& e) {
    if (e.required_size() != 0) *ulSize = e.required_size();
    return to_hresult(e);
  } catch (...) {
    return kFail;
  }
}
