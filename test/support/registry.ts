/**
 * A throwaway OCI registry for tests: Debian's docker-registry (distribution v2) with its storage
 * in a temp dir, listening on the address given (loopback in integration tests; a lab namespace's
 * address in end-to-end tests, started there with nsenter). Optional htpasswd (bcrypt) auth.
 * stop() kills it and removes its dir. Plain HTTP: clients need --tls-verify=false (or the
 * daemon's insecureRegistries) for it.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { planRegistryConfig } from '../../lab/registry';

export interface RegistryCredentials {
  user: string;
  password: string;
}

export interface RegistryOptions {
  /** IP:PORT to listen on. Default: 127.0.0.1 and a free port. */
  listen?: string;
  /** Run inside this network namespace (a name under /run/netns). */
  netns?: string;
  /** Require these credentials (htpasswd, bcrypt). */
  auth?: RegistryCredentials;
  /** Parent of the registry's temp dir. Default: os.tmpdir(). */
  baseDir?: string;
}

export interface TestRegistry {
  /** HOST:PORT, as image references name the registry. */
  readonly addr: string;
  readonly dir: string;
  readonly auth?: RegistryCredentials;
  /** Repositories the registry holds (its catalog). */
  catalog(): Promise<string[]>;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const inNetns = (netns: string | undefined, argv: string[]) => (netns ? ['nsenter', `--net=/run/netns/${netns}`, '--', ...argv] : argv);

/** GET /v2/_catalog with curl (run in the registry's netns): the HTTP status and body. */
function curl(netns: string | undefined, url: string, auth?: RegistryCredentials): Promise<{ status: number; body: string }> {
  const argv = inNetns(netns, ['curl', '-s', '--max-time', '2', '-w', '\n%{http_code}', ...(auth ? ['-u', `${auth.user}:${auth.password}`] : []), url]);
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', () => resolve({ status: 0, body: '' }));
    child.on('close', () => {
      const cut = out.lastIndexOf('\n');
      resolve({ status: Number(out.slice(cut + 1)) || 0, body: out.slice(0, Math.max(cut, 0)) });
    });
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => (clearTimeout(t), resolve(true)));
  });
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const listen = opts.listen ?? `127.0.0.1:${await freePort()}`;
  const dir = fs.mkdtempSync(path.join(opts.baseDir ?? os.tmpdir(), 'swl-registry-'));
  let htpasswd: string | undefined;
  if (opts.auth) {
    htpasswd = path.join(dir, 'htpasswd');
    const line = execFileSync('htpasswd', ['-Bbn', opts.auth.user, opts.auth.password], { encoding: 'utf8' });
    fs.writeFileSync(htpasswd, line.trim() + '\n', { mode: 0o600 });
  }
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(config, planRegistryConfig(dir, listen, htpasswd));
  const logFile = path.join(dir, 'registry.log');
  const log = fs.openSync(logFile, 'a');
  const argv = inNetns(opts.netns, ['docker-registry', 'serve', config]);
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', log, log], detached: true });
  fs.closeSync(log);
  child.on('error', () => undefined);

  const stop = async () => {
    if (child.pid && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* gone already */
      }
      if (!(await waitExit(child, 5000))) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone already */
        }
        await waitExit(child, 5000);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  const base = `http://${listen}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const { status } = await curl(opts.netns, `${base}/v2/`);
    if (status === 200 || status === 401) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n') : '';
      await stop();
      throw new Error(`docker-registry on ${listen} did not become ready:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    addr: listen,
    dir,
    auth: opts.auth,
    async catalog() {
      const { status, body } = await curl(opts.netns, `${base}/v2/_catalog`, opts.auth);
      if (status !== 200) throw new Error(`registry catalog: HTTP ${status}`);
      return (JSON.parse(body) as { repositories: string[] | null }).repositories ?? [];
    },
    stop,
  };
}
