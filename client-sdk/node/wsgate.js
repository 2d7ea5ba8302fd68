// The core of @wsgate/client (index.js), also what the examples use: loads the project's protos
// with @grpc/proto-loader (`pkg`: the raw gRPC API), resolves the daemon address (same rules as
// the C++ SDK) and parses the ErrorDetail of a failed call (google.rpc.Status in the
// grpc-status-details-bin trailer).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// The proto root: $WSGATE_PROTO_DIR, the protos bundled in the package (npm pack), the
// repository's proto/ (run from the source tree), or an installed SDK's share/wsgate/proto.
function protoDir() {
  const candidates = [
    process.env.WSGATE_PROTO_DIR,
    path.join(__dirname, 'proto'),
    path.resolve(__dirname, '../../proto'),
    '/usr/local/share/wsgate/proto',
    '/usr/share/wsgate/proto',
  ].filter(Boolean);
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, 'wsgate/v1/gateway.proto'))) return dir;
  }
  throw new Error('wsgate protos not found: set WSGATE_PROTO_DIR');
}

const dir = protoDir();
const def = protoLoader.loadSync(
  ['wsgate/v1/gateway.proto', 'wsgate/v1/common.proto', 'wsgate/v1/admin.proto',
    'wsgate/v1/protocol_component.proto', 'google/rpc/status.proto'],
  { includeDirs: [dir], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const pkg = grpc.loadPackageDefinition(def);

function daemonAddress() {
  const env = process.env.WSGATE_ADDRESS;
  if (env) return env.startsWith('/') ? 'unix:' + env : env;
  if (process.getuid && process.getuid() === 0) return 'unix:/run/wsgate/wsgated.sock';
  if (process.env.XDG_RUNTIME_DIR) return 'unix:' + process.env.XDG_RUNTIME_DIR + '/wsgate/wsgated.sock';
  return 'unix:/tmp/wsgate-' + os.userInfo().uid + '/wsgated.sock';
}

function gatewayClient() {
  return new pkg.wsgate.v1.Gateway(daemonAddress(), grpc.credentials.createInsecure());
}

// Decodes the wsgate.v1.ErrorDetail of a ServiceError, or returns null.
const protobuf = require('protobufjs');
let root = null;
function errorDetail(err) {
  const bin = err && err.metadata && err.metadata.get('grpc-status-details-bin')[0];
  if (!bin) return null;
  if (!root) {
    root = new protobuf.Root();
    root.resolvePath = (_origin, target) => path.join(dir, target);
    root.loadSync(['google/rpc/status.proto', 'wsgate/v1/common.proto']);
  }
  const status = root.lookupType('google.rpc.Status').decode(bin);
  for (const any of status.details) {
    if (any.type_url.endsWith('/wsgate.v1.ErrorDetail')) {
      return root.lookupType('wsgate.v1.ErrorDetail').toObject(
        root.lookupType('wsgate.v1.ErrorDetail').decode(any.value));
    }
  }
  return null;
}

module.exports = { grpc, pkg, daemonAddress, gatewayClient, errorDetail };
