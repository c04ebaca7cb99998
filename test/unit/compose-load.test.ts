import { loadComposeProject, unsupportedKeys, formatUnsupportedWarning, projectNameFromDir, LoadOptions } from '../../services/compose';
import { SwarmletError } from '../../services/common/errors';

/** Loads from in-memory files under /app. */
function load(files: Record<string, string>, opts: Partial<LoadOptions> = {}) {
  const names = Object.keys(files).filter((n) => n.endsWith('.yml') || n.endsWith('.yaml'));
  return loadComposeProject(
    { files: opts.files ?? names.slice(0, 1).map((n) => ({ name: n, path: `/app/${n}` })), env: opts.env ?? {}, projectName: opts.projectName },
    { readFile: (p) => files[p.replace(/^\/app\//, '')] },
  );
}

function failure(files: Record<string, string>, opts: Partial<LoadOptions> = {}): SwarmletError {
  try {
    load(files, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(SwarmletError);
    expect((err as SwarmletError).kind).toBe('InvalidArgument');
    expect((err as Error).message).not.toContain('\n');
    return err as SwarmletError;
  }
  throw new Error('loaded without an error');
}

describe('errors: one line with file, line and key', () => {
  test('an invalid short port', () => {
    const f = ['services:', '  web:', '    image: busybox', '    ports:', '      - "80:abc"', ''].join('\n');
    expect(failure({ 'docker-compose.yml': f }).message).toBe('docker-compose.yml:5: services.web.ports[0]: invalid port "80:abc": use a port from 1 to 65535, or a range like 8000-8010');
  });
  test('an unknown key', () => {
    const f = 'services:\n  web:\n    image: busybox\n    portz: ["80"]\n';
    expect(failure({ 'docker-compose.yml': f }).message).toBe('docker-compose.yml:4: services.web.portz: "portz" is not allowed here');
  });
  test("the notes' networks written as a list", () => {
    const f = 'version: 2\nservices:\n  redis:\n    image: redis\nnetworks:\n  - front-end:\n  - back-end:\n';
    expect(failure({ 'docker-compose.yml': f }).message).toBe('docker-compose.yml:5: networks: must be a mapping, not a list');
  });
  test('a wrong type', () => {
    const f = 'services:\n  web:\n    image: busybox\n    deploy:\n      replicas: two\n';
    expect(failure({ 'c.yml': f }).message).toBe('c.yml:5: services.web.deploy.replicas: must be a whole number, not a string');
  });
  test('YAML syntax', () => {
    expect(failure({ 'c.yml': 'services:\n  web:\n    image: [busybox\n' }).message).toMatch(/^c\.yml:\d+: /);
  });
  test('a duplicate key', () => {
    expect(failure({ 'c.yml': 'services:\n  web:\n    image: a\n    image: b\n' }).message).toMatch(/^c\.yml:4: .*unique/);
  });
  test('a bad duration', () => {
    const f = 'services:\n  web:\n    image: a\n    healthcheck:\n      test: ["CMD", "true"]\n      interval: 5 seconds\n';
    expect(failure({ 'c.yml': f }).message).toMatch(/^c\.yml:6: services\.web\.healthcheck\.interval: invalid duration "5 seconds"/);
  });
  test('a depends_on condition not in the spec', () => {
    const f = 'services:\n  web:\n    image: a\n    depends_on:\n      db:\n        condition: service_ready\n  db:\n    image: b\n';
    expect(failure({ 'c.yml': f }).message).toMatch(/^c\.yml:6: services\.web\.depends_on\.db\.condition: must be one of service_started, service_healthy, service_completed_successfully/);
  });
  test('an undefined service, network, volume', () => {
    expect(failure({ 'c.yml': 'services:\n  web:\n    image: a\n    depends_on: [db]\n' }).message).toBe('c.yml:4: services.web.depends_on[0]: service "web" depends on undefined service "db"');
    expect(failure({ 'c.yml': 'services:\n  web:\n    image: a\n    networks: [back]\n' }).message).toBe('c.yml:4: services.web.networks[0]: service "web" refers to undefined network "back"');
    expect(failure({ 'c.yml': 'services:\n  web:\n    image: a\n    volumes:\n      - data:/data\n' }).message).toMatch(/^c\.yml:5: services\.web\.volumes\[0\]: service "web" refers to undefined volume "data"/);
  });
  test('a dependency cycle', () => {
    expect(failure({ 'c.yml': 'services:\n  a:\n    image: a\n    depends_on: [b]\n  b:\n    image: b\n    depends_on: [a]\n' }).message).toMatch(/dependency cycle: a -> b -> a/);
  });
  test('neither image nor build', () => {
    expect(failure({ 'c.yml': 'services:\n  web:\n    command: ["true"]\n' }).message).toBe('c.yml:2: services.web: service "web" has neither an image nor a build context');
  });
  test('a required variable', () => {
    expect(failure({ 'c.yml': 'services:\n  web:\n    image: "${IMAGE:?set IMAGE first}"\n' }).message).toBe('c.yml:3: services.web.image: required variable IMAGE is missing a value: set IMAGE first');
  });
  test('the line of a mistake in the second file', () => {
    const files = { 'a.yml': 'services:\n  web:\n    image: a\n', 'b.yml': '\nservices:\n  web:\n    restart: sometimes\n' };
    const err = failure(files, { files: [{ name: 'a.yml', path: '/app/a.yml' }, { name: 'b.yml', path: '/app/b.yml' }] });
    expect(err.message).toMatch(/^b\.yml:4: services\.web\.restart: invalid restart policy "sometimes"/);
  });
});

describe('interpolation with .env', () => {
  const file = 'services:\n  web:\n    image: "busybox:${TAG:-latest}"\n    environment:\n      GREETING: "${GREETING-hello}"\n      PRICE: "$$5"\n      WHO: $WHO\n      EMPTY: "${EMPTY:-was empty}"\n';
  test('the shell wins over .env, .env over defaults', () => {
    const { project, warnings } = load({ 'docker-compose.yml': file, '.env': 'TAG=1.36\nGREETING="hi there"\nEMPTY=\n' }, { env: { TAG: '1.37' } });
    expect(project.services.web.image).toBe('busybox:1.37');
    expect(project.services.web.environment).toEqual({ GREETING: 'hi there', PRICE: '$5', WHO: '', EMPTY: 'was empty' });
    expect(warnings).toEqual(['The "WHO" variable is not set. Defaulting to a blank string.']);
  });
});

describe('the model', () => {
  const file = `
name: shop
services:
  web:
    image: busybox
    command: httpd -f -p 80
    entrypoint: ["/bin/sh", "-c"]
    ports:
      - "8080:80"
      - "127.0.0.1:9000-9001:90-91/udp"
      - target: 443
        published: 8443
        mode: host
    environment:
      - A=1
      - B
    env_file: web.env
    volumes:
      - data:/data:ro
      - ./site:/www
      - type: tmpfs
        target: /tmp
        tmpfs:
          size: 64m
    depends_on:
      db:
        condition: service_healthy
    networks:
      front:
        aliases: [www]
      back:
    restart: on-failure:3
    secrets: [token]
    deploy:
      replicas: 2
      endpoint_mode: dnsrr
      resources:
        limits: { cpus: "0.5", memory: 64m }
        reservations: { memory: 32m }
      restart_policy: { condition: on-failure, delay: 2s, max_attempts: 3 }
      update_config: { parallelism: 2, delay: 1s, order: start-first, failure_action: rollback }
      rollback_config: { parallelism: 1 }
      placement:
        constraints: [node.role == worker]
        preferences: [{ spread: node.labels.zone }]
    links: [db]
  db:
    image: busybox
    healthcheck:
      test: nc -z localhost 5432
      interval: 1s
      timeout: 500ms
      retries: 3
      start_period: 1m30s
    deploy: { mode: global }
networks:
  front: {}
  back:
    external: true
volumes:
  data:
secrets:
  token:
    file: ./token.txt
configs:
  site:
    external: true
    name: site-v1
`;
  const { project } = load({ 'docker-compose.yml': file, 'web.env': '# comment\nA=0\nC=3\n' }, { env: { B: 'two', HOME: '/home/u' } });
  const web = project.services.web;
  test('project', () => {
    expect(project.name).toBe('shop');
    expect(project.workingDir).toBe('/app');
    expect(Object.keys(project.services)).toEqual(['db', 'web']);
  });
  test('command, entrypoint, environment with env_file', () => {
    expect(web.command).toEqual(['httpd', '-f', '-p', '80']);
    expect(web.entrypoint).toEqual(['/bin/sh', '-c']);
    expect(web.environment).toEqual({ A: '1', B: 'two', C: '3' });
  });
  test('ports, short and long', () => {
    expect(web.ports).toEqual([
      { target: 80, published: 8080, hostIp: undefined, protocol: 'tcp', mode: 'ingress' },
      { target: 90, published: 9000, hostIp: '127.0.0.1', protocol: 'udp', mode: 'ingress' },
      { target: 91, published: 9001, hostIp: '127.0.0.1', protocol: 'udp', mode: 'ingress' },
      { target: 443, published: 8443, hostIp: undefined, protocol: 'tcp', mode: 'host' },
    ]);
  });
  test('volumes', () => {
    expect(web.volumes).toEqual([
      { type: 'volume', source: 'data', target: '/data', readOnly: true },
      { type: 'bind', source: '/app/site', target: '/www', readOnly: false },
      { type: 'tmpfs', source: '', target: '/tmp', readOnly: false, tmpfsSizeBytes: 64 * 1024 ** 2 },
    ]);
  });
  test('depends_on, healthcheck, restart, networks', () => {
    expect(web.dependsOn).toEqual({ db: 'service_healthy' });
    expect(project.services.db.healthcheck).toEqual({ test: ['CMD-SHELL', 'nc -z localhost 5432'], intervalMs: 1000, timeoutMs: 500, retries: 3, startPeriodMs: 90000 });
    expect(web.restart).toBe('on-failure:3');
    expect(web.networks).toEqual({ front: { aliases: ['www'], ipv4Address: undefined }, back: { aliases: [], ipv4Address: undefined } });
    expect(project.services.db.networks).toEqual({ default: { aliases: [] } });
  });
  test('deploy', () => {
    expect(web.deploy).toEqual({
      mode: 'replicated',
      replicas: 2,
      endpointMode: 'dnsrr',
      labels: {},
      resources: { limits: { nanoCpus: 5e8, memoryBytes: 64 * 1024 ** 2 }, reservations: { memoryBytes: 32 * 1024 ** 2 } },
      restartPolicy: { condition: 'on-failure', delayMs: 2000, maxAttempts: 3, windowMs: undefined },
      updateConfig: { parallelism: 2, delayMs: 1000, failureAction: 'rollback', monitorMs: undefined, maxFailureRatio: undefined, order: 'start-first' },
      rollbackConfig: { parallelism: 1, delayMs: undefined, failureAction: undefined, monitorMs: undefined, maxFailureRatio: undefined, order: undefined },
      placement: { constraints: ['node.role == worker'], preferences: ['node.labels.zone'], maxReplicasPerNode: undefined },
    });
    expect(project.services.db.deploy.mode).toBe('global');
  });
  test('top-level networks, volumes, secrets, configs', () => {
    expect(project.networks.front.external).toBe(false);
    expect(project.networks.back.external).toBe(true);
    expect(project.networks.default).toBeDefined();
    expect(project.volumes.data).toEqual({ name: undefined, external: false, driver: undefined, driverOpts: {}, labels: {} });
    expect(project.secrets.token).toEqual({ name: undefined, external: false, file: '/app/token.txt', labels: {} });
    expect(project.configs.site).toEqual({ name: 'site-v1', external: true, file: undefined, labels: {} });
    expect(web.secrets).toEqual([{ source: 'token', target: 'token', uid: undefined, gid: undefined, mode: undefined }]);
  });
  test('unsupported keys in one line', () => {
    const supported = ['services.*.image', 'services.*.command', 'services.*.entrypoint', 'services.*.ports', 'services.*.environment', 'services.*.env_file', 'services.*.volumes', 'services.*.depends_on', 'services.*.networks', 'services.*.restart', 'services.*.healthcheck', 'services.*.deploy.resources.limits', 'networks', 'volumes', 'name'];
    const keys = unsupportedKeys(project, supported);
    expect(keys).toEqual([
      'secrets',
      'configs',
      'services.web.secrets',
      'services.web.deploy.replicas',
      'services.web.deploy.endpoint_mode',
      'services.web.deploy.resources.reservations',
      'services.web.deploy.restart_policy',
      'services.web.deploy.update_config',
      'services.web.deploy.rollback_config',
      'services.web.deploy.placement',
      'services.web.links',
      'services.db.deploy.mode',
    ]);
    expect(formatUnsupportedWarning(['services.web.links'])).toBe('WARNING: swarmlet does not support these keys and ignores them: services.web.links');
  });
});

describe('merging -f files', () => {
  const a = 'services:\n  web:\n    image: busybox\n    command: ["a"]\n    ports: ["80:80"]\n    environment: [A=1, B=1]\n    volumes: ["/x:/data"]\n';
  const b = 'services:\n  web:\n    image: busybox:1.36\n    command: ["b"]\n    ports: ["81:81"]\n    environment: { B: "2" }\n    volumes: ["/y:/data"]\n  extra:\n    image: x\n';
  const { project } = load({ 'a.yml': a, 'b.yml': b }, { files: [{ name: 'a.yml', path: '/app/a.yml' }, { name: 'b.yml', path: '/app/b.yml' }] });
  test('later wins, lists append or merge by key', () => {
    const web = project.services.web;
    expect(web.image).toBe('busybox:1.36');
    expect(web.command).toEqual(['b']);
    expect(web.ports.map((p) => p.target)).toEqual([80, 81]);
    expect(web.environment).toEqual({ A: '1', B: '2' });
    expect(web.volumes).toEqual([{ type: 'bind', source: '/y', target: '/data', readOnly: false }]);
    expect(Object.keys(project.services)).toEqual(['extra', 'web']);
  });
});

describe('project name', () => {
  test.each([
    ['/home/me/My App', 'myapp'],
    ['/srv/_voting.app', 'votingapp'],
    ['/x/web-1_a', 'web-1_a'],
  ])('%s -> %s', (dir, name) => expect(projectNameFromDir(dir)).toBe(name));
  test('-p wins, and is checked', () => {
    expect(load({ 'c.yml': 'services: {}\n' }, { projectName: 'p1' }).project.name).toBe('p1');
    expect(failure({ 'c.yml': 'services: {}\n' }, { projectName: 'Bad!' }).message).toMatch(/^invalid project name "Bad!"/);
    expect(load({ 'c.yml': 'services: {}\n' }, { env: { COMPOSE_PROJECT_NAME: 'fromenv' } }).project.name).toBe('fromenv');
  });
});

describe('YAML anchors, merge keys and x- extensions', () => {
  const file = `
x-common: &common
  image: busybox
  restart: always
  environment: &env
    A: "1"
services:
  web:
    <<: *common
    environment:
      <<: *env
      B: "2"
  worker:
    <<: *common
    restart: "no"
    x-note: ignored
`;
  const { project } = load({ 'c.yml': file });
  test('merged as YAML says, explicit keys winning', () => {
    expect(project.services.web).toMatchObject({ image: 'busybox', restart: 'always', environment: { A: '1', B: '2' } });
    expect(project.services.worker).toMatchObject({ image: 'busybox', restart: 'no', environment: { A: '1' } });
    expect(project.keys).not.toContain('x-common');
    expect(project.keys.filter((k) => k.includes('x-'))).toEqual([]);
  });
});

describe('depends_on and networks merged across files', () => {
  const a = 'services:\n  web:\n    image: a\n    depends_on: [db]\n    networks: [front]\n  db:\n    image: b\n  cache:\n    image: c\nnetworks:\n  front:\n  back:\n';
  const b = 'services:\n  web:\n    depends_on:\n      cache:\n        condition: service_healthy\n    networks:\n      back:\n        aliases: [w]\n';
  const { project } = load({ 'a.yml': a, 'b.yml': b }, { files: [{ name: 'a.yml', path: '/app/a.yml' }, { name: 'b.yml', path: '/app/b.yml' }] });
  test('by name', () => {
    expect(project.services.web.dependsOn).toEqual({ db: 'service_started', cache: 'service_healthy' });
    expect(project.services.web.networks).toEqual({ front: { aliases: [], ipv4Address: undefined }, back: { aliases: ['w'], ipv4Address: undefined } });
  });
});

describe('interpolated values take the type the schema wants, as docker compose casts them', () => {
  const file = 'services:\n  web:\n    image: a\n    read_only: ${RO}\n    deploy:\n      replicas: ${REPLICAS:-2}\n    environment:\n      N: ${REPLICAS:-2}\n    healthcheck:\n      test: "true"\n      retries: ${RETRIES}\n';
  test('numbers and booleans where wanted, strings elsewhere', () => {
    const { project } = load({ 'c.yml': file }, { env: { RO: 'true', RETRIES: '5' } });
    expect(project.services.web.deploy.replicas).toBe(2);
    expect(project.services.web.readOnly).toBe(true);
    expect(project.services.web.healthcheck?.retries).toBe(5);
    expect(project.services.web.environment).toEqual({ N: '2' });
  });
  test('a value that is not one is still the one-line mistake', () => {
    expect(failure({ 'c.yml': file }, { env: { RO: 'true', RETRIES: '5', REPLICAS: 'many' } }).message).toBe('c.yml:6: services.web.deploy.replicas: must be a whole number, not a string');
  });
  test('a quoted value stays a string', () => {
    expect(failure({ 'c.yml': 'services:\n  web:\n    image: a\n    deploy:\n      replicas: "${N}"\n' }, { env: { N: '2' } }).message).toBe('c.yml:5: services.web.deploy.replicas: must be a whole number, not a string');
  });
});

test('file modes read as docker compose reads them: 0400 and 0o400 octal, 400 decimal', () => {
  const f = [
    'services:',
    '  web:',
    '    image: busybox',
    '    secrets:',
    '      - { source: s, target: a, mode: 0400 }',
    '      - { source: s, target: b, mode: 0o440 }',
    '      - { source: s, target: c, mode: 444 }',
    '    configs:',
    '      - source: c',
    '        mode: 0755',
    'secrets:',
    '  s: { external: true }',
    'configs:',
    '  c: { external: true }',
    '',
  ].join('\n');
  const web = load({ 'docker-compose.yml': f }).project.services.web;
  expect(web.secrets.map((r) => r.mode)).toEqual([0o400, 0o440, 444]);
  expect(web.configs.map((r) => r.mode)).toEqual([0o755]);
});
