/** Where swarmlet keeps its state in etcd. One prefix per kind of object. */
export const ROOT = '/swarmlet/v1/';

export const keys = {
  cluster: `${ROOT}cluster`,
  nodesPrefix: `${ROOT}nodes/`,
  node: (id: string) => `${ROOT}nodes/${id}`,
  /** Written by a dispatcher under a lease the agent's heartbeats keep alive. */
  heartbeatsPrefix: `${ROOT}heartbeats/`,
  heartbeat: (nodeId: string) => `${ROOT}heartbeats/${nodeId}`,
  /** Written by each running manager under its own lease. */
  managersPrefix: `${ROOT}managers/`,
  manager: (nodeId: string) => `${ROOT}managers/${nodeId}`,
  election: `${ROOT}leader`,
};
