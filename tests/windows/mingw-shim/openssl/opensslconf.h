/* Test-only shim (see configuration.h here): Debian keeps opensslconf.h in the multiarch
 * include directory too, beside the configuration.h it includes; the file itself is the same
 * on every platform. */
#include <debian-multiarch/openssl/opensslconf.h>
