import { Logger, componentLogger } from '../services/common/logger';
import { planNodeState } from './node-plans';
import { ReconcileLoop } from '../services/common/reconcile-loop';
import { inFlight, TXNS_IN_FLIGHT } from './store/etcd-store';
import { Store } from './store/store';
import { LOOP_COALESCE_MS } from './task-loops';
import { keys } from './store/keys';

/**
 * Leader-only loop: a node is ready while its agent heartbeats (its heartbeat key lives under a
 * lease the heartbeats renew) and down once the lease expires.
 */
export function nodeHealthLoop(store: Store, parentLog: Logger, now: () => Date = () => new Date()): ReconcileLoop {
  const log = componentLogger(parentLog, 'node-health');
  return new ReconcileLoop(
    store,
    {
      name: 'node-health',
      coalesceMs: LOOP_COALESCE_MS,
      watch: [keys.nodesPrefix, keys.heartbeatsPrefix],
      resyncMs: 10000,
      reconcile: async () => {
        const [nodes, alive] = await Promise.all([store.listNodes(), store.heartbeatingNodes()]);
        // Several nodes at a time: a thousand agents that connect together all turn ready at once.
        const changed = nodes.filter((node) => planNodeState(node, alive.has(node.id), now()));
        await inFlight(changed, TXNS_IN_FLIGHT, async (node) => {
          const updated = await store.mutateNode(node.id, (n) => {
            const status = planNodeState(n, alive.has(n.id), now());
            return status && { ...n, status };
          });
          log.info({ nodeId: node.id, state: updated.status?.state, message: updated.status?.message }, 'node state changed');
        });
      },
    },
    log,
  );
}
