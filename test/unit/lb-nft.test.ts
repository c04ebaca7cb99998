import {
  diffNftTable,
  parseTable,
  planNftUpdate,
  planTaskVips,
  renderTable,
  renderIngressNft,
  renderNftReplace,
  renderPublishNft,
  renderTaskLbNft,
} from '../../agent/network/plans/lb-nft';
import type { NetworkServices } from '../../services/gen/swarmlet/v1/dispatcher';
import { refusal } from '../support/rejection';

const task = (ip: string, serving = true) => ({ taskId: `t-${ip}`, ip, name: `web.1.t-${ip}`, hostname: 'h', serving });

const SERVICES: NetworkServices[] = [
  {
    networkId: 'net-front',
    name: 'front',
    containers: [],
    services: [
      { serviceId: 's-web', aliases: [], name: 'web', vip: '10.0.1.2', tasks: [task('10.0.1.9'), task('10.0.1.5'), task('10.0.1.7', false), task('10.0.1.10')] },
      { serviceId: 's-db', aliases: [], name: 'db', vip: '10.0.1.3', tasks: [task('10.0.1.11', false)] },
      { serviceId: 's-rr', aliases: [], name: 'rr', vip: '', tasks: [task('10.0.1.12')] },
    ],
  },
  {
    networkId: 'net-back',
    name: 'back',
    containers: [],
    services: [{ serviceId: 's-api', aliases: [], name: 'api', vip: '10.0.2.2', tasks: [task('10.0.2.4')] }],
  },
];

describe('planTaskVips', () => {
  test('the VIPs of the services on the task networks, with their serving tasks sorted by address', () => {
    expect(planTaskVips([{ networkId: 'net-front' }], SERVICES)).toEqual([
      { vip: '10.0.1.2', backends: ['10.0.1.5', '10.0.1.9', '10.0.1.10'] },
      { vip: '10.0.1.3', backends: [] },
    ]);
  });

  test('dnsrr services have no VIP; networks the task is not on are left out', () => {
    expect(planTaskVips([{ networkId: 'net-back' }], SERVICES)).toEqual([{ vip: '10.0.2.2', backends: ['10.0.2.4'] }]);
    expect(planTaskVips([{ networkId: 'net-other' }], SERVICES)).toEqual([]);
    expect(planTaskVips([{ networkId: 'net-back' }, { networkId: 'net-front' }], SERVICES).map((v) => v.vip)).toEqual(['10.0.1.2', '10.0.1.3', '10.0.2.2']);
  });
});

