/**
 * NetworkController plugging containers' network attachments into the containers' namespaces,
 * against the real kernel inside the test runner's private namespaces (test/run.sh). Session
 * messages are applied as the dispatcher would send them: a service task on the overlay `front`
 * (plugged in as the worker does), and a container with attachment tasks on `front` and on a user
 * bridge `br`. The container's namespace is a bare one made by the test, registered as the
 * container code will register it. Everything carries a unique prefix and is removed in afterAll,
 * also when a test fails.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ContainerNetnsRegistry } from '../../agent/container-netns';
import { NetworkController, SessionNetworks } from '../../agent/network/network-controller';
import { createRootLogger } from '../../services/common/logger';
import type { NetworkServices, OverlayNetwork } from '../../services/gen/swarmlet/v1/dispatcher';
import { NetworkAttachment, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { addNetns, deleteNetns, echoServer, ipj, keepConnection, killServers, netnsPath, run } from '../support/netns';
import { rejection } from '../support/rejection';
import { uniqueSuffix } from '../support/unique';

const U = uniqueSuffix();
const PREFIX = `nc${U}`;
const TASK_NS = `${PREFIX}-t`;
const CONTAINER_NS = `${PREFIX}-c`;
const HOST_IP = '198.51.100.1';
const CONTAINER = `c0ffee${U}`.padEnd(64, '0');

const front: OverlayNetwork = { networkId: 'net-front', name: 'front', vni: 4710, subnet: '10.91.0.0/24', gateway: '10.91.0.1', mtu: 1400, peers: [] };
const mac = (ip: string) => `02:42:${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`;
const on = (networkId: string, networkName: string, driver: string, ip: string, gateway: string): NetworkAttachment => ({
  networkId, networkName, driver, address: `${ip}/24`, mac: mac(ip), gateway, vni: driver === 'overlay' ? front.vni : 0, internal: false, options: {},
});
const onFront = (ip: string) => on(front.networkId, front.name, 'overlay', ip, front.gateway);
const onBr = (ip: string) => on('net-br', `${PREFIX}br`, 'bridge', ip, '10.92.0.1');

const web: Task = Task.fromPartial({ id: 'w1webtaskaaaaaaaaaaaaaaaa', serviceId: 's-web', serviceName: 'web', slot: 1, nodeId: 'node1', desiredState: TaskState.TASK_STATE_RUNNING, networks: [onFront('10.91.0.5')] });
function attachment(id: string, a: NetworkAttachment, createdAt: string): Task {
  return Task.fromPartial({
    id,
    nodeId: 'node1',
    desiredState: TaskState.TASK_STATE_RUNNING,
    status: { state: TaskState.TASK_STATE_ASSIGNED },
    createdAt,
    spec: { networks: [a.networkId], attachment: { containerId: CONTAINER, containerName: 'alpine1', aliases: ['first'] } },
    networks: [a],
  });
}
const onFrontAtt = attachment('att1frontaaaaaaaaaaaaaaaa', onFront('10.91.0.7'), '2026-12-04T10:00:00.000Z');
const onBrAtt = attachment('att2bridgebbbbbbbbbbbbbbb', onBr('10.92.0.7'), '2026-12-04T10:00:01.000Z');

function records(containers: Task[]): NetworkServices[] {
  return [{
    networkId: front.networkId,
    name: front.name,
    services: [{ serviceId: 's-web', aliases: [], name: 'web', vip: '', tasks: [{ taskId: web.id, ip: '10.91.0.5', name: `web.1.${web.id}`, hostname: 'w1', serving: true }] }],
    containers: containers.filter((t) => t.networks[0].networkId === front.networkId).map((t) => ({ containerId: CONTAINER, name: 'alpine1', aliases: ['first'], ip: t.networks[0].address.split('/')[0] })),
  }];
}

function message(containers: Task[]): SessionNetworks {
  return { overlays: [front], tasks: [web, ...containers], services: records(containers), ingress: undefined, hostPorts: [] };
}

const log = createRootLogger(process.env.NC_TEST_LOG ?? 'silent');
const options = { log, localVtep: HOST_IP, netnsPrefix: PREFIX, dnsUpstreams: ['127.0.0.1:5399'] };
const running = new Map<string, string>();
const registry = new ContainerNetnsRegistry();
let networks: NetworkController | undefined;

async function dig(ns: string, name: string): Promise<string> {
  const { stdout } = await promisify(execFile)('nsenter', [`--net=${netnsPath(ns)}`, '--', 'dig', '@127.0.0.11', '+short', '+time=2', '+tries=1', name], { encoding: 'utf8' });
  return stdout.trim();
}

/** The container's interfaces: name -> IPv4 addresses (CIDR). */
function interfaces(ns: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const l of ipj(['addr', 'show'], ns)) {
    if (l.ifname === 'lo') continue;
    out[l.ifname] = (l.addr_info ?? []).filter((a: { family: string }) => a.family === 'inet').map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
  }
  return out;
}

/** The interface's index in the namespace: a re-made interface has another. */
const ifindex = (ns: string, name: string): number | undefined => ipj(['link', 'show', 'dev', name], ns)[0]?.ifindex;

beforeAll(async () => {
  for (const ns of [TASK_NS, CONTAINER_NS]) addNetns(ns);
  // The host side needs the local VTEP's address on an interface: a veth to nowhere.
  run('ip', ['link', 'add', `u${U}`, 'type', 'veth', 'peer', 'name', `v${U}`]);
  run('ip', ['addr', 'add', `${HOST_IP}/24`, 'dev', `u${U}`]);
  run('ip', ['link', 'set', `u${U}`, 'up']);
  networks = new NetworkController({ ...options, runningNetns: () => running, containerNetns: () => registry.entries() });
  registry.on('change', () => networks?.poke());
}, 60000);

