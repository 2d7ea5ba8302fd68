// RFC 6455 frame headers: parse (with every role-independent validity rule) and write.
// Pure functions over byte spans; no state, no allocation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include <cstring>

#include "service/ws/error.h"

namespace wsgate::ws {

enum class Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

constexpr bool is_control(Opcode op) { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }

inline constexpr std::size_t kMaxFrameHeaderLength = 14;  // 2 + 8 (length) + 4 (mask key)
inline constexpr std::size_t kMaxControlPayload = 125;

struct FrameHeader {
  bool fin = false;
  std::uint8_t rsv = 0;  // RSV1..3 as bits 2..0
  Opcode opcode = Opcode::continuation;
  bool masked = false;
  std::array<std::uint8_t, 4> mask_key{};
  std::uint8_t header_length = 0;  // bytes the header occupies on the wire
  std::uint64_t payload_length = 0;
};

enum class ParseStatus : std::uint8_t { complete, need_more, error };

struct ParseResult {
  ParseStatus status;
  FrameHeader header;                // valid when status == complete
  Result error = Result::ok;         // valid when status == error
  std::uint16_t close_code = 0;      // close code to send the peer when status == error
};



// RSV1 in FrameHeader::rsv (an extension's "compressed" bit, RFC 7692 §6).
inline constexpr std::uint8_t kRsv1 = 0x4;

// Writes a frame header into `out` (at least kMaxFrameHeaderLength bytes); returns its length.
// `rsv1` sets the RSV1 bit (only for a negotiated extension; see ProtocolHandle::allow_rsv1).
std::size_t write_frame_header(std::uint8_t* out, bool fin, Opcode opcode, bool masked,
                               std::array<std::uint8_t, 4> mask_key,
                               std::uint64_t payload_length, bool rsv1 = false) noexcept;

// The length write_frame_header would produce.
constexpr std::size_t frame_header_length(bool masked, std::uint64_t payload_length) {
  return 2 + (payload_length < 126 ? 0 : payload_length <= 0xFFFF ? 2 : 8) + (masked ? 4 : 0);
}

// RFC 6455 §7.4: may this close code appear in a close frame? (1000-1003, 1007-1014, 3000-4999)
constexpr bool is_valid_wire_close_code(std::uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

namespace detail {

inline ParseResult violation() {
  ParseResult r{ParseStatus::error, {}, Result::invalid_protocol_format, 1002};
  return r;
}

inline bool is_known_opcode(std::uint8_t op) {
  return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

}  // namespace detail

// Parses the frame header at the start of [data, data+size). Rejects, as E_INVALID_PROTOCOL_FORMAT
// with close code 1002: RSV bits outside `allowed_rsv` (0 unless an extension was negotiated:
// websocket.h has none), reserved opcodes, control frames
// that are fragmented or longer than 125 bytes, non-minimal length encodings and 64-bit lengths
// with the top bit set. Role rules (masking) and message-order rules are the caller's.
// Inline: it sits on the per-frame hot path and returns a struct the caller reads at once.
inline ParseResult parse_frame_header(const std::uint8_t* data, std::size_t size,
                                      std::uint8_t allowed_rsv = 0) noexcept {
  ParseResult need_more{ParseStatus::need_more, {}, Result::ok, 0};
  if (size < 2) return need_more;
  FrameHeader h;
  const std::uint8_t b0 = data[0];
  const std::uint8_t b1 = data[1];
  h.fin = (b0 & 0x80) != 0;
  h.rsv = static_cast<std::uint8_t>((b0 >> 4) & 0x7);
  const std::uint8_t op = b0 & 0x0F;
  h.masked = (b1 & 0x80) != 0;
  const std::uint8_t len7 = b1 & 0x7F;

  // Reject what is wrong as early as possible (fail fast on the first two bytes).
  if ((h.rsv & ~allowed_rsv) != 0 || !detail::is_known_opcode(op)) return detail::violation();
  h.opcode = static_cast<Opcode>(op);
  if (is_control(h.opcode) && (!h.fin || len7 > kMaxControlPayload)) return detail::violation();

  std::size_t pos = 2;
  if (len7 == 126) {
    if (size < 4) return need_more;
    h.payload_length = (std::uint64_t{data[2]} << 8) | data[3];
    if (h.payload_length < 126) return detail::violation();
    pos = 4;
  } else if (len7 == 127) {
    if (size < 10) return need_more;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | data[2 + i];
    if ((v >> 63) != 0 || v <= 0xFFFF) return detail::violation();
    h.payload_length = v;
    pos = 10;
  } else {
    h.payload_length = len7;
  }
  if (h.masked) {
    if (size < pos + 4) return need_more;
    std::memcpy(h.mask_key.data(), data + pos, 4);
    pos += 4;
  }
  h.header_length = static_cast<std::uint8_t>(pos);
  return {ParseStatus::complete, h, Result::ok, 0};
}

}  // namespace wsgate::ws
