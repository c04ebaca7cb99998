/**
 * Containers' published ports on the host (docker's -p/-P, without a userland proxy): the host's
 * `ip swarmlet-cpublish` table DNATs each published port to the container's address on its first
 * bridge network (on a swarm node, a container on overlays alone: its address on the gateway
 * bridge, as docker publishes through docker_gwbridge), from outside (prerouting) and from the host itself (output, 127.0.0.1 included),
 * with the very rules of the services' published ports (lb-nft.ts renderPublishNft), in a table of
 * its own so the network controller's passes over the services' table leave it alone. Clients
 * outside keep their address (DNAT only); connections from 127.0.0.1 are masqueraded as there.
 * A host port is refused when another container or a service's published port holds it.
 */
import { Mutex } from 'async-mutex';
import { asSwarmletError, failedPrecondition } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import type { Container, ContainerConfig, ContainerPortBinding } from '../../services/gen/swarmlet/v1/control';
import { ContainerHostPort, PortProtocol } from '../../services/gen/swarmlet/v1/types';
import { NftTables, devicesOf, ensurePublishSysctls, listNftTable, readRouteLocalnet } from '../network/lb-driver';
import { CONTAINER_PUBLISH_NFT_TABLE, PublishRule, diffNftTable, renderPublishNft } from '../network/plans/lb-nft';
import { NO_PLUG_DRIVERS } from './container-networks';
import { TakenPort, planContainerPublishRules, planPortBindings, planRequestedPorts, validatePortBindings } from './port-plans';

export interface ContainerPortsOptions {
  log: Logger;
  /** Ports the services publish that this node must keep free: ingress ones (every node) and this node's host-mode ones. */
  servicePorts: () => TakenPort[];
  /** The host's bridge of a network a container is on, if it is a bridge here (route_localnet for 127.0.0.1). */
  bridgeOf: (networkId: string) => string | undefined;
  /**
   * A container on overlays alone: its address on the swarm's gateway bridge (as docker_gwbridge)
   * and that bridge's name, where its ports are published; undefined when it has none.
   */
  gatewayOf?: (containerId: string) => Promise<{ address: string; device: string } | undefined>;
  /** An image's exposed ports (`80/tcp`), for -P. */
  exposedPorts: (image: string) => Promise<string[]>;
  /** Called after the published ports changed (hostPorts() says which): a swarm node reports them to the managers. */
  onChange?: () => void;
}

const TABLE_KEY = 'containers';

export class ContainerPorts {
  private readonly log: Logger;
  private readonly tables: NftTables;
  private readonly mutex = new Mutex();
  /** Container id -> its published ports and their rules. */
  private readonly published = new Map<string, { name: string; ports: ContainerPortBinding[]; rules: PublishRule[] }>();

  constructor(private readonly opts: ContainerPortsOptions) {
    this.log = componentLogger(opts.log, 'container-ports');
    this.tables = new NftTables({ log: opts.log });
  }

  /** Host ports in use, but those of `except`. */
  private taken(except?: string): TakenPort[] {
    const containers = [...this.published].filter(([id]) => id !== except).flatMap(([, p]) => p.ports);
    return [...this.opts.servicePorts(), ...containers];
  }

  /** At create: malformed bindings, and host ports taken now, are refused before anything is made. */
  check(cfg: ContainerConfig): void {
    validatePortBindings(cfg);
    planPortBindings(planRequestedPorts(cfg, []), this.taken());
  }

  /**
   * Publishes the ports a started container asks for, on its first bridge endpoint; resolves with
   * the host ports it got ([] when it asks for none, or is on the host's network or none).
   */
  publish(c: Container): Promise<ContainerPortBinding[]> {
    return this.mutex.runExclusive(async () => {
      const cfg = c.config!;
      const image = cfg.spec?.container?.image ?? '';
      const requested = planRequestedPorts(cfg, cfg.publishAll ? await this.opts.exposedPorts(image) : []);
      if (requested.length === 0 || c.endpoints.some((e) => NO_PLUG_DRIVERS.has(e.driver))) return [];
      const target = await this.targetOf(c);
      if (!target) throw failedPrecondition(`container ${c.name} publishes ports but is on no bridge network and not on the gateway bridge: publish them from a container on a bridge network`);
      const ports = planPortBindings(requested, this.taken(c.id));
      const rules = planContainerPublishRules(ports, target.address, target.device);
      this.published.set(c.id, { name: c.name, ports, rules });
      try {
        await this.apply(false);
      } catch (err) {
        this.published.delete(c.id);
        throw err;
      }
      this.log.info({ containerId: c.id, ports: ports.map((p) => `${p.hostIp || '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`) }, 'container ports published');
      return ports;
    });
  }

