#!/usr/bin/env node
// node echo.js [--deflate] [--proxy PROXY] URL [MESSAGE...]: opens a WebSocket session through
// wsgated (Gateway.Connect), sends each message, prints the echoed replies, then closes with 1000.
// --deflate asks the gateway to offer permessage-deflate (Open.compression).
// --proxy: the session's HTTP CONNECT proxy (Open.proxy): "direct", or
// "http://[user:pw@]host:port" when the daemon allows session proxies; without it, the daemon's
// [proxy] settings apply.
'use strict';
const { gatewayClient, errorDetail } = require('../../node/wsgate');

let args = process.argv.slice(2);
const deflate = args.includes('--deflate');
args = args.filter((a) => a !== '--deflate');
let proxy = '';
if (args[0] === '--proxy') {
  proxy = args[1];
  args = args.slice(2);
}
const [url, ...rest] = args;
const messages = rest.length ? rest : ['hello', 'world'];
const client = gatewayClient();
const deadline = new Date(Date.now() + 30000);
const call = client.Connect({ deadline });
let next = 0;
let failed = false;

function sendNext() {
  if (next < messages.length) {
    call.write({ text: Buffer.from(messages[next++]) });
  } else {
    call.write({ close: { code: 1000, reason: 'done' } });
  }
}

call.on('data', (m) => {
  if (m.opened) {
    console.log(`opened ${url} (session ${m.opened.session_id}, extensions ${JSON.stringify(m.opened.extensions)})`);
    sendNext();
  } else if (m.message) {
    const text = m.message.data.toString();
    console.log(`echo: ${text}`);
    if (text !== messages[next - 1]) failed = true;
    sendNext();
  } else if (m.closed) {
    console.log(`closed ${m.closed.code} ${m.closed.reason}`);
    call.end();
  }
});
call.on('error', (err) => {
  const d = errorDetail(err);
  console.error(`error: ${err.code} ${err.details} (cause ${d ? d.cause : '-'})`);
  process.exitCode = 1;
});
call.on('end', () => {
  if (failed) process.exitCode = 1;
  client.close();
});
// permessage-deflate is negotiated and done by the gateway: the messages here stay plain.
// (Open.extensions cannot name it; zero fields mean the daemon's [compression] settings.)
const compression = deflate ? { mode: 'COMPRESSION_MODE_ON', threshold_bytes: 256 } : undefined;
call.write({ open: { url, compression, proxy } });
