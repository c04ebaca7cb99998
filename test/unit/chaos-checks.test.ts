import {
  aboutHost,
  addressesIn,
  checkDns,
  checkDuplicates,
  checkNft,
  checkOverlay,
  checkReplicas,
  checkWrites,
  countWindow,
  parseFdb,
  parseNeigh,
  parseProbeLine,
  referenceFailed,
  renderTable,
  type FaultRow,
  type ProbeSecond,
  type TaskView,
  type WriteRecord,
} from '../chaos/checks';

const write = (seq: number, replicas: number, acked: boolean, specVersion?: number, gen?: number): WriteRecord => ({ seq, replicas, acked, specVersion, gen, at: seq * 1000, via: 'h1' });

describe('checkWrites: no acknowledged write lost', () => {
  const writes = [write(1, 3, true, 2, 1), write(2, 4, true, 2), write(3, 5, false, undefined, 3)];
  test('the spec holding the last acknowledged write passes', () => {
    expect(checkWrites(writes, { seq: 2, replicas: 4, gen: 1, specVersion: 2 })).toEqual([]);
  });
  test('a later write that failed at the CLI but was applied is no loss', () => {
    expect(checkWrites(writes, { seq: 3, replicas: 5, gen: 3, specVersion: 3 })).toEqual([]);
  });
  test('an older write in the spec means the last acknowledged one was lost', () => {
    expect(checkWrites(writes, { seq: 1, replicas: 3, gen: 1, specVersion: 1 })).toEqual(['acknowledged write #2 (replicas 4) lost: the spec holds #1', 'specVersion went back from 2 (read after an ack) to 1']);
  });
  test('the right write with other replicas, or a write never made, is named', () => {
    expect(checkWrites(writes, { seq: 2, replicas: 3, gen: 1, specVersion: 2 })).toEqual(['acknowledged write #2 set replicas 4, the spec says 3']);
    expect(checkWrites(writes, { seq: 9, replicas: 3, gen: 1, specVersion: 2 })).toEqual(['the spec holds write #9, which the workload never made']);
    expect(checkWrites(writes, { seq: undefined, replicas: 3, gen: 1, specVersion: 2 })).toEqual(['acknowledged write #2 (replicas 4) lost: the spec holds no write of the workload']);
  });
  test("a lost rolling update shows in the tasks' env, and an env never set is named", () => {
    expect(checkWrites(writes, { seq: 2, replicas: 4, gen: undefined, specVersion: 2 })).toEqual(["acknowledged rolling update CHAOS_GEN=1 lost: the tasks' spec has none"]);
    expect(checkWrites(writes, { seq: 2, replicas: 4, gen: 7, specVersion: 2 })).toEqual(["the tasks' spec has CHAOS_GEN=7, which the workload never set"]);
  });
  test('with nothing acknowledged there is nothing to lose', () => {
    expect(checkWrites([write(1, 3, false)], { seq: undefined, replicas: 1, gen: undefined, specVersion: 1 })).toEqual([]);
  });
});

const task = (id: string, over: Partial<TaskView> = {}): TaskView => ({ id, serviceName: 'web', slot: 1, nodeId: 'n1', running: true, desiredRunning: true, specVersion: 5, networks: [], ...over });

describe('checkReplicas: replica counts converge', () => {
  const svc = [{ name: 'web', replicas: 2, specVersion: 5 }];
  test('as many running tasks of the current spec as wanted passes; stopped history is ignored', () => {
    expect(checkReplicas(svc, [task('a'), task('b', { slot: 2 }), task('old', { running: false, desiredRunning: false, specVersion: 4 })])).toEqual([]);
  });
  test('too few, an old spec, or a task running though told to stop is named', () => {
    expect(checkReplicas(svc, [task('a')])).toEqual(['web: 1 tasks running, 2 wanted']);
    expect(checkReplicas(svc, [task('a'), task('b', { specVersion: 4 })])).toEqual(['web: 1 running tasks are of an older spec than 5']);
    expect(checkReplicas(svc, [task('a'), task('b'), task('zombie0000001', { desiredRunning: false })])).toEqual(['web: 1 tasks still running though told to stop (zombie000000)']);
  });
});

