/**
 * `swarmlet compose` on one node, as plans: the names docker compose v2 gives (network
 * `PROJECT_default`, volume `PROJECT_data`, container `PROJECT-web-1`), the labels that mark what
 * a project made (com.docker.compose.*), each service's ContainerConfig, the start order, and what
 * `up` and `down` must do given what exists. Pure: cli/commands/compose.ts applies the plans.
 */
import { invalidArgument } from '../common/errors';
import { Container, ContainerConfig } from '../gen/swarmlet/v1/control';
import { HealthConfig, Mount, MountType, Network, NetworkSpec, PullPolicy } from '../gen/swarmlet/v1/types';
import { ComposeProject, ComposeService } from './model';

export const LABEL_PROJECT = 'com.docker.compose.project';
export const LABEL_SERVICE = 'com.docker.compose.service';
export const LABEL_NUMBER = 'com.docker.compose.container-number';
export const LABEL_HASH = 'com.docker.compose.config-hash';
export const LABEL_NETWORK = 'com.docker.compose.network';
export const LABEL_VOLUME = 'com.docker.compose.volume';
export const LABEL_ONEOFF = 'com.docker.compose.oneoff';
export const LABEL_WORKING_DIR = 'com.docker.compose.project.working_dir';

/** The keys `swarmlet compose` acts on; every other key a file sets is named in one warning. */
export const COMPOSE_SUPPORTED_KEYS = [
  'version',
  'services.*.image',
  'services.*.build.context',
  'services.*.build.dockerfile',
  'services.*.build.args',
  'services.*.command',
  'services.*.entrypoint',
  'services.*.environment',
  'services.*.env_file',
  'services.*.ports',
  'services.*.expose',
  'services.*.volumes',
  'services.*.depends_on',
  'services.*.healthcheck',
  'services.*.restart',
  'services.*.networks',
  'services.*.network_mode',
  'services.*.labels',
  'services.*.container_name',
  'services.*.hostname',
  'services.*.user',
  'services.*.working_dir',
  'services.*.tty',
  'services.*.stdin_open',
  'services.*.init',
  'services.*.read_only',
  'services.*.stop_grace_period',
  'services.*.pull_policy',
  'services.*.scale',
  'services.*.deploy.replicas',
  'services.*.deploy.resources.limits',
  'networks.*.name',
  'networks.*.external',
  'networks.*.driver',
  'networks.*.ipam',
  'networks.*.internal',
  'networks.*.labels',
  'volumes.*.name',
  'volumes.*.external',
  'volumes.*.driver',
  'volumes.*.labels',
];

/** The real name of a network or volume of the file: its `name:`, the key if external, else PROJECT_KEY. */
export function resourceName(project: Pick<ComposeProject, 'name'>, key: string, r: { name?: string; external: boolean }): string {
  return r.name ?? (r.external ? key : `${project.name}_${key}`);
}

/** docker compose v2's container name: PROJECT-SERVICE-N (or the service's container_name). */
export function containerName(project: Pick<ComposeProject, 'name'>, service: Pick<ComposeService, 'name' | 'containerName'>, number: number): string {
  return service.containerName ?? `${project.name}-${service.name}-${number}`;
}

/** The image a service runs: its `image:`, or for a build alone PROJECT-SERVICE (docker compose v2's). */
export function serviceImage(project: Pick<ComposeProject, 'name'>, service: Pick<ComposeService, 'name' | 'image'>): string {
  return service.image ?? `${project.name}-${service.name}`;
}

export function replicasOf(service: ComposeService): number {
  return service.deploy.replicas ?? 1;
}

/** Services in an order where each comes after those it depends on (the file is free of cycles). */
export function planStartOrder(project: ComposeProject, only?: readonly string[]): string[] {
  const order: string[] = [];
  const visit = (name: string) => {
    if (order.includes(name)) return;
    for (const dep of Object.keys(project.services[name].dependsOn)) visit(dep);
    order.push(name);
  };
  for (const name of only ?? Object.keys(project.services)) {
    if (!project.services[name]) throw invalidArgument(`no such service: ${name}`);
    visit(name);
  }
  return order;
}

