// Results of the engine's functions: symbolic HRESULTs and their two numeric tables.
//
// The engine and the rest of wsgate speak only in `Result` (a symbol). Numbers appear at the
// edges: the C ABI (capi/) and the gRPC status details. Which numbers the real websocket.dll
// returns for its own codes is unconfirmed (spec §5), so both tables exist:
//   - NumericTable::dotnet   (default): the values .NET's interop uses (E_INVALID_OPERATION 0x80000050...)
//   - NumericTable::winerror: the values of the SDK's winerror.h (0x8376xxxx)
// Codes shared by both (S_OK, E_INVALIDARG, E_OUTOFMEMORY, 0x8007007A) are the same in both.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace wsgate::ws {

enum class Result : std::uint8_t {
  ok,                              // S_OK
  invalid_arg,                     // E_INVALIDARG: our caller's bad pointer, count or property
  out_of_memory,                   // E_OUTOFMEMORY
  insufficient_buffer,             // HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER)
  invalid_operation,               // E_INVALID_OPERATION: a call in the wrong state (caller misuse)
  invalid_protocol_operation,      // E_INVALID_PROTOCOL_OPERATION: Send/Receive not allowed now, or the peer broke message order
  invalid_protocol_format,         // E_INVALID_PROTOCOL_FORMAT: malformed handshake or frame bytes
  extensions_not_supported,        // E_PROTOCOL_EXTENSIONS_NOT_SUPPORTED ("E_UNSUPPORTED_EXTENSION")
  subprotocol_not_supported,       // E_SUBPROTOCOL_NOT_SUPPORTED ("E_UNSUPPORTED_SUBPROTOCOL")
  protocol_version_not_supported,  // E_PROTOCOL_VERSION_NOT_SUPPORTED
  numeric_overflow,                // E_NUMERIC_OVERFLOW: a message larger than the configured maximum
  fail,                            // E_FAIL
};

enum class NumericTable : std::uint8_t { dotnet, winerror };

// The HRESULT symbol, e.g. "E_INVALID_PROTOCOL_FORMAT". Never null.
std::string_view symbol(Result r) noexcept;

// The numeric HRESULT of `r` in `table` (as an unsigned 32-bit value).
std::uint32_t numeric_value(Result r, NumericTable table = NumericTable::dotnet) noexcept;

// The inverse of numeric_value for either table; nullopt for a number neither table has.
std::optional<Result> from_numeric_value(std::uint32_t value) noexcept;

// The symbol's Result, e.g. "E_INVALIDARG" -> invalid_arg; nullopt if unknown.
std::optional<Result> from_symbol(std::string_view symbol) noexcept;

}  // namespace wsgate::ws
