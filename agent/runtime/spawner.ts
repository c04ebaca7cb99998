/**
 * Process starts off the daemon's event loop. child_process.spawn() returns only once the child
 * has forked and exec'ed, and fork() copies the caller's page tables: from a daemon of a few
 * hundred MB on a loaded host each spawn held the event loop for 50-200 ms (a profile of 100
 * tasks starting on 3 hosts: 8-19 s of ChildProcess.spawn per daemon, its gRPC and etcd calls
 * waiting meanwhile). So one small long-lived helper process (a `node -e` program of a few MB,
 * started on first use) does the spawning: the daemon sends it a request over the IPC channel and
 * goes on; the helper's own loop is the one that waits.
 *
 * Two kinds of request: a detached process (a task's shim: its own session, output appended to
 * a file, not waited for), and a command run to completion with its stdin, stdout and stderr
 * (nft, ip, nsenter, ...). The helper exits when the channel closes (this process ends); the
 * channel is unreferenced while no request is in flight, so it never keeps the daemon alive. A
 * helper that died is started again by the next request.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { basename } from 'node:path';
import { internal } from '../../services/common/errors';
import { metrics } from '../../services/metrics/metrics';

const HELPER_SOURCE = `
'use strict';
const cp = require('child_process');
const fs = require('fs');
process.on('disconnect', () => process.exit(0));
const reply = (m) => { if (process.connected) process.send(m); };
function detached(m) {
  let fd;
  try {
    fd = m.out ? fs.openSync(m.out, 'a', 0o640) : 'ignore';
    const child = cp.spawn(m.argv[0], m.argv.slice(1), { detached: true, cwd: m.cwd || '/', env: m.env, stdio: ['ignore', fd, fd] });
    child.once('error', (err) => reply({ id: m.id, ok: false, message: err.message, code: err.code }));
    child.once('spawn', () => { child.unref(); reply({ id: m.id, ok: true, pid: child.pid }); });
  } catch (err) {
    reply({ id: m.id, ok: false, message: err.message, code: err.code });
  } finally {
    if (typeof fd === 'number') fs.closeSync(fd);
  }
}
function run(m) {
  let child;
  try {
    child = cp.spawn(m.argv[0], m.argv.slice(1), { env: m.env, timeout: m.timeoutMs, stdio: [m.input == null ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  } catch (err) {
    return reply({ id: m.id, ok: false, message: err.message, code: err.code });
  }
  const out = [], errs = [];
  let failed;
  child.stdout.on('data', (d) => out.push(d));
  child.stderr.on('data', (d) => errs.push(d));
  child.once('error', (err) => { failed = err; });
  child.once('close', (code, signal) => {
    if (failed && code === null && signal === null) return reply({ id: m.id, ok: false, message: failed.message, code: failed.code });
    reply({ id: m.id, ok: true, code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(errs).toString() });
  });
  if (m.input != null) {
    child.stdin.on('error', () => undefined);
    child.stdin.end(m.input);
  }
}
process.on('message', (m) => (m.op === 'detached' ? detached(m) : run(m)));
reply({ ready: true });
`;

/** How a command run to completion ended. */
export interface RunResult {
  /** null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface DetachedOptions {
  /** Default '/'. */
  cwd?: string;
  env: Record<string, string>;
  /** The file its stdout and stderr are appended to (made with mode 0640 when missing); else /dev/null. */
  outFile?: string;
}

export interface RunOptions {
  /** Default: this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Given on its stdin (which is /dev/null without it). */
  input?: string;
  /** SIGTERM after this long. */
  timeoutMs?: number;
}

interface Reply {
  id?: number;
  ready?: boolean;
  ok?: boolean;
  pid?: number;
  code?: number | string | null;
  signal?: NodeJS.Signals | null;
  stdout?: string;
  stderr?: string;
  message?: string;
}

const START_TIMEOUT_MS = 20000;

