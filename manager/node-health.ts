import { Logger, componentLogger } from '../services/common/logger';
import { DEFAULT_CLUSTER_SPEC, needsHostProbe, planNextHealthCheck, planNodeState, SUSPECT_AFTER_MS } from './node-plans';
import { ReconcileLoop } from '../services/common/reconcile-loop';
import { inFlight, TXNS_IN_FLIGHT } from './store/etcd-store';
import { Store } from './store/store';
import { LOOP_COALESCE_MS } from './task-loops';
import { keys } from './store/keys';
import { HostProbe, probeHost } from './host-probe';

export interface NodeHealthOptions {
  now?: () => Date;
  /** How a silent node's host is asked whether it is up (a TCP handshake to its daemon's port). */
  probe?: HostProbe;
}

/**
 * Leader-only loop: a node is ready while its agent heartbeats (its heartbeat key lives under a
 * short lease the heartbeats renew). When the key goes, the node's host is probed: a host that
 * does not answer is down at once; one that answers (its daemon restarting, or stuck) keeps its
 * node ready through the cluster's node-down-after grace, probed again each second (planNodeState).
 */
export function nodeHealthLoop(store: Store, parentLog: Logger, opts: NodeHealthOptions = {}): ReconcileLoop {
  const log = componentLogger(parentLog, 'node-health');
  const now = opts.now ?? (() => new Date());
  const probe = opts.probe ?? probeHost;
  let timer: NodeJS.Timeout | undefined;
  /** Node id -> when this leader first saw it silent while ready (until it heartbeats again). */
  const silentSince = new Map<string, Date>();
  const loop: ReconcileLoop = new ReconcileLoop(
    store,
    {
      name: 'node-health',
      coalesceMs: LOOP_COALESCE_MS,
      watch: [keys.nodesPrefix, keys.heartbeatsPrefix, keys.cluster],
      resyncMs: 10000,
      reconcile: async (signal) => {
        clearTimeout(timer);
        const [nodes, alive, cluster] = await Promise.all([store.listNodes(), store.heartbeatingNodes(), store.getCluster()]);
        const graceMs = cluster?.spec?.nodeDownAfterMs || DEFAULT_CLUSTER_SPEC.nodeDownAfterMs;
        const answers = new Map<string, boolean | undefined>();
        const silent = nodes.filter((n) => needsHostProbe(n, alive.has(n.id)));
        for (const id of silentSince.keys()) if (!silent.some((n) => n.id === id)) silentSince.delete(id);
        for (const n of silent) if (!silentSince.has(n.id)) silentSince.set(n.id, now());
        await Promise.all(silent.map(async (n) => answers.set(n.id, await probe(n))));
        const live = (id: string) => ({ heartbeating: alive.has(id), hostAnswers: answers.get(id), silentSince: silentSince.get(id) });
        // Several nodes at a time: a thousand agents that connect together all turn ready at once.
        const changed = nodes.filter((node) => planNodeState(node, live(node.id), now(), graceMs));
        const after = new Map(nodes.map((n) => [n.id, n]));
        await inFlight(changed, TXNS_IN_FLIGHT, async (node) => {
          const updated = await store.mutateNode(node.id, (n) => {
            const status = planNodeState(n, live(n.id), now(), graceMs);
            return status && { ...n, status };
          });
          after.set(updated.id, updated);
          log.info({ nodeId: node.id, state: updated.status?.state, message: updated.status?.message }, 'node state changed');
        });
        // A node in its grace, or silent and not marked yet, is looked at again without waiting for a change in the store.
        let next = planNextHealthCheck([...after.values()], now(), graceMs);
        for (const [id, since] of silentSince) {
          if (!answers.get(id) && answers.get(id) !== undefined) continue;
          const wait = Math.max(0, since.getTime() + SUSPECT_AFTER_MS - now().getTime());
          next = next === undefined ? wait : Math.min(next, wait);
        }
        if (next !== undefined && !signal.aborted) {
          timer = setTimeout(() => loop.poke(), next);
          timer.unref();
          signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
        }
      },
    },
    log,
  );
  return loop;
}
