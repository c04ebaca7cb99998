/**
 * NetworkController as the daemon drives it, against the real kernel, inside the test runner's private
 * namespaces (test/run.sh): this process's namespace is the node (the sandbox gives it nothing
 * but lo; the test adds an uplink veth to an "outside" client namespace, 198.51.100.0/24). Session
 * messages are applied as the dispatcher would send them: an overlay `front` with two web tasks
 * and a client task, the `ingress` overlay with the node's endpoint, a published port. Tasks are
 * bare namespaces plugged in by NetworkController.attach, as the worker does before their command
 * starts; servers then answer their name. Checks: the VIP from the client task, the routing mesh
 * from outside, the embedded DNS, the doctor, a resync after hand-made damage, and leaving.
 * Everything carries a unique prefix and is removed in afterAll, also when a test fails.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { INGRESS_NFT_TABLE, LB_NFT_TABLE, PUBLISH_NFT_TABLE, renderIngressNft, renderTaskLbNft } from '../../agent/network/plans/lb-nft';
import { listNftTable } from '../../agent/network/lb-driver';
import { createRootLogger } from '../../services/common/logger';
import { NetworkController, SessionNetworks } from '../../agent/network/network-controller';
import type { CheckOverlaysRequest, IngressConfig, NetworkServices, OverlayNetwork } from '../../services/gen/swarmlet/v1/dispatcher';
import { NetworkAttachment, PortProtocol, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { addNetns, deleteNetns, ipj, killServers, netnsPath, run, server } from '../support/netns';
import { byResponder, probeTcp } from '../support/tcp-probe';
import { uniqueSuffix } from '../support/unique';

const U = uniqueSuffix();
const PREFIX = `nn${U}`;
const OUT = `${PREFIX}-out`;
const TA = `${PREFIX}-ta`;
const TB = `${PREFIX}-tb`;
const TC = `${PREFIX}-tc`;
const HOST_IP = '198.51.100.1';
const OUT_IP = '198.51.100.2';
const UPLINK = `u${U}`;
const TARGET = 7300;
const PUBLISHED = 8080;
const HOST_MODE = 9000;

const front: OverlayNetwork = { networkId: 'net-front', name: 'front', vni: 4700, subnet: '10.90.0.0/24', gateway: '10.90.0.1', mtu: 0, peers: [] };
const ingressNet: OverlayNetwork = { networkId: 'net-ingress', name: 'ingress', vni: 4701, subnet: '10.255.0.0/16', gateway: '10.255.0.1', mtu: 0, peers: [] };
const mac = (ip: string) => `02:42:${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`;
const on = (net: OverlayNetwork, ip: string): NetworkAttachment => ({
  networkId: net.networkId, networkName: net.name, driver: 'overlay', address: `${ip}/${net.subnet.split('/')[1]}`, mac: mac(ip), gateway: net.gateway, vni: net.vni, internal: false, options: {},
});
function task(id: string, serviceName: string, slot: number, networks: NetworkAttachment[]): Task {
  return { id, serviceId: `s-${serviceName}`, serviceName, slot, nodeId: 'node1', specVersion: 1, desiredState: TaskState.TASK_STATE_RUNNING, createdAt: '', networks };
}
const A = task('a1webtaskaaaaaaaaaaaaaaaa', 'web', 1, [on(front, '10.90.0.5'), on(ingressNet, '10.255.0.5')]);
const B = task('b2webtaskbbbbbbbbbbbbbbbb', 'web', 2, [on(front, '10.90.0.6'), on(ingressNet, '10.255.0.6')]);
const C = task('c1clienttaskcccccccccccccc', 'client', 1, [on(front, '10.90.0.9')]);
const WEB_VIP = '10.90.0.2';
const netnsOf = new Map([[A.id, netnsPath(TA)], [B.id, netnsPath(TB)], [C.id, netnsPath(TC)]]);
/** The tasks the "worker" runs: those attached. */
const running = new Map<string, string>();

