/*
 * websocket.h conformance checks in C11 (see conformance.h).
 *
 * The loopback part follows the usage pattern of .NET's wrapper of websocket.dll: a client handle
 * (receive size, send size) and a server handle (send size 16), the handshake headers passed
 * between them, then Send/Receive with the action loop pumped separately on the SEND and RECEIVE
 * queues (as .NET's send and receive paths do), entirely in memory: each endpoint's
 * SEND_TO_NETWORK bytes are appended to the other endpoint's inbox, and its RECEIVE_FROM_NETWORK
 * actions read from its own inbox. A RECEIVE_FROM_NETWORK that finds the inbox empty stays
 * outstanding until the peer has written something (or "closed the connection").
 */
#include "conformance.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <websocket.h>

/* ---------------------------------------------------------------------------------------------
 * Check bookkeeping
 * ------------------------------------------------------------------------------------------- */

static int g_passed;
static int g_failed;
static const char* g_section = "";

static int check_impl(int ok, const char* what, int line) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    printf("FAIL [%s] conformance.c:%d: %s\n", g_section, line, what);
  }
  return ok;
}
#define CHECK(expr) check_impl((expr) ? 1 : 0, #expr, __LINE__)

static int check_hr_impl(HRESULT got, HRESULT want, const char* what, int line) {
  if (got == want) {
    ++g_passed;
    return 1;
  }
  ++g_failed;
  printf("FAIL [%s] conformance.c:%d: %s returned 0x%08lX, expected 0x%08lX\n", g_section, line,
         what, (unsigned long)(uint32_t)got, (unsigned long)(uint32_t)want);
  return 0;
}
#define CHECK_HR(call, want) check_hr_impl((call), (HRESULT)(want), #call, __LINE__)

/* Literal numbers: the checks compare against these, not only against the header's macros, so a
 * header/library mismatch is caught too. */
#define HR_E_INVALIDARG 0x80070057u
#define HR_INSUFFICIENT_BUFFER 0x8007007Au
#define HR_E_INVALID_OPERATION 0x80000050u
#define HR_E_INVALID_PROTOCOL_OPERATION 0x80000051u
#define HR_E_INVALID_PROTOCOL_FORMAT 0x80000052u
#define HR_E_PROTOCOL_VERSION_NOT_SUPPORTED 0x83760005u

/* ---------------------------------------------------------------------------------------------
 * SHA-1 and base64, to check Sec-WebSocket-Accept independently of the backend
 * ------------------------------------------------------------------------------------------- */

static uint32_t rol32(uint32_t x, unsigned n) { return (x << n) | (x >> (32u - n)); }

static void sha1(const unsigned char* data, size_t len, unsigned char out[20]) {
  uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  size_t total = ((len + 8) / 64 + 1) * 64;
  unsigned char* msg = (unsigned char*)calloc(total, 1);
  uint64_t bits = (uint64_t)len * 8u;
  size_t i;
  if (msg == NULL) abort();
  memcpy(msg, data, len);
  msg[len] = 0x80;
  for (i = 0; i < 8; ++i) msg[total - 1 - i] = (unsigned char)(bits >> (8 * i));
  for (size_t off = 0; off < total; off += 64) {
    uint32_t w[80];
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (i = 0; i < 16; ++i) {
      const unsigned char* p = msg + off + 4 * i;
      w[i] = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    }
    for (i = 16; i < 80; ++i) w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (i = 0; i < 80; ++i) {
      uint32_t f, k, t;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999u;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1u;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDCu;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6u;
      }
      t = rol32(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rol32(b, 30);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
  free(msg);
  for (i = 0; i < 20; ++i) out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const unsigned char* in, size_t len, char* out) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i, o = 0;
  for (i = 0; i + 2 < len; i += 3) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
    out[o++] = tab[(v >> 18) & 63];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = tab[(v >> 6) & 63];
    out[o++] = tab[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = tab[(v >> 18) & 63];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = '=';
    out[o++] = '=';
  } else if (len - i == 2) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
    out[o++] = tab[(v >> 18) & 63];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = tab[(v >> 6) & 63];
    out[o++] = '=';
  }
  out[o] = '\0';
}

/* out: at least 29 bytes. */
static void accept_for_key(const char* key, size_t key_len, char* out) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char buf[128];
  unsigned char digest[20];
  if (key_len > sizeof buf - (sizeof guid - 1)) key_len = sizeof buf - (sizeof guid - 1);
  memcpy(buf, key, key_len);
  memcpy(buf + key_len, guid, sizeof guid - 1);
  sha1(buf, key_len + sizeof guid - 1, digest);
  base64(digest, sizeof digest, out);
}

/* ---------------------------------------------------------------------------------------------
 * Header lists with their own storage
 * ------------------------------------------------------------------------------------------- */

typedef struct {
  WEB_SOCKET_HTTP_HEADER h[24];
  ULONG count;
  char text[4096];
  size_t used;
} header_list;

static void hl_add(header_list* l, const char* name, size_t nlen, const char* value, size_t vlen) {
  if (l->count >= sizeof l->h / sizeof l->h[0] || l->used + nlen + vlen + 2 > sizeof l->text) {
    CHECK(!"header list overflow");
    return;
  }
  l->h[l->count].pcName = l->text + l->used;
  memcpy(l->text + l->used, name, nlen);
  l->used += nlen + 1;
  l->h[l->count].ulNameLength = (ULONG)nlen;
  l->h[l->count].pcValue = l->text + l->used;
  memcpy(l->text + l->used, value, vlen);
  l->used += vlen + 1;
  l->h[l->count].ulValueLength = (ULONG)vlen;
  ++l->count;
}

static void hl_add_str(header_list* l, const char* name, const char* value) {
  hl_add(l, name, strlen(name), value, strlen(value));
}

static int ieq(const char* a, size_t alen, const char* b) {
  size_t blen = strlen(b), i;
  if (alen != blen) return 0;
  for (i = 0; i < alen; ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
    if (x != y) return 0;
  }
  return 1;
}

/* Index of the header named `name` (case-insensitive) or -1. */
static int find_header(const WEB_SOCKET_HTTP_HEADER* h, ULONG count, const char* name) {
  ULONG i;
  for (i = 0; i < count; ++i)
    if (ieq(h[i].pcName, h[i].ulNameLength, name)) return (int)i;
  return -1;
}

static int value_is(const WEB_SOCKET_HTTP_HEADER* h, ULONG count, const char* name,
                    const char* value) {
  int i = find_header(h, count, name);
  return i >= 0 && ieq(h[i].pcValue, h[i].ulValueLength, value);
}

/* ---------------------------------------------------------------------------------------------
 * In-memory endpoints and the action pump
 * ------------------------------------------------------------------------------------------- */

typedef struct {
  WEB_SOCKET_BUFFER_TYPE type;
  unsigned char* data; /* a copy of the chunk, or of the close reason */
  ULONG length;
  USHORT status; /* CLOSE only */
  PVOID app_context;
} event_t;

#define MAX_EVENTS 256

