import { Container, ContainerConfig } from '../../services/gen/swarmlet/v1/control';
import {
  humanDuration,
  matchesFilters,
  parseFilters,
  parseRestartPolicy,
  planContainerName,
  planGeneratedName,
  planInspect,
  planRestart,
  planStatusText,
  resolveContainer,
  validateContainerConfig,
} from '../../agent/containers/container-plans';
import { planLocalAddress, planLocalDnsRecords, planLocalSubnet, LOCAL_BUILTIN_NETWORKS, LocalNetwork } from '../../agent/containers/local-network-plans';
import { containerConfigFromFlags, parseEnvFile, parseVolumeFlag } from '../../cli/container-flags';
import { planSwapLimit } from '../../agent/runtime/cgroup-plans';

const ID = 'a'.repeat(64);
const base = (over: Partial<Container> = {}): Container => ({
  id: ID,
  name: 'web',
  createdAt: '2026-01-01T00:00:00.000Z',
  config: containerConfigFromFlags({ label: ['k=v'] }, 'exec:/', ['sleep', '1']),
  state: { status: 'running', pid: 7, exitCode: 0, oomKilled: false, startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '', error: '', restartCount: 0 },
  endpoints: [{ networkId: 'bridge', networkName: 'bridge', driver: 'bridge', ipv4Cidr: '172.17.0.2/16', gateway: '172.17.0.1', mac: '02:42:ac:11:00:02', aliases: [], interfaceName: 'eth0' }],
  ports: [],
  ...over,
});

describe('names', () => {
  test('a generated name is adjective_noun and avoids taken ones', () => {
    let i = 0;
    const seq = [0, 0, 0, 0, 0.5, 0.5];
    const name = planGeneratedName(() => seq[i++ % seq.length], new Set(['admiring_agnesi']));
    expect(name).toMatch(/^[a-z]+_[a-z]+\d?$/);
    expect(name).not.toBe('admiring_agnesi');
  });
  test("a taken name gets docker's conflict message; a malformed one docker's rule", () => {
    expect(() => planContainerName('web', [{ id: ID, name: 'web' }])).toThrow(`Conflict. The container name "/web" is already in use by container "${ID}". You have to remove (or rename) that container to be able to reuse that name.`);
    expect(() => planContainerName('bad name', [])).toThrow('Invalid container name (bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed');
    expect(planContainerName('/alpine1', [])).toBe('alpine1');
  });
  test('containers are found by name, id or unique prefix', () => {
    const list = [{ id: ID, name: 'web' }, { id: 'ab'.repeat(32), name: 'db' }];
    expect(resolveContainer(list, 'db').name).toBe('db');
    expect(resolveContainer(list, 'aaa').name).toBe('web');
    expect(() => resolveContainer(list, 'a')).toThrow('multiple IDs found with provided prefix: a');
    expect(() => resolveContainer(list, 'nosuch')).toThrow('No such container: nosuch');
  });
});

describe('restart policies', () => {
  test.each([
    ['', { name: 'no', maximumRetryCount: 0 }],
    ['no', { name: 'no', maximumRetryCount: 0 }],
    ['on-failure', { name: 'on-failure', maximumRetryCount: 0 }],
    ['on-failure:3', { name: 'on-failure', maximumRetryCount: 3 }],
    ['always', { name: 'always', maximumRetryCount: 0 }],
    ['unless-stopped', { name: 'unless-stopped', maximumRetryCount: 0 }],
  ])('%s parses', (text, policy) => expect(parseRestartPolicy(text)).toEqual(policy));
  test.each(['sometimes', 'on-failure:x', 'always:2', 'on-failure:1:2'])('%s is refused', (text) => expect(() => parseRestartPolicy(text)).toThrow(/^invalid restart policy format/));
  test.each([
    ['no', 1, 0, false, false],
    ['always', 0, 5, false, true],
    ['always', 1, 0, true, false],
    ['unless-stopped', 0, 0, false, true],
    ['on-failure', 0, 0, false, false],
    ['on-failure', 2, 9, false, true],
    ['on-failure:2', 2, 1, false, true],
    ['on-failure:2', 2, 2, false, false],
  ])('%s, exit %d after %d restarts, stopped by the user %s: restart %s', (policy, exit, count, stopped, want) =>
    expect(planRestart(parseRestartPolicy(policy as string), exit as number, count as number, stopped as boolean)).toBe(want));
  test('--rm with a restart policy is refused', () => {
    expect(() => validateContainerConfig(containerConfigFromFlags({ rm: true, restart: 'always' }, 'exec:/', ['true']))).toThrow('Conflicting options: --restart and --rm');
  });
  test('host or none with another network is refused', () => {
    expect(() => validateContainerConfig(containerConfigFromFlags({ network: ['host', 'bridge'] }, 'exec:/', ['true']))).toThrow(/multiple networks/);
  });
});