const MOUNT_TYPES = { volume: MountType.MOUNT_TYPE_VOLUME, bind: MountType.MOUNT_TYPE_BIND, tmpfs: MountType.MOUNT_TYPE_TMPFS };
const PULL = { always: PullPolicy.PULL_POLICY_ALWAYS, never: PullPolicy.PULL_POLICY_NEVER, missing: PullPolicy.PULL_POLICY_MISSING, build: PullPolicy.PULL_POLICY_NEVER };

/** The networks a service's containers join, by their real names, in order. */
function networksOf(project: ComposeProject, service: ComposeService): { name: string; aliases: string[]; ipv4: string }[] {
  if (service.networkMode !== undefined) {
    if (!['host', 'none', 'bridge'].includes(service.networkMode)) {
      throw invalidArgument(`service "${service.name}": network_mode "${service.networkMode}" is not supported: use host, none, bridge or networks:`);
    }
    return [{ name: service.networkMode, aliases: [], ipv4: '' }];
  }
  return Object.entries(service.networks).map(([key, n]) => ({
    name: resourceName(project, key, project.networks[key]),
    aliases: [service.name, ...n.aliases.filter((a) => a !== service.name)],
    ipv4: n.ipv4Address ?? '',
  }));
}

/**
 * The config of container number `number` of a service, labelled as docker compose labels it;
 * `hash` (the edge's sha256) names the config, so that `up` sees what changed.
 */
export function planContainerConfig(project: ComposeProject, service: ComposeService, number: number, hash: (text: string) => string): ContainerConfig {
  const nets = networksOf(project, service);
  const limits = service.deploy.resources.limits;
  const mounts: Mount[] = service.volumes.map((m) => ({
    type: MOUNT_TYPES[m.type],
    source: m.type === 'volume' && m.source ? resourceName(project, m.source, project.volumes[m.source]) : m.source,
    target: m.target,
    readonly: m.readOnly,
    tmpfsSizeBytes: m.tmpfsSizeBytes ?? 0,
  }));
  const healthcheck: HealthConfig | undefined = service.healthcheck && {
    test: service.healthcheck.test,
    intervalMs: service.healthcheck.intervalMs ?? 0,
    timeoutMs: service.healthcheck.timeoutMs ?? 0,
    retries: service.healthcheck.retries ?? 0,
    startPeriodMs: service.healthcheck.startPeriodMs ?? 0,
  };
  const pull = service.pullPolicy ? PULL[service.pullPolicy] : service.build && !service.image ? PullPolicy.PULL_POLICY_NEVER : PullPolicy.PULL_POLICY_MISSING;
  const config: ContainerConfig = {
    name: containerName(project, service, number),
    spec: {
      container: {
        image: serviceImage(project, service),
        command: service.entrypoint ?? [],
        args: service.command ?? [],
        env: Object.entries(service.environment).map(([k, v]) => `${k}=${v}`),
        dir: service.workingDir ?? '',
        user: service.user ?? '',
        hostname: service.hostname ?? '',
        healthcheck,
        stopGracePeriodMs: service.stopGracePeriodMs ?? 0,
        mounts,
        pull,
        tty: service.tty,
        openStdin: service.stdinOpen,
        secrets: [],
        configs: [],
        ...(service.readOnly ? { readOnly: true } : {}),
        ...(service.init ? { init: true } : {}),
      },
      resources: limits.memoryBytes || limits.nanoCpus ? { limits: { memoryBytes: limits.memoryBytes ?? 0, nanoCpus: limits.nanoCpus ?? 0, pids: 0 }, reservations: undefined } : undefined,
      restart: undefined,
      placement: undefined,
      forceUpdate: 0,
      networks: nets.map((n) => n.name),
      networkAliases: [],
      attachment: undefined,
    },
    labels: {
      ...service.labels,
      [LABEL_PROJECT]: project.name,
      [LABEL_SERVICE]: service.name,
      [LABEL_NUMBER]: String(number),
      [LABEL_ONEOFF]: 'False',
      [LABEL_WORKING_DIR]: project.workingDir,
    },
    restart: service.restart ?? 'no',
    autoRemove: false,
    aliases: nets[0]?.aliases ?? [],
    ipv4: nets[0]?.ipv4 ?? '',
    tty: service.tty,
    openStdin: service.stdinOpen,
    portBindings: service.ports.map((p) => ({ protocol: p.protocol, containerPort: p.target, hostIp: p.hostIp ?? '', hostPort: p.published ?? 0 })),
    publishAll: false,
    endpointSettings: nets.slice(1).map((n) => ({ network: n.name, aliases: n.aliases, ipv4: n.ipv4 })),
  };
  config.labels[LABEL_HASH] = hash(JSON.stringify(ContainerConfig.toJSON(config)));
  return config;
}