typedef struct endpoint {
  const char* name;
  WEB_SOCKET_HANDLE h;
  struct endpoint* peer;

  /* Bytes the peer wrote and this endpoint has not read yet. */
  unsigned char* inbox;
  size_t inbox_len, inbox_cap, inbox_read;
  int peer_eof;        /* the peer "closed the connection": reads return 0 once the inbox is empty */
  ULONG read_limit;    /* 0, or the most bytes one read returns (splits frames across reads) */

  ULONG send_capacity; /* GetAction buffer capacity on the SEND queue */
  ULONG recv_capacity; /* ... and on the RECEIVE queue (.NET passes 1) */

  /* The outstanding RECEIVE_FROM_NETWORK, if any. */
  int read_pending;
  PVOID read_ctx;
  PBYTE read_buf;
  ULONG read_len;

  /* Receives: zero-copy (app_buffer_size 0) or into app_buffer. */
  ULONG app_buffer_size;
  unsigned char app_buffer[4096];
  int receive_queued;   /* Receives queued and not yet indicated */
  int rearm;            /* queue a new Receive after every indication except CLOSE */
  uintptr_t receive_seq;
  PVOID expected_receive_ctx;

  event_t events[MAX_EVENTS];
  int event_count;

  int send_completes;
  PVOID last_send_ctx;
  int frames_written;           /* SEND_TO_NETWORK actions */
  int pongs_on_receive_queue;   /* SEND_TO_NETWORK of type PING_PONG handed out on RECEIVE */
  ULONG max_buffers;            /* most buffers in one SEND_TO_NETWORK */
  ULONG max_buffer_length;      /* longest single buffer in a SEND_TO_NETWORK */
  const unsigned char* watch_payload; /* app payload expected to be handed out without a copy */
  int saw_watch_payload;
  HRESULT error; /* the first failed GetAction */
  int protocol_errors; /* actions that broke the documented rules (counted as failed checks) */
} endpoint_t;

static void ep_init(endpoint_t* ep, const char* name) {
  memset(ep, 0, sizeof *ep);
  ep->name = name;
  ep->send_capacity = 2;
  ep->recv_capacity = 1;
  ep->rearm = 1;
}

static void ep_clear_events(endpoint_t* ep) {
  int i;
  for (i = 0; i < ep->event_count; ++i) free(ep->events[i].data);
  ep->event_count = 0;
}

static void ep_free(endpoint_t* ep) {
  ep_clear_events(ep);
  free(ep->inbox);
  ep->inbox = NULL;
  if (ep->h != NULL) WebSocketDeleteHandle(ep->h);
  ep->h = NULL;
}

static void inbox_append(endpoint_t* ep, const unsigned char* p, size_t n) {
  if (n == 0) return;
  if (ep->inbox_read == ep->inbox_len) ep->inbox_read = ep->inbox_len = 0;
  if (ep->inbox_len + n > ep->inbox_cap) {
    size_t cap = ep->inbox_cap ? ep->inbox_cap : 4096;
    while (cap < ep->inbox_len + n) cap *= 2;
    ep->inbox = (unsigned char*)realloc(ep->inbox, cap);
    if (ep->inbox == NULL) abort();
    ep->inbox_cap = cap;
  }
  memcpy(ep->inbox + ep->inbox_len, p, n);
  ep->inbox_len += n;
}

static void rule(endpoint_t* ep, int ok, const char* what) {
  if (!ok) {
    ++ep->protocol_errors;
    ++g_failed;
    printf("FAIL [%s] %s: %s\n", g_section, ep->name, what);
  }
}

static HRESULT queue_receive(endpoint_t* ep) {
  WEB_SOCKET_BUFFER b;
  HRESULT hr;
  PVOID ctx = (PVOID)(uintptr_t)(0x5000 + ++ep->receive_seq);
  if (ep->app_buffer_size != 0) {
    b.Data.pbBuffer = ep->app_buffer;
    b.Data.ulBufferLength = ep->app_buffer_size;
    hr = WebSocketReceive(ep->h, &b, ctx);
  } else {
    hr = WebSocketReceive(ep->h, NULL, ctx);
  }
  if (SUCCEEDED(hr)) {
    if (ep->receive_queued == 0) ep->expected_receive_ctx = ctx;
    ++ep->receive_queued;
  }
  return hr;
}

/* Completes the outstanding read if there is something to give it. Returns 1 on progress. */
static int feed(endpoint_t* ep) {
  size_t avail;
  ULONG n;
  if (!ep->read_pending) return 0;
  avail = ep->inbox_len - ep->inbox_read;
  if (avail == 0 && !ep->peer_eof) return 0;
  n = ep->read_len;
  if (ep->read_limit != 0 && n > ep->read_limit) n = ep->read_limit;
  if (n > avail) n = (ULONG)avail;
  if (n != 0) memcpy(ep->read_buf, ep->inbox + ep->inbox_read, n);
  ep->inbox_read += n;
  ep->read_pending = 0;
  WebSocketCompleteAction(ep->h, ep->read_ctx, n);
  return 1;
}

static void record_indication(endpoint_t* ep, WEB_SOCKET_BUFFER_TYPE t, const WEB_SOCKET_BUFFER* b,
                              ULONG n, PVOID app) {
  event_t* e;
  const unsigned char* p;
  ULONG len;
  if (ep->event_count >= MAX_EVENTS) {
    rule(ep, 0, "too many indications");
    return;
  }
  e = &ep->events[ep->event_count++];
  memset(e, 0, sizeof *e);
  e->type = t;
  e->app_context = app;
  rule(ep, app == ep->expected_receive_ctx, "INDICATE_RECEIVE_COMPLETE carries the Receive's context");
  if (t == WEB_SOCKET_CLOSE_BUFFER_TYPE) {
    rule(ep, n >= 1, "a CLOSE indication fills one buffer");
    p = b[0].CloseStatus.pbReason;
    len = b[0].CloseStatus.ulReasonLength;
    e->status = b[0].CloseStatus.usStatus;
    rule(ep, len <= WEB_SOCKET_MAX_CLOSE_REASON_LENGTH, "close reason at most 123 bytes");
  } else {
    rule(ep, n == 1, "a data indication fills exactly one buffer");
    p = b[0].Data.pbBuffer;
    len = b[0].Data.ulBufferLength;
    if (ep->app_buffer_size != 0 && len != 0) {
      rule(ep, p >= ep->app_buffer && p + len <= ep->app_buffer + ep->app_buffer_size,
           "an app-buffer Receive is indicated inside the app's buffer");
    }
  }
  rule(ep, len == 0 || p != NULL, "indicated bytes have a pointer");
  e->length = len;
  e->data = (unsigned char*)malloc(len + 1u);
  if (e->data == NULL) abort();
  if (len != 0 && p != NULL) memcpy(e->data, p, len);
  e->data[len] = 0;
}

