/**
 * How the agent works in a network namespace. nft transactions, sysctls and a link set up go to
 * the long-lived namespace helper (runtime/netns-ops.ts: no process per change). Any other command
 * runs as `nsenter --net=PATH -- COMMAND`.
 * nsenter takes any namespace file (a named one under /run/netns, or a task's /proc/PID/ns/net)
 * and enters the network namespace alone, where `ip netns exec` takes names only and also
 * remounts /sys and binds /etc/netns files in a new mount namespace. With no namespace the
 * command runs in this process's.
 */
import { SwarmletError } from '../../services/common/errors';
import { netnsOps } from '../runtime/netns-ops';
import { RunResult, spawner } from '../runtime/spawner';

const COMMAND_TIMEOUT_MS = 10000;

/** The argv that runs `argv` in the network namespace at `netns` (this process's when undefined). */
function nsenterArgv(netns: string | undefined, argv: string[]): string[] {
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

/**
 * Runs nft commands in the namespace at `netns` (this process's when undefined) as one
 * transaction, as `nft -f -` would; resolves with nft's output.
 */
export function runNft(netns: string | undefined, commands: string): Promise<string> {
  return netnsOps.nft(netns, commands);
}

/** Turns IPv4 forwarding on in the namespace at `netns` (this process's when undefined). */
export async function enableForwarding(netns: string | undefined): Promise<void> {
  await netnsOps.write(netns, '/proc/sys/net/ipv4/ip_forward', '1\n');
}
