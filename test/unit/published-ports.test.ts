import { SwarmletError } from '../../services/common/errors';
import { Endpoint, EndpointMode, EndpointSpec, Node, PortConfig, PortProtocol, PublishMode, Service, ServiceSpec } from '../../services/gen/swarmlet/v1/types';
import { validateEndpoint, validateServiceSpec } from '../../manager/orchestrator/service-spec';
import { DYNAMIC_PORT_MIN, containerHeldPorts, planServicePorts, releasedOnRemoval } from '../../manager/network/ports';
import { applyEndpointFlags, formatPort, formatPorts, parsePublish, planPortChange } from '../../cli/publish-flags';
import { specFromCreateFlags, specFromUpdateFlags } from '../../cli/service-flags';

const TCP = PortProtocol.PORT_PROTOCOL_TCP;
const UDP = PortProtocol.PORT_PROTOCOL_UDP;
const INGRESS = PublishMode.PUBLISH_MODE_INGRESS;
const HOST = PublishMode.PUBLISH_MODE_HOST;

const port = (publishedPort: number, targetPort: number, o: Partial<PortConfig> = {}): PortConfig => ({ publishedPort, targetPort, protocol: TCP, publishMode: INGRESS, ...o });
const endpointSpec = (ports: PortConfig[], mode = EndpointMode.ENDPOINT_MODE_VIP): EndpointSpec => ({ mode, ports });