function services(webServing: Task[]): NetworkServices[] {
  const st = (t: Task, serving: boolean) => ({ taskId: t.id, ip: t.networks[0].address.split('/')[0], name: `${t.serviceName}.${t.slot}.${t.id}`, hostname: t.id.slice(0, 12), serving });
  return [{
    networkId: front.networkId,
    name: front.name,
    containers: [],
    services: [
      { serviceId: 's-web', aliases: [], name: 'web', vip: WEB_VIP, tasks: [A, B].map((t) => st(t, webServing.includes(t))) },
      { serviceId: 's-client', aliases: [], name: 'client', vip: '10.90.0.3', tasks: [st(C, true)] },
    ],
  }];
}

function ingress(webServing: Task[]): IngressConfig {
  return {
    networkId: ingressNet.networkId,
    vni: ingressNet.vni,
    endpoint: on(ingressNet, '10.255.0.2'),
    ports: [{ protocol: PortProtocol.PORT_PROTOCOL_TCP, publishedPort: PUBLISHED, targetPort: TARGET, serviceId: 's-web', serviceName: 'web', backends: webServing.map((t) => t.networks[1].address.split('/')[0]) }],
  };
}

function message(webServing: Task[]): SessionNetworks {
  const peers = [A, B].map((t) => ({ ip: t.networks[1].address.split('/')[0], mac: t.networks[1].mac, vtep: HOST_IP }));
  return { overlays: [front, { ...ingressNet, peers }], tasks: [A, B, C], services: services(webServing), ingress: ingress(webServing), hostPorts: [] };
}

const doctorRequest = (msg: SessionNetworks): CheckOverlaysRequest => ({ overlays: msg.overlays, services: msg.services, ingress: msg.ingress, hostPorts: msg.hostPorts, checkServices: true });

const log = createRootLogger(process.env.NN_TEST_LOG ?? 'silent');
let networks: NetworkController | undefined;
// No periodic resync: a test that breaks the kernel by hand checks the doctor before it asks for a resync.
const options = { log, localVtep: HOST_IP, netnsPrefix: PREFIX, dnsUpstreams: ['127.0.0.1:5399'], resyncMs: Infinity };

/** A query from inside a task's namespace; asynchronous, since the resolver answers from this very process. */
async function dig(ns: string, name: string): Promise<string> {
  const { stdout } = await promisify(execFile)('nsenter', [`--net=${netnsPath(ns)}`, '--', 'dig', '@127.0.0.11', '+short', '+time=2', '+tries=1', name], { encoding: 'utf8' });
  return stdout.trim();
}

beforeAll(async () => {
  for (const ns of [OUT, TA, TB, TC]) addNetns(ns);
  run('ip', ['link', 'add', UPLINK, 'type', 'veth', 'peer', 'name', 'dn0', 'netns', OUT]);
  run('ip', ['addr', 'add', `${HOST_IP}/24`, 'dev', UPLINK]);
  run('ip', ['link', 'set', UPLINK, 'up']);
  run('ip', ['-n', OUT, 'addr', 'add', `${OUT_IP}/24`, 'dev', 'dn0']);
  run('ip', ['-n', OUT, 'link', 'set', 'dn0', 'up']);
  networks = new NetworkController({ ...options, runningNetns: () => running });
}, 60000);

afterAll(async () => {
  killServers();
  await networks?.close().catch(() => undefined);
  await NetworkController.removeAll(options).catch(() => undefined);
  deleteNetns([OUT, TA, TB, TC, `${PREFIX}-ingress`, `${PREFIX}-${front.vni}`, `${PREFIX}-${ingressNet.vni}`]);
  try {
    run('ip', ['link', 'del', UPLINK]);
  } catch {
    // gone with its peer's namespace
  }
}, 60000);

