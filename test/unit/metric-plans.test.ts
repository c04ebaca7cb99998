import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encode } from 'dns-packet';
import { planQueryType, planRcode } from '../../services/metrics/dns-metrics';
import { planClusterCounts } from '../../services/metrics/metric-plans';
import { loadDaemonConfig, parseMetricsAddr } from '../../services/config/config';
import { Node, NodeRole, NodeState, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { parsePromText, sampleValue } from '../support/prom-text';

describe('planClusterCounts', () => {
  test('nodes by state and role, tasks by state and by service', () => {
    const node = (state: NodeState, role: NodeRole) => Node.fromPartial({ status: { state }, role });
    const task = (service: string, state: TaskState) => Task.fromPartial({ serviceName: service, status: { state } });
    const counts = planClusterCounts(
      [node(NodeState.NODE_STATE_READY, NodeRole.NODE_ROLE_MANAGER), node(NodeState.NODE_STATE_READY, NodeRole.NODE_ROLE_WORKER), node(NodeState.NODE_STATE_DOWN, NodeRole.NODE_ROLE_WORKER), node(NodeState.NODE_STATE_READY, NodeRole.NODE_ROLE_WORKER)],
      [task('web', TaskState.TASK_STATE_RUNNING), task('web', TaskState.TASK_STATE_RUNNING), task('web', TaskState.TASK_STATE_FAILED), task('db', TaskState.TASK_STATE_RUNNING)],
    );
    expect(counts.nodes).toEqual([
      { labels: { state: 'ready', role: 'manager' }, value: 1 },
      { labels: { state: 'ready', role: 'worker' }, value: 2 },
      { labels: { state: 'down', role: 'worker' }, value: 1 },
    ]);
    expect(counts.tasks).toEqual([
      { labels: { state: 'running' }, value: 3 },
      { labels: { state: 'failed' }, value: 1 },
    ]);
    expect(counts.serviceTasks).toEqual([
      { labels: { service: 'web', state: 'running' }, value: 2 },
      { labels: { service: 'web', state: 'failed' }, value: 1 },
      { labels: { service: 'db', state: 'running' }, value: 1 },
    ]);
  });

  test('an empty cluster counts nothing', () => {
    expect(planClusterCounts([], [])).toEqual({ nodes: [], tasks: [], serviceTasks: [] });
  });
});

describe('DNS labels from the wire', () => {
  const query = (type: 'A' | 'AAAA' | 'SRV' | 'NAPTR') => encode({ type: 'query', id: 1, questions: [{ type, name: 'web.example' }] });
  test.each([['A', 'A'], ['AAAA', 'AAAA'], ['SRV', 'SRV'], ['NAPTR', 'other']] as const)('a %s query is counted as %s', (type, label) => {
    expect(planQueryType(query(type))).toBe(label);
  });

  test('no question, or bytes too short, is none', () => {
    expect(planQueryType(encode({ type: 'query', id: 1, questions: [] }))).toBe('none');
    expect(planQueryType(Buffer.from([1, 2, 3]))).toBe('none');
    expect(planQueryType(query('A').subarray(0, 16))).toBe('none');
  });

  test('rcodes by name; no reply is dropped', () => {
    const reply = (rcode: number) => {
      const b = Buffer.from(query('A'));
      b[3] = (b[3] & 0xf0) | rcode;
      return b;
    };
    expect([0, 2, 3, 5, 9].map((r) => planRcode(reply(r)))).toEqual(['NOERROR', 'SERVFAIL', 'NXDOMAIN', 'REFUSED', 'other']);
    expect(planRcode(undefined)).toBe('dropped');
  });
});

describe('--metrics-addr', () => {
  test.each([
    ['', {}],
    [':9323', { metricsAddr: { port: 9323 } }],
    ['198.51.100.11:9323', { metricsAddr: { host: '198.51.100.11', port: 9323 } }],
  ])('%j', (text, want) => {
    expect(parseMetricsAddr(text)).toEqual(want);
  });

  test('the flag, then SWARMLET_METRICS_ADDR; unset, no metrics', () => {
    expect(loadDaemonConfig({ metricsAddr: ':1' }, { SWARMLET_METRICS_ADDR: ':2' }).metricsAddr).toEqual({ port: 1 });
    expect(loadDaemonConfig({}, { SWARMLET_METRICS_ADDR: '10.0.0.1:2' }).metricsAddr).toEqual({ host: '10.0.0.1', port: 2 });
    expect(loadDaemonConfig({}, {}).metricsAddr).toBeUndefined();
  });

  test('the config file\'s metricsAddr, checked like the flag', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmlet-metrics-config-'));
    try {
      const file = path.join(dir, 'daemon.json');
      fs.writeFileSync(file, JSON.stringify({ metricsAddr: ':9323' }));
      expect(loadDaemonConfig({ config: file }, {}).metricsAddr).toEqual({ port: 9323 });
      fs.writeFileSync(file, JSON.stringify({ metricsAddr: 'x:1' }));
      expect(() => loadDaemonConfig({ config: file }, {})).toThrow(/invalid metrics address "x:1"/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each(['9323', 'localhost:9323', ':0', ':65536', '1.2.3.4', '999.1.1.1:80'])('%j is refused', (text) => {
    expect(() => parseMetricsAddr(text)).toThrow(/metrics address/);
  });
});

describe('the test parser of the text format', () => {
  const text = [
    '# HELP swarmlet_tasks Tasks by state',
    '# TYPE swarmlet_tasks gauge',
    'swarmlet_tasks{state="running"} 3',
    'swarmlet_tasks{state="failed",note="a \\"quoted\\" \\\\ value"} 1',
    '# TYPE swarmlet_x_seconds histogram',
    'swarmlet_x_seconds_bucket{le="0.1"} 1',
    'swarmlet_x_seconds_bucket{le="+Inf"} 2',
    'swarmlet_x_seconds_sum 0.35',
    'swarmlet_x_seconds_count 2',
    '',
  ].join('\n');

  test('reads families, labels (unescaped) and values', () => {
    const f = parsePromText(text);
    expect(f.get('swarmlet_tasks')?.type).toBe('gauge');
    expect(sampleValue(f, 'swarmlet_tasks', { state: 'running' })).toBe(3);
    expect(f.get('swarmlet_tasks')?.samples[1].labels.note).toBe('a "quoted" \\ value');
    expect(sampleValue(f, 'swarmlet_x_seconds_count')).toBe(2);
    expect(sampleValue(f, 'swarmlet_x_seconds_bucket', { le: '+Inf' })).toBe(2);
  });

  test.each([
    ['a sample outside its family', '# TYPE a gauge\nb 1\n'],
    ['a bad value', '# TYPE a gauge\na one\n'],
    ['bad labels', '# TYPE a gauge\na{x=1} 1\n'],
    ['a bad type', '# TYPE a thing\n'],
    ['a label twice', '# TYPE a gauge\na{x="1",x="2"} 1\n'],
  ])('refuses %s', (_, bad) => {
    expect(() => parsePromText(bad)).toThrow(/line/);
  });
});
