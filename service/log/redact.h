// Redaction of secrets before they reach a log line, an Admin answer or a metrics label:
// URL userinfo and query values, and the values of credential-bearing headers.
//
//   redact_url("wss://u:pw@host/feed?token=SECRET&x=1") == "wss://***@host/feed?token=***&x=***"
//   redact_header("Authorization", "Bearer abc")          == "***"
//
// Query values are all masked, not only the ones named like secrets: a name list cannot know
// what a given upstream puts there ("sig", "k", "auth"...). Keys, host, port and path stay, so
// a line still says where a session went.
//
// One process-wide switch (log.redact, on by default) and one opt-in for Sec-WebSocket-Protocol
// tokens (log.redact_subprotocols: some services carry a bearer token there).
// Thread safety: every function may be called from any thread; set_redaction() is atomic with
// respect to the others (each call sees the old or the new settings, never a mix).
#pragma once

#include <string>
#include <string_view>

namespace wsgate::log {

struct RedactionSettings {
  bool enabled = true;        // log.redact
  bool subprotocols = false;  // log.redact_subprotocols
};

// What replaces a secret.
inline constexpr std::string_view kRedacted = "***";

void set_redaction(RedactionSettings settings);
RedactionSettings redaction();

// `url` with its userinfo and every query value (and a fragment) replaced by ***; the text
// unchanged when redaction is off. Works on any text, parsed or not (a URL that the parser
// refused is logged too): only the first "scheme://authority" is looked at.
std::string redact_url(std::string_view url);

// Is `name` (any case) a header whose value is a credential: Authorization, Cookie, Set-Cookie,
// Proxy-Authorization, and Sec-WebSocket-Protocol when subprotocols are redacted.
bool is_sensitive_header(std::string_view name);

// `value`, or *** when redaction is on and `name` is sensitive.
std::string redact_header(std::string_view name, std::string_view value);

}  // namespace wsgate::log
