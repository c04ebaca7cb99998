#!/usr/bin/env node
// Generates TypeScript for proto/ with Debian's protoc and ts-proto into services/gen/,
// plus a descriptor set for gRPC server reflection. The output is never edited by hand.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'services', 'gen');
const protoDir = path.join(root, 'proto');
const files = fs.readdirSync(path.join(protoDir, 'swarmlet', 'v1'))
  .filter((f) => f.endsWith('.proto'))
  .map((f) => path.join('swarmlet', 'v1', f));

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const plugin = path.join(root, 'node_modules', '.bin', 'protoc-gen-ts_proto');
execFileSync('protoc', [
  `--plugin=protoc-gen-ts_proto=${plugin}`,
  `--ts_proto_out=${out}`,
  '--ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,useOptionals=messages,oneof=unions-value,env=node,useDate=false',
  `--descriptor_set_out=${path.join(out, 'descriptor.bin')}`,
  '--include_imports',
  `-I${protoDir}`,
  ...files,
], { cwd: root, stdio: 'inherit' });
