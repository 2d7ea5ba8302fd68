// A Node `ws` echo server with permessage-deflate on, for tests/daemon/test_gateway_compression.py.
// Usage: node deflate_echo_server.js '<perMessageDeflate options as JSON>' LIFETIME_SECONDS
// Prints one JSON line per event on stdout: {"port"}, then per connection {"extensions"} (the
// Sec-WebSocket-Extensions header it answered) and per message {"size", "bytes_read"} (the
// socket's wire bytes so far, so the test sees whether the gateway compressed). It listens on
// 127.0.0.1 only and exits by itself after LIFETIME_SECONDS, or when stdin closes.
"use strict";
const { WebSocketServer } = require("ws");

const options = JSON.parse(process.argv[2] || "{}");
const lifetime = Number(process.argv[3] || 60);
const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: options,
                                  maxPayload: 1 << 24 });
wss.on("listening", () => say({ port: wss.address().port }));
wss.on("headers", (headers) => {
  const ext = headers.find((h) => h.toLowerCase().startsWith("sec-websocket-extensions:"));
  say({ extensions: ext ? ext.slice(ext.indexOf(":") + 1).trim() : null });
});
wss.on("connection", (ws, req) => {
  ws.on("message", (data, isBinary) => {
    say({ size: data.length, bytes_read: req.socket.bytesRead });
    ws.send(data, { binary: isBinary });
  });
});
const stop = () => process.exit(0);
setTimeout(stop, lifetime * 1000).unref();
process.stdin.on("end", stop);
process.stdin.resume();
