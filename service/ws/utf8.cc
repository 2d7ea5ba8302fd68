#include "service/ws/utf8.h"

#include <simdjson.h>

namespace wsgate::ws {
namespace {

// Length of the sequence a lead byte starts: 1 for ASCII, 2..4 for C2..F4, 0 when the byte
// cannot start a sequence (continuation bytes, C0, C1, F5..FF).
constexpr std::uint8_t sequence_length(std::uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

// Can bytes[0..n) (n >= 1, bytes[0] a valid lead) begin a valid sequence? Checks the second
// byte's narrowed ranges (no overlongs, surrogates or code points above U+10FFFF) and that the
// rest are continuation bytes.
bool is_valid_prefix(const std::uint8_t* b, std::size_t n) {
  if (sequence_length(b[0]) < 2) return false;
  if (n >= 2) {
    std::uint8_t lo = 0x80, hi = 0xBF;
    switch (b[0]) {
      case 0xE0: lo = 0xA0; break;
      case 0xED: hi = 0x9F; break;
      case 0xF0: lo = 0x90; break;
      case 0xF4: hi = 0x8F; break;
      default: break;
    }
    if (b[1] < lo || b[1] > hi) return false;
  }
  for (std::size_t i = 2; i < n; ++i) {
    if ((b[i] & 0xC0) != 0x80) return false;
  }
  return true;
}

}  // namespace

bool is_valid_utf8(const std::uint8_t* data, std::size_t size) noexcept {
  // Short inputs: simdjson's fixed cost per call (15-25 ns) dominates, and short text is mostly
  // ASCII, so check that first with a plain loop the compiler vectorises.
  if (size <= 64) {
    std::uint8_t any_high = 0;
    for (std::size_t i = 0; i < size; ++i) any_high |= data[i];
    if ((any_high & 0x80) == 0) return true;
  }
  return simdjson::validate_utf8(reinterpret_cast<const char*>(data), size);
}

bool Utf8Validator::feed(const std::uint8_t* data, std::size_t size, bool final) noexcept {
  // 1. Finish the sequence the previous piece left open.
  if (pending_length_ != 0) {
    const std::size_t need = sequence_length(pending_[0]);
    while (pending_length_ < need && size > 0) {
      pending_[pending_length_++] = *data++;
      --size;
    }
    if (!is_valid_prefix(pending_, pending_length_)) return false;
    if (pending_length_ < need) return !final;  // still open
    pending_length_ = 0;
  }
  if (size == 0) return true;

  // 2. Find a sequence cut off at the end of this piece: scan back over at most three
  // continuation bytes to a lead byte that needs more bytes than are left.
  std::size_t body = size;
  for (std::size_t back = 1; back <= 3 && back <= size; ++back) {
    const std::uint8_t b = data[size - back];
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for its lead
    const std::uint8_t len = sequence_length(b);
    if (len > back) body = size - back;  // a lead whose sequence runs past the end
    break;
  }

  // 3. The complete part goes to the SIMD validator; the cut-off tail waits for the next piece.
  if (!is_valid_utf8(data, body)) return false;
  const std::size_t tail = size - body;
  if (tail != 0) {
    if (final || !is_valid_prefix(data + body, tail)) return false;
    for (std::size_t i = 0; i < tail; ++i) pending_[i] = data[body + i];
    pending_length_ = static_cast<std::uint8_t>(tail);
  }
  return true;
}

}  // namespace wsgate::ws
