// quote(): a short, printable rendering of untrusted text for error messages and logs, so a peer
// or client cannot inject control characters or unbounded text: at most 64 bytes, every
// non-printable byte (and '"', '\') as \xNN, in double quotes, "..." when cut.
// Thread safety: a pure function.
#pragma once

#include <string>
#include <string_view>

namespace wsgate::net {

std::string quote(std::string_view s);

}  // namespace wsgate::net
