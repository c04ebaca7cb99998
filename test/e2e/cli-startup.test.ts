/**
 * What a CLI call loads before it does its work: --version, --help and bad usage load neither the
 * daemon nor grpc-js, and a call that talks to a daemon loads the client side only (no etcd3, no
 * pino, no agent or manager). Every e2e test runs the CLI hundreds of times. Run through test/run.sh.
 *
 * The built CLI (dist/cli/main.js) runs from one bundle with its code cache (cli/bundle-entry.ts):
 * what it would load module by module is read from tsc's output of the same sources (dist/cli/run.js),
 * which the bundle keeps as lazy as they are.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BUNDLE_FILE, bundleKey, CODE_CACHE_FILE, readCodeCache } from '../../cli/code-cache';
import { requireBuiltCli } from '../lab/lab';
import { runCommand } from '../lab/ip-command';

let dir: string;
/** The CLI as tsc wrote it, module by module. */
let main: string;
/** The CLI as built: the bundle's entry. */
let built: string;

beforeAll(() => {
  built = requireBuiltCli();
  main = join(dirname(built), 'run.js');
  dir = mkdtempSync(join(tmpdir(), 'swarmlet-cli-startup-'));
  // Preloaded into the CLI: on exit, it writes the files the process had loaded.
  writeFileSync(join(dir, 'record.js'), `process.on('exit', () => require('node:fs').writeFileSync(process.env.LOADED_FILE, JSON.stringify(Object.keys(require.cache))));\n`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function loaded(args: string[], cli = main): Promise<{ code: number; stdout: string; stderr: string; modules: string[] }> {
  const file = join(dir, `loaded-${args.join('_').replace(/[^\w-]/g, '')}.json`);
  const res = await runCommand([process.execPath, '--require', join(dir, 'record.js'), cli, ...args], { env: { LOADED_FILE: file }, timeoutMs: 60_000 });
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

describe('the built CLI', () => {
  const nobody = () => `unix://${join(dir, 'nobody.sock')}`;

  test('runs from its bundle: a call loads no module file but the entry and its cache reader', async () => {
    const res = await loaded(['-H', nobody(), 'info'], built);
    expect(res.code).toBe(1);
    expect(res.stderr.trim()).toBe(`Error: cannot connect to the swarmlet daemon at ${nobody()} (ENOENT): is it running?`);
    expect(res.modules.filter((m) => !m.startsWith(dir)).map((m) => m.replace(/.*\/dist\/cli\//, ''))).toEqual(['main.js', 'code-cache.js']);
  });

  test('answers as the unbundled CLI does: help, version, usage errors', async () => {
    for (const args of [['--help'], ['--version'], ['service', 'create', '--help'], ['service', 'ls', '--bogus'], ['completion', 'bash']]) {
      const b = await loaded(args, built);
      const u = await loaded(args);
      expect({ args, code: b.code, stdout: b.stdout, stderr: b.stderr }).toEqual({ args, code: u.code, stdout: u.stdout, stderr: u.stderr });
    }
  });

  test('has a code cache made for the bundle beside it', () => {
    const cliDir = dirname(built);
    expect(readCodeCache(join(cliDir, CODE_CACHE_FILE), bundleKey(readFileSync(join(cliDir, BUNDLE_FILE), 'utf8')))).toBeDefined();
  });

  test('a bundle changed after its cache was made runs as changed, not from the cache', async () => {
    // A copy of the built CLI whose bundle says one word differently, in a string of the same length.
    const cliDir = dirname(built);
    const copy = join(dir, 'copy', 'dist', 'cli');
    mkdirSync(copy, { recursive: true });
    for (const f of ['main.js', 'code-cache.js', CODE_CACHE_FILE]) copyFileSync(join(cliDir, f), join(copy, f));
    const bundle = readFileSync(join(cliDir, BUNDLE_FILE), 'utf8');
    expect(bundle).toContain('cannot connect to the swarmlet daemon at');
    writeFileSync(join(copy, BUNDLE_FILE), bundle.replace('cannot connect to the swarmlet daemon at', 'cannot connect to the swarmlet daemxn at'));
    const res = await runCommand([process.execPath, join(copy, 'main.js'), '-H', nobody(), 'info'], { timeoutMs: 60_000 });
    expect(res.stderr.trim()).toBe(`Error: cannot connect to the swarmlet daemxn at ${nobody()} (ENOENT): is it running?`);
  });
});