describe('checkDuplicates: no slot runs more task processes than the update order allows', () => {
  const tasks = [task('t1'), task('t2', { desiredRunning: false }), task('t3', { slot: 2 })];
  test('one process per slot passes', () => {
    expect(checkDuplicates(tasks, [{ taskId: 't1', host: 'h1' }, { taskId: 't3', host: 'h2' }])).toEqual([]);
  });
  test('two tasks of one slot running on hosts is a duplicate; unknown task cgroups are named', () => {
    expect(checkDuplicates(tasks, [{ taskId: 't1', host: 'h1' }, { taskId: 't2', host: 'h4' }, { taskId: 'ghost', host: 'h3' }])).toEqual(['slot web.1 runs 2 task processes: t1 on h1, t2 on h4', 'task processes the swarm does not know: ghost on h3']);
  });
  test('start-first allows two per slot', () => {
    expect(checkDuplicates(tasks, [{ taskId: 't1', host: 'h1' }, { taskId: 't2', host: 'h4' }], 2)).toEqual([]);
  });
});

describe('checkDns: no stale answers', () => {
  test('equal sets in any order pass', () => {
    expect(checkDns('web', { tasks: ['10.0.1.4', '10.0.1.3'], vip: ['10.0.1.2'] }, { tasks: ['10.0.1.3', '10.0.1.4'], vip: '10.0.1.2' })).toEqual([]);
  });
  test('a stale and a missing address, and a wrong VIP, are named', () => {
    expect(checkDns('web', { tasks: ['10.0.1.3', '10.0.1.9'], vip: [] }, { tasks: ['10.0.1.3', '10.0.1.4'], vip: '10.0.1.2' })).toEqual([
      'tasks.web answers [10.0.1.3, 10.0.1.9], stale 10.0.1.9, missing 10.0.1.4',
      'web answers [], not the VIP 10.0.1.2',
    ]);
  });
});

describe('checkOverlay: FDB and neighbour entries match the remote endpoints now', () => {
  const remote = [{ mac: '02:42:0a:00:01:03', addr: '10.0.1.3', vtep: '198.51.100.12' }];
  test('exact entries pass, MACs compared without case', () => {
    expect(checkOverlay({ host: 'h1', vni: 4097, fdb: [{ mac: '02:42:0A:00:01:03', dst: '198.51.100.12' }], neigh: [{ dst: '10.0.1.3', lladdr: '02:42:0a:00:01:03' }] }, remote)).toEqual([]);
  });
  test('an entry of a gone endpoint, one at the wrong VTEP, and a missing one are named', () => {
    expect(
      checkOverlay(
        {
          host: 'h1',
          vni: 4097,
          fdb: [{ mac: '02:42:0a:00:01:03', dst: '198.51.100.14' }, { mac: '02:42:0a:00:01:07', dst: '198.51.100.14' }],
          neigh: [{ dst: '10.0.1.7', lladdr: '02:42:0a:00:01:07' }],
        },
        remote,
      ),
    ).toEqual([
      'h1 vx-4097: FDB entry 02:42:0a:00:01:03 -> 198.51.100.14, but it lives at 198.51.100.12',
      'h1 vx-4097: stale FDB entry 02:42:0a:00:01:07 -> 198.51.100.14 (no such endpoint now)',
      'h1 vx-4097: stale neighbour entry 10.0.1.7 -> 02:42:0a:00:01:07 (no such endpoint now)',
      'h1 vx-4097: no neighbour entry for 10.0.1.3',
    ]);
  });
});

describe('nft and command output', () => {
  test('addressesIn finds whole addresses only', () => {
    expect([...addressesIn('ip daddr 10.0.0.5 dnat to 10.0.0.50 : 10.0.0.5:8000 numgen 1.2.3')].sort()).toEqual(['10.0.0.5', '10.0.0.50']);
  });
  test('checkNft names stale and missing backends; an address a live task holds again is not stale', () => {
    const text = 'map backends { elements = { 0 : 10.0.1.3, 1 : 10.0.1.9 } }';
    expect(checkNft('VIP rules', text, ['10.0.1.3', '10.0.1.9'], ['10.0.1.9', '10.0.1.5'])).toEqual([]);
    expect(checkNft('VIP rules', text, ['10.0.1.3', '10.0.1.4'], ['10.0.1.9'])).toEqual(['VIP rules: stale backends 10.0.1.9', 'VIP rules: missing backends 10.0.1.4']);
  });
  test('parseFdb keeps the entries that name a VTEP; parseNeigh those with an lladdr', () => {
    const fdb = JSON.stringify([{ mac: '02:42:0a:00:01:03', dst: '198.51.100.12', flags: ['self'] }, { mac: '02:42:0a:00:01:03', master: 'br-4097' }, { mac: '00:00:00:00:00:00', dst: '198.51.100.12' }]);
    expect(parseFdb(fdb)).toEqual([{ mac: '02:42:0a:00:01:03', dst: '198.51.100.12' }]);
    expect(parseFdb('')).toEqual([]);
    expect(parseNeigh(JSON.stringify([{ dst: '10.0.1.3', lladdr: '02:42:0a:00:01:03', state: ['PERMANENT'] }, { dst: '10.0.1.8', state: ['FAILED'] }]))).toEqual([{ dst: '10.0.1.3', lladdr: '02:42:0a:00:01:03' }]);
  });
});

