// permessage-deflate (RFC 7692) for gateway sessions: the offer the gateway makes, the strict
// check of the server's answer, and the compressor/decompressor pair of one session (zlib raw
// deflate). The engine (service/ws) stays zlib-free: it only lets RSV1 through and reports it
// (ProtocolHandle::allow_rsv1); SessionMachine inflates and deflates with this class.
//
// Window bits. We inflate with a 32 KiB window whatever the server announced: a larger window
// decodes any stream made with a smaller one, and zlib allocates it only once a message is
// inflated. We deflate with the agreed client_max_window_bits, but zlib cannot deflate with 8
// (a 256-byte window: deflateInit2 refuses it for raw deflate, and raises it to 9 otherwise,
// which would emit distances the server's 256-byte window cannot resolve). So the gateway never
// offers 8, and when a server answers client_max_window_bits=8 the session's messages go out
// uncompressed, which RFC 7692 §6 allows for any message; receiving is unaffected.
//
// Lifetime: one PerMessageDeflate per open session, owned by its SessionMachine; the zlib
// streams are made on first use (a session that never compresses a message pays nothing) and
// freed with the object. Thread safety: none (the machine's driver serialises every call).
// negotiate_deflate() and deflate_offer() are pure functions, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "service/session/types.h"

struct z_stream_s;

namespace wsgate::session {

inline constexpr std::string_view kPerMessageDeflate = "permessage-deflate";

// What both sides agreed on (RFC 7692 §7.1), after the server's answer.
struct DeflateAgreement {
  bool client_no_context_takeover = false;  // we reset our compressor after each message
  bool server_no_context_takeover = false;  // the server resets its own: so do we, inflating
  std::uint32_t client_max_window_bits = 15;  // our compressor's window
  std::uint32_t server_max_window_bits = 15;  // the server's compressor's window
};

// The Sec-WebSocket-Extensions element the gateway offers, e.g.
// "permessage-deflate; server_no_context_takeover; client_max_window_bits".
std::string deflate_offer(const CompressionSettings& settings);

struct DeflateNegotiation {
  std::optional<DeflateAgreement> agreement;  // set when the server accepted the offer
  std::string element;  // the server's element as sent (Opened reports it)
  std::string error;    // set when the answer is not acceptable: the handshake fails
};

// Finds the permessage-deflate element in the server's Sec-WebSocket-Extensions headers and
// checks it strictly against `offered`: an unknown or repeated parameter, a value where none
// belongs (or none where one must be), window bits outside 8..15 or above what was offered,
// client_max_window_bits when it was not offered, an offered server_max_window_bits or
// server_no_context_takeover missing from the answer, or a malformed header: `error` says which.
// No element at all: the server declined (no agreement, no error).
DeflateNegotiation negotiate_deflate(const Headers& response_headers,
                                     const CompressionSettings& offered);

class PerMessageDeflate {
 public:
  explicit PerMessageDeflate(const DeflateAgreement& agreement);
  ~PerMessageDeflate();
  PerMessageDeflate(const PerMessageDeflate&) = delete;
  PerMessageDeflate& operator=(const PerMessageDeflate&) = delete;

  enum class InflateStatus { ok, too_big, corrupt };

  // Inflates the next piece of a compressed message, appending what it decodes to *out, and
  // refuses to decode more than `limit` bytes in this call (too_big: a decompression bomb stops
  // there, memory stays bounded by the limit plus one step). `final`: the message ends with
  // this piece (the RFC 7692 §7.2.2 tail is added). corrupt: *error says what zlib found; the
  // object must not be used for inflating again.
  InflateStatus inflate(const std::uint8_t* data, std::size_t size, bool final, std::string* out,
                        std::uint64_t limit, std::string* error);

  // Compresses one whole message into *out (replaced), without the 4-byte tail (§7.2.1).
  // False when it cannot be compressed (see can_compress, or zlib out of memory): send it
  // uncompressed.
  bool deflate(const std::uint8_t* data, std::size_t size, std::string* out);

  // Whether messages may be compressed at all (not with an agreed client window of 8).
  bool can_compress() const noexcept { return agreement_.client_max_window_bits >= 9; }
  const DeflateAgreement& agreement() const noexcept { return agreement_; }

 private:
  struct StreamDeleter {
    bool inflater;
    void operator()(z_stream_s* z) const noexcept;
  };
  using Stream = std::unique_ptr<z_stream_s, StreamDeleter>;

  InflateStatus run_inflate(const std::uint8_t* data, std::size_t size, std::string* out,
                            std::size_t start, std::uint64_t limit, std::string* error);

  DeflateAgreement agreement_;
  Stream inflater_{nullptr, StreamDeleter{true}};
  Stream deflater_{nullptr, StreamDeleter{false}};
};

}  // namespace wsgate::session
