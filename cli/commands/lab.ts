import { spawnSync } from 'node:child_process';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import type { Argv } from 'yargs';
import { SwarmletError } from '../../services/common/errors';
import { callerEnvironment, labNameFromEnv } from '../../services/config/config';
import { DEFAULT_LAB_NAME, planLab, planShellArgv, planShellEnv } from '../../lab/plans';
import { LAB_REGISTRY } from '../../lab/registry';
import { labDown, labShellTarget, labStatus, labUp, listLabs } from '../../lab/swarm-lab';
import { json, table, wantsJson } from '../format';
import { GlobalArgs, out } from './context';

const nameOption = { type: 'string', default: labNameFromEnv() ?? DEFAULT_LAB_NAME, describe: 'The lab: every namespace, cgroup and the state dir carry its name, so two labs can coexist (env SWARMLET_LAB)' } as const;
/** The directory of the `swarmlet` that runs now (bin/swarmlet beside dist/): put first on a lab shell's PATH. */
const binDir = () => join(dirname(dirname(dirname(__dirname))), 'bin');

/** `swarmlet lab ...`: a swarm of several hosts on this machine, made of network namespaces (docs/labs.md). */
export function labCommands(y: Argv<GlobalArgs>) {
  return y.command('lab', 'A swarm of several hosts on this machine, in network namespaces, for trying swarmlet (see docs/labs.md)', (s: Argv<GlobalArgs>) =>
    s
      .command(
        'up',
        'Make the lab: N hosts, a daemon on each, a swarm (host 1 makes it, M managers in all, the rest workers), a registry if asked',
        (a) =>
          a
            .option('hosts', { type: 'number', default: 3, describe: 'How many hosts (1 to 20)' })
            .option('managers', { type: 'number', default: 1, describe: 'How many of them are managers (hosts h1..hM)' })
            .option('registry', { type: 'boolean', default: false, describe: `Also run a registry at ${LAB_REGISTRY} that every host pulls from over plain HTTP` })
            .option('name', nameOption),
        async (argv) => {
          const plan = planLab({ name: argv.name, hosts: argv.hosts, managers: argv.managers, registry: argv.registry });
          const { lab, swarm } = await labUp(plan, (line) => process.stderr.write(`${line}\n`));
          const rows = lab.hosts.map((h) => [`h${h.index}`, h.name, h.addr, swarm.managers.includes(h.index) ? (h.index === 1 ? 'manager (leader)' : 'manager') : 'worker', h.socket]);
          out(`lab ${plan.name}: ${plan.hosts} hosts on 198.51.100.0/24 (bridge br0 in netns ${lab.underlayNetns}); state and logs in ${lab.baseDir}\n`);
          out(table(['HOST', 'NETNS', 'ADDRESS', 'ROLE', 'SWARMLET_HOST'], rows));
          if (swarm.registry) out(`registry: ${swarm.registry} (plain HTTP, in netns ${plan.name}-reg)\n`);
          const flag = plan.name === (labNameFromEnv() ?? DEFAULT_LAB_NAME) ? '' : ` --name ${plan.name}`;
          out(`\na shell on a host:  swarmlet lab shell${flag} h1\ntear it down:       swarmlet lab down${flag}\n`);
        },
      )
      .command(
        'shell <host> [command..]',
        "A shell on a lab host (in its network namespace, SWARMLET_HOST set to its daemon); with -- COMMAND..., run that and exit with its code",
        (a) =>
          a
            .positional('host', { type: 'string', demandOption: true, describe: 'h1, 1 or <name>-h1' })
            .positional('command', { type: 'string', array: true, describe: 'After --: the command to run instead of a shell' })
            .option('name', nameOption),
        async (argv) => {
          // What follows `--` stays out of yargs' options: it lands in `_`, after the words `lab shell`.
          const command = [...((argv.command as string[] | undefined) ?? []), ...argv._.slice(2)].map(String);
          const { host, rcFile } = labShellTarget(argv.name, String(argv.host));
          const argvOut = planShellArgv(host.netns, rcFile, command);
          const res = spawnSync(argvOut[0], argvOut.slice(1), { stdio: 'inherit', env: planShellEnv(host, binDir(), callerEnvironment()) });
          if (res.error) throw new SwarmletError('FailedPrecondition', `cannot run ${argvOut[argvOut.indexOf('--') + 1]}: ${res.error.message}`);
          process.exit(res.status ?? 128 + (res.signal ? constants.signals[res.signal] : 0));
        },
      )
      .command(
        ['ls', 'list'],
        'List the labs on this machine',
        (a) => a,
        async (argv) => {
          const labs = listLabs();
          const rows = labs.map((l) => [l.name, String(l.state.hosts.length), l.swarm ? String(l.swarm.managers.length) : '', l.swarm?.registry ?? '', l.state.baseDir]);
          if (wantsJson(argv.format)) out(json(labs.map((l) => ({ Name: l.name, Hosts: l.state.hosts.length, Managers: l.swarm?.managers.length ?? 0, Registry: l.swarm?.registry ?? '', StateDir: l.state.baseDir }))));
          else out(table(['NAME', 'HOSTS', 'MANAGERS', 'REGISTRY', 'STATE DIR'], rows));
        },
      )
      .command(
        'status',
        "A lab's hosts: their role, namespace, daemon and socket",
        (a) => a.option('name', nameOption),
        async (argv) => {
          const st = await labStatus(argv.name);
          if (wantsJson(argv.format)) {
            out(json(st));
            return;
          }
          out(`lab ${argv.name}: underlay ${st.state.underlayNetns} ${st.underlay ? 'up' : 'MISSING'}; state in ${st.state.baseDir}\n`);
          const rows = st.hosts.map((h) => [`h${h.host.index}`, h.host.addr, h.role, h.netns ? 'up' : 'MISSING', h.daemonPid ? `running (pid ${h.daemonPid})` : 'not running', h.socket ? 'ready' : 'closed', h.host.socket]);
          for (const p of st.peers) rows.push([p.netns.slice(argv.name.length + 1), p.addr, p.netns.endsWith('-reg') ? 'registry' : 'client', p.up ? 'up' : 'MISSING', '', '', '']);
          out(table(['HOST', 'ADDRESS', 'ROLE', 'NETNS', 'DAEMON', 'SOCKET', 'SWARMLET_HOST'], rows));
        },
      )
      .command(
        'down',
        "Remove the lab: kill everything in its namespaces, delete them, its cgroups and its state (safe to run again)",
        (a) => a.option('name', nameOption),
        async (argv) => {
          const done = await labDown(argv.name);
          out(done ? `removed lab ${argv.name}${done.removed.length ? ` (${done.removed.join(' ')})` : ''}\n` : `no lab ${argv.name}: nothing to remove\n`);
        },
      )
      .demandCommand(1, 'lab needs a subcommand: up, shell, ls, status or down'),
  );
}
