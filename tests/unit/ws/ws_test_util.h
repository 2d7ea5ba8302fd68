// Shared helpers for the wsgate::ws unit tests: owned header lists, property builders, a real
// client/server handshake, raw frame builders and an in-memory pump that drives two handles
// against each other (with optional fault injection at the N-th I/O completion).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "service/ws/error.h"
#include "service/ws/frame.h"
#include "service/ws/handshake.h"
#include "service/ws/mask.h"
#include "service/ws/protocol_handle.h"
#include "service/ws/state.h"
#include "service/ws/types.h"

namespace wsgate::ws {

// Readable failure messages.
inline std::ostream& operator<<(std::ostream& os, Result r) { return os << symbol(r); }
inline std::ostream& operator<<(std::ostream& os, State s) { return os << to_string(s); }
inline std::ostream& operator<<(std::ostream& os, Action a) {
  return os << "Action(" << static_cast<std::uint32_t>(a) << ")";
}
inline std::ostream& operator<<(std::ostream& os, BufferType t) {
  return os << "BufferType(0x" << std::hex << static_cast<std::uint32_t>(t) << std::dec << ")";
}

namespace test {

using Bytes = std::vector<std::uint8_t>;

inline Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }
inline std::string string_of(const Bytes& b) { return std::string(b.begin(), b.end()); }

// A header list that owns its strings and hands out HttpHeader views.
class Headers {
 public:
  Headers() = default;
  Headers(std::initializer_list<std::pair<std::string, std::string>> l) : items_(l) {}
  static Headers copy_of(const HttpHeader* h, std::uint32_t n) {
    Headers out;
    for (std::uint32_t i = 0; i < n; ++i) out.add(std::string(name_of(h[i])), std::string(value_of(h[i])));
    return out;
  }
  void add(std::string n, std::string v) { items_.emplace_back(std::move(n), std::move(v)); }
  void remove(std::string_view n) {
    std::erase_if(items_, [&](const auto& p) { return iequals(p.first, n); });
  }
  void set(std::string_view n, std::string v) {
    remove(n);
    add(std::string(n), std::move(v));
  }
  const HttpHeader* data() {
    view_.clear();
    for (auto& [n, v] : items_) {
      view_.push_back(HttpHeader{n.data(), static_cast<std::uint32_t>(n.size()), v.data(),
                                 static_cast<std::uint32_t>(v.size())});
    }
    return view_.empty() ? nullptr : view_.data();
  }
  std::uint32_t size() const { return static_cast<std::uint32_t>(items_.size()); }
  std::optional<std::string> get(std::string_view n) const {
    for (const auto& [k, v] : items_) {
      if (iequals(k, n)) return v;
    }
    return std::nullopt;
  }
  std::size_t count(std::string_view n) const {
    return static_cast<std::size_t>(
        std::count_if(items_.begin(), items_.end(), [&](const auto& p) { return iequals(p.first, n); }));
  }
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
  std::vector<HttpHeader> view_;
};

// Builds a property array whose values stay alive with the builder.
class Props {
 public:
  Props& ulong_value(PropertyType t, std::uint32_t v, std::uint32_t size = 4) {
    values_.push_back(v);
    list_.push_back(Property{t, &values_.back(), size});
    return *this;
  }
  Props& rbs(std::uint32_t v) { return ulong_value(PropertyType::receive_buffer_size, v); }
  Props& sbs(std::uint32_t v) { return ulong_value(PropertyType::send_buffer_size, v); }
  Props& disable_masking(std::uint32_t v = 1) { return ulong_value(PropertyType::disable_masking, v); }
  Props& disable_utf8(std::uint32_t v = 1) {
    return ulong_value(PropertyType::disable_utf8_verification, v);
  }
  // .NET style: pvValue points at a PVOID holding the address; value_size is the buffer size.
  Props& allocated(void* address, std::uint32_t size) {
    pointers_.push_back(address);
    list_.push_back(Property{PropertyType::allocated_buffer, &pointers_.back(), size});
    return *this;
  }
  Props& raw(Property p) {
    list_.push_back(p);
    return *this;
  }
  const Property* data() const { return list_.empty() ? nullptr : list_.data(); }
  std::uint32_t size() const { return static_cast<std::uint32_t>(list_.size()); }

