import { loadComposeProject } from '../../services/compose';
import {
  containerName,
  LABEL_HASH,
  LABEL_PROJECT,
  planContainerConfig,
  planDown,
  planOrphans,
  planResources,
  planServiceUp,
  planStartOrder,
  resourceName,
} from '../../services/compose/local-plan';
import { Container, ContainerConfig } from '../../services/gen/swarmlet/v1/control';
import { MountType, Network, PullPolicy } from '../../services/gen/swarmlet/v1/types';

const FILE = `
services:
  web:
    image: exec:/
    command: ["sleep", "1000"]
    entrypoint: ["/bin/sh", "-c"]
    environment: { GREETING: hi }
    ports: ["8080:80", "127.0.0.1::81/udp"]
    volumes: ["data:/data", "/srv:/srv:ro", "shared:/shared"]
    networks:
      front: { aliases: [www] }
      back:
    depends_on: [api]
    restart: always
    deploy:
      replicas: 2
      resources: { limits: { cpus: "0.5", memory: 64m } }
  api:
    build: ./api
    depends_on:
      db: { condition: service_healthy }
    network_mode: host
  db:
    image: exec:/
    healthcheck: { test: "true", interval: 1s }
networks:
  front:
  back:
    external: true
    name: shared-back
volumes:
  data:
  shared:
    external: true
`;

const project = loadComposeProject({ files: [{ name: 'docker-compose.yml', path: '/home/u/My-App/docker-compose.yml' }], env: {} }, { readFile: (p) => (p.endsWith('.yml') ? FILE : undefined) }).project;
const hash = (s: string) => `h${s.length}`;

function container(config: ContainerConfig, id: string, status = 'running'): Container {
  return { id, name: config.name, createdAt: '2026-12-05T00:00:00Z', config, state: { status, pid: 1, exitCode: 0, oomKilled: false, startedAt: '', finishedAt: '', error: '', restartCount: 0 }, endpoints: [], ports: [] };
}

test('names: PROJECT_KEY for what the project makes, the real name for external ones, PROJECT-SERVICE-N for containers', () => {
  expect(project.name).toBe('my-app');
  expect(resourceName(project, 'front', project.networks.front)).toBe('my-app_front');
  expect(resourceName(project, 'back', project.networks.back)).toBe('shared-back');
  expect(resourceName(project, 'shared', project.volumes.shared)).toBe('shared');
  expect(containerName(project, project.services.web, 2)).toBe('my-app-web-2');
});

test('start order follows depends_on', () => {
  expect(planStartOrder(project)).toEqual(['db', 'api', 'web']);
  expect(planStartOrder(project, ['api'])).toEqual(['db', 'api']);
  expect(() => planStartOrder(project, ['nope'])).toThrow('no such service: nope');
});

test('a container config carries what the service asks for, with compose labels', () => {
  const c = planContainerConfig(project, project.services.web, 1, hash);
  expect(c.name).toBe('my-app-web-1');
  expect(c.spec?.container).toMatchObject({ image: 'exec:/', command: ['/bin/sh', '-c'], args: ['sleep', '1000'], env: ['GREETING=hi'], pull: PullPolicy.PULL_POLICY_MISSING });
  expect(c.spec?.container?.mounts).toEqual([
    { type: MountType.MOUNT_TYPE_VOLUME, source: 'my-app_data', target: '/data', readonly: false, tmpfsSizeBytes: 0 },
    { type: MountType.MOUNT_TYPE_BIND, source: '/srv', target: '/srv', readonly: true, tmpfsSizeBytes: 0 },
    { type: MountType.MOUNT_TYPE_VOLUME, source: 'shared', target: '/shared', readonly: false, tmpfsSizeBytes: 0 },
  ]);
  expect(c.spec?.resources?.limits).toEqual({ nanoCpus: 5e8, memoryBytes: 64 * 1024 ** 2, pids: 0 });
  expect(c.spec?.networks).toEqual(['my-app_front', 'shared-back']);
  expect(c.aliases).toEqual(['web', 'www']);
  expect(c.endpointSettings).toEqual([{ network: 'shared-back', aliases: ['web'], ipv4: '' }]);
  expect(c.portBindings).toEqual([
    { protocol: 'tcp', containerPort: 80, hostIp: '', hostPort: 8080 },
    { protocol: 'udp', containerPort: 81, hostIp: '127.0.0.1', hostPort: 0 },
  ]);
  expect(c.restart).toBe('always');
  expect(c.labels).toMatchObject({ [LABEL_PROJECT]: 'my-app', 'com.docker.compose.service': 'web', 'com.docker.compose.container-number': '1' });
  expect(c.labels[LABEL_HASH]).toMatch(/^h\d+$/);

  const api = planContainerConfig(project, project.services.api, 1, hash);
  expect(api.spec?.container?.image).toBe('my-app-api');
  expect(api.spec?.container?.pull).toBe(PullPolicy.PULL_POLICY_NEVER);
  expect(api.spec?.networks).toEqual(['host']);
  expect(planContainerConfig(project, project.services.db, 1, hash).spec?.container?.healthcheck).toEqual({ test: ['CMD-SHELL', 'true'], intervalMs: 1000, timeoutMs: 0, retries: 0, startPeriodMs: 0 });
});

