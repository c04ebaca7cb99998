import {
  CONTAINER_PORT_MIN,
  parsePublish,
  planContainerPublishRules,
  planInspectPorts,
  planPortBindings,
  planPortLines,
  planPortsText,
  planRequestedPorts,
  planServiceTakenPorts,
  validatePortBindings,
} from '../../agent/containers/port-plans';
import { planInspect, planPsRows } from '../../agent/containers/container-plans';
import { CONTAINER_PUBLISH_NFT_TABLE, renderPublishNft } from '../../agent/network/plans/lb-nft';
import { containerConfigFromFlags } from '../../cli/container-flags';
import type { Container, ContainerPortBinding } from '../../services/gen/swarmlet/v1/control';
import { PortProtocol } from '../../services/gen/swarmlet/v1/types';
import { refusal } from '../support/rejection';

const b = (containerPort: number, hostPort = 0, hostIp = '', protocol = 'tcp'): ContainerPortBinding => ({ protocol, containerPort, hostIp, hostPort });

describe('parsePublish (-p)', () => {
  test.each([
    ['8080:80', [b(80, 8080)]],
    ['127.0.0.1:8080:80', [b(80, 8080, '127.0.0.1')]],
    ['0.0.0.0:8080:80', [b(80, 8080)]],
    ['80', [b(80)]],
    ['127.0.0.1::80', [b(80, 0, '127.0.0.1')]],
    ['8080:80/udp', [b(80, 8080, '', 'udp')]],
    ['53/UDP', [b(53, 0, '', 'udp')]],
    ['8080-8081:80-81', [b(80, 8080), b(81, 8081)]],
    ['80-81', [b(80), b(81)]],
  ])('%s', (text, want) => {
    expect(parsePublish(text)).toEqual(want);
  });

  test.each([
    ['80a', 'invalid containerPort: 80a'],
    ['x:80', 'invalid hostPort: x'],
    ['8080:0', 'invalid containerPort: 0'],
    ['70000:80', 'invalid hostPort: 70000'],
    ['8080:80/sctp', 'invalid proto: sctp'],
    ['1.2.3:8080:80', 'invalid IP address: 1.2.3'],
    ['8080-8082:80-81', 'invalid ranges specified for container and host Ports: 8080-8082:80-81'],
    ['1:2:3:4', 'invalid port specification: "1:2:3:4"'],
  ])('%s is refused', (text, message) => {
    expect(refusal(() => parsePublish(text))).toMatchObject({ kind: 'InvalidArgument', message });
  });

  test('the CLI sends the bindings, and -P', () => {
    const cfg = containerConfigFromFlags({ publish: ['8080:80', '127.0.0.1:9090:90/udp'], publishAll: true }, 'exec:/', []);
    expect(cfg.portBindings).toEqual([b(80, 8080), b(90, 9090, '127.0.0.1', 'udp')]);
    expect(cfg.publishAll).toBe(true);
  });

  test('the daemon refuses malformed bindings from any client', () => {
    expect(refusal(() => validatePortBindings({ portBindings: [b(80, 8080, '', 'sctp')] }))).toMatchObject({ kind: 'InvalidArgument', message: 'invalid proto: sctp' });
    expect(refusal(() => validatePortBindings({ portBindings: [b(0, 8080)] }))).toMatchObject({ kind: 'InvalidArgument' });
    expect(refusal(() => validatePortBindings({ portBindings: [b(80, 8080, 'localhost')] }))).toMatchObject({ kind: 'InvalidArgument', message: 'invalid IP address: localhost' });
    expect(() => validatePortBindings({ portBindings: [b(80, 8080, '127.0.0.1', 'udp')] })).not.toThrow();
  });
});

