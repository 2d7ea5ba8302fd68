// engine_bench: the sans-I/O WebSocket engine (service/ws) against Boost.Beast 1.74 and simdjson,
// in the same binary and the same run. Cases and targets: shared/bench/PROTOCOL.md; how to run and
// the measured figures: bench/README.md.
//
// Naming: BM_<case>/<implementation>[/<argument>]. Every case sets items (frames or messages) or
// bytes processed, so the table shows ns per frame or bytes/second directly; the frame cases also
// report `allocs_per_msg`, counted by the global operator new below.
//
// Nothing here asserts on time: a slow run prints slow figures, it never fails.

#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/flat_static_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/detail/frame.hpp>
#include <boost/beast/websocket/detail/mask.hpp>
#include <boost/beast/websocket/detail/utf8_checker.hpp>

#include "service/ws/error.h"
#include "service/ws/frame.h"
#include "service/ws/mask.h"
#include "service/ws/protocol_handle.h"
#include "service/ws/types.h"
#include "service/ws/utf8.h"

// ---------------------------------------------------------------------------------------------
// Heap allocation counter: every global operator new in this process increments it.
// Relaxed atomics: the benchmarks are single-threaded; the counter only has to be exact.

namespace {
std::atomic<std::uint64_t> g_allocations{0};

void* counted_alloc(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* counted_alloc_nothrow(std::size_t size) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void* counted_aligned_alloc(std::size_t size, std::align_val_t align) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = nullptr;
  std::size_t a = std::max(static_cast<std::size_t>(align), sizeof(void*));
  if (posix_memalign(&p, a, size == 0 ? 1 : size) != 0) throw std::bad_alloc();
  return p;
}
std::uint64_t allocations() { return g_allocations.load(std::memory_order_relaxed); }
}  // namespace

