// error.h: symbols and the two numeric tables, both ways.
#include "service/ws/error.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string_view>
#include <tuple>
#include <vector>

namespace wsgate::ws {
namespace {

struct Row {
  Result result;
  std::string_view symbol;
  std::uint32_t dotnet;
  std::uint32_t winerror;
};

const std::vector<Row>& rows() {
  static const std::vector<Row> kRows = {
      {Result::ok, "S_OK", 0x00000000u, 0x00000000u},
      {Result::invalid_arg, "E_INVALIDARG", 0x80070057u, 0x80070057u},
      {Result::out_of_memory, "E_OUTOFMEMORY", 0x8007000Eu, 0x8007000Eu},
      {Result::insufficient_buffer, "HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER)", 0x8007007Au, 0x8007007Au},
      {Result::invalid_operation, "E_INVALID_OPERATION", 0x80000050u, 0x80000050u},
      {Result::invalid_protocol_operation, "E_INVALID_PROTOCOL_OPERATION", 0x80000051u, 0x83760001u},
      {Result::invalid_protocol_format, "E_INVALID_PROTOCOL_FORMAT", 0x80000052u, 0x83760002u},
      {Result::extensions_not_supported, "E_PROTOCOL_EXTENSIONS_NOT_SUPPORTED", 0x83760003u, 0x83760003u},
      {Result::subprotocol_not_supported, "E_SUBPROTOCOL_NOT_SUPPORTED", 0x83760004u, 0x83760004u},
      {Result::protocol_version_not_supported, "E_PROTOCOL_VERSION_NOT_SUPPORTED", 0x83760005u, 0x83760005u},
      {Result::numeric_overflow, "E_NUMERIC_OVERFLOW", 0x80000053u, 0x80000053u},
      {Result::fail, "E_FAIL", 0x80004005u, 0x80004005u},
  };
  return kRows;
}

TEST(ErrorTable, SymbolsMatchTheSpecNames) {
  for (const Row& r : rows()) EXPECT_EQ(symbol(r.result), r.symbol);
}

TEST(ErrorTable, DotnetNumbersAreTheDefault) {
  for (const Row& r : rows()) {
    EXPECT_EQ(numeric_value(r.result), r.dotnet) << r.symbol;
    EXPECT_EQ(numeric_value(r.result, NumericTable::dotnet), r.dotnet) << r.symbol;
  }
  // The three .NET-interop values named in the README.
  EXPECT_EQ(numeric_value(Result::invalid_operation), 0x80000050u);
  EXPECT_EQ(numeric_value(Result::invalid_protocol_operation), 0x80000051u);
  EXPECT_EQ(numeric_value(Result::invalid_protocol_format), 0x80000052u);
}

TEST(ErrorTable, WinerrorNumbers) {
  for (const Row& r : rows()) EXPECT_EQ(numeric_value(r.result, NumericTable::winerror), r.winerror) << r.symbol;
}

TEST(ErrorTable, SharedCodesAreEqualInBothTables) {
  for (Result r : {Result::ok, Result::invalid_arg, Result::out_of_memory, Result::insufficient_buffer}) {
    EXPECT_EQ(numeric_value(r, NumericTable::dotnet), numeric_value(r, NumericTable::winerror));
  }
}

TEST(ErrorTable, FromNumericValueInvertsBothTables) {
  for (const Row& r : rows()) {
    ASSERT_TRUE(from_numeric_value(r.dotnet).has_value()) << r.symbol;
    EXPECT_EQ(*from_numeric_value(r.dotnet), r.result) << r.symbol;
    ASSERT_TRUE(from_numeric_value(r.winerror).has_value()) << r.symbol;
    EXPECT_EQ(*from_numeric_value(r.winerror), r.result) << r.symbol;
  }
}

TEST(ErrorTable, FromNumericValueUnknown) {
  for (std::uint32_t v : {0x00000001u, 0x80000054u, 0x83760000u, 0x83760006u, 0xFFFFFFFFu, 0x80070058u}) {
    EXPECT_FALSE(from_numeric_value(v).has_value()) << std::hex << v;
  }
}

TEST(ErrorTable, FromSymbolInvertsSymbol) {
  for (const Row& r : rows()) {
    auto got = from_symbol(r.symbol);
    ASSERT_TRUE(got.has_value()) << r.symbol;
    EXPECT_EQ(*got, r.result);
  }
  EXPECT_FALSE(from_symbol("").has_value());
  EXPECT_FALSE(from_symbol("E_UNSUPPORTED_SUBPROTOCOL").has_value());
  EXPECT_FALSE(from_symbol("e_invalidarg").has_value());
}

TEST(ErrorTable, EveryResultRoundTrips) {
  for (int i = 0; i <= static_cast<int>(Result::fail); ++i) {
    Result r = static_cast<Result>(i);
    EXPECT_FALSE(symbol(r).empty());
    EXPECT_EQ(from_symbol(symbol(r)), r);
    EXPECT_EQ(from_numeric_value(numeric_value(r, NumericTable::dotnet)), r);
    EXPECT_EQ(from_numeric_value(numeric_value(r, NumericTable::winerror)), r);
  }
}

}  // namespace
}  // namespace wsgate::ws
