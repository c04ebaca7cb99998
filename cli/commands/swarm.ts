import type { Argv } from 'yargs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatDuration, parseDuration } from '../../services/common/duration';
import { invalidArgument } from '../../services/common/errors';
import { NodeRole } from '../../services/gen/swarmlet/v1/types';
import { call } from '../client';
import { json, wantsJson } from '../format';
import { GlobalArgs, out, withClients } from './context';

const local = (c: { local?: unknown }) => {
  if (!c.local) throw invalidArgument('this command talks to the local daemon: use a unix:// host');
  return c.local as NonNullable<import('../client').Clients['local']>;
};

function joinInstructions(role: 'worker' | 'manager', token: string, addr: string): string {
  return `To add a ${role} to this swarm, run the following command:\n\n    swarmlet join --token ${token} ${addr}\n\n`;
}

type TimingArgs = { dispatcherHeartbeat?: string; nodeDownAfter?: string };
type InitArgs = GlobalArgs & TimingArgs & { advertiseAddr?: string; listenAddr?: string; etcdEndpoints?: string; forceNewCluster?: boolean };

function timingOptions<T>(a: Argv<T>) {
  return a
    .option('dispatcher-heartbeat', { type: 'string', describe: 'How often agents heartbeat (default 500ms)' })
    .option('node-down-after', { type: 'string', describe: 'How long a node whose host still answers stays Ready without heartbeats, e.g. while its daemon restarts (default 20s; a host that does not answer is down at once)' });
}

const timings = (argv: TimingArgs) => ({
  heartbeatPeriodMs: argv.dispatcherHeartbeat === undefined ? undefined : parseDuration(argv.dispatcherHeartbeat, '--dispatcher-heartbeat'),
  nodeDownAfterMs: argv.nodeDownAfter === undefined ? undefined : parseDuration(argv.nodeDownAfter, '--node-down-after'),
});
type BackupArgs = GlobalArgs & { file: string; passphraseFile?: string };
type RestoreArgs = BackupArgs & { advertiseAddr?: string; listenAddr?: string };

/**
 * A backup's passphrase: from --passphrase-file, else stdin (typed at a prompt, unechoed, or
 * piped), never from argv where other users' `ps` would see it. One trailing newline is dropped.
 */
async function readPassphrase(file: string | undefined): Promise<string> {
  const chomp = (s: string) => s.replace(/\r?\n$/, '');
  if (file !== undefined) {
    if (!fs.existsSync(file)) throw invalidArgument(`--passphrase-file ${file} does not exist`);
    return chomp(fs.readFileSync(file, 'utf8'));
  }
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return chomp(Buffer.concat(chunks).toString('utf8'));
  }
  const readline = await import('node:readline');
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  process.stderr.write('Passphrase: ');
  // Typed characters are not echoed.
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => undefined;
  const line = await new Promise<string>((resolve) => rl.once('line', resolve));
  rl.close();
  process.stderr.write('\n');
  return line;
}

function passphraseOption<T>(a: Argv<T>) {
  return a.option('passphrase-file', { type: 'string', describe: 'Read the passphrase from this file (default: stdin)' });
}

type JoinArgs = GlobalArgs & { token: string; addr: string; advertiseAddr?: string; listenAddr?: string };

function initBuilder(a: Argv<GlobalArgs>) {
  return timingOptions(a)
    .option('advertise-addr', { type: 'string', describe: 'The IPv4 address other nodes reach this one at' })
    .option('listen-addr', { type: 'string', describe: 'Where the manager API listens, IP:PORT (default 0.0.0.0:2377)' })
    .option('etcd-endpoints', { type: 'string', describe: 'Use this etcd cluster (comma-separated URLs) instead of an embedded member' })
    // No default: yargs counts a default as given, and would refuse every --etcd-endpoints.
    .option('force-new-cluster', { type: 'boolean', describe: 'On a manager of a swarm that lost quorum: make it the only manager, keeping the swarm\'s state and its own addresses' })
    .conflicts('force-new-cluster', ['etcd-endpoints', 'advertise-addr', 'listen-addr', 'dispatcher-heartbeat', 'node-down-after']);
}

async function init(argv: InitArgs) {
  await withClients(argv, async (c, host) => {
    const res = await call(
      local(c),
      local(c).init,
      { advertiseAddr: argv.advertiseAddr ?? '', listenAddr: argv.listenAddr ?? '', etcdEndpoints: (argv.etcdEndpoints ?? '').split(',').filter(Boolean), ...timings(argv), forceNewCluster: Boolean(argv.forceNewCluster) },
      host,
    );
    out(`Swarm initialized: current node (${res.nodeId}) is now a manager.\n\n`);
    out(joinInstructions('worker', res.workerToken, res.managerAddr));
    out(`To add a manager to this swarm, run 'swarmlet swarm join-token manager' and follow the instructions.\n`);
  });
}