void* operator new(std::size_t size) { return counted_alloc(size); }
void* operator new[](std::size_t size) { return counted_alloc(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return counted_alloc_nothrow(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return counted_alloc_nothrow(size);
}
void* operator new(std::size_t size, std::align_val_t align) {
  return counted_aligned_alloc(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return counted_aligned_alloc(size, align);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

namespace ws = wsgate::ws;
namespace beast = boost::beast;
namespace bws = boost::beast::websocket;
namespace net = boost::asio;

[[noreturn]] void die(const char* what, ws::Result r = ws::Result::fail) {
  std::fprintf(stderr, "engine_bench: %s (%.*s)\n", what, static_cast<int>(ws::symbol(r).size()),
               ws::symbol(r).data());
  std::abort();
}

void check(ws::Result r, const char* what) {
  if (r != ws::Result::ok) die(what, r);
}

// ---------------------------------------------------------------------------------------------
// Inputs, generated deterministically.

std::uint64_t g_rng_state = 0x9E3779B97F4A7C15ull;
std::uint64_t next_random() {  // xorshift64*
  g_rng_state ^= g_rng_state >> 12;
  g_rng_state ^= g_rng_state << 25;
  g_rng_state ^= g_rng_state >> 27;
  return g_rng_state * 0x2545F4914F6CDD1Dull;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Printable ASCII prose-like text of exactly `size` bytes.
std::string ascii_text(std::size_t size) {
  static constexpr std::string_view kWords[] = {"the ", "gateway ", "frame ", "WebSocket ",
                                                "message, ", "payload ", "42 ", "Beast. "};
  std::string s;
  s.reserve(size + 16);
  while (s.size() < size) s += kWords[next_random() % std::size(kWords)];
  s.resize(size);
  return s;
}

// Mixed text of exactly `size` bytes: by code points ~40% ASCII Latin, ~15% Latin-1 accented
// (2 bytes), ~30% CJK U+4E00..U+9FFF (3 bytes), ~15% emoji U+1F300..U+1F64F (4 bytes). Always
// whole code points (padded with ASCII), so it is valid UTF-8.
std::string mixed_text(std::size_t size) {
  std::string s;
  s.reserve(size + 4);
  std::string cp_bytes;
  for (;;) {
    const std::uint64_t r = next_random();
    const unsigned pick = static_cast<unsigned>(r % 100);
    std::uint32_t cp;
    if (pick < 40) {
      cp = 0x61 + static_cast<std::uint32_t>((r >> 8) % 26);
      if ((r >> 16) % 6 == 0) cp = 0x20;
    } else if (pick < 55) {
      cp = 0xC0 + static_cast<std::uint32_t>((r >> 8) % 0x40);
    } else if (pick < 85) {
      cp = 0x4E00 + static_cast<std::uint32_t>((r >> 8) % 0x5200);
    } else {
      cp = 0x1F300 + static_cast<std::uint32_t>((r >> 8) % 0x350);
    }
    cp_bytes.clear();
    append_utf8(cp_bytes, cp);
    if (s.size() + cp_bytes.size() > size) break;
    s += cp_bytes;
  }
  while (s.size() < size) s.push_back('x');
  return s;
}

std::vector<std::uint8_t> random_bytes(std::size_t size) {
  std::vector<std::uint8_t> v(size);
  for (auto& b : v) b = static_cast<std::uint8_t>(next_random() >> 56);
  return v;
}

const std::uint8_t* bytes(const std::string& s) {
  return reinterpret_cast<const std::uint8_t*>(s.data());
}

// One unmasked server frame (FIN, `opcode`) carrying `payload`.
std::string server_frame(ws::Opcode opcode, const std::string& payload) {
  std::string f(ws::kMaxFrameHeaderLength, '\0');
  const std::size_t n = ws::write_frame_header(reinterpret_cast<std::uint8_t*>(f.data()), true,
                                               opcode, false, {}, payload.size());
  f.resize(n);
  return f + payload;
}

constexpr std::size_t kFramePayload = 64;

// ---------------------------------------------------------------------------------------------
// The engine: a client and a server handle with the handshake done, and the action loop.

struct HandlePair {
  std::unique_ptr<ws::ProtocolHandle> client;
  std::unique_ptr<ws::ProtocolHandle> server;
};

HandlePair open_pair() {
  HandlePair p;
  check(ws::ProtocolHandle::create(ws::Role::client, nullptr, 0, &p.client), "create client");
  check(ws::ProtocolHandle::create(ws::Role::server, nullptr, 0, &p.server), "create server");
  ws::HttpHeader* request = nullptr;
  std::uint32_t request_count = 0;
  check(p.client->begin_client_handshake(nullptr, 0, nullptr, 0, nullptr, 0, &request,
                                         &request_count),
        "begin_client_handshake");
  ws::HttpHeader* response = nullptr;
  std::uint32_t response_count = 0;
  check(p.server->begin_server_handshake(nullptr, nullptr, 0, request, request_count, &response,
                                         &response_count),
        "begin_server_handshake");
  check(p.client->end_client_handshake(response, response_count, nullptr, nullptr, nullptr),
        "end_client_handshake");
  check(p.server->end_server_handshake(), "end_server_handshake");
  return p;
}

// A byte pipe between two handles, preallocated so it never allocates in the loop.
struct Wire {
  explicit Wire(std::size_t capacity) : data(capacity) {}
  std::vector<std::uint8_t> data;
  std::size_t read = 0;
  std::size_t write = 0;
  std::size_t available() const { return write - read; }
};

// Drives `h`'s send side until it has nothing more to do, writing the frames into `out`.
void pump_send(ws::ProtocolHandle& h, Wire& out) {
  for (;;) {
    ws::Buffer b[2];
    std::uint32_t n = 2;
    ws::Action action;
    ws::BufferType type;
    void* app = nullptr;
    void* act = nullptr;
    check(h.get_action(ws::ActionQueue::send, b, &n, &action, &type, &app, &act), "get_action(send)");
    if (action == ws::Action::no_action) return;
    std::uint32_t transferred = 0;
    if (action == ws::Action::send_to_network) {
      for (std::uint32_t i = 0; i < n; ++i) {
        if (out.write + b[i].data.length > out.data.size()) die("wire overflow");
        std::memcpy(out.data.data() + out.write, b[i].data.buffer, b[i].data.length);
        out.write += b[i].data.length;
        transferred += b[i].data.length;
      }
    } else if (action != ws::Action::indicate_send_complete) {
      die("unexpected action on the send queue");
    }
    h.complete_action(act, transferred);
  }
}

// Receives one whole message (every chunk) from `in` with zero-copy Receives; returns its size.
std::size_t receive_message(ws::ProtocolHandle& h, Wire& in) {
  std::size_t total = 0;
  for (;;) {
    check(h.receive(nullptr, nullptr), "receive");
    ws::BufferType type;
    for (;;) {
      ws::Buffer b[2];
      std::uint32_t n = 2;
      ws::Action action;
      void* app = nullptr;
      void* act = nullptr;
      check(h.get_action(ws::ActionQueue::receive, b, &n, &action, &type, &app, &act),
            "get_action(receive)");
      if (action == ws::Action::receive_from_network) {
        const std::size_t k = std::min<std::size_t>(in.available(), b[0].data.length);
        if (k == 0) die("receiver stalled: no bytes on the wire");
        std::memcpy(b[0].data.buffer, in.data.data() + in.read, k);
        in.read += k;
        if (in.read == in.write) in.read = in.write = 0;
        h.complete_action(act, static_cast<std::uint32_t>(k));
      } else if (action == ws::Action::indicate_receive_complete) {
        benchmark::DoNotOptimize(b[0].data.buffer);
        total += b[0].data.length;
        h.complete_action(act, 0);
        break;
      } else {
        die("unexpected action on the receive queue");
      }
    }
    if (!ws::is_fragment_type(type)) return total;
  }
}

// ---------------------------------------------------------------------------------------------
// Beast: a client websocket::stream over beast::test::stream, connected to a server one, with the
// handshake done (async, on one io_context, no threads).

struct BeastPair {
  net::io_context ioc;
  bws::stream<beast::test::stream> client{ioc};
  bws::stream<beast::test::stream> server{ioc};

  BeastPair() {
    client.next_layer().connect(server.next_layer());
    beast::error_code accept_ec, handshake_ec;
    server.async_accept([&](beast::error_code ec) { accept_ec = ec; });
    client.async_handshake("localhost", "/", [&](beast::error_code ec) { handshake_ec = ec; });
    ioc.run();
    if (accept_ec || handshake_ec) {
      std::fprintf(stderr, "beast handshake: %s / %s\n", accept_ec.message().c_str(),
                   handshake_ec.message().c_str());
      std::abort();
    }
    client.binary(true);
    server.binary(true);
  }
};

// ---------------------------------------------------------------------------------------------
// Case 1: decode one 64 B server frame on a client (header + payload hand-off).

void set_alloc_counter(benchmark::State& state, std::uint64_t before, std::uint64_t messages) {
  state.counters["allocs_per_msg"] = benchmark::Counter(
      static_cast<double>(allocations() - before) / static_cast<double>(messages ? messages : 1));
}

// Warm-up before counting: the engine's queues and Beast's buffers reach their high-water mark on
// the first messages; the cases measure the steady state.
constexpr int kWarmupMessages = 256;

// One zero-copy Receive on a client handle whose socket read returns `frames` (one or more whole
// frames, the first RECEIVE_FROM_NETWORK only). Returns the indicated payload length.
inline std::uint32_t decode_one(ws::ProtocolHandle& h, const std::string& frames) {
  if (h.receive(nullptr, nullptr) != ws::Result::ok) die("receive");
  for (;;) {
    ws::Buffer b[2];
    std::uint32_t n = 2;
    ws::Action action;
    ws::BufferType type;
    void* app;
    void* act;
    if (h.get_action(ws::ActionQueue::all, b, &n, &action, &type, &app, &act) != ws::Result::ok)
      die("get_action");
    if (action == ws::Action::receive_from_network) {
      // The "socket read".
      if (b[0].data.length < frames.size()) die("decode: receive area too small");
      std::memcpy(b[0].data.buffer, frames.data(), frames.size());
      h.complete_action(act, static_cast<std::uint32_t>(frames.size()));
    } else if (action == ws::Action::indicate_receive_complete) {
      benchmark::DoNotOptimize(b[0].data.buffer);
      const std::uint32_t length = b[0].data.length;
      h.complete_action(act, 0);
      return length;
    } else {
      die("decode: unexpected action");
    }
  }
}

template <bool kText>
void BM_decode64_wsgate(benchmark::State& state) {
  HandlePair p = open_pair();
  ws::ProtocolHandle& h = *p.client;
  const std::string payload = kText ? mixed_text(kFramePayload) : ascii_text(kFramePayload);
  const std::string frame = server_frame(kText ? ws::Opcode::text : ws::Opcode::binary, payload);
  for (int i = 0; i < kWarmupMessages; ++i) decode_one(h, frame);
  std::uint64_t received = 0;
  const std::uint64_t allocs_before = allocations();
  for (auto _ : state) received += decode_one(h, frame);
  set_alloc_counter(state, allocs_before, state.iterations());
  if (received != state.iterations() * kFramePayload) die("decode: short payload");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kFramePayload));
}

template <bool kText>
void BM_decode64_beast(benchmark::State& state) {
  BeastPair p;
  const std::string payload = kText ? mixed_text(kFramePayload) : ascii_text(kFramePayload);
  const std::string frame = server_frame(kText ? ws::Opcode::text : ws::Opcode::binary, payload);
  beast::flat_buffer buffer;
  buffer.reserve(4096);
  beast::test::stream& socket = p.client.next_layer();
  auto decode_one_beast = [&] {
    socket.append(frame);  // the "socket read": bytes appear in the stream's input
    beast::error_code ec;
    const std::size_t n = p.client.read(buffer, ec);
    if (ec) die("beast read");
    benchmark::DoNotOptimize(buffer.data().data());
    buffer.consume(buffer.size());
    return n;
  };
  for (int i = 0; i < kWarmupMessages; ++i) decode_one_beast();
  std::uint64_t received = 0;
  const std::uint64_t allocs_before = allocations();
  for (auto _ : state) received += decode_one_beast();
  set_alloc_counter(state, allocs_before, state.iterations());
  if (received != state.iterations() * kFramePayload) die("beast decode: short payload");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kFramePayload));
}

// The same, with 32 frames arriving in one socket read: the per-frame cost without the per-read
// cost (what a busy connection sees).
constexpr int kBatch = 32;

void BM_decode64_batch32_wsgate(benchmark::State& state) {
  HandlePair p = open_pair();
  ws::ProtocolHandle& h = *p.client;
  const std::string frame = server_frame(ws::Opcode::binary, ascii_text(kFramePayload));
  std::string batch;
  for (int i = 0; i < kBatch; ++i) batch += frame;
  auto decode_batch = [&] {
    std::uint64_t n = decode_one(h, batch);  // one socket read brings all 32 frames
    for (int i = 1; i < kBatch; ++i) n += decode_one(h, batch);  // served from the receive area
    return n;
  };
  for (int i = 0; i < kWarmupMessages / kBatch; ++i) decode_batch();
  std::uint64_t received = 0;
  const std::uint64_t allocs_before = allocations();
  for (auto _ : state) received += decode_batch();
  set_alloc_counter(state, allocs_before, state.iterations() * kBatch);
  if (received != state.iterations() * kBatch * kFramePayload) die("decode: short payload");
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * static_cast<std::int64_t>(kFramePayload));
}