describe('ps and inspect', () => {
  const now = new Date('2026-01-01T00:00:05.000Z');
  test('status texts as docker words them', () => {
    expect(planStatusText(base(), now)).toBe('Up 5 seconds');
    expect(planStatusText(base({ state: { ...base().state!, status: 'exited', exitCode: 137, finishedAt: '2026-01-01T00:00:04.500Z' } }), now)).toBe('Exited (137) Less than a second ago');
    expect(planStatusText(base({ state: { ...base().state!, status: 'created' } }), now)).toBe('Created');
    expect(humanDuration(90 * 60 * 1000)).toBe('2 hours');
  });
  test('filters: keys and, values of one key or', () => {
    const c = base();
    expect(matchesFilters(c, parseFilters(['name=we', 'label=k=v']))).toBe(true);
    expect(matchesFilters(c, parseFilters(['status=exited']))).toBe(false);
    expect(matchesFilters(c, parseFilters(['status=exited', 'status=running']))).toBe(true);
    expect(matchesFilters(c, parseFilters(['network=bridge']))).toBe(true);
    expect(() => parseFilters(['colour=red'])).toThrow("invalid filter 'colour'");
  });
  test('inspect is shaped like docker\'s', () => {
    const oom = base({ state: { ...base().state!, status: 'exited', exitCode: 137, oomKilled: true } });
    expect(planInspect(oom)).toMatchObject({
      Id: ID,
      Name: '/web',
      State: { Status: 'exited', Running: false, OOMKilled: true, ExitCode: 137, Pid: 0 },
      Config: { Image: 'exec:/', Cmd: ['sleep', '1'], Labels: { k: 'v' } },
      HostConfig: { NetworkMode: 'bridge', RestartPolicy: { Name: 'no', MaximumRetryCount: 0 } },
      NetworkSettings: { Networks: { bridge: { IPAddress: '172.17.0.2', IPPrefixLen: 16, Gateway: '172.17.0.1', MacAddress: '02:42:ac:11:00:02' } } },
    });
  });
});

