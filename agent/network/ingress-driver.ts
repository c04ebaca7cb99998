/**
 * The node's ingress sandbox (docker's ingress_sbox): the network namespace `<prefix>-ingress`
 * through which a port published in ingress mode reaches its service's tasks, on whichever node
 * they run.
 *
 * It is plugged in like a task whose only network is the ingress overlay: `eth0` on the ingress
 * network with the node's ingress endpoint (address and MAC; the overlay driver plugs it, and
 * plugs it in again when its overlay sandbox is made again: NetworkController passes it to the overlay
 * driver's reconcile as a running task with the id INGRESS_TASK_ID), and `eth1` on the gateway
 * bridge (BridgeDriver.attachGateway), whose address the host's `ip swarmlet-publish` table DNATs
 * published ports to. Inside, the `ip swarmlet-ingress` table (plans/lb-nft.ts) DNATs each port to
 * one of its backends' ingress addresses and masquerades out of `eth0`, so replies come back
 * through the sandbox; IPv4 forwarding is on.
 *
 * prepare() runs before the overlays are reconciled (so the overlay driver finds the namespace to
 * plug), ensure() after them and the gateway bridge. An ingress endpoint that changes (another
 * address or MAC) makes the sandbox again.
 */
import { asSwarmletError } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import type { IngressConfig } from '../../services/gen/swarmlet/v1/dispatcher';
import { PortProtocol } from '../../services/gen/swarmlet/v1/types';
import type { BridgeDriver } from './bridge-driver';
import { NftTables, listNftTable } from './lb-driver';
import { enableForwarding, runInNetns } from './netns-run';
import { netnsOps } from '../runtime/netns-ops';
import type { RunningTask } from './driver';
import type { OverlayDriver } from './overlay-driver';
import { INGRESS_NFT_TABLE, IngressRule, NftProtocol, diffNftTable, renderIngressNft } from './plans/lb-nft';
import { parseCidr } from './netlink/encode';
import { deleteNetns, ensureNetns, isNetnsMounted, netnsPath } from './sandbox';

/** The pseudo task id the ingress sandbox is plugged in as. */
export const INGRESS_TASK_ID = 'ingress-sbox';
/** The sandbox's interface on the ingress network (its first and only attachment). */
export const INGRESS_IF = 'eth0';

export const nftProtocol = (p: PortProtocol): NftProtocol => (p === PortProtocol.PORT_PROTOCOL_UDP ? 'udp' : 'tcp');

/** The ingress table's rules for these published ports. */
export function ingressRules(ingress: IngressConfig): IngressRule[] {
  return ingress.ports.map((p) => ({ protocol: nftProtocol(p.protocol), publishedPort: p.publishedPort, targetPort: p.targetPort, backends: p.backends }));
}

/** The ingress config, when it is usable: with an endpoint whose address is a CIDR. */
export function usableIngress(ingress: IngressConfig | undefined): (IngressConfig & { endpoint: NonNullable<IngressConfig['endpoint']> }) | undefined {
  const e = ingress?.endpoint;
  if (!ingress || !e || !e.address || parseCidr(e.address)?.family !== 4) return undefined;
  return { ...ingress, endpoint: e };
}

export interface IngressSandboxOptions {
  log: Logger;
  /** The sandbox is `<netnsPrefix>-ingress`, beside the overlay sandboxes `<netnsPrefix>-<vni>`. */
  netnsPrefix: string;
  overlay: OverlayDriver;
  bridge: BridgeDriver;
  tables: NftTables;
}

export class IngressSandbox {
  readonly name: string;
  readonly path: string;
  private readonly log: Logger;
  /** The endpoint the sandbox was made for (address and MAC), while this process has seen it. */
  private endpointKey?: string;

  constructor(private readonly opts: IngressSandboxOptions) {
    this.name = `${opts.netnsPrefix}-ingress`;
    this.path = netnsPath(this.name);
    this.log = componentLogger(opts.log, 'ingress-sandbox');
  }

  /** The sandbox as a task the overlay driver keeps plugged in; undefined without a usable ingress. */
  asTask(ingress: IngressConfig | undefined): RunningTask | undefined {
    const usable = usableIngress(ingress);
    return usable && { taskId: INGRESS_TASK_ID, netns: this.path, attachments: [{ ...usable.endpoint, driver: 'overlay', networkId: usable.endpoint.networkId || usable.networkId }] };
  }

  /** Makes the namespace (loopback up, forwarding on), again when the endpoint changed. */
  async prepare(ingress: IngressConfig, verify: boolean): Promise<void> {
    const usable = usableIngress(ingress);
    if (!usable) return;
    const key = `${usable.endpoint.address} ${usable.endpoint.mac}`;
    if (this.endpointKey !== undefined && this.endpointKey !== key) {
      this.log.info({ from: this.endpointKey, to: key }, 'the ingress endpoint changed; making the sandbox again');
      await this.remove();
    }
    this.endpointKey = key;
    const made = await ensureNetns(this.name);
    if (made || verify) {
      await netnsOps.linkUp(this.path, 'lo');
      await enableForwarding(this.path);
    }
    if (made) {
      this.opts.tables.forget(INGRESS_TASK_ID);
      this.log.info({ netns: this.name, endpoint: usable.endpoint.address }, 'ingress sandbox created');
    }
  }