/* One GetAction on `q` and its work. Returns 1 when something happened. */
static int step(endpoint_t* ep, WEB_SOCKET_ACTION_QUEUE q) {
  WEB_SOCKET_BUFFER b[4];
  ULONG cap = q == WEB_SOCKET_SEND_ACTION_QUEUE ? ep->send_capacity : ep->recv_capacity;
  ULONG n = cap, i, total = 0;
  WEB_SOCKET_ACTION a = WEB_SOCKET_NO_ACTION;
  WEB_SOCKET_BUFFER_TYPE t = WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE;
  PVOID app = NULL, act = NULL;
  HRESULT hr;
  if (ep->h == NULL) return 0;
  if (q != WEB_SOCKET_SEND_ACTION_QUEUE && ep->read_pending) return 0;
  memset(b, 0, sizeof b);
  hr = WebSocketGetAction(ep->h, q, b, &n, &a, &t, &app, &act);
  if (FAILED(hr)) {
    if (ep->error == S_OK) ep->error = hr;
    return 0;
  }
  switch (a) {
    case WEB_SOCKET_NO_ACTION:
      return 0;
    case WEB_SOCKET_SEND_TO_NETWORK_ACTION:
      rule(ep, n >= 1 && n <= cap, "SEND_TO_NETWORK buffer count within the capacity");
      if (n > cap) n = cap;
      for (i = 0; i < n; ++i) {
        total += b[i].Data.ulBufferLength;
        if (b[i].Data.ulBufferLength > ep->max_buffer_length)
          ep->max_buffer_length = b[i].Data.ulBufferLength;
        if (ep->watch_payload != NULL && b[i].Data.pbBuffer == ep->watch_payload)
          ep->saw_watch_payload = 1;
        inbox_append(ep->peer, b[i].Data.pbBuffer, b[i].Data.ulBufferLength);
      }
      if (n > ep->max_buffers) ep->max_buffers = n;
      ++ep->frames_written;
      if (q == WEB_SOCKET_RECEIVE_ACTION_QUEUE && t == WEB_SOCKET_PING_PONG_BUFFER_TYPE)
        ++ep->pongs_on_receive_queue;
      WebSocketCompleteAction(ep->h, act, total);
      return 1;
    case WEB_SOCKET_INDICATE_SEND_COMPLETE_ACTION:
      ++ep->send_completes;
      ep->last_send_ctx = app;
      WebSocketCompleteAction(ep->h, act, 0);
      return 1;
    case WEB_SOCKET_RECEIVE_FROM_NETWORK_ACTION:
      rule(ep, q != WEB_SOCKET_SEND_ACTION_QUEUE, "the SEND queue hands out no RECEIVE_FROM_NETWORK");
      rule(ep, n == 1 && b[0].Data.pbBuffer != NULL && b[0].Data.ulBufferLength > 0,
           "RECEIVE_FROM_NETWORK offers one non-empty buffer");
      ep->read_pending = 1;
      ep->read_ctx = act;
      ep->read_buf = b[0].Data.pbBuffer;
      ep->read_len = b[0].Data.ulBufferLength;
      feed(ep);
      return 1;
    case WEB_SOCKET_INDICATE_RECEIVE_COMPLETE_ACTION:
      rule(ep, q != WEB_SOCKET_SEND_ACTION_QUEUE,
           "the SEND queue hands out no INDICATE_RECEIVE_COMPLETE");
      record_indication(ep, t, b, n, app);
      WebSocketCompleteAction(ep->h, act, 0);
      if (ep->receive_queued > 0) --ep->receive_queued;
      ep->expected_receive_ctx = (PVOID)((uintptr_t)app + 1u);
      if (ep->rearm && t != WEB_SOCKET_CLOSE_BUFFER_TYPE && ep->receive_queued == 0)
        rule(ep, SUCCEEDED(queue_receive(ep)), "Receive after an indication");
      return 1;
    default:
      rule(ep, 0, "unknown action");
      return 0;
  }
}

/* Pumps both endpoints until nothing moves. Returns 1 when it settled. */
static int pump(endpoint_t* x, endpoint_t* y) {
  long iter;
  for (iter = 0; iter < 2000000; ++iter) {
    int progress = 0;
    progress |= step(x, WEB_SOCKET_SEND_ACTION_QUEUE);
    progress |= step(x, WEB_SOCKET_RECEIVE_ACTION_QUEUE);
    progress |= feed(x);
    progress |= step(y, WEB_SOCKET_SEND_ACTION_QUEUE);
    progress |= step(y, WEB_SOCKET_RECEIVE_ACTION_QUEUE);
    progress |= feed(y);
    if (!progress) return 1;
  }
  CHECK(!"the action loop settles");
  return 0;
}

/* Concatenates events[from..] up to and including the first *_MESSAGE (or CLOSE/PING_PONG).
 * Returns the number of chunks used (0 if no complete message); *out is malloc'ed. */
static int assemble(const endpoint_t* ep, int from, unsigned char** out, size_t* len,
                    WEB_SOCKET_BUFFER_TYPE* last_type, ULONG* max_chunk, int* fragment_types_ok) {
  int i;
  size_t total = 0;
  *out = NULL;
  *len = 0;
  *max_chunk = 0;
  *fragment_types_ok = 1;
  for (i = from; i < ep->event_count; ++i) {
    WEB_SOCKET_BUFFER_TYPE t = ep->events[i].type;
    total += ep->events[i].length;
    if (ep->events[i].length > *max_chunk) *max_chunk = ep->events[i].length;
    if (t != WEB_SOCKET_UTF8_FRAGMENT_BUFFER_TYPE && t != WEB_SOCKET_BINARY_FRAGMENT_BUFFER_TYPE)
      break;
  }
  if (i == ep->event_count) return 0;
  *out = (unsigned char*)malloc(total + 1);
  if (*out == NULL) abort();
  *last_type = ep->events[i].type;
  {
    int j;
    size_t o = 0;
    for (j = from; j <= i; ++j) {
      memcpy(*out + o, ep->events[j].data, ep->events[j].length);
      o += ep->events[j].length;
      if (j < i) {
        WEB_SOCKET_BUFFER_TYPE want = *last_type == WEB_SOCKET_UTF8_MESSAGE_BUFFER_TYPE
                                          ? WEB_SOCKET_UTF8_FRAGMENT_BUFFER_TYPE
                                          : WEB_SOCKET_BINARY_FRAGMENT_BUFFER_TYPE;
        if (ep->events[j].type != want) *fragment_types_ok = 0;
      }
    }
  }
  *len = total;
  return i - from + 1;
}

/* Checks that endpoint `ep` received a message equal to data/len of type `type`, in chunks no
 * larger than `max_chunk`, starting at event `from`, and (unless more_follow) nothing after it. */
static void expect_message(endpoint_t* ep, int from, WEB_SOCKET_BUFFER_TYPE type,
                           const unsigned char* data, size_t len, ULONG max_chunk, int line,
                           int more_follow) {
  unsigned char* got;
  size_t got_len;
  WEB_SOCKET_BUFFER_TYPE last = WEB_SOCKET_CLOSE_BUFFER_TYPE;
  ULONG biggest;
  int types_ok;
  int chunks = assemble(ep, from, &got, &got_len, &last, &biggest, &types_ok);
  char what[160];
  snprintf(what, sizeof what, "%s received a complete message (expect_message at line %d)",
           ep->name, line);
  if (!check_impl(chunks > 0, what, __LINE__)) return;
  snprintf(what, sizeof what, "%s: final chunk type 0x%08lX, expected 0x%08lX (line %d)", ep->name,
           (unsigned long)last, (unsigned long)type, line);
  check_impl(last == type, what, __LINE__);
  snprintf(what, sizeof what, "%s: %lu bytes received, %lu sent; contents equal (line %d)",
           ep->name, (unsigned long)got_len, (unsigned long)len, line);
  check_impl(got_len == len && (len == 0 || memcmp(got, data, len) == 0), what, __LINE__);
  snprintf(what, sizeof what, "%s: non-final chunks are *_FRAGMENT of the same kind (line %d)",
           ep->name, line);
  check_impl(types_ok, what, __LINE__);
  snprintf(what, sizeof what, "%s: largest chunk %lu <= %lu (line %d)", ep->name,
           (unsigned long)biggest, (unsigned long)max_chunk, line);
  check_impl(biggest <= max_chunk, what, __LINE__);
  snprintf(what, sizeof what, "%s: no indication after the message (line %d)", ep->name, line);
  check_impl(more_follow || from + chunks == ep->event_count, what, __LINE__);
  free(got);
}

static HRESULT send_data(endpoint_t* ep, WEB_SOCKET_BUFFER_TYPE type, const void* data, size_t len,
                         PVOID ctx) {
  WEB_SOCKET_BUFFER b;
  b.Data.pbBuffer = (PBYTE)data;
  b.Data.ulBufferLength = (ULONG)len;
  return WebSocketSend(ep->h, type, &b, ctx);
}

