#include "service/ws/frame.h"

#include <cstring>

namespace wsgate::ws {
std::size_t write_frame_header(std::uint8_t* out, bool fin, Opcode opcode, bool masked,
                               std::array<std::uint8_t, 4> mask_key,
                               std::uint64_t payload_length, bool rsv1) noexcept {
  out[0] = static_cast<std::uint8_t>((fin ? 0x80 : 0x00) | (rsv1 ? kRsv1 << 4 : 0x00) |
                                     static_cast<std::uint8_t>(opcode));
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
