// config_fuzz: fuzz bytes as a wsgated TOML configuration given to parse_config
// (service/daemon/config.h), then validate() on what it accepts.
//
// Beyond "no crash" (toml++ parses untrusted nesting, strings and numbers here), checks:
//   - exactly one of `config` and `error` is set; an error starts with the source name, so the
//     operator can tell which file it is about;
//   - an accepted file validates, except for the one rule parse_config cannot apply key by key
//     (max_message_bytes above max_message_bytes_ceiling): a per-key rule that validate() rejects
//     but the file parser accepted would start a daemon that refuses its own flags' config;
//   - each validate() line names its key ("limits.max_message_bytes: ...").
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "service/daemon/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Larger files add no new paths, only time per input.
  if (size > 16384) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string source = "fuzz.toml";
  const wsgate::daemon::LoadResult r = wsgate::daemon::parse_config(text, source);
  if (r.config.has_value() == !r.error.empty()) __builtin_trap();
  if (!r.config) {
    if (r.error.compare(0, source.size(), source) != 0) __builtin_trap();
    return 0;
  }
  const std::string errors = wsgate::daemon::validate(*r.config);
  std::string_view rest = errors;
  while (!rest.empty()) {
    const std::size_t eol = rest.find('\n');
    const std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    constexpr std::string_view kCrossKey = "limits.max_message_bytes: ";
    if (line.substr(0, kCrossKey.size()) != kCrossKey ||
        line.find("above limits.max_message_bytes_ceiling") == std::string_view::npos)
      __builtin_trap();
  }
  return 0;
}