static HRESULT send_on(WEB_SOCKET_HANDLE h, WEB_SOCKET_BUFFER_TYPE type, const void* data,
                       size_t len) {
  WEB_SOCKET_BUFFER b;
  b.Data.pbBuffer = (PBYTE)data;
  b.Data.ulBufferLength = (ULONG)len;
  return WebSocketSend(h, type, &b, NULL);
}

static HRESULT send_close(endpoint_t* ep, USHORT status, const char* reason, PVOID ctx) {
  WEB_SOCKET_BUFFER b;
  size_t n = reason ? strlen(reason) : 0;
  b.CloseStatus.pbReason = n ? (PBYTE)reason : NULL;
  b.CloseStatus.ulReasonLength = (ULONG)n;
  b.CloseStatus.usStatus = status;
  return WebSocketSend(ep->h, WEB_SOCKET_CLOSE_BUFFER_TYPE, &b, ctx);
}

/* ---------------------------------------------------------------------------------------------
 * The handshake
 * ------------------------------------------------------------------------------------------- */

static char k_connection[] = "Connection";
static char k_upgrade_value[] = "Upgrade";
static char k_upgrade[] = "Upgrade";
static char k_websocket[] = "websocket";

static WEB_SOCKET_HTTP_HEADER g_initial_headers[2] = {
    {k_connection, 10, k_upgrade_value, 7},
    {k_upgrade, 7, k_websocket, 9},
};

/* Creates both handles and runs the handshake as .NET does. Returns 1 when both are open, each
 * with one Receive queued. */
static int open_pair(endpoint_t* c, endpoint_t* s, WEB_SOCKET_PROPERTY* cprops, ULONG ncp,
                     WEB_SOCKET_PROPERTY* sprops, ULONG nsp, int end_server_handshake) {
  PWEB_SOCKET_HTTP_HEADER add = NULL, resp = NULL;
  ULONG nadd = 0, nresp = 0, i;
  header_list request, response;
  int key, accept, ok = 1;
  char expected_accept[32];

  c->peer = s;
  s->peer = c;
  if (!CHECK_HR(WebSocketCreateClientHandle(cprops, ncp, &c->h), S_OK)) return 0;
  if (!CHECK_HR(WebSocketCreateServerHandle(sprops, nsp, &s->h), S_OK)) return 0;
  CHECK(c->h != NULL && s->h != NULL && c->h != s->h);

  if (!CHECK_HR(WebSocketBeginClientHandshake(c->h, NULL, 0, NULL, 0, g_initial_headers, 2, &add,
                                              &nadd),
                S_OK))
    return 0;
  CHECK(add != NULL);
  /* README: exactly Connection, Upgrade, Sec-WebSocket-Key, Sec-WebSocket-Version, in order. */
  CHECK(nadd == 4);
  if (add == NULL) return 0;
  if (nadd == 4) {
    CHECK(ieq(add[0].pcName, add[0].ulNameLength, "Connection"));
    CHECK(ieq(add[1].pcName, add[1].ulNameLength, "Upgrade"));
    CHECK(ieq(add[2].pcName, add[2].ulNameLength, "Sec-WebSocket-Key"));
    CHECK(ieq(add[3].pcName, add[3].ulNameLength, "Sec-WebSocket-Version"));
  }
  CHECK(value_is(add, nadd, "Sec-WebSocket-Version", "13"));
  CHECK(value_is(add, nadd, "Upgrade", "websocket"));
  CHECK(value_is(add, nadd, "Connection", "Upgrade"));
  key = find_header(add, nadd, "Sec-WebSocket-Key");
  if (!CHECK(key >= 0)) return 0;
  CHECK(add[key].ulValueLength == 24 && add[key].pcValue[22] == '=' && add[key].pcValue[23] == '=');
  accept_for_key(add[key].pcValue, add[key].ulValueLength, expected_accept);

  /* The request: the initial headers, each replaced by a same-named returned one, then the rest
   * of the returned ones, plus Host (what an app writes after its GET line). */
  memset(&request, 0, sizeof request);
  for (i = 0; i < 2; ++i) {
    char name[64];
    size_t nl = g_initial_headers[i].ulNameLength;
    int j;
    memcpy(name, g_initial_headers[i].pcName, nl);
    name[nl] = 0;
    j = find_header(add, nadd, name);
    if (j >= 0)
      hl_add(&request, add[j].pcName, add[j].ulNameLength, add[j].pcValue, add[j].ulValueLength);
    else
      hl_add(&request, name, nl, g_initial_headers[i].pcValue, g_initial_headers[i].ulValueLength);
  }
  for (i = 0; i < nadd; ++i) {
    char name[64];
    size_t nl = add[i].ulNameLength < 63 ? add[i].ulNameLength : 63;
    memcpy(name, add[i].pcName, nl);
    name[nl] = 0;
    if (find_header(g_initial_headers, 2, name) >= 0) continue;
    hl_add(&request, add[i].pcName, add[i].ulNameLength, add[i].pcValue, add[i].ulValueLength);
  }
  hl_add_str(&request, "Host", "127.0.0.1:8080");
  CHECK(request.count == 5);

  if (!CHECK_HR(WebSocketBeginServerHandshake(s->h, NULL, NULL, 0, request.h, request.count, &resp,
                                              &nresp),
                S_OK))
    return 0;
  CHECK(resp != NULL);
  if (resp == NULL) return 0;
  CHECK(nresp == 3);
  CHECK(value_is(resp, nresp, "Connection", "Upgrade"));
  CHECK(value_is(resp, nresp, "Upgrade", "websocket"));
  accept = find_header(resp, nresp, "Sec-WebSocket-Accept");
  if (!CHECK(accept >= 0)) return 0;
  CHECK(resp[accept].ulValueLength == strlen(expected_accept) &&
        memcmp(resp[accept].pcValue, expected_accept, resp[accept].ulValueLength) == 0);
  CHECK(find_header(resp, nresp, "Sec-WebSocket-Protocol") < 0);
  CHECK(find_header(resp, nresp, "Sec-WebSocket-Extensions") < 0);

  /* Copy the response (EndServerHandshake frees the array), as an app sends it on the wire. */
  memset(&response, 0, sizeof response);
  for (i = 0; i < nresp; ++i)
    hl_add(&response, resp[i].pcName, resp[i].ulNameLength, resp[i].pcValue, resp[i].ulValueLength);
  if (end_server_handshake) {
    CHECK_HR(WebSocketEndServerHandshake(s->h), S_OK);
    CHECK_HR(WebSocketEndServerHandshake(s->h), HR_E_INVALID_OPERATION);
  }

  /* .NET: all out-pointers NULL. */
  if (!CHECK_HR(WebSocketEndClientHandshake(c->h, response.h, response.count, NULL, NULL, NULL),
                S_OK))
    ok = 0;

  /* .NET keeps a Receive outstanding at all times. */
  if (ok) {
    CHECK_HR(queue_receive(c), S_OK);
    CHECK_HR(queue_receive(s), S_OK);
    pump(c, s);
    CHECK(c->event_count == 0 && s->event_count == 0);
    CHECK(c->error == S_OK && s->error == S_OK);
  }
  return ok;
}

/* ---------------------------------------------------------------------------------------------
 * Loopback scenarios
 * ------------------------------------------------------------------------------------------- */

static void fill_pattern(unsigned char* p, size_t n, unsigned seed) {
  size_t i;
  for (i = 0; i < n; ++i) p[i] = (unsigned char)((i * 31u + seed * 7u + (i >> 8)) & 0xFF);
}

