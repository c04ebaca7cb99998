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
  /** Where etcd3's Election keeps the campaigns of `election` (`election/<name>/<lease>`); the oldest leads. */
  electionPrefix: `election/${ROOT}leader/`,
  servicesPrefix: `${ROOT}services/`,
  service: (id: string) => `${ROOT}services/${id}`,
  /** name -> service id: makes names unique in the same transaction that creates the service. */
  serviceName: (name: string) => `${ROOT}service-names/${name}`,
  networksPrefix: `${ROOT}networks/`,
  network: (id: string) => `${ROOT}networks/${id}`,
  /** name -> network id: makes names unique in the same transaction that creates the network. */
  networkName: (name: string) => `${ROOT}network-names/${name}`,
  /** `tcp/8080` -> service id: an ingress-mode published port, claimed in the service's own write. */
  publishedPortsPrefix: `${ROOT}published-ports/`,
  publishedPort: (claim: string) => `${ROOT}published-ports/${claim}`,
  /** serial -> the record of an issued operator certificate, with `revokedAt` once revoked. */
  operatorCertsPrefix: `${ROOT}operator-certs/`,
  operatorCert: (serial: string) => `${ROOT}operator-certs/${serial}`,
  /** secrets and configs (`secrets/<id>`, `configs/<id>`), and name -> id claims beside them. */
  fileObjectsPrefix: (kind: 'secret' | 'config') => `${ROOT}${kind}s/`,
  fileObject: (kind: 'secret' | 'config', id: string) => `${ROOT}${kind}s/${id}`,
  fileObjectName: (kind: 'secret' | 'config', name: string) => `${ROOT}${kind}-names/${name}`,
  /** The web dashboard's access token (one for the swarm: every manager's dashboard takes it). */
  dashboardToken: `${ROOT}dashboard-token`,
  tasksPrefix: `${ROOT}tasks/`,
  task: (id: string) => `${ROOT}tasks/${id}`,
};

/** What a manager's snapshot holds: everything the leader's loops and the dispatcher read. */
export const SNAPSHOT_PREFIXES = [keys.cluster, keys.nodesPrefix, keys.heartbeatsPrefix, keys.managersPrefix, keys.servicesPrefix, keys.networksPrefix, keys.tasksPrefix, keys.electionPrefix, keys.fileObjectsPrefix('secret'), keys.fileObjectsPrefix('config')];

/** What a manager's snapshot watches: the cluster's keys, and the election's (which etcd3 keeps outside ROOT). */
export const SNAPSHOT_ROOTS = [ROOT, keys.electionPrefix];
