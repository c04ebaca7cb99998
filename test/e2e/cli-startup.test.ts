/**
 * What a CLI call loads before it does its work: --version, --help and bad usage load neither the
 * daemon nor grpc-js, and a call that talks to a daemon loads the client side only (no etcd3, no
 * pino, no agent or manager). Every e2e test runs the CLI hundreds of times. Run through test/run.sh.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBuiltCli } from '../lab/lab';
import { runCommand } from '../lab/ip-command';

let dir: string;
let main: string;

beforeAll(() => {
  main = requireBuiltCli();
  dir = mkdtempSync(join(tmpdir(), 'swarmlet-cli-startup-'));
  // Preloaded into the CLI: on exit, it writes the files the process had loaded.
  writeFileSync(join(dir, 'record.js'), `process.on('exit', () => require('node:fs').writeFileSync(process.env.LOADED_FILE, JSON.stringify(Object.keys(require.cache))));\n`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function loaded(args: string[]): Promise<{ code: number; stdout: string; stderr: string; modules: string[] }> {
  const file = join(dir, `loaded-${args.join('_').replace(/[^\w-]/g, '')}.json`);
  const res = await runCommand([process.execPath, '--require', join(dir, 'record.js'), main, ...args], { env: { LOADED_FILE: file }, timeoutMs: 60_000 });
  return { ...res, modules: JSON.parse(readFileSync(file, 'utf8')) as string[] };
}

const HEAVY = [/node_modules\/@grpc\/grpc-js\//, /node_modules\/etcd3\//, /node_modules\/pino\//, /node_modules\/@peculiar\/x509\//, /dist\/node\/daemon\.js$/, /dist\/services\/gen\/swarmlet\/v1\/control\.js$/, /dist\/services\/pki\//];
const heavyIn = (modules: string[]) => HEAVY.filter((re) => modules.some((m) => re.test(m))).map(String);

test.each([[['--version']], [['--help']], [['service', 'create', '--help']], [['service', 'ls', '--bogus']]])('swarmlet %j loads no daemon, gRPC, etcd, logging or x509 code', async (args) => {
  const res = await loaded(args);
  expect(res.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
  expect(heavyIn(res.modules)).toEqual([]);
});

test('a call to a daemon loads the gRPC client, but not the daemon, etcd, logging or x509', async () => {
  const res = await loaded(['-H', `unix://${join(dir, 'nobody.sock')}`, 'info']);
  expect(res.code).toBe(1);
  expect(res.stderr.trim()).toBe(`Error: cannot connect to the swarmlet daemon at unix://${join(dir, 'nobody.sock')} (ENOENT): is it running?`);
  expect(heavyIn(res.modules)).toEqual([String(HEAVY[0]), String(HEAVY[5])]);
});

const commandModules = (modules: string[]) => modules.filter((m) => /dist\/cli\/commands\/(?!context)[\w-]+\.js$/.test(m)).map((m) => m.replace(/.*\/dist\/cli\/commands\//, '')).sort();

test('a command loads its own command module only; --version loads not even the option parser', async () => {
  expect(commandModules((await loaded(['service', 'ls', '--help'])).modules)).toEqual(['service.js']);
  expect(commandModules((await loaded(['-H', `unix://${join(dir, 'nobody.sock')}`, 'ps', '-a'])).modules)).toEqual(['container.js', 'terminal.js', 'volume.js']);
  const version = await loaded(['--version']);
  expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  expect(version.modules.filter((m) => /node_modules\/yargs\//.test(m))).toEqual([]);
  // With no command word, all of them load, so that --help lists every command.
  const help = await loaded(['--help']);
  expect(commandModules(help.modules).length).toBeGreaterThan(10);
  expect(help.stdout).toMatch(/swarmlet compose/);
});
