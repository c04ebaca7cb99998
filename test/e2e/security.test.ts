/**
 * Who may use a swarm's APIs, end to end on a lab: a node's certificate stops working when its
 * node leaves the managers or the swarm; an operator certificate stops working when revoked.
 * Run through test/run.sh (private network, mount and pid namespaces).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab, LabClient, LabHost, requireBuiltCli } from '../lab/lab';
import { byHost, formSwarm, nodes, sw, waitFor } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

const prefix = `sws${uniqueSuffix()}`;
let lab: Lab;
let h1: LabHost, h2: LabHost;
let client: LabClient;

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 2 });
  [h1, h2] = lab.hosts;
  client = await lab.addClient();
}, 60000);

afterAll(async () => {
  await lab?.destroy();
}, 60000);

/** The CLI run from a machine outside the swarm, against h1's TCP API with the certificates in `certDir`. */
const fromOutside = (certDir: string, args: string[]) => lab.exec(client, [process.execPath, requireBuiltCli(), '-H', `tcp://${h1.addr}:2377`, '--cert-dir', certDir, ...args]);

function expectRefused(res: { code: number | null; stderr: string }, message: RegExp): void {
  expect(res.code).toBe(1);
  expect(res.stderr).toMatch(message);
  expect(res.stderr.trim().split('\n')).toHaveLength(1);
}

describe('certificates of nodes that left', () => {
  test('a removed manager\'s saved certificate is refused for service create, join-token and operator-cert', async () => {
    await formSwarm(lab, [h1, h2], []);
    const saved = path.join(lab.baseDir, 'h2-saved-certs');
    fs.cpSync(path.join(h2.dataDir, 'certs'), saved, { recursive: true });
    const before = await fromOutside(saved, ['swarm', 'join-token', 'manager', '-q']);
    expect(before.stderr).toBe('');
    expect(before.stdout).toMatch(/^SWLTKN-1-/);

    await sw(lab, h1, ['node', 'demote', h2.name]);
    await waitFor('h2 a worker', async () => (byHost(await nodes(lab, h1), h2)?.role !== 'NODE_ROLE_MANAGER' ? true : undefined), 60000);
    expectRefused(await fromOutside(saved, ['swarm', 'join-token', 'manager']), /^Error: .*no longer a manager/);

    await sw(lab, h2, ['swarm', 'leave']);
    // Its host still answers: Down after the grace (20 s).
    await waitFor('h2 down', async () => (byHost(await nodes(lab, h1), h2)?.status?.state === 'NODE_STATE_DOWN' ? true : undefined), 60000);
    await sw(lab, h1, ['node', 'rm', h2.name]);

    const removed = /^Error: .*not in this swarm \(it was removed\)/;
    expectRefused(await fromOutside(saved, ['service', 'create', '--name', 'intruder', 'exec:/', 'sleep', '1000']), removed);
    expectRefused(await fromOutside(saved, ['swarm', 'join-token', 'manager']), removed);
    expectRefused(await fromOutside(saved, ['swarm', 'operator-cert', '--out', path.join(lab.baseDir, 'stolen')]), removed);
    expect(fs.existsSync(path.join(lab.baseDir, 'stolen'))).toBe(false);
    expect(await sw(lab, h1, ['service', 'ls', '-q'])).toBe('');
  }, 180000);
});

describe('operator certificates', () => {
  test('a revoked operator certificate is refused; revoking an unknown serial is an error', async () => {
    const dir = path.join(lab.baseDir, 'operator');
    const made = await sw(lab, h1, ['swarm', 'operator-cert', '--out', dir, '--name', 'ci-bot']);
    const serial = /Its serial is ([0-9a-f]+);/.exec(made)?.[1];
    expect(serial).toBeDefined();
    const ok = await fromOutside(dir, ['node', 'ls', '-q']);
    expect(ok.stderr).toBe('');

    expect(await sw(lab, h1, ['swarm', 'operator-cert', '--revoke', serial!.toUpperCase()])).toBe(`Operator certificate ci-bot (serial ${serial}) revoked.\n`);
    expectRefused(await fromOutside(dir, ['node', 'ls', '-q']), /^Error: .*operator certificate ci-bot .*has been revoked/);

    const unknown = await lab.cli(h1, ['swarm', 'operator-cert', '--revoke', 'abcdef']);
    expectRefused(unknown, /^Error: this swarm issued no operator certificate with serial abcdef/);
    const bad = await lab.cli(h1, ['swarm', 'operator-cert', '--revoke', 'not-hex']);
    expectRefused(bad, /^Error: invalid certificate serial/);
  }, 60000);
});

/** Reads all of etcd's keys from inside h1's network namespace (where host-network tasks run), as `mode` says to connect. */
async function readEtcd(mode: 'plain' | 'tls-without-cert' | 'manager-cert'): Promise<{ ok: boolean; text: string }> {
  const etcd3 = path.join(path.dirname(requireBuiltCli()), '..', '..', 'node_modules', 'etcd3');
  const script = `
    const fs = require('fs'); const { Etcd3 } = require(${JSON.stringify(etcd3)});
    const [mode, dir] = process.argv.slice(1);
    const read = (f) => fs.readFileSync(dir + '/' + f);
    const opts = { hosts: (mode === 'plain' ? 'http' : 'https') + '://127.0.0.1:2379', dialTimeout: 2000 };
    if (mode !== 'plain') {
      opts.credentials = { rootCertificate: read('ca.pem'), ...(mode === 'manager-cert' ? { certChain: read('node.pem'), privateKey: read('node-key.pem') } : {}) };
      opts.grpcOptions = { 'grpc.ssl_target_name_override': 'swarmlet-manager' };
    }
    const client = new Etcd3(opts);
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no answer')), 8000));
    Promise.race([client.getAll().prefix('/').strings(), timeout])
      .then((all) => { process.stdout.write(JSON.stringify(all)); process.exit(0); })
      .catch((err) => { process.stdout.write(String(err.message)); process.exit(3); });
  `;
  const res = await lab.exec(h1, [process.execPath, '-e', script, mode, path.join(h1.dataDir, 'certs')]);
  return { ok: res.code === 0, text: res.stdout };
}

describe('the cluster store', () => {
  test('etcd refuses a client without a manager certificate; its raw data holds no CA key or join token in clear', async () => {
    const tokens = await Promise.all(['worker', 'manager'].map(async (r) => (await sw(lab, h1, ['swarm', 'join-token', r, '-q'])).trim()));
    expect((await readEtcd('plain')).ok).toBe(false);
    expect((await readEtcd('tls-without-cert')).ok).toBe(false);
    const raw = await readEtcd('manager-cert');
    expect(raw.ok).toBe(true);
    expect(raw.text).toContain('/swarmlet/v1/cluster');
    expect(raw.text).not.toMatch(/PRIVATE KEY/);
    for (const token of tokens) {
      expect(raw.text).not.toContain(token);
      expect(raw.text).not.toContain(token.split('-').pop());
    }
  }, 60000);
});
