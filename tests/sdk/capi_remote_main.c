/* capi_remote: the websocket.h conformance checks (tests/capi/conformance.c, unchanged) against
 * the remote backend, libwebsocket-remote.so, talking to the wsgated at $WSGATE_ADDRESS.
 * Exit status 0 only when every check passed. */
#include "conformance.h"

int main(void) { return run_conformance() == 0 ? 0 : 1; }