export type ResourceAction =
  | { kind: 'createNetwork'; key: string; name: string; spec: NetworkSpec }
  | { kind: 'createVolume'; key: string; name: string; labels: Record<string, string> };

/**
 * The networks and volumes `up` makes: those the services use that do not exist yet. External
 * ones must exist; a network of that name made by someone else is refused (docker compose's rule),
 * a volume is used with a warning.
 */
export function planResources(project: ComposeProject, services: readonly string[], networks: Network[], volumes: { name: string; labels: Record<string, string> }[]): { actions: ResourceAction[]; warnings: string[] } {
  const actions: ResourceAction[] = [];
  const warnings: string[] = [];
  const usedNetworks = new Set(services.flatMap((s) => (project.services[s].networkMode === undefined ? Object.keys(project.services[s].networks) : [])));
  for (const key of Object.keys(project.networks).filter((k) => usedNetworks.has(k))) {
    const n = project.networks[key];
    const name = resourceName(project, key, n);
    const found = networks.find((x) => x.spec?.name === name);
    if (n.external) {
      if (!found) throw invalidArgument(`network ${name} declared as external, but could not be found`);
      continue;
    }
    if (found) {
      if (found.spec?.labels?.[LABEL_PROJECT] !== project.name) {
        throw invalidArgument(`a network with name ${name} exists but was not created for project "${project.name}": set \`external: true\` to use an existing network`);
      }
      continue;
    }
    if (n.driver !== undefined && n.driver !== 'bridge') throw invalidArgument(`network ${key}: driver "${n.driver}" is not supported on one node: use bridge (stack deploy makes overlays)`);
    if (n.subnets.length > 1) throw invalidArgument(`network ${key}: one ipam subnet is supported, not ${n.subnets.length}`);
    const ipam = n.subnets[0];
    actions.push({
      kind: 'createNetwork',
      key,
      name,
      spec: {
        name,
        driver: 'bridge',
        ipam: { subnet: ipam?.subnet ?? '', gateway: ipam?.gateway ?? '', ipRange: ipam?.ipRange ?? '' },
        attachable: n.attachable,
        internal: n.internal,
        options: n.driverOpts,
        labels: { ...n.labels, [LABEL_PROJECT]: project.name, [LABEL_NETWORK]: key },
      },
    });
  }
  const usedVolumes = new Set(services.flatMap((s) => project.services[s].volumes.filter((m) => m.type === 'volume' && m.source).map((m) => m.source)));
  for (const key of Object.keys(project.volumes).filter((k) => usedVolumes.has(k))) {
    const v = project.volumes[key];
    const name = resourceName(project, key, v);
    const found = volumes.find((x) => x.name === name);
    if (v.external) {
      if (!found) throw invalidArgument(`external volume "${name}" not found`);
      continue;
    }
    if (found) {
      if (found.labels[LABEL_PROJECT] !== project.name) warnings.push(`volume "${name}" already exists but was not created by Docker Compose. Use \`external: true\` to use an existing volume`);
      continue;
    }
    if (v.driver !== undefined && v.driver !== 'local') throw invalidArgument(`volume ${key}: driver "${v.driver}" is not supported: local only`);
    actions.push({ kind: 'createVolume', key, name, labels: { ...v.labels, [LABEL_PROJECT]: project.name, [LABEL_VOLUME]: key } });
  }
  return { actions, warnings };
}

