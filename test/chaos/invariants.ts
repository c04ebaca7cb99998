/**
 * The chaos suite's invariants, each read from the real system and judged by checks.ts:
 *   writes     no acknowledged write lost (the service's spec as last acked)
 *   replicas   replica counts converge (running tasks = wanted, all of the current spec)
 *   duplicates no slot runs more task processes than the update order allows (task cgroups on the hosts)
 *   dns        tasks.web from inside a task = the running tasks' addresses; web = its VIP
 *   overlay    FDB and neighbour entries on every up host's vx-<vni> = the remote endpoints now
 *   nft        the VIP rules in a task and the ingress rules of every up host name the running backends, no gone one
 * and, after the services and the network are removed, leftovers(): every kernel object swarmlet made for them is gone.
 */
import { type Node, type Service } from '../../services/gen/swarmlet/v1/types';
import { childCgroups, labCgroupRoot } from '../lab/cgroups';
import { listNetns, runCommand } from '../lab/ip-command';
import { mountsUnder } from '../lab/lab';
import { checkDns, checkDuplicates, checkNft, checkOverlay, checkReplicas, checkWrites, parseFdb, parseNeigh, type Endpoint, type TaskView } from './checks';
import { ChaosSwarm } from './swarm';
import { type Writer } from './workload';

export const INVARIANTS = ['writes', 'replicas', 'duplicates', 'dns', 'overlay', 'nft'] as const;
export type InvariantName = (typeof INVARIANTS)[number];
export type Verdict = Partial<Record<InvariantName | 'read', string[]>>;

const CMD_MS = 5000;

export interface Workload {
  service: string;
  client: string;
  network: string;
}

/** The workload's marks on a service: its chaos.seq label and its tasks' CHAOS_GEN env var. */
export function marksOf(s: Service): { seq: number | undefined; gen: number | undefined } {
  const label = s.spec?.labels['chaos.seq'];
  const env = s.spec?.task?.container?.env.find((x) => x.startsWith('CHAOS_GEN='));
  return { seq: label === undefined ? undefined : Number(label), gen: env ? Number(env.slice('CHAOS_GEN='.length)) : undefined };
}

export class Invariants {
  /** Every address each task of the workload ever had, by network name: what must leave the rules once it is gone. */
  private readonly seen = new Map<string, { network: string; addr: string }[]>();
  /** The tasks and nodes as the last check() read them. */
  lastTasks: TaskView[] = [];
  lastNodes: Node[] = [];
  /** What the last check() read from the kernel: proof that the checks looked at something. */
  read = { sandboxes: 0, fdb: 0, neigh: 0, nftTables: 0, taskCgroups: 0, dnsAnswers: 0 };

  constructor(private readonly swarm: ChaosSwarm, private readonly w: Workload, private readonly writer: Writer) {}

