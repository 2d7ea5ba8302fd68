// Client-to-server masking (RFC 6455 §5.3): XOR with a rotating 4-byte key, 16 bytes at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace wsgate::ws {

using MaskKey = std::array<std::uint8_t, 4>;

// XORs [data, data+size) in place with `key`, starting at key byte `offset` (0..3), and returns
// the key offset for the byte after the last one, so a payload can be unmasked in pieces.
std::size_t apply_mask(std::uint8_t* data, std::size_t size, MaskKey key,
                       std::size_t offset = 0) noexcept;

// A fresh, unpredictable masking key from OpenSSL's CSPRNG. Keys are drawn from a per-thread pool
// refilled with RAND_bytes 1024 keys at a time, so the per-frame cost is a few nanoseconds.
// Thread safety: safe from any thread. Aborts the process if the CSPRNG fails (no safe fallback).
MaskKey random_mask_key() noexcept;

}  // namespace wsgate::ws