describe('flags', () => {
  test('-v forms: named, bind, anonymous, read-only; bad ones refused', () => {
    expect(parseVolumeFlag('data:/data')).toMatchObject({ type: 1, source: 'data', target: '/data', readonly: false });
    expect(parseVolumeFlag('/srv:/srv:ro')).toMatchObject({ type: 0, source: '/srv', target: '/srv', readonly: true });
    expect(parseVolumeFlag('/cache')).toMatchObject({ type: 1, source: '', target: '/cache' });
    expect(() => parseVolumeFlag('bad::/x')).toThrow("invalid volume specification: 'bad::/x'");
    expect(() => parseVolumeFlag('/a:/b:rx')).toThrow('invalid mode: rx');
  });
  test('limits, env, entrypoint and command', () => {
    const cfg = containerConfigFromFlags({ memory: '64m', cpus: '0.5', pidsLimit: '20', env: ['A=1', 'HOME_DIR'], envFileLines: parseEnvFile('# c\nB=2\n\n'), entrypoint: 'sh' }, 'alpine', ['-c', 'true'], { HOME_DIR: '/root' });
    expect(cfg.spec?.resources?.limits).toEqual({ memoryBytes: 64 * 1024 * 1024, nanoCpus: 5e8, pids: 20 });
    expect(cfg.spec?.container).toMatchObject({ image: 'alpine', command: ['sh'], args: ['-c', 'true'], env: ['B=2', 'A=1', 'HOME_DIR=/root'] });
    expect(() => containerConfigFromFlags({ memory: '64m', memorySwap: '32m' }, 'alpine', [])).toThrow('Minimum memoryswap limit should be larger than memory limit, see usage');
  });
  test('--memory-swap: docker\'s -1 and N >= --memory, and its messages for bad combinations', () => {
    const limits = (memorySwap: string) => containerConfigFromFlags({ memory: '64m', memorySwap }, 'alpine', []).spec?.resources?.limits;
    expect(limits('-1')).toMatchObject({ memoryBytes: 64 * 1024 * 1024, memorySwapBytes: -1 });
    expect(limits('128m')).toMatchObject({ memorySwapBytes: 128 * 1024 * 1024 });
    expect(limits('64m')).toMatchObject({ memorySwapBytes: 64 * 1024 * 1024 });
    expect(limits('0')).not.toHaveProperty('memorySwapBytes');
    expect(() => containerConfigFromFlags({ memorySwap: '128m' }, 'alpine', [])).toThrow('You should always set the Memory limit when using Memoryswap limit, see usage');
    expect(() => containerConfigFromFlags({ memorySwap: '-1' }, 'alpine', [])).toThrow('You should always set the Memory limit when using Memoryswap limit, see usage');
    expect(() => containerConfigFromFlags({ memory: '64m', memorySwap: 'lots' }, 'alpine', [])).toThrow('invalid --memory-swap "lots"');
    expect(planInspect({ ...containerOf(containerConfigFromFlags({ memory: '64m', memorySwap: '-1' }, 'alpine', [])) }).HostConfig).toMatchObject({ Memory: 67108864, MemorySwap: -1 });
    expect(planInspect({ ...containerOf(containerConfigFromFlags({ memory: '64m' }, 'alpine', [])) }).HostConfig).toMatchObject({ Memory: 67108864, MemorySwap: 67108864 });
  });
  test('--read-only and --init go into the spec and show in inspect', () => {
    const cfg = containerConfigFromFlags({ readOnly: true, init: true }, 'alpine', []);
    expect(cfg.spec?.container).toMatchObject({ readOnly: true, init: true });
    expect(planInspect(containerOf(cfg)).HostConfig).toMatchObject({ ReadonlyRootfs: true, Init: true });
    const plain = containerConfigFromFlags({}, 'alpine', []);
    expect(plain.spec?.container).not.toHaveProperty('readOnly');
    expect(planInspect(containerOf(plain)).HostConfig).toMatchObject({ ReadonlyRootfs: false, Init: null });
  });
});

const containerOf = (config: ContainerConfig): Container => ({
  id: 'a'.repeat(64),
  name: 'c',
  createdAt: '2026-12-05T00:00:00.000Z',
  config,
  state: undefined,
  endpoints: [],
  ports: [],
});