test('up: creates what is missing, leaves the unchanged running alone, starts the stopped, recreates the changed, removes extra replicas', () => {
  const one = planContainerConfig(project, project.services.web, 1, hash);
  const two = planContainerConfig(project, project.services.web, 2, hash);
  expect(planServiceUp(project, 'web', [], hash).map((a) => `${a.kind} ${a.name}`)).toEqual(['create my-app-web-1', 'create my-app-web-2']);
  expect(planServiceUp(project, 'web', [container(one, 'a'), container(two, 'b', 'exited')], hash).map((a) => a.kind)).toEqual(['running', 'start']);
  const changed = { ...two, labels: { ...two.labels, [LABEL_HASH]: 'old' } };
  const three = { ...two, name: 'my-app-web-3', labels: { ...two.labels, 'com.docker.compose.container-number': '3' } };
  const other = { ...one, labels: { ...one.labels, [LABEL_PROJECT]: 'other' } };
  expect(planServiceUp(project, 'web', [container(one, 'a'), container(changed, 'b'), container(three, 'c'), container(other, 'd')], hash).map((a) => `${a.kind} ${a.name}`)).toEqual([
    'running my-app-web-1',
    'recreate my-app-web-2',
    'remove my-app-web-3',
  ]);
  expect(planServiceUp(project, 'web', [container(one, 'a'), container(two, 'b')], hash, true).map((a) => a.kind)).toEqual(['recreate', 'recreate']);
});

test('resources: the project makes its networks and volumes, refuses a same-named network it did not make, needs external ones', () => {
  const external: Network = { id: 'n1', meta: undefined, spec: { name: 'shared-back', driver: 'bridge', ipam: undefined, attachable: false, internal: false, options: {}, labels: {} }, vni: 0, subnet: '', gateway: '', builtin: false };
  const vols = [{ name: 'shared', labels: {} }];
  const { actions } = planResources(project, ['web'], [external], vols);
  expect(actions.map((a) => `${a.kind} ${a.name}`)).toEqual(['createNetwork my-app_front', 'createVolume my-app_data']);
  expect(actions[0]).toMatchObject({ spec: { driver: 'bridge', labels: { [LABEL_PROJECT]: 'my-app', 'com.docker.compose.network': 'front' } } });
  expect(() => planResources(project, ['web'], [], vols)).toThrow('network shared-back declared as external, but could not be found');
  expect(() => planResources(project, ['web'], [external], [])).toThrow('external volume "shared" not found');
  const squatter = { ...external, id: 'n2', spec: { ...external.spec!, name: 'my-app_front' } };
  expect(() => planResources(project, ['web'], [external, squatter], vols)).toThrow(/a network with name my-app_front exists but was not created for project "my-app"/);
  expect(planResources(project, ['db'], [], []).actions.map((a) => a.name)).toEqual(['my-app_default']);
  expect(planResources(project, ['api'], [], []).actions).toEqual([]);
});

test("down: the project's containers, networks and (with -v) volumes by label, nothing else", () => {
  const mine = container(planContainerConfig(project, project.services.web, 1, hash), 'a');
  const gone = container({ ...planContainerConfig(project, project.services.db, 1, hash), name: 'my-app-old-1', labels: { [LABEL_PROJECT]: 'my-app', 'com.docker.compose.service': 'old' } }, 'b');
  const theirs = container({ ...planContainerConfig(project, project.services.web, 1, hash), name: 'outsider', labels: {} }, 'c');
  const net = (name: string, labels: Record<string, string>): Network => ({ id: name, meta: undefined, spec: { name, driver: 'bridge', ipam: undefined, attachable: false, internal: false, options: {}, labels }, vni: 0, subnet: '', gateway: '', builtin: false });
  const plan = planDown('my-app', [mine, gone, theirs], [net('my-app_front', { [LABEL_PROJECT]: 'my-app' }), net('shared-back', {}), net('mine-too', {})], [{ name: 'my-app_data', labels: { [LABEL_PROJECT]: 'my-app' } }, { name: 'shared', labels: {} }], true);
  expect(plan.containers.map((c) => c.name)).toEqual(['my-app-old-1', 'my-app-web-1']);
  expect(plan.networks).toEqual(['my-app_front']);
  expect(plan.volumes).toEqual(['my-app_data']);
  expect(planDown('my-app', [], [], [{ name: 'my-app_data', labels: { [LABEL_PROJECT]: 'my-app' } }], false).volumes).toEqual([]);
  expect(planOrphans(project, [mine, gone]).map((c) => c.name)).toEqual(['my-app-old-1']);
});