describe('renderTaskLbNft', () => {
  test('each VIP in a chain of its own: several backends: a numgen map; one: a plain dnat; none: rejected', () => {
    const text = renderTaskLbNft([
      { vip: '10.0.2.2', backends: ['10.0.2.4'] },
      { vip: '10.0.1.3', backends: [] },
      { vip: '10.0.1.2', backends: ['10.0.1.9', '10.0.1.5', '10.0.1.10', '10.0.1.5'] },
    ]);
    expect(text).toBe(
      [
        'table ip swarmlet-lb {',
        '\tchain nat-output {',
        '\t\ttype nat hook output priority -100; policy accept;',
        '\t\tip daddr 10.0.1.2 goto vip-10.0.1.2',
        '\t\tip daddr 10.0.1.3 goto vip-10.0.1.3',
        '\t\tip daddr 10.0.2.2 goto vip-10.0.2.2',
        '\t}',
        '',
        '\tchain vip-10.0.1.2 {',
        '\t\tdnat to numgen random mod 3 map { 0 : 10.0.1.5, 1 : 10.0.1.9, 2 : 10.0.1.10 }',
        '\t}',
        '',
        '\tchain vip-10.0.1.3 {',
        '\t}',
        '',
        '\tchain vip-10.0.2.2 {',
        '\t\tdnat to 10.0.2.4',
        '\t}',
        '',
        '\tchain filter-output {',
        '\t\ttype filter hook output priority filter; policy accept;',
        '\t\tip daddr 10.0.1.3 reject with tcp reset',
        '\t\tip daddr 10.0.1.3 reject',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
  });

  test('no VIP: no table', () => {
    expect(renderTaskLbNft([])).toBe('');
  });

  test('refuses what is not an IPv4 address', () => {
    expect(refusal(() => renderTaskLbNft([{ vip: '10.0.1.300', backends: [] }]))).toMatchObject({ kind: 'InvalidArgument', message: expect.stringMatching(/invalid IPv4/) });
    expect(refusal(() => renderTaskLbNft([{ vip: '10.0.1.2', backends: ['10.0.1.5; flush ruleset'] }]))).toMatchObject({ kind: 'InvalidArgument', message: expect.stringMatching(/invalid IPv4/) });
  });
});

describe('renderIngressNft', () => {
  test('ports DNATed to their backends on the target port, masquerade out of the ingress interface, ports without backend rejected', () => {
    const text = renderIngressNft(
      [
        { protocol: 'udp', publishedPort: 5353, targetPort: 53, backends: ['10.255.0.7'] },
        { protocol: 'tcp', publishedPort: 8080, targetPort: 80, backends: ['10.255.0.9', '10.255.0.5'] },
        { protocol: 'tcp', publishedPort: 8081, targetPort: 81, backends: [] },
        { protocol: 'udp', publishedPort: 9999, targetPort: 99, backends: [] },
        { protocol: 'tcp', publishedPort: 8080, targetPort: 1, backends: ['10.255.0.1'] },
      ],
      'eth0',
    );
    expect(text).toBe(
      [
        'table ip swarmlet-ingress {',
        '\tchain prerouting {',
        '\t\ttype nat hook prerouting priority dstnat; policy accept;',
        '\t\ttcp dport 8080 goto port-tcp-8080',
        '\t\ttcp dport 8081 goto port-tcp-8081',
        '\t\tudp dport 5353 goto port-udp-5353',
        '\t\tudp dport 9999 goto port-udp-9999',
        '\t}',
        '',
        '\tchain port-tcp-8080 {',
        '\t\ttcp dport 8080 dnat to numgen random mod 2 map { 0 : 10.255.0.5, 1 : 10.255.0.9 }:80',
        '\t}',
        '',
        '\tchain port-tcp-8081 {',
        '\t}',
        '',
        '\tchain port-udp-5353 {',
        '\t\tudp dport 5353 dnat to 10.255.0.7:53',
        '\t}',
        '',
        '\tchain port-udp-9999 {',
        '\t}',
        '',
        '\tchain postrouting {',
        '\t\ttype nat hook postrouting priority srcnat; policy accept;',
        '\t\toifname "eth0" masquerade',
        '\t}',
        '',
        '\tchain input {',
        '\t\ttype filter hook input priority filter; policy accept;',
        '\t\ttcp dport 8081 reject with tcp reset',
        '\t\tudp dport 9999 reject',
        '\t}',
        '',
        '\tchain forward {',
        '\t\ttype filter hook forward priority filter; policy accept;',
        '\t\tct status ! dnat drop',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
  });

  test('no ports: the table with its masquerade only', () => {
    expect(renderIngressNft([], 'eth0')).toContain('\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t}\n');
  });

  test('refuses bad ports, protocols and interface names', () => {
    expect(refusal(() => renderIngressNft([{ protocol: 'tcp', publishedPort: 0, targetPort: 80, backends: [] }], 'eth0'))).toMatchObject({ kind: 'InvalidArgument', message: expect.stringMatching(/invalid port/) });
    expect(refusal(() => renderIngressNft([{ protocol: 'tcp', publishedPort: 80, targetPort: 70000, backends: [] }], 'eth0'))).toMatchObject({ kind: 'InvalidArgument', message: expect.stringMatching(/invalid port/) });
    expect(refusal(() => renderIngressNft([{ protocol: 'sctp' as 'tcp', publishedPort: 80, targetPort: 80, backends: [] }], 'eth0'))).toMatchObject({ kind: 'InvalidArgument', message: expect.stringMatching(/invalid protocol/) });
    expect(refusal(() => renderIngressNft([], 'eth0" accept'))).toMatchObject({ kind: 'InvalidArgument', message: expect.stringMatching(/invalid interface/) });
  });
});

describe('renderPublishNft', () => {
  test('ingress ports to the sandbox on the same port, host-mode ports to the task on its port; from outside and from the host, loopback included', () => {
    const text = renderPublishNft([
      { protocol: 'tcp', publishedPort: 9000, address: '172.18.0.5', targetPort: 80, device: 'swb-gw' },
      { protocol: 'tcp', publishedPort: 8080, address: '172.18.0.2', targetPort: 0, device: 'swb-gw' },
      { protocol: 'udp', publishedPort: 8080, address: '172.18.0.2', targetPort: 0, device: 'swb-gw' },
      { protocol: 'tcp', publishedPort: 9001, address: '10.1.2.3', targetPort: 80, device: 'swbaaa' },
    ]);
    expect(text).toBe(
      [
        'table ip swarmlet-publish {',
        '\tchain prerouting {',
        '\t\ttype nat hook prerouting priority dstnat; policy accept;',
        '\t\tfib daddr type local tcp dport 8080 dnat to 172.18.0.2',
        '\t\tfib daddr type local tcp dport 9000 dnat to 172.18.0.5:80',
        '\t\tfib daddr type local tcp dport 9001 dnat to 10.1.2.3:80',
        '\t\tfib daddr type local udp dport 8080 dnat to 172.18.0.2',
        '\t}',
        '',
        '\tchain output {',
        '\t\ttype nat hook output priority -100; policy accept;',
        '\t\tfib daddr type local tcp dport 8080 dnat to 172.18.0.2',
        '\t\tfib daddr type local tcp dport 9000 dnat to 172.18.0.5:80',
        '\t\tfib daddr type local tcp dport 9001 dnat to 10.1.2.3:80',
        '\t\tfib daddr type local udp dport 8080 dnat to 172.18.0.2',
        '\t}',
        '',
        '\tchain postrouting {',
        '\t\ttype nat hook postrouting priority srcnat; policy accept;',
        '\t\tip saddr 127.0.0.0/8 oifname != "lo" masquerade',
        '\t\tiifname "swb-gw" oifname "swb-gw" ct status dnat masquerade',
        '\t\tiifname "swbaaa" oifname "swbaaa" ct status dnat masquerade',
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

  test('nothing published: no table', () => {
    expect(renderPublishNft([])).toBe('');
  });
});

describe('planNftUpdate', () => {
  const lb = (web: string[], db: string[] = ['10.0.1.8']) => renderTaskLbNft([{ vip: '10.0.1.2', backends: web }, { vip: '10.0.1.3', backends: db }]);

  test('backends that change: only their VIP\'s chain is rewritten, in one transaction', () => {
    expect(planNftUpdate('swarmlet-lb', lb(['10.0.1.5', '10.0.1.6']), lb(['10.0.1.5']))).toBe(
      'flush chain ip swarmlet-lb vip-10.0.1.2\nadd rule ip swarmlet-lb vip-10.0.1.2 dnat to 10.0.1.5\n',
    );
  });

  test('a VIP left without backends: its chain is emptied and the filter chain rejects it', () => {
    expect(planNftUpdate('swarmlet-lb', lb(['10.0.1.5'], ['10.0.1.8']), lb(['10.0.1.5'], []))).toBe(
      [
        'flush chain ip swarmlet-lb vip-10.0.1.3',
        'flush chain ip swarmlet-lb filter-output',
        'add rule ip swarmlet-lb filter-output ip daddr 10.0.1.3 reject with tcp reset',
        'add rule ip swarmlet-lb filter-output ip daddr 10.0.1.3 reject',
        '',
      ].join('\n'),
    );
  });

  test('a published port\'s backends: its chain alone', () => {
    const ingress = (backends: string[]) => renderIngressNft([{ protocol: 'tcp', publishedPort: 8080, targetPort: 80, backends }, { protocol: 'udp', publishedPort: 53, targetPort: 53, backends: ['10.255.0.4'] }], 'eth0');
    expect(planNftUpdate('swarmlet-ingress', ingress(['10.255.0.5', '10.255.0.6']), ingress(['10.255.0.6']))).toBe(
      'flush chain ip swarmlet-ingress port-tcp-8080\nadd rule ip swarmlet-ingress port-tcp-8080 tcp dport 8080 dnat to 10.255.0.6:80\n',
    );
  });

  test('nothing changed: nothing to do', () => {
    expect(planNftUpdate('swarmlet-lb', lb(['10.0.1.5']), lb(['10.0.1.5']))).toBe('');
  });

  test('a VIP added or removed, a table made or removed: undefined (the whole table is applied)', () => {
    expect(planNftUpdate('swarmlet-lb', lb(['10.0.1.5']), renderTaskLbNft([{ vip: '10.0.1.2', backends: ['10.0.1.5'] }]))).toBeUndefined();
    expect(planNftUpdate('swarmlet-lb', '', lb(['10.0.1.5']))).toBeUndefined();
    expect(planNftUpdate('swarmlet-lb', lb(['10.0.1.5']), '')).toBeUndefined();
  });

  test('parseTable reads back what renderTable renders', () => {
    const chains = [{ name: 'nat-output', hook: 'type nat hook output priority -100; policy accept;', rules: ['ip daddr 10.0.1.2 goto vip-10.0.1.2'] }, { name: 'vip-10.0.1.2', rules: [] }];
    expect(parseTable(renderTable('swarmlet-lb', chains))).toEqual(chains);
  });
});

test('renderNftReplace declares, deletes and declares again in one input; an empty body removes the table', () => {
  expect(renderNftReplace('swarmlet-lb', 'table ip swarmlet-lb {\n}\n')).toBe('table ip swarmlet-lb\ndelete table ip swarmlet-lb\ntable ip swarmlet-lb {\n}\n');
  expect(renderNftReplace('swarmlet-lb', '')).toBe('table ip swarmlet-lb\ndelete table ip swarmlet-lb\n');
});

test('diffNftTable says what is missing, stale or different', () => {
  const want = renderTaskLbNft([{ vip: '10.0.1.2', backends: ['10.0.1.5', '10.0.1.6'] }]);
  const have = renderTaskLbNft([{ vip: '10.0.1.2', backends: ['10.0.1.5'] }]);
  expect(diffNftTable('VIP table', want, want)).toBeUndefined();
  expect(diffNftTable('VIP table', '', want)).toBe('missing VIP table');
  expect(diffNftTable('VIP table', want, '')).toBe('stale VIP table (nothing is wanted there)');
  expect(diffNftTable('VIP table', have, want)).toBe(
    'VIP table differs: missing rule "dnat to numgen random mod 2 map { 0 : 10.0.1.5, 1 : 10.0.1.6 }"; unexpected rule "dnat to 10.0.1.5"',
  );
});

test('diffNftTable sees one of two equal rules (in two chains) missing', () => {
  const want = renderPublishNft([{ protocol: 'tcp', publishedPort: 9292, address: '172.17.0.2', targetPort: 80 }]);
  const lines = want.split('\n');
  const dnat = lines.findIndex((l) => l.includes('dport 9292'));
  expect(lines.filter((l) => l === lines[dnat]).length).toBeGreaterThan(1);
  const have = [...lines.slice(0, dnat), ...lines.slice(dnat + 1)].join('\n');
  expect(diffNftTable('host table', have, want)).toBe(`host table differs: missing rule ${JSON.stringify(lines[dnat].trim())}`);
});
