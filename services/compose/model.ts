/**
 * The typed compose model both `swarmlet compose` (one node) and `stack deploy` (the swarm) work
 * from. Names of networks, volumes, secrets and configs are the file's keys; callers prefix them
 * with the project (`PROJECT_KEY`) unless the entry is external or has a `name:`. Durations are
 * milliseconds, sizes bytes, CPUs nano CPUs (1e9 = one CPU).
 */

export interface ComposeProject {
  /** The project name: -p, COMPOSE_PROJECT_NAME, the top-level `name:`, or the directory's. */
  name: string;
  /** The project directory (the first file's): relative paths resolve against it. */
  workingDir: string;
  /** By service name, sorted by name. */
  services: Record<string, ComposeService>;
  networks: Record<string, ComposeNetwork>;
  volumes: Record<string, ComposeVolume>;
  secrets: Record<string, ComposeFileObject>;
  configs: Record<string, ComposeFileObject>;
  /** Every key the files set, as `services.web.ports`, `services.web.deploy.resources`, `networks.back.driver` (see unsupportedKeys). */
  keys: string[];
}

export interface ComposeBuild {
  /** Absolute. */
  context: string;
  /** As written (relative to the context), default `Dockerfile`. */
  dockerfile: string;
  args: Record<string, string>;
  target?: string;
}

export interface ComposePort {
  target: number;
  /** Absent: a free port is chosen. */
  published?: number;
  hostIp?: string;
  protocol: 'tcp' | 'udp';
  mode: 'ingress' | 'host';
}

export interface ComposeMount {
  type: 'volume' | 'bind' | 'tmpfs';
  /** volume: a key of `volumes:` ('' = anonymous); bind: an absolute path; tmpfs: ''. */
  source: string;
  target: string;
  readOnly: boolean;
  tmpfsSizeBytes?: number;
}

export type DependsCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

export interface ComposeHealthcheck {
  /** ['CMD', argv...], ['CMD-SHELL', line] or ['NONE'] (disabled). */
  test: string[];
  intervalMs?: number;
  timeoutMs?: number;
  startPeriodMs?: number;
  retries?: number;
}

export interface ComposeResources {
  nanoCpus?: number;
  memoryBytes?: number;
}

export interface ComposeRestartPolicy {
  condition: 'none' | 'on-failure' | 'any';
  delayMs?: number;
  maxAttempts?: number;
  windowMs?: number;
}

export interface ComposeUpdateConfig {
  parallelism?: number;
  delayMs?: number;
  failureAction?: 'continue' | 'rollback' | 'pause';
  monitorMs?: number;
  maxFailureRatio?: number;
  order?: 'stop-first' | 'start-first';
}

export interface ComposeDeploy {
  mode: 'replicated' | 'global';
  /** Absent: 1 for replicated (or `scale:`). */
  replicas?: number;
  endpointMode?: 'vip' | 'dnsrr';
  labels: Record<string, string>;
  resources: { limits: ComposeResources; reservations: ComposeResources };
  restartPolicy?: ComposeRestartPolicy;
  updateConfig?: ComposeUpdateConfig;
  rollbackConfig?: ComposeUpdateConfig;
  placement: { constraints: string[]; preferences: string[]; maxReplicasPerNode?: number };
}

export interface ComposeServiceNetwork {
  aliases: string[];
  ipv4Address?: string;
}

export interface ComposeFileReference {
  /** A key of the top-level `secrets:` / `configs:`. */
  source: string;
  /** Secrets: a name under /run/secrets/ or an absolute path; configs: an absolute path (default /SOURCE). */
  target: string;
  uid?: string;
  gid?: string;
  mode?: number;
}

export interface ComposeService {
  name: string;
  image?: string;
  build?: ComposeBuild;
  /** Replaces the image's entrypoint; [] clears it; absent: the image's. */
  entrypoint?: string[];
  /** Replaces the image's command; absent: the image's. */
  command?: string[];
  /** env_file then environment, `KEY` without a value taken from the shell or dropped. */
  environment: Record<string, string>;
  ports: ComposePort[];
  expose: number[];
  volumes: ComposeMount[];
  /** Service name -> condition, in the file's order. */
  dependsOn: Record<string, DependsCondition>;
  healthcheck?: ComposeHealthcheck;
  /** Docker's restart: no | always | on-failure[:N] | unless-stopped. Absent: no. */
  restart?: string;
  deploy: ComposeDeploy;
  /** Network key -> settings; `default` when the service names none (and has no network_mode). */
  networks: Record<string, ComposeServiceNetwork>;
  networkMode?: string;
  secrets: ComposeFileReference[];
  configs: ComposeFileReference[];
  labels: Record<string, string>;
  containerName?: string;
  hostname?: string;
  user?: string;
  workingDir?: string;
  tty: boolean;
  stdinOpen: boolean;
  init?: boolean;
  readOnly?: boolean;
  stopGracePeriodMs?: number;
  pullPolicy?: 'always' | 'never' | 'missing' | 'build';
}

export interface ComposeNetwork {
  /** The real name when set by `name:` or by the deprecated `external: {name: ...}`. */
  name?: string;
  external: boolean;
  driver?: string;
  driverOpts: Record<string, string>;
  attachable: boolean;
  internal: boolean;
  labels: Record<string, string>;
  subnets: { subnet: string; gateway?: string; ipRange?: string }[];
}

export interface ComposeVolume {
  name?: string;
  external: boolean;
  driver?: string;
  driverOpts: Record<string, string>;
  labels: Record<string, string>;
}

/** A top-level secret or config: from a file, or external (already in the swarm). */
export interface ComposeFileObject {
  name?: string;
  external: boolean;
  /** Absolute; absent for external ones. */
  file?: string;
  labels: Record<string, string>;
}
