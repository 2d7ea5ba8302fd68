// UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
// Bulk work goes to simdjson's SIMD validator; this file only handles sequences split across
// chunk boundaries, so a message can be checked piece by piece as it arrives.
#pragma once

#include <cstddef>
#include <cstdint>

namespace wsgate::ws {

// Whole-buffer validation.
bool is_valid_utf8(const std::uint8_t* data, std::size_t size) noexcept;

// Incremental validator for one message.
// Lifetime: one per message stream; reset() between messages. Thread safety: none (a value type).
class Utf8Validator {
 public:
  // Validates the next piece. `final` means the message ends with this piece, so an incomplete
  // trailing sequence is an error. Returns false as soon as the bytes seen so far cannot be the
  // prefix of valid UTF-8 (fail-fast, RFC 6455 §8.1); the validator must then be reset.
  bool feed(const std::uint8_t* data, std::size_t size, bool final) noexcept;

  void reset() noexcept { pending_length_ = 0; }
  bool in_sequence() const noexcept { return pending_length_ != 0; }

 private:
  std::uint8_t pending_[4]{};       // bytes of a sequence that a later piece must complete
  std::uint8_t pending_length_ = 0;
};

}  // namespace wsgate::ws
