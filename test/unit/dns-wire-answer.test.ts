import { decode, encode, type Answer, type Packet, type RecordType } from 'dns-packet';
import { FLAG_AA, FLAG_RA, FLAG_RD, FLAG_TC, RCODE, planDnsAnswer, planDnsIndex, reverseName } from '../../agent/dns/answer';
import { planWireReply, planWireTable } from '../../agent/dns/wire-answer';
import { NetworkServices } from '../../services/gen/swarmlet/v1/dispatcher';

const task = (taskId: string, ip: string, name: string, hostname: string, serving = true) => ({ taskId, ip, name, hostname, serving });

const front = NetworkServices.fromPartial({
  networkId: 'nf',
  name: 'front',
  services: [
    { serviceId: 's-web', name: 'web', vip: '10.0.1.2', aliases: ['www'], tasks: [task('t1', '10.0.1.5', 'web.1.t1', 'h1'), task('t2', '10.0.1.6', 'web.2.t2', 'h2'), task('t3', '10.0.1.7', 'web.3.t3', 'h3', false)] },
    { serviceId: 's-db', name: 'db', vip: '', tasks: [task('d1', '10.0.1.9', 'db.1.d1', 'dbhost1'), task('d2', '10.0.1.10', 'db.2.d2', 'dbhost2'), task('d3', '10.0.1.11', 'db.3.d3', 'dbhost3')] },
    { serviceId: 's-idle', name: 'idle', vip: '10.0.1.3', tasks: [] },
    { serviceId: 's-many', name: 'many', vip: '', tasks: Array.from({ length: 60 }, (_, i) => task(`m${i}`, `10.0.1.${100 + i}`, `many.${i + 1}.m${i}`, `mh${i}`)) },
  ],
});
const back = NetworkServices.fromPartial({
  networkId: 'nb',
  name: 'back',
  services: [{ serviceId: 's-web', name: 'web', vip: '10.0.2.2', tasks: [task('t1', '10.0.2.5', 'web.1.t1', 'h1')] }],
});

const index = planDnsIndex([front, back], ['10.0.1.5/24', '10.0.2.5/24']);
const table = planWireTable(index);

const OPT = (udpPayloadSize: number): Answer => ({ type: 'OPT', name: '.', udpPayloadSize, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] });

function wire(name: string, type: RecordType = 'A', extra: Partial<Packet> = {}): Buffer {
  return encode({ type: 'query', id: 0xbeef, flags: FLAG_RD, questions: [{ name, type, class: 'IN' }], ...extra });
}

/** What an asker reads in a reply: the header fields, the question and the answers' data, in order. */
function read(reply: Buffer) {
  const p = decode(reply);
  return {
    type: p.type,
    id: p.id,
    flags: p.flags ?? 0,
    questions: p.questions,
    answers: (p.answers ?? []).map((a) => ({ name: a.name, type: a.type, ttl: (a as { ttl?: number }).ttl, data: String((a as { data?: unknown }).data) })),
    additionals: p.additionals?.length ?? 0,
  };
}

/** planDnsAnswer's reply to the same query, encoded as the decoded path encodes it (no truncation). */
function decodedPath(msg: Buffer, seq: number) {
  const d = planDnsAnswer(decode(msg), index, seq);
  return d.kind === 'answer' ? read(encode(d.packet)) : d.kind;
}

