// Run by node_package_test.py inside a temporary project where the packed @wsgate/client
// tarball is installed: the package's session API against the real daemon (WSGATE_ADDRESS) and
// the echo and SDK servers (WSGATE_ECHO_URL, WSGATE_SDK_SERVER_URL).
'use strict';
const assert = require('assert');
const fs = require('fs');
const net = require('net');
const path = require('path');
const wsgate = require('@wsgate/client');

// The installed package, with its protos bundled (nothing of the checkout is reachable here).
const main = require.resolve('@wsgate/client');
assert.ok(main.startsWith(path.join(process.cwd(), 'node_modules')), main);
assert.ok(fs.existsSync(path.join(path.dirname(main), 'proto/wsgate/v1/gateway.proto')));
assert.strictEqual(process.env.WSGATE_PROTO_DIR, undefined);

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function expectError(promise, check) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof wsgate.WsgateError, e);
    check(e);
    return;
  }
  assert.fail('no error');
}

async function main_() {
  const client = await wsgate.connect();
  // Echo: text and binary, then a close we start.
  const s = await client.open(process.env.WSGATE_ECHO_URL);
  assert.ok(s.id);
  s.send('alpha');
  s.send(Buffer.from([0, 1, 98]));
  const got = [];
  for await (const m of s) {
    got.push(m);
    if (got.length === 2) break;
  }
  assert.deepStrictEqual(got.map((m) => [m.data.toString('latin1'), m.text]),
    [['alpha', true], ['\x00\x01b', false]]);
  const closed = await s.close(1000, 'done');
  assert.deepStrictEqual(closed, { code: 1000, reason: 'done', initiator: 'client', clean: true });
  console.log('echo ok');

  // Iteration ends at the server's close ("close-me": the echo server closes with 4000).
  const s2 = await client.open(process.env.WSGATE_ECHO_URL);
  s2.send('close-me');
  const rest = [];
  for await (const m of s2) rest.push(m);
  assert.deepStrictEqual(rest, []);
  assert.deepStrictEqual(s2.closed,
    { code: 4000, reason: 'server closing', initiator: 'server', clean: true });
  console.log('server close ok');

  // Failing opens: nothing listens; not a WebSocket URL; a refused upgrade with Retry-After.
  await expectError(client.open(`ws://127.0.0.1:${await freePort()}/`), (e) => {
    assert.strictEqual(e.cause, 'connection_refused');
    assert.strictEqual(e.codeName, 'UNAVAILABLE');
    assert.strictEqual(e.retryAfter, null);
  });
  await expectError(client.open('http://127.0.0.1/'), (e) => {
    assert.strictEqual(e.cause, 'bad_request');
    assert.strictEqual(e.codeName, 'INVALID_ARGUMENT');
  });
  await expectError(client.open(process.env.WSGATE_SDK_SERVER_URL + 'busy'), (e) => {
    assert.strictEqual(e.cause, 'upgrade_refused');
    assert.strictEqual(e.httpStatus, 503);
    assert.strictEqual(e.retryAfter, 7);
  });
  console.log('failures ok');
  client.close();

  // No daemon there: UNAVAILABLE, no cause.
  await expectError(wsgate.connect('unix:/nonexistent/wsgated.sock', { timeoutMs: 1000 }), (e) => {
    assert.strictEqual(e.codeName, 'UNAVAILABLE');
    assert.strictEqual(e.cause, '');
  });
  console.log('all ok');
}

main_().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
