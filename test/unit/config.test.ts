import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SwarmletError } from '../../services/common/errors';
import { DEFAULT_API_PORT, parseHostPort } from '../../services/common/addr';
import { DEFAULT_DATA_DIR, DEFAULT_HOST, DaemonFlags, loadDaemonConfig } from '../../services/config/config';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmlet-config-test-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

let fileCount = 0;
/** Writes a config file (an object is written as JSON, a string as is) and returns its path. */
function configFile(content: unknown): string {
  const file = path.join(dir, `daemon-${++fileCount}.json`);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function refusal(flags: DaemonFlags, env: NodeJS.ProcessEnv): SwarmletError {
  try {
    loadDaemonConfig(flags, env);
  } catch (err) {
    expect(err).toBeInstanceOf(SwarmletError);
    return err as SwarmletError;
  }
  throw new Error('expected loadDaemonConfig to refuse');
}

describe('loadDaemonConfig precedence', () => {
  const fileValues = {
    dataDir: '/from/file',
    host: 'unix:///from/file.sock',
    logLevel: 'warn',
    hostname: 'file-host',
    etcdBinary: '/file/etcd',
    cgroupParent: 'file/tasks',
    netnsPrefix: 'file-ns',
    insecureRegistries: ['file-registry:5000'],
  };
  const envValues = {
    SWARMLET_DATA_DIR: '/from/env',
    SWARMLET_HOST: 'unix:///from/env.sock',
    SWARMLET_LOG_LEVEL: 'debug',
    SWARMLET_HOSTNAME: 'env-host',
    SWARMLET_ETCD_BINARY: '/env/etcd',
    SWARMLET_CGROUP_PARENT: 'env-tasks',
    SWARMLET_NETNS_PREFIX: 'env-ns',
    SWARMLET_INSECURE_REGISTRIES: '10.0.0.5:5000, registry.lab',
  };
  const flagValues = { dataDir: '/from/flags', host: 'unix:///from/flags.sock', logLevel: 'trace' };

  test('defaults, with an empty config file', () => {
    const cfg = loadDaemonConfig({ config: configFile({}) }, {});
    expect(cfg).toEqual({ dataDir: DEFAULT_DATA_DIR, host: DEFAULT_HOST, logLevel: 'info', hostname: os.hostname(), etcdBinary: 'etcd', cgroupParent: 'swarmlet', netnsPrefix: 'swl', insecureRegistries: [] });
  });

  test('the file beats the defaults', () => {
    expect(loadDaemonConfig({ config: configFile(fileValues) }, {})).toEqual(fileValues);
  });

  test('the environment beats the file', () => {
    const cfg = loadDaemonConfig({ config: configFile(fileValues) }, envValues);
    expect(cfg).toEqual({ dataDir: '/from/env', host: 'unix:///from/env.sock', logLevel: 'debug', hostname: 'env-host', etcdBinary: '/env/etcd', cgroupParent: 'env-tasks', netnsPrefix: 'env-ns', insecureRegistries: ['10.0.0.5:5000', 'registry.lab'] });
  });

  test('flags beat the environment', () => {
    const cfg = loadDaemonConfig({ ...flagValues, config: configFile(fileValues) }, envValues);
    expect(cfg).toEqual({ dataDir: '/from/flags', host: 'unix:///from/flags.sock', logLevel: 'trace', hostname: 'env-host', etcdBinary: '/env/etcd', cgroupParent: 'env-tasks', netnsPrefix: 'env-ns', insecureRegistries: ['10.0.0.5:5000', 'registry.lab'] });
  });

  test('each setting falls through on its own', () => {
    const cfg = loadDaemonConfig({ logLevel: 'error', config: configFile({ host: 'unix:///f.sock', hostname: 'file-host' }) }, { SWARMLET_DATA_DIR: '/env/data' });
    expect(cfg).toEqual({ dataDir: '/env/data', host: 'unix:///f.sock', logLevel: 'error', hostname: 'file-host', etcdBinary: 'etcd', cgroupParent: 'swarmlet', netnsPrefix: 'swl', insecureRegistries: [] });
  });

  test('SWARMLET_CONFIG names the file; the --config flag beats it', () => {
    const fromEnv = configFile({ dataDir: '/env-named' });
    const fromFlag = configFile({ dataDir: '/flag-named' });
    expect(loadDaemonConfig({}, { SWARMLET_CONFIG: fromEnv }).dataDir).toBe('/env-named');
    expect(loadDaemonConfig({ config: fromFlag }, { SWARMLET_CONFIG: fromEnv }).dataDir).toBe('/flag-named');
  });

  test('only the env object it is given is read, not process.env', () => {
    const saved = process.env.SWARMLET_DATA_DIR;
    process.env.SWARMLET_DATA_DIR = '/from/process/env';
    try {
      expect(loadDaemonConfig({ config: configFile({}) }, {}).dataDir).toBe(DEFAULT_DATA_DIR);
    } finally {
      if (saved === undefined) delete process.env.SWARMLET_DATA_DIR;
      else process.env.SWARMLET_DATA_DIR = saved;
    }
  });

  test('the result is frozen', () => {
    const cfg = loadDaemonConfig({ config: configFile({}) }, {});
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(() => {
      (cfg as { dataDir: string }).dataDir = '/elsewhere';
    }).toThrow(TypeError);
    expect(cfg.dataDir).toBe(DEFAULT_DATA_DIR);
  });
});

describe('loadDaemonConfig refusals', () => {
  test.each<[string, () => [DaemonFlags, NodeJS.ProcessEnv], RegExp]>([
    ['a bad log level in flags', () => [{ logLevel: 'loud', config: configFile({}) }, {}], /invalid log level loud/],
    ['a bad log level in the environment', () => [{ config: configFile({}) }, { SWARMLET_LOG_LEVEL: 'INFO' }], /invalid log level INFO/],
    ['a bad log level in the file', () => [{ config: configFile({ logLevel: 'verbose' }) }, {}], /invalid log level verbose/],
    ['pino\'s "silent" level, which the daemon does not offer', () => [{ logLevel: 'silent', config: configFile({}) }, {}], /invalid log level/],
    ['unknown keys in the file', () => [{ config: configFile({ dataDir: '/x', logLvl: 'info', extra: 1 }) }, {}], /unknown keys logLvl, extra/],
    ['a file that is not JSON', () => [{ config: configFile('{ dataDir: ') }, {}], /config file .*daemon-\d+\.json: /],
    ['a file that is a JSON array', () => [{ config: configFile([]) }, {}], /not a JSON object/],
    ['a file that is JSON null', () => [{ config: configFile('null') }, {}], /not a JSON object/],
    ['a --config file that does not exist', () => [{ config: '/nonexistent/swarmlet/daemon.json' }, {}], /config file \/nonexistent\/swarmlet\/daemon.json does not exist/],
    ['a SWARMLET_CONFIG file that does not exist', () => [{}, { SWARMLET_CONFIG: '/nonexistent/swarmlet/env.json' }], /does not exist/],
    ['a tcp host', () => [{ host: 'tcp://127.0.0.1:2375', config: configFile({}) }, {}], /unix socket only/],
    ['a malformed host', () => [{ config: configFile({}) }, { SWARMLET_HOST: '/run/x.sock' }], /invalid host/],
    ['a bad insecure registry in the environment', () => [{ config: configFile({}) }, { SWARMLET_INSECURE_REGISTRIES: 'http://10.0.0.5:5000' }], /invalid insecure registry "http:\/\/10.0.0.5:5000": expected host\[:port\]/],
    ['insecureRegistries in the file that is not a list', () => [{ config: configFile({ insecureRegistries: '10.0.0.5:5000' }) }, {}], /insecureRegistries must be a list/],
  ])('refuses %s', (_what, args, message) => {
    const err = refusal(...args());
    expect(err.kind).toBe('InvalidArgument');
    expect(err.message).toMatch(message);
  });

  test('a bad value in the file is refused even when a flag would override it', () => {
    // The file is validated as a whole: unknown keys are an error whatever else is set.
    const err = refusal({ logLevel: 'info', config: configFile({ loglevel: 'info' }) }, {});
    expect(err.message).toMatch(/unknown keys loglevel/);
  });

  test.each([
    ['dataDir', 42],
    ['hostname', ['a']],
    ['etcdBinary', { path: 'etcd' }],
    ['host', 5],
    ['logLevel', null],
    ['dataDir', ''],
  ])('refuses a file value of the wrong type or empty: %s = %j', (key, value) => {
    const err = refusal({ config: configFile({ [key]: value }) }, {});
    expect(err.kind).toBe('InvalidArgument');
    expect(err.message).toContain(key);
  });
});

describe('dnsUpstreams', () => {
  test('unset by default; from the file; the environment beats the file', () => {
    expect(loadDaemonConfig({ config: configFile({}) }, {}).dnsUpstreams).toBeUndefined();
    const file = configFile({ dnsUpstreams: ['192.0.2.1', '[2001:db8::1]:5353'] });
    expect(loadDaemonConfig({ config: file }, {}).dnsUpstreams).toEqual(['192.0.2.1', '[2001:db8::1]:5353']);
    expect(loadDaemonConfig({ config: file }, { SWARMLET_DNS_UPSTREAMS: '127.0.0.53:5353, 192.0.2.2' }).dnsUpstreams).toEqual(['127.0.0.53:5353', '192.0.2.2']);
  });

  test.each([['dns.example:53'], ['192.0.2.1:0'], ['192.0.2.1:99999'], ['300.1.1.1']])('refuses %s', (bad) => {
    const err = refusal({ config: configFile({}) }, { SWARMLET_DNS_UPSTREAMS: bad });
    expect(err.message).toMatch(/invalid DNS upstream/);
  });

  test('refuses a file value that is not a list', () => {
    expect(refusal({ config: configFile({ dnsUpstreams: '192.0.2.1' }) }, {}).message).toMatch(/dnsUpstreams must be a list/);
  });
});

describe('parseHostPort', () => {
  test.each<[string, number | undefined, { host: string; port: number }]>([
    ['198.51.100.7', undefined, { host: '198.51.100.7', port: DEFAULT_API_PORT }],
    ['198.51.100.7:4000', undefined, { host: '198.51.100.7', port: 4000 }],
    ['  10.0.0.1:1 \n', undefined, { host: '10.0.0.1', port: 1 }],
    ['255.255.255.255:65535', undefined, { host: '255.255.255.255', port: 65535 }],
    ['0.0.0.0', 2379, { host: '0.0.0.0', port: 2379 }],
    ['127.0.0.1:0080', undefined, { host: '127.0.0.1', port: 80 }],
  ])('%j (default port %p)', (text, defaultPort, expected) => {
    expect(parseHostPort(text, defaultPort)).toEqual(expected);
  });

  test('the default port is 2377', () => {
    expect(DEFAULT_API_PORT).toBe(2377);
  });

  test.each([
    ['', /invalid address ""/],
    ['localhost', /expected IPv4\[:PORT\]/],
    ['localhost:2377', /expected IPv4/],
    ['256.1.1.1', /expected IPv4/],
    ['1.2.3', /expected IPv4/],
    ['1.2.3.4.5', /expected IPv4/],
    ['01.2.3.4', /expected IPv4/],
    ['1.2.3.4:', /expected IPv4/],
    ['1.2.3.4:abc', /expected IPv4/],
    ['1.2.3.4:80:81', /expected IPv4/],
    ['[::1]:2377', /expected IPv4/],
    ['::1', /expected IPv4/],
    ['1.2.3.4 :80', /expected IPv4/],
    ['1.2.3.4:0', /invalid port in address "1.2.3.4:0"/],
    ['1.2.3.4:65536', /invalid port/],
    ['1.2.3.4:99999999999999999999', /invalid port/],
  ])('refuses %j', (text, message) => {
    let err: unknown;
    try {
      parseHostPort(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SwarmletError);
    expect((err as SwarmletError).kind).toBe('InvalidArgument');
    expect((err as SwarmletError).message).toMatch(message);
  });

  test('the message names what was parsed', () => {
    expect(() => parseHostPort('nope', 2377, 'advertise address')).toThrow('invalid advertise address "nope": expected IPv4[:PORT]');
  });
});