function joinBuilder(a: Argv<GlobalArgs>) {
  return a
    .positional('addr', { type: 'string', demandOption: true, describe: 'A manager, IP[:PORT]' })
    .option('token', { type: 'string', demandOption: true, describe: 'The join token printed by "swarmlet swarm join-token"' })
    .option('advertise-addr', { type: 'string', describe: 'The IPv4 address other nodes reach this one at' })
    .option('listen-addr', { type: 'string', describe: 'Where the manager API listens if this node is a manager, IP:PORT' });
}

async function join(argv: JoinArgs) {
  await withClients(argv, async (c, host) => {
    const res = await call(local(c), local(c).join, { token: argv.token, remoteAddr: argv.addr, advertiseAddr: argv.advertiseAddr ?? '', listenAddr: argv.listenAddr ?? '' }, host);
    out(`This node joined a swarm as a ${res.role === NodeRole.NODE_ROLE_MANAGER ? 'manager' : 'worker'}.\n`);
  });
}

export function swarmCommands(y: Argv<GlobalArgs>) {
  return y
    .command<InitArgs>('init', 'Initialize a swarm: this node becomes its first manager', initBuilder, init)
    .command<JoinArgs>('join <addr>', 'Join a swarm as a worker or a manager, as the token says', joinBuilder, join)
    .command('swarm', 'Manage the swarm', (s: Argv<GlobalArgs>) =>
      s
        .command<InitArgs>('init', 'Initialize a swarm (same as "swarmlet init")', initBuilder, init)
        .command<JoinArgs>('join <addr>', 'Join a swarm (same as "swarmlet join")', joinBuilder, join)
        .command(
          'join-token <role>',
          'Show (or rotate) the command to join a worker or a manager',
          (a) =>
            a
              .positional('role', { choices: ['worker', 'manager'] as const, demandOption: true })
              .option('rotate', { type: 'boolean', default: false, describe: 'Replace the token; the old one stops working' })
              .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Print the token only' }),
          async (argv) => {
            await withClients(argv, async (c, host) => {
              const role = argv.role === 'manager' ? NodeRole.NODE_ROLE_MANAGER : NodeRole.NODE_ROLE_WORKER;
              const res = await call(c.control, c.control.getJoinToken, { role, rotate: argv.rotate }, host);
              if (argv.quiet) return out(`${res.token}\n`);
              if (argv.rotate) out(`Successfully rotated ${argv.role} join token.\n\n`);
              out(joinInstructions(argv.role, res.token, res.managerAddr));
            });
          },
        )
        .command<GlobalArgs & TimingArgs>(
          'update',
          'Change the swarm\'s timings',
          (a) => timingOptions(a),
          async (argv) => {
            await withClients(argv, async (c, host) => {
              const spec = await call(c.control, c.control.updateCluster, timings(argv), host);
              if (wantsJson(argv.format)) return out(json(spec));
              out(`Swarm updated: heartbeat every ${formatDuration(spec.heartbeatPeriodMs)}, node down after ${formatDuration(spec.nodeDownAfterMs)}.\n`);
            });
          },
        )
        .command(
          'operator-cert',
          'Make a client certificate for the Control API over TCP (key made here, never sent), or revoke one',
          (a) =>
            a
              .option('out', { type: 'string', describe: 'Directory to write ca.pem, cert.pem and key.pem to (must not hold them yet)' })
              .option('name', { type: 'string', describe: 'The certificate\'s name (default operator-<random>)' })
              .option('revoke', { type: 'string', describe: 'Revoke the operator certificate with this serial (as printed when it was made)' })
              .conflicts('revoke', ['out', 'name']),
          async (argv) => {
            if (argv.revoke !== undefined) {
              await withClients(argv, async (c, host) => {
                const res = await call(c.control, c.control.revokeOperatorCertificate, { serial: argv.revoke! }, host);
                out(`Operator certificate ${res.name} (serial ${res.serial}) revoked.\n`);
              });
              return;
            }
            if (!argv.out) throw invalidArgument('swarm operator-cert needs --out DIR (or --revoke SERIAL)');
            const dir = argv.out;
            const files = ['ca.pem', 'cert.pem', 'key.pem'].map((f) => path.join(dir, f));
            const existing = files.filter((f) => fs.existsSync(f));
            if (existing.length) throw invalidArgument(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}; choose another --out`);
            await withClients(argv, async (c, host) => {
              const { createKeyAndCSR } = await import('../../services/pki/ca'); // x509: only here
              const { keyPem, csrPem } = await createKeyAndCSR(argv.name ?? 'operator');
              const res = await call(c.control, c.control.issueOperatorCertificate, { csrPem, name: argv.name ?? '' }, host);
              fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
              fs.writeFileSync(files[0], res.caCertPem, { mode: 0o644 });
              fs.writeFileSync(files[1], res.certPem, { mode: 0o644 });
              fs.writeFileSync(files[2], keyPem, { mode: 0o600 });
              out(`Operator certificate ${res.name} written to ${dir}; use it with: swarmlet -H tcp://MANAGER:2377 --cert-dir ${dir} ...\n`);
              out(`Its serial is ${res.serial}; to revoke it: swarmlet swarm operator-cert --revoke ${res.serial}\n`);
            });
          },
        )
        .command<BackupArgs>(
          'backup <file>',
          "Write the swarm's state and root CA to FILE, sealed with a passphrase (run on a manager)",
          (a) => passphraseOption(a.positional('file', { type: 'string', demandOption: true, describe: 'Where to write the backup (must not exist yet)' })),
          async (argv) => {
            if (fs.existsSync(argv.file)) throw invalidArgument(`${argv.file} already exists; choose another file`);
            const passphrase = await readPassphrase(argv.passphraseFile);
            await withClients(argv, async (c, host) => {
              const res = await call(local(c), local(c).backup, { passphrase }, host);
              const tmp = `${argv.file}.tmp-${process.pid}`;
              fs.writeFileSync(tmp, res.backup, { mode: 0o600 });
              fs.renameSync(tmp, argv.file);
              out(`Swarm backed up to ${argv.file}: ${res.keys} keys of the cluster store and the root CA. Keep the file and its passphrase apart; with both, anyone can take the swarm over.\n`);
            });
          },
        )
        .command<RestoreArgs>(
          'restore <file>',
          'Make this node, in no swarm yet, the only manager of the swarm in a backup FILE',
          (a) =>
            passphraseOption(a.positional('file', { type: 'string', demandOption: true, describe: 'A file written by "swarmlet swarm backup"' }))
              .option('advertise-addr', { type: 'string', describe: 'The IPv4 address other nodes reach this one at' })
              .option('listen-addr', { type: 'string', describe: 'Where the manager API listens, IP:PORT (default 0.0.0.0:2377)' }),
          async (argv) => {
            if (!fs.existsSync(argv.file)) throw invalidArgument(`${argv.file} does not exist`);
            const backup = fs.readFileSync(argv.file);
            const passphrase = await readPassphrase(argv.passphraseFile);
            await withClients(argv, async (c, host) => {
              const res = await call(local(c), local(c).restore, { backup, passphrase, advertiseAddr: argv.advertiseAddr ?? '', listenAddr: argv.listenAddr ?? '' }, host);
              out(`Swarm restored: current node (${res.nodeId}) is now its only manager.\n\n`);
              out(joinInstructions('worker', res.workerToken, res.managerAddr));
              out(`To add a manager to this swarm, run 'swarmlet swarm join-token manager' and follow the instructions.\n`);
            });
          },
        )
        .command(
          'leave',
          'Leave the swarm',
          (a) => a.option('force', { alias: 'f', type: 'boolean', default: false, describe: 'Leave even if this breaks the managers\' quorum' }),
          async (argv) => {
            await withClients(argv, async (c, host) => {
              await call(local(c), local(c).leave, { force: argv.force }, host);
              out('Node left the swarm.\n');
            });
          },
        )
        .demandCommand(1, 'swarm needs a subcommand: init, join, join-token, update, operator-cert, backup, restore or leave'),
    );
}