  /** Reads everything and judges it; an empty verdict means every invariant holds. */
  async check(): Promise<Verdict> {
    const { swarm, w } = this;
    const verdict: Verdict = {};
    this.read = { sandboxes: 0, fdb: 0, neigh: 0, nftTables: 0, taskCgroups: 0, dnsAnswers: 0 };
    const put = (k: InvariantName | 'read', problems: string[]) => {
      if (problems.length > 0) verdict[k] = [...(verdict[k] ?? []), ...problems];
    };
    let nodes, tasks, web: Service, client: Service;
    try {
      [nodes, tasks, web, client] = await swarm.anyManager(async (h) => Promise.all([swarm.nodes(h), swarm.tasks(h, true), swarm.service(h, w.service), swarm.service(h, w.client)]));
    } catch (err) {
      put('read', [`cannot read the swarm: ${(err as Error).message.split('\n')[0]}`]);
      return verdict;
    }
    const views = tasks.map(ChaosSwarm.view);
    for (const t of views) {
      if (t.serviceName !== w.service) continue;
      const known = this.seen.get(t.id) ?? [];
      for (const n of t.networks) if (n.addr && !known.some((k) => k.network === n.name && k.addr === n.addr)) known.push({ network: n.name, addr: n.addr });
      this.seen.set(t.id, known);
    }
    this.lastTasks = views;
    this.lastNodes = nodes;
    // A task on a node shown Down is no endpoint: nothing can reach it.
    const downNodes = new Set(nodes.filter((n) => !ChaosSwarm.isReady(n)).map((n) => n.id));
    const live = views.filter((t) => t.running && t.desiredRunning && !downNodes.has(t.nodeId));
    const liveWeb = live.filter((t) => t.serviceName === w.service);
    const addrs = (ts: TaskView[], net: string) => ts.flatMap((t) => t.networks.filter((n) => n.name === net).map((n) => n.addr));
    const goneAddrs = (net: string) => [...this.seen].filter(([id]) => !liveWeb.some((t) => t.id === id)).flatMap(([, a]) => a.filter((x) => x.network === net).map((x) => x.addr));

    put('writes', checkWrites(this.writer.writes, { ...marksOf(web), replicas: web.spec?.mode?.$case === 'replicated' ? web.spec.mode.value.replicas : -1, specVersion: web.specVersion }));
    put('replicas', checkReplicas([web, client].map((s) => ({ name: s.spec?.name ?? '', replicas: s.spec?.mode?.$case === 'replicated' ? s.spec.mode.value.replicas : -1, specVersion: s.specVersion })), views.filter((t) => t.serviceName === w.service || t.serviceName === w.client)));

    // Task processes per slot, from the task cgroups of every host that is up.
    const busy: { taskId: string; host: string }[] = [];
    for (const h of swarm.lab.hosts) {
      if (!swarm.up(h)) continue;
      for (const [taskId, b] of childCgroups(`${labCgroupRoot(swarm.lab.prefix)}/h${h.index}`)) if (b) busy.push({ taskId, host: h.name });
    }
    this.read.taskCgroups = busy.length;
    put('duplicates', checkDuplicates(views, busy));

    // DNS and the VIP rules, from inside the client task.
    const ct = live.find((t) => t.serviceName === w.client);
    const ctPid = tasks.find((t) => t.id === ct?.id)?.status?.container?.pid;
    const netId = tasks.flatMap((t) => t.networks).find((a) => a.networkName === w.network)?.networkId;
    const vip = web.endpoint?.virtualIps.find((v) => v.networkId === netId)?.addr.split('/')[0] ?? '';
    if (!ctPid) put('dns', [`no running ${w.client} task to ask from`]);
    else {
      const dig = async (name: string) => {
        const r = await runCommand(['nsenter', `--net=/proc/${ctPid}/ns/net`, '--', 'dig', '+short', '+time=1', '+tries=2', '@127.0.0.11', name], { timeoutMs: CMD_MS });
        return r.stdout.split('\n').map((l) => l.trim()).filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l));
      };
      const [tasksA, vipA] = await Promise.all([dig(`tasks.${w.service}`), dig(w.service)]);
      this.read.dnsAnswers = tasksA.length + vipA.length;
      put('dns', checkDns(w.service, { tasks: tasksA, vip: vipA }, { tasks: addrs(liveWeb, w.network), vip }));
      const lb = await runCommand(['nsenter', `--net=/proc/${ctPid}/ns/net`, '--', 'nft', 'list', 'table', 'ip', 'swarmlet-lb'], { timeoutMs: CMD_MS });
      if (lb.code === 0) this.read.nftTables++;
      put('nft', lb.code === 0 ? checkNft(`VIP rules in the ${w.client} task`, lb.stdout, addrs(liveWeb, w.network), goneAddrs(w.network)) : [`cannot list the VIP rules in the ${w.client} task: ${lb.stderr.trim()}`]);
    }

    // The ingress rules and the overlays of every up host.
    const ready = nodes.filter(ChaosSwarm.isReady);
    const vtepOf = new Map(ready.map((n) => [n.id, n.status?.addr ?? '']));
    const netVnis = new Map<number, string>();
    for (const t of views) for (const n of t.networks) if (n.vni) netVnis.set(n.vni, n.name);
    for (const n of nodes) if (n.ingress?.vni) netVnis.set(n.ingress.vni, 'ingress');
    for (const h of swarm.lab.hosts) {
      if (!swarm.up(h)) continue;
      const me = nodes.find((n) => n.description?.hostname === h.name);
      const ing = await runCommand(['ip', 'netns', 'exec', `${h.netns}-net-ingress`, 'nft', 'list', 'table', 'ip', 'swarmlet-ingress'], { timeoutMs: CMD_MS });
      if (ing.code === 0) this.read.nftTables++;
      if (ing.code === 0) put('nft', checkNft(`ingress rules on ${h.name}`, ing.stdout, addrs(liveWeb, 'ingress'), goneAddrs('ingress')));
      else if (liveWeb.length > 0) put('nft', [`ingress rules on ${h.name}: cannot list (${ing.stderr.trim().split('\n')[0]})`]);
      for (const [vni, net] of netVnis) {
        const ns = `${h.netns}-net-${vni}`;
        const [fdb, neigh] = await Promise.all([
          runCommand(['bridge', '-n', ns, '-j', 'fdb', 'show', 'dev', `vx-${vni}`], { timeoutMs: CMD_MS }),
          runCommand(['ip', '-n', ns, '-j', 'neigh', 'show', 'dev', `vx-${vni}`], { timeoutMs: CMD_MS }),
        ]);
        if (fdb.code !== 0 || neigh.code !== 0) {
          // No sandbox for this network on h: right only when h runs no task of it.
          if (live.some((t) => t.nodeId === me?.id && t.networks.some((a) => a.vni === vni))) put('overlay', [`${h.name}: cannot read vx-${vni} in ${ns}, though tasks of ${net} run there: ${(fdb.stderr || neigh.stderr).trim().split('\n')[0]}`]);
          continue;
        }
        this.read.sandboxes++;
        const remote: Endpoint[] = [];
        for (const t of live) {
          if (t.nodeId === me?.id || !vtepOf.has(t.nodeId)) continue;
          for (const a of t.networks) if (a.vni === vni && a.mac) remote.push({ mac: a.mac, addr: a.addr, vtep: vtepOf.get(t.nodeId) as string });
        }
        if (net === 'ingress') {
          for (const n of ready) if (n.id !== me?.id && n.ingress?.mac) remote.push({ mac: n.ingress.mac, addr: n.ingress.address.split('/')[0] ?? '', vtep: vtepOf.get(n.id) as string });
        }
        const reading = { host: h.name, vni, fdb: parseFdb(fdb.stdout), neigh: parseNeigh(neigh.stdout) };
        this.read.fdb += reading.fdb.length;
        this.read.neigh += reading.neigh.length;
        put('overlay', checkOverlay(reading, remote));
      }
    }
    return verdict;
  }

  /** Every address of `host` and of the tasks the last check() saw on its node (stopped ones too). */
  addressesOf(host: { name: string; addr: string }): string[] {
    const node = this.lastNodes.find((n) => n.description?.hostname === host.name);
    const mine = this.lastTasks.filter((t) => t.nodeId === node?.id).flatMap((t) => t.networks.map((a) => a.addr));
    return [host.addr, ...mine, ...(node?.ingress?.address ? [node.ingress.address.split('/')[0] ?? ''] : [])];
  }

  /** The task ids and the VNIs of the workload that were ever seen: what leftovers() looks for. */
  get taskIds(): string[] {
    return [...this.seen.keys()];
  }
}

