// Handshake helpers (RFC 6455 §4): keys, the accept value, header lookup and token lists.
// Pure functions; the only outside input is OpenSSL's CSPRNG for new keys.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "service/ws/ascii.h"
#include "service/ws/types.h"

namespace wsgate::ws {

inline constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// base64 of 16 fresh random bytes (24 characters). Aborts if the CSPRNG fails.
std::string make_client_key();

// base64(SHA-1(key + GUID)), the Sec-WebSocket-Accept value for `key`.
std::string accept_key(std::string_view key);

// Is `key` base64 of exactly 16 bytes (what a Sec-WebSocket-Key must be)?
bool is_valid_client_key(std::string_view key);

// iequals: service/ws/ascii.h.
std::string_view trim(std::string_view s) noexcept;  // optional whitespace (SP, HTAB) both ends

// RFC 7230 token (tchar+).
bool is_token(std::string_view s) noexcept;
// May `s` be sent as a header value (no CR, LF or NUL)?
bool is_safe_header_value(std::string_view s) noexcept;

// Does the comma-separated list `value` hold `token` (case-insensitive, whitespace trimmed)?
bool list_contains_token(std::string_view value, std::string_view token) noexcept;

inline std::string_view name_of(const HttpHeader& h) { return {h.name, h.name_length}; }
inline std::string_view value_of(const HttpHeader& h) { return {h.value, h.value_length}; }

// Looks up `name` (case-insensitive) in headers[0..count). Returns the value of the only match,
// nullopt when absent; `duplicate` is set when it occurs more than once.
std::optional<std::string_view> find_header(const HttpHeader* headers, std::uint32_t count,
                                            std::string_view name, bool* duplicate = nullptr);

}  // namespace wsgate::ws