/* .NET-like property sets. */
static ULONG g_client_rbs = 1024, g_client_sbs = 512;
static ULONG g_server_rbs = 512, g_server_sbs = 16;
static WEB_SOCKET_PROPERTY g_client_props[2] = {
    {WEB_SOCKET_RECEIVE_BUFFER_SIZE_PROPERTY_TYPE, &g_client_rbs, sizeof(ULONG)},
    {WEB_SOCKET_SEND_BUFFER_SIZE_PROPERTY_TYPE, &g_client_sbs, sizeof(ULONG)},
};
static WEB_SOCKET_PROPERTY g_server_props[2] = {
    {WEB_SOCKET_RECEIVE_BUFFER_SIZE_PROPERTY_TYPE, &g_server_rbs, sizeof(ULONG)},
    {WEB_SOCKET_SEND_BUFFER_SIZE_PROPERTY_TYPE, &g_server_sbs, sizeof(ULONG)},
};

static void test_data_exchange(void) {
  endpoint_t c, s;
  static unsigned char big_down[3000], big_up[5000];
  int from;

  g_section = "data";
  ep_init(&c, "client");
  ep_init(&s, "server");
  s.app_buffer_size = 300; /* the server receives into an app buffer, the client zero-copy */
  if (!open_pair(&c, &s, g_client_props, 2, g_server_props, 2, 1)) goto done;

  /* Text, client -> server. */
  g_section = "text";
  from = s.event_count;
  CHECK_HR(send_data(&c, WEB_SOCKET_UTF8_MESSAGE_BUFFER_TYPE, "hello", 5, (PVOID)0xC1), S_OK);
  pump(&c, &s);
  CHECK(c.send_completes == 1 && c.last_send_ctx == (PVOID)0xC1);
  expect_message(&s, from, WEB_SOCKET_UTF8_MESSAGE_BUFFER_TYPE, (const unsigned char*)"hello", 5,
                 300, __LINE__, 0);

  /* Empty text, server -> client. */
  g_section = "empty";
  from = c.event_count;
  CHECK_HR(send_data(&s, WEB_SOCKET_UTF8_MESSAGE_BUFFER_TYPE, NULL, 0, (PVOID)0x51), S_OK);
  pump(&c, &s);
  CHECK(s.send_completes == 1 && s.last_send_ctx == (PVOID)0x51);
  expect_message(&c, from, WEB_SOCKET_UTF8_MESSAGE_BUFFER_TYPE, NULL, 0, 1024, __LINE__, 0);

  /* Binary, server -> client: unmasked, so header + the app's own payload (two buffers); the
   * client gets it zero-copy in chunks of at most its receive buffer size. */
  g_section = "binary down";
  fill_pattern(big_down, sizeof big_down, 1);
  from = c.event_count;
  s.watch_payload = big_down;
  CHECK_HR(send_data(&s, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, big_down, sizeof big_down,
                     (PVOID)0x52),
           S_OK);
  pump(&c, &s);
  CHECK(s.send_completes == 2 && s.last_send_ctx == (PVOID)0x52);
  CHECK(s.max_buffers == 2);
  CHECK(s.saw_watch_payload);
  expect_message(&c, from, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, big_down, sizeof big_down,
                 g_client_rbs, __LINE__, 0);
  CHECK(c.event_count - from >= 3);

  /* Binary, client -> server: masked, so it goes out through the 512-byte send area in several
   * SEND_TO_NETWORK actions; the server receives into its 300-byte app buffer. */
  g_section = "binary up";
  fill_pattern(big_up, sizeof big_up, 2);
  from = s.event_count;
  c.frames_written = 0;
  c.max_buffer_length = 0;
  CHECK_HR(send_data(&c, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, big_up, sizeof big_up, (PVOID)0xC2),
           S_OK);
  pump(&c, &s);
  CHECK(c.send_completes == 2 && c.last_send_ctx == (PVOID)0xC2);
  CHECK(c.frames_written >= (int)(sizeof big_up / g_client_sbs));
  CHECK(c.max_buffer_length <= g_client_sbs);
  expect_message(&s, from, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, big_up, sizeof big_up, 300,
                 __LINE__, 0);

  /* The same, with the bytes arriving 7 at a time (frame headers split across reads). */
  g_section = "split reads";
  s.read_limit = 7;
  c.read_limit = 7;
  from = s.event_count;
  CHECK_HR(send_data(&c, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, big_up, 1000, (PVOID)0xC3), S_OK);
  CHECK_HR(send_data(&c, WEB_SOCKET_UTF8_MESSAGE_BUFFER_TYPE, "after", 5, (PVOID)0xC4), S_OK);
  pump(&c, &s);
  CHECK(c.send_completes == 4 && c.last_send_ctx == (PVOID)0xC4);
  expect_message(&s, from, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, big_up, 1000, 300, __LINE__, 1);
  {
    /* The text message follows the binary one's chunks. */
    int k = from;
    while (k < s.event_count && s.events[k].type != WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE) ++k;
    if (CHECK(k + 1 < s.event_count)) {
      CHECK(s.events[k + 1].type == WEB_SOCKET_UTF8_MESSAGE_BUFFER_TYPE);
      CHECK(s.events[k + 1].length == 5 && memcmp(s.events[k + 1].data, "after", 5) == 0);
    }
  }
  s.read_limit = 0;
  c.read_limit = 0;

  /* Fragmented text, client -> server, with a 2-byte UTF-8 sequence split across fragments. */
  g_section = "fragmented text";
  from = s.event_count;
  CHECK_HR(send_data(&c, WEB_SOCKET_UTF8_FRAGMENT_BUFFER_TYPE, "Hello, w\xC3", 9, (PVOID)0xC5), S_OK);
  CHECK_HR(send_data(&c, WEB_SOCKET_UTF8_FRAGMENT_BUFFER_TYPE, "\xB6", 1, (PVOID)0xC6), S_OK);
  /* Text and binary do not mix within one message. */
  CHECK_HR(send_data(&c, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, "x", 1, NULL),
           HR_E_INVALID_PROTOCOL_OPERATION);
  CHECK_HR(send_data(&c, WEB_SOCKET_UTF8_MESSAGE_BUFFER_TYPE, "rld", 3, (PVOID)0xC7), S_OK);
  pump(&c, &s);
  CHECK(c.send_completes == 7 && c.last_send_ctx == (PVOID)0xC7);
  expect_message(&s, from, WEB_SOCKET_UTF8_MESSAGE_BUFFER_TYPE,
                 (const unsigned char*)"Hello, w\xC3\xB6rld", 13, 300, __LINE__, 0);

  /* Fragmented binary, server -> client, with an empty middle fragment (NULL pointer, length 0). */
  g_section = "fragmented binary";
  from = c.event_count;
  CHECK_HR(send_data(&s, WEB_SOCKET_BINARY_FRAGMENT_BUFFER_TYPE, big_down, 10, (PVOID)0x53), S_OK);
  CHECK_HR(send_data(&s, WEB_SOCKET_BINARY_FRAGMENT_BUFFER_TYPE, NULL, 0, (PVOID)0x54), S_OK);
  CHECK_HR(send_data(&s, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, big_down + 10, 5, (PVOID)0x55),
           S_OK);
  pump(&c, &s);
  CHECK(s.send_completes == 5 && s.last_send_ctx == (PVOID)0x55);
  expect_message(&c, from, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, big_down, 15, 1024, __LINE__, 0);

  /* Ping from the client: the server answers by itself on its RECEIVE queue and indicates
   * nothing; the client sees the pong as PING_PONG. */
  g_section = "ping";
  {
    int server_events = s.event_count;
    from = c.event_count;
    CHECK_HR(WebSocketSend(c.h, WEB_SOCKET_PING_PONG_BUFFER_TYPE, NULL, (PVOID)0xC8), S_OK);
    pump(&c, &s);
    CHECK(c.send_completes == 8 && c.last_send_ctx == (PVOID)0xC8);
    CHECK(s.event_count == server_events);
    CHECK(s.pongs_on_receive_queue == 1);
    if (CHECK(c.event_count == from + 1)) {
      CHECK(c.events[from].type == WEB_SOCKET_PING_PONG_BUFFER_TYPE);
      CHECK(c.events[from].length == 0);
    }
    /* And from the server. */
    from = s.event_count;
    CHECK_HR(WebSocketSend(s.h, WEB_SOCKET_PING_PONG_BUFFER_TYPE, NULL, (PVOID)0x56), S_OK);
    pump(&c, &s);
    CHECK(s.send_completes == 6 && s.last_send_ctx == (PVOID)0x56);
    CHECK(c.pongs_on_receive_queue == 1);
    if (CHECK(s.event_count == from + 1))
      CHECK(s.events[from].type == WEB_SOCKET_PING_PONG_BUFFER_TYPE && s.events[from].length == 0);
    /* An unsolicited pong (the keepalive) is indicated as PING_PONG and not answered. */
    from = s.event_count;
    server_events = c.event_count;
    CHECK_HR(WebSocketSend(c.h, WEB_SOCKET_UNSOLICITED_PONG_BUFFER_TYPE, NULL, (PVOID)0xC9), S_OK);
    pump(&c, &s);
    CHECK(c.send_completes == 9 && c.last_send_ctx == (PVOID)0xC9);
    if (CHECK(s.event_count == from + 1))
      CHECK(s.events[from].type == WEB_SOCKET_PING_PONG_BUFFER_TYPE);
    CHECK(c.event_count == server_events);
    CHECK(s.pongs_on_receive_queue == 1);
    /* PING_PONG and UNSOLICITED_PONG take no buffer. */
    CHECK_HR(send_data(&c, WEB_SOCKET_PING_PONG_BUFFER_TYPE, "x", 1, NULL), HR_E_INVALIDARG);
    CHECK_HR(send_data(&c, WEB_SOCKET_UNSOLICITED_PONG_BUFFER_TYPE, "x", 1, NULL), HR_E_INVALIDARG);
  }

  /* Close started by the client. */
  g_section = "close from client";
  from = s.event_count;
  CHECK_HR(send_close(&c, 1000, "bye", (PVOID)0xCA), S_OK);
  CHECK_HR(send_data(&c, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, "x", 1, NULL),
           HR_E_INVALID_PROTOCOL_OPERATION);
  pump(&c, &s);
  CHECK(c.send_completes == 10 && c.last_send_ctx == (PVOID)0xCA);
  if (CHECK(s.event_count == from + 1)) {
    CHECK(s.events[from].type == WEB_SOCKET_CLOSE_BUFFER_TYPE);
    CHECK(s.events[from].status == 1000);
    CHECK(s.events[from].length == 3 && memcmp(s.events[from].data, "bye", 3) == 0);
  }
  CHECK_HR(queue_receive(&s), HR_E_INVALID_PROTOCOL_OPERATION);
  /* The server may still send data (CloseReceived), then answers with its close. */
  from = c.event_count;
  CHECK_HR(send_data(&s, WEB_SOCKET_UTF8_MESSAGE_BUFFER_TYPE, "late", 4, (PVOID)0x57), S_OK);
  CHECK_HR(send_close(&s, 1000, NULL, (PVOID)0x58), S_OK);
  CHECK_HR(send_close(&s, 1000, NULL, NULL), HR_E_INVALID_PROTOCOL_OPERATION);
  pump(&c, &s);
  CHECK(s.send_completes == 8 && s.last_send_ctx == (PVOID)0x58);
  if (CHECK(c.event_count == from + 2)) {
    CHECK(c.events[from].type == WEB_SOCKET_UTF8_MESSAGE_BUFFER_TYPE);
    CHECK(c.events[from].length == 4 && memcmp(c.events[from].data, "late", 4) == 0);
    CHECK(c.events[from + 1].type == WEB_SOCKET_CLOSE_BUFFER_TYPE);
    CHECK(c.events[from + 1].status == 1000 && c.events[from + 1].length == 0);
  }
  CHECK_HR(queue_receive(&c), HR_E_INVALID_PROTOCOL_OPERATION);
  CHECK_HR(WebSocketSend(c.h, WEB_SOCKET_PING_PONG_BUFFER_TYPE, NULL, NULL),
           HR_E_INVALID_PROTOCOL_OPERATION);
  CHECK(c.error == S_OK && s.error == S_OK);
  CHECK(c.protocol_errors == 0 && s.protocol_errors == 0);

done:
  ep_free(&c);
  ep_free(&s);
}