describe('the table answers as planDnsAnswer does', () => {
  test.each([
    ['web', 'A'],
    ['WEB.', 'A'],
    ['Web.Front', 'A'],
    ['www.front', 'A'],
    ['www', 'A'],
    ['tasks.web', 'A'],
    ['tasks.web.front', 'A'],
    ['db', 'A'],
    ['tasks.db', 'ANY'],
    ['idle', 'A'],
    ['tasks.idle', 'A'],
    ['web.1.t1', 'A'],
    ['h3.front', 'A'],
    ['web', 'AAAA'],
    ['tasks.db', 'MX'],
    ['web', 'PTR'],
    [reverseName('10.0.1.5'), 'PTR'],
    [reverseName('10.0.1.2'), 'PTR'],
  ] as [string, RecordType][])('%s %s', (name, type) => {
    for (const seq of [0, 1, 2, 5]) {
      const msg = wire(name, type);
      const reply = planWireReply(msg, table, seq, 'udp');
      expect(reply).toBeDefined();
      expect(read(reply as Buffer)).toEqual(decodedPath(msg, seq));
    }
  });

  test('a reply is the header with the same id and RD, QR AA RA set, the question as asked, and records naming it by pointer', () => {
    const msg = wire('Web.Front');
    const reply = planWireReply(msg, table, 0, 'udp') as Buffer;
    expect(read(reply)).toEqual({
      type: 'response',
      id: 0xbeef,
      flags: FLAG_AA | FLAG_RA | FLAG_RD,
      questions: [{ name: 'Web.Front', type: 'A', class: 'IN' }],
      answers: [{ name: 'Web.Front', type: 'A', ttl: 1, data: '10.0.1.2' }],
      additionals: 0,
    });
    expect(reply.subarray(12, msg.length)).toEqual(msg.subarray(12));
    expect(reply.readUInt16BE(msg.length)).toBe(0xc00c);
    const noRd = encode({ type: 'query', id: 7, flags: 0, questions: [{ name: 'web', type: 'A' }] });
    expect(read(planWireReply(noRd, table, 0, 'udp') as Buffer).flags).toBe(FLAG_AA | FLAG_RA);
  });

  test('round-robin names turn by one per query; VIP names do not', () => {
    const data = (name: string, seq: number) => read(planWireReply(wire(name), table, seq, 'udp') as Buffer).answers.map((a) => a.data);
    expect([0, 1, 2, 3].map((seq) => data('tasks.db', seq))).toEqual([
      ['10.0.1.9', '10.0.1.10', '10.0.1.11'],
      ['10.0.1.10', '10.0.1.11', '10.0.1.9'],
      ['10.0.1.11', '10.0.1.9', '10.0.1.10'],
      ['10.0.1.9', '10.0.1.10', '10.0.1.11'],
    ]);
    expect(data('db', 1)).toEqual(['10.0.1.10', '10.0.1.11', '10.0.1.9']);
    expect(data('web', 1)).toEqual(['10.0.1.2', '10.0.2.2']);
  });
});