describe('swap limits in cgroup files', () => {
  const M = 64 * 1024 * 1024;
  test.each([
    [1, M, 0, { file: 'memory.memsw.limit_in_bytes', value: String(M) }],
    [1, M, -1, { file: 'memory.memsw.limit_in_bytes', value: '-1' }],
    [1, M, 3 * M, { file: 'memory.memsw.limit_in_bytes', value: String(3 * M) }],
    [2, M, 0, { file: 'memory.swap.max', value: '0' }],
    [2, M, -1, { file: 'memory.swap.max', value: 'max' }],
    [2, M, 3 * M, { file: 'memory.swap.max', value: String(2 * M) }],
    [2, M, M, { file: 'memory.swap.max', value: '0' }],
  ] as const)('v%i memory %i swap %i', (version, memory, swap, want) => expect(planSwapLimit(version, memory, swap)).toEqual(want));
  test('no memory limit: no swap file; bad combinations refused with docker\'s messages', () => {
    expect(planSwapLimit(2, 0, 0)).toBeUndefined();
    expect(() => planSwapLimit(2, 0, M)).toThrow('You should always set the Memory limit when using Memoryswap limit, see usage');
    expect(() => planSwapLimit(1, M, M - 1)).toThrow('Minimum memoryswap limit should be larger than memory limit, see usage');
    expect(() => planSwapLimit(1, M, -2)).toThrow(/not valid/);
  });
});

describe('local IPAM', () => {
  const bridge = LOCAL_BUILTIN_NETWORKS[0];
  test('the lowest free address after the gateway, or the one asked for', () => {
    expect(planLocalAddress(bridge, new Set())).toBe('172.17.0.2');
    expect(planLocalAddress(bridge, new Set(['172.17.0.2']))).toBe('172.17.0.3');
    expect(planLocalAddress(bridge, new Set(), '172.17.5.5')).toBe('172.17.5.5');
    expect(() => planLocalAddress(bridge, new Set(['172.17.0.9']), '172.17.0.9')).toThrow('Address already in use: 172.17.0.9');
    expect(() => planLocalAddress(bridge, new Set(), '10.0.0.1')).toThrow(/does not belong/);
  });
});

describe('user bridges on a node in no swarm', () => {
  const mynet: LocalNetwork = { id: 'f'.repeat(64), name: 'mynet', driver: 'bridge', subnet: '172.19.0.0/16', gateway: '172.19.0.1' };
  test('a subnet clear of the host, the other networks and the gateway bridge; one asked for is checked', () => {
    expect(planLocalSubnet(LOCAL_BUILTIN_NETWORKS, [])).toEqual({ subnet: '172.19.0.0/16', gateway: '172.19.0.1' });
    expect(planLocalSubnet([...LOCAL_BUILTIN_NETWORKS, mynet], [{ node: 'h1', iface: 'eth0', subnet: '172.20.0.0/24' }]).subnet).toBe('172.21.0.0/16');
    expect(planLocalSubnet(LOCAL_BUILTIN_NETWORKS, [], '172.18.0.0/16')).toEqual({ subnet: '172.18.0.0/16', gateway: '172.18.0.1' });
    expect(() => planLocalSubnet(LOCAL_BUILTIN_NETWORKS, [], '172.17.5.0/24')).toThrow(/^Pool overlaps with other one on this address space: 172.17.5.0\/24 overlaps 172.17.0.0\/16 of network bridge$/);
    expect(() => planLocalSubnet(LOCAL_BUILTIN_NETWORKS, [{ node: 'h1', iface: 'eth0', subnet: '10.1.0.0/16' }], '10.1.2.0/24')).toThrow(/overlaps 10.1.0.0\/16 on interface eth0 of h1/);
  });
  test('DNS records: names and aliases on user bridges, none on the default bridge', () => {
    const records = planLocalDnsRecords([...LOCAL_BUILTIN_NETWORKS, mynet], [
      { containerId: 'c1', networkId: mynet.id, name: 'alpine1', hostname: 'c1', aliases: ['db'], ip: '172.19.0.2' },
      { containerId: 'c2', networkId: 'bridge', name: 'alpine4', hostname: 'c2', aliases: [], ip: '172.17.0.2' },
    ]);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ networkId: mynet.id, name: 'mynet' });
    expect(records[0].services.map((s) => [s.name, s.tasks[0].ip])).toEqual([['alpine1', '172.19.0.2'], ['db', '172.19.0.2']]);
  });
});
