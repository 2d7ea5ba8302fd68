#!/usr/bin/env node
// node subscribe.js URL [--send TEXT]... [--count N] [--timeout S]: opens a session through
// wsgated, sends the subscription messages, prints every message the server pushes until N
// arrived, the server closed, or S seconds passed; then closes with 1000.
'use strict';
const { gatewayClient, errorDetail } = require('../../node/wsgate');

const args = process.argv.slice(2);
const url = args.shift();
const send = [];
let count = 0;
let timeout = 30;
while (args.length) {
  const a = args.shift();
  if (a === '--send') send.push(args.shift());
  else if (a === '--count') count = Number(args.shift());
  else if (a === '--timeout') timeout = Number(args.shift());
}

const client = gatewayClient();
const call = client.Connect();
let received = 0;
const timer = setTimeout(() => {
  console.log(`timeout after ${timeout} s`);
  call.cancel();
}, timeout * 1000);

call.on('data', (m) => {
  if (m.opened) {
    console.log(`subscribed to ${url} (session ${m.opened.session_id})`);
    for (const text of send) call.write({ text: Buffer.from(text) });
  } else if (m.message) {
    received += 1;
    const data = m.message.text ? m.message.data.toString() : m.message.data.toString('hex');
    console.log(`message ${received}: ${data}`);
    if (count && received >= count) call.write({ close: { code: 1000, reason: 'done' } });
  } else if (m.closed) {
    console.log(`closed ${m.closed.code} ${m.closed.reason}`);
    call.end();
  }
});
call.on('error', (err) => {
  if (err.code === 1) return; // cancelled by the timeout
  const d = errorDetail(err);
  console.error(`error: ${err.code} ${err.details} (cause ${d ? d.cause : '-'})`);
  process.exitCode = 1;
});
call.on('end', () => {
  clearTimeout(timer);
  client.close();
});
call.write({ open: { url } });
