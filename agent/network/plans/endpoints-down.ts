/**
 * What this node knows of its own tasks before the managers do (pure): a task whose process it
 * saw exit, or that it is about to stop, serves no more. Its endpoints leave the services'
 * records (DNS: `tasks.<service>`, dnsrr answers), the VIP backends and the ingress backends at
 * once, in the same pass, rather than one manager round trip later; swarmkit's agent takes a
 * task out of the load balancer before it stops it in the same way. The managers' next message
 * says the same, and once the task is gone from the node's messages it is forgotten.
 */
import type { IngressConfig, NetworkServices } from '../../../services/gen/swarmlet/v1/dispatcher';
import type { Task } from '../../../services/gen/swarmlet/v1/types';

/** The parts of a session message that say which endpoints serve. */
export interface ServedEndpoints {
  services: NetworkServices[];
  ingress?: IngressConfig;
}

const bareIp = (cidr: string) => cidr.split('/')[0] ?? '';

/**
 * The records and ingress backends with the tasks in `down` not serving: their records stay (a
 * task answers to its own name) with `serving` false; their ingress addresses (read from `tasks`,
 * the node's own tasks) leave the published ports' backends. Returns the very same objects when
 * nothing changes.
 */
export function planEndpointsDown(served: ServedEndpoints, tasks: readonly Task[], down: ReadonlySet<string>): ServedEndpoints {
  if (down.size === 0) return served;
  let servicesChanged = false;
  const services = served.services.map((n) => {
    let changed = false;
    const records = n.services.map((s) => {
      if (!s.tasks.some((t) => t.serving && down.has(t.taskId))) return s;
      changed = true;
      return { ...s, tasks: s.tasks.map((t) => (t.serving && down.has(t.taskId) ? { ...t, serving: false } : t)) };
    });
    if (!changed) return n;
    servicesChanged = true;
    return { ...n, services: records };
  });
  let ingress = served.ingress;
  if (ingress) {
    const networkId = ingress.networkId;
    const gone = new Set(tasks.filter((t) => down.has(t.id)).flatMap((t) => t.networks.filter((a) => a.networkId === networkId && a.address).map((a) => bareIp(a.address))));
    if (gone.size > 0 && ingress.ports.some((p) => p.backends.some((b) => gone.has(b)))) {
      ingress = { ...ingress, ports: ingress.ports.map((p) => (p.backends.some((b) => gone.has(b)) ? { ...p, backends: p.backends.filter((b) => !gone.has(b)) } : p)) };
    }
  }
  return servicesChanged || ingress !== served.ingress ? { services: servicesChanged ? services : served.services, ingress } : served;
}
