/**
 * The one way the agent runs a command in a network namespace: `nsenter --net=PATH -- COMMAND`.
 * nsenter takes any namespace file (a named one under /run/netns, or a task's /proc/PID/ns/net)
 * and enters the network namespace alone, where `ip netns exec` takes names only and also
 * remounts /sys and binds /etc/netns files in a new mount namespace. With no namespace the
 * command runs in this process's. The long-lived helpers (netlink/netns-helper.ts, the DNS
 * sockets' helper) start through nsenterArgv() too.
 */
import { writeFile } from 'node:fs/promises';
import { SwarmletError } from '../../services/common/errors';
import { RunResult, spawner } from '../runtime/spawner';

const COMMAND_TIMEOUT_MS = 10000;

/** The argv that runs `argv` in the network namespace at `netns` (this process's when undefined). */
export function nsenterArgv(netns: string | undefined, argv: string[]): string[] {
  return netns ? ['nsenter', `--net=${netns}`, '--', ...argv] : argv;
}

/** Runs a command, in the network namespace at `netns` when given, with `input` on its stdin; resolves with its stdout. */
export async function runInNetns(netns: string | undefined, command: string, args: string[], input?: string): Promise<string> {
  const [cmd, ...argv] = nsenterArgv(netns, [command, ...args]);
  const what = `${command} ${args.join(' ')}${netns ? ` in ${netns}` : ''}`;
  // Through the spawning helper: a spawn from here holds the daemon's event loop until the command has exec'ed.
  let result: RunResult;
  try {
    result = await spawner.run([cmd, ...argv], { input, timeoutMs: COMMAND_TIMEOUT_MS });
  } catch (err) {
    throw new SwarmletError('Internal', `${what}: ${(err as Error).message}`, { cause: err });
  }
  if (result.code === 0) return result.stdout;
  throw new SwarmletError('Internal', `${what} failed (${result.signal ?? `exit ${result.code}`}): ${result.stderr.trim()}`);
}

/** Turns IPv4 forwarding on in the namespace at `netns` (this process's when undefined). */
export async function enableForwarding(netns: string | undefined): Promise<void> {
  const file = '/proc/sys/net/ipv4/ip_forward';
  if (!netns) {
    await writeFile(file, '1\n');
    return;
  }
  await runInNetns(netns, 'sh', ['-c', `echo 1 > ${file}`]);
}
