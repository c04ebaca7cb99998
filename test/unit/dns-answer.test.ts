import { decode, encode, type Packet, type RecordType } from 'dns-packet';
import { FLAG_AA, FLAG_RD, FLAG_TC, RCODE, planDnsAnswer, planDnsIndex, planServfail, reverseName, udpLimit } from '../../agent/dns/answer';
import { planDnsRecordDifferences } from '../../agent/dns/records-diff';
import { dnsNetworkIds, parseResolvConfNameservers, renderResolvConf, usesEmbeddedDns } from '../../agent/dns/resolv-conf';
import { NetworkServices } from '../../services/gen/swarmlet/v1/dispatcher';

const task = (taskId: string, ip: string, name: string, hostname: string, serving = true) => ({ taskId, ip, name, hostname, serving });

const front = NetworkServices.fromPartial({
  networkId: 'nf',
  name: 'front',
  services: [
    {
      serviceId: 's-web',
      name: 'web',
      vip: '10.0.1.2',
      tasks: [task('t1', '10.0.1.5', 'web.1.t1', 'h1'), task('t2', '10.0.1.6', 'web.2.t2', 'h2'), task('t3', '10.0.1.7', 'web.3.t3', 'h3', false)],
    },
    { serviceId: 's-db', name: 'db', vip: '', tasks: [task('d1', '10.0.1.9', 'db.1.d1', 'dbhost1'), task('d2', '10.0.1.10', 'db.2.d2', 'dbhost2')] },
    { serviceId: 's-idle', name: 'idle', vip: '10.0.1.3', tasks: [] },
  ],
});
const back = NetworkServices.fromPartial({
  networkId: 'nb',
  name: 'back',
  services: [
    { serviceId: 's-web', name: 'web', vip: '10.0.2.2', tasks: [task('t1', '10.0.2.5', 'web.1.t1', 'h1')] },
    { serviceId: 's-api', name: 'api', vip: '10.0.2.3', tasks: [task('a1', '10.0.2.8', 'api.1.a1', 'web')] },
  ],
});
const other = NetworkServices.fromPartial({
  networkId: 'no',
  name: 'other',
  services: [{ serviceId: 's-secret', name: 'secret', vip: '10.0.3.2', tasks: [task('x1', '10.0.3.5', 'secret.1.x1', 'xh')] }],
});

/** The asker is on front and back, not on other. */
const index = planDnsIndex([front, back], ['10.0.1.5/24', '10.0.2.5/24']);

const query = (name: string, type: RecordType = 'A', extra: Partial<Packet> = {}): Packet => ({
  type: 'query',
  id: 4242,
  flags: FLAG_RD,
  questions: [{ name, type, class: 'IN' }],
  ...extra,
});

const dataOf = (a: unknown) => String((a as { data?: unknown }).data);

/** rcode and answer data, or 'forward' / 'drop'. */
function ask(name: string, type: RecordType = 'A', seq = 0): { rcode: number; data: string[] } | string {
  const d = planDnsAnswer(query(name, type), index, seq);
  if (d.kind !== 'answer') return d.kind;
  return { rcode: (d.packet.flags ?? 0) & 0xf, data: (d.packet.answers ?? []).map(dataOf) };
}

const ok = (...data: string[]) => ({ rcode: RCODE.NOERROR, data });
const nx = { rcode: RCODE.NXDOMAIN, data: [] };

