/**
 * A real, throwaway etcd for integration tests: one member on loopback, on free ports, with its
 * data in a fresh temporary directory. `stop()` closes the client, ends the member and removes
 * the directory; the member also dies with the test process (parent-death signal), and under
 * test/run.sh with the run's pid namespace.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { noop } from 'cockatiel';
import { Etcd3, IOptions } from 'etcd3';
import { ROOT } from '../../manager/store/keys';
import { ETCD_CLIENT_GRPC_OPTIONS } from '../../manager/store/etcd-errors';

export interface EtcdFixture {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  client: Etcd3;
  /** The member's process id, for tests that check it is gone. */
  pid: number;
  stop(): Promise<void>;
}

export interface EtcdFixtureOptions {
  binary?: string;
  /** How long the member may take to answer. */
  startTimeoutMs?: number;
}

/**
 * The options the daemon's own client uses (`etcdClient()` in node/daemon.ts): no circuit
 * breaker. `grpcOptions` go to each grpc client (a benchmark adds its interceptors there).
 */
export function fixtureClient(hosts: string[], grpcOptions?: IOptions['grpcOptions']): Etcd3 {
  return new Etcd3({
    hosts,
    grpcOptions: { ...ETCD_CLIENT_GRPC_OPTIONS, ...grpcOptions },
    dialTimeout: 3000,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 5000 }),
    faultHandling: { host: () => noop, global: noop },
  });
}

/** Two distinct ports free on loopback right now (both listeners are held open until both are known). */
async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

function tail(file: string, bytes = 4000): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-bytes);
  } catch {
    return '(no log)';
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (exited(child)) return;
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(timer);
}

export async function startEtcd(opts: EtcdFixtureOptions = {}): Promise<EtcdFixture> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmlet-etcd-'));
  const logFile = path.join(root, 'etcd.log');
  const [clientPort, peerPort] = await freePorts(2);
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', 'default',
    '--data-dir', path.join(root, 'data'),
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `default=${peer}`,
    '--initial-cluster-token', path.basename(root),
    '--heartbeat-interval', '100',
    '--election-timeout', '1000',
    '--logger', 'zap',
  ];
  const out = fs.openSync(logFile, 'a');
  // setpriv: the kernel kills the member when the process that started it dies, however it dies.
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', opts.binary ?? '/usr/bin/etcd', ...args], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  let client: Etcd3 | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    client?.close();
    await stopProcess(child);
    fs.rmSync(root, { recursive: true, force: true });
  };

  try {
    const deadline = Date.now() + (opts.startTimeoutMs ?? 30000);
    client = fixtureClient([endpoint]);
    let lastError: unknown;
    for (;;) {
      const failed = await Promise.race([spawnError, delay(0).then(() => undefined)]);
      if (failed) throw failed;
      if (exited(child)) throw new Error(`etcd exited (code ${child.exitCode}, signal ${child.signalCode})`);
      try {
        // A linearizable read: answered only once the member has elected itself and serves.
        await client.get('swarmlet-fixture-probe').string();
        break;
      } catch (err) {
        lastError = err;
      }
      if (Date.now() > deadline) throw new Error(`etcd did not answer on ${endpoint}: ${(lastError as Error)?.message ?? lastError}`);
      await delay(100);
    }
    return { endpoint, client, pid: child.pid!, stop };
  } catch (err) {
    const log = tail(logFile);
    await stop();
    throw new Error(`could not start a test etcd: ${(err as Error).message}\n--- etcd log ---\n${log}`, { cause: err });
  }
}

/**
 * One real etcd for the whole test file (started before its tests, stopped after them), with the
 * cluster's keys deleted before each test. Call it at the top level of the file; the fixture it
 * returns answers once the file's first hook has run.
 */
export function useEtcd(): EtcdFixture {
  let fixture: EtcdFixture | undefined;
  const started = (): EtcdFixture => {
    if (!fixture) throw new Error('etcd is not started yet: use it inside a test or a hook');
    return fixture;
  };
  beforeAll(async () => {
    fixture = await startEtcd();
  });
  afterAll(async () => {
    await fixture?.stop();
  });
  beforeEach(async () => {
    await started().client.delete().prefix(ROOT).exec();
  });
  return {
    get endpoint() {
      return started().endpoint;
    },
    get client() {
      return started().client;
    },
    get pid() {
      return started().pid;
    },
    stop: () => started().stop(),
  };
}
