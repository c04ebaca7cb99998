import { Logger, componentLogger } from '../services/common/logger';
import { SwarmletError } from '../services/common/errors';
import { ControlServer, CreateNetworkRequest, GetNetworkRequest, NetworkDoctorRequest, NodeNetworkReport, RemoveNetworkRequest } from '../services/gen/swarmlet/v1/control';
import { AgentClient } from '../services/gen/swarmlet/v1/dispatcher';
import { fromServiceError } from '../services/api/grpc-errors';
import { callUnary, unary } from '../services/api/handlers';
import { nodeClientCredentials, TlsMaterial } from '../services/api/tls';
import { planNodeEndpoints } from './network/endpoints';
import { planOverlays } from './network/peers';
import { Network, NetworkSpec, NodeState } from '../services/gen/swarmlet/v1/types';
import { newRandomId } from '../services/pki/ca';
import { planNetworkAllocation } from './network/ipam';
import { hostSubnetsOf, validateNetworkSpec } from './network/network-spec';
import { checkNetworkRemoval, networkEndpoints, networkUsers, resolveNetwork } from './network-plans';
import { Store } from './store/store';

export interface NetworkControlDeps {
  /** Reads what any manager has just written (see ControlDeps). */
  store: Store;
  log: Logger;
  /** This manager's node certificate, as it is now (to ask agents). */
  tls: () => TlsMaterial;
}

type NetworkHandlers = Pick<ControlServer, 'createNetwork' | 'listNetworks' | 'getNetwork' | 'removeNetwork' | 'pruneNetworks' | 'networkDoctor'>;

/** How often a create is planned again when another manager's create got in first. */
const CREATE_ATTEMPTS = 5;

/** Why prune leaves a network it meant to remove, rather than failing. */
const PRUNE_SKIPS = new Set(['FailedPrecondition', 'NotFound', 'Retryable']);

/** The network half of the Control API. */
export function networkControl(deps: NetworkControlDeps): NetworkHandlers {
  const { store } = deps;
  const log = componentLogger(deps.log, 'control');

  /** Removes a network that nothing uses; throws (and removes nothing) when it is built in or in use. */
  async function remove(network: Network): Promise<void> {
    const [services, tasks] = await Promise.all([store.listServices(), store.listTasks()]);
    checkNetworkRemoval(network, networkUsers(network, services, tasks));
    await store.deleteNetwork(network);
    log.info({ networkId: network.id, name: network.spec?.name }, 'network removed');
  }

  return {
    networkDoctor: unary(async (req: NetworkDoctorRequest) => {
      const [networks, tasks, nodes, services] = await Promise.all([store.listNetworks(), store.listTasks(), store.listNodes(), store.listServices()]);
      const only = req.network ? resolveNetwork(networks, req.network).id : undefined;
      const reports = await Promise.all(
        nodes
          .filter((n) => n.status?.state === NodeState.NODE_STATE_READY && n.status.apiAddr)
          .map(async (node): Promise<NodeNetworkReport> => {
            const overlays = planOverlays(node.id, tasks, networks, nodes, services).filter((o) => !only || o.networkId === only);
            const endpoints = planNodeEndpoints({ nodeId: node.id, tasks, networks, services, nodes });
            const ingress = !only || endpoints.ingress?.networkId === only ? endpoints.ingress : undefined;
            const report = { nodeId: node.id, hostname: node.description?.hostname ?? node.id, differences: [] as string[], error: '' };
            if (!overlays.length && only) return report;
            const client = new AgentClient(node.status!.apiAddr, nodeClientCredentials(deps.tls(), node.id));
            try {
              report.differences = (await callUnary(client.checkOverlays.bind(client), { overlays, services: endpoints.services.filter((n) => !only || n.networkId === only), ingress, hostPorts: only ? [] : endpoints.hostPorts, checkServices: true }, 15000)).differences;
            } catch (err) {
              report.error = fromServiceError(err, `asking ${report.hostname}`).message;
            } finally {
              client.close();
            }
            return report;
          }),
      );
      return { nodes: reports.sort((a, b) => a.hostname.localeCompare(b.hostname)) };
    }),

    createNetwork: unary(async (req: CreateNetworkRequest) => {
      const asked = req.spec ?? NetworkSpec.fromPartial({});
      for (let attempt = 1; ; attempt++) {
        // The subnet and VNI are chosen against the networks read; the store writes only if none changed since.
        const [{ networks, revision }, nodes] = await Promise.all([store.listNetworksAt(), store.listNodes()]);
        // The nodes' own interface subnets (the underlay): a network overlapping one would cut its tasks off from that LAN.
        const hostSubnets = hostSubnetsOf(nodes);
        const spec = validateNetworkSpec(asked, networks, hostSubnets);
        const network = planNetworkAllocation(spec, networks, { newId: newRandomId(), hostSubnets });
        try {
          const created = await store.createNetwork(network, revision);
          log.info({ networkId: created.id, name: spec.name, subnet: created.subnet, vni: created.vni }, 'network created');
          return created;
        } catch (err) {
          if (!(err instanceof SwarmletError && err.kind === 'Retryable') || attempt >= CREATE_ATTEMPTS) throw err;
        }
      }
    }),

    listNetworks: unary(async () => {
      const networks = await store.listNetworks();
      return { networks: networks.sort((a, b) => (a.spec?.name ?? '').localeCompare(b.spec?.name ?? '') || a.id.localeCompare(b.id)) };
    }),

    getNetwork: unary(async (req: GetNetworkRequest) => {
      const [networks, tasks] = await Promise.all([store.listNetworks(), store.listTasks()]);
      const network = resolveNetwork(networks, req.network);
      return { network, endpoints: networkEndpoints(network, tasks) };
    }),

    removeNetwork: unary(async (req: RemoveNetworkRequest) => {
      await remove(resolveNetwork(await store.listNetworks(), req.network));
      return {};
    }),

    pruneNetworks: unary(async () => {
      const [networks, services, tasks] = await Promise.all([store.listNetworks(), store.listServices(), store.listTasks()]);
      const unused = networks.filter((n) => {
        const users = networkUsers(n, services, tasks);
        return !n.builtin && users.tasks.length === 0 && users.services.length === 0;
      });
      const removed: string[] = [];
      for (const network of unused) {
        // remove() checks again on fresh state: one that a service joined, or that went or changed meanwhile, is left.
        try {
          await remove(network);
          removed.push(network.spec?.name ?? network.id);
        } catch (err) {
          if (!(err instanceof SwarmletError && PRUNE_SKIPS.has(err.kind))) throw err;
        }
      }
      return { removed: removed.sort() };
    }),
  };
}
