#include "service/ws/mask.h"

#include <openssl/rand.h>

#include <cstdlib>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace wsgate::ws {

namespace {

#if defined(__x86_64__) && defined(__GNUC__)
// 32 bytes at a time where the CPU has AVX2 (chosen at run time; the build targets baseline
// x86-64, whose SSE2 path follows).
__attribute__((target("avx2"))) std::size_t mask_avx2(std::uint8_t* data, std::size_t size,
                                                      std::uint32_t k32) {
  const __m256i k = _mm256_set1_epi32(static_cast<int>(k32));
  std::size_t i = 0;
  for (; i + 128 <= size; i += 128) {
    for (std::size_t j = 0; j < 128; j += 32) {
      __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + i + j));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(data + i + j), _mm256_xor_si256(v, k));
    }
  }
  for (; i + 32 <= size; i += 32) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(data + i), _mm256_xor_si256(v, k));
  }
  return i;
}

const bool g_has_avx2 = __builtin_cpu_supports("avx2");
#endif

}  // namespace

std::size_t apply_mask(std::uint8_t* data, std::size_t size, MaskKey key,
                       std::size_t offset) noexcept {
  // Rotate the key so that byte 0 of `data` uses key[offset]; then the mask is a plain
  // repeating 4-byte pattern and can be applied a word (or a vector) at a time.
  std::uint8_t rotated[4];
  for (std::size_t i = 0; i < 4; ++i) rotated[i] = key[(offset + i) & 3];
  std::uint32_t k32;
  std::memcpy(&k32, rotated, 4);
  std::size_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
  if (size >= 256 && g_has_avx2) i = mask_avx2(data, size, k32);
#endif
#if defined(__SSE2__)
  const __m128i k128 = _mm_set1_epi32(static_cast<int>(k32));
  for (; i + 64 <= size; i += 64) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i + 16));
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i + 32));
    __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i + 48));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(data + i), _mm_xor_si128(a, k128));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(data + i + 16), _mm_xor_si128(b, k128));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(data + i + 32), _mm_xor_si128(c, k128));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(data + i + 48), _mm_xor_si128(d, k128));
  }
  for (; i + 16 <= size; i += 16) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(data + i), _mm_xor_si128(a, k128));
  }
#endif
  const std::uint64_t k64 = (std::uint64_t{k32} << 32) | k32;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, data + i, 8);
    w ^= k64;
    std::memcpy(data + i, &w, 8);
  }
  for (; i < size; ++i) data[i] ^= rotated[i & 3];
  return (offset + size) & 3;
}

MaskKey random_mask_key() noexcept {
  // A per-thread pool of CSPRNG output: one RAND_bytes call serves 1024 frames.
  constexpr std::size_t kPoolKeys = 1024;
  thread_local std::uint8_t pool[kPoolKeys * 4];
  thread_local std::size_t next = kPoolKeys;
  if (next == kPoolKeys) {
    if (RAND_bytes(pool, sizeof pool) != 1) std::abort();  // no safe fallback for masking keys
    next = 0;
  }
  MaskKey key;
  std::memcpy(key.data(), pool + 4 * next, 4);
  std::memset(pool + 4 * next, 0, 4);  // a used key does not linger in memory
  ++next;
  return key;
}

}  // namespace wsgate::ws
