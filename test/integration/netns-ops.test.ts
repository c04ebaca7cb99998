/**
 * The namespace helper (agent/runtime/netns-ops.ts + native/netns-ops.c, built by `npm run
 * build`) against the real kernel, inside the test runner's private namespaces: nft transactions
 * and listings, sysctls and lo, each in the namespace asked for and nowhere else. Namespaces carry
 * a unique prefix and are removed in afterAll, also when a test fails.
 */
import { NetnsOps } from '../../agent/runtime/netns-ops';
import { SwarmletError } from '../../services/common/errors';
import { deleteNetns, netnsPath, run, waitFor } from '../support/netns';
import { uniqueSuffix } from '../support/unique';

const P = `nso${uniqueSuffix()}`;
const NAMESPACES = [`${P}-a`, `${P}-b`];
const [A, B] = NAMESPACES;
const ops = new NetnsOps();

const table = (name: string, port: number) => `table ip ${name} {\n\tchain c {\n\t\ttype filter hook input priority filter; policy accept;\n\t\ttcp dport ${port} accept\n\t}\n}\n`;
const listed = (ns: string, name: string) => run('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'ip', name]);

beforeAll(() => {
  // Made bare (lo down): linkUp has something to do.
  for (const ns of NAMESPACES) run('ip', ['netns', 'add', ns]);
});

afterAll(() => {
  ops.close();
  deleteNetns(NAMESPACES);
});

test('a ruleset goes into the namespace asked for, in one transaction, and lists as nft lists it', async () => {
  await ops.nft(netnsPath(A), table('t1', 80));
  expect(listed(A, 't1')).toBe(table('t1', 80));
  expect(await ops.nft(netnsPath(A), 'list table ip t1')).toBe(table('t1', 80));
  expect(() => listed(B, 't1')).toThrow();
  // Replaced whole in one transaction: delete and add together.
  await ops.nft(netnsPath(A), `delete table ip t1\n${table('t1', 81)}`);
  expect(listed(A, 't1')).toBe(table('t1', 81));
});

test('requests to several namespaces at once each get their own answer', async () => {
  await Promise.all(Array.from({ length: 20 }, (_, i) => ops.nft(netnsPath(i % 2 ? A : B), table(`m${i}`, 1000 + i))));
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => ops.nft(netnsPath(i % 2 ? A : B), `list table ip m${i}`)));
  answers.forEach((text, i) => expect(text).toBe(table(`m${i}`, 1000 + i)));
  await Promise.all(Array.from({ length: 20 }, (_, i) => ops.nft(netnsPath(i % 2 ? A : B), `delete table ip m${i}`)));
});

test('a ruleset nft refuses changes nothing and rejects with nft\'s own words', async () => {
  await ops.nft(netnsPath(A), `delete table ip t1\n${table('t1', 82)}`);
  const bad = `delete table ip t1\n${table('t1', 83).replace('tcp dport', 'tcp dportx')}`;
  const err = await ops.nft(netnsPath(A), bad).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SwarmletError);
  expect((err as SwarmletError).message).toMatch(/Error: syntax error/);
  expect(listed(A, 't1')).toBe(table('t1', 82));
  // A missing table is nft's "No such file or directory", as the CLI says it.
  await expect(ops.nft(netnsPath(A), 'list table ip nosuch')).rejects.toThrow(/Error: No such file or directory/);
});

test('a namespace that is not there is NotFound, and the helper goes on serving', async () => {
  const err = await ops.nft(netnsPath(`${P}-gone`), table('t', 1)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SwarmletError);
  expect((err as SwarmletError).kind).toBe('NotFound');
  expect((err as SwarmletError).message).toContain(`${P}-gone`);
  expect(await ops.nft(netnsPath(A), 'list table ip t1')).toBe(table('t1', 82));
});

test('a sysctl is written in the namespace asked for alone, and lo is set up there', async () => {
  const forwarding = (ns: string) => run('ip', ['netns', 'exec', ns, 'cat', '/proc/sys/net/ipv4/ip_forward']).trim();
  const loUp = (ns: string) => /[<,]UP[,>]/.test(run('ip', ['-n', ns, '-o', 'link', 'show', 'lo']));
  expect(forwarding(A)).toBe('0');
  await ops.write(netnsPath(A), '/proc/sys/net/ipv4/ip_forward', '1\n');
  expect(forwarding(A)).toBe('1');
  expect(forwarding(B)).toBe('0');

  expect(loUp(B)).toBe(false);
  await ops.linkUp(netnsPath(B), 'lo');
  expect(loUp(B)).toBe(true);
  expect(loUp(A)).toBe(false);
  await ops.linkUp(netnsPath(B), 'lo');
  await expect(ops.linkUp(netnsPath(B), 'nosuch0')).rejects.toThrow(/nosuch0/);
});

test('a helper that died is started again by the next request', async () => {
  await ops.nft(netnsPath(A), 'list table ip t1');
  const first = ops.pid!;
  process.kill(first, 'SIGKILL');
  await waitFor('the helper\'s exit to be seen', () => ops.pid === undefined);
  expect(await ops.nft(netnsPath(A), 'list table ip t1')).toBe(table('t1', 82));
  expect(ops.pid).not.toBe(first);
});
