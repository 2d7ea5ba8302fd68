#include "service/ws/frame.h"

#include <cstring>

namespace wsgate::ws {
namespace {

ParseResult violation() {
  ParseResult r{ParseStatus::error, {}, Result::invalid_protocol_format, 1002};
  return r;
}

bool is_known_opcode(std::uint8_t op) {
  return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

}  // namespace

ParseResult parse_frame_header(const std::uint8_t* data, std::size_t size) noexcept {
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
  if (h.rsv != 0 || !is_known_opcode(op)) return violation();
  h.opcode = static_cast<Opcode>(op);
  if (is_control(h.opcode) && (!h.fin || len7 > kMaxControlPayload)) return violation();

  std::size_t pos = 2;
  if (len7 == 126) {
    if (size < 4) return need_more;
    h.payload_length = (std::uint64_t{data[2]} << 8) | data[3];
    if (h.payload_length < 126) return violation();
    pos = 4;
  } else if (len7 == 127) {
    if (size < 10) return need_more;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | data[2 + i];
    if ((v >> 63) != 0 || v <= 0xFFFF) return violation();
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

std::size_t write_frame_header(std::uint8_t* out, bool fin, Opcode opcode, bool masked,
                               std::array<std::uint8_t, 4> mask_key,
                               std::uint64_t payload_length) noexcept {
  out[0] = static_cast<std::uint8_t>((fin ? 0x80 : 0x00) | static_cast<std::uint8_t>(opcode));
  const std::uint8_t mask_bit = masked ? 0x80 : 0x00;
  std::size_t pos;
  if (payload_length < 126) {
    out[1] = static_cast<std::uint8_t>(mask_bit | payload_length);
    pos = 2;
  } else if (payload_length <= 0xFFFF) {
    out[1] = static_cast<std::uint8_t>(mask_bit | 126);
    out[2] = static_cast<std::uint8_t>(payload_length >> 8);
    out[3] = static_cast<std::uint8_t>(payload_length);
    pos = 4;
  } else {
    out[1] = static_cast<std::uint8_t>(mask_bit | 127);
    for (int i = 0; i < 8; ++i) {
      out[2 + i] = static_cast<std::uint8_t>(payload_length >> (56 - 8 * i));
    }
    pos = 10;
  }
  if (masked) {
    std::memcpy(out + pos, mask_key.data(), 4);
    pos += 4;
  }
  return pos;
}

}  // namespace wsgate::ws