void BM_decode64_batch32_beast(benchmark::State& state) {
  BeastPair p;
  const std::string frame = server_frame(ws::Opcode::binary, ascii_text(kFramePayload));
  std::string batch;
  for (int i = 0; i < kBatch; ++i) batch += frame;
  beast::flat_buffer buffer;
  buffer.reserve(4096);
  beast::test::stream& socket = p.client.next_layer();
  auto decode_batch_beast = [&] {
    std::uint64_t n = 0;
    socket.append(batch);
    for (int i = 0; i < kBatch; ++i) {
      beast::error_code ec;
      n += p.client.read(buffer, ec);
      if (ec) die("beast read");
      benchmark::DoNotOptimize(buffer.data().data());
      buffer.consume(buffer.size());
    }
    return n;
  };
  for (int i = 0; i < kWarmupMessages / kBatch; ++i) decode_batch_beast();
  std::uint64_t received = 0;
  const std::uint64_t allocs_before = allocations();
  for (auto _ : state) received += decode_batch_beast();
  set_alloc_counter(state, allocs_before, state.iterations() * kBatch);
  if (received != state.iterations() * kBatch * kFramePayload) die("beast decode: short payload");
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * static_cast<std::int64_t>(kFramePayload));
}

// ---------------------------------------------------------------------------------------------
// Case 2: encode one 64 B client frame, masking included (fresh CSPRNG key per frame in both).