describe('planRequestedPorts', () => {
  test('-p bindings once each; -P adds the exposed ports not bound yet, on free ports', () => {
    const cfg = { portBindings: [b(80, 8080), b(80, 8080), b(80, 8081, '0.0.0.0')], publishAll: true };
    expect(planRequestedPorts(cfg, ['80/tcp', '443/tcp', '53/udp', 'junk'])).toEqual([b(80, 8080), b(80, 8081), b(443), b(53, 0, '', 'udp')]);
  });
  test('without -P the exposed ports stay unpublished', () => {
    expect(planRequestedPorts({ portBindings: [], publishAll: false }, ['80/tcp'])).toEqual([]);
  });
});

describe('planPortBindings', () => {
  test('asked ports are kept; port 0 takes the lowest free one of the range', () => {
    const taken = [{ protocol: 'tcp', hostIp: '', hostPort: CONTAINER_PORT_MIN }];
    expect(planPortBindings([b(80), b(81, 8081), b(82)], taken)).toEqual([b(81, 8081), b(80, CONTAINER_PORT_MIN + 1), b(82, CONTAINER_PORT_MIN + 2)]);
  });

  test("a port taken by a container or a service is refused in docker's words", () => {
    const taken = [{ protocol: 'tcp', hostIp: '', hostPort: 8080 }];
    expect(refusal(() => planPortBindings([b(80, 8080)], taken))).toMatchObject({ kind: 'Conflict', message: 'Bind for 0.0.0.0:8080 failed: port is already allocated' });
    expect(refusal(() => planPortBindings([b(80, 8080, '127.0.0.1')], taken))).toMatchObject({ kind: 'Conflict', message: 'Bind for 127.0.0.1:8080 failed: port is already allocated' });
    // Within one request too.
    expect(refusal(() => planPortBindings([b(80, 9000), b(81, 9000)], []))).toMatchObject({ kind: 'Conflict', message: 'Bind for 0.0.0.0:9000 failed: port is already allocated' });
  });

  test('another protocol, or another host address, does not conflict', () => {
    expect(planPortBindings([b(80, 8080, '', 'udp')], [{ protocol: 'tcp', hostIp: '', hostPort: 8080 }])).toEqual([b(80, 8080, '', 'udp')]);
    expect(planPortBindings([b(80, 8080, '127.0.0.1')], [{ protocol: 'tcp', hostIp: '127.0.0.2', hostPort: 8080 }])).toEqual([b(80, 8080, '127.0.0.1')]);
  });

  test("services' ports: every ingress port and this node's host-mode ones", () => {
    const msg = {
      ingress: { networkId: 'i', vni: 4096, endpoint: undefined, ports: [{ protocol: PortProtocol.PORT_PROTOCOL_TCP, publishedPort: 30000, targetPort: 80, serviceId: 's', serviceName: 'web', backends: [] }] },
      hostPorts: [{ taskId: 't', protocol: PortProtocol.PORT_PROTOCOL_UDP, publishedPort: 5353, targetPort: 53 }],
    };
    expect(planServiceTakenPorts(msg)).toEqual([
      { protocol: 'tcp', hostIp: '', hostPort: 30000 },
      { protocol: 'udp', hostIp: '', hostPort: 5353 },
    ]);
    expect(planServiceTakenPorts(undefined)).toEqual([]);
  });
});