static void test_close_from_server(void) {
  endpoint_t c, s;
  /* The server as .NET creates it: receive size, send size 16 and its own buffer. */
  static uint64_t server_memory[(512 + 16 + 144) / 8];
  PVOID server_memory_ptr = server_memory;
  WEB_SOCKET_PROPERTY sprops[3];
  int from;

  g_section = "close from server";
  sprops[0] = g_server_props[0];
  sprops[1] = g_server_props[1];
  sprops[2].Type = WEB_SOCKET_ALLOCATED_BUFFER_PROPERTY_TYPE;
  sprops[2].pvValue = &server_memory_ptr;
  sprops[2].ulValueSize = (ULONG)sizeof server_memory;
  ep_init(&c, "client");
  ep_init(&s, "server");
  c.send_capacity = 1; /* everything in single buffers */
  s.send_capacity = 1;
  if (!open_pair(&c, &s, g_client_props, 2, sprops, 3, 0)) goto done;

  from = c.event_count;
  CHECK_HR(send_data(&s, WEB_SOCKET_UTF8_MESSAGE_BUFFER_TYPE, "x-y-z", 5, (PVOID)0x61), S_OK);
  pump(&c, &s);
  CHECK(s.max_buffers == 1);
  expect_message(&c, from, WEB_SOCKET_UTF8_MESSAGE_BUFFER_TYPE, (const unsigned char*)"x-y-z", 5,
                 1024, __LINE__, 0);

  /* An empty close frame (NULL buffer, as .NET sends for 1005) is indicated as 1005. */
  from = c.event_count;
  CHECK_HR(WebSocketSend(s.h, WEB_SOCKET_CLOSE_BUFFER_TYPE, NULL, (PVOID)0x62), S_OK);
  pump(&c, &s);
  CHECK(s.send_completes == 2 && s.last_send_ctx == (PVOID)0x62);
  if (CHECK(c.event_count == from + 1)) {
    CHECK(c.events[from].type == WEB_SOCKET_CLOSE_BUFFER_TYPE);
    CHECK(c.events[from].status == 1005);
    CHECK(c.events[from].length == 0);
  }
  /* The server's close is sent: it may still receive, but send only control frames. */
  CHECK_HR(send_data(&s, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, "x", 1, NULL),
           HR_E_INVALID_PROTOCOL_OPERATION);
  from = s.event_count;
  CHECK_HR(send_close(&c, 1001, "going away", (PVOID)0xD1), S_OK);
  pump(&c, &s);
  CHECK(c.send_completes == 1 && c.last_send_ctx == (PVOID)0xD1);
  if (CHECK(s.event_count == from + 1)) {
    CHECK(s.events[from].type == WEB_SOCKET_CLOSE_BUFFER_TYPE);
    CHECK(s.events[from].status == 1001);
    CHECK(s.events[from].length == 10 && memcmp(s.events[from].data, "going away", 10) == 0);
  }
  CHECK_HR(queue_receive(&s), HR_E_INVALID_PROTOCOL_OPERATION);
  CHECK(c.error == S_OK && s.error == S_OK);
  CHECK(c.protocol_errors == 0 && s.protocol_errors == 0);

done:
  ep_free(&c);
  ep_free(&s);
}

