/* Test-only shim for the mingw-w64 syntax check (tests/windows/check_mingw_syntax.py), never
 * used by a build. Debian ships OpenSSL's generated configuration.h for Linux only (in the
 * multiarch include directory, which the check links as debian-multiarch/). It is usable as is
 * for Windows but for one line: it picks SIXTY_FOUR_BIT_LONG (BN_ULONG = unsigned long, 64 bits
 * on LP64 Linux), while 64-bit Windows is LLP64 (unsigned long is 32 bits) and OpenSSL's
 * Windows configuration picks SIXTY_FOUR_BIT (BN_ULONG = unsigned long long). */
#ifndef WSGATE_MINGW_SHIM_OPENSSL_CONFIGURATION_H
#define WSGATE_MINGW_SHIM_OPENSSL_CONFIGURATION_H
#include <debian-multiarch/openssl/configuration.h>
#undef SIXTY_FOUR_BIT_LONG
#define SIXTY_FOUR_BIT
#endif