describe('the host table of containers', () => {
  test('DNAT to the container on its port, from outside and from the host; a host address only where one was given', () => {
    const rules = planContainerPublishRules([b(80, 8080), b(53, 5353, '127.0.0.1', 'udp')], '172.17.0.2', 'swblbridge');
    const text = renderPublishNft(rules, CONTAINER_PUBLISH_NFT_TABLE);
    expect(text).toBe(
      [
        'table ip swarmlet-cpublish {',
        '\tchain prerouting {',
        '\t\ttype nat hook prerouting priority dstnat; policy accept;',
        '\t\tfib daddr type local tcp dport 8080 dnat to 172.17.0.2:80',
        '\t\tip daddr 127.0.0.1 udp dport 5353 dnat to 172.17.0.2:53',
        '\t}',
        '',
        '\tchain output {',
        '\t\ttype nat hook output priority -100; policy accept;',
        '\t\tfib daddr type local tcp dport 8080 dnat to 172.17.0.2:80',
        '\t\tip daddr 127.0.0.1 udp dport 5353 dnat to 172.17.0.2:53',
        '\t}',
        '',
        '\tchain postrouting {',
        '\t\ttype nat hook postrouting priority srcnat; policy accept;',
        '\t\tip saddr 127.0.0.0/8 oifname != "lo" masquerade',
        '\t\tiifname "swblbridge" oifname "swblbridge" ct status dnat masquerade',
        '\t}',
        '',
        '\tchain input {',
        '\t\ttype filter hook input priority filter; policy accept;',
        '\t\tiifname != "lo" ip daddr 127.0.0.0/8 ct status ! dnat drop',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
  });

  test('a host address that is not one is refused', () => {
    expect(refusal(() => renderPublishNft([{ protocol: 'tcp', publishedPort: 80, address: '172.17.0.2', targetPort: 80, hostIp: '1.2.3.4; flush ruleset' }]))).toMatchObject({ kind: 'InvalidArgument' });
  });
});

describe("ps, inspect and port, in docker's shapes", () => {
  const container = (ports: ContainerPortBinding[], asked: ContainerPortBinding[]): Container => ({
    id: 'a'.repeat(64),
    name: 'web',
    createdAt: '2026-01-01T00:00:00.000Z',
    config: { ...containerConfigFromFlags({}, 'exec:/', ['sleep', '1']), portBindings: asked },
    state: { status: 'running', pid: 7, exitCode: 0, oomKilled: false, startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '', error: '', restartCount: 0 },
    endpoints: [],
    ports,
  });
  const c = container([b(80, 8080), b(443, 32768, '127.0.0.1'), b(53, 5353, '', 'udp')], [b(80, 8080), b(443, 0, '127.0.0.1'), b(53, 5353, '', 'udp')]);

  test('ps PORTS', () => {
    expect(planPortsText(c)).toBe('0.0.0.0:5353->53/udp, 0.0.0.0:8080->80/tcp, 127.0.0.1:32768->443/tcp');
    expect(planPsRows([c], new Date('2026-01-01T00:00:01.000Z'))[0][5]).toBe(planPortsText(c));
    expect(planPortsText(container([], []))).toBe('');
  });

  test('inspect: HostConfig.PortBindings as asked, NetworkSettings.Ports as published, Config.ExposedPorts', () => {
    const i = planInspect(c) as { HostConfig: Record<string, unknown>; NetworkSettings: Record<string, unknown>; Config: Record<string, unknown> };
    expect(i.HostConfig.PortBindings).toEqual({
      '53/udp': [{ HostIp: '', HostPort: '5353' }],
      '80/tcp': [{ HostIp: '', HostPort: '8080' }],
      '443/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }],
    });
    expect(i.NetworkSettings.Ports).toEqual({
      '53/udp': [{ HostIp: '0.0.0.0', HostPort: '5353' }],
      '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }],
      '443/tcp': [{ HostIp: '127.0.0.1', HostPort: '32768' }],
    });
    expect(i.Config.ExposedPorts).toEqual({ '80/tcp': {}, '443/tcp': {}, '53/udp': {} });
    const stopped = planInspect(container([], [])) as { HostConfig: Record<string, unknown>; NetworkSettings: Record<string, unknown> };
    expect(stopped.NetworkSettings.Ports).toEqual({});
    expect(stopped.HostConfig.PortBindings).toEqual({});
  });

  test('port', () => {
    expect(planPortLines(c)).toEqual(['53/udp -> 0.0.0.0:5353', '80/tcp -> 0.0.0.0:8080', '443/tcp -> 127.0.0.1:32768']);
    expect(planPortLines(c, '80')).toEqual(['0.0.0.0:8080']);
    expect(planPortLines(c, '53/udp')).toEqual(['0.0.0.0:5353']);
    expect(refusal(() => planPortLines(c, '53'))).toMatchObject({ kind: 'NotFound', message: "No public port '53/tcp' published for web" });
    expect(refusal(() => planPortLines(c, 'http'))).toMatchObject({ kind: 'InvalidArgument' });
  });
});