/* The peer closes the connection without a close frame: CLOSE 1006; then Abort. */
static void test_eof_and_abort(void) {
  endpoint_t c, s;
  int from;

  g_section = "eof";
  ep_init(&c, "client");
  ep_init(&s, "server");
  if (!open_pair(&c, &s, g_client_props, 2, g_server_props, 2, 1)) goto done;
  from = c.event_count;
  c.peer_eof = 1;
  pump(&c, &s);
  if (CHECK(c.event_count == from + 1)) {
    CHECK(c.events[from].type == WEB_SOCKET_CLOSE_BUFFER_TYPE);
    CHECK(c.events[from].status == 1006);
    CHECK(c.events[from].length == 0);
  }
  CHECK_HR(queue_receive(&c), HR_E_INVALID_PROTOCOL_OPERATION);

  /* Abort with a Receive outstanding (its RECEIVE_FROM_NETWORK handed out): .NET completes the
   * outstanding action with 0 and drains both queues. */
  g_section = "abort";
  from = s.event_count;
  CHECK(s.read_pending);
  WebSocketAbortHandle(s.h);
  CHECK_HR(send_data(&s, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, "x", 1, NULL),
           HR_E_INVALID_PROTOCOL_OPERATION);
  CHECK_HR(queue_receive(&s), HR_E_INVALID_PROTOCOL_OPERATION);
  if (s.read_pending) {
    s.read_pending = 0;
    WebSocketCompleteAction(s.h, s.read_ctx, 0);
  }
  s.rearm = 0;
  while (step(&s, WEB_SOCKET_SEND_ACTION_QUEUE)) {
  }
  while (step(&s, WEB_SOCKET_RECEIVE_ACTION_QUEUE)) {
  }
  if (CHECK(s.event_count == from + 1)) {
    CHECK(s.events[from].type == WEB_SOCKET_CLOSE_BUFFER_TYPE);
    CHECK(s.events[from].status == 1006);
  }
  CHECK(s.protocol_errors == 0 && c.protocol_errors == 0);

done:
  ep_free(&c);
  ep_free(&s);
}

/* ---------------------------------------------------------------------------------------------
 * Error cases of the C ABI
 * ------------------------------------------------------------------------------------------- */

static void test_error_numbers(void) {
  g_section = "numbers";
  CHECK((uint32_t)E_INVALIDARG == HR_E_INVALIDARG);
  CHECK((uint32_t)HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER) == HR_INSUFFICIENT_BUFFER);
  CHECK((uint32_t)E_INVALID_OPERATION == HR_E_INVALID_OPERATION);
  CHECK((uint32_t)E_INVALID_PROTOCOL_OPERATION == HR_E_INVALID_PROTOCOL_OPERATION);
  CHECK((uint32_t)E_INVALID_PROTOCOL_FORMAT == HR_E_INVALID_PROTOCOL_FORMAT);
  CHECK(sizeof(WEB_SOCKET_HTTP_HEADER) == 4 * sizeof(void*));
  CHECK(sizeof(ULONG) == 4 && sizeof(USHORT) == 2);
}

static void test_sha1_vector(void) {
  char out[32];
  g_section = "accept vector";
  accept_for_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
  CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
}

static void test_global_property(void) {
  ULONG value = 0, size = 4, versions[4] = {0, 0, 0, 0};
  g_section = "global property";
  CHECK_HR(WebSocketGetGlobalProperty(WEB_SOCKET_KEEPALIVE_INTERVAL_PROPERTY_TYPE, &value, &size),
           S_OK);
  CHECK(value == 30000);
  CHECK(size == 4);

  size = 4;
  CHECK_HR(WebSocketGetGlobalProperty(WEB_SOCKET_SUPPORTED_VERSIONS_PROPERTY_TYPE, versions, &size),
           S_OK);
  CHECK(versions[0] == 13);
  CHECK(size == 4);

  size = 2;
  value = 7;
  CHECK_HR(WebSocketGetGlobalProperty(WEB_SOCKET_KEEPALIVE_INTERVAL_PROPERTY_TYPE, &value, &size),
           HR_INSUFFICIENT_BUFFER);
  CHECK(size == 4);
  size = 0;
  CHECK_HR(WebSocketGetGlobalProperty(WEB_SOCKET_SUPPORTED_VERSIONS_PROPERTY_TYPE, NULL, &size),
           HR_INSUFFICIENT_BUFFER);
  CHECK(size == 4);

  size = 4;
  CHECK_HR(WebSocketGetGlobalProperty(WEB_SOCKET_KEEPALIVE_INTERVAL_PROPERTY_TYPE, &value, NULL),
           HR_E_INVALIDARG);
  CHECK_HR(WebSocketGetGlobalProperty(WEB_SOCKET_KEEPALIVE_INTERVAL_PROPERTY_TYPE, NULL, &size),
           HR_E_INVALIDARG);
  CHECK_HR(WebSocketGetGlobalProperty(WEB_SOCKET_RECEIVE_BUFFER_SIZE_PROPERTY_TYPE, &value, &size),
           HR_E_INVALIDARG);
}

static void test_create_errors(void) {
  WEB_SOCKET_HANDLE h = NULL;
  ULONG small = 100, rbs = 4096, seventy = 70000;
  WEB_SOCKET_PROPERTY p;
  WEB_SOCKET_PROPERTY twice[2];
  g_section = "create";
  CHECK_HR(WebSocketCreateClientHandle(NULL, 0, &h), S_OK);
  CHECK(h != NULL);
  WebSocketDeleteHandle(h);
  CHECK_HR(WebSocketCreateServerHandle(NULL, 0, &h), S_OK);
  WebSocketDeleteHandle(h);
  CHECK_HR(WebSocketCreateClientHandle(NULL, 0, NULL), HR_E_INVALIDARG);
  CHECK_HR(WebSocketCreateServerHandle(NULL, 1, &h), HR_E_INVALIDARG);
  p.Type = WEB_SOCKET_RECEIVE_BUFFER_SIZE_PROPERTY_TYPE;
  p.pvValue = &small;
  p.ulValueSize = 4;
  CHECK_HR(WebSocketCreateClientHandle(&p, 1, &h), HR_E_INVALIDARG);
  p.pvValue = &seventy;
  CHECK_HR(WebSocketCreateClientHandle(&p, 1, &h), HR_E_INVALIDARG);
  p.pvValue = &rbs;
  p.ulValueSize = 8;
  CHECK_HR(WebSocketCreateClientHandle(&p, 1, &h), HR_E_INVALIDARG);
  p.ulValueSize = 4;
  p.Type = WEB_SOCKET_KEEPALIVE_INTERVAL_PROPERTY_TYPE;
  CHECK_HR(WebSocketCreateClientHandle(&p, 1, &h), HR_E_INVALIDARG);
  p.Type = WEB_SOCKET_SEND_BUFFER_SIZE_PROPERTY_TYPE;
  twice[0] = p;
  twice[1] = p;
  CHECK_HR(WebSocketCreateServerHandle(twice, 2, &h), HR_E_INVALIDARG);
}

