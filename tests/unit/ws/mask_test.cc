// mask.h: XOR masking with key offsets (every split point, SIMD and tail paths) and random keys.
#include "service/ws/mask.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <vector>

namespace wsgate::ws {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes reference_mask(Bytes data, MaskKey key, std::size_t offset = 0) {
  for (std::size_t i = 0; i < data.size(); ++i) data[i] ^= key[(i + offset) % 4];
  return data;
}

Bytes pattern(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 31 + 7);
  return b;
}

TEST(Mask, Rfc6455Example) {
  Bytes hello = {0x48, 0x65, 0x6c, 0x6c, 0x6f};
  std::size_t next = apply_mask(hello.data(), hello.size(), {0x37, 0xfa, 0x21, 0x3d});
  EXPECT_EQ(hello, (Bytes{0x7f, 0x9f, 0x4d, 0x51, 0x58}));
  EXPECT_EQ(next, 1u);
}

TEST(Mask, MatchesReferenceForManySizesAndOffsets) {
  const MaskKey key = {0xA1, 0x02, 0xF3, 0x5C};
  for (std::size_t n = 0; n <= 300; ++n) {
    for (std::size_t off = 0; off < 4; ++off) {
      Bytes data = pattern(n);
      std::size_t next = apply_mask(data.data(), data.size(), key, off);
      EXPECT_EQ(data, reference_mask(pattern(n), key, off)) << "n=" << n << " off=" << off;
      EXPECT_EQ(next, (off + n) % 4);
    }
  }
}

TEST(Mask, UnalignedStart) {
  const MaskKey key = {1, 2, 3, 4};
  Bytes buf = pattern(200);
  for (std::size_t start = 1; start < 17; ++start) {
    Bytes data = buf;
    apply_mask(data.data() + start, 150, key);
    Bytes want = buf;
    for (std::size_t i = 0; i < 150; ++i) want[start + i] ^= key[i % 4];
    EXPECT_EQ(data, want) << start;
  }
}

TEST(Mask, PiecesEqualWhole) {
  const MaskKey key = {0x37, 0xfa, 0x21, 0x3d};
  const Bytes original = pattern(97);
  const Bytes whole = reference_mask(original, key);
  for (std::size_t a = 0; a <= original.size(); ++a) {
    for (std::size_t b = a; b <= original.size(); b += 7) {
      Bytes data = original;
      std::size_t off = apply_mask(data.data(), a, key);
      off = apply_mask(data.data() + a, b - a, key, off);
      apply_mask(data.data() + b, data.size() - b, key, off);
      ASSERT_EQ(data, whole) << a << "," << b;
    }
  }
}

TEST(Mask, IsAnInvolution) {
  const MaskKey key = {9, 8, 7, 6};
  Bytes data = pattern(1 << 16);
  apply_mask(data.data(), data.size(), key);
  EXPECT_NE(data, pattern(1 << 16));
  apply_mask(data.data(), data.size(), key);
  EXPECT_EQ(data, pattern(1 << 16));
}

TEST(Mask, ZeroKeyIsIdentity) {
  Bytes data = pattern(1000);
  apply_mask(data.data(), data.size(), {0, 0, 0, 0});
  EXPECT_EQ(data, pattern(1000));
}

TEST(Mask, RandomKeysDiffer) {
  std::set<MaskKey> keys;
  for (int i = 0; i < 3000; ++i) keys.insert(random_mask_key());  // crosses the 1024-key pool refill
  EXPECT_GT(keys.size(), 2990u);
}

}  // namespace
}  // namespace wsgate::ws