describe('names', () => {
  test.each([
    ['web', ok('10.0.1.2', '10.0.2.2')],
    ['WEB.', ok('10.0.1.2', '10.0.2.2')],
    ['web.front', ok('10.0.1.2')],
    ['web.back.', ok('10.0.2.2')],
    ['tasks.web', ok('10.0.1.5', '10.0.1.6', '10.0.2.5')],
    ['tasks.web.front', ok('10.0.1.5', '10.0.1.6')],
    ['db', ok('10.0.1.9', '10.0.1.10')],
    ['tasks.db', ok('10.0.1.9', '10.0.1.10')],
    ['idle', ok('10.0.1.3')],
    ['tasks.idle', ok()],
    ['web.1.t1', ok('10.0.1.5', '10.0.2.5')],
    ['web.1.t1.back', ok('10.0.2.5')],
    ['web.3.t3', ok('10.0.1.7')],
    ['h1', ok('10.0.1.5', '10.0.2.5')],
    ['h3.front', ok('10.0.1.7')],
    ['dbhost2', ok('10.0.1.10')],
    ['api', ok('10.0.2.3')],
  ])('%s -> %j', (name, want) => {
    expect(ask(name)).toEqual(want);
  });

  test('a service name wins over a task hostname that collides with it', () => {
    expect(ask('web.back')).toEqual(ok('10.0.2.2'));
  });

  test('answers carry the name as asked, class IN, TTL 1, and the authoritative flag', () => {
    const d = planDnsAnswer(query('Web.Front'), index);
    expect(d).toEqual({
      kind: 'answer',
      packet: {
        type: 'response',
        id: 4242,
        flags: FLAG_AA | (1 << 7) | FLAG_RD,
        questions: [{ name: 'Web.Front', type: 'A', class: 'IN' }],
        answers: [{ type: 'A', name: 'Web.Front', ttl: 1, class: 'IN', data: '10.0.1.2' }],
      },
    });
  });

  test('dnsrr and tasks answers turn per query; VIP answers do not', () => {
    expect(ask('db', 'A', 0)).toEqual(ok('10.0.1.9', '10.0.1.10'));
    expect(ask('db', 'A', 1)).toEqual(ok('10.0.1.10', '10.0.1.9'));
    expect(ask('tasks.web', 'A', 1)).toEqual(ok('10.0.1.6', '10.0.2.5', '10.0.1.5'));
    expect(ask('web', 'A', 1)).toEqual(ok('10.0.1.2', '10.0.2.2'));
  });

  test('AAAA and other types of a known name: no error, no data', () => {
    expect(ask('web', 'AAAA')).toEqual(ok());
    expect(ask('tasks.db', 'MX')).toEqual(ok());
  });
});

describe('NXDOMAIN and forwarding', () => {
  test.each([
    ['nosuch', nx],
    ['secret', nx], // a service of a network the asker is not on
    ['tasks.secret', nx],
    ['secret.1.x1', 'forward'], // not of the asker's networks' domain: upstream says
    ['nosuch.front', nx],
    ['tasks.web.other', 'forward'],
    ['example.com', 'forward'],
    ['tasks.example.com', 'forward'],
    ['tasks.nosuch', nx],
  ])('%s -> %j', (name, want) => {
    expect(ask(name)).toEqual(want);
  });

  test('AAAA of an unknown cluster name is NXDOMAIN too', () => {
    expect(ask('nosuch', 'AAAA')).toEqual(nx);
    expect(ask('example.org', 'AAAA')).toBe('forward');
  });

  test('responses are dropped; several questions are a format error; other opcodes are not implemented', () => {
    expect(planDnsAnswer({ ...query('web'), type: 'response' }, index).kind).toBe('drop');
    const two = planDnsAnswer({ ...query('web'), questions: [{ name: 'web', type: 'A' }, { name: 'db', type: 'A' }] }, index);
    expect(two.kind === 'answer' && (two.packet.flags ?? 0) & 0xf).toBe(RCODE.FORMERR);
    const notify = planDnsAnswer({ ...query('web'), flags: 4 << 11 }, index);
    expect(notify.kind === 'answer' && (notify.packet.flags ?? 0) & 0xf).toBe(RCODE.NOTIMP);
  });

  test('other classes and the root go upstream', () => {
    expect(planDnsAnswer({ ...query('version.bind', 'TXT'), questions: [{ name: 'version.bind', type: 'TXT', class: 'CH' }] }, index).kind).toBe('forward');
    expect(ask('', 'NS')).toBe('forward');
  });
});