static void test_bad_handles(void) {
  WEB_SOCKET_HANDLE stale = NULL;
  WEB_SOCKET_HANDLE forged = (WEB_SOCKET_HANDLE)(uintptr_t)0x7777ABCDu;
  WEB_SOCKET_HANDLE handles[3];
  PWEB_SOCKET_HTTP_HEADER add = NULL;
  ULONG nadd = 0, n = 2, size = 4;
  WEB_SOCKET_BUFFER b[2];
  WEB_SOCKET_ACTION a;
  WEB_SOCKET_BUFFER_TYPE t;
  PVOID app, act;
  int i;

  g_section = "bad handles";
  (void)size;
  CHECK_HR(WebSocketCreateClientHandle(NULL, 0, &stale), S_OK);
  WebSocketDeleteHandle(stale);
  handles[0] = stale;
  handles[1] = NULL;
  handles[2] = forged;
  for (i = 0; i < 3; ++i) {
    WEB_SOCKET_HANDLE h = handles[i];
    n = 2;
    CHECK_HR(WebSocketBeginClientHandshake(h, NULL, 0, NULL, 0, g_initial_headers, 2, &add, &nadd),
             HR_E_INVALIDARG);
    CHECK_HR(WebSocketEndClientHandshake(h, g_initial_headers, 2, NULL, NULL, NULL),
             HR_E_INVALIDARG);
    CHECK_HR(WebSocketBeginServerHandshake(h, NULL, NULL, 0, g_initial_headers, 2, &add, &nadd),
             HR_E_INVALIDARG);
    CHECK_HR(WebSocketEndServerHandshake(h), HR_E_INVALIDARG);
    CHECK_HR(WebSocketSend(h, WEB_SOCKET_PING_PONG_BUFFER_TYPE, NULL, NULL), HR_E_INVALIDARG);
    CHECK_HR(WebSocketReceive(h, NULL, NULL), HR_E_INVALIDARG);
    CHECK_HR(WebSocketGetAction(h, WEB_SOCKET_ALL_ACTION_QUEUE, b, &n, &a, &t, &app, &act),
             HR_E_INVALIDARG);
    /* The VOID functions ignore it. */
    WebSocketCompleteAction(h, (PVOID)(uintptr_t)1, 0);
    WebSocketAbortHandle(h);
    WebSocketDeleteHandle(h);
  }
  /* A new handle never reuses the deleted value, and the deleted one stays dead. */
  {
    WEB_SOCKET_HANDLE fresh = NULL;
    CHECK_HR(WebSocketCreateClientHandle(NULL, 0, &fresh), S_OK);
    CHECK(fresh != stale);
    CHECK_HR(WebSocketSend(stale, WEB_SOCKET_PING_PONG_BUFFER_TYPE, NULL, NULL), HR_E_INVALIDARG);
    WebSocketDeleteHandle(fresh);
  }
}

static void test_wrong_state(void) {
  WEB_SOCKET_HANDLE c = NULL, s = NULL;
  PWEB_SOCKET_HTTP_HEADER add = NULL;
  ULONG nadd = 0, n = 2;
  WEB_SOCKET_BUFFER b[2];
  WEB_SOCKET_ACTION a;
  WEB_SOCKET_BUFFER_TYPE t;
  PVOID app, act;
  header_list bad;

  g_section = "wrong state";
  CHECK_HR(WebSocketCreateClientHandle(NULL, 0, &c), S_OK);
  CHECK_HR(WebSocketCreateServerHandle(NULL, 0, &s), S_OK);
  /* Before the handshake: E_INVALID_OPERATION, .NET's number. */
  CHECK_HR(send_on(c, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, "x", 1),
           HR_E_INVALID_OPERATION);
  CHECK_HR(WebSocketSend(s, WEB_SOCKET_PING_PONG_BUFFER_TYPE, NULL, NULL), HR_E_INVALID_OPERATION);
  CHECK_HR(WebSocketGetAction(c, WEB_SOCKET_ALL_ACTION_QUEUE, b, &n, &a, &t, &app, &act),
           HR_E_INVALID_OPERATION);
  WebSocketAbortHandle(c); /* a no-op before the handshake */
  CHECK_HR(WebSocketBeginClientHandshake(s, NULL, 0, NULL, 0, g_initial_headers, 2, &add, &nadd),
           HR_E_INVALID_OPERATION);
  CHECK_HR(WebSocketEndServerHandshake(c), HR_E_INVALID_OPERATION);
  CHECK_HR(WebSocketEndServerHandshake(s), HR_E_INVALID_OPERATION);

  CHECK_HR(WebSocketBeginClientHandshake(c, NULL, 0, NULL, 0, g_initial_headers, 2, &add, &nadd),
           S_OK);
  CHECK_HR(send_on(c, WEB_SOCKET_BINARY_MESSAGE_BUFFER_TYPE, "x", 1),
           HR_E_INVALID_OPERATION);
  CHECK_HR(WebSocketBeginClientHandshake(c, NULL, 0, NULL, 0, g_initial_headers, 2, &add, &nadd),
           HR_E_INVALID_OPERATION);

  /* A response with the wrong accept value: E_INVALID_PROTOCOL_FORMAT, and the handle is dead. */
  memset(&bad, 0, sizeof bad);
  hl_add_str(&bad, "Connection", "Upgrade");
  hl_add_str(&bad, "Upgrade", "websocket");
  hl_add_str(&bad, "Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  CHECK_HR(WebSocketEndClientHandshake(c, bad.h, bad.count, NULL, NULL, NULL),
           HR_E_INVALID_PROTOCOL_FORMAT);
  CHECK_HR(WebSocketSend(c, WEB_SOCKET_PING_PONG_BUFFER_TYPE, NULL, NULL), HR_E_INVALID_OPERATION);
  CHECK_HR(WebSocketEndClientHandshake(c, bad.h, bad.count, NULL, NULL, NULL),
           HR_E_INVALID_OPERATION);

  /* A request for another version: E_PROTOCOL_VERSION_NOT_SUPPORTED. */
  memset(&bad, 0, sizeof bad);
  hl_add_str(&bad, "Host", "");
  hl_add_str(&bad, "Connection", "Upgrade");
  hl_add_str(&bad, "Upgrade", "websocket");
  hl_add_str(&bad, "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==");
  hl_add_str(&bad, "Sec-WebSocket-Version", "8");
  CHECK_HR(WebSocketBeginServerHandshake(s, NULL, NULL, 0, bad.h, bad.count, &add, &nadd),
           HR_E_PROTOCOL_VERSION_NOT_SUPPORTED);
  WebSocketDeleteHandle(c);
  WebSocketDeleteHandle(s);

  /* .NET's fake request for server-handle initialisation (empty Host, zero key) is accepted. */
  CHECK_HR(WebSocketCreateServerHandle(NULL, 0, &s), S_OK);
  memset(&bad, 0, sizeof bad);
  hl_add_str(&bad, "Host", "");
  hl_add_str(&bad, "Connection", "Upgrade");
  hl_add_str(&bad, "Upgrade", "websocket");
  hl_add_str(&bad, "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==");
  hl_add_str(&bad, "Sec-WebSocket-Version", "13");
  CHECK_HR(WebSocketBeginServerHandshake(s, NULL, NULL, 0, bad.h, bad.count, &add, &nadd), S_OK);
  if (CHECK(add != NULL))
    CHECK(value_is(add, nadd, "Sec-WebSocket-Accept", "ICX+Yqv66kxgM0FcWaLWlFLwTAI="));
  CHECK_HR(WebSocketBeginServerHandshake(s, NULL, NULL, 0, bad.h, bad.count, &add, &nadd),
           HR_E_INVALID_OPERATION);
  WebSocketDeleteHandle(s);
}

int run_conformance(void) {
  g_passed = 0;
  g_failed = 0;
  test_error_numbers();
  test_sha1_vector();
  test_global_property();
  test_create_errors();
  test_bad_handles();
  test_wrong_state();
  test_data_exchange();
  test_close_from_server();
  test_eof_and_abort();
  printf("%d passed, %d failed\n", g_passed, g_failed);
  fflush(stdout);
  return g_failed;
}
