import type { Argv } from 'yargs';
import { invalidArgument } from '../../services/common/errors';
import { Node, NodeAvailability, nodeAvailabilityToJSON, NodeRole, nodeRoleToJSON, nodeStateToJSON, reachabilityToJSON } from '../../services/gen/swarmlet/v1/types';
import { Clients, call } from '../client';
import { enumWord, formatInspect, formatList, json, rowObjects, table } from '../format';
import { GlobalArgs, out, withClients } from './context';

const AVAILABILITY: Record<string, NodeAvailability> = {
  active: NodeAvailability.NODE_AVAILABILITY_ACTIVE,
  pause: NodeAvailability.NODE_AVAILABILITY_PAUSE,
  drain: NodeAvailability.NODE_AVAILABILITY_DRAIN,
};

/** What inspect and --format json show: every field of the node, defaults included, enums as words. */
export function nodeJson(n: Node): unknown {
  return {
    id: n.id,
    meta: n.meta,
    role: nodeRoleToJSON(n.role),
    spec: {
      desiredRole: nodeRoleToJSON(n.spec?.desiredRole ?? n.role),
      availability: nodeAvailabilityToJSON(n.spec?.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE),
      labels: n.spec?.labels ?? {},
    },
    description: n.description,
    status: n.status && { ...n.status, state: nodeStateToJSON(n.status.state) },
    managerStatus: n.managerStatus && { ...n.managerStatus, reachability: reachabilityToJSON(n.managerStatus.reachability) },
  };
}

/** A node as `docker node inspect` shows it: the same field names and enum words, so that `--format '{{.Status.State}}'` works as it does there. */
export function nodeInspect(n: Node): Record<string, unknown> {
  const lower = (word: string) => word.toLowerCase();
  return {
    ID: n.id,
    Version: { Index: n.meta?.version ?? 0 },
    CreatedAt: n.meta?.createdAt ?? '',
    UpdatedAt: n.meta?.updatedAt ?? '',
    Spec: {
      Labels: n.spec?.labels ?? {},
      Role: lower(enumWord(nodeRoleToJSON(n.spec?.desiredRole ?? n.role))),
      Availability: lower(enumWord(nodeAvailabilityToJSON(n.spec?.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE))),
    },
    Description: {
      Hostname: n.description?.hostname ?? '',
      Platform: { Architecture: n.description?.arch ?? '', OS: n.description?.os ?? '' },
      Resources: { NanoCPUs: Number(n.description?.resources?.nanoCpus ?? 0), MemoryBytes: Number(n.description?.resources?.memoryBytes ?? 0) },
      Engine: { EngineVersion: n.description?.engineVersion ?? '' },
    },
    Status: { State: lower(enumWord(nodeStateToJSON(n.status?.state ?? 0))), Message: n.status?.message ?? '', Addr: n.status?.addr ?? '' },
    ...(n.managerStatus && n.role === NodeRole.NODE_ROLE_MANAGER
      ? { ManagerStatus: { Leader: n.managerStatus.leader, Reachability: lower(enumWord(reachabilityToJSON(n.managerStatus.reachability))), Addr: n.managerStatus.addr } }
      : {}),
  };
}

function managerStatus(n: Node): string {
  if (n.role !== NodeRole.NODE_ROLE_MANAGER || !n.managerStatus) return '';
  return n.managerStatus.leader ? 'Leader' : enumWord(reachabilityToJSON(n.managerStatus.reachability));
}

export function nodeRows(nodes: Node[], selfId: string): string[][] {
  return nodes.map((n) => [
    n.id === selfId ? `${n.id} *` : n.id,
    n.description?.hostname ?? '',
    enumWord(nodeStateToJSON(n.status?.state ?? 0)),
    enumWord(nodeAvailabilityToJSON(n.spec?.availability ?? 0)),
    managerStatus(n),
    n.description?.engineVersion ?? '',
  ]);
}

async function selfId(c: Clients, host: string): Promise<string> {
  if (!c.local) return '';
  return (await call(c.local, c.local.info, {}, host).catch(() => ({ nodeId: '' }))).nodeId;
}