test('attach plugs a task in and writes its VIP table before its command starts; the VIP and the mesh reach both web tasks', async () => {
  const msg = message([A, B]);
  await networks!.apply(msg);
  for (const t of [A, B, C]) {
    await networks!.attach(t, netnsOf.get(t.id)!);
    running.set(t.id, netnsOf.get(t.id)!);
  }
  expect(await listNftTable(netnsPath(TC), LB_NFT_TABLE)).toBe(renderTaskLbNft([{ vip: WEB_VIP, backends: ['10.90.0.5', '10.90.0.6'] }, { vip: '10.90.0.3', backends: ['10.90.0.9'] }]));
  await Promise.all([server(TA, 'a', TARGET), server(TB, 'b', TARGET)]);

  expect(Object.keys(byResponder(await probeTcp(netnsPath(TC), WEB_VIP, TARGET, 60))).sort()).toEqual(['a', 'b']);
  expect(Object.keys(byResponder(await probeTcp(netnsPath(OUT), HOST_IP, PUBLISHED, 60))).sort()).toEqual(['a', 'b']);
  expect(await networks!.doctor(doctorRequest(msg))).toEqual([]);
  // `network doctor front`: the manager sends that network's part only; the rest is not stale.
  expect(await networks!.doctor({ overlays: [front], services: msg.services, ingress: undefined, hostPorts: [], checkServices: true })).toEqual([]);
}, 120000);

test('a host-mode port goes to its task on this node, keeping the client address, and goes away with it', async () => {
  await server(TC, 'c', TARGET);
  const msg = { ...message([A, B]), hostPorts: [{ taskId: C.id, protocol: PortProtocol.PORT_PROTOCOL_TCP, publishedPort: HOST_MODE, targetPort: TARGET }] };
  await networks!.apply(msg);
  expect(await probeTcp(netnsPath(OUT), HOST_IP, HOST_MODE, 5)).toEqual({ [`pong:c:${OUT_IP}`]: 5 });
  expect(await networks!.doctor(doctorRequest(msg))).toEqual([]);
  await networks!.apply(message([A, B]));
  expect(await probeTcp(netnsPath(OUT), HOST_IP, HOST_MODE, 1)).toEqual({ 'error: ECONNREFUSED': 1 });
}, 60000);

test('the embedded DNS answers the tasks on the network', async () => {
  expect(await dig(TC, 'web')).toBe(WEB_VIP);
  expect((await dig(TC, 'tasks.web')).split('\n').sort()).toEqual(['10.90.0.5', '10.90.0.6']);
}, 30000);

test('a task that stops serving leaves the VIP, the mesh and tasks.<service> with the next message', async () => {
  const msg = message([A]);
  await networks!.apply(msg);
  expect(await dig(TC, 'tasks.web')).toBe('10.90.0.5');
  expect(byResponder(await probeTcp(netnsPath(TC), WEB_VIP, TARGET, 20))).toEqual({ a: 20 });
  expect(byResponder(await probeTcp(netnsPath(OUT), HOST_IP, PUBLISHED, 20))).toEqual({ a: 20 });
  expect(await networks!.doctor(doctorRequest(msg))).toEqual([]);
  // The doctor compares with what it is asked about, not with what the node applied.
  expect(await networks!.doctor(doctorRequest(message([A, B])))).toEqual(
    expect.arrayContaining([expect.stringMatching(/^VIP table swarmlet-lb of task c1clienttask\w+ differs/), expect.stringMatching(/^ingress table swarmlet-ingress in .* differs/)]),
  );
}, 60000);

test('a resync repairs tables deleted by hand', async () => {
  const msg = message([A, B]);
  await networks!.apply(msg);
  run('ip', ['netns', 'exec', TC, 'nft', 'delete', 'table', 'ip', LB_NFT_TABLE]);
  run('nft', ['delete', 'table', 'ip', PUBLISH_NFT_TABLE]);
  expect(await networks!.doctor(doctorRequest(msg))).toEqual(
    expect.arrayContaining([expect.stringMatching(/^missing VIP table swarmlet-lb of task c1clienttask/), 'missing host table swarmlet-publish']),
  );
  await networks!.resync();
  expect(await networks!.doctor(doctorRequest(msg))).toEqual([]);
  expect(Object.keys(byResponder(await probeTcp(netnsPath(TC), WEB_VIP, TARGET, 40))).sort()).toEqual(['a', 'b']);
}, 60000);

