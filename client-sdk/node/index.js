// @wsgate/client: the Node.js client of wsgated, the WebSocket gateway daemon. The raw gRPC API
// with the protos bundled (wsgate.js: pkg, errorDetail, daemonAddress) and a small
// promise/async-iterator session API (session.js: connect, Client, Session, WsgateError).
'use strict';
module.exports = { ...require('./wsgate'), ...require('./session') };