describe('service aliases', () => {
  const net = NetworkServices.fromPartial({
    networkId: 'ns',
    name: 'app_default',
    services: [
      { serviceId: 's-api', name: 'app_api', vip: '10.0.3.2', aliases: ['api', 'backend'], tasks: [task('a1', '10.0.3.5', 'app_api.1.a1', 'ha1')] },
      { serviceId: 's-rr', name: 'app_rr', vip: '', aliases: ['rr'], tasks: [task('r1', '10.0.3.7', 'app_rr.1.r1', 'hr1')] },
    ],
  });
  const idx = planDnsIndex([net], ['10.0.3.9/24']);
  const askHere = (name: string) => {
    const d = planDnsAnswer(query(name), idx);
    return d.kind === 'answer' ? (d.packet.answers ?? []).map(dataOf) : d.kind;
  };
  test.each([
    ['app_api', ['10.0.3.2']],
    ['api', ['10.0.3.2']],
    ['backend.app_default', ['10.0.3.2']],
    ['tasks.api', ['10.0.3.5']],
    ['rr', ['10.0.3.7']],
  ])('%s -> %j, as the service name', (name, want) => {
    expect(askHere(name)).toEqual(want);
  });
});

describe('PTR', () => {
  test.each([
    ['10.0.1.5', ok('web.1.t1')],
    ['10.0.2.5', ok('web.1.t1')],
    ['10.0.1.2', ok('web')],
    ['10.0.2.8', ok('api.1.a1')],
    ['10.0.1.200', nx], // inside front's subnet, held by nothing
    ['10.0.3.5', 'forward'], // a task of a network the asker is not on
    ['192.0.2.1', 'forward'],
  ])('%s -> %j', (ip, want) => {
    expect(ask(reverseName(ip), 'PTR')).toEqual(want);
  });

  test('partial reverse names go upstream', () => {
    expect(ask('1.0.10.in-addr.arpa', 'PTR')).toBe('forward');
  });
});

test('an asker without networks resolves nothing of the cluster', () => {
  const none = planDnsIndex([]);
  expect(planDnsAnswer(query('web'), none)).toMatchObject({ kind: 'answer', packet: { flags: FLAG_AA | (1 << 7) | FLAG_RD | RCODE.NXDOMAIN } });
  expect(planDnsAnswer(query('example.com'), none).kind).toBe('forward');
});

test('an asker on the other network sees its records alone', () => {
  const idx = planDnsIndex([other], ['10.0.3.5/24']);
  const d = planDnsAnswer(query('secret'), idx);
  expect(d.kind === 'answer' && d.packet.answers?.map(dataOf)).toEqual(['10.0.3.2']);
  expect(planDnsAnswer(query('web'), idx)).toMatchObject({ kind: 'answer', packet: { answers: [] } });
});

test('a query decoded by dns-packet is answered, and the answer encodes', () => {
  const wire = encode({ type: 'query', id: 9, flags: FLAG_RD, questions: [{ name: 'tasks.db.front', type: 'A' }] });
  const d = planDnsAnswer(decode(wire), index);
  expect(d.kind).toBe('answer');
  if (d.kind !== 'answer') return;
  const back = decode(encode(d.packet));
  expect(back.id).toBe(9);
  expect(back.flag_aa && back.flag_rd && back.flag_ra).toBe(true);
  expect(back.answers?.map(dataOf)).toEqual(['10.0.1.9', '10.0.1.10']);
});

test('SERVFAIL keeps the id and question; UDP limits come from EDNS', () => {
  expect(planServfail(query('example.com'))).toMatchObject({ id: 4242, flags: (1 << 7) | FLAG_RD | RCODE.SERVFAIL, questions: [{ name: 'example.com' }] });
  expect(udpLimit(query('x'))).toBe(512);
  const opt = (udpPayloadSize: number) => query('x', 'A', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] });
  expect(udpLimit(opt(1232))).toBe(1232);
  expect(udpLimit(opt(100))).toBe(512);
  expect(udpLimit(opt(65000))).toBe(4096);
  expect(FLAG_TC).toBe(0x200);
});

