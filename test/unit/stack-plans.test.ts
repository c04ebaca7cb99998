/** a compose project as a stack's swarm objects: names, labels, specs, and what a deploy again changes. */
import { loadComposeProject } from '../../services/compose';
import { LABEL_STACK, planServiceSpec, planStackDeploy, stackRows, StackExisting } from '../../cli/stack-plans';
import { validateServiceSpec } from '../../manager/orchestrator/service-spec';
import { planFileReferences } from '../../manager/file-object-plans';
import { EndpointMode, MountType, PortProtocol, PublishMode, RestartCondition, Secret, Service, ServiceSpec, UpdateFailureAction, UpdateOrder } from '../../services/gen/swarmlet/v1/types';

const FILE = `
services:
  web:
    image: registry.lab:5000/busybox
    command: ["httpd", "-f", "-p", "80"]
    ports:
      - "8080:80"
      - target: 53
        published: 5353
        protocol: udp
        mode: host
    deploy:
      replicas: 3
      placement:
        constraints: ["node.role==worker"]
      resources:
        limits: { cpus: "0.5", memory: 64M }
        reservations: { memory: 16M }
      update_config: { parallelism: 2, delay: 1s, failure_action: rollback, order: start-first }
      rollback_config: { parallelism: 0 }
      restart_policy: { condition: on-failure, delay: 2s, max_attempts: 3 }
  api:
    image: registry.lab:5000/busybox
    environment: { B: "2", A: "1" }
    networks: [back]
    deploy:
      mode: global
      endpoint_mode: dnsrr
  store:
    image: registry.lab:5000/busybox
    volumes: ["data:/data", "/srv:/srv:ro"]
    secrets:
      - pw
      - source: pw
        target: other
        uid: "33"
        mode: 0400
    configs: [conf]
    networks: [back, outside]
networks:
  back: {}
  outside: { external: true }
volumes:
  data: {}
secrets:
  pw: { file: ./pw.txt }
configs:
  conf: { external: true }
`;

const load = (text = FILE) => loadComposeProject({ files: [{ name: 'docker-compose.yml', path: '/p/docker-compose.yml' }], projectName: 'app', env: {} }, { readFile: (p) => (p === '/p/docker-compose.yml' ? text : undefined) }).project;
const none: StackExisting = { services: [], networks: [], secrets: [], configs: [] };
const withExternals: StackExisting = { ...none, networks: [{ id: 'n1', spec: { name: 'outside', driver: 'overlay', attachable: false, internal: false, options: {}, labels: {} }, vni: 0, subnet: '', gateway: '', builtin: false }], configs: [{ id: 'c1', spec: { name: 'conf', labels: {} }, dataSealed: Buffer.alloc(0) }] };
const identity = (s: ServiceSpec) => s;

test('each compose service becomes NAME_SERVICE with its deploy settings, labelled with the stack', () => {
  const p = load();
  const web = planServiceSpec(p, 'app', p.services.web);
  expect(web.name).toBe('app_web');
  expect(web.labels[LABEL_STACK]).toBe('app');
  expect(web.mode).toEqual({ $case: 'replicated', value: { replicas: 3 } });
  expect(web.task?.container?.args).toEqual(['httpd', '-f', '-p', '80']);
  expect(web.task?.placement?.constraints).toEqual(['node.role==worker']);
  expect(web.task?.resources).toEqual({ limits: { nanoCpus: 5e8, memoryBytes: 64 * 1024 ** 2, pids: 0 }, reservations: { nanoCpus: 0, memoryBytes: 16 * 1024 ** 2, pids: 0 } });
  expect(web.task?.restart).toEqual({ condition: RestartCondition.RESTART_CONDITION_ON_FAILURE, delayMs: 2000, maxAttempts: 3, windowMs: 0 });
  expect(web.update).toMatchObject({ parallelism: 2, delayMs: 1000, failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_ROLLBACK, order: UpdateOrder.UPDATE_ORDER_START_FIRST });
  expect(web.rollback).toMatchObject({ parallelism: 0 });
  expect(web.endpoint?.ports).toEqual([
    { protocol: PortProtocol.PORT_PROTOCOL_TCP, targetPort: 80, publishedPort: 8080, publishMode: PublishMode.PUBLISH_MODE_INGRESS },
    { protocol: PortProtocol.PORT_PROTOCOL_UDP, targetPort: 53, publishedPort: 5353, publishMode: PublishMode.PUBLISH_MODE_HOST },
  ]);
  expect(web.task?.networks).toEqual(['app_default']);
  const api = planServiceSpec(p, 'app', p.services.api);
  expect(api.mode).toEqual({ $case: 'global', value: {} });
  expect(api.endpoint?.mode).toBe(EndpointMode.ENDPOINT_MODE_DNSRR);
  expect(api.task?.container?.env).toEqual(['A=1', 'B=2']);
  expect(api.task?.networks).toEqual(['app_back']);
  const store = planServiceSpec(p, 'app', p.services.store);
  expect(store.task?.container?.mounts).toEqual([
    { type: MountType.MOUNT_TYPE_VOLUME, source: 'app_data', target: '/data', readonly: false, tmpfsSizeBytes: 0 },
    { type: MountType.MOUNT_TYPE_BIND, source: '/srv', target: '/srv', readonly: true, tmpfsSizeBytes: 0 },
  ]);
  expect(store.task?.container?.secrets).toEqual([
    { secretId: '', secretName: 'app_pw', file: { name: 'pw', uid: 0, gid: 0, mode: 0 } },
    { secretId: '', secretName: 'app_pw', file: { name: 'other', uid: 33, gid: 0, mode: 0o400 } },
  ]);
  expect(store.task?.container?.configs).toEqual([{ configId: '', configName: 'conf', file: { name: '/conf', uid: 0, gid: 0, mode: 0 } }]);
  expect(store.task?.networks).toEqual(['app_back', 'outside']);
});