// One Send on a client handle, pumped until INDICATE_SEND_COMPLETE; the "socket write" copies the
// frame into `sink`. Returns the frame's wire size.
inline std::uint32_t encode_one(ws::ProtocolHandle& h, ws::Buffer* message, std::uint8_t* sink) {
  if (h.send(ws::BufferType::binary_message, message, nullptr) != ws::Result::ok) die("send");
  std::uint32_t written = 0;
  for (;;) {
    ws::Buffer b[2];
    std::uint32_t n = 2;
    ws::Action action;
    ws::BufferType type;
    void* app;
    void* act;
    if (h.get_action(ws::ActionQueue::all, b, &n, &action, &type, &app, &act) != ws::Result::ok)
      die("get_action");
    if (action == ws::Action::send_to_network) {
      std::uint32_t total = 0;
      for (std::uint32_t i = 0; i < n; ++i) {
        std::memcpy(sink + written + total, b[i].data.buffer, b[i].data.length);
        total += b[i].data.length;
      }
      benchmark::DoNotOptimize(sink);
      written += total;
      h.complete_action(act, total);
    } else if (action == ws::Action::indicate_send_complete) {
      h.complete_action(act, 0);
      return written;
    } else {
      die("encode: unexpected action");
    }
  }
}

void BM_encode64_wsgate(benchmark::State& state) {
  HandlePair p = open_pair();
  ws::ProtocolHandle& h = *p.client;
  std::string payload = ascii_text(kFramePayload);
  ws::Buffer message;
  message.data.buffer = reinterpret_cast<std::uint8_t*>(payload.data());
  message.data.length = static_cast<std::uint32_t>(payload.size());
  std::array<std::uint8_t, 256> sink{};
  for (int i = 0; i < kWarmupMessages; ++i) encode_one(h, &message, sink.data());
  std::uint64_t written = 0;
  const std::uint64_t allocs_before = allocations();
  for (auto _ : state) written += encode_one(h, &message, sink.data());
  set_alloc_counter(state, allocs_before, state.iterations());
  if (written != state.iterations() * (kFramePayload + 6)) die("encode: unexpected frame size");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kFramePayload));
}