 private:
  std::deque<std::uint32_t> values_;
  std::deque<void*> pointers_;
  std::vector<Property> list_;
};

inline std::unique_ptr<ProtocolHandle> make_handle(Role role, const Props& p = Props()) {
  std::unique_ptr<ProtocolHandle> h;
  Result r = ProtocolHandle::create(role, p.data(), p.size(), &h);
  EXPECT_EQ(r, Result::ok);
  return h;
}

// Does a real handshake between `c` (client) and `s` (server): the client's additional headers
// merged into its initial headers (which carry Host) are the server's request headers, the
// server's response headers are the client's input.
inline void do_handshake(ProtocolHandle& c, ProtocolHandle& s) {
  Headers initial{{"Host", "example.com:8080"}, {"User-Agent", "wsgate-test"}};
  HttpHeader* additional = nullptr;
  std::uint32_t additional_count = 0;
  ASSERT_EQ(c.begin_client_handshake(nullptr, 0, nullptr, 0, initial.data(), initial.size(),
                                     &additional, &additional_count),
            Result::ok);
  auto merged = merge_request_headers(initial.data(), initial.size(), additional, additional_count);
  Headers request;
  for (auto& [n, v] : merged) request.add(n, v);
  HttpHeader* response = nullptr;
  std::uint32_t response_count = 0;
  ASSERT_EQ(s.begin_server_handshake(nullptr, nullptr, 0, request.data(), request.size(), &response,
                                     &response_count),
            Result::ok);
  Headers resp = Headers::copy_of(response, response_count);
  ASSERT_EQ(c.end_client_handshake(resp.data(), resp.size(), nullptr, nullptr, nullptr), Result::ok);
  ASSERT_EQ(c.state(), State::open);
  ASSERT_EQ(s.state(), State::open);
}

// An open handle of `role` (a peer of the other role is used for the handshake and discarded).
inline std::unique_ptr<ProtocolHandle> open_handle(Role role, const Props& p = Props()) {
  auto mine = make_handle(role, p);
  auto other = make_handle(role == Role::client ? Role::server : Role::client);
  if (!mine || !other) return nullptr;
  if (role == Role::client) {
    do_handshake(*mine, *other);
  } else {
    do_handshake(*other, *mine);
  }
  return mine;
}

// Raw frame bytes. `mask` set: masked with `key`. `len_override` lets a test lie about nothing
// (the length is always the payload's, minimally encoded).
inline Bytes frame(bool fin, std::uint8_t opcode, const Bytes& payload, bool mask = false,
                   MaskKey key = {0x37, 0xfa, 0x21, 0x3d}, std::uint8_t rsv = 0) {
  std::array<std::uint8_t, kMaxFrameHeaderLength> h{};
  std::size_t n = write_frame_header(h.data(), fin, static_cast<Opcode>(opcode), mask, key,
                                     payload.size());
  h[0] = static_cast<std::uint8_t>(h[0] | (rsv << 4));
  // write_frame_header writes the opcode's low nibble; keep reserved opcodes exact.
  h[0] = static_cast<std::uint8_t>((h[0] & 0xF0) | (opcode & 0x0F));
  Bytes out(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(n));
  Bytes p = payload;
  if (mask) apply_mask(p.data(), p.size(), key);
  out.insert(out.end(), p.begin(), p.end());
  return out;
}
inline Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
inline Bytes close_payload(std::uint16_t code, std::string_view reason = {}) {
  Bytes b{static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code & 0xFF)};
  b.insert(b.end(), reason.begin(), reason.end());
  return b;
}

// Parses one complete frame (as produced by a handle) and returns its unmasked payload.
struct ParsedFrame {
  FrameHeader header;
  Bytes payload;
};
inline std::optional<ParsedFrame> parse_whole_frame(const Bytes& wire, std::size_t* consumed = nullptr) {
  ParseResult r = parse_frame_header(wire.data(), wire.size());
  if (r.status != ParseStatus::complete) return std::nullopt;
  std::size_t total = r.header.header_length + r.header.payload_length;
  if (wire.size() < total) return std::nullopt;
  ParsedFrame f{r.header, Bytes(wire.begin() + r.header.header_length,
                                wire.begin() + static_cast<std::ptrdiff_t>(total))};
  if (f.header.masked) apply_mask(f.payload.data(), f.payload.size(), f.header.mask_key);
  if (consumed) *consumed = total;
  return f;
}
inline std::vector<ParsedFrame> parse_frames(const Bytes& wire) {
  std::vector<ParsedFrame> out;
  std::size_t pos = 0;
  while (pos < wire.size()) {
    Bytes rest(wire.begin() + static_cast<std::ptrdiff_t>(pos), wire.end());
    std::size_t used = 0;
    auto f = parse_whole_frame(rest, &used);
    if (!f) {
      ADD_FAILURE() << "unparseable frame at offset " << pos;
      break;
    }
    out.push_back(std::move(*f));
    pos += used;
  }
  return out;
}