test('each service answers to its compose name on each of its networks, and to the aliases the file gives there', () => {
  const p = load();
  expect(planServiceSpec(p, 'app', p.services.web).task?.networkAliases).toEqual([{ network: 'app_default', aliases: ['web'] }]);
  expect(planServiceSpec(p, 'app', p.services.store).task?.networkAliases).toEqual([
    { network: 'app_back', aliases: ['store'] },
    { network: 'outside', aliases: ['store'] },
  ]);
  const aliased = load(FILE.replace('    networks: [back]\n', '    networks:\n      back: { aliases: [backend, api] }\n'));
  const api = planServiceSpec(aliased, 'app', aliased.services.api);
  expect(api.task?.networkAliases).toEqual([{ network: 'app_back', aliases: ['api', 'backend'] }]);
  expect(validateServiceSpec(api).task?.networkAliases).toEqual(api.task?.networkAliases);
});

test('a first deploy makes the networks, secrets and services; externals must exist and are not made', () => {
  const plan = planStackDeploy(load(), 'app', withExternals, identity);
  expect(plan.networks.map((n) => [n.name, n.driver, n.labels[LABEL_STACK]])).toEqual([
    ['app_back', 'overlay', 'app'],
    ['app_default', 'overlay', 'app'],
  ]);
  expect(plan.secrets).toEqual([{ name: 'app_pw', labels: { [LABEL_STACK]: 'app' }, file: '/p/pw.txt' }]);
  expect(plan.configs).toEqual([]);
  expect(plan.create.map((s) => s.name)).toEqual(['app_api', 'app_store', 'app_web']);
  expect(() => planStackDeploy(load(), 'app', none, identity)).toThrow('network "outside" is declared as external, but could not be found');
  expect(() => planStackDeploy(load(), 'app', { ...withExternals, configs: [] }, identity)).toThrow('config not found: conf');
  expect(() => planStackDeploy(load(), 'bad name', withExternals, identity)).toThrow('invalid stack name');
});

test('deploying again updates only the services whose spec changed, and --prune finds the ones gone', () => {
  const p = load();
  const secrets: Secret[] = [{ id: 's1', spec: { name: 'app_pw', labels: { [LABEL_STACK]: 'app' } }, dataSealed: Buffer.alloc(0) }];
  const configs = withExternals.configs;
  const normalise = (s: ServiceSpec) => planFileReferences(validateServiceSpec(s), secrets, configs);
  const stored = (spec: ServiceSpec, id: string): Service => ({ id, spec: normalise(spec), specVersion: 1, registryAuthSealed: Buffer.alloc(0) });
  const first = planStackDeploy(p, 'app', { ...withExternals, secrets }, normalise);
  const old = stored(ServiceSpec.fromPartial({ name: 'app_old', labels: { [LABEL_STACK]: 'app' }, task: { container: { image: 'exec:/', args: ['true'] } } }), 'o');
  const other = stored(ServiceSpec.fromPartial({ name: 'lonely', task: { container: { image: 'exec:/', args: ['true'] } } }), 'x');
  const services = [...first.create.map((s, i) => stored(s, `id${i}`)), old, other];
  const again = planStackDeploy(p, 'app', { ...withExternals, secrets, services }, normalise);
  expect(again.create).toEqual([]);
  expect(again.update).toEqual([]);
  expect(again.secrets).toEqual([]);
  expect(again.prune.map((s) => s.spec?.name)).toEqual(['app_old']);
  const changed = load(FILE.replace('environment: { B: "2", A: "1" }', 'environment: { B: "3", A: "1" }'));
  const third = planStackDeploy(changed, 'app', { ...withExternals, secrets, services }, normalise);
  expect(third.update.map((u) => u.spec.name)).toEqual(['app_api']);
  expect(stackRows(services)).toEqual([['app', '4']]);
});

test('a service without an image, or naming an undeclared network, secret or volume, is refused', () => {
  expect(() => planStackDeploy(load('services:\n  a:\n    build: .\n'), 'app', none, identity)).toThrow('stack deploy needs an image');
  expect(() => planStackDeploy(load('services:\n  a:\n    image: x\n    networks: [nope]\n'), 'app', none, identity)).toThrow();
  expect(() => planStackDeploy(load('services:\n  a:\n    image: x\n    secrets: [nope]\n'), 'app', none, identity)).toThrow();
});

test('a secret\'s mode is the compose model\'s: 0400 octal, 444 decimal as docker reads it', () => {
  const p = load(FILE.replace('mode: 0400', 'mode: 444'));
  expect(planServiceSpec(p, 'app', p.services.store).task?.container?.secrets[1].file?.mode).toBe(444);
});
