/**
 * The chaos suite's view of its lab: 3 managers and 2 workers, the API of each daemon called in
 * process over its unix socket (a CLI call costs a Node start; the suite reads the swarm often),
 * and which hosts are up now. Writes go through the CLI (workload.ts), as a user's would.
 */
import { connect, call, type Clients } from '../../cli/client';
import { SwarmletError } from '../../services/common/errors';
import { NodeState, TaskState, type Node, type Service, type Task } from '../../services/gen/swarmlet/v1/types';
import { type InfoResponse } from '../../services/gen/swarmlet/v1/control';
import { type Lab, type LabHost } from '../lab/lab';
import { sleep } from '../lab/process-tree';
import { type TaskView } from './checks';

const CALL_MS = 3000;

export class ChaosSwarm {
  readonly managers: LabHost[];
  readonly workers: LabHost[];
  /** Hosts whose daemon is stopped or whose link is down: not asked, not checked. */
  readonly away = new Set<string>();
  private readonly clients = new Map<string, Clients>();

  constructor(readonly lab: Lab) {
    const [h1, h2, h3, h4, h5] = lab.hosts as [LabHost, LabHost, LabHost, LabHost, LabHost];
    this.managers = [h1, h2, h3];
    this.workers = [h4, h5];
  }

  up(h: LabHost): boolean {
    return !this.away.has(h.name);
  }

  upManagers(): LabHost[] {
    return this.managers.filter((h) => this.up(h));
  }

  private api(h: LabHost): Clients {
    let c = this.clients.get(h.name);
    if (!c) {
      c = connect({ host: h.socket });
      this.clients.set(h.name, c);
    }
    return c;
  }

  /** Drops the channel to h (after its daemon was restarted, a new one connects at once). */
  reconnect(h: LabHost): void {
    this.clients.get(h.name)?.close();
    this.clients.delete(h.name);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  async info(h: LabHost): Promise<InfoResponse> {
    const c = this.api(h);
    return call(c.local!, c.local!.info, {}, h.socket, CALL_MS);
  }

  async nodes(h: LabHost): Promise<Node[]> {
    const c = this.api(h);
    return (await call(c.control, c.control.listNodes, {}, h.socket, CALL_MS)).nodes;
  }

  async tasks(h: LabHost, all = true): Promise<Task[]> {
    const c = this.api(h);
    return (await call(c.control, c.control.listTasks, { service: '', node: '', all }, h.socket, CALL_MS)).tasks;
  }

  async service(h: LabHost, name: string): Promise<Service> {
    const c = this.api(h);
    return call(c.control, c.control.getService, { service: name }, h.socket, CALL_MS);
  }

  /** The first up manager that answers `fn`; the error of the last one when none does. */
  async anyManager<T>(fn: (h: LabHost) => Promise<T>): Promise<T> {
    let last: unknown = new SwarmletError('Unavailable', 'no manager is up');
    for (const h of this.upManagers()) {
      try {
        return await fn(h);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  /** The lab host of the leader, as an up manager names it; undefined when none names one. */
  async leader(): Promise<LabHost | undefined> {
    return this.anyManager(async (h) => {
      const nodes = await this.nodes(h);
      const name = nodes.find((n) => n.managerStatus?.leader)?.description?.hostname;
      return this.lab.hosts.find((x) => x.name === name);
    }).catch(() => undefined);
  }

  /** Waits until a manager names a leader (after set-up or a recovery). */
  async waitLeader(timeoutMs: number): Promise<LabHost> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = await this.leader();
      if (l) return l;
      if (Date.now() > deadline) throw new SwarmletError('Unavailable', `no manager named a leader within ${timeoutMs / 1000} s`);
      await sleep(500);
    }
  }

  hostOfNode(nodes: readonly Node[], nodeId: string): LabHost | undefined {
    const name = nodes.find((n) => n.id === nodeId)?.description?.hostname;
    return this.lab.hosts.find((h) => h.name === name);
  }

  static isReady(n: Node): boolean {
    return n.status?.state === NodeState.NODE_STATE_READY;
  }

  static view(t: Task): TaskView {
    return {
      id: t.id,
      serviceName: t.serviceName,
      slot: Number(t.slot),
      nodeId: t.nodeId,
      running: t.status?.state === TaskState.TASK_STATE_RUNNING,
      desiredRunning: t.desiredState === TaskState.TASK_STATE_RUNNING,
      specVersion: Number(t.specVersion),
      networks: t.networks.map((a) => ({ name: a.networkName, addr: a.address.split('/')[0] ?? '', mac: a.mac, vni: a.vni })),
    };
  }
}