/**
 * What is left, on the hosts that are up, of the kernel objects swarmlet made for the removed
 * services and network `vnis`: task cgroups, the network's sandbox namespaces, vx-/veth links in
 * the host namespaces, the ingress rules' published port, mounts of tasks under the data dirs.
 */
export async function leftovers(swarm: ChaosSwarm, taskIds: readonly string[], vnis: readonly number[], publishedPort: number): Promise<string[]> {
  const out: string[] = [];
  const names = await listNetns();
  for (const h of swarm.lab.hosts) {
    if (!swarm.up(h)) continue;
    for (const [cg, busy] of childCgroups(`${labCgroupRoot(swarm.lab.prefix)}/h${h.index}`)) out.push(`${h.name}: cgroup ${cg}${busy ? ' (with processes)' : ''}`);
    for (const vni of vnis) if (names.includes(`${h.netns}-net-${vni}`)) out.push(`${h.name}: netns ${h.netns}-net-${vni}`);
    const links = await runCommand(['ip', '-n', h.netns, '-o', 'link', 'show'], { timeoutMs: CMD_MS });
    for (const l of links.stdout.split('\n')) {
      const name = /^\d+: ([^:@]+)/.exec(l)?.[1];
      if (name && (/^vx-/.test(name) || /^v\d+-/.test(name) || /^veth/.test(name))) out.push(`${h.name}: link ${name} in the host namespace`);
    }
    const ing = await runCommand(['ip', 'netns', 'exec', `${h.netns}-net-ingress`, 'nft', 'list', 'ruleset'], { timeoutMs: CMD_MS });
    if (ing.code === 0 && new RegExp(`dport ${publishedPort}\\b`).test(ing.stdout)) out.push(`${h.name}: the ingress rules still publish port ${publishedPort}`);
    const hostNft = await runCommand(['ip', 'netns', 'exec', h.netns, 'nft', 'list', 'ruleset'], { timeoutMs: CMD_MS });
    if (new RegExp(`dport ${publishedPort}\\b`).test(hostNft.stdout)) out.push(`${h.name}: the host's rules still name port ${publishedPort}`);
    for (const m of mountsUnder(h.dataDir)) if (taskIds.some((id) => m.includes(id))) out.push(`${h.name}: mount ${m}`);
  }
  for (const ns of names) if (taskIds.some((id) => ns.includes(id.slice(0, 12)))) out.push(`netns ${ns}`);
  return out;
}