  /**
   * After the overlays and the gateway bridge are reconciled: plugs the sandbox into the gateway
   * bridge if it is not, and applies its table. Returns its address on the gateway bridge.
   */
  async ensure(ingress: IngressConfig, verify: boolean, latest: () => IngressConfig | undefined = () => ingress): Promise<string | undefined> {
    const task = this.asTask(ingress);
    if (!task) return undefined;
    let address = (await this.opts.bridge.gatewayAddresses([task])).get(INGRESS_TASK_ID);
    if (!address) {
      // Not isolated: a frame from a task's (isolated) port that the host DNATs back out to the
      // sandbox would be dropped by the bridge otherwise. Its table forwards DNATed traffic only.
      await this.opts.bridge.attachGateway(INGRESS_TASK_ID, this.path, task.attachments, false);
      address = (await this.opts.bridge.gatewayAddresses([task])).get(INGRESS_TASK_ID);
    }
    await this.opts.tables.ensure(INGRESS_TASK_ID, this.path, INGRESS_NFT_TABLE, () => renderIngressNft(ingressRules(usableIngress(latest()) ?? ingress), INGRESS_IF), verify);
    return address;
  }

  /**
   * The sandbox's table alone, when it was applied before by this process (the sandbox is made and
   * plugged in): what a change of the published ports' backends needs, without the plumbing.
   * `latest` is read when the table's turn comes (NftTables.ensure), so callers that race leave the
   * latest backends; `ingress` stands in when it has no usable config.
   */
  async applyRules(ingress: IngressConfig, latest: () => IngressConfig | undefined = () => ingress): Promise<void> {
    if (!this.opts.tables.keys().includes(INGRESS_TASK_ID) || !this.asTask(ingress)) return;
    await this.opts.tables.ensure(INGRESS_TASK_ID, this.path, INGRESS_NFT_TABLE, () => renderIngressNft(ingressRules(usableIngress(latest()) ?? ingress), INGRESS_IF));
  }

  /** The sandbox's gateway bridge address, if it is plugged in (for the doctor). */
  async gatewayAddress(ingress: IngressConfig): Promise<string | undefined> {
    const task = this.asTask(ingress);
    return task && (await this.opts.bridge.gatewayAddresses([task])).get(INGRESS_TASK_ID);
  }

  /** Removes the sandbox (its veths go with it) and forgets its table. A missing one is fine. */
  async remove(): Promise<void> {
    this.endpointKey = undefined;
    this.opts.tables.forget(INGRESS_TASK_ID);
    if (!(await isNetnsMounted(this.name))) {
      await deleteNetns(this.name);
      return;
    }
    await this.opts.overlay.detach(INGRESS_TASK_ID).catch((err) => this.log.debug({ err: asSwarmletError(err).message }, 'ingress sandbox not detached from the overlay'));
    await this.opts.bridge.detach(INGRESS_TASK_ID).catch((err) => this.log.debug({ err: asSwarmletError(err).message }, 'ingress sandbox not detached from the gateway bridge'));
    await deleteNetns(this.name);
    this.log.info({ netns: this.name }, 'ingress sandbox removed');
  }

  /** What differs between the kernel and `ingress` (undefined: no sandbox wanted), one sentence a line. */
  async check(ingress: IngressConfig | undefined): Promise<string[]> {
    const usable = usableIngress(ingress);
    const present = await isNetnsMounted(this.name);
    if (!usable) return present ? [`stale ingress sandbox ${this.name} (no port is published in ingress mode)`] : [];
    if (!present) return [`missing ingress sandbox ${this.name}`];
    const lines: string[] = [];
    try {
      const want = renderIngressNft(ingressRules(usable), INGRESS_IF);
      const diff = diffNftTable(`ingress table ${INGRESS_NFT_TABLE} in ${this.name}`, await listNftTable(this.path, INGRESS_NFT_TABLE), want);
      if (diff) lines.push(diff);
      const addrs = JSON.parse((await runInNetns(this.path, 'ip', ['-j', '-4', 'addr', 'show', 'dev', INGRESS_IF]).catch(() => '[]')) || '[]');
      const have = (addrs[0]?.addr_info ?? []).map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
      if (!have.includes(usable.endpoint.address)) lines.push(`ingress sandbox ${this.name} has no ${INGRESS_IF} with the ingress endpoint ${usable.endpoint.address}`);
      if (!(await this.gatewayAddress(usable))) lines.push(`ingress sandbox ${this.name} is not plugged into the gateway bridge`);
    } catch (err) {
      lines.push(`cannot read ingress sandbox ${this.name}: ${asSwarmletError(err).message}`);
    }
    return lines;
  }
}
