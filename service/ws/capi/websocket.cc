// The websocket.h C ABI over the engine: the in-process backend (libwebsocket.so).
//
// Handles are ids in a process-wide HandleTable, so a deleted, forged or NULL handle gives
// E_INVALIDARG (or is ignored by the VOID functions) instead of a crash. Each handle's calls are
// serialised under its own lock: a send thread and a receive thread may share a handle.
#include "websocket.h"

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "service/ws/handle_table.h"
#include "service/ws/protocol_handle.h"

namespace ws = wsgate::ws;

// The 13 functions are the library's only exports (everything else is hidden).
#ifdef _WIN32
#define WSGATE_CAPI_EXPORT __declspec(dllexport)
#else
#define WSGATE_CAPI_EXPORT __attribute__((visibility("default")))
#endif

// The engine's value types are the C types, byte for byte: conversions are casts, not copies.
static_assert(sizeof(WEB_SOCKET_HTTP_HEADER) == sizeof(ws::HttpHeader));
static_assert(offsetof(WEB_SOCKET_HTTP_HEADER, pcValue) == offsetof(ws::HttpHeader, value));
static_assert(offsetof(WEB_SOCKET_HTTP_HEADER, ulValueLength) ==
              offsetof(ws::HttpHeader, value_length));
static_assert(sizeof(WEB_SOCKET_BUFFER) == sizeof(ws::Buffer));
static_assert(offsetof(WEB_SOCKET_BUFFER, CloseStatus.usStatus) ==
              offsetof(ws::Buffer, close_status.status));
static_assert(offsetof(WEB_SOCKET_BUFFER, Data.ulBufferLength) ==
              offsetof(ws::Buffer, data.length));
static_assert(sizeof(WEB_SOCKET_PROPERTY) == sizeof(ws::Property));
static_assert(offsetof(WEB_SOCKET_PROPERTY, ulValueSize) == offsetof(ws::Property, value_size));
static_assert(sizeof(WEB_SOCKET_BUFFER_TYPE) == sizeof(ws::BufferType));
static_assert(sizeof(WEB_SOCKET_ACTION) == sizeof(ws::Action));
static_assert(sizeof(WEB_SOCKET_PROPERTY_TYPE) == sizeof(ws::PropertyType));
static_assert(static_cast<std::uint32_t>(WEB_SOCKET_UNSOLICITED_PONG_BUFFER_TYPE) ==
              static_cast<std::uint32_t>(ws::BufferType::unsolicited_pong));
static_assert(WEB_SOCKET_INDICATE_RECEIVE_COMPLETE_ACTION ==
              static_cast<int>(ws::Action::indicate_receive_complete));

namespace {

ws::HandleTable<ws::ProtocolHandle>& table() {
  // Never destroyed: a handle may be used from another static destructor or thread at exit.
  static auto* instance = new ws::HandleTable<ws::ProtocolHandle>();
  return *instance;
}

ws::NumericTable numeric_table() {
  static const ws::NumericTable selected = [] {
    const char* v = std::getenv("WSGATE_HRESULT_TABLE");
    return (v != nullptr && std::strcmp(v, "winerror") == 0) ? ws::NumericTable::winerror
                                                             : ws::NumericTable::dotnet;
  }();
  return selected;
}

HRESULT to_hresult(ws::Result r) {
  return static_cast<HRESULT>(ws::numeric_value(r, numeric_table()));
}

// ULONG is std::uint32_t here but `unsigned long` on Windows (32 bits too, another type): the
// engine's std::uint32_t* parameters get a copy of an in/out ULONG, written back after the call
// (a full expression: `U32(p).get()` lives until the engine call has returned).
class U32 {
 public:
  explicit U32(ULONG* p) : p_(p), value_(p != nullptr ? static_cast<std::uint32_t>(*p) : 0) {}
  ~U32() {
    if (p_ != nullptr) *p_ = value_;
  }
  U32(const U32&) = delete;
  U32& operator=(const U32&) = delete;
  std::uint32_t* get() { return p_ != nullptr ? &value_ : nullptr; }

