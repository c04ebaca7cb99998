/**
 * Writes a service together with its endpoint (published ports resolved, VIPs kept) and its port
 * claims, in one transaction. A write that loses a race for a port (another manager claimed it
 * between the read and the write) is planned again against the new claims.
 */
import { SwarmletError } from '../services/common/errors';
import { EndpointMode, Service } from '../services/gen/swarmlet/v1/types';
import { containerHeldPorts, planServicePorts, releasedOnRemoval } from './network/ports';
import { sameMessage } from './orchestrator/tasks';
import { PortRaceError } from './store/etcd-store';
import { PortClaimWrite, Store } from './store/store';

const ATTEMPTS = 5;
/** Tries of a write that keeps losing races for ports (each one planned again on fresh claims). */
const PORT_RACE_ATTEMPTS = 10;

/** The service with `endpoint` made for its spec: ports resolved; VIPs kept (the allocator adds and drops them), none in dnsrr mode. */
async function withEndpoint(store: Store, next: Service, create: boolean, skipFree: number) {
  const spec = next.spec?.endpoint;
  // The other services and the nodes are read only when the service publishes: their ports matter then alone
  // (every service read for each create made creating N services read N^2 of them).
  // A new service that publishes nothing needs no claims either: it holds none, and claims none.
  const publishes = (spec?.ports?.length ?? 0) > 0;
  const [claims, services, nodes] = await Promise.all([
    create && !publishes ? new Map<string, string>() : store.listPortClaims(),
    publishes ? store.listServices() : [],
    publishes ? store.listNodes() : [],
  ]);
  const previous = create ? undefined : next.endpoint;
  const plan = planServicePorts({ serviceId: next.id, spec, previous, claims, services, skipFree, containerPorts: containerHeldPorts(nodes) });
  const dnsrr = spec?.mode === EndpointMode.ENDPOINT_MODE_DNSRR;
  const service: Service = { ...next, endpoint: { spec, ports: plan.ports, virtualIps: dnsrr ? [] : [...(next.endpoint?.virtualIps ?? [])] } };
  return { service, claims: plan.claims };
}

/** A store write refused because a port was claimed after it was read. */
const lostPortRace = (err: unknown) => err instanceof PortRaceError;

/**
 * Plans the endpoint and writes; again when the write lost a port race, a dynamic port then taken
 * a random few free ports up. A port the plan finds taken is refused at once.
 */
async function retried<T>(store: Store, next: Service, create: boolean, write: (s: Service, claims: PortClaimWrite) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const skipFree = attempt === 1 ? 0 : Math.floor(Math.random() * 4 * attempt);
    const { service, claims } = await withEndpoint(store, next, create, skipFree);
    try {
      return await write(service, claims);
    } catch (err) {
      if (!lostPortRace(err) || attempt >= PORT_RACE_ATTEMPTS) throw err;
    }
  }
}

/** Creates a service and claims its ingress ports; Conflict (nothing written) when its name or a port is taken. */
export async function applyServiceCreate(store: Store, service: Service): Promise<Service> {
  return retried(store, service, true, (s, claims) => store.createService(s, claims));
}

/**
 * Writes a changed service (compare-and-swap on the version read) and moves its port claims with
 * it. With `base` (the service `next` was planned from), a write that lost to the managers' own
 * loops (VIPs allocated, update progress) is made again on the fresh service; one that lost to
 * another spec change is refused.
 */
export async function applyServiceUpdate(store: Store, next: Service, base?: Service): Promise<Service> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await retried(store, next, false, (s, claims) => store.updateService(s, claims));
    } catch (err) {
      if (!base || attempt >= ATTEMPTS || !(err instanceof SwarmletError && err.kind === 'Retryable')) throw err;
      const fresh = await store.getService(next.id);
      const rebased = fresh && rebase(next, base, fresh);
      if (!rebased) throw err;
      next = rebased;
      base = fresh;
    }
  }
}

/** Only the loops changed the service since `base`: the same spec, spec version and previous spec. */
export const sameSpec = (a: Service, b: Service): boolean => a.specVersion === b.specVersion && sameMessage(a.spec, b.spec) && sameMessage(a.previousSpec, b.previousSpec);

function rebase(next: Service, base: Service, fresh: Service): Service | undefined {
  if (!sameSpec(base, fresh)) return undefined;
  const updateStatus = sameMessage(next.updateStatus, base.updateStatus) ? fresh.updateStatus : next.updateStatus;
  return { ...next, meta: fresh.meta, endpoint: fresh.endpoint, updateStatus };
}

/**
 * Whether the service is, spec-wise, what it was at `version` (what an operator read): changes the
 * loops made since (VIPs, update progress) do not make an update stale.
 */
export async function unchangedSince(store: Store, current: Service, version: number): Promise<boolean> {
  if (current.meta?.version === version) return true;
  const then = await store.getServiceAt(current.id, version);
  return then !== undefined && sameSpec(then, current);
}

/** Deletes a service and gives up its port claims. */
export async function applyServiceRemoval(store: Store, service: Service): Promise<void> {
  await store.deleteService(service, releasedOnRemoval(service.id, await store.listPortClaims()));
}
