/**
 * A registry for a lab: Debian's docker-registry (distribution v2), plain HTTP, its storage in a
 * directory of the lab. `swarmlet lab up --registry` runs one in a namespace of its own on the
 * underlay; the tests run theirs through test/support/registry.ts. Both write its config here.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SwarmletError } from '../services/common/errors';
import type { Lab, LabClient } from './lab';
import { sleep } from './process-tree';

/** docker-registry's config.yml: storage under `dir`/data, listening on `listen` (IP:PORT), htpasswd auth if given. */
export function planRegistryConfig(dir: string, listen: string, htpasswd?: string): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${listen}`,
  ];
  if (htpasswd) lines.push('auth:', '  htpasswd:', '    realm: swarmlet-test', `    path: ${htpasswd}`);
  return lines.join('\n') + '\n';
}

export const LAB_REGISTRY_LABEL = 'reg';
export const LAB_REGISTRY_ADDR = '198.51.100.2';
export const LAB_REGISTRY_PORT = 5000;
/** Where every lab host finds the registry of `lab up --registry` (HOST:PORT, as image references name it). */
export const LAB_REGISTRY = `${LAB_REGISTRY_ADDR}:${LAB_REGISTRY_PORT}`;
const READY_TIMEOUT_MS = 15_000;

/**
 * Starts the lab's registry in a new namespace `${prefix}-reg` on the underlay, detached (it
 * outlives `lab up`; `lab down` kills it with everything in the lab's namespaces), and waits until
 * it answers /v2/ from inside the lab.
 */
export async function ensureLabRegistry(lab: Lab): Promise<LabClient> {
  const peer = await lab.addPeer(LAB_REGISTRY_LABEL, LAB_REGISTRY_ADDR);
  const dir = join(lab.baseDir, 'registry');
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'config.yml');
  writeFileSync(config, planRegistryConfig(dir, LAB_REGISTRY));
  const logFile = join(dir, 'registry.log');
  const log = openSync(logFile, 'a');
  let exited = false;
  try {
    const child = spawn('nsenter', [`--net=/run/netns/${peer.netns}`, '--', 'docker-registry', 'serve', config], { detached: true, stdio: ['ignore', log, log] });
    child.on('error', () => (exited = true));
    child.on('exit', () => (exited = true));
    child.unref();
  } finally {
    closeSync(log);
  }
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const r = await lab.exec(peer, ['curl', '-s', '-o', '/dev/null', '--max-time', '2', '-w', '%{http_code}', `http://${LAB_REGISTRY}/v2/`], { timeoutMs: 5000 });
    if (r.stdout.trim() === '200') return peer;
    if (exited || Date.now() > deadline) {
      let tail = '';
      try {
        tail = readFileSync(logFile, 'utf8').split('\n').slice(-10).join('\n');
      } catch {
        tail = '(no log)';
      }
      throw new SwarmletError('Unavailable', `the lab's registry (docker-registry on ${LAB_REGISTRY}) ${exited ? 'exited' : `did not answer within ${READY_TIMEOUT_MS / 1000} s`}: is the docker-registry package installed? ${tail}`);
    }
    await sleep(100);
  }
}