  /** Its ports go (the container stopped or went); fine when it published none. */
  unpublish(containerId: string): Promise<void> {
    return this.mutex.runExclusive(async () => {
      if (!this.published.delete(containerId)) return;
      await this.apply(false);
      this.log.info({ containerId }, 'container ports unpublished');
    });
  }

  /** After a daemon start: the running containers' ports, as their records say; the kernel's table is read and made so. */
  restore(running: Container[]): Promise<void> {
    return this.mutex.runExclusive(async () => {
      this.published.clear();
      for (const c of running) {
        if (!c.ports.length) continue;
        const target = await this.targetOf(c).catch((err) => this.log.warn({ containerId: c.id, err: asSwarmletError(err).message }, 'the address of a container with published ports not read'));
        if (!target) continue;
        this.published.set(c.id, { name: c.name, ports: c.ports, rules: planContainerPublishRules(c.ports, target.address, target.device) });
      }
      await this.apply(true);
    });
  }

  /**
   * What differs between the host's `ip swarmlet-cpublish` and the ports published now (network
   * doctor), one sentence a line: a rule deleted or changed by hand, the table gone, route_localnet
   * off on a bridge the ports go through. Changes nothing.
   */
  doctor(): Promise<string[]> {
    return this.mutex.runExclusive(async () => {
      const rules = [...this.published.values()].flatMap((p) => p.rules);
      const lines: string[] = [];
      try {
        const diff = diffNftTable(`host table ${CONTAINER_PUBLISH_NFT_TABLE} (containers' published ports)`, await listNftTable(undefined, CONTAINER_PUBLISH_NFT_TABLE), renderPublishNft(rules, CONTAINER_PUBLISH_NFT_TABLE));
        if (diff) lines.push(diff);
        for (const dev of devicesOf(rules)) {
          if ((await readRouteLocalnet(dev)) === '0') lines.push(`route_localnet is off on ${dev}: containers' published ports do not answer on 127.0.0.1`);
        }
      } catch (err) {
        lines.push(`cannot check the host table ${CONTAINER_PUBLISH_NFT_TABLE}: ${asSwarmletError(err).message}`);
      }
      return lines;
    });
  }

  /** Where a container's ports go: its address on its first bridge network, else (overlays alone) on the gateway bridge. */
  private async targetOf(c: Container): Promise<{ address: string; device: string | undefined } | undefined> {
    const endpoint = c.endpoints.find((e) => e.driver === 'bridge' && e.ipv4Cidr);
    if (endpoint) return { address: endpoint.ipv4Cidr.split('/')[0], device: this.opts.bridgeOf(endpoint.networkId) };
    return c.endpoints.some((e) => e.driver === 'overlay') ? this.opts.gatewayOf?.(c.id) : undefined;
  }

  /** The host ports published now, by container name (a node's description's container_ports), in a stable order. */
  hostPorts(): ContainerHostPort[] {
    return [...this.published.values()]
      .flatMap((p) => p.ports.map((b) => ({ container: p.name, protocol: b.protocol === 'udp' ? PortProtocol.PORT_PROTOCOL_UDP : PortProtocol.PORT_PROTOCOL_TCP, publishedPort: b.hostPort, hostIp: b.hostIp })))
      .sort((a, b) => a.publishedPort - b.publishedPort || a.protocol - b.protocol || a.hostIp.localeCompare(b.hostIp) || a.container.localeCompare(b.container));
  }

  private async apply(verify: boolean): Promise<void> {
    const rules = [...this.published.values()].flatMap((p) => p.rules);
    const body = renderPublishNft(rules, CONTAINER_PUBLISH_NFT_TABLE);
    try {
      const changed = await this.tables.ensure(TABLE_KEY, undefined, CONTAINER_PUBLISH_NFT_TABLE, body, verify);
      if (body && (changed || verify)) await ensurePublishSysctls(rules);
    } finally {
      this.opts.onChange?.();
    }
  }
}