void BM_encode64_beast(benchmark::State& state) {
  BeastPair p;
  const std::string payload = ascii_text(kFramePayload);
  beast::test::stream& peer = p.server.next_layer();  // where the client's writes land
  auto encode_one_beast = [&] {
    beast::error_code ec;
    p.client.write(net::buffer(payload), ec);
    if (ec) die("beast write");
    const std::size_t n = peer.buffer().size();
    peer.clear();
    return n;
  };
  for (int i = 0; i < kWarmupMessages; ++i) encode_one_beast();
  std::uint64_t written = 0;
  const std::uint64_t allocs_before = allocations();
  for (auto _ : state) written += encode_one_beast();
  set_alloc_counter(state, allocs_before, state.iterations());
  if (written != state.iterations() * (kFramePayload + 6)) die("beast encode: unexpected size");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kFramePayload));
}

// ---------------------------------------------------------------------------------------------
// Frame headers alone. Beast has no stand-alone header parser (parse_fh is a private member of
// its stream implementation), so only the writer has a Beast twin (detail::write).

// Arg: 0 = 64 B server frame (2-byte header), 1 = 64 B masked client frame (6),
// 2 = 4 KiB masked (8), 3 = 1 MiB masked (14).
std::vector<std::uint8_t> header_case(std::int64_t which) {
  static constexpr std::uint64_t kLengths[] = {64, 64, 4096, 1u << 20};
  std::vector<std::uint8_t> h(ws::kMaxFrameHeaderLength);
  const auto i = static_cast<std::size_t>(which);
  const std::size_t n = ws::write_frame_header(h.data(), true, ws::Opcode::binary, i != 0,
                                               {0x11, 0x22, 0x33, 0x44}, kLengths[i]);
  h.resize(n);
  return h;
}