/** Error with the errno code the helper saw, as spawn() would have thrown it here. */
function spawnError(argv0: string, reply: Reply): Error {
  const err = new Error(`spawn ${argv0}: ${reply.message ?? 'failed'}`) as NodeJS.ErrnoException;
  if (typeof reply.code === 'string') err.code = reply.code;
  return err;
}

/** The spawning helper (see the top of this file). */
export class Spawner {
  private child?: ChildProcess;
  private ready?: Promise<ChildProcess>;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  /** Starts `argv` in a session of its own and resolves with its pid once it runs (it is not waited for). */
  async spawnDetached(argv: string[], opts: DetachedOptions): Promise<number> {
    metrics.processesStarted.inc({ program: basename(argv[0]) });
    const reply = await this.request({ op: 'detached', argv, cwd: opts.cwd, env: opts.env, out: opts.outFile });
    if (!reply.ok || reply.pid === undefined) throw spawnError(argv[0], reply);
    return reply.pid;
  }

  /** Runs `argv` to completion; rejects only when it could not be started. */
  async run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    metrics.processesStarted.inc({ program: basename(argv[0]) });
    const reply = await this.request({ op: 'run', argv, env: opts.env ?? process.env, input: opts.input, timeoutMs: opts.timeoutMs });
    if (!reply.ok) throw spawnError(argv[0], reply);
    return { code: typeof reply.code === 'number' ? reply.code : null, signal: reply.signal ?? null, stdout: reply.stdout ?? '', stderr: reply.stderr ?? '' };
  }

  /** Ends the helper (the next request starts another). */
  close(): void {
    const child = this.child;
    this.child = undefined;
    this.ready = undefined;
    if (child?.connected) child.disconnect();
  }

  private async request(msg: Record<string, unknown>): Promise<Reply> {
    const child = await this.helper();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.busy(child);
      child.send({ id, ...msg }, (err) => {
        if (!err) return;
        this.settle(id)?.reject(internal(`the spawning helper is gone: ${err.message}`, err));
      });
    });
  }

  private settle(id: number): { resolve: (r: Reply) => void; reject: (e: Error) => void } | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    if (this.child) this.idle(this.child);
    return p;
  }

  private helper(): Promise<ChildProcess> {
    this.ready ??= new Promise<ChildProcess>((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = spawn(process.execPath, ['-e', HELPER_SOURCE], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      } catch (err) {
        this.ready = undefined;
        reject(internal(`cannot start the spawning helper: ${(err as Error).message}`, err));
        return;
      }
      this.child = child;
      const timer = setTimeout(() => fail(internal('the spawning helper did not start in time')), START_TIMEOUT_MS);
      const fail = (err: Error) => {
        clearTimeout(timer);
        if (this.child === child) {
          this.child = undefined;
          this.ready = undefined;
        }
        child.kill('SIGKILL');
        reject(err);
      };
      child.once('error', (err) => fail(internal(`cannot start the spawning helper: ${err.message}`, err)));
      child.on('exit', (code, signal) => {
        if (this.child === child) {
          this.child = undefined;
          this.ready = undefined;
        }
        const gone = internal(`the spawning helper exited (${signal ?? `code ${code}`})`);
        fail(gone);
        for (const [id, p] of this.pending) {
          this.pending.delete(id);
          p.reject(gone);
        }
      });
      child.on('message', (reply: Reply) => {
        if (reply.ready) {
          clearTimeout(timer);
          this.idle(child);
          resolve(child);
          return;
        }
        if (reply.id !== undefined) this.settle(reply.id)?.resolve(reply);
      });
    });
    return this.ready;
  }

  private busy(child: ChildProcess): void {
    child.ref();
    child.channel?.ref();
  }

  private idle(child: ChildProcess): void {
    if (this.pending.size > 0) return;
    child.unref();
    child.channel?.unref();
  }
}

/** This process's spawning helper. */
export const spawner = new Spawner();
