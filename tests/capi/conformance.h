/*
 * Conformance checks of the websocket.h C ABI, written in plain C11 against the header only, so
 * the same checks run against every backend (libwebsocket.so now, the remote client-sdk backend
 * later). Behaviour checked: service/ws/README.md and shared/spec/websocket-api.md.
 */
#ifndef WSGATE_TESTS_CAPI_CONFORMANCE_H_
#define WSGATE_TESTS_CAPI_CONFORMANCE_H_

#ifdef __cplusplus
extern "C" {
#endif

/* Runs every check, prints one line per failure and a summary "N passed, M failed".
 * Returns the number of failed checks (0 on success). */
int run_conformance(void);

#ifdef __cplusplus
}
#endif

#endif /* WSGATE_TESTS_CAPI_CONFORMANCE_H_ */
