/* capi_loopback: the websocket.h conformance checks against the in-process backend
 * (libwebsocket.so). Exit status 0 only when every check passed. */
#include "conformance.h"

int main(void) { return run_conformance() == 0 ? 0 : 1; }
