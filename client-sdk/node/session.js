// The session API of @wsgate/client over Gateway.Connect (exported by index.js):
//
//   const wsgate = require('@wsgate/client');
//   const client = await wsgate.connect();              // $WSGATE_ADDRESS, else the default socket
//   const session = await client.open('wss://example.com/feed');
//   session.send('subscribe');                          // string: text message; Buffer: binary
//   for await (const m of session) console.log(m.data.toString());   // ends at the close
//   const closed = await session.close(1000, 'bye');
//   client.close();
//
// Lifetime and threads: everything runs on Node's event loop. A Client owns a gRPC channel until
// close(); a Session is one stream, and one consumer iterates it at a time. Failures reject with
// a WsgateError carrying the daemon's ErrorDetail.
'use strict';
const { grpc, pkg, daemonAddress, errorDetail } = require('./wsgate');


// A failed connect, open or session: `code` (the gRPC status number) and `codeName`,
// `detail` (the wsgate.v1.ErrorDetail as a plain object, camelCase fields; {} when the daemon
// sent none), `cause` (its stable cause, e.g. 'connection_refused'; the list is in
// proto/wsgate/v1/common.proto), `httpStatus`, and `retryAfter`: the seconds a refusing server
// asked for in a Retry-After header, else null.
class WsgateError extends Error {
  constructor(code, message, detail) {
    const d = detail || {};
    super(`${grpc.status[code] || code}: ${message}${d.cause ? ` (cause ${d.cause})` : ''}`);
    this.name = 'WsgateError';
    this.code = code;
    this.codeName = grpc.status[code] || String(code);
    this.details = message;
    this.detail = d;
    this.cause = d.cause || '';
    this.httpStatus = d.httpStatus || 0;
    this.retryAfter = null;
    for (const h of d.httpHeaders || []) {
      if (Buffer.from(h.name).toString('latin1').toLowerCase() !== 'retry-after') continue;
      const v = Buffer.from(h.value).toString('latin1').trim();
      const when = /^\d+$/.test(v) ? Date.now() + Number(v) * 1000 : Date.parse(v);
      if (!Number.isNaN(when)) {
        this.retryAfter = Math.max(0, Math.round((when - Date.now()) / 1000));
      }
    }
  }

  static fromServiceError(err) {
    return new WsgateError(err.code, err.details || err.message, errorDetail(err));
  }
}

const INITIATORS = {
  INITIATOR_CLIENT: 'client', INITIATOR_SERVER: 'server', INITIATOR_GATEWAY: 'gateway',
};

// One upstream WebSocket connection (Client.open). Incoming messages are buffered until the
// iterator takes them; `closed` is set once the session has ended.
class Session {
  constructor(call, opened) {
    this.call = call;
    this.opened = opened;
    this.id = opened.session_id;
    this.subprotocol = opened.subprotocol;
    this.closed = null;
    this._queue = [];        // {data, text}
    this._error = null;      // a WsgateError once the stream failed
    this._done = false;      // the stream ended (closed, failed, or ended)
    this._wake = null;       // the pending iterator's resolver
    call.on('data', (m) => {
      if (m.message) this._queue.push({ data: m.message.data, text: m.message.text });
      else if (m.closed) {
        this.closed = { code: m.closed.code, reason: m.closed.reason,
          initiator: INITIATORS[m.closed.initiator] || 'unspecified', clean: m.closed.clean };
        call.end();
      }
      this._notify();
    });
    call.on('error', (err) => {
      if (err.code !== grpc.status.CANCELLED || !this._cancelled) {
        this._error = WsgateError.fromServiceError(err);
      }
      this._done = true;
      this._notify();
    });
    call.on('end', () => { this._done = true; this._notify(); });
  }

  _notify() {
    if (this._wake) { const wake = this._wake; this._wake = null; wake(); }
  }

  // One whole message: a string is sent as a text message, a Buffer/Uint8Array as binary.
  send(data) {
    if (typeof data === 'string') this.call.write({ text: Buffer.from(data, 'utf8') });
    else this.call.write({ binary: Buffer.from(data) });
  }

