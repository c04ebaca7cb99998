/**
 * The reference figure for init and join in the cluster benchmark: how long a lone etcd member
 * takes, from being started to answering {"health":"true"} on /health. It starts etcd through the
 * same launcher the daemon uses for its embedded member (setpriv --pdeathsig KILL, so etcd dies
 * with this probe however it dies), with the same raft timings, a fresh data dir and loopback
 * URLs only; then kills it and removes the data dir.
 *
 * Run it inside a lab host's netns (lab.exec), so loopback is that host's own:
 *
 *   node dist/bench/etcd-start-probe.js --data-dir DIR [--client-port 12379] [--peer-port 12380]
 *
 * Prints one JSON line, {"readyMs": 312.4}, and exits 0; or one line on stderr and exits 1.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { get } from 'node:http';
import { SwarmletError } from '../services/common/errors';

export interface EtcdStartProbeOptions {
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly timeoutMs: number;
}

const POLL_MS = 10;
const REQUEST_TIMEOUT_MS = 200;
const STDERR_TAIL_BYTES = 2048;

export function parseProbeArgs(argv: string[]): EtcdStartProbeOptions {
  let dataDir: string | undefined;
  let clientPort = 12379;
  let peerPort = 12380;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new SwarmletError('InvalidArgument', `${flag} needs a value`);
    i++;
    if (flag === '--data-dir') dataDir = value;
    else if (flag === '--client-port') clientPort = Number(value);
    else if (flag === '--peer-port') peerPort = Number(value);
    else throw new SwarmletError('InvalidArgument', `unexpected argument ${flag}`);
  }
  if (!dataDir) throw new SwarmletError('InvalidArgument', '--data-dir is required');
  for (const port of [clientPort, peerPort]) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new SwarmletError('InvalidArgument', `invalid port ${port}`);
  }
  return Object.freeze({ dataDir, clientPort, peerPort, timeoutMs: 20_000 });
}

/** One GET of /health; true only for {"health":"true"}. */
function healthy(port: number): Promise<boolean> {
  return new Promise((done) => {
    const req = get({ host: '127.0.0.1', port, path: '/health', timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        try {
          done((JSON.parse(body) as { health?: unknown }).health === 'true');
        } catch {
          done(false);
        }
      });
      res.on('error', () => done(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(false));
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Starts etcd, waits until it is healthy, stops it; resolves with the milliseconds from spawn to healthy. */
export async function measureEtcdStart(opts: EtcdStartProbeOptions): Promise<number> {
  rmSync(opts.dataDir, { recursive: true, force: true });
  const client = `http://127.0.0.1:${opts.clientPort}`;
  const peer = `http://127.0.0.1:${opts.peerPort}`;
  const args = [
    '--pdeathsig', 'KILL', '--', 'etcd',
    '--name', 'reference',
    '--data-dir', opts.dataDir,
    '--listen-client-urls', client,
    '--advertise-client-urls', client,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `reference=${peer}`,
    '--initial-cluster-state', 'new',
    '--heartbeat-interval', '100',
    '--election-timeout', '1000',
    '--logger', 'zap',
  ];
  const started = performance.now();
  const child = spawn('setpriv', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderrTail = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_BYTES)));
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('close', () => resolve());
    child.once('error', () => resolve());
  });
  child.once('exit', () => (exited = true));
  child.once('error', () => (exited = true));
  try {
    for (;;) {
      if (await healthy(opts.clientPort)) return performance.now() - started;
      if (exited) throw new SwarmletError('Unavailable', `etcd exited before it was healthy:\n${stderrTail}`);
      if (performance.now() - started > opts.timeoutMs) {
        throw new SwarmletError('Unavailable', `etcd was not healthy within ${opts.timeoutMs / 1000} s:\n${stderrTail}`);
      }
      await sleep(POLL_MS);
    }
  } finally {
    if (!exited) child.kill('SIGKILL');
    await exit;
    rmSync(opts.dataDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  measureEtcdStart(parseProbeArgs(process.argv.slice(2))).then(
    (readyMs) => process.stdout.write(`${JSON.stringify({ readyMs: Math.round(readyMs * 10) / 10 })}\n`),
    (err: unknown) => {
      process.stderr.write(`etcd-start-probe: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