export type ContainerAction =
  | { kind: 'create'; name: string; config: ContainerConfig }
  | { kind: 'recreate'; name: string; id: string; config: ContainerConfig }
  | { kind: 'start'; name: string; id: string }
  | { kind: 'running'; name: string; id: string }
  | { kind: 'remove'; name: string; id: string };

/** The project's containers among `containers` (by label), optionally of one service. */
export function projectContainers(projectName: string, containers: Container[], service?: string): Container[] {
  return containers.filter((c) => c.config?.labels?.[LABEL_PROJECT] === projectName && (service === undefined || c.config?.labels?.[LABEL_SERVICE] === service) && c.config?.labels?.[LABEL_ONEOFF] !== 'True');
}

const numberOf = (c: Container) => Number(c.config?.labels?.[LABEL_NUMBER] ?? 0);

/**
 * What `up` does for one service's containers: a running one whose config is unchanged is left
 * alone, a stopped one started, a changed one recreated, a missing one created, one numbered
 * beyond the replicas removed. `forceRecreate`: every one is recreated.
 */
export function planServiceUp(project: ComposeProject, service: string, existing: Container[], hash: (text: string) => string, forceRecreate = false): ContainerAction[] {
  const s = project.services[service];
  const mine = projectContainers(project.name, existing, service);
  const actions: ContainerAction[] = [];
  const n = replicasOf(s);
  if (s.containerName && n > 1) throw invalidArgument(`service "${service}": container_name "${s.containerName}" cannot be used with ${n} replicas`);
  for (let i = 1; i <= n; i++) {
    const config = planContainerConfig(project, s, i, hash);
    const current = mine.find((c) => numberOf(c) === i);
    if (!current) actions.push({ kind: 'create', name: config.name, config });
    else if (forceRecreate || current.config?.labels?.[LABEL_HASH] !== config.labels[LABEL_HASH]) actions.push({ kind: 'recreate', name: current.name, id: current.id, config });
    else if (current.state?.status === 'running' || current.state?.status === 'restarting') actions.push({ kind: 'running', name: current.name, id: current.id });
    else actions.push({ kind: 'start', name: current.name, id: current.id });
  }
  for (const c of mine.filter((x) => numberOf(x) < 1 || numberOf(x) > n)) actions.push({ kind: 'remove', name: c.name, id: c.id });
  return actions;
}

/** Containers of the project whose service is no longer in the file (docker compose's orphans). */
export function planOrphans(project: ComposeProject, existing: Container[]): Container[] {
  return projectContainers(project.name, existing).filter((c) => !project.services[c.config?.labels?.[LABEL_SERVICE] ?? '']);
}

export interface DownPlan {
  containers: Container[];
  networks: string[];
  volumes: string[];
}

/**
 * What `down` removes: the project's containers, the networks it made (its label, not external),
 * and with -v the named volumes it made. Nothing without the project's label is touched.
 */
export function planDown(projectName: string, containers: Container[], networks: Network[], volumes: { name: string; labels: Record<string, string> }[], withVolumes: boolean): DownPlan {
  return {
    containers: projectContainers(projectName, containers).sort((a, b) => a.name.localeCompare(b.name)),
    networks: networks.filter((n) => !n.builtin && n.spec?.labels?.[LABEL_PROJECT] === projectName).map((n) => n.spec!.name),
    volumes: withVolumes ? volumes.filter((v) => v.labels[LABEL_PROJECT] === projectName).map((v) => v.name) : [],
  };
}
