/* Checks specific to the remote websocket.h backend (libwebsocket-remote.so), beyond the shared
 * conformance checks: ALLOCATED_BUFFER validated locally then stripped, local handle values, and
 * E_FAIL when the daemon is unreachable (argv[1] = "unreachable", with WSGATE_ADDRESS pointing
 * nowhere). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <websocket.h>

static int failures;
#define CHECK(x)                                                  \
  do {                                                            \
    if (!(x)) {                                                   \
      ++failures;                                                 \
      printf("FAIL capi_remote_extra.c:%d: %s\n", __LINE__, #x); \
    }                                                             \
  } while (0)

int main(int argc, char** argv) {
  static uint64_t memory[(4096 + 4096 + 144) / 8 + 1];
  PVOID ptr = memory;
  PVOID misaligned = (PVOID)((char*)memory + 4);
  PVOID null_ptr = NULL;
  WEB_SOCKET_PROPERTY p;
  WEB_SOCKET_HANDLE h = NULL;

  if (argc > 1 && strcmp(argv[1], "unreachable") == 0) {
    ULONG v = 0, size = 4;
    CHECK(WebSocketCreateClientHandle(NULL, 0, &h) == E_FAIL);
    CHECK(WebSocketGetGlobalProperty(WEB_SOCKET_KEEPALIVE_INTERVAL_PROPERTY_TYPE, &v, &size) ==
          E_FAIL);
    WebSocketDeleteHandle(h); /* ignored */
    printf("%s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
  }

  p.Type = WEB_SOCKET_ALLOCATED_BUFFER_PROPERTY_TYPE;
  p.pvValue = &ptr;
  p.ulValueSize = (ULONG)sizeof memory;
  CHECK(WebSocketCreateClientHandle(&p, 1, &h) == S_OK);
  CHECK(h != NULL);
  WebSocketDeleteHandle(h);
  p.ulValueSize = 100; /* smaller than RBS + SBS + 144 */
  CHECK(WebSocketCreateClientHandle(&p, 1, &h) == E_INVALIDARG);
  p.ulValueSize = (ULONG)sizeof memory;
  p.pvValue = &misaligned;
  CHECK(WebSocketCreateServerHandle(&p, 1, &h) == E_INVALIDARG);
  p.pvValue = &null_ptr;
  CHECK(WebSocketCreateServerHandle(&p, 1, &h) == E_INVALIDARG);
  p.pvValue = NULL;
  CHECK(WebSocketCreateServerHandle(&p, 1, &h) == E_INVALIDARG);
  printf("%s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
