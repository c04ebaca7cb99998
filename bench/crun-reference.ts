/**
 * The `crun run` reference the container benchmarks (containers.ts, container-commands.ts) time a
 * container's start against: a bundle on an image's unpacked rootfs running COMMAND, spawned the
 * way the runtime's shim does it (a private mount namespace with the hybrid cgroup2 mount hidden,
 * --cgroup-manager=disabled), until "ready" on its stdout.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SwarmletError } from '../services/common/errors';
import { uniqueSuffix } from '../test/support/unique';

/** What the timed containers run: "ready" on their output once they are running. */
export const COMMAND = ['sh', '-c', 'echo ready; exec sleep 100000'];

/** Waits (polling every millisecond) until `check` holds. */
export async function until(what: string, check: () => boolean, timeoutMs = 60000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new SwarmletError('Internal', `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** A file's text, or '' while it is not there. */
export const readOr = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

function runQuiet(argv: string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    child.once('error', () => resolve());
    child.once('close', () => resolve());
  });
}

/** `crun run` on a prepared bundle until "ready" on its stdout; then kill it and clean up (untimed). */
export async function timeCrunRun(bundle: string, crunRoot: string, unifiedMount: string | undefined, n: number): Promise<number> {
  const id = `ref${uniqueSuffix(6)}x${n}`;
  const hide = unifiedMount ? `umount -l ${unifiedMount} 2>/dev/null; ` : '';
  const script = `${hide}exec crun --root ${crunRoot} --cgroup-manager=disabled run --bundle ${bundle} ${id}`;
  const t0 = performance.now();
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  try {
    await until(`crun run to print ready (${err.trim()})`, () => out.includes('ready') || child.exitCode !== null);
    if (!out.includes('ready')) throw new SwarmletError('Internal', `crun run failed: ${err.trim()}`);
    return performance.now() - t0;
  } finally {
    await runQuiet(['crun', '--root', crunRoot, 'kill', id, 'KILL']);
    await exited;
    await runQuiet(['crun', '--root', crunRoot, 'delete', '--force', id]);
  }
}

/** A bundle on the image's unpacked rootfs (read-only), running COMMAND as the runtime's containers do, without the hold. */
export function writeReferenceBundle(dir: string, rootfs: string): void {
  mkdirSync(dir, { recursive: true });
  const config = {
    ociVersion: '1.0.2',
    process: { terminal: false, user: { uid: 0, gid: 0 }, args: COMMAND, env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], cwd: '/', noNewPrivileges: true },
    root: { path: rootfs, readonly: true },
    hostname: 'ref',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: { namespaces: ['pid', 'ipc', 'uts', 'mount', 'network'].map((type) => ({ type })) },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
}