 private:
  ULONG* p_;
  std::uint32_t value_;
};
static_assert(sizeof(ULONG) == sizeof(std::uint32_t));

std::uint64_t id_of(WEB_SOCKET_HANDLE h) { return reinterpret_cast<std::uintptr_t>(h); }

HRESULT create(ws::Role role, const PWEB_SOCKET_PROPERTY properties, ULONG count,
               WEB_SOCKET_HANDLE* out) {
  if (out == nullptr) return E_INVALIDARG;
  std::unique_ptr<ws::ProtocolHandle> handle;
  const ws::Result r = ws::ProtocolHandle::create(
      role, reinterpret_cast<const ws::Property*>(properties), count, &handle);
  if (r != ws::Result::ok) return to_hresult(r);
  *out = reinterpret_cast<WEB_SOCKET_HANDLE>(
      static_cast<std::uintptr_t>(table().insert(std::move(handle))));
  return S_OK;
}

// Runs fn(handle) -> Result under the handle's lock; E_INVALIDARG for an unknown handle.
template <class Fn>
HRESULT call(WEB_SOCKET_HANDLE h, Fn&& fn) {
  ws::Result r = ws::Result::invalid_arg;
  table().with(id_of(h), [&](ws::ProtocolHandle& handle) { r = fn(handle); });
  return to_hresult(r);
}

}  // namespace

