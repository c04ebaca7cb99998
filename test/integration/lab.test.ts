/**
 * The lab itself: namespaces, addresses, reachability, daemons (a stand-in that only listens on
 * its socket, since the real daemon may not be built), and clean-up. Run through test/run.sh.
 */
import { existsSync, readFileSync } from 'node:fs';
import { destroyLabsByPrefix, Lab, socketPath, type LabHost } from '../lab/lab';
import { listNetns, runCommand } from '../lab/ip-command';
import { isAlive } from '../lab/process-tree';
import { uniqueSuffix } from '../support/unique';

const base = `swt${uniqueSuffix()}`;

/**
 * Listens on the host's socket and prints where it runs. With CHILD=1 it also starts a child in
 * its own process group, as a daemon with an embedded etcd would.
 */
const STAND_IN = `
const fs = require('fs'), net = require('net'), os = require('os'), cp = require('child_process');
const addrs = Object.values(os.networkInterfaces()).flat().map((a) => a.address);
if (process.env.CHILD === '1') {
  const c = cp.spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  console.log('child=' + c.pid);
}
if (process.env.FAIL === '1') { console.error('stand-in: told to fail'); process.exit(3); }
try { fs.unlinkSync(process.argv[1]); } catch {}
net.createServer((s) => s.end('hello\\n')).listen(process.argv[1], () =>
  console.log('ready host=' + process.env.SWARMLET_HOSTNAME + ' addrs=' + addrs.join(',')));
process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(0); });
`;

function standIn(h: LabHost): string[] {
  return [process.execPath, '-e', STAND_IN, socketPath(h)];
}

async function prefixedNetns(prefix: string): Promise<string[]> {
  return (await listNetns()).filter((n) => n.startsWith(`${prefix}-`));
}

/** A TCP round trip from one lab namespace to an address in another. */
async function tcpReach(lab: Lab, from: { netns: string }, to: { netns: string }, addr: string): Promise<string> {
  const port = 7000 + (process.pid % 1000);
  const server = lab.exec(to, [
    process.execPath,
    '-e',
    `const s = require('net').createServer((c) => { c.end('pong'); s.close(); }).listen(${port}, '${addr}', () => console.log('listening'));
     setTimeout(() => process.exit(2), 10000).unref();`,
  ]);
  const client = lab.exec(from, [
    process.execPath,
    '-e',
    `const net = require('net'); let n = 0;
     (function attempt() {
       const c = net.connect(${port}, '${addr}');
       let got = ''; c.on('data', (d) => (got += d)); c.on('end', () => { console.log(got); process.exit(0); });
       c.on('error', () => { if (++n > 50) process.exit(1); setTimeout(attempt, 50); });
     })();`,
  ]);
  const [s, c] = await Promise.all([server, client]);
  expect(s.code).toBe(0);
  expect(c.code).toBe(0);
  return c.stdout.trim();
}

