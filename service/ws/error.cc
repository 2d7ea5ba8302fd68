#include "service/ws/error.h"

#include <array>

namespace wsgate::ws {
namespace {

struct Entry {
  Result result;
  std::string_view symbol;
  std::uint32_t dotnet;
  std::uint32_t winerror;
};

// One row per Result, in enum order.
constexpr std::array<Entry, 12> kTable{{
    {Result::ok, "S_OK", 0x00000000u, 0x00000000u},
    {Result::invalid_arg, "E_INVALIDARG", 0x80070057u, 0x80070057u},
    {Result::out_of_memory, "E_OUTOFMEMORY", 0x8007000Eu, 0x8007000Eu},
    {Result::insufficient_buffer, "HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER)", 0x8007007Au,
     0x8007007Au},
    {Result::invalid_operation, "E_INVALID_OPERATION", 0x80000050u, 0x80000050u},
    {Result::invalid_protocol_operation, "E_INVALID_PROTOCOL_OPERATION", 0x80000051u, 0x83760001u},
    {Result::invalid_protocol_format, "E_INVALID_PROTOCOL_FORMAT", 0x80000052u, 0x83760002u},
    {Result::extensions_not_supported, "E_PROTOCOL_EXTENSIONS_NOT_SUPPORTED", 0x83760003u,
     0x83760003u},
    {Result::subprotocol_not_supported, "E_SUBPROTOCOL_NOT_SUPPORTED", 0x83760004u, 0x83760004u},
    {Result::protocol_version_not_supported, "E_PROTOCOL_VERSION_NOT_SUPPORTED", 0x83760005u,
     0x83760005u},
    {Result::numeric_overflow, "E_NUMERIC_OVERFLOW", 0x80000053u, 0x80000053u},
    {Result::fail, "E_FAIL", 0x80004005u, 0x80004005u},
}};

constexpr bool table_in_enum_order() {
  for (std::size_t i = 0; i < kTable.size(); ++i) {
    if (static_cast<std::size_t>(kTable[i].result) != i) return false;
  }
  return true;
}
static_assert(table_in_enum_order());

}  // namespace

std::string_view symbol(Result r) noexcept { return kTable[static_cast<std::size_t>(r)].symbol; }

std::uint32_t numeric_value(Result r, NumericTable table) noexcept {
  const Entry& e = kTable[static_cast<std::size_t>(r)];
  return table == NumericTable::dotnet ? e.dotnet : e.winerror;
}

std::optional<Result> from_numeric_value(std::uint32_t value) noexcept {
  for (const Entry& e : kTable) {
    if (e.dotnet == value || e.winerror == value) return e.result;
  }
  return std::nullopt;
}

std::optional<Result> from_symbol(std::string_view s) noexcept {
  for (const Entry& e : kTable) {
    if (e.symbol == s) return e.result;
  }
  return std::nullopt;
}

}  // namespace wsgate::ws
