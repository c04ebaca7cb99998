import type { Argv } from 'yargs';
import { invalidArgument, SwarmletError } from '../../services/common/errors';
import { LocalNodeClient, NetworkDetail } from '../../services/gen/swarmlet/v1/control';
import { Network, NetworkSpec } from '../../services/gen/swarmlet/v1/types';
import { Clients, call } from '../client';
import { formatInspect, formatList, json, rowObjects, table, wantsJson } from '../format';
import { local } from './container';
import { GlobalArgs, out, withClients } from './context';

/** `network create` flags; the driver stays empty when not given, and the manager says what that means. */
export interface NetworkFlags {
  driver?: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  attachable?: boolean;
  internal?: boolean;
  opt?: string[];
  label?: string[];
}

function pairs(items: string[] | undefined, flag: string, needsValue: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items ?? []) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (!key || (needsValue && eq < 0)) throw invalidArgument(`invalid ${flag} ${JSON.stringify(item)}: expected KEY=VALUE${needsValue ? '' : ' or KEY'}`);
    out[key] = eq < 0 ? '' : item.slice(eq + 1);
  }
  return out;
}

/** The spec `network create` asks for. Pure: the manager validates it (validateNetworkSpec). */
export function networkSpecFromFlags(name: string, f: NetworkFlags): NetworkSpec {
  return {
    name,
    driver: f.driver ?? '',
    ipam: { subnet: f.subnet ?? '', gateway: f.gateway ?? '', ipRange: f.ipRange ?? '' },
    attachable: Boolean(f.attachable),
    internal: Boolean(f.internal),
    options: pairs(f.opt, '--opt', true),
    labels: pairs(f.label, '--label', false),
  };
}

/** The built-in networks every node has on its own, as docker's local scope: bridge, host and none. */
const LOCAL_NETWORKS = ['bridge', 'host', 'none'];

/** `network ls` rows: the built-in bridge, host and none are local, as in docker; the others are cluster objects (swarm). */
export function networkRows(networks: Network[], noTrunc = false): string[][] {
  return networks.map((n) => {
    const scope = n.builtin && LOCAL_NETWORKS.includes(n.spec?.name ?? '') ? 'local' : 'swarm';
    return [noTrunc ? n.id : n.id.slice(0, 12), n.spec?.name ?? '', n.spec?.driver ?? '', scope, n.subnet];
  });
}

/**
 * Asks the manager (Control); on a node that is not a manager (a worker, or before init), whose
 * daemon refuses Control, its own daemon answers from what the node knows (LocalNode), as docker
 * does on every node.
 */
export async function fromManagerOrNode<Res>(c: Clients, onManager: () => Promise<Res>, onNode: (local: LocalNodeClient) => Promise<Res>): Promise<Res> {
  try {
    return await onManager();
  } catch (err) {
    if (!c.local || !(err instanceof SwarmletError && err.kind === 'FailedPrecondition')) throw err;
    return onNode(c.local);
  }
}

/**
 * What `network inspect` shows of a network: every field of it, what is attached now, and docker's
 * `Containers` map (container id -> Name, EndpointID, MacAddress, IPv4Address) of the containers on it.
 */
export function networkJson(d: NetworkDetail): unknown {
  return { ...(Network.toJSON(d.network!) as object), endpoints: d.endpoints, Containers: containersOn(d) };
}

/** docker's `Containers` map of a network: container id -> Name, EndpointID, MacAddress, IPv4Address. */
function containersOn(d: NetworkDetail): object {
  return Object.fromEntries(
    d.endpoints.filter((e) => e.containerId).map((e) => [e.containerId, { Name: e.taskName, EndpointID: e.taskId, MacAddress: e.mac, IPv4Address: e.address, IPv6Address: '' }]),
  );
}

/**
 * docker's `network inspect` object: its keys and words (Scope `swarm` for an overlay, IPAM.Config
 * with the subnet, the VNI in Options as docker's overlay driver shows it). The API object, with every
 * task's endpoint, is `--format api`.
 */
export function networkInspect(d: NetworkDetail): object {
  const n = d.network!;
  const spec = n.spec!;
  const overlay = spec.driver === 'overlay';
  const ipam = n.subnet ? [{ Subnet: n.subnet, ...(n.gateway ? { Gateway: n.gateway } : {}), ...(spec.ipam?.ipRange ? { IPRange: spec.ipam.ipRange } : {}) }] : [];
  return {
    Name: spec.name,
    Id: n.id,
    Created: n.meta?.createdAt ?? '',
    Scope: overlay ? 'swarm' : 'local',
    Driver: spec.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: ipam },
    Internal: spec.internal,
    Attachable: spec.attachable,
    Ingress: overlay && spec.name === 'ingress',
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containersOn(d),
    Options: { ...(overlay ? { 'com.docker.network.driver.overlay.vxlanid_list': String(n.vni) } : {}), ...spec.options },
    Labels: { ...spec.labels },
  };
}

const repeated = (v: unknown): string[] | undefined => (v === undefined ? undefined : ([] as string[]).concat(v as string | string[]));