describe('lab', () => {
  const prefix = `${base}a`;
  let lab: Lab | undefined;

  beforeAll(async () => {
    lab = await Lab.create({ prefix, hosts: 2, daemonCommand: standIn });
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('builds one namespace per host plus the underlay, with the documented names and addresses', async () => {
    const l = lab as Lab;
    expect((await prefixedNetns(prefix)).sort()).toEqual([`${prefix}-h1`, `${prefix}-h2`, `${prefix}-ul`]);
    expect(l.host(2)).toMatchObject({ index: 2, name: `${prefix}-h2`, netns: `${prefix}-h2`, addr: '198.51.100.12' });
    expect(l.host(1).socket).toBe(`unix:///tmp/${prefix}/h1.sock`);
    expect(() => l.host(3)).toThrow(/no host 3/);

    const eth0 = await l.exec(l.host(1), ['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(eth0.stdout).toContain('198.51.100.11/24');
    const link = await l.exec(l.host(1), ['ip', '-o', 'link', 'show', 'dev', 'eth0']);
    expect(link.stdout).toMatch(/mtu 1500/);
    const br = await l.exec({ netns: l.underlayNetns }, ['ip', '-o', 'link', 'show', 'master', 'br0']);
    expect(br.stdout).toMatch(/ h1@/);
    expect(br.stdout).toMatch(/ h2@/);
    for (const ns of [l.host(1), l.host(2), { netns: l.underlayNetns }]) {
      const routes = await l.exec(ns, ['ip', 'route', 'show', 'default']);
      expect(routes.stdout.trim()).toBe('');
    }
  });

  it('lets h1 reach h2 over the underlay', async () => {
    const l = lab as Lab;
    expect(await tcpReach(l, l.host(1), l.host(2), l.host(2).addr)).toBe('pong');
    const hasPing = (await runCommand(['sh', '-c', 'command -v ping'])).code === 0;
    if (hasPing) {
      const ping = await l.exec(l.host(1), ['ping', '-c1', '-W1', l.host(2).addr]);
      expect(ping.code).toBe(0);
    }
  });

  it('adds a client that is not a node and reaches the hosts', async () => {
    const l = lab as Lab;
    const c = await l.addClient();
    expect(c).toEqual({ netns: `${prefix}-c1`, addr: '198.51.100.200' });
    expect(await tcpReach(l, c, l.host(1), l.host(1).addr)).toBe('pong');
  });

  it('starts a daemon in the host netns and stops it with SIGTERM', async () => {
    const l = lab as Lab;
    const h = l.host(1);
    await l.startDaemon(h);
    // The stand-in accepts on its socket a moment before its 'ready' line reaches the log file.
    // On a loaded CI machine that moment has lasted more than 5 s, so the wait is long; it ends
    // as soon as the line is there.
    // The log's first line is the command, whose script holds the words 'ready host=' too: wait for the host's name after them.
    let log = readFileSync(h.logFile, 'utf8');
    for (const until = Date.now() + 60_000; !log.includes(`ready host=${h.name}`) && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 50));
      log = readFileSync(h.logFile, 'utf8');
    }
    expect(log).toContain(`ready host=${h.name}`);
    expect(log).toContain(h.addr);
    expect(log).not.toContain(l.host(2).addr);
    const pid = JSON.parse(readFileSync(`${l.baseDir}/lab.json`, 'utf8')).daemons[0].pid as number;
    expect(readFileSync(`${l.baseDir}/pids`, 'utf8')).toContain(`${pid} `);
    // Once in a CI run the start below went ahead. If that comes back, this tells whether the stand-in had died meanwhile.
    expect({ pid, alive: isAlive(pid), stat: existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ').slice(0, 3).join(' ') : 'gone' }).toMatchObject({ pid, alive: true });
    await expect(l.startDaemon(h)).rejects.toThrow(/already running/);

    await l.stopDaemon(h, 'term');
    expect(isAlive(pid)).toBe(false);
    expect(readFileSync(h.logFile, 'utf8')).toContain('got SIGTERM');
    await l.stopDaemon(h, 'term'); // nothing running: fine
  });

  it("kills a daemon's whole process group", async () => {
    const l = lab as Lab;
    const h = l.host(2);
    await l.startDaemon(h, []);
    await l.stopDaemon(h, 'kill');
    await l.startDaemon(h); // restarts on the stale socket file
    await l.stopDaemon(h, 'kill');
  });

  it('kills the child of a daemon with the group, and reports a daemon that dies at start', async () => {
    const prefix2 = `${base}c`;
    const lab2 = await Lab.create({
      prefix: prefix2,
      hosts: 1,
      daemonCommand: (h) => ['env', 'CHILD=1', ...standIn(h)],
    });
    try {
      const h = lab2.host(1);
      await lab2.startDaemon(h);
      const child = Number(/child=(\d+)/.exec(readFileSync(h.logFile, 'utf8'))?.[1]);
      expect(isAlive(child)).toBe(true);
      await lab2.stopDaemon(h, 'kill');
      expect(isAlive(child)).toBe(false);

      const failing = await Lab.create({ prefix: `${base}d`, hosts: 1, daemonCommand: (x) => ['env', 'FAIL=1', ...standIn(x)] });
      try {
        await expect(failing.startDaemon(failing.host(1))).rejects.toThrow(/exited before its socket.*\n[\s\S]*told to fail/);
      } finally {
        await failing.destroy();
      }
    } finally {
      await lab2.destroy();
    }
  });

  it('kills a host: its processes die and its link goes down', async () => {
    const l = lab as Lab;
    const h = l.host(2);
    await l.startDaemon(h);
    const sleeper = l.exec(h, ['sleep', '60']);
    await expect(l.exec(h, ['true'])).resolves.toMatchObject({ code: 0 });
    await l.killHost(h);
    expect((await sleeper).code).not.toBe(0);
    expect((await runCommand(['ip', 'netns', 'pids', h.netns])).stdout.trim()).toBe('');
    const port = await l.exec({ netns: l.underlayNetns }, ['ip', '-o', 'link', 'show', 'h2']);
    expect(port.stdout).toMatch(/state DOWN/);
    await l.setHostLink(h, 'up');
    expect(await tcpReach(l, l.host(1), h, h.addr)).toBe('pong');
  });

  it('refuses a second lab with the same prefix and leaves the first alone', async () => {
    await expect(Lab.create({ prefix, hosts: 1 })).rejects.toThrow(/exists/);
    expect(await prefixedNetns(prefix)).toHaveLength(4);
  });

  it('destroy() removes every namespace, process and file, and may be called again', async () => {
    const l = lab as Lab;
    await l.startDaemon(l.host(1));
    const pid = JSON.parse(readFileSync(`${l.baseDir}/lab.json`, 'utf8')).daemons[0].pid as number;
    await l.destroy();
    await l.destroy();
    expect(isAlive(pid)).toBe(false);
    expect(await prefixedNetns(prefix)).toEqual([]);
    expect(existsSync(l.baseDir)).toBe(false);
  });
});

describe('destroyLabsByPrefix', () => {
  it('removes a lab nobody destroyed', async () => {
    const prefix = `${base}b`;
    let lab: Lab | undefined;
    try {
      lab = await Lab.create({ prefix, hosts: 2, daemonCommand: standIn });
      await lab.startDaemon(lab.host(1));
      await lab.addClient();
      const removed = await destroyLabsByPrefix(prefix);
      expect(removed.sort()).toEqual([`${prefix}-c1`, `${prefix}-h1`, `${prefix}-h2`, `${prefix}-ul`]);
      expect(await prefixedNetns(prefix)).toEqual([]);
      expect(await destroyLabsByPrefix(prefix)).toEqual([]);
    } finally {
      await lab?.destroy();
    }
    expect(await prefixedNetns(prefix)).toEqual([]);
  });

  it('rejects names the lab cannot use', async () => {
    await expect(Lab.create({ prefix: 'Bad-Prefix', hosts: 1 })).rejects.toThrow(/prefix/);
    await expect(Lab.create({ prefix: `${base}e`, hosts: 0 })).rejects.toThrow(/hosts/);
    expect(await prefixedNetns(`${base}e`)).toEqual([]);
  });
});