  // Incoming messages ({data: Buffer, text: boolean}) until the session closes; pongs skipped.
  async *[Symbol.asyncIterator]() {
    for (;;) {
      if (this._queue.length) { yield this._queue.shift(); continue; }
      if (this._error) throw this._error;
      if (this.closed || this._done) return;
      await new Promise((resolve) => { this._wake = resolve; });
    }
  }

  // Sends the close and resolves with {code, reason, initiator, clean} once the session has
  // ended; messages still arriving meanwhile are dropped.
  async close(code = 1000, reason = '') {
    if (!this.closed && !this._done) this.call.write({ close: { code, reason } });
    while (!this.closed && !this._error && !this._done) {
      this._queue.length = 0;
      await new Promise((resolve) => { this._wake = resolve; });
    }
    this._queue.length = 0;
    if (this._error) throw this._error;
    if (!this.closed) {
      throw new WsgateError(grpc.status.UNKNOWN, 'the stream ended without a close');
    }
    return this.closed;
  }

  // Ends the stream without a close: the daemon closes upstream with 1001.
  cancel() {
    this._cancelled = true;
    this.call.cancel();
  }
}

class Client {
  constructor(address) {
    if (!address) this.address = daemonAddress();
    else this.address = address.startsWith('/') ? 'unix:' + address : address;
    this.gateway = new pkg.wsgate.v1.Gateway(this.address, grpc.credentials.createInsecure());
  }

  // Resolves once the channel is connected; rejects with WsgateError(UNAVAILABLE) after timeoutMs.
  waitReady(timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      this.gateway.waitForReady(new Date(Date.now() + timeoutMs), (err) => {
        if (!err) resolve(this);
        else {
          reject(new WsgateError(grpc.status.UNAVAILABLE,
            `wsgated is not reachable at ${this.address}: ${err.message}`));
        }
      });
    });
  }

  // Opens a WebSocket session (ws:// or wss://) and resolves once the upgrade is done.
  // options: subprotocols, headers ({name: value}), connectTimeoutMs, handshakeTimeoutMs, tls
  // (a wsgate.v1.TlsOptions object, snake_case fields).
  open(url, options = {}) {
    const open = { url, subprotocols: options.subprotocols || [],
      headers: Object.entries(options.headers || {}).map(([name, value]) =>
        ({ name: Buffer.from(name), value: Buffer.from(value) })) };
    if (options.connectTimeoutMs || options.handshakeTimeoutMs) {
      open.timeouts = { connect_ms: options.connectTimeoutMs || 0,
        handshake_ms: options.handshakeTimeoutMs || 0 };
    }
    if (options.tls) open.tls = options.tls;
    const call = this.gateway.Connect();
    return new Promise((resolve, reject) => {
      // Until `opened`, the open's own listeners; then the Session's (attached synchronously
      // inside this 'data' event, so no later message can be missed).
      const detach = () => {
        call.removeListener('data', onData);
        call.removeListener('error', onError);
        call.removeListener('end', onEnd);
      };
      const onData = (m) => {
        if (!m.opened) return;  // an in-band `error` is followed by the call's 'error'
        detach();
        resolve(new Session(call, m.opened));
      };
      const onError = (err) => {
        detach();
        reject(WsgateError.fromServiceError(err));
      };
      const onEnd = () => {
        detach();
        reject(new WsgateError(grpc.status.UNKNOWN, 'the daemon ended the stream before opening'));
      };
      call.on('data', onData);
      call.on('error', onError);
      call.on('end', onEnd);
      call.write({ open });
    });
  }

  close() {
    this.gateway.close();
  }
}

// A Client for `address` (unix:/path, /path or host:port; default: daemonAddress()), once its
// channel is connected.
async function connect(address, { timeoutMs = 10000 } = {}) {
  const client = new Client(address);
  try {
    return await client.waitReady(timeoutMs);
  } catch (e) {
    client.close();
    throw e;
  }
}

module.exports = { connect, Client, Session, WsgateError };