extern "C" {

WSGATE_CAPI_EXPORT HRESULT WINAPI WebSocketCreateClientHandle(
    const PWEB_SOCKET_PROPERTY pProperties, ULONG ulPropertyCount,
    WEB_SOCKET_HANDLE* phWebSocket) {
  return create(ws::Role::client, pProperties, ulPropertyCount, phWebSocket);
}

WSGATE_CAPI_EXPORT HRESULT WINAPI WebSocketCreateServerHandle(
    const PWEB_SOCKET_PROPERTY pProperties, ULONG ulPropertyCount,
    WEB_SOCKET_HANDLE* phWebSocket) {
  return create(ws::Role::server, pProperties, ulPropertyCount, phWebSocket);
}

WSGATE_CAPI_EXPORT HRESULT WINAPI WebSocketBeginClientHandshake(
    WEB_SOCKET_HANDLE hWebSocket, PCSTR* pszSubprotocols, ULONG ulSubprotocolCount,
    PCSTR* pszExtensions, ULONG ulExtensionCount, const PWEB_SOCKET_HTTP_HEADER pInitialHeaders,
    ULONG ulInitialHeaderCount, PWEB_SOCKET_HTTP_HEADER* pAdditionalHeaders,
    ULONG* pulAdditionalHeaderCount) {
  return call(hWebSocket, [&](ws::ProtocolHandle& h) {
    return h.begin_client_handshake(
        pszSubprotocols, ulSubprotocolCount, pszExtensions, ulExtensionCount,
        reinterpret_cast<const ws::HttpHeader*>(pInitialHeaders), ulInitialHeaderCount,
        reinterpret_cast<ws::HttpHeader**>(pAdditionalHeaders), U32(pulAdditionalHeaderCount).get());
  });
}

WSGATE_CAPI_EXPORT HRESULT WINAPI WebSocketEndClientHandshake(
    WEB_SOCKET_HANDLE hWebSocket, const PWEB_SOCKET_HTTP_HEADER pResponseHeaders,
    ULONG ulReponseHeaderCount, ULONG* pulSelectedExtensions, ULONG* pulSelectedExtensionCount,
    ULONG* pulSelectedSubprotocol) {
  return call(hWebSocket, [&](ws::ProtocolHandle& h) {
    return h.end_client_handshake(reinterpret_cast<const ws::HttpHeader*>(pResponseHeaders),
                                  ulReponseHeaderCount, U32(pulSelectedExtensions).get(),
                                  U32(pulSelectedExtensionCount).get(),
                                  U32(pulSelectedSubprotocol).get());
  });
}

WSGATE_CAPI_EXPORT HRESULT WINAPI WebSocketBeginServerHandshake(
    WEB_SOCKET_HANDLE hWebSocket, PCSTR pszSubprotocolSelected, PCSTR* pszExtensionSelected,
    ULONG ulExtensionSelectedCount, const PWEB_SOCKET_HTTP_HEADER pRequestHeaders,
    ULONG ulRequestHeaderCount, PWEB_SOCKET_HTTP_HEADER* pResponseHeaders,
    ULONG* pulResponseHeaderCount) {
  return call(hWebSocket, [&](ws::ProtocolHandle& h) {
    return h.begin_server_handshake(
        pszSubprotocolSelected, pszExtensionSelected, ulExtensionSelectedCount,
        reinterpret_cast<const ws::HttpHeader*>(pRequestHeaders), ulRequestHeaderCount,
        reinterpret_cast<ws::HttpHeader**>(pResponseHeaders), U32(pulResponseHeaderCount).get());
  });
}

WSGATE_CAPI_EXPORT HRESULT WINAPI
WebSocketEndServerHandshake(WEB_SOCKET_HANDLE hWebSocket) {
  return call(hWebSocket, [](ws::ProtocolHandle& h) { return h.end_server_handshake(); });
}

WSGATE_CAPI_EXPORT HRESULT WINAPI WebSocketSend(
    WEB_SOCKET_HANDLE hWebSocket, WEB_SOCKET_BUFFER_TYPE BufferType, WEB_SOCKET_BUFFER* pBuffer,
    PVOID Context) {
  return call(hWebSocket, [&](ws::ProtocolHandle& h) {
    return h.send(static_cast<ws::BufferType>(BufferType),
                  reinterpret_cast<const ws::Buffer*>(pBuffer), Context);
  });
}

WSGATE_CAPI_EXPORT HRESULT WINAPI WebSocketReceive(
    WEB_SOCKET_HANDLE hWebSocket, WEB_SOCKET_BUFFER* pBuffer, PVOID pvContext) {
  return call(hWebSocket, [&](ws::ProtocolHandle& h) {
    return h.receive(reinterpret_cast<const ws::Buffer*>(pBuffer), pvContext);
  });
}

WSGATE_CAPI_EXPORT HRESULT WINAPI WebSocketGetAction(
    WEB_SOCKET_HANDLE hWebSocket, WEB_SOCKET_ACTION_QUEUE eActionQueue,
    WEB_SOCKET_BUFFER* pDataBuffers, ULONG* pulDataBufferCount, WEB_SOCKET_ACTION* pAction,
    WEB_SOCKET_BUFFER_TYPE* pBufferType, PVOID* pvApplicationContext, PVOID* pvActionContext) {
  return call(hWebSocket, [&](ws::ProtocolHandle& h) {
    return h.get_action(static_cast<ws::ActionQueue>(eActionQueue),
                        reinterpret_cast<ws::Buffer*>(pDataBuffers), U32(pulDataBufferCount).get(),
                        reinterpret_cast<ws::Action*>(pAction),
                        reinterpret_cast<ws::BufferType*>(pBufferType), pvApplicationContext,
                        pvActionContext);
  });
}

WSGATE_CAPI_EXPORT VOID WINAPI WebSocketCompleteAction(
    WEB_SOCKET_HANDLE hWebSocket, PVOID pvActionContext, ULONG ulBytesTransferred) {
  table().with(id_of(hWebSocket), [&](ws::ProtocolHandle& h) {
    h.complete_action(pvActionContext, ulBytesTransferred);
  });
}

WSGATE_CAPI_EXPORT VOID WINAPI WebSocketAbortHandle(WEB_SOCKET_HANDLE hWebSocket) {
  table().with(id_of(hWebSocket), [](ws::ProtocolHandle& h) { h.abort(); });
}

WSGATE_CAPI_EXPORT VOID WINAPI
WebSocketDeleteHandle(WEB_SOCKET_HANDLE hWebSocket) {
  table().erase(id_of(hWebSocket));
}

WSGATE_CAPI_EXPORT HRESULT WINAPI WebSocketGetGlobalProperty(
    WEB_SOCKET_PROPERTY_TYPE eType, PVOID pvValue, ULONG* ulSize) {
  return to_hresult(
      ws::get_global_property(static_cast<ws::PropertyType>(eType), pvValue, U32(ulSize).get()));
}

}  // extern "C"