void BM_parse_frame_header_wsgate(benchmark::State& state) {
  std::vector<std::uint8_t> h = header_case(state.range(0));
  const std::uint8_t* data = h.data();
  const std::size_t size = h.size();
  for (auto _ : state) {
    benchmark::DoNotOptimize(data);
    ws::ParseResult r = ws::parse_frame_header(data, size);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_write_frame_header_wsgate(benchmark::State& state) {
  static constexpr std::uint64_t kLengths[] = {64, 64, 4096, 1u << 20};
  std::uint64_t length = kLengths[state.range(0)];
  bool masked = state.range(0) != 0;
  std::array<std::uint8_t, ws::kMaxFrameHeaderLength> out{};
  ws::MaskKey key{0x11, 0x22, 0x33, 0x44};
  for (auto _ : state) {
    benchmark::DoNotOptimize(length);
    benchmark::DoNotOptimize(key);
    std::size_t n = ws::write_frame_header(out.data(), true, ws::Opcode::binary, masked, key, length);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_write_frame_header_beast(benchmark::State& state) {
  static constexpr std::uint64_t kLengths[] = {64, 64, 4096, 1u << 20};
  bws::detail::frame_header fh{};
  fh.op = bws::detail::opcode::binary;
  fh.fin = true;
  fh.mask = state.range(0) != 0;
  fh.len = kLengths[state.range(0)];
  fh.key = 0x44332211u;
  beast::flat_static_buffer<ws::kMaxFrameHeaderLength> out;
  for (auto _ : state) {
    benchmark::DoNotOptimize(fh);
    out.clear();
    bws::detail::write(out, fh);
    benchmark::DoNotOptimize(out.data().data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// Masking, in place, 4-byte-aligned start (the payload follows a header in a buffer).

void BM_mask_wsgate(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  std::vector<std::uint8_t> data = random_bytes(size);
  const ws::MaskKey key{0x37, 0xFA, 0x21, 0x3D};
  for (auto _ : state) {
    std::size_t offset = ws::apply_mask(data.data(), size, key, 0);
    benchmark::DoNotOptimize(offset);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
}

void BM_mask_beast(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  std::vector<std::uint8_t> data = random_bytes(size);
  bws::detail::prepared_key key;
  bws::detail::prepare_key(key, 0x3D21FA37u);
  for (auto _ : state) {
    bws::detail::mask_inplace(net::mutable_buffer(data.data(), size), key);
    benchmark::DoNotOptimize(key);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
}

// ---------------------------------------------------------------------------------------------
// UTF-8 validation. Arg 0: size; the template parameter picks the text (true = mixed).

const std::string& utf8_input(bool mixed, std::size_t size) {
  // Generated once per (kind, size) and kept, so every implementation sees the same bytes.
  static std::vector<std::pair<std::pair<bool, std::size_t>, std::string>> cache;
  for (auto& [k, v] : cache)
    if (k.first == mixed && k.second == size) return v;
  const std::uint64_t saved = g_rng_state;
  g_rng_state = 0x243F6A8885A308D3ull ^ size ^ (mixed ? 1 : 0);
  cache.push_back({{mixed, size}, mixed ? mixed_text(size) : ascii_text(size)});
  g_rng_state = saved;
  if (!simdjson::validate_utf8(cache.back().second.data(), size)) die("generated invalid UTF-8");
  return cache.back().second;
}

template <bool kMixed>
void BM_utf8_wsgate_is_valid(benchmark::State& state) {
  const std::string& text = utf8_input(kMixed, static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    bool ok = ws::is_valid_utf8(bytes(text), text.size());
    if (!ok) die("is_valid_utf8 rejected valid text");
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(text.size()));
}

template <bool kMixed>
void BM_utf8_wsgate_validator(benchmark::State& state) {
  const std::string& text = utf8_input(kMixed, static_cast<std::size_t>(state.range(0)));
  ws::Utf8Validator v;
  for (auto _ : state) {
    v.reset();
    bool ok = v.feed(bytes(text), text.size(), true);
    if (!ok) die("Utf8Validator rejected valid text");
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(text.size()));
}

template <bool kMixed>
void BM_utf8_beast(benchmark::State& state) {
  const std::string& text = utf8_input(kMixed, static_cast<std::size_t>(state.range(0)));
  bws::detail::utf8_checker c;
  for (auto _ : state) {
    c.reset();
    bool ok = c.write(bytes(text), text.size()) && c.finish();
    if (!ok) die("utf8_checker rejected valid text");
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(text.size()));
}

template <bool kMixed>
void BM_utf8_simdjson(benchmark::State& state) {
  const std::string& text = utf8_input(kMixed, static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    bool ok = simdjson::validate_utf8(text.data(), text.size());
    if (!ok) die("simdjson rejected valid text");
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(text.size()));
}

// ---------------------------------------------------------------------------------------------
// Heap allocations per message in steady state: client -> server -> client through a handle pair,
// 10k round trips (20k messages) after 1k of warm-up. Arg 0 selects the message:
//   0: 64 B binary;  1: 64 B text (mixed);  2: 16 KiB text (mixed; several SEND_TO_NETWORK
//   actions and receive chunks);  3: 16 KiB text sent as 16 fragments of 1 KiB.
// Reported: allocs_per_msg (target 0); the time column is one round trip.

constexpr std::int64_t kAllocMessages = 10000;
constexpr int kAllocWarmup = 1000;

void BM_allocs_pair_wsgate(benchmark::State& state) {
  const std::int64_t which = state.range(0);
  const bool text = which != 0;
  const std::size_t size = which >= 2 ? 16384 : kFramePayload;
  const std::size_t fragment = which == 3 ? 1024 : size;
  std::string payload = text ? mixed_text(size) : ascii_text(size);
  if (which == 3) payload = ascii_text(size);  // 1 KiB cuts must not split a code point
  HandlePair p = open_pair();
  Wire to_server(2 * size + 1024), to_client(2 * size + 1024);

  std::vector<ws::Buffer> pieces;
  for (std::size_t off = 0; off < size; off += fragment) {
    ws::Buffer b;
    b.data.buffer = reinterpret_cast<std::uint8_t*>(payload.data()) + off;
    b.data.length = static_cast<std::uint32_t>(std::min(fragment, size - off));
    pieces.push_back(b);
  }
  const ws::BufferType fragment_type =
      text ? ws::BufferType::utf8_fragment : ws::BufferType::binary_fragment;
  const ws::BufferType message_type =
      text ? ws::BufferType::utf8_message : ws::BufferType::binary_message;

  auto send_message = [&](ws::ProtocolHandle& h, Wire& wire) {
    for (std::size_t i = 0; i < pieces.size(); ++i)
      check(h.send(i + 1 == pieces.size() ? message_type : fragment_type, &pieces[i], nullptr),
            "send");
    pump_send(h, wire);
  };
  auto round_trip = [&] {
    send_message(*p.client, to_server);
    if (receive_message(*p.server, to_server) != size) die("server: wrong message size");
    send_message(*p.server, to_client);
    if (receive_message(*p.client, to_client) != size) die("client: wrong message size");
  };

  for (int i = 0; i < kAllocWarmup; ++i) round_trip();
  const std::uint64_t allocs_before = allocations();
  for (auto _ : state) round_trip();
  const std::uint64_t allocs = allocations() - allocs_before;
  state.counters["allocs_per_msg"] =
      static_cast<double>(allocs) / static_cast<double>(2 * state.iterations());
  state.counters["allocs_total"] = static_cast<double>(allocs);
  state.SetItemsProcessed(2 * state.iterations());
  state.SetBytesProcessed(2 * state.iterations() * static_cast<std::int64_t>(size));
}

// ---------------------------------------------------------------------------------------------
// Pre-flight (PROTOCOL.md): the day's machine, to normalise the figures above. memcpy bandwidth
// (the physical limit of masking and validation) and a 64 B round trip over a UNIX socketpair to
// an echo thread (the kind of cost the engine sits next to). Bounded by the iteration count.

void BM_preflight_memcpy(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  std::vector<std::uint8_t> src = random_bytes(size), dst(size);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), size);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
}

bool io_exact(int fd, std::uint8_t* data, std::size_t size, bool write) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = write ? ::write(fd, data + done, size - done) : ::read(fd, data + done, size - done);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

void BM_preflight_uds_pingpong(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) die("socketpair");
  std::thread echo([fd = fds[1], size] {
    std::vector<std::uint8_t> buf(size);
    while (io_exact(fd, buf.data(), size, false) && io_exact(fd, buf.data(), size, true)) {
    }
  });
  std::vector<std::uint8_t> buf = random_bytes(size);
  for (auto _ : state) {
    if (!io_exact(fds[0], buf.data(), size, true) || !io_exact(fds[0], buf.data(), size, false))
      die("pingpong");
  }
  ::shutdown(fds[0], SHUT_RDWR);
  echo.join();
  ::close(fds[0]);
  ::close(fds[1]);
  state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------------------------
// Run context: commit, machine, simdjson kernel.

std::string run_command(const std::string& command) {
  std::string out;
  if (FILE* f = ::popen(command.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, f) != nullptr) out += buf;
    ::pclose(f);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  return "unknown";
}

void add_context() {
  const std::string dir = WSGATE_SOURCE_DIR;
  std::string commit = run_command("git -C '" + dir + "' rev-parse --short=12 HEAD 2>/dev/null");
  if (commit.empty()) commit = "none (no commit yet)";
  const std::string dirty =
      run_command("git -C '" + dir + "' status --porcelain 2>/dev/null | wc -l");
  if (!dirty.empty() && dirty != "0") commit += " + " + dirty + " uncommitted paths";
  benchmark::AddCustomContext("wsgate_commit", commit);
  // Without a commit, a fingerprint of the engine's sources as they are on disk at run time.
  benchmark::AddCustomContext(
      "service_ws_sha256",
      run_command("cd '" + dir + "' && cat service/ws/*.h service/ws/*.cc 2>/dev/null | "
                  "sha256sum | cut -c1-16"));
  benchmark::AddCustomContext("build_type", WSGATE_BUILD_TYPE);
  benchmark::AddCustomContext("nproc", std::to_string(std::thread::hardware_concurrency()));
  utsname u{};
  if (::uname(&u) == 0)
    benchmark::AddCustomContext("kernel", std::string(u.sysname) + " " + u.release + " " + u.machine);
  benchmark::AddCustomContext("cpu_model", cpu_model());
  benchmark::AddCustomContext("compiler", __VERSION__);
  benchmark::AddCustomContext("boost", BOOST_LIB_VERSION);
  benchmark::AddCustomContext("simdjson_kernel", simdjson::get_active_implementation()->name());
}

}  // namespace

// Pre-flight.
BENCHMARK(BM_preflight_memcpy)->Name("BM_preflight/memcpy")->Arg(4096)->Arg(1 << 20);
BENCHMARK(BM_preflight_uds_pingpong)->Name("BM_preflight/uds_pingpong")->Arg(64)->UseRealTime();

// Decode / encode of one 64 B frame.
BENCHMARK(BM_decode64_wsgate<false>)->Name("BM_decode64/binary/wsgate");
BENCHMARK(BM_decode64_beast<false>)->Name("BM_decode64/binary/beast");
BENCHMARK(BM_decode64_wsgate<true>)->Name("BM_decode64/text/wsgate");
BENCHMARK(BM_decode64_beast<true>)->Name("BM_decode64/text/beast");
BENCHMARK(BM_decode64_batch32_wsgate)->Name("BM_decode64_batch32/binary/wsgate");
BENCHMARK(BM_decode64_batch32_beast)->Name("BM_decode64_batch32/binary/beast");
BENCHMARK(BM_encode64_wsgate)->Name("BM_encode64/binary/wsgate");
BENCHMARK(BM_encode64_beast)->Name("BM_encode64/binary/beast");

// Frame headers: 0 = 64 B server, 1 = 64 B masked, 2 = 4 KiB masked, 3 = 1 MiB masked.
BENCHMARK(BM_parse_frame_header_wsgate)->Name("BM_parse_frame_header/wsgate")->DenseRange(0, 3);
BENCHMARK(BM_write_frame_header_wsgate)->Name("BM_write_frame_header/wsgate")->DenseRange(0, 3);
BENCHMARK(BM_write_frame_header_beast)->Name("BM_write_frame_header/beast")->DenseRange(0, 3);

// Masking.
BENCHMARK(BM_mask_wsgate)->Name("BM_mask/wsgate")->Arg(64)->Arg(4096)->Arg(1 << 20);
BENCHMARK(BM_mask_beast)->Name("BM_mask/beast")->Arg(64)->Arg(4096)->Arg(1 << 20);

// UTF-8.
#define WSGATE_UTF8_SIZES Arg(64)->Arg(4096)->Arg(1 << 20)
BENCHMARK(BM_utf8_wsgate_validator<false>)->Name("BM_utf8/ascii/wsgate_validator")->WSGATE_UTF8_SIZES;
BENCHMARK(BM_utf8_wsgate_is_valid<false>)->Name("BM_utf8/ascii/wsgate_is_valid")->WSGATE_UTF8_SIZES;
BENCHMARK(BM_utf8_beast<false>)->Name("BM_utf8/ascii/beast")->WSGATE_UTF8_SIZES;
BENCHMARK(BM_utf8_simdjson<false>)->Name("BM_utf8/ascii/simdjson")->WSGATE_UTF8_SIZES;
BENCHMARK(BM_utf8_wsgate_validator<true>)->Name("BM_utf8/mixed/wsgate_validator")->WSGATE_UTF8_SIZES;
BENCHMARK(BM_utf8_wsgate_is_valid<true>)->Name("BM_utf8/mixed/wsgate_is_valid")->WSGATE_UTF8_SIZES;
BENCHMARK(BM_utf8_beast<true>)->Name("BM_utf8/mixed/beast")->WSGATE_UTF8_SIZES;
BENCHMARK(BM_utf8_simdjson<true>)->Name("BM_utf8/mixed/simdjson")->WSGATE_UTF8_SIZES;

// Allocations per message (10k round trips = 20k messages, after 1k round trips of warm-up).
BENCHMARK(BM_allocs_pair_wsgate)
    ->Name("BM_allocs_per_msg/wsgate")
    ->DenseRange(0, 3)
    ->Iterations(kAllocMessages);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  add_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