test('messages that arrive during a pass resolve in arrival order, after one pass that applies the latest', async () => {
  const order: number[] = [];
  const msgs = [message([A]), message([B]), message([A, B])];
  await Promise.all(msgs.map((m, i) => networks!.apply(m).then(() => order.push(i))));
  expect(order).toEqual([0, 1, 2]);
  expect(Object.keys(byResponder(await probeTcp(netnsPath(TC), WEB_VIP, TARGET, 40))).sort()).toEqual(['a', 'b']);
}, 60000);

test('a task this node sees stop leaves tasks.<service>, the VIP and the mesh at once, before any message says so; a message sent before the managers heard keeps it out', async () => {
  const msg = message([A, B]);
  await networks!.apply(msg);
  const withoutB = {
    vip: renderTaskLbNft([{ vip: WEB_VIP, backends: ['10.90.0.5'] }, { vip: '10.90.0.3', backends: ['10.90.0.9'] }]),
    ingress: renderIngressNft([{ protocol: 'tcp', publishedPort: PUBLISHED, targetPort: TARGET, backends: ['10.255.0.5'] }], 'eth0'),
  };
  expect(await listNftTable(netnsPath(TC), LB_NFT_TABLE)).not.toBe(withoutB.vip);
  // What the worker calls when B's process exits, or before it stops B: no message comes meanwhile.
  await networks!.stopServing(B.id);
  // Resolved: the records and both kinds of rule have let B go, together.
  expect(await listNftTable(netnsPath(TC), LB_NFT_TABLE)).toBe(withoutB.vip);
  expect(await listNftTable(netnsPath(TA), LB_NFT_TABLE)).toBe(withoutB.vip);
  expect(await listNftTable(netnsPath(`${PREFIX}-ingress`), INGRESS_NFT_TABLE)).toBe(withoutB.ingress);
  expect(await dig(TC, 'tasks.web')).toBe('10.90.0.5');
  expect(byResponder(await probeTcp(netnsPath(TC), WEB_VIP, TARGET, 20))).toEqual({ a: 20 });
  expect(byResponder(await probeTcp(netnsPath(OUT), HOST_IP, PUBLISHED, 20))).toEqual({ a: 20 });
  // The managers' message from before they heard of it (B still serving) does not bring B back.
  await networks!.apply(msg);
  expect(await listNftTable(netnsPath(TC), LB_NFT_TABLE)).toBe(withoutB.vip);
  expect(await listNftTable(netnsPath(`${PREFIX}-ingress`), INGRESS_NFT_TABLE)).toBe(withoutB.ingress);
  expect(await dig(TC, 'tasks.web')).toBe('10.90.0.5');
  // The doctor checks against the same: no difference is reported for B.
  expect(await networks!.doctor(doctorRequest(msg))).toEqual([]);
}, 60000);

test('without published ports the ingress sandbox and the host table go; leaving removes everything', async () => {
  await networks!.apply({ ...message([A, B]), ingress: undefined, overlays: [front] });
  expect(ipj(['netns', 'list']).map((n) => n.name)).not.toContain(`${PREFIX}-ingress`);
  expect(await listNftTable(undefined, PUBLISH_NFT_TABLE)).toBe('');
  expect(await networks!.doctor({ ...doctorRequest(message([A, B])), ingress: undefined, overlays: [front] })).toEqual([]);

  await networks!.close();
  networks = undefined;
  await NetworkController.removeAll(options);
  const left = ipj(['netns', 'list']).map((n) => n.name as string).filter((n) => n.startsWith(`${PREFIX}-`) && ![OUT, TA, TB, TC].includes(n));
  expect(left).toEqual([]);
}, 60000);