// A valid UTF-8 payload of exactly `n` bytes with 2-, 3- and 4-byte sequences.
inline Bytes utf8_payload(std::size_t n) {
  static const std::string kPattern = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // a é € 😀
  Bytes out;
  out.reserve(n);
  while (n - out.size() >= kPattern.size()) out.insert(out.end(), kPattern.begin(), kPattern.end());
  while (out.size() < n) out.push_back('x');
  return out;
}
inline Bytes binary_payload(std::size_t n, std::uint8_t seed = 7) {
  Bytes out(n);
  std::uint32_t x = seed;
  for (auto& b : out) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::uint8_t>(x >> 16);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// In-memory pump.

enum class Fault { none, partial, zero, abort };

struct Message {
  BufferType type = BufferType::binary_message;
  Bytes data;
  std::size_t chunks = 0;
};

struct CloseSeen {
  std::uint16_t status = 0;
  std::string reason;
};

class Endpoint {
 public:
  std::unique_ptr<ProtocolHandle> h;
  std::deque<std::uint8_t> inbound;  // bytes the peer wrote, not yet read
  bool eof = false;                  // once inbound is empty, complete reads with 0
  std::uint32_t capacity = 2;        // GetAction buffer capacity
  std::uint32_t receive_buffer_len = 0;  // 0: zero-copy (NULL buffer)
  bool auto_receive = true;          // post a new Receive after each non-close indication
  bool auto_close_reply = false;     // answer a received close (not 1006) with a close
  bool split_queues = false;         // use SEND then RECEIVE instead of ALL

  std::vector<Message> messages;
  Message partial;
  bool in_message = false;
  std::vector<Bytes> pongs;  // PING_PONG indications
  std::vector<CloseSeen> closes;
  std::vector<void*> send_completions;
  std::vector<void*> sends_accepted;
  std::vector<Result> errors;
  std::vector<Bytes> writes;  // each SEND_TO_NETWORK's bytes, as handed out
  std::vector<BufferType> write_types;
  std::vector<std::uint32_t> write_buffer_counts;
  Bytes wire_out;  // everything actually written
  std::vector<std::string> failures;  // consistency problems found by the pump
  std::size_t indications = 0;
  std::optional<Result> close_reply_result;  // auto_close_reply's Send result
  int rereceive_refused = 0;                 // auto_receive's Receive refused

  bool read_pending = false;
  std::uint8_t* read_buf = nullptr;
  std::uint32_t read_len = 0;
  void* read_ctx = nullptr;

  explicit Endpoint(std::unique_ptr<ProtocolHandle> handle) : h(std::move(handle)) {}

  void* new_context() { return reinterpret_cast<void*>(next_ctx_++); }

  Result send_data(BufferType t, const Bytes& payload) {
    payloads_.push_back(payload);
    Buffer b{};
    b.data.buffer = payloads_.back().empty() ? nullptr : payloads_.back().data();
    b.data.length = static_cast<std::uint32_t>(payloads_.back().size());
    void* ctx = new_context();
    Result r = h->send(t, &b, ctx);
    if (r == Result::ok) sends_accepted.push_back(ctx);
    return r;
  }
  // status 0: NULL buffer (empty close frame).
  Result send_close(std::uint16_t status = 0, std::string_view reason = {}) {
    void* ctx = new_context();
    Result r;
    if (status == 0) {
      r = h->send(BufferType::close, nullptr, ctx);
    } else {
      payloads_.push_back(Bytes(reason.begin(), reason.end()));
      Buffer b{};
      b.close_status.reason = payloads_.back().empty() ? nullptr : payloads_.back().data();
      b.close_status.reason_length = static_cast<std::uint32_t>(reason.size());
      b.close_status.status = status;
      r = h->send(BufferType::close, &b, ctx);
    }
    if (r == Result::ok) sends_accepted.push_back(ctx);
    return r;
  }
  Result send_control(BufferType t) {
    void* ctx = new_context();
    Result r = h->send(t, nullptr, ctx);
    if (r == Result::ok) sends_accepted.push_back(ctx);
    return r;
  }
  Result post_receive() {
    if (receive_buffer_len == 0) return h->receive(nullptr, new_context());
    rbufs_.emplace_back(receive_buffer_len);
    if (rbufs_.size() > 4) rbufs_.pop_front();  // only the newest few can still be in use
    Buffer b{};
    b.data.buffer = rbufs_.back().data();
    b.data.length = receive_buffer_len;
    return h->receive(&b, new_context());
  }

  const std::uint8_t* last_indicated_pointer = nullptr;

 private:
  std::list<Bytes> payloads_;
  std::deque<Bytes> rbufs_;
  std::uintptr_t next_ctx_ = 0x1000;
};

class Link {
 public:
  Endpoint& a;
  Endpoint& b;
  int steps = 0;  // I/O completions (SEND_TO_NETWORK or RECEIVE_FROM_NETWORK with data)
  int fault_step = -1;
  Fault fault = Fault::none;
  Endpoint* faulted = nullptr;  // which endpoint the fault hit
  std::size_t closes_before_fault = 0;
  State state_before_fault = State::created;

  Link(Endpoint& x, Endpoint& y) : a(x), b(y) {}

  // Pumps both endpoints until neither makes progress.
  void pump(int max_rounds = 100000000) {
    for (int i = 0; i < max_rounds; ++i) {
      bool p1 = service(a, b);
      bool p2 = service(b, a);
      if (!p1 && !p2) return;
    }
    ADD_FAILURE() << "pump did not settle";
  }

  bool service(Endpoint& e, Endpoint& peer) {
    bool progressed = false;
    for (int guard = 0; guard < 100000000; ++guard) {
      if (e.read_pending && (!e.inbound.empty() || e.eof)) {
        complete_read(e);
        progressed = true;
        continue;
      }
      Action action = Action::no_action;
      bool got = false;
      if (e.split_queues) {
        got = one_action(e, peer, ActionQueue::send, &action);
        if (!got || action == Action::no_action) got = one_action(e, peer, ActionQueue::receive, &action);
      } else {
        got = one_action(e, peer, ActionQueue::all, &action);
      }
      if (!got || action == Action::no_action) break;
      progressed = true;
    }
    return progressed;
  }

 private:
  Fault take_fault(Endpoint& e) {
    int step = steps++;
    if (step == fault_step) {
      faulted = &e;
      closes_before_fault = e.closes.size();
      state_before_fault = e.h->state();
      return fault;
    }
    return Fault::none;
  }

  void complete_read(Endpoint& e) {
    std::uint32_t n = static_cast<std::uint32_t>(std::min<std::size_t>(e.read_len, e.inbound.size()));
    if (n > 0) {
      switch (take_fault(e)) {
        case Fault::partial: n = std::max<std::uint32_t>(1, n / 2); break;
        case Fault::zero: n = 0; break;
        case Fault::abort: e.h->abort(); break;
        case Fault::none: break;
      }
    }
    for (std::uint32_t i = 0; i < n; ++i) {
      e.read_buf[i] = e.inbound.front();
      e.inbound.pop_front();
    }
    e.read_pending = false;
    e.h->complete_action(e.read_ctx, n);
  }

  // Returns false when GetAction failed.
  bool one_action(Endpoint& e, Endpoint& peer, ActionQueue q, Action* out_action) {
    Buffer bufs[4]{};
    std::uint32_t n = e.capacity;
    Action action = Action::no_action;
    BufferType type = BufferType::binary_message;
    void* app = nullptr;
    void* act = nullptr;
    Result r = e.h->get_action(q, bufs, &n, &action, &type, &app, &act);
    *out_action = action;
    if (r != Result::ok) {
      if (e.errors.empty() || e.errors.back() != r) e.errors.push_back(r);
      return false;
    }
    switch (action) {
      case Action::no_action:
        break;
      case Action::send_to_network: {
        if (n < 1 || n > e.capacity) e.failures.push_back("SEND_TO_NETWORK buffer count out of range");
        Bytes out;
        for (std::uint32_t i = 0; i < n && i < 4; ++i) {
          out.insert(out.end(), bufs[i].data.buffer, bufs[i].data.buffer + bufs[i].data.length);
        }
        e.writes.push_back(out);
        e.write_types.push_back(type);
        e.write_buffer_counts.push_back(n);
        std::uint32_t done = static_cast<std::uint32_t>(out.size());
        switch (take_fault(e)) {
          case Fault::partial: done = done > 1 ? done - 1 : 0; break;
          case Fault::zero: done = 0; break;
          case Fault::abort: e.h->abort(); break;
          case Fault::none: break;
        }
        peer.inbound.insert(peer.inbound.end(), out.begin(), out.begin() + done);
        e.wire_out.insert(e.wire_out.end(), out.begin(), out.begin() + done);
        e.h->complete_action(act, done);
        break;
      }
      case Action::indicate_send_complete:
        e.send_completions.push_back(app);
        e.h->complete_action(act, 0);
        break;
      case Action::receive_from_network:
        if (e.read_pending) {
          e.failures.push_back("second RECEIVE_FROM_NETWORK while one is outstanding");
          return false;
        }
        if (n != 1 || bufs[0].data.length == 0 || bufs[0].data.buffer == nullptr) {
          e.failures.push_back("bad RECEIVE_FROM_NETWORK buffer");
        }
        e.read_pending = true;
        e.read_buf = bufs[0].data.buffer;
        e.read_len = bufs[0].data.length;
        e.read_ctx = act;
        break;
      case Action::indicate_receive_complete:
        indicate(e, type, bufs[0], act);
        break;
    }
    return true;
  }

  void indicate(Endpoint& e, BufferType type, const Buffer& buf, void* act) {
    ++e.indications;
    bool post = e.auto_receive;
    if (type == BufferType::close) {
      CloseSeen c;
      c.status = buf.close_status.status;
      if (buf.close_status.reason_length > 0 && buf.close_status.reason != nullptr) {
        c.reason.assign(reinterpret_cast<const char*>(buf.close_status.reason),
                        buf.close_status.reason_length);
      }
      e.closes.push_back(c);
      post = false;
      e.h->complete_action(act, 0);
      if (e.auto_close_reply && c.status != 1006 && e.h->state() == State::close_received) {
        e.close_reply_result = e.send_close(1000, "bye");
      }
      return;
    }
    if (type == BufferType::ping_pong || type == BufferType::unsolicited_pong) {
      e.pongs.emplace_back(buf.data.buffer, buf.data.buffer + buf.data.length);
    } else if (is_data_type(type)) {
      std::uint32_t cap = e.receive_buffer_len ? e.receive_buffer_len : e.h->options().receive_buffer_size;
      if (buf.data.length > cap) e.failures.push_back("chunk larger than its capacity");
      if (e.in_message && is_text_type(type) != is_text_type(e.partial.type)) {
        e.failures.push_back("chunk type changed inside a message");
      }
      e.last_indicated_pointer = buf.data.buffer;
      if (buf.data.length > 0) {
        e.partial.data.insert(e.partial.data.end(), buf.data.buffer, buf.data.buffer + buf.data.length);
      }
      ++e.partial.chunks;
      e.partial.type = type;
      if (is_fragment_type(type)) {
        e.in_message = true;
      } else {
        e.messages.push_back(std::move(e.partial));
        e.partial = Message{};
        e.in_message = false;
      }
    } else {
      e.failures.push_back("unknown indicated buffer type");
    }
    e.h->complete_action(act, 0);
    if (post) {
      Result r = e.post_receive();
      if (r != Result::ok) ++e.rereceive_refused;
    }
  }
};

// A client and a server after a real handshake.
struct Pair {
  Endpoint client;
  Endpoint server;
  Link link;
  Pair(const Props& cp = Props(), const Props& sp = Props())
      : client(make_handle(Role::client, cp)), server(make_handle(Role::server, sp)), link(client, server) {
    do_handshake(*client.h, *server.h);
  }
  void pump() { link.pump(); }
};

}  // namespace test
}  // namespace wsgate::ws