/** A flag given once is a string, given several times an array (yargs); array-typed flags would swallow positionals. */
const repeated = (v: string | string[] | undefined): string[] => (v === undefined ? [] : ([] as string[]).concat(v));

function parseLabels(items: string[] | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const item of items ?? []) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (!key) throw invalidArgument(`invalid label ${JSON.stringify(item)}: expected KEY or KEY=VALUE`);
    labels[key] = eq < 0 ? '' : item.slice(eq + 1);
  }
  return labels;
}

export function nodeCommands(y: Argv<GlobalArgs>) {
  return y.command('node', 'Manage the swarm\'s nodes (on a manager)', (s: Argv<GlobalArgs>) =>
    s
      .command(
        ['ls', 'list'],
        'List nodes',
        (a) => a.option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only IDs' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const { nodes } = await call(c.control, c.control.listNodes, {}, host);
            if (argv.quiet) return out(nodes.map((n) => `${n.id}\n`).join(''));
            const self = await selfId(c, host);
            const headers = ['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'ENGINE VERSION'];
            // docker's rows carry Self rather than the table's `*` after the ID.
            const objects = rowObjects(headers, nodeRows(nodes, '')).map((r, i) => ({ ...r, Self: nodes[i].id === self }));
            out(formatList(argv.format, objects, () => table(headers, nodeRows(nodes, self)), () => nodes.map(nodeJson)));
          });
        },
      )
      .command(
        'inspect <nodes..>',
        'Show nodes in detail (JSON)',
        (a) => a.positional('nodes', { type: 'string', array: true, demandOption: true }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const nodes: Node[] = [];
            for (const ref of argv.nodes as string[]) nodes.push(await call(c.control, c.control.getNode, { node: ref === 'self' ? await selfId(c, host) : ref }, host));
            out(formatInspect(argv.format, nodes.map(nodeInspect), () => nodes.map(nodeJson)));
          });
        },
      )
      .command(
        'update <node>',
        'Change a node\'s availability or labels',
        (a) =>
          a
            .positional('node', { type: 'string', demandOption: true })
            .option('availability', { choices: Object.keys(AVAILABILITY), describe: 'active, pause (no new tasks) or drain (move tasks off)' })
            .option('label-add', { type: 'string', describe: 'Add or change a label, KEY=VALUE (repeatable)' })
            .option('label-rm', { type: 'string', describe: 'Remove a label, KEY (repeatable)' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const node = await call(
              c.control,
              c.control.updateNode,
              { node: argv.node, availability: argv.availability === undefined ? undefined : AVAILABILITY[argv.availability], labelAdd: parseLabels(repeated(argv.labelAdd)), labelRm: repeated(argv.labelRm) },
              host,
            );
            out(`${node.id}\n`);
          });
        },
      )
      .command(
        'promote <nodes..>',
        'Make workers managers',
        (a) => a.positional('nodes', { type: 'string', array: true, demandOption: true }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const res = await call(c.control, c.control.promoteNode, { nodes: argv.nodes as string[] }, host);
            out(res.messages.map((m) => `${m[0].toUpperCase()}${m.slice(1)}.\n`).join(''));
          });
        },
      )
      .command(
        'demote <nodes..>',
        'Make managers workers',
        (a) => a.positional('nodes', { type: 'string', array: true, demandOption: true }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const res = await call(c.control, c.control.demoteNode, { nodes: argv.nodes as string[] }, host);
            out(res.messages.map((m) => `${m[0].toUpperCase()}${m.slice(1)}.\n`).join(''));
          });
        },
      )
      .command(
        ['rm <nodes..>', 'remove <nodes..>'],
        'Remove nodes from the swarm',
        (a) =>
          a
            .positional('nodes', { type: 'string', array: true, demandOption: true })
            .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'Remove a node that is still up' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            for (const ref of argv.nodes as string[]) {
              await call(c.control, c.control.removeNode, { node: ref, force: argv.force }, host);
              out(`${ref}\n`);
            }
          });
        },
      )
      .demandCommand(1, 'node needs a subcommand: ls, inspect, update, promote, demote or rm'),
  );
}