describe('what the table leaves to the decoded path', () => {
  test.each([
    ['nosuch', 'A'], // NXDOMAIN
    ['nosuch.front', 'AAAA'],
    ['example.com', 'A'], // forwarded
    [reverseName('10.0.1.200'), 'PTR'], // NXDOMAIN: in the asker's subnet, held by nothing
    [reverseName('192.0.2.1'), 'PTR'], // forwarded
    [reverseName('10.0.1.5'), 'A'],
    ['', 'NS'],
  ] as [string, RecordType][])('%s %s', (name, type) => {
    expect(planWireReply(wire(name, type), table, 0, 'udp')).toBeUndefined();
  });

  test('other classes, opcodes, responses, several questions, compressed and non-ASCII names, short packets', () => {
    const miss = (msg: Buffer) => expect(planWireReply(msg, table, 0, 'udp')).toBeUndefined();
    miss(encode({ type: 'query', id: 1, questions: [{ name: 'web', type: 'A', class: 'CH' }] }));
    miss(encode({ type: 'query', id: 1, flags: 4 << 11, questions: [{ name: 'web', type: 'A' }] }));
    miss(encode({ type: 'response', id: 1, questions: [{ name: 'web', type: 'A' }] }));
    miss(encode({ type: 'query', id: 1, questions: [{ name: 'web', type: 'A' }, { name: 'db', type: 'A' }] }));
    miss(encode({ type: 'query', id: 1, questions: [{ name: 'web', type: 'A' }], answers: [{ type: 'A', name: 'web', data: '10.0.0.1' }] }));
    const plain = wire('web');
    // The name as a pointer to itself, and a byte above ASCII in a label.
    miss(Buffer.concat([plain.subarray(0, 12), Buffer.from([0xc0, 0x0c]), plain.subarray(plain.length - 4)]));
    const high = Buffer.from(plain);
    high[13] = 0xe7;
    miss(high);
    miss(plain.subarray(0, 16));
    miss(plain.subarray(0, plain.length - 1));
    // An additional record that is not a whole OPT record.
    miss(wire('web', 'A', { additionals: [{ type: 'A', name: 'x', data: '10.0.0.1' }] }));
    miss(Buffer.concat([wire('web', 'A', { additionals: [OPT(1232)] }), Buffer.from([0])]));
  });

  test('a name whose records do not encode plainly is not in the table', () => {
    const odd = NetworkServices.fromPartial({ networkId: 'nx', name: 'x', services: [{ serviceId: 's', name: 'bad', vip: 'not-an-ip', tasks: [] }] });
    const oddTable = planWireTable(planDnsIndex([odd]));
    expect(planWireReply(wire('bad'), oddTable, 0, 'udp')).toBeUndefined();
    expect(planWireReply(wire('tasks.bad'), oddTable, 0, 'udp')).toBeDefined();
  });
});

describe('sizes', () => {
  const count = (reply: Buffer) => reply.readUInt16BE(6);
  const tc = (reply: Buffer) => (reply.readUInt16BE(2) & FLAG_TC) !== 0;

  test('without EDNS a UDP answer stays within 512 bytes: as many records as fit, and TC', () => {
    const reply = planWireReply(wire('tasks.many'), table, 0, 'udp') as Buffer;
    expect(reply.length).toBeLessThanOrEqual(512);
    expect(tc(reply)).toBe(true);
    expect(count(reply)).toBe(Math.floor((512 - wire('tasks.many').length) / 16));
    expect(read(reply).answers.length).toBe(count(reply));
  });

  test('turned and truncated: the first records of the turned order', () => {
    const all = read(planWireReply(wire('tasks.many'), table, 45, 'tcp') as Buffer).answers.map((a) => a.data);
    const cut = read(planWireReply(wire('tasks.many'), table, 45, 'udp') as Buffer).answers.map((a) => a.data);
    expect(all[0]).toBe('10.0.1.145');
    expect(cut).toEqual(all.slice(0, cut.length));
  });

  test("EDNS sets the limit (512 to 4096); the answer carries no OPT, as the decoded path's does not", () => {
    const big = planWireReply(wire('tasks.many', 'A', { additionals: [OPT(4096)] }), table, 0, 'udp') as Buffer;
    expect([tc(big), count(big), read(big).additionals]).toEqual([false, 60, 0]);
    const small = planWireReply(wire('tasks.many', 'A', { additionals: [OPT(100)] }), table, 0, 'udp') as Buffer;
    expect([tc(small), small.length <= 512]).toEqual([true, true]);
    const mid = planWireReply(wire('tasks.many', 'A', { additionals: [OPT(700)] }), table, 0, 'udp') as Buffer;
    expect(mid.length).toBeLessThanOrEqual(700);
    expect(count(mid)).toBeGreaterThan(count(small));
  });

  test('over TCP an answer is whole', () => {
    const reply = planWireReply(wire('tasks.many'), table, 0, 'tcp') as Buffer;
    expect([tc(reply), count(reply)]).toEqual([false, 60]);
  });

  test('the rcode of a table answer is NOERROR', () => {
    expect((planWireReply(wire('web', 'AAAA'), table, 0, 'udp') as Buffer).readUInt16BE(2) & 0xf).toBe(RCODE.NOERROR);
  });
});
