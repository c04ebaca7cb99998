/**
 * The lab for a person trying swarmlet by hand (build first: npm run build):
 *
 *   node dist/test/lab/cli.js up [--hosts 3] [--prefix swl] [--no-daemons]
 *   node dist/test/lab/cli.js status [--prefix swl]
 *   node dist/test/lab/cli.js down [--prefix swl]
 *
 * `up` leaves the daemons running after it exits; what it made is described in /tmp/<prefix>/lab.json.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SwarmletError } from '../../services/common/errors';
import { listNetns } from './ip-command';
import { canConnect, destroyLabsByPrefix, findRepoRoot, Lab, readLabState, socketPath, type LabHost } from './lab';
import { isAlive, readProcStat } from './process-tree';

interface CliArgs {
  command: 'up' | 'down' | 'status' | 'help';
  prefix: string;
  hosts: number;
  daemons: boolean;
}

const USAGE = `usage: node dist/test/lab/cli.js <up|status|down> [--prefix swl] [--hosts 3] [--no-daemons]
  up      make a lab of --hosts network namespaces on one bridge and start a swarmlet daemon in each
  status  show the lab's namespaces, daemons and sockets
  down    kill everything in the lab's namespaces, delete them and /tmp/<prefix>`;

function parseArgs(argv: string[]): CliArgs {
  const args: CliArgs = { command: 'help', prefix: 'swl', hosts: 3, daemons: true };
  const rest = [...argv];
  let command: string | undefined;
  while (rest.length > 0) {
    const arg = rest.shift() as string;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? rest.shift();
      if (v === undefined) throw new SwarmletError('InvalidArgument', `${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--prefix':
        args.prefix = value();
        break;
      case '--hosts':
        args.hosts = Number(value());
        break;
      case '--no-daemons':
        args.daemons = false;
        break;
      case '-h':
      case '--help':
        command = 'help';
        break;
      default:
        if (flag.startsWith('-') || command !== undefined) throw new SwarmletError('InvalidArgument', `unexpected argument ${arg}`);
        command = flag;
    }
  }
  if (command !== undefined && !['up', 'down', 'status', 'help'].includes(command)) {
    throw new SwarmletError('InvalidArgument', `unknown command ${command}`);
  }
  args.command = (command ?? 'help') as CliArgs['command'];
  return args;
}

function baseDirOf(prefix: string): string {
  return join('/tmp', prefix);
}

function hostLine(h: LabHost): string {
  return `${h.name}  ${h.addr}  swarmlet -H ${h.socket} ...`;
}

async function up(args: CliArgs): Promise<void> {
  const lab = await Lab.create({ prefix: args.prefix, hosts: args.hosts });
  if (args.daemons) {
    const started = await Promise.allSettled(lab.hosts.map((h) => lab.startDaemon(h)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await lab.destroy();
      throw failed.reason;
    }
  }
  const repo = findRepoRoot();
  console.log(`lab ${lab.prefix}: ${lab.hosts.length} hosts on 198.51.100.0/24 (bridge br0 in netns ${lab.underlayNetns}), state in ${join(lab.baseDir, 'lab.json')}`);
  for (const h of lab.hosts) console.log(hostLine(h));
  console.log('');
  console.log(`swarmlet is ${join(repo, 'bin', 'swarmlet')}; daemon logs: ${join(lab.baseDir, 'h<N>.log')}${args.daemons ? '' : ' (no daemons started)'}`);
  console.log(`a shell on a host:  ip netns exec ${lab.host(1).netns} bash`);
  console.log(`tear down:          node ${join(repo, 'dist', 'test', 'lab', 'cli.js')} down --prefix ${lab.prefix}`);
}

async function status(args: CliArgs): Promise<void> {
  const state = readLabState(baseDirOf(args.prefix));
  const netns = (await listNetns()).filter((n) => n.startsWith(`${args.prefix}-`));
  if (!state && netns.length === 0) {
    console.log(`no lab ${args.prefix}`);
    return;
  }
  if (!state) {
    console.log(`lab ${args.prefix}: no ${join(baseDirOf(args.prefix), 'lab.json')}, namespaces: ${netns.join(' ')} (remove with: down --prefix ${args.prefix})`);
    return;
  }
  console.log(`lab ${state.prefix}: underlay ${state.underlayNetns} ${netns.includes(state.underlayNetns) ? 'up' : 'MISSING'}`);
  for (const h of state.hosts) {
    const d = state.daemons.find((x) => x.host === h.name);
    const running = d !== undefined && isAlive(d.pid) && readProcStat(d.pid)?.startTime === d.startTime;
    const daemon = running ? `daemon pid ${d.pid}` : 'no daemon';
    const sock = (await canConnect(socketPath(h))) ? 'socket ready' : 'socket closed';
    console.log(`${hostLine(h)}  [${netns.includes(h.netns) ? 'netns up' : 'netns MISSING'}, ${daemon}, ${sock}]`);
  }
  for (const c of state.clients) console.log(`${c.netns}  ${c.addr}  client  [${netns.includes(c.netns) ? 'netns up' : 'netns MISSING'}]`);
}

async function down(args: CliArgs): Promise<void> {
  const removed = await destroyLabsByPrefix(args.prefix);
  const baseDir = baseDirOf(args.prefix);
  if (existsSync(baseDir)) {
    if (readLabState(baseDir)) rmSync(baseDir, { recursive: true, force: true });
    else console.error(`left ${baseDir} alone: it holds no lab.json`);
  }
  console.log(removed.length > 0 ? `removed ${removed.join(' ')}` : `no namespaces named ${args.prefix}-*`);
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  switch (args.command) {
    case 'up':
      return up(args);
    case 'status':
      return status(args);
    case 'down':
      return down(args);
    case 'help':
      console.log(USAGE);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const msg = err instanceof SwarmletError ? err.message : String((err as Error)?.stack ?? err);
  console.error(`lab: ${msg}`);
  process.exitCode = err instanceof SwarmletError && err.kind === 'InvalidArgument' ? 2 : 1;
});
