import { planEndpointsDown } from '../../agent/network/plans/endpoints-down';
import { planTaskVips } from '../../agent/network/plans/lb-nft';
import type { IngressConfig, NetworkServices } from '../../services/gen/swarmlet/v1/dispatcher';
import { Task } from '../../services/gen/swarmlet/v1/types';

const record = (taskId: string, ip: string, serving = true) => ({ taskId, ip, name: `web.1.${taskId}`, hostname: taskId, serving });

const SERVICES: NetworkServices[] = [
  {
    networkId: 'net-front',
    name: 'front',
    containers: [],
    services: [
      { serviceId: 's-web', aliases: [], name: 'web', vip: '10.0.1.2', tasks: [record('t1', '10.0.1.5'), record('t2', '10.0.1.6'), record('t3', '10.0.1.7', false)] },
      { serviceId: 's-api', aliases: [], name: 'api', vip: '10.0.1.3', tasks: [record('t4', '10.0.1.8')] },
    ],
  },
];

const INGRESS: IngressConfig = {
  networkId: 'net-ingress',
  vni: 4097,
  endpoint: undefined,
  ports: [
    { protocol: 0, publishedPort: 8080, targetPort: 80, serviceId: 's-web', serviceName: 'web', backends: ['10.255.0.5', '10.255.0.6'] },
    { protocol: 0, publishedPort: 9090, targetPort: 90, serviceId: 's-api', serviceName: 'api', backends: ['10.255.0.8'] },
  ],
};

/** This node's tasks: t1 and t4 run here (t2 elsewhere). */
const TASKS = [
  Task.fromPartial({ id: 't1', networks: [{ networkId: 'net-front', address: '10.0.1.5/24' }, { networkId: 'net-ingress', address: '10.255.0.5/16' }] }),
  Task.fromPartial({ id: 't4', networks: [{ networkId: 'net-front', address: '10.0.1.8/24' }, { networkId: 'net-ingress', address: '10.255.0.8/16' }] }),
];

describe('planEndpointsDown', () => {
  test('nothing down: the very same records and ingress', () => {
    const served = { services: SERVICES, ingress: INGRESS };
    expect(planEndpointsDown(served, TASKS, new Set())).toBe(served);
  });

  test('a task down leaves the VIP backends and tasks.<service> (its record stays, not serving) and the ingress backends, in one plan', () => {
    const out = planEndpointsDown({ services: SERVICES, ingress: INGRESS }, TASKS, new Set(['t1']));
    expect(out.services[0].services[0].tasks).toEqual([record('t1', '10.0.1.5', false), record('t2', '10.0.1.6'), record('t3', '10.0.1.7', false)]);
    expect(planTaskVips([{ networkId: 'net-front' }], out.services)).toEqual([
      { vip: '10.0.1.2', backends: ['10.0.1.6'] },
      { vip: '10.0.1.3', backends: ['10.0.1.8'] },
    ]);
    expect(out.ingress?.ports.map((p) => p.backends)).toEqual([['10.255.0.6'], ['10.255.0.8']]);
    // Records of other services, and the input, are untouched.
    expect(out.services[0].services[1]).toBe(SERVICES[0].services[1]);
    expect(SERVICES[0].services[0].tasks[0].serving).toBe(true);
    expect(INGRESS.ports[0].backends).toEqual(['10.255.0.5', '10.255.0.6']);
  });

  test('the last task of a service down leaves its ports without backends', () => {
    const out = planEndpointsDown({ services: SERVICES, ingress: INGRESS }, TASKS, new Set(['t4']));
    expect(out.ingress?.ports.map((p) => p.backends)).toEqual([['10.255.0.5', '10.255.0.6'], []]);
    expect(planTaskVips([{ networkId: 'net-front' }], out.services)[1]).toEqual({ vip: '10.0.1.3', backends: [] });
  });

  test('a task the records already show not serving, or one not on this node, changes nothing', () => {
    const served = { services: SERVICES, ingress: INGRESS };
    expect(planEndpointsDown(served, TASKS, new Set(['t3']))).toBe(served);
    expect(planEndpointsDown(served, TASKS, new Set(['elsewhere']))).toBe(served);
  });

  test('without ingress', () => {
    const out = planEndpointsDown({ services: SERVICES, ingress: undefined }, TASKS, new Set(['t1']));
    expect(out.ingress).toBeUndefined();
    expect(out.services[0].services[0].tasks[0].serving).toBe(false);
  });
});
