// frame.h: header parsing and writing, the RFC 6455 §5.7 examples, every rejection rule.
#include "service/ws/frame.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

namespace wsgate::ws {
namespace {

using Bytes = std::vector<std::uint8_t>;

ParseResult parse(const Bytes& b) { return parse_frame_header(b.data(), b.size()); }

void expect_violation(const Bytes& b, const char* what) {
  ParseResult r = parse(b);
  EXPECT_EQ(r.status, ParseStatus::error) << what;
  EXPECT_EQ(r.error, Result::invalid_protocol_format) << what;
  EXPECT_EQ(r.close_code, 1002) << what;
}

TEST(FrameParse, Rfc6455UnmaskedHello) {
  Bytes b = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  ParseResult r = parse(b);
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_TRUE(r.header.fin);
  EXPECT_EQ(r.header.rsv, 0);
  EXPECT_EQ(r.header.opcode, Opcode::text);
  EXPECT_FALSE(r.header.masked);
  EXPECT_EQ(r.header.header_length, 2);
  EXPECT_EQ(r.header.payload_length, 5u);
}

TEST(FrameParse, Rfc6455MaskedHello) {
  Bytes b = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  ParseResult r = parse(b);
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_TRUE(r.header.masked);
  EXPECT_EQ(r.header.mask_key, (std::array<std::uint8_t, 4>{0x37, 0xfa, 0x21, 0x3d}));
  EXPECT_EQ(r.header.header_length, 6);
  EXPECT_EQ(r.header.payload_length, 5u);
}

TEST(FrameParse, Rfc6455FragmentedHello) {
  Bytes first = {0x01, 0x03, 0x48, 0x65, 0x6c};
  Bytes second = {0x80, 0x02, 0x6c, 0x6f};
  ParseResult a = parse(first);
  ASSERT_EQ(a.status, ParseStatus::complete);
  EXPECT_FALSE(a.header.fin);
  EXPECT_EQ(a.header.opcode, Opcode::text);
  EXPECT_EQ(a.header.payload_length, 3u);
  ParseResult b = parse(second);
  ASSERT_EQ(b.status, ParseStatus::complete);
  EXPECT_TRUE(b.header.fin);
  EXPECT_EQ(b.header.opcode, Opcode::continuation);
  EXPECT_EQ(b.header.payload_length, 2u);
}

TEST(FrameParse, Rfc6455PingAndPong) {
  ParseResult ping = parse({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
  ASSERT_EQ(ping.status, ParseStatus::complete);
  EXPECT_EQ(ping.header.opcode, Opcode::ping);
  EXPECT_EQ(ping.header.payload_length, 5u);
  ParseResult pong = parse({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
  ASSERT_EQ(pong.status, ParseStatus::complete);
  EXPECT_EQ(pong.header.opcode, Opcode::pong);
  EXPECT_TRUE(pong.header.masked);
}

TEST(FrameParse, Rfc6455LengthEncodings) {
  ParseResult r256 = parse({0x82, 0x7E, 0x01, 0x00});
  ASSERT_EQ(r256.status, ParseStatus::complete);
  EXPECT_EQ(r256.header.opcode, Opcode::binary);
  EXPECT_EQ(r256.header.header_length, 4);
  EXPECT_EQ(r256.header.payload_length, 256u);
  ParseResult r64k = parse({0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00});
  ASSERT_EQ(r64k.status, ParseStatus::complete);
  EXPECT_EQ(r64k.header.header_length, 10);
  EXPECT_EQ(r64k.header.payload_length, 65536u);
  ParseResult r125 = parse({0x82, 0x7D});
  ASSERT_EQ(r125.status, ParseStatus::complete);
  EXPECT_EQ(r125.header.payload_length, 125u);
  ParseResult r126 = parse({0x82, 0x7E, 0x00, 0x7E});
  ASSERT_EQ(r126.status, ParseStatus::complete);
  EXPECT_EQ(r126.header.payload_length, 126u);
  ParseResult r65535 = parse({0x82, 0x7E, 0xFF, 0xFF});
  ASSERT_EQ(r65535.status, ParseStatus::complete);
  EXPECT_EQ(r65535.header.payload_length, 65535u);
  ParseResult rmax = parse({0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF});
  ASSERT_EQ(rmax.status, ParseStatus::complete);
  EXPECT_EQ(rmax.header.payload_length, 0x7FFFFFFFFFFFFFFFull);
}

TEST(FrameParse, NeedMoreForEveryPrefix) {
  const std::vector<Bytes> headers = {
      {0x81, 0x05},
      {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d},
      {0x82, 0x7E, 0x01, 0x00},
      {0x82, 0xFE, 0x01, 0x00, 1, 2, 3, 4},
      {0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00},
      {0x82, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 1, 2, 3, 4},
  };
  for (const Bytes& h : headers) {
    for (std::size_t n = 0; n < h.size(); ++n) {
      ParseResult r = parse_frame_header(h.data(), n);
      EXPECT_EQ(r.status, ParseStatus::need_more) << "prefix " << n << " of a " << h.size() << "-byte header";
    }
    ParseResult whole = parse(h);
    ASSERT_EQ(whole.status, ParseStatus::complete);
    EXPECT_EQ(whole.header.header_length, h.size());
  }
}

TEST(FrameParse, RsvBitsAreRejected) {
  expect_violation({0xC1, 0x00}, "RSV1");
  expect_violation({0xA1, 0x00}, "RSV2");
  expect_violation({0x91, 0x00}, "RSV3");
  expect_violation({0xF2, 0x00}, "all RSV");
}

TEST(FrameParse, ReservedOpcodesAreRejected) {
  for (int op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    expect_violation({static_cast<std::uint8_t>(0x80 | op), 0x00}, "reserved opcode");
  }
  for (int op : {0, 1, 2, 8, 9, 0xA}) {
    ParseResult r = parse({static_cast<std::uint8_t>(0x80 | op), 0x00});
    EXPECT_EQ(r.status, ParseStatus::complete) << int(op);
    EXPECT_EQ(static_cast<int>(r.header.opcode), op);
  }
}

TEST(FrameParse, NonMinimalLengthsAreRejected) {
  expect_violation({0x82, 0x7E, 0x00, 0x00}, "16-bit 0");
  expect_violation({0x82, 0x7E, 0x00, 0x7D}, "16-bit 125");
  expect_violation({0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0x7D}, "64-bit 125");
  expect_violation({0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, "64-bit 65535");
  expect_violation({0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0}, "64-bit top bit");
  expect_violation({0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, "64-bit all ones");
}

TEST(FrameParse, ControlFrameRules) {
  expect_violation({0x89, 0x7E, 0x00, 0x7E}, "ping of 126 bytes");
  expect_violation({0x88, 0x7E, 0x00, 0x7E}, "close of 126 bytes");
  expect_violation({0x8A, 0x7E, 0x00, 0x7E}, "pong of 126 bytes");
  expect_violation({0x09, 0x00}, "fragmented ping");
  expect_violation({0x08, 0x00}, "fragmented close");
  expect_violation({0x0A, 0x00}, "fragmented pong");
  ParseResult ok = parse({0x89, 0x7D});
  EXPECT_EQ(ok.status, ParseStatus::complete);
  EXPECT_EQ(ok.header.payload_length, 125u);
}

TEST(FrameParse, FailsFastOnTheFirstTwoBytes) {
  // A violation visible in the first two bytes is reported without waiting for the rest.
  expect_violation({0xC2, 0x7F}, "RSV with 64-bit length pending");
  expect_violation({0x83, 0xFE}, "reserved opcode with 16-bit length pending");
}

TEST(FrameWrite, Rfc6455Examples) {
  std::array<std::uint8_t, kMaxFrameHeaderLength> out{};
  EXPECT_EQ(write_frame_header(out.data(), true, Opcode::text, false, {}, 5), 2u);
  EXPECT_EQ(out[0], 0x81);
  EXPECT_EQ(out[1], 0x05);
  EXPECT_EQ(write_frame_header(out.data(), true, Opcode::text, true, {0x37, 0xfa, 0x21, 0x3d}, 5), 6u);
  EXPECT_EQ((Bytes(out.begin(), out.begin() + 6)), (Bytes{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d}));
  EXPECT_EQ(write_frame_header(out.data(), false, Opcode::text, false, {}, 3), 2u);
  EXPECT_EQ((Bytes(out.begin(), out.begin() + 2)), (Bytes{0x01, 0x03}));
  EXPECT_EQ(write_frame_header(out.data(), true, Opcode::continuation, false, {}, 2), 2u);
  EXPECT_EQ((Bytes(out.begin(), out.begin() + 2)), (Bytes{0x80, 0x02}));
  EXPECT_EQ(write_frame_header(out.data(), true, Opcode::ping, false, {}, 5), 2u);
  EXPECT_EQ((Bytes(out.begin(), out.begin() + 2)), (Bytes{0x89, 0x05}));
  EXPECT_EQ(write_frame_header(out.data(), true, Opcode::binary, false, {}, 256), 4u);
  EXPECT_EQ((Bytes(out.begin(), out.begin() + 4)), (Bytes{0x82, 0x7E, 0x01, 0x00}));
  EXPECT_EQ(write_frame_header(out.data(), true, Opcode::binary, false, {}, 65536), 10u);
  EXPECT_EQ((Bytes(out.begin(), out.begin() + 10)), (Bytes{0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0, 0}));
}

TEST(FrameWrite, RoundTripsThroughParse) {
  const std::uint64_t lengths[] = {0, 1, 125, 126, 127, 65535, 65536, 1u << 20, 0x7FFFFFFFFFFFFFFFull};
  for (bool masked : {false, true}) {
    for (bool fin : {false, true}) {
      for (Opcode op : {Opcode::continuation, Opcode::text, Opcode::binary}) {
        for (std::uint64_t len : lengths) {
          std::array<std::uint8_t, kMaxFrameHeaderLength> out{};
          std::size_t n = write_frame_header(out.data(), fin, op, masked, {1, 2, 3, 4}, len);
          EXPECT_EQ(n, frame_header_length(masked, len));
          ParseResult r = parse_frame_header(out.data(), n);
          ASSERT_EQ(r.status, ParseStatus::complete) << len;
          EXPECT_EQ(r.header.fin, fin);
          EXPECT_EQ(r.header.opcode, op);
          EXPECT_EQ(r.header.masked, masked);
          EXPECT_EQ(r.header.payload_length, len);
          EXPECT_EQ(r.header.header_length, n);
          if (masked) {
            EXPECT_EQ(r.header.mask_key, (std::array<std::uint8_t, 4>{1, 2, 3, 4}));
          }
        }
      }
    }
  }
}

TEST(FrameWrite, HeaderLength) {
  EXPECT_EQ(frame_header_length(false, 0), 2u);
  EXPECT_EQ(frame_header_length(false, 125), 2u);
  EXPECT_EQ(frame_header_length(false, 126), 4u);
  EXPECT_EQ(frame_header_length(false, 65535), 4u);
  EXPECT_EQ(frame_header_length(false, 65536), 10u);
  EXPECT_EQ(frame_header_length(true, 0), 6u);
  EXPECT_EQ(frame_header_length(true, 126), 8u);
  EXPECT_EQ(frame_header_length(true, 65536), 14u);
}

TEST(CloseCodes, WireValidity) {
  for (int c = 0; c < 6000; ++c) {
    bool want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
    EXPECT_EQ(is_valid_wire_close_code(static_cast<std::uint16_t>(c)), want) << c;
  }
  for (int c : {999, 1004, 1005, 1006, 1015, 1016, 2999, 5000}) {
    EXPECT_FALSE(is_valid_wire_close_code(static_cast<std::uint16_t>(c))) << c;
  }
  for (int c : {1000, 1003, 1007, 1014, 3000, 4999}) {
    EXPECT_TRUE(is_valid_wire_close_code(static_cast<std::uint16_t>(c))) << c;
  }
}

}  // namespace
}  // namespace wsgate::ws
