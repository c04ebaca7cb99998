/**
 * The managers' side of containers' network attachments (swarmkit's ResourceAllocator): what the
 * dispatcher's AttachNetwork and DetachNetwork do, and its session-start reconcile, over the
 * store. The plans are in network/attachments.ts; the allocator loop gives an attachment its
 * address, as it does any task's.
 */
import { sleep } from '../services/common/backoff';
import { invalidArgument, permissionDenied, unavailable } from '../services/common/errors';
import { NODE_REMOVED } from '../services/api/grpc-errors';
import { Logger, componentLogger } from '../services/common/logger';
import { AttachNetworkRequest, AttachNetworkResponse } from '../services/gen/swarmlet/v1/dispatcher';
import { TaskState } from '../services/gen/swarmlet/v1/types';
import { newRandomId } from '../services/pki/ca';
import { ATTACHMENT_REQUESTED, checkDetach, planAttachment, planStaleAttachments } from './network/attachments';
import { Store } from './store/store';

export interface NetworkAttachmentsOptions {
  /** How long attach waits for the allocator (default 10 s). */
  waitMs?: number;
  /** How often it looks (default 50 ms). */
  pollMs?: number;
  now?: () => Date;
}

export class NetworkAttachments {
  private readonly log: Logger;
  private readonly waitMs: number;
  private readonly pollMs: number;
  private readonly now: () => Date;

  constructor(private readonly store: Store, parentLog: Logger, opts: NetworkAttachmentsOptions = {}) {
    this.log = componentLogger(parentLog, 'network-attachments');
    this.waitMs = opts.waitMs ?? 10000;
    this.pollMs = opts.pollMs ?? 50;
    this.now = opts.now ?? (() => new Date());
  }

  /**
   * A container of `nodeId` (the caller's node, from its certificate: never the request's word)
   * joins a cluster network: its attachment task is made (or the one it has already is found),
   * and the answer waits for the allocator's address. An attachment the allocator cannot give an
   * address to (the pool is full, the --ip is taken) is removed again and its reason is the
   * error: nothing is left behind.
   */
  async attach(nodeId: string, req: AttachNetworkRequest): Promise<AttachNetworkResponse> {
    const log = this.log.child({ nodeId, containerId: req.containerId });
    const [networks, tasks, node] = await Promise.all([this.store.listNetworks(), this.store.listTasks(), this.store.getNode(nodeId)]);
    if (!node) throw permissionDenied(NODE_REMOVED);
    const request = { nodeId, network: req.network, containerId: req.containerId, containerName: req.containerName, aliases: req.aliases, ipv4Address: req.ipv4Address };
    const plan = planAttachment(request, networks, tasks, newRandomId(), this.now());
    if (plan.kind === 'create') {
      await this.store.createTasks([plan.task]);
      log.info({ taskId: plan.task.id, networkId: plan.task.spec?.networks[0] }, 'network attachment requested');
    }
    const id = plan.task.id;
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const t = await this.store.getTask(id);
      if (!t) throw unavailable('the network attachment was removed while it was being allocated');
      if ((t.status?.state ?? 0) >= TaskState.TASK_STATE_ASSIGNED && t.networks[0]?.address) return { attachmentId: id, attachment: t.networks[0] };
      // The allocator says why it cannot: the request fails, and leaves nothing behind.
      const reason = t.status?.message && t.status.message !== ATTACHMENT_REQUESTED ? t.status.message : undefined;
      if (reason || Date.now() > deadline) {
        await this.store.deleteTasks([id]);
        log.info({ taskId: id, reason: reason ?? 'timed out' }, 'network attachment refused');
        if (reason) throw reason.startsWith('Address already in use') ? invalidArgument(reason) : unavailable(reason);
        throw unavailable('the managers did not allocate the network attachment in time; is a leader elected?');
      }
      await sleep(this.pollMs);
    }
  }

  /** Removes an attachment task of `nodeId`; one already gone is fine, another node's is refused. */
  async detach(nodeId: string, attachmentId: string): Promise<void> {
    const task = checkDetach(await this.store.getTask(attachmentId), nodeId);
    if (!task) return;
    await this.store.deleteTasks([task.id]);
    this.log.info({ nodeId, taskId: task.id, containerId: task.spec?.attachment?.containerId }, 'network attachment removed');
  }

  /** At session start the node lists the containers it has: the attachments of the others go. */
  async reconcileNode(nodeId: string, containerIds: string[]): Promise<void> {
    const stale = planStaleAttachments(await this.store.listTasks(), nodeId, containerIds);
    if (stale.length === 0) return;
    await this.store.deleteTasks(stale);
    this.log.info({ nodeId, count: stale.length }, 'network attachments of gone containers removed');
  }
}