afterAll(async () => {
  killServers();
  await networks?.close().catch(() => undefined);
  await NetworkController.removeAll(options).catch(() => undefined);
  deleteNetns([TASK_NS, CONTAINER_NS, `${PREFIX}-${front.vni}`]);
  try {
    run('ip', ['link', 'del', `u${U}`]);
  } catch {
    // gone already
  }
}, 60000);

test('a container is plugged into its attachments once its namespace is registered: eth0, eth1 in their order; names resolve both ways', async () => {
  await networks!.apply(message([]));
  await networks!.attach(web, netnsPath(TASK_NS));
  running.set(web.id, netnsPath(TASK_NS));

  await networks!.apply(message([onBrAtt, onFrontAtt]));
  // Not registered yet: nothing to plug into.
  await rejection(networks!.waitPlugged(CONTAINER, onFrontAtt.id, 300));
  registry.set(CONTAINER, netnsPath(CONTAINER_NS));
  await networks!.waitPlugged(CONTAINER, onFrontAtt.id, 20000);
  await networks!.waitPlugged(CONTAINER, onBrAtt.id, 1000);
  expect(interfaces(CONTAINER_NS)).toEqual({ eth0: ['10.91.0.7/24'], eth1: ['10.92.0.7/24'] });

  expect(await dig(TASK_NS, 'alpine1')).toBe('10.91.0.7');
  expect(await dig(TASK_NS, 'first.front')).toBe('10.91.0.7');
  expect(await dig(CONTAINER_NS, 'web')).toBe('10.91.0.5');
  expect(await networks!.doctor({ overlays: [front], services: records([onFrontAtt]), ingress: undefined, hostPorts: [], checkServices: true })).toEqual([]);
}, 60000);

test('unplugging one attachment takes its interface away at once; the others keep theirs; a container no longer registered is unplugged', async () => {
  const eth1 = ifindex(CONTAINER_NS, 'eth1');
  await networks!.unplug(onFrontAtt.id);
  expect(interfaces(CONTAINER_NS)).toEqual({ eth1: ['10.92.0.7/24'] });
  // The managers drop it: the next message no longer has it, nor its record.
  await networks!.apply(message([onBrAtt]));
  expect(interfaces(CONTAINER_NS)).toEqual({ eth1: ['10.92.0.7/24'] });
  expect(ifindex(CONTAINER_NS, 'eth1')).toBe(eth1);
  expect(await dig(TASK_NS, 'alpine1')).toBe('');
  expect(networks!.containerAttachments().get(CONTAINER)?.map((t) => t.id)).toEqual([onBrAtt.id]);

  registry.delete(CONTAINER);
  await networks!.resync();
  expect(interfaces(CONTAINER_NS)).toEqual({});
}, 60000);

test('a container that cannot be plugged in (its namespace is gone) fails the wait with the reason, not a timeout', async () => {
  registry.set(CONTAINER, netnsPath(`${PREFIX}-gone`));
  const err = await rejection(networks!.waitPlugged(CONTAINER, onBrAtt.id, 30000));
  expect(err.message).not.toMatch(/within/);
  expect(err.message).toMatch(/gone|ENOENT|No such file|not found/i);
  registry.delete(CONTAINER);
  await networks!.resync();
}, 60000);

test('connect and disconnect touch only the interface concerned: a TCP connection over eth0 lives on, eth0 is the same link, the gateway bridge comes and goes', async () => {
  registry.set(CONTAINER, netnsPath(CONTAINER_NS));
  // On the overlay alone: eth0, and the gateway bridge's eth1 for its way out.
  await networks!.apply(message([onFrontAtt]));
  await networks!.waitPlugged(CONTAINER, onFrontAtt.id, 20000);
  expect(Object.keys(interfaces(CONTAINER_NS))).toEqual(['eth0', 'eth1']);
  expect(interfaces(CONTAINER_NS).eth0).toEqual(['10.91.0.7/24']);
  expect(interfaces(CONTAINER_NS).eth1[0]).toMatch(/^172\.18\./);
  await echoServer(netnsPath(TASK_NS), 7070);
  const conn = await keepConnection(netnsPath(CONTAINER_NS), '10.91.0.5', 7070);
  expect(await conn.send('before')).toBe('before');
  const eth0 = ifindex(CONTAINER_NS, 'eth0');

  // network connect: a bridge network; the gateway bridge is no longer wanted, the bridge takes eth1.
  await networks!.apply(message([onFrontAtt, onBrAtt]));
  await networks!.waitPlugged(CONTAINER, onBrAtt.id, 20000);
  expect(interfaces(CONTAINER_NS)).toEqual({ eth0: ['10.91.0.7/24'], eth1: ['10.92.0.7/24'] });
  expect(ifindex(CONTAINER_NS, 'eth0')).toBe(eth0);
  expect(await conn.send('after connect')).toBe('after connect');

  // network disconnect: the bridge's interface goes alone; the gateway bridge is back.
  await networks!.unplug(onBrAtt.id);
  await networks!.apply(message([onFrontAtt]));
  expect(Object.keys(interfaces(CONTAINER_NS))).toEqual(['eth0', 'eth1']);
  expect(interfaces(CONTAINER_NS).eth1[0]).toMatch(/^172\.18\./);
  expect(ifindex(CONTAINER_NS, 'eth0')).toBe(eth0);
  expect(await conn.send('after disconnect')).toBe('after disconnect');
  expect(await networks!.doctor({ overlays: [front], services: records([onFrontAtt]), ingress: undefined, hostPorts: [], checkServices: true })).toEqual([]);

  registry.delete(CONTAINER);
  await networks!.resync();
  expect(interfaces(CONTAINER_NS)).toEqual({});
}, 90000);