function refusal(f: () => unknown): [string, string] {
  try {
    f();
  } catch (err) {
    if (err instanceof SwarmletError) return [err.kind, err.message];
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('validateEndpoint', () => {
  test('no endpoint: vip mode, no ports', () => {
    expect(validateEndpoint(undefined)).toEqual({ mode: EndpointMode.ENDPOINT_MODE_VIP, ports: [] });
    const spec = ServiceSpec.fromPartial({ name: 'web', task: { container: { image: 'exec:/', command: ['sleep', '1'] } } });
    expect(validateServiceSpec(spec).endpoint).toEqual({ mode: EndpointMode.ENDPOINT_MODE_VIP, ports: [] });
  });

  test('ports are kept as given, a published 0 in ingress mode included', () => {
    const ports = [port(8080, 80), port(0, 53, { protocol: UDP }), port(9000, 9000, { publishMode: HOST })];
    expect(validateEndpoint(endpointSpec(ports)).ports).toEqual(ports);
  });

  test('the same port number may be published once over tcp and once over udp', () => {
    expect(validateEndpoint(endpointSpec([port(53, 53), port(53, 53, { protocol: UDP })])).ports).toHaveLength(2);
  });

  test.each([
    ['target 0', [port(8080, 0)], 'invalid target port 0: use a port from 1 to 65535'],
    ['target too high', [port(8080, 70000)], 'invalid target port 70000: use a port from 1 to 65535'],
    ['published too high', [port(65536, 80)], 'invalid published port 65536: use a port from 1 to 65535 (or 0 to have one chosen)'],
    ['host mode without a published port', [port(0, 80, { publishMode: HOST })], 'target port 80/tcp in host mode needs a published port'],
    ['the same port twice', [port(8080, 80), port(8080, 81, { publishMode: HOST })], 'port 8080/tcp is published more than once'],
    ['an unknown protocol', [port(8080, 80, { protocol: 7 as PortProtocol })], 'invalid port protocol 7: use tcp or udp'],
    ['an unknown mode', [port(8080, 80, { publishMode: 9 as PublishMode })], 'invalid publish mode 9: use ingress or host'],
  ])('refuses %s', (_what, ports, message) => {
    expect(refusal(() => validateEndpoint(endpointSpec(ports)))).toEqual(['InvalidArgument', message]);
  });

  test('dnsrr refuses an ingress port (docker\'s rule) and takes a host-mode one', () => {
    expect(refusal(() => validateEndpoint(endpointSpec([port(8080, 80)], EndpointMode.ENDPOINT_MODE_DNSRR)))[1]).toMatch(/can't be used with dnsrr mode/);
    expect(validateEndpoint(endpointSpec([port(8080, 80, { publishMode: HOST })], EndpointMode.ENDPOINT_MODE_DNSRR)).ports).toHaveLength(1);
  });
});

const service = (id: string, name: string, ports: PortConfig[]): Service =>
  Service.fromPartial({ id, spec: { name, endpoint: endpointSpec(ports) }, endpoint: { spec: endpointSpec(ports), ports, virtualIps: [] } });

describe('planServicePorts', () => {
  const web = service('s-web', 'web', [port(8080, 80)]);
  const edge = service('s-edge', 'edge', [port(9000, 9000, { publishMode: HOST })]);
  const claims = new Map([['tcp/8080', 's-web']]);

  test('a free ingress port is claimed; host-mode ports are checked against the claims only', () => {
    const plan = planServicePorts({ serviceId: 's-new', spec: endpointSpec([port(8081, 80), port(9001, 90, { publishMode: HOST })]), previous: undefined, claims, services: [web, edge] });
    expect(plan.ports).toEqual([port(8081, 80), port(9001, 90, { publishMode: HOST })]);
    expect(plan.claims).toEqual({ claim: ['tcp/8081'], keep: [], release: [], unclaimed: ['tcp/9001'] });
  });

  test('a port another service publishes is refused with its name', () => {
    const spec = endpointSpec([port(8080, 80)]);
    expect(refusal(() => planServicePorts({ serviceId: 's-new', spec, previous: undefined, claims, services: [web] }))).toEqual(['Conflict', 'port 8080/tcp is already published by service web']);
    const host = endpointSpec([port(8080, 80, { publishMode: HOST })]);
    expect(refusal(() => planServicePorts({ serviceId: 's-new', spec: host, previous: undefined, claims, services: [web] }))).toEqual(['Conflict', 'port 8080/tcp is already published by service web']);
    const onHost = endpointSpec([port(9000, 80)]);
    expect(refusal(() => planServicePorts({ serviceId: 's-new', spec: onHost, previous: undefined, claims, services: [edge] }))).toEqual([
      'Conflict',
      'port 9000/tcp is already published by service edge in host mode',
    ]);
  });

  test('two services share a host-mode port; udp and tcp are apart', () => {
    const spec = endpointSpec([port(9000, 80, { publishMode: HOST }), port(8080, 80, { protocol: UDP })]);
    const plan = planServicePorts({ serviceId: 's-new', spec, previous: undefined, claims, services: [web, edge] });
    expect(plan.claims).toEqual({ claim: ['udp/8080'], keep: [], release: [], unclaimed: ['tcp/9000'] });
  });

  test('published 0: the lowest free port from 30000, never one the spec names itself', () => {
    const taken = new Map([['tcp/30000', 's-web'], ['tcp/30002', 's-web']]);
    const plan = planServicePorts({ serviceId: 's-new', spec: endpointSpec([port(0, 80), port(30001, 81), port(0, 82)]), previous: undefined, claims: taken, services: [web] });
    expect(plan.ports.map((p) => p.publishedPort)).toEqual([30003, 30001, 30004]);
    expect(plan.claims.claim).toEqual(['tcp/30003', 'tcp/30001', 'tcp/30004']);
  });

  test('skipFree passes over that many free ports (after a lost race), and falls back to the lowest when there are fewer', () => {
    const taken = new Map([['tcp/30000', 's-web'], ['tcp/30002', 's-web']]);
    const plan = planServicePorts({ serviceId: 's-new', spec: endpointSpec([port(0, 80)]), previous: undefined, claims: taken, services: [web], skipFree: 2 });
    expect(plan.ports.map((p) => p.publishedPort)).toEqual([30004]); // free: 30001, 30003, 30004, ...
    const full = new Map<string, string>();
    for (let p = 30000; p <= 32767; p++) if (p !== 31000 && p !== 32000) full.set(`tcp/${p}`, 's-web');
    const last = planServicePorts({ serviceId: 's-new', spec: endpointSpec([port(0, 80)]), previous: undefined, claims: full, services: [web], skipFree: 5 });
    expect(last.ports.map((p) => p.publishedPort)).toEqual([31000]);
  });

  test('an update keeps what it holds, keeps the port it was given, and releases what it drops', () => {
    const before: Endpoint = { spec: endpointSpec([port(8080, 80), port(0, 81)]), ports: [port(8080, 80), port(DYNAMIC_PORT_MIN + 5, 81)], virtualIps: [] };
    const held = new Map([['tcp/8080', 's-web'], [`tcp/${DYNAMIC_PORT_MIN + 5}`, 's-web']]);
    const same = planServicePorts({ serviceId: 's-web', spec: before.spec, previous: before, claims: held, services: [web] });
    expect(same.ports.map((p) => p.publishedPort)).toEqual([8080, DYNAMIC_PORT_MIN + 5]);
    expect(same.claims).toEqual({ claim: [], keep: ['tcp/8080', 'tcp/30005'], release: [], unclaimed: [] });
    const dropped = planServicePorts({ serviceId: 's-web', spec: endpointSpec([port(0, 81), port(8443, 443)]), previous: before, claims: held, services: [web] });
    expect(dropped.ports.map((p) => p.publishedPort)).toEqual([30005, 8443]);
    expect(dropped.claims).toEqual({ claim: ['tcp/8443'], keep: ['tcp/30005'], release: ['tcp/8080'], unclaimed: [] });
  });

  test('a port moving from ingress to host mode is released and checked in one write', () => {
    const before: Endpoint = { spec: endpointSpec([port(8080, 80)]), ports: [port(8080, 80)], virtualIps: [] };
    const plan = planServicePorts({ serviceId: 's-web', spec: endpointSpec([port(8080, 80, { publishMode: HOST })]), previous: before, claims, services: [web] });
    expect(plan.claims).toEqual({ claim: [], keep: [], release: ['tcp/8080'], unclaimed: [] });
  });

  test('removal releases the service\'s claims only', () => {
    expect(releasedOnRemoval('s-web', new Map([['tcp/8080', 's-web'], ['udp/53', 's-dns'], ['udp/8080', 's-web']])).release).toEqual(['tcp/8080', 'udp/8080']);
  });

  test('no free port left is Unavailable', () => {
    const full = new Map<string, string>();
    for (let p = 30000; p <= 32767; p++) full.set(`tcp/${p}`, 's-web');
    expect(refusal(() => planServicePorts({ serviceId: 's-new', spec: endpointSpec([port(0, 80)]), previous: undefined, claims: full, services: [web] }))[0]).toBe('Unavailable');
  });
});

describe('--publish', () => {
  test.each([
    ['8080:80', port(8080, 80)],
    ['8080:80/udp', port(8080, 80, { protocol: UDP })],
    ['80', port(0, 80)],
    ['published=8080,target=80', port(8080, 80)],
    ['published=8080,target=80,protocol=udp,mode=host', port(8080, 80, { protocol: UDP, publishMode: HOST })],
    ['target=80,mode=ingress', port(0, 80)],
  ])('%s', (text, expected) => {
    expect(parsePublish(text)).toEqual(expected);
  });

  test.each([
    ['8080:', 'invalid --publish "8080:": use published=P,target=T[,protocol=tcp|udp][,mode=ingress|host], or P:T[/udp], or T'],
    ['8080:80/sctp', 'invalid --publish protocol "sctp": tcp or udp'],
    ['99999:80', 'invalid --publish published port "99999": use a port from 1 to 65535'],
    ['0:80', 'invalid --publish published port "0": use a port from 1 to 65535'],
    ['published=8080', 'invalid --publish "published=8080": target=PORT is required'],
    ['published=8080,target=80,mode=local', 'invalid --publish mode "local": ingress or host'],
    ['published=8080,target=80,ip=1.2.3.4', 'invalid --publish "published=8080,target=80,ip=1.2.3.4": unknown key "ip"; use published=P,target=T[,protocol=tcp|udp][,mode=ingress|host], or P:T[/udp], or T'],
  ])('refuses %s', (text, message) => {
    expect(refusal(() => parsePublish(text))).toEqual(['InvalidArgument', message]);
  });

  test('create: -p and --endpoint-mode make the spec\'s endpoint', () => {
    const spec = specFromCreateFlags({ name: 'web', publish: ['8080:80', 'published=53,target=53,protocol=udp'], endpointMode: 'vip' }, 'exec:/', ['sleep', '9']);
    expect(spec.endpoint).toEqual({ mode: EndpointMode.ENDPOINT_MODE_VIP, ports: [port(8080, 80), port(53, 53, { protocol: UDP })] });
    expect(specFromCreateFlags({ name: 'web', endpointMode: 'dnsrr' }, 'exec:/', ['sleep', '9']).endpoint).toEqual({ mode: EndpointMode.ENDPOINT_MODE_DNSRR, ports: [] });
    expect(refusal(() => specFromCreateFlags({ name: 'web', endpointMode: 'rr' }, 'exec:/', ['sleep', '9']))).toEqual(['InvalidArgument', 'invalid --endpoint-mode "rr": vip or dnsrr']);
  });

  test('update: --publish-rm by published port (or target), then --publish-add', () => {
    const current = specFromCreateFlags({ name: 'web', publish: ['8080:80', '53:5353/udp'] }, 'exec:/', ['sleep', '9']);
    const next = specFromUpdateFlags(current, { publishRm: ['8080'], publishAdd: ['9090:90'] });
    expect(next.endpoint?.ports).toEqual([port(53, 5353, { protocol: UDP }), port(9090, 90)]);
    expect(planPortChange(current.endpoint!.ports, [], ['5353/udp'])).toEqual([port(8080, 80)]);
    expect(planPortChange(current.endpoint!.ports, ['8080:81'], [])).toEqual([port(53, 5353, { protocol: UDP }), port(8080, 81)]);
    expect(refusal(() => planPortChange(current.endpoint!.ports, [], ['53']))).toEqual(['InvalidArgument', '--publish-rm 53: the service publishes no port 53/tcp']);
    expect(refusal(() => planPortChange(current.endpoint!.ports, [], ['web']))[1]).toMatch(/^invalid --publish-rm "web"/);
    expect(specFromUpdateFlags(current, { replicas: 3 }).endpoint).toEqual(current.endpoint);
  });

  test('applyEndpointFlags leaves an endpoint alone without flags', () => {
    expect(applyEndpointFlags(undefined, {})).toBeUndefined();
  });
});

describe('PORTS', () => {
  test('as docker shows them; resolved ports first', () => {
    expect(formatPort(port(8080, 80))).toBe('*:8080->80/tcp');
    expect(formatPort(port(53, 53, { protocol: UDP, publishMode: HOST }))).toBe('53->53/udp (host)');
    const e: Endpoint = { spec: endpointSpec([port(0, 80)]), ports: [port(30000, 80)], virtualIps: [] };
    expect(formatPorts(e)).toBe('*:30000->80/tcp');
    expect(formatPorts(undefined)).toBe('');
  });
});

describe('ports that nodes\' own containers publish', () => {
  const nodes = [
    Node.fromPartial({ id: 'n2', description: { hostname: 'h2', containerPorts: [{ container: 'web', protocol: TCP, publishedPort: 8080, hostIp: '' }] } }),
    Node.fromPartial({ id: 'n1', description: { hostname: 'h1', containerPorts: [{ container: 'dns', protocol: UDP, publishedPort: DYNAMIC_PORT_MIN, hostIp: '127.0.0.1' }] } }),
  ];
  const containerPorts = containerHeldPorts(nodes);

  test('an ingress port a container holds is refused naming the container and its node; a host-mode one is left to the scheduler', () => {
    const refused = () => planServicePorts({ serviceId: 's', spec: endpointSpec([port(8080, 80)]), previous: undefined, claims: new Map(), services: [], containerPorts });
    expect(refused).toThrow(SwarmletError);
    expect(refused).toThrow('port 8080/tcp is already published by container web on node h2: an ingress port is open on every node');
    const host = planServicePorts({ serviceId: 's', spec: endpointSpec([port(8080, 80, { publishMode: HOST })]), previous: undefined, claims: new Map(), services: [], containerPorts });
    expect(host.ports[0].publishedPort).toBe(8080);
  });

  test('a dynamic port passes over one a container holds (on any address)', () => {
    const plan = planServicePorts({ serviceId: 's', spec: endpointSpec([port(0, 53, { protocol: UDP })]), previous: undefined, claims: new Map(), services: [], containerPorts });
    expect(plan.ports[0].publishedPort).toBe(DYNAMIC_PORT_MIN + 1);
  });
});