describe('aboutHost', () => {
  test('keeps the problems that name the dead host or an address of its tasks, as whole addresses', () => {
    const problems = [
      'h1 vx-4097: stale FDB entry 02:42:0a:00:00:11 -> 198.51.100.13 (no such endpoint now)',
      'h1 vx-4097: stale FDB entry 02:42:0a:00:00:0d -> 198.51.100.12 (no such endpoint now)',
      'tasks.web answers [10.0.0.21, 10.0.0.24], stale 10.0.0.24',
      'ingress rules on h4: missing backends 10.255.0.13',
      'VIP rules: stale backends 10.0.0.240',
    ];
    expect(aboutHost(problems, ['198.51.100.12', '10.0.0.24', ''])).toEqual([problems[1], problems[2]]);
  });
});

describe('probe counts', () => {
  const series: ProbeSecond[] = [
    { t: 100, r: { a: [10, 0], b: [8, 2] } },
    { t: 101, r: { a: [9, 1] } },
    { t: 102, r: { a: [5, 5] } },
    { t: 103, r: { a: [10, 0] } },
  ];
  test('countWindow sums the seconds in [from, to), over the picked targets', () => {
    expect(countWindow(series, 100_000, 102_000)).toEqual({ ok: 27, failed: 3, seconds: 2 });
    expect(countWindow(series, 100_000, 104_000, (t) => t === 'b')).toEqual({ ok: 8, failed: 2, seconds: 4 });
  });
  test('referenceFailed takes an equal window of the baseline, scaled when the window is longer', () => {
    expect(referenceFailed(series, 100_000, 104_000, 2000)).toBe(3);
    expect(referenceFailed(series, 100_000, 104_000, 8000)).toBe(16);
    expect(referenceFailed(series, 100_000, 100_000, 8000)).toBe(0);
  });
  test('parseProbeLine takes a probe line and nothing else', () => {
    expect(parseProbeLine('{"t":5,"r":{"u":[1,0]}}')).toEqual({ t: 5, r: { u: [1, 0] } });
    expect(parseProbeLine('whoami listening')).toBeUndefined();
    expect(parseProbeLine('{"t":"x"}')).toBeUndefined();
  });
});

describe('renderTable', () => {
  const row: FaultRow = {
    fault: 'worker-host-kill',
    detectWhat: 'a manager shows h4 Down',
    detectMs: 5400,
    convergeMs: null,
    failed: { mesh: 12, vip: 3 },
    reference: { mesh: 1, vip: 0 },
    requests: { mesh: 900, vip: 300 },
    writes: { acked: 10, failed: 1 },
    broken: { overlay: ['h1 vx-4097: stale FDB entry 02:42:0a:00:01:07 -> 198.51.100.14 (no such endpoint now)'] },
    notes: ['h4 came back'],
  };
  test('one row per fault, a broken invariant named in the row and in full below', () => {
    const text = renderTable([row, { ...row, fault: 'cpu-load', skipped: 'out of the 20-minute budget' }]);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^fault\s+detected\s+converged\s+failed mesh \(ref\)\s+failed VIP \(ref\)\s+writes ok\/failed\s+invariants$/);
    expect(lines[2]).toMatch(/^worker-host-kill\s+5\.4 s\s+no\s+12\/900 \(1\)\s+3\/300 \(0\)\s+10\/1\s+broke overlay$/);
    expect(lines[3]).toMatch(/^cpu-load .* not run: out of the 20-minute budget$/);
    expect(text).toContain('  overlay: h1 vx-4097: stale FDB entry 02:42:0a:00:01:07 -> 198.51.100.14 (no such endpoint now)');
    expect(text).toContain('  note: h4 came back');
  });
  test('a host kill shows the invariants while the host was down beside those after', () => {
    const text = renderTable([{ ...row, broken: {}, convergeMs: 2000, whileDown: { ms: null, broken: { overlay: ['h1 vx-4097: stale FDB entry x -> y'], dns: ['tasks.web answers [..]'] } } }]);
    expect(text.split('\n')[2]).toMatch(/\s2\.0 s\s.*while down: broke overlay, dns; after: yes$/);
    expect(text).toContain('  while down: these still pointed at the dead host or its tasks when it came back');
    expect(text).toContain('    overlay: h1 vx-4097: stale FDB entry x -> y');
  });
});
