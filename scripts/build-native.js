#!/usr/bin/env node
// Compiles the agent's native helpers (native/*.c) into dist/native/ with the system's C compiler:
// swarmlet-netns-ops (agent/runtime/netns-ops.ts), linked against Debian's libnftables (package
// nftables; its headers are not needed). Skipped when the binary is newer than its source.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'dist', 'native');
const helpers = [{ source: 'netns-ops.c', binary: 'swarmlet-netns-ops', libs: ['-l:libnftables.so.1'] }];

fs.mkdirSync(out, { recursive: true });
for (const h of helpers) {
  const source = path.join(root, 'native', h.source);
  const binary = path.join(out, h.binary);
  const built = fs.statSync(binary, { throwIfNoEntry: false });
  if (built && built.mtimeMs >= fs.statSync(source).mtimeMs) continue;
  const cc = process.env.CC || 'cc';
  try {
    execFileSync(cc, ['-O2', '-Wall', '-Werror', '-o', `${binary}.tmp`, source, ...h.libs], { cwd: root, stdio: 'inherit' });
  } catch (err) {
    const missing = err.code === 'ENOENT' ? `${cc} not found: install a C compiler (apt-get install gcc libc6-dev)` : `${cc} failed`;
    console.error(`build-native: ${h.source}: ${missing}; it also needs libnftables.so.1 (apt-get install nftables)`);
    process.exit(1);
  }
  fs.renameSync(`${binary}.tmp`, binary);
}