export function networkCommands(y: Argv<GlobalArgs>) {
  return y.command('network', 'Manage networks (on a manager; ls and inspect on every node)', (s: Argv<GlobalArgs>) =>
    s
      .command(
        'create <name>',
        'Create a network (bridge or overlay driver); prints its id',
        (a) =>
          a
            .positional('name', { type: 'string', demandOption: true })
            .option('driver', { alias: 'd', type: 'string', describe: 'bridge (the default: one host), overlay (across hosts) or macvlan (on the LAN of --opt parent=IFACE)' })
            .option('subnet', { type: 'string', describe: 'Subnet in CIDR notation (default: a free /24 of 10.0.0.0/8)' })
            .option('gateway', { type: 'string', describe: 'Gateway address (default: the subnet\'s first address)' })
            .option('ip-range', { type: 'string', describe: 'Part of the subnet that task addresses come from, in CIDR notation' })
            .option('attachable', { type: 'boolean', default: false, describe: 'Let standalone tasks join it' })
            .option('internal', { type: 'boolean', default: false, describe: 'No way out of the network' })
            .option('opt', { alias: 'o', type: 'string', describe: 'Driver option, e.g. mtu=1400 (repeatable)' })
            .option('label', { type: 'string', describe: 'Network label KEY=VALUE (repeatable)' }),
        async (argv) => {
          const spec = networkSpecFromFlags(argv.name as string, {
            driver: argv.driver,
            subnet: argv.subnet,
            gateway: argv.gateway,
            ipRange: argv.ipRange as string | undefined,
            attachable: argv.attachable,
            internal: argv.internal,
            opt: repeated(argv.opt),
            label: repeated(argv.label),
          });
          await withClients(argv, async (c, host) => {
            const network = await call(c.control, c.control.createNetwork, { spec }, host);
            out(`${network.id}\n`);
          });
        },
      )
      .command(
        ['ls', 'list'],
        'List networks',
        (a) => a.option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only IDs' }).option('no-trunc', { type: 'boolean', default: false }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const { networks } = await fromManagerOrNode(c, () => call(c.control, c.control.listNetworks, {}, host), (local) => call(local, local.listNetworks, {}, host));
            if (argv.quiet) return out(networks.map((n) => `${n.id}\n`).join(''));
            const headers = ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNET'];
            const rows = networkRows(networks, argv.noTrunc);
            out(formatList(argv.format, rowObjects(headers, rows, { 'NETWORK ID': 'ID' }), () => table(headers, rows), () => networks.map((n) => Network.toJSON(n))));
          });
        },
      )
      .command(
        'inspect <networks..>',
        'Show networks in detail, docker\'s way, with the containers attached to them (--format api: the API objects, with every task)',
        (a) => a.positional('networks', { type: 'string', array: true, demandOption: true }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const details: NetworkDetail[] = [];
            for (const ref of argv.networks as string[]) {
              const detail = await fromManagerOrNode(c, () => call(c.control, c.control.getNetwork, { network: ref }, host), (local) => call(local, local.getNetwork, { network: ref }, host));
              details.push(detail);
            }
            out(formatInspect(argv.format, details.map(networkInspect), () => details.map(networkJson)));
          });
        },
      )
      .command(
        'connect <network> <container>',
        'Connect a container to a network (a running one at once: its next interface, eth1, eth2...)',
        (a) =>
          a
            .positional('network', { type: 'string', demandOption: true })
            .positional('container', { type: 'string', demandOption: true })
            .option('alias', { type: 'string', describe: 'Add network-scoped alias for the container (repeatable)' })
            .option('ip', { type: 'string', describe: 'IPv4 address (e.g., "172.30.100.104")' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const l = local(c);
            await call(l, l.connectContainerNetwork, { container: argv.container as string, network: argv.network as string, aliases: repeated(argv.alias) ?? [], ipv4: (argv.ip as string | undefined) ?? '' }, host);
          });
        },
      )
      .command(
        'disconnect <network> <container>',
        'Disconnect a container from a network (a running one at once)',
        (a) =>
          a
            .positional('network', { type: 'string', demandOption: true })
            .positional('container', { type: 'string', demandOption: true })
            .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'Force the container to disconnect from a network' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const l = local(c);
            await call(l, l.disconnectContainerNetwork, { container: argv.container as string, network: argv.network as string, force: Boolean(argv.force) }, host);
          });
        },
      )
      .command(
        ['rm <networks..>', 'remove <networks..>'],
        'Remove networks; refused while tasks or services use them',
        (a) => a.positional('networks', { type: 'string', array: true, demandOption: true }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            for (const ref of argv.networks as string[]) {
              await call(c.control, c.control.removeNetwork, { network: ref }, host);
              out(`${ref}\n`);
            }
          });
        },
      )
      .command(
        'prune',
        'Remove every network that no task or service uses (built-in ones stay)',
        (a) => a,
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const { removed } = await call(c.control, c.control.pruneNetworks, {}, host);
            if (wantsJson(argv.format)) return out(json(removed));
            if (removed.length) out(`Deleted Networks:\n${removed.map((n) => `${n}\n`).join('')}`);
          });
        },
      )
      .command(
        'doctor [network]',
        'Compare, on every node, what the kernel has with what the cluster wants (FDB and neighbour entries, links, MTU)',
        (a) => a.positional('network', { type: 'string', describe: 'Only this overlay network' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const { nodes } = await call(c.control, c.control.networkDoctor, { network: (argv.network as string | undefined) ?? '' }, host);
            if (wantsJson(argv.format)) return out(json(nodes));
            for (const n of nodes) {
              if (n.error) out(`${n.hostname}: could not check: ${n.error}\n`);
              else if (n.differences.length === 0) out(`${n.hostname}: ok\n`);
              else out(`${n.hostname}:\n${n.differences.map((d) => `  ${d}\n`).join('')}`);
            }
            const bad = nodes.filter((n) => n.error || n.differences.length).length;
            if (bad) throw new SwarmletError('FailedPrecondition', `the kernel differs from the cluster state on ${bad} node${bad === 1 ? '' : 's'}`);
          });
        },
      )
      .demandCommand(1, 'network needs a subcommand: create, ls, inspect, connect, disconnect, rm, prune or doctor'),
  );
}
