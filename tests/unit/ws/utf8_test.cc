// utf8.h: whole-buffer and incremental validation (every split point, fail-fast, final checks).
#include "service/ws/utf8.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace wsgate::ws {
namespace {

bool valid(const std::string& s) {
  return is_valid_utf8(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

const std::vector<std::string>& valid_strings() {
  static const std::vector<std::string> k = {
      "",
      "Hello",
      "\xC3\xA9",                      // é
      "\xE2\x82\xAC",                  // €
      "\xF0\x9F\x98\x80",              // 😀
      "\xC2\x80",                      // U+0080, smallest 2-byte
      "\xDF\xBF",                      // U+07FF
      "\xE0\xA0\x80",                  // U+0800, smallest 3-byte
      "\xED\x9F\xBF",                  // U+D7FF, just below the surrogates
      "\xEE\x80\x80",                  // U+E000, just above
      "\xEF\xBF\xBF",                  // U+FFFF
      "\xF0\x90\x80\x80",              // U+10000
      "\xF4\x8F\xBF\xBF",              // U+10FFFF
      "\x7F",
      "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z",
      std::string(100, 'x') + "\xF0\x9F\x98\x80" + std::string(100, 'y'),
  };
  return k;
}

const std::vector<std::string>& invalid_strings() {
  static const std::vector<std::string> k = {
      "\x80",                  // lone continuation
      "\xBF",
      "\xC0\x80",              // overlong NUL
      "\xC1\xBF",              // overlong
      "\xE0\x80\x80",          // overlong 3-byte
      "\xE0\x9F\xBF",          // overlong 3-byte (U+07FF)
      "\xF0\x80\x80\x80",      // overlong 4-byte
      "\xF0\x8F\xBF\xBF",      // overlong 4-byte (U+FFFF)
      "\xED\xA0\x80",          // U+D800 surrogate
      "\xED\xBF\xBF",          // U+DFFF surrogate
      "\xF4\x90\x80\x80",      // U+110000
      "\xF5\x80\x80\x80",
      "\xFF",
      "\xFE",
      "\xC3",                  // truncated
      "\xE2\x82",              // truncated
      "\xF0\x9F\x98",          // truncated
      "\xC3\x28",              // bad continuation
      "\xE2\x28\xA1",
      "\xF0\x9F\x98\x28",
      "abc\xC3",
      std::string(100, 'x') + "\xED\xA0\x80" + std::string(100, 'y'),
      std::string(64, 'x') + "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80\x65\x64\x69\x74\x65\x64",
  };
  return k;
}

TEST(Utf8, WholeBufferValid) {
  for (const auto& s : valid_strings()) EXPECT_TRUE(valid(s)) << s.size();
}

TEST(Utf8, WholeBufferInvalid) {
  for (const auto& s : invalid_strings()) EXPECT_FALSE(valid(s)) << s.size();
}

bool feed_split(const std::string& s, std::size_t a, std::size_t b) {
  Utf8Validator v;
  auto p = reinterpret_cast<const std::uint8_t*>(s.data());
  if (!v.feed(p, a, false)) return false;
  if (!v.feed(p + a, b - a, false)) return false;
  return v.feed(p + b, s.size() - b, true);
}

TEST(Utf8, IncrementalMatchesWholeAtEverySplit) {
  std::vector<std::string> all = valid_strings();
  all.insert(all.end(), invalid_strings().begin(), invalid_strings().end());
  for (const auto& s : all) {
    bool want = valid(s);
    for (std::size_t a = 0; a <= s.size(); ++a) {
      for (std::size_t b = a; b <= s.size(); ++b) {
        ASSERT_EQ(feed_split(s, a, b), want) << "len=" << s.size() << " split " << a << "," << b;
      }
    }
  }
}

TEST(Utf8, ByteAtATime) {
  for (const auto& s : valid_strings()) {
    Utf8Validator v;
    for (std::size_t i = 0; i < s.size(); ++i) {
      ASSERT_TRUE(v.feed(reinterpret_cast<const std::uint8_t*>(s.data()) + i, 1, false));
    }
    EXPECT_FALSE(v.in_sequence());
    EXPECT_TRUE(v.feed(nullptr, 0, true));
  }
}

TEST(Utf8, FourByteSequenceSplitAtEveryPosition) {
  const std::string s = "\xF0\x9F\x98\x80";
  for (std::size_t cut = 1; cut < 4; ++cut) {
    Utf8Validator v;
    auto p = reinterpret_cast<const std::uint8_t*>(s.data());
    EXPECT_TRUE(v.feed(p, cut, false)) << cut;
    EXPECT_TRUE(v.in_sequence()) << cut;
    EXPECT_TRUE(v.feed(p + cut, 4 - cut, true)) << cut;
    EXPECT_FALSE(v.in_sequence());
  }
}

TEST(Utf8, TruncatedAtTheEndFailsOnlyWhenFinal) {
  const std::uint8_t part[] = {0xF0, 0x9F, 0x98};
  Utf8Validator v;
  EXPECT_TRUE(v.feed(part, 3, false));
  EXPECT_TRUE(v.in_sequence());
  EXPECT_FALSE(v.feed(nullptr, 0, true));
  Utf8Validator w;
  EXPECT_FALSE(w.feed(part, 3, true));
}

TEST(Utf8, FailsFastBeforeTheSequenceCompletes) {
  // Each prefix here can never become valid, whatever follows.
  const std::vector<std::vector<std::uint8_t>> prefixes = {
      {0xC0}, {0xC1}, {0xF5}, {0xFF}, {0x80}, {0xED, 0xA0}, {0xE0, 0x80}, {0xF0, 0x80}, {0xF4, 0x90}, {0xC3, 0x28},
  };
  for (const auto& p : prefixes) {
    Utf8Validator v;
    EXPECT_FALSE(v.feed(p.data(), p.size(), false)) << int(p[0]) << " len " << p.size();
  }
  // Split across pieces: the surrogate's second byte arrives alone.
  Utf8Validator v;
  const std::uint8_t ed = 0xED, a0 = 0xA0;
  EXPECT_TRUE(v.feed(&ed, 1, false));
  EXPECT_FALSE(v.feed(&a0, 1, false));
}

TEST(Utf8, ResetForgetsAPendingSequence) {
  Utf8Validator v;
  const std::uint8_t lead = 0xE2;
  EXPECT_TRUE(v.feed(&lead, 1, false));
  EXPECT_TRUE(v.in_sequence());
  v.reset();
  EXPECT_FALSE(v.in_sequence());
  const std::uint8_t ascii[] = {'o', 'k'};
  EXPECT_TRUE(v.feed(ascii, 2, true));
}

TEST(Utf8, LargeBuffers) {
  std::string big;
  for (int i = 0; i < 10000; ++i) big += "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
  EXPECT_TRUE(valid(big));
  std::string bad = big;
  bad[bad.size() / 2 + 3] = '\xFF';
  EXPECT_FALSE(valid(bad));
  Utf8Validator v;
  auto p = reinterpret_cast<const std::uint8_t*>(big.data());
  std::size_t pos = 0;
  for (std::size_t chunk = 1; pos < big.size(); chunk = chunk * 3 % 4093 + 1) {
    std::size_t n = std::min(chunk, big.size() - pos);
    ASSERT_TRUE(v.feed(p + pos, n, pos + n == big.size()));
    pos += n;
  }
}

}  // namespace
}  // namespace wsgate::ws
