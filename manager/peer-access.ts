import { permissionDenied } from '../services/common/errors';
import { Logger, componentLogger } from '../services/common/logger';
import { PeerIdentity } from '../services/pki/ca';
import { AccessView, planPeerAccess } from './access-plans';
import { EtcdStore } from './store/etcd-store';
import { keys } from './store/keys';
import { OperatorCertRegistry } from './store/operator-certs';

/**
 * Checks callers against the store on every call: a node's certificate works only while its node
 * is in the swarm (with the manager role, where asked), an operator's only while not revoked.
 * What it reads is kept in memory until the store's watch on nodes or operator certificates
 * says something changed; before the watch runs, every call reads the store.
 */
export class PeerAccess {
  private view?: Promise<AccessView>;
  private unwatch?: () => Promise<void>;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly store: EtcdStore, private readonly operators: OperatorCertRegistry, parentLog: Logger) {
    this.log = componentLogger(parentLog, 'peer-access');
  }

  /**
   * Starts the watch in the background: a manager whose etcd member does not serve yet (restarted
   * while the swarm has no quorum) would otherwise never finish starting, and hold up every
   * change of its node (`swarm init --force-new-cluster` above all).
   */
  async start(): Promise<void> {
    this.stopped = false;
    void this.store
      .watchPrefixes([keys.nodesPrefix, keys.operatorCertsPrefix], () => {
        this.view = undefined;
      })
      .then(
        (unwatch) => {
          if (this.stopped) void unwatch();
          else this.unwatch = unwatch;
        },
        (err) => {
          if (!this.stopped) this.log.warn({ err: (err as Error).message }, 'cannot watch nodes; checking callers against the store on every call');
        },
      );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const unwatch = this.unwatch;
    this.unwatch = undefined;
    this.view = undefined;
    await unwatch?.();
  }

  /** PermissionDenied unless the caller may go on (see planPeerAccess). */
  async check(peer: PeerIdentity, opts: { managerRole: boolean }): Promise<void> {
    const refusal = planPeerAccess(peer, await this.current(), opts);
    if (refusal) {
      this.log.warn({ nodeId: peer.nodeId, role: peer.role, serial: peer.serial }, 'caller refused');
      throw permissionDenied(refusal);
    }
  }

  private current(): Promise<AccessView> {
    if (!this.unwatch) return this.read();
    if (!this.view) {
      const view = this.read();
      this.view = view;
      view.catch(() => {
        if (this.view === view) this.view = undefined;
      });
    }
    return this.view;
  }

  private async read(): Promise<AccessView> {
    const [nodes, revokedOperators] = await Promise.all([this.store.listNodes(), this.operators.revokedSerials()]);
    return { nodes: new Map(nodes.map((n) => [n.id, n.role])), revokedOperators };
  }
}
