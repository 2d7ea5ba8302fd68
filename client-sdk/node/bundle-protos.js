#!/usr/bin/env node
// npm pack's prepack step: copies the API's protos from the repository's proto/ into proto/ here
// (and the repository's LICENSE), so the package carries them; `--clean` (postpack) removes the
// copies again, so that a checkout always loads the repository's current protos.
'use strict';
const fs = require('fs');
const path = require('path');

const here = __dirname;
const repo = path.resolve(here, '../..');
// What wsgate.js loads: the wsgate.v1 API and google.rpc.Status (the error details' envelope).
const protos = ['google/rpc/status.proto', 'wsgate/v1/common.proto', 'wsgate/v1/gateway.proto',
  'wsgate/v1/admin.proto', 'wsgate/v1/protocol_component.proto'];

if (process.argv[2] === '--clean') {
  fs.rmSync(path.join(here, 'proto'), { recursive: true, force: true });
  fs.rmSync(path.join(here, 'LICENSE'), { force: true });
} else {
  for (const p of protos) {
    fs.mkdirSync(path.dirname(path.join(here, 'proto', p)), { recursive: true });
    fs.copyFileSync(path.join(repo, 'proto', p), path.join(here, 'proto', p));
  }
  fs.copyFileSync(path.join(repo, 'LICENSE'), path.join(here, 'LICENSE'));
}