export function infoCommand(y: Argv<GlobalArgs>) {
  return y.command(
    'info',
    'Show this node and its swarm',
    (a) => a,
    async (argv) => {
      await withClients(argv, async (c, host) => {
        const info = await call(local(c), local(c).info, {}, host);
        if (wantsJson(argv.format)) return out(json(info));
        const lines = [`Swarm: ${info.localState}`];
        if (info.localState === 'active') {
          lines.push(` NodeID: ${info.nodeId}`, ` Is Manager: ${info.isManager}`, ` ClusterID: ${info.clusterId}`, ` Node Address: ${info.nodeAddr}`);
          if (info.isManager) {
            lines.push(` Leader: ${info.leaderId || '(none)'}`, ` Managers: ${info.managerCount}`, ` Nodes: ${info.nodeCount}`);
            if (info.clusterSpec) lines.push(` Heartbeat Period: ${formatDuration(info.clusterSpec.heartbeatPeriodMs)}`, ` Node Down After: ${formatDuration(info.clusterSpec.nodeDownAfterMs)}`);
          }
          lines.push(' Manager Addresses:', ...info.managers.map((m) => `  ${m.addr}`));
          if (info.error) lines.push(` Error: ${info.error}`);
        }
        lines.push(`Server Version: ${info.engineVersion}`);
        out(lines.join('\n') + '\n');
      });
    },
  );
}
