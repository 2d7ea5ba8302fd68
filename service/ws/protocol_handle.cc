#include "service/ws/protocol_handle.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstring>
#include <new>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#define WSGATE_WS_MMAP 1
#else
#define WSGATE_WS_MMAP 0
#endif

#include "service/ws/handshake.h"

namespace wsgate::ws {
namespace {

std::atomic<std::uint32_t> g_keepalive_interval_ms{kDefaultKeepaliveIntervalMs};

// Offset in control_frame_/pong_frame_ where a control payload starts; the header is written
// right before it so header and payload form one contiguous buffer.
constexpr std::size_t kControlPayloadOffset = kMaxFrameHeaderLength;

// Masks a control frame's payload in place and writes its header right before it (the payload
// sits at kControlPayloadOffset, which leaves room for the longest header); returns the frame as
// one contiguous buffer.
Buffer seal_control_frame(std::uint8_t* payload, std::uint32_t length, Opcode opcode, bool masked,
                          MaskKey key) {
  if (masked) apply_mask(payload, length, key);
  const std::size_t header_length = frame_header_length(masked, length);
  std::uint8_t* start = payload - header_length;
  write_frame_header(start, true, opcode, masked, key, length);
  Buffer frame{};
  frame.data = {start, static_cast<std::uint32_t>(header_length + length)};
  return frame;
}

std::uint32_t read_u32(const void* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// A header array supplied by our caller: NULL with a non-zero count, or an entry with a NULL
// pointer and a non-zero length, is an argument error.
bool headers_well_formed(const HttpHeader* headers, std::uint32_t count) {
  if (count != 0 && headers == nullptr) return false;
  for (std::uint32_t i = 0; i < count; ++i) {
    if ((headers[i].name == nullptr && headers[i].name_length != 0) ||
        (headers[i].value == nullptr && headers[i].value_length != 0)) {
      return false;
    }
  }
  return true;
}

// Does any header named `name` hold `token` in its comma-separated list?
bool any_header_has_token(const HttpHeader* headers, std::uint32_t count, std::string_view name,
                          std::string_view token) {
  for (std::uint32_t i = 0; i < count; ++i) {
    if (iequals(name_of(headers[i]), name) && list_contains_token(value_of(headers[i]), token)) {
      return true;
    }
  }
  return false;
}

// The extension's name: what comes before its first ';' (its parameters), trimmed.
std::string_view extension_name(std::string_view element) {
  return trim(element.substr(0, element.find(';')));
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Properties and global properties.

Result resolve_properties(Role role, const Property* properties, std::uint32_t count,
                          HandleOptions* out) noexcept {
  if (out == nullptr || (count != 0 && properties == nullptr)) return Result::invalid_arg;
  HandleOptions o;
  o.send_buffer_size =
      role == Role::client ? kDefaultClientSendBufferSize : kDefaultServerSendBufferSize;
  bool seen[5] = {};
  bool have_allocated = false;
  for (std::uint32_t i = 0; i < count; ++i) {
    const Property& p = properties[i];
    const auto type = static_cast<std::uint32_t>(p.type);
    if (type > static_cast<std::uint32_t>(PropertyType::disable_utf8_verification)) {
      return Result::invalid_arg;  // unknown, or KEEPALIVE_INTERVAL/SUPPORTED_VERSIONS (global only)
    }
    if (seen[type] || p.value == nullptr) return Result::invalid_arg;
    seen[type] = true;
    switch (p.type) {
      case PropertyType::receive_buffer_size:
        if (p.value_size != 4) return Result::invalid_arg;
        o.receive_buffer_size = read_u32(p.value);
        if (o.receive_buffer_size < kMinReceiveBufferSize ||
            o.receive_buffer_size > kMaxBufferSize) {
          return Result::invalid_arg;
        }
        break;
      case PropertyType::send_buffer_size:
        if (p.value_size != 4) return Result::invalid_arg;
        o.send_buffer_size = read_u32(p.value);
        if (o.send_buffer_size < kMinSendBufferSize || o.send_buffer_size > kMaxBufferSize) {
          return Result::invalid_arg;
        }
        break;
      case PropertyType::disable_masking:
        if (p.value_size != 4) return Result::invalid_arg;
        o.disable_masking = read_u32(p.value) != 0;
        break;
      case PropertyType::disable_utf8_verification:
        if (p.value_size != 4) return Result::invalid_arg;
        o.disable_utf8_verification = read_u32(p.value) != 0;
        break;
      case PropertyType::allocated_buffer: {
        // As .NET passes it: pvValue points at a PVOID holding the address; ulValueSize is the size.
        void* address;
        std::memcpy(&address, p.value, sizeof address);
        o.allocated_buffer = static_cast<std::uint8_t*>(address);
        o.allocated_buffer_size = p.value_size;
        have_allocated = true;
        break;
      }
      default:
        return Result::invalid_arg;
    }
  }
  if (have_allocated) {
    const std::uint64_t needed = std::uint64_t{o.receive_buffer_size} + o.send_buffer_size +
                                 kAllocatedBufferOverhead;
    if (o.allocated_buffer == nullptr ||
        reinterpret_cast<std::uintptr_t>(o.allocated_buffer) % kAllocatedBufferAlignment != 0 ||
        o.allocated_buffer_size < needed) {
      return Result::invalid_arg;
    }
  }
  *out = o;
  return Result::ok;
}

void set_keepalive_interval(std::uint32_t milliseconds) noexcept {
  g_keepalive_interval_ms.store(std::max(milliseconds, kMinKeepaliveIntervalMs));
}

std::uint32_t keepalive_interval() noexcept { return g_keepalive_interval_ms.load(); }

Result get_global_property(PropertyType type, void* value, std::uint32_t* size) noexcept {
  if (size == nullptr) return Result::invalid_arg;
  std::uint32_t v;
  switch (type) {
    case PropertyType::keepalive_interval: v = keepalive_interval(); break;
    case PropertyType::supported_versions: v = 13; break;  // ULONG[] with one element
    default: return Result::invalid_arg;
  }
  if (*size < sizeof v) {
    *size = sizeof v;
    return Result::insufficient_buffer;
  }
  if (value == nullptr) return Result::invalid_arg;
  std::memcpy(value, &v, sizeof v);
  *size = sizeof v;
  return Result::ok;
}

std::vector<std::pair<std::string, std::string>> merge_request_headers(
    const HttpHeader* initial, std::uint32_t initial_count, const HttpHeader* additional,
    std::uint32_t additional_count) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<bool> used(additional_count, false);
  for (std::uint32_t i = 0; i < initial_count; ++i) {
    bool replaced = false;
    for (std::uint32_t j = 0; j < additional_count; ++j) {
      if (iequals(name_of(initial[i]), name_of(additional[j]))) {
        if (!used[j]) out.emplace_back(name_of(additional[j]), value_of(additional[j]));
        used[j] = true;
        replaced = true;
      }
    }
    if (!replaced) out.emplace_back(name_of(initial[i]), value_of(initial[i]));
  }
  for (std::uint32_t j = 0; j < additional_count; ++j) {
    if (!used[j]) out.emplace_back(name_of(additional[j]), value_of(additional[j]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Creation and state.

template <class T>
void ProtocolHandle::Ring<T>::push(const T& v) {
  if (size_ == items_.size()) {
    std::vector<T> bigger(std::max<std::size_t>(4, items_.size() * 2));
    for (std::size_t i = 0; i < size_; ++i) {
      bigger[i] = items_[(head_ + i) & (items_.size() - 1)];
    }
    items_ = std::move(bigger);
    head_ = 0;
  }
  items_[(head_ + size_) & (items_.size() - 1)] = v;
  ++size_;
}

Result ProtocolHandle::create(Role role, const Property* properties, std::uint32_t count,
                              std::unique_ptr<ProtocolHandle>* out) {
  if (out == nullptr) return Result::invalid_arg;
  HandleOptions options;
  if (Result r = resolve_properties(role, properties, count, &options); r != Result::ok) return r;
  try {
    out->reset(new ProtocolHandle(role, options));
  } catch (const std::bad_alloc&) {
    return Result::out_of_memory;
  }
  return Result::ok;
}

// Areas of at least this many bytes get an anonymous mapping of their own (POSIX). Its pages
// cost memory only once touched, and an idle connection touches almost none (its pending read
// has nothing to write; nothing is sent). From the heap, a block this size starts next to
// malloc's chunk header, so its first page is resident from the start, and the allocator keeps
// the pages a freed block touched. Measured with the gateway's 2 x 64 KiB areas: see
// bench/README.md, "Idle RSS". Smaller areas (the websocket.h defaults) stay on the heap, where
// a mapping would waste most of a page.
constexpr std::size_t kMappedAreaMinimum = 64u * 1024;

void ProtocolHandle::OwnedMemory::operator()(std::uint8_t* memory) const noexcept {
#if WSGATE_WS_MMAP
  if (mapped != 0) {
    ::munmap(memory, mapped);
    return;
  }
#endif
  delete[] memory;
}

ProtocolHandle::ProtocolHandle(Role role, const HandleOptions& options)
    : role_(role), options_(options) {
  std::uint8_t* memory = options_.allocated_buffer;
  if (memory == nullptr) {
    const std::size_t size =
        std::size_t{options_.receive_buffer_size} + options_.send_buffer_size;
#if WSGATE_WS_MMAP
    if (size >= kMappedAreaMinimum) {
      void* mapped =
          ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (mapped == MAP_FAILED) throw std::bad_alloc();
      owned_memory_ = std::unique_ptr<std::uint8_t[], OwnedMemory>(
          static_cast<std::uint8_t*>(mapped), OwnedMemory{size});
    }
#endif
    if (!owned_memory_) {
      owned_memory_ = std::unique_ptr<std::uint8_t[], OwnedMemory>(new std::uint8_t[size],
                                                                   OwnedMemory{0});
    }
    memory = owned_memory_.get();
  }
  receive_area_ = memory;
  send_area_ = memory + options_.receive_buffer_size;
}

ProtocolHandle::~ProtocolHandle() = default;

Result ProtocolHandle::apply(Event event) {
  std::optional<State> next = next_state(role_, state_, event);
  if (!next) return Result::invalid_operation;
  state_ = *next;
  return Result::ok;
}

std::uintptr_t ProtocolHandle::next_token(Action action) noexcept {
  // Never 0 (a NULL context), and the action kind in the low bits helps when debugging.
  return (++token_counter_ << 3) | static_cast<std::uintptr_t>(action);
}

// ---------------------------------------------------------------------------------------------
// Handshake.

void ProtocolHandle::set_headers(
    const std::vector<std::pair<std::string_view, std::string_view>>& headers, HttpHeader** out,
    std::uint32_t* out_count) {
  release_headers();
  header_strings_.reserve(2 * headers.size());
  for (const auto& [name, value] : headers) {
    header_strings_.emplace_back(name);
    header_strings_.emplace_back(value);
  }
  // Pointers are taken after every string exists, so no reallocation can move them.
  headers_.reserve(headers.size());
  for (std::size_t i = 0; i < header_strings_.size(); i += 2) {
    std::string& name = header_strings_[i];
    std::string& value = header_strings_[i + 1];
    headers_.push_back(HttpHeader{name.data(), static_cast<std::uint32_t>(name.size()),
                                  value.data(), static_cast<std::uint32_t>(value.size())});
  }
  *out = headers_.data();
  *out_count = static_cast<std::uint32_t>(headers_.size());
}

void ProtocolHandle::release_headers() noexcept {
  headers_.clear();
  headers_.shrink_to_fit();
  header_strings_.clear();
  header_strings_.shrink_to_fit();
}

Result ProtocolHandle::begin_client_handshake(const char* const* subprotocols,
                                              std::uint32_t subprotocol_count,
                                              const char* const* extensions,
                                              std::uint32_t extension_count,
                                              const HttpHeader* initial_headers,
                                              std::uint32_t initial_header_count,
                                              HttpHeader** additional_headers,
                                              std::uint32_t* additional_header_count) {
  if (additional_headers == nullptr || additional_header_count == nullptr) {
    return Result::invalid_arg;
  }
  if ((subprotocol_count != 0 && subprotocols == nullptr) ||
      (extension_count != 0 && extensions == nullptr) ||
      !headers_well_formed(initial_headers, initial_header_count)) {
    return Result::invalid_arg;
  }
  for (std::uint32_t i = 0; i < subprotocol_count; ++i) {
    if (subprotocols[i] == nullptr || !is_token(subprotocols[i])) return Result::invalid_arg;
  }
  for (std::uint32_t i = 0; i < extension_count; ++i) {
    if (extensions[i] == nullptr || extension_name(extensions[i]).empty() ||
        !is_safe_header_value(extensions[i])) {
      return Result::invalid_arg;
    }
  }
  for (std::uint32_t i = 0; i < initial_header_count; ++i) {
    if (!is_token(name_of(initial_headers[i])) ||
        !is_safe_header_value(value_of(initial_headers[i]))) {
      return Result::invalid_arg;
    }
  }
  if (!next_state(role_, state_, Event::begin_client_handshake)) {
    return Result::invalid_operation;
  }

  client_key_ = make_client_key();
  offered_subprotocols_.assign(subprotocols, subprotocols + subprotocol_count);
  offered_extensions_.assign(extensions, extensions + extension_count);
  const std::string protocols = join(offered_subprotocols_);
  const std::string extension_list = join(offered_extensions_);
  std::vector<std::pair<std::string_view, std::string_view>> headers{
      {"Connection", "Upgrade"},
      {"Upgrade", "websocket"},
      {"Sec-WebSocket-Key", client_key_},
      {"Sec-WebSocket-Version", "13"}};
  if (subprotocol_count != 0) headers.emplace_back("Sec-WebSocket-Protocol", protocols);
  if (extension_count != 0) headers.emplace_back("Sec-WebSocket-Extensions", extension_list);
  set_headers(headers, additional_headers, additional_header_count);
  return apply(Event::begin_client_handshake);
}

Result ProtocolHandle::end_client_handshake(const HttpHeader* response_headers,
                                            std::uint32_t response_header_count,
                                            std::uint32_t* selected_extensions,
                                            std::uint32_t* selected_extension_count,
                                            std::uint32_t* selected_subprotocol) {
  if (!headers_well_formed(response_headers, response_header_count)) return Result::invalid_arg;
  if (selected_extensions != nullptr && selected_extension_count == nullptr) {
    return Result::invalid_arg;
  }
  if (selected_extension_count != nullptr &&
      *selected_extension_count < offered_extensions_.size()) {
    return Result::invalid_arg;
  }
  if (!next_state(role_, state_, Event::end_client_handshake_ok)) {
    return Result::invalid_operation;
  }
  release_headers();  // the request headers are no longer needed

  std::optional<std::uint32_t> subprotocol_index;
  std::vector<std::uint32_t> extension_indices;
  const Result verdict = [&]() -> Result {
    const HttpHeader* h = response_headers;
    const std::uint32_t n = response_header_count;
    if (!any_header_has_token(h, n, "Upgrade", "websocket") ||
        !any_header_has_token(h, n, "Connection", "upgrade")) {
      return Result::invalid_protocol_format;
    }
    bool duplicate = false;
    std::optional<std::string_view> accept = find_header(h, n, "Sec-WebSocket-Accept", &duplicate);
    if (!accept || duplicate || trim(*accept) != accept_key(client_key_)) {
      return Result::invalid_protocol_format;
    }
    std::optional<std::string_view> protocol =
        find_header(h, n, "Sec-WebSocket-Protocol", &duplicate);
    if (protocol) {
      const std::string_view chosen = trim(*protocol);
      if (duplicate || !is_token(chosen)) return Result::invalid_protocol_format;
      auto it = std::find(offered_subprotocols_.begin(), offered_subprotocols_.end(), chosen);
      if (it == offered_subprotocols_.end()) return Result::subprotocol_not_supported;
      subprotocol_index = static_cast<std::uint32_t>(it - offered_subprotocols_.begin());
    }
    for (std::uint32_t i = 0; i < n; ++i) {
      if (!iequals(name_of(h[i]), "Sec-WebSocket-Extensions")) continue;
      std::string_view list = value_of(h[i]);
      while (true) {
        const std::size_t comma = list.find(',');
        const std::string_view name = extension_name(list.substr(0, comma));
        if (name.empty()) return Result::invalid_protocol_format;
        std::uint32_t index = 0;
        while (index < offered_extensions_.size() &&
               !iequals(extension_name(offered_extensions_[index]), name)) {
          ++index;
        }
        if (index == offered_extensions_.size()) return Result::extensions_not_supported;
        if (std::find(extension_indices.begin(), extension_indices.end(), index) !=
            extension_indices.end()) {
          return Result::invalid_protocol_format;
        }
        extension_indices.push_back(index);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    }
    return Result::ok;
  }();
  if (verdict != Result::ok) {
    apply(Event::end_client_handshake_failed);
    return verdict;
  }
  if (selected_subprotocol != nullptr && subprotocol_index) {
    *selected_subprotocol = *subprotocol_index;
  }
  if (selected_extension_count != nullptr) {
    if (selected_extensions != nullptr) {
      std::copy(extension_indices.begin(), extension_indices.end(), selected_extensions);
    }
    *selected_extension_count = static_cast<std::uint32_t>(extension_indices.size());
  }
  return apply(Event::end_client_handshake_ok);
}

Result ProtocolHandle::begin_server_handshake(const char* subprotocol_selected,
                                              const char* const* extensions_selected,
                                              std::uint32_t extension_selected_count,
                                              const HttpHeader* request_headers,
                                              std::uint32_t request_header_count,
                                              HttpHeader** response_headers,
                                              std::uint32_t* response_header_count) {
  if (response_headers == nullptr || response_header_count == nullptr ||
      !headers_well_formed(request_headers, request_header_count) ||
      (extension_selected_count != 0 && extensions_selected == nullptr)) {
    return Result::invalid_arg;
  }
  if (subprotocol_selected != nullptr && !is_token(subprotocol_selected)) {
    return Result::invalid_arg;
  }
  std::vector<std::string> chosen_extensions;
  for (std::uint32_t i = 0; i < extension_selected_count; ++i) {
    if (extensions_selected[i] == nullptr || extension_name(extensions_selected[i]).empty() ||
        !is_safe_header_value(extensions_selected[i])) {
      return Result::invalid_arg;
    }
    chosen_extensions.emplace_back(extensions_selected[i]);
  }
  if (!next_state(role_, state_, Event::begin_server_handshake)) {
    return Result::invalid_operation;
  }

  const HttpHeader* h = request_headers;
  const std::uint32_t n = request_header_count;
  bool duplicate = false;
  std::string_view key;
  const Result verdict = [&]() -> Result {
    if (!any_header_has_token(h, n, "Connection", "upgrade") ||
        !any_header_has_token(h, n, "Upgrade", "websocket")) {
      return Result::invalid_protocol_format;
    }
    std::optional<std::string_view> version =
        find_header(h, n, "Sec-WebSocket-Version", &duplicate);
    if (!version || duplicate) return Result::invalid_protocol_format;
    if (trim(*version) != "13") return Result::protocol_version_not_supported;
    std::optional<std::string_view> k = find_header(h, n, "Sec-WebSocket-Key", &duplicate);
    if (!k || duplicate || !is_valid_client_key(trim(*k))) return Result::invalid_protocol_format;
    key = trim(*k);
    return Result::ok;
  }();
  if (verdict != Result::ok) {
    apply(Event::begin_server_handshake_failed);
    return verdict;
  }

  const std::string accept = accept_key(key);
  const std::string extension_list = join(chosen_extensions);
  std::vector<std::pair<std::string_view, std::string_view>> headers{
      {"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Sec-WebSocket-Accept", accept}};
  if (subprotocol_selected != nullptr) {
    headers.emplace_back("Sec-WebSocket-Protocol", subprotocol_selected);
  }
  if (!chosen_extensions.empty()) headers.emplace_back("Sec-WebSocket-Extensions", extension_list);
  set_headers(headers, response_headers, response_header_count);
  return apply(Event::begin_server_handshake);
}

Result ProtocolHandle::end_server_handshake() {
  if (role_ != Role::server || !handshake_done(state_) || server_handshake_ended_) {
    return Result::invalid_operation;
  }
  server_handshake_ended_ = true;
  release_headers();
  return Result::ok;
}

// ---------------------------------------------------------------------------------------------
// Send and Receive: queue work.

Result ProtocolHandle::send(BufferType type, const Buffer* buffer, void* context, bool rsv1) {
  if (rsv1 && (!allow_rsv1_ || !is_data_type(type) || send_message_open_)) {
    return Result::invalid_arg;
  }
  const Result r = send(type, buffer, context);
  if (r == Result::ok && rsv1) send_queue_.back().rsv1 = true;  // the op just queued
  return r;
}

Result ProtocolHandle::send(BufferType type, const Buffer* buffer, void* context) {
  const auto raw = static_cast<std::uint32_t>(type);
  if (raw < static_cast<std::uint32_t>(BufferType::utf8_message) ||
      raw > static_cast<std::uint32_t>(BufferType::unsolicited_pong)) {
    return Result::invalid_arg;  // includes custom frame header types (not supported)
  }
  if (!handshake_done(state_)) return Result::invalid_operation;
  if (aborted_ || send_stream_broken_) return Result::invalid_protocol_operation;

  SendOp op{type, Opcode::binary, true, nullptr, 0, 0, false, context, false};
  if (is_data_type(type)) {
    if (buffer == nullptr || (buffer->data.buffer == nullptr && buffer->data.length != 0)) {
      return Result::invalid_arg;
    }
    if (!may_send_data(state_)) return Result::invalid_protocol_operation;
    const bool text = is_text_type(type);
    if (send_message_open_ && send_message_text_ != text) {
      return Result::invalid_protocol_operation;
    }
    op.opcode = send_message_open_ ? Opcode::continuation : text ? Opcode::text : Opcode::binary;
    op.fin = !is_fragment_type(type);
    op.data = buffer->data.buffer;
    op.length = buffer->data.length;
    send_message_open_ = !op.fin;
    send_message_text_ = text;
  } else if (type == BufferType::close) {
    if (buffer != nullptr) {
      const auto& c = buffer->close_status;
      if (!is_valid_wire_close_code(c.status) || c.reason_length > kMaxCloseReasonLength ||
          (c.reason == nullptr) != (c.reason_length == 0) ||
          (!options_.disable_utf8_verification && !is_valid_utf8(c.reason, c.reason_length))) {
        return Result::invalid_arg;
      }
      op.close_has_body = true;
      op.close_status = c.status;
      op.data = c.reason;
      op.length = c.reason_length;
    }
    if (apply(Event::queue_close) != Result::ok) return Result::invalid_protocol_operation;
    op.opcode = Opcode::close;
  } else {  // ping_pong, unsolicited_pong: always an empty payload
    if (buffer != nullptr) return Result::invalid_arg;
    if (!may_send_control(state_)) return Result::invalid_protocol_operation;
    op.opcode = type == BufferType::ping_pong ? Opcode::ping : Opcode::pong;
  }
  try {
    send_queue_.push(op);
  } catch (const std::bad_alloc&) {
    return Result::out_of_memory;
  }
  return Result::ok;
}

Result ProtocolHandle::receive(const Buffer* buffer, void* context) {
  if (!handshake_done(state_)) return Result::invalid_operation;
  if (buffer != nullptr && (buffer->data.buffer == nullptr || buffer->data.length == 0)) {
    return Result::invalid_arg;
  }
  if (aborted_ || receive_done_ || receive_failure_ != Result::ok || !may_receive(state_)) {
    return Result::invalid_protocol_operation;
  }
  ReceiveOp op{buffer ? buffer->data.buffer : nullptr, buffer ? buffer->data.length : 0, context};
  try {
    receive_queue_.push(op);
  } catch (const std::bad_alloc&) {
    return Result::out_of_memory;
  }
  return Result::ok;
}

// ---------------------------------------------------------------------------------------------
// GetAction / CompleteAction.

Result ProtocolHandle::get_action(ActionQueue queue, Buffer* buffers,
                                  std::uint32_t* buffer_count, Action* action,
                                  BufferType* buffer_type, void** application_context,
                                  void** action_context) {
  if (buffers == nullptr || buffer_count == nullptr || action == nullptr ||
      buffer_type == nullptr || action_context == nullptr || *buffer_count == 0) {
    return Result::invalid_arg;
  }
  const auto q = static_cast<std::uint32_t>(queue);
  if (q == 0 || q > static_cast<std::uint32_t>(ActionQueue::all)) return Result::invalid_arg;
  if (!handshake_done(state_)) return Result::invalid_operation;

  const std::uint32_t capacity = *buffer_count;
  *buffer_count = 0;
  *action = Action::no_action;
  *action_context = nullptr;
  if ((q & static_cast<std::uint32_t>(ActionQueue::send)) != 0) {
    Result r = next_send_action(buffers, capacity, buffer_count, action, buffer_type,
                                application_context, action_context);
    if (r != Result::ok || *action != Action::no_action) return r;
  }
  if ((q & static_cast<std::uint32_t>(ActionQueue::receive)) != 0) {
    return next_receive_action(buffers, capacity, buffer_count, action, buffer_type,
                               application_context, action_context);
  }
  return Result::ok;
}

void ProtocolHandle::complete_action(void* action_context, std::uint32_t bytes_transferred) {
  const auto token = reinterpret_cast<std::uintptr_t>(action_context);
  if (token == 0) return;
  if (token == send_outstanding_.token) {
    complete_send(bytes_transferred);
  } else if (token == receive_outstanding_.token) {
    complete_receive(bytes_transferred);
  }
}

void ProtocolHandle::abort() {
  if (apply(Event::abort) != Result::ok) return;  // before the handshake, or dead: a no-op
  aborted_ = true;
  if (receive_outstanding_.action != Action::send_to_network) pong_pending_ = false;
}

// Send side ------------------------------------------------------------------------------------

Result ProtocolHandle::next_send_action(Buffer* buffers, std::uint32_t capacity,
                                        std::uint32_t* count, Action* action, BufferType* type,
                                        void** app_context, void** action_context) {
  if (send_outstanding_.action != Action::no_action) return Result::ok;
  if (send_queue_.empty()) {
    // Nothing of the app's to send, but a pong may wait behind a read in progress.
    if (pong_pending_ && !aborted_ && !wire_busy() &&
        receive_outstanding_.action != Action::no_action) {
      emit_pong(send_outstanding_, buffers, count, action, type, action_context);
    }
    return Result::ok;
  }
  SendOp& op = send_queue_.front();
  if (!send_complete_ready_ && (aborted_ || send_stream_broken_)) {
    // Nothing more reaches the network: the Send completes as it stands.
    send_in_frame_ = false;
    send_complete_ready_ = true;
  }
  if (send_complete_ready_) {
    send_outstanding_ = {Action::indicate_send_complete, next_token(Action::indicate_send_complete)};
    *action = Action::indicate_send_complete;
    *type = op.type;
    if (app_context != nullptr) *app_context = op.context;
    *action_context = reinterpret_cast<void*>(send_outstanding_.token);
    return Result::ok;
  }
  // The automatic pong (a receive-direction action) may be on the wire right now.
  if (receive_outstanding_.action == Action::send_to_network) return Result::ok;
  if (!send_in_frame_) {
    if (pong_pending_ && !aborted_) {
      // The pong goes before any new frame. The RECEIVE queue hands it out when that direction
      // is free; when it is busy (a read in progress, which may wait for the peer indefinitely),
      // this queue sends it instead, so it is neither stuck behind the read nor overtaken.
      if (receive_outstanding_.action == Action::no_action) return Result::ok;
      emit_pong(send_outstanding_, buffers, count, action, type, action_context);
      return Result::ok;
    }
    send_offset_ = 0;
    send_mask_key_ = (role_ == Role::client && !options_.disable_masking) ? random_mask_key()
                                                                          : MaskKey{};
  }
  build_send_frame(capacity, buffers, count);
  *action = Action::send_to_network;
  *type = op.type;
  if (app_context != nullptr) *app_context = op.context;
  *action_context = reinterpret_cast<void*>(send_outstanding_.token);
  return Result::ok;
}

void ProtocolHandle::build_send_frame(std::uint32_t capacity, Buffer* buffers,
                                      std::uint32_t* count) {
  const SendOp& op = send_queue_.front();
  const bool masked = role_ == Role::client;  // DISABLE_MASKING keeps the bit, with key 0
  const bool first = !send_in_frame_;
  // Filled in place: this is the per-frame hot path.
  Outstanding& out = send_outstanding_;
  out.action = Action::send_to_network;
  out.token = next_token(Action::send_to_network);
  out.first_of_frame = first;

  if (is_control(op.opcode)) {
    // Header and payload contiguous in handle memory: one buffer.
    std::uint8_t* payload = control_frame_.data() + kControlPayloadOffset;
    std::uint32_t length = 0;
    if (op.close_has_body) {
      payload[0] = static_cast<std::uint8_t>(op.close_status >> 8);
      payload[1] = static_cast<std::uint8_t>(op.close_status);
      if (op.length != 0) std::memcpy(payload + 2, op.data, op.length);
      length = 2 + op.length;
    }
    buffers[0] = seal_control_frame(payload, length, op.opcode, masked, send_mask_key_);
    *count = 1;
    out.expected_bytes = buffers[0].data.length;
    out.payload_bytes = op.length;  // the whole Send is in this one action
  } else if ((role_ == Role::server || options_.disable_masking) && capacity >= 2) {
    // Zero-copy: the header from handle memory, the payload straight from the app's buffer.
    const std::size_t header_length = write_frame_header(
        data_header_.data(), op.fin, op.opcode, masked, send_mask_key_, op.length, op.rsv1);
    buffers[0].data = {data_header_.data(), static_cast<std::uint32_t>(header_length)};
    *count = 1;
    if (op.length != 0) {
      buffers[1].data = {const_cast<std::uint8_t*>(op.data), op.length};
      *count = 2;
    }
    out.expected_bytes = static_cast<std::uint32_t>(header_length) + op.length;
    out.payload_bytes = op.length;
  } else {
    // Copy (and mask) through the send area: header (first action only) + as much payload as
    // fits; the rest of the frame follows in later actions.
    std::size_t used = 0;
    if (first) {
      used = write_frame_header(send_area_, op.fin, op.opcode, masked, send_mask_key_, op.length,
                                op.rsv1);
    }
    const std::uint64_t remaining = op.length - send_offset_;
    const auto chunk =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(remaining, options_.send_buffer_size - used));
    if (chunk != 0) {
      std::memcpy(send_area_ + used, op.data + send_offset_, chunk);
      if (masked) apply_mask(send_area_ + used, chunk, send_mask_key_, send_offset_ & 3);
    }
    buffers[0].data = {send_area_, static_cast<std::uint32_t>(used + chunk)};
    *count = 1;
    out.expected_bytes = static_cast<std::uint32_t>(used + chunk);
    out.payload_bytes = chunk;
  }
  send_in_frame_ = true;
}

void ProtocolHandle::complete_send(std::uint32_t bytes) {
  const Outstanding done = send_outstanding_;
  send_outstanding_ = {};
  if (done.pong) {  // the automatic pong, sent from this queue
    pong_pending_ = false;
    if (bytes != done.expected_bytes && bytes != 0) send_stream_broken_ = true;
    return;
  }
  if (done.action == Action::indicate_send_complete) {
    send_queue_.pop();
    send_complete_ready_ = false;
    return;
  }
  // SEND_TO_NETWORK.
  const SendOp& op = send_queue_.front();
  if (bytes == done.expected_bytes) {
    send_offset_ += done.payload_bytes;
    if (is_control(op.opcode) || send_offset_ >= op.length) {
      send_in_frame_ = false;
      send_complete_ready_ = true;
    }
    return;
  }
  // Cancelled. Zero bytes of a frame's first action: nothing reached the wire, the stream is
  // intact. Anything else leaves a partial frame on the wire: the stream is broken.
  if (!(bytes == 0 && done.first_of_frame)) send_stream_broken_ = true;
  send_in_frame_ = false;
  send_complete_ready_ = true;
}

// Receive side ---------------------------------------------------------------------------------

void ProtocolHandle::emit_pong(Outstanding& slot, Buffer* buffers, std::uint32_t* count,
                               Action* action, BufferType* type, void** action_context) {
  const bool masked = role_ == Role::client;
  const MaskKey key =
      (masked && !options_.disable_masking) ? random_mask_key() : MaskKey{};
  buffers[0] = seal_control_frame(pong_frame_.data() + kControlPayloadOffset, pong_length_,
                                  Opcode::pong, masked, key);
  *count = 1;
  *action = Action::send_to_network;
  *type = BufferType::ping_pong;
  slot = {Action::send_to_network, next_token(Action::send_to_network), buffers[0].data.length,
          true, pong_length_, true};
  *action_context = reinterpret_cast<void*>(slot.token);
}

Result ProtocolHandle::next_receive_action(Buffer* buffers, std::uint32_t capacity,
                                           std::uint32_t* count, Action* action,
                                           BufferType* type, void** app_context,
                                           void** action_context) {
  (void)capacity;  // every receive-side action needs exactly one buffer
  if (receive_outstanding_.action != Action::no_action) return Result::ok;
  if (receive_failure_ != Result::ok) return receive_failure_;
  // The automatic pong, when the wire is free (no frame of ours is half written).
  if (pong_pending_ && !wire_busy()) {
    emit_pong(receive_outstanding_, buffers, count, action, type, action_context);
    return Result::ok;
  }
  if (receive_queue_.empty()) return Result::ok;
  ReceiveOp& op = receive_queue_.front();
  if (!indication_.ready) {
    if (aborted_) {
      indicate_close(static_cast<std::uint16_t>(CloseStatus::aborted), nullptr, 0, 0);
    } else if (receive_done_) {
      indicate_close(final_close_status_, final_close_reason_.data(), final_close_reason_length_,
                     0);
    } else if (Result r = parse_received(); r != Result::ok) {
      return r;
    }
  }
  if (indication_.ready) {
    *action = Action::indicate_receive_complete;
    *type = indication_.type;
    if (indication_.type == BufferType::close) {
      std::uint8_t* reason = indication_.length != 0 ? indication_.data : nullptr;
      std::uint32_t length = indication_.length;
      if (op.buffer != nullptr && length != 0) {
        length = std::min(length, op.length);
        std::memcpy(op.buffer, reason, length);
        reason = op.buffer;
      }
      buffers[0].close_status = {reason, length, indication_.close_status};
    } else if (op.buffer != nullptr) {
      const std::uint32_t length = std::min(indication_.length, op.length);
      if (length != 0) std::memcpy(op.buffer, indication_.data, length);
      buffers[0].data = {op.buffer, length};
    } else {
      buffers[0].data = {indication_.data, indication_.length};
    }
    *count = 1;
    if (app_context != nullptr) *app_context = op.context;
    receive_outstanding_ = {Action::indicate_receive_complete,
                            next_token(Action::indicate_receive_complete)};
    *action_context = reinterpret_cast<void*>(receive_outstanding_.token);
    return Result::ok;
  }
  // A ping just parsed: its pong goes out before we wait for more bytes.
  if (pong_pending_ && !wire_busy()) {
    emit_pong(receive_outstanding_, buffers, count, action, type, action_context);
    return Result::ok;
  }
  // Need more bytes from the network.
  compact_receive_area();
  assert(write_pos_ < options_.receive_buffer_size);  // a full area always holds a chunk
  buffers[0].data = {receive_area_ + write_pos_, options_.receive_buffer_size - write_pos_};
  *count = 1;
  *action = Action::receive_from_network;
  *type = receive_message_text_ ? BufferType::utf8_fragment : BufferType::binary_fragment;
  if (app_context != nullptr) *app_context = op.context;
  receive_outstanding_ = {Action::receive_from_network, next_token(Action::receive_from_network),
                          buffers[0].data.length};
  *action_context = reinterpret_cast<void*>(receive_outstanding_.token);
  return Result::ok;
}

void ProtocolHandle::complete_receive(std::uint32_t bytes) {
  const Outstanding done = receive_outstanding_;
  receive_outstanding_ = {};
  switch (done.action) {
    case Action::send_to_network:  // the automatic pong, sent from this queue
      pong_pending_ = false;
      if (bytes != done.expected_bytes && bytes != 0) send_stream_broken_ = true;
      return;
    case Action::receive_from_network:
      if (bytes == 0 || bytes > done.expected_bytes) {
        // EOF (or an impossible count): the connection is gone without a close frame.
        receive_done_ = true;
        final_close_status_ = static_cast<std::uint16_t>(CloseStatus::aborted);
        final_close_reason_length_ = 0;
        apply(Event::receive_close);
        return;
      }
      write_pos_ += bytes;
      return;
    case Action::indicate_receive_complete:
      read_pos_ += indication_.consumed;
      indication_ = {};
      receive_queue_.pop();
      return;
    default:
      return;
  }
}

void ProtocolHandle::compact_receive_area() noexcept {
  if (read_pos_ == 0) return;
  const std::uint32_t unread = write_pos_ - read_pos_;
  if (unread != 0) std::memmove(receive_area_, receive_area_ + read_pos_, unread);
  read_pos_ = 0;
  write_pos_ = unread;
}

Result ProtocolHandle::fail_receive(Result result, std::uint16_t close_code) {
  receive_failure_ = result;
  receive_failure_close_code_ = close_code;
  return result;
}

void ProtocolHandle::indicate_close(std::uint16_t status, const std::uint8_t* reason,
                                    std::uint32_t length, std::uint32_t consumed) {
  indication_.ready = true;
  indication_.type = BufferType::close;
  indication_.close_status = status;
  indication_.data = const_cast<std::uint8_t*>(reason);
  indication_.length = length;
  indication_.consumed = consumed;
}

Result ProtocolHandle::parse_received() {
  const ReceiveOp& op = receive_queue_.front();
  for (;;) {
    std::uint8_t* p = receive_area_ + read_pos_;
    const std::uint32_t available = write_pos_ - read_pos_;

    if (!in_frame_) {
      if (available < 2) return Result::ok;  // not even a frame header's first two bytes
      const ParseResult parsed = parse_frame_header(p, available, allow_rsv1_ ? kRsv1 : 0);
      if (parsed.status == ParseStatus::need_more) return Result::ok;
      if (parsed.status == ParseStatus::error) return fail_receive(parsed.error, parsed.close_code);
      const FrameHeader& h = parsed.header;
      if (h.rsv != 0 && (h.opcode == Opcode::continuation || is_control(h.opcode))) {
        return fail_receive(Result::invalid_protocol_format, 1002);  // RSV1: first frame only
      }
      if (role_ == Role::client && h.masked) {
        return fail_receive(Result::invalid_protocol_format, 1002);  // servers never mask
      }
      if (role_ == Role::server && !h.masked && !options_.disable_masking) {
        return fail_receive(Result::invalid_protocol_format, 1002);  // clients always mask
      }
      if (h.opcode == Opcode::continuation) {
        if (!receive_message_open_) return fail_receive(Result::invalid_protocol_operation, 1002);
      } else if (!is_control(h.opcode)) {
        if (receive_message_open_) return fail_receive(Result::invalid_protocol_operation, 1002);
        receive_message_open_ = true;
        receive_message_text_ = h.opcode == Opcode::text;
        receive_message_rsv1_ = h.rsv != 0;
        utf8_.reset();
      }
      read_pos_ += h.header_length;
      frame_ = h;
      frame_remaining_ = h.payload_length;
      frame_mask_offset_ = 0;
      in_frame_ = true;
      continue;
    }

    if (is_control(frame_.opcode)) {
      if (available < frame_remaining_) return Result::ok;  // a control frame is taken whole
      const auto length = static_cast<std::uint32_t>(frame_remaining_);
      if (frame_.masked) apply_mask(p, length, frame_.mask_key);
      in_frame_ = false;
      if (frame_.opcode == Opcode::ping) {
        std::memcpy(pong_frame_.data() + kControlPayloadOffset, p, length);
        pong_length_ = static_cast<std::uint8_t>(length);
        pong_pending_ = true;
        read_pos_ += length;
        continue;
      }
      if (frame_.opcode == Opcode::pong) {
        indication_ = {true, BufferType::ping_pong, p, length, 0, length};
        return Result::ok;
      }
      // Close.
      if (length == 1) return fail_receive(Result::invalid_protocol_format, 1002);
      std::uint16_t status = static_cast<std::uint16_t>(CloseStatus::empty);
      if (length >= 2) {
        status = static_cast<std::uint16_t>((p[0] << 8) | p[1]);
        if (!is_valid_wire_close_code(status)) {
          return fail_receive(Result::invalid_protocol_format, 1002);
        }
      }
      const std::uint32_t reason_length = length >= 2 ? length - 2 : 0;
      if (!options_.disable_utf8_verification && !is_valid_utf8(p + 2, reason_length)) {
        return fail_receive(Result::invalid_protocol_format, 1007);
      }
      final_close_status_ = status;
      final_close_reason_length_ = static_cast<std::uint8_t>(reason_length);
      if (reason_length != 0) std::memcpy(final_close_reason_.data(), p + 2, reason_length);
      receive_done_ = true;
      apply(Event::receive_close);
      indicate_close(status, final_close_reason_.data(), reason_length, length);
      return Result::ok;
    }

    // Data frame.
    // An RSV1 message's bytes are the extension's encoding: it checks the text it decodes.
    const bool verify = receive_message_text_ && !options_.disable_utf8_verification &&
                        !receive_message_rsv1_;
    if (frame_remaining_ == 0) {
      in_frame_ = false;
      if (!frame_.fin) continue;  // an empty non-final frame carries nothing: skip it
      if (verify && !utf8_.feed(p, 0, true)) {
        return fail_receive(Result::invalid_protocol_format, 1007);
      }
      receive_message_open_ = false;
      indication_ = {true,
                     receive_message_text_ ? BufferType::utf8_message : BufferType::binary_message,
                     p, 0, 0, 0};
      return Result::ok;
    }
    const std::uint64_t capacity =
        op.buffer != nullptr ? std::min(op.length, options_.receive_buffer_size)
                             : options_.receive_buffer_size;
    const std::uint64_t want = std::min(frame_remaining_, capacity);
    if (available < want) return Result::ok;
    const auto chunk = static_cast<std::uint32_t>(want);
    if (frame_.masked) {
      frame_mask_offset_ = apply_mask(p, chunk, frame_.mask_key, frame_mask_offset_);
    }
    frame_remaining_ -= chunk;
    const bool last = frame_.fin && frame_remaining_ == 0;
    if (verify && !utf8_.feed(p, chunk, last)) {
      return fail_receive(Result::invalid_protocol_format, 1007);
    }
    if (frame_remaining_ == 0) in_frame_ = false;
    if (last) receive_message_open_ = false;
    BufferType type;
    if (receive_message_text_) {
      type = last ? BufferType::utf8_message : BufferType::utf8_fragment;
    } else {
      type = last ? BufferType::binary_message : BufferType::binary_fragment;
    }
    indication_ = {true, type, p, chunk, 0, chunk};
    return Result::ok;
  }
}

}  // namespace wsgate::ws