describe('resolv.conf', () => {
  const a = (driver: string, networkName: string, networkId = networkName) => ({ driver, networkName, networkId });
  test.each([
    [[a('overlay', 'front')], true],
    [[a('overlay', 'ingress')], false],
    [[a('bridge', 'bridge')], false],
    [[a('bridge', 'mybridge')], true],
    [[a('host', 'host')], false],
    [[a('macvlan', 'lan')], false],
    [[a('overlay', 'ingress'), a('bridge', 'bridge'), a('overlay', 'back')], true],
    [[], false],
  ])('%j uses the embedded DNS: %s', (attachments, want) => {
    expect(usesEmbeddedDns(attachments)).toBe(want);
  });

  test('the DNS networks of a task leave out ingress and the built-in bridge', () => {
    expect(dnsNetworkIds([a('overlay', 'ingress', 'i'), a('overlay', 'front', 'f'), a('bridge', 'bridge', 'b'), a('bridge', 'ub', 'u')])).toEqual(['f', 'u']);
  });

  test('the text points at 127.0.0.11 with ndots:0', () => {
    expect(renderResolvConf()).toBe('nameserver 127.0.0.11\noptions ndots:0\n');
  });

  test('nameservers are read in order, zone ids dropped', () => {
    expect(parseResolvConfNameservers('# x\nsearch lan\nnameserver 192.0.2.1\n  nameserver fe80::1%eth0\nnameserver\toops\noptions ndots:1\n')).toEqual(['192.0.2.1', 'fe80::1', 'oops']);
  });
});

describe('record differences (network doctor)', () => {
  test('none when the records match', () => {
    expect(planDnsRecordDifferences([front, back], [back, front])).toEqual([]);
  });

  test('each changed, missing or extra service and network is a line', () => {
    const changed = NetworkServices.fromPartial({
      ...front,
      services: [
        { ...front.services[0], tasks: front.services[0].tasks.slice(0, 1) },
        front.services[1],
        { serviceId: 's-new', name: 'new', vip: '10.0.1.4', tasks: [] },
      ],
    });
    expect(planDnsRecordDifferences([front, other], [changed, back])).toEqual([
      'dns: network front: service web: holds vip 10.0.1.2; tasks [web.1.t1=10.0.1.5 web.2.t2=10.0.1.6 web.3.t3=10.0.1.7(not serving)], want vip 10.0.1.2; tasks [web.1.t1=10.0.1.5]',
      'dns: network front: service new missing (want vip 10.0.1.4; tasks [])',
      'dns: network front: service idle held but gone from the cluster',
      'dns: network back: the resolver holds no records',
      'dns: network other: records held for a network no task here is on',
    ]);
  });
});

describe('a service name with _ (docker allows it; so does DNS)', () => {
  const net = NetworkServices.fromPartial({
    networkId: 'nu',
    name: 'lab',
    services: [{ serviceId: 's-ng', name: 'my_nginx', vip: '10.0.4.2', tasks: [task('n1', '10.0.4.5', 'my_nginx.1.n1', 'n1host'), task('n2', '10.0.4.6', 'my_nginx.2.n2', 'n2host')] }],
  });
  const idx = planDnsIndex([net], ['10.0.4.9/24']);
  const askU = (name: string, type: RecordType = 'A') => {
    const d = planDnsAnswer(query(name, type), idx, 0);
    if (d.kind !== 'answer') return d.kind;
    // Through the wire and back, as the asker gets it.
    const p = decode(encode(d.packet));
    return { rcode: (p.flags ?? 0) & 0xf, names: (p.answers ?? []).map((a) => a.name), data: (p.answers ?? []).map(dataOf).sort() };
  };

  test.each([
    ['my_nginx', ['10.0.4.2']],
    ['MY_NGINX.', ['10.0.4.2']],
    ['tasks.my_nginx', ['10.0.4.5', '10.0.4.6']],
    ['my_nginx.lab', ['10.0.4.2']],
    ['my_nginx.1.n1', ['10.0.4.5']],
  ])('%s', (name, ips) => {
    expect(askU(name)).toMatchObject({ rcode: RCODE.NOERROR, data: ips });
  });

  test('the VIP maps back to my_nginx', () => {
    expect(askU(reverseName('10.0.4.2'), 'PTR')).toMatchObject({ rcode: RCODE.NOERROR, data: ['my_nginx'] });
  });
});
