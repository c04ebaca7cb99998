/**
 * Named network namespaces (/run/netns/NAME) for the agent's network sandboxes. They are made and
 * removed with iproute2 (`ip netns add|del`): the only thing the network drivers do outside the
 * Netlink class, because making a named namespace takes unshare() plus a bind mount, which Node
 * cannot do itself.
 *
 * A name is "there" only when its file is a mounted namespace (nsfs). After a crash between the
 * two steps of `ip netns add`, or on a /run that was not cleared, a plain file of that name may be
 * left; ensureNetns() removes it and makes the namespace again.
 */
import { readdir, statfs, unlink } from 'node:fs/promises';
import { SwarmletError, invalidArgument } from '../../services/common/errors';
import { runInNetns } from './netns-run';

export const NETNS_DIR = '/run/netns';
/** statfs(2) f_type of a namespace file (NSFS_MAGIC). */
const NSFS_MAGIC = 0x6e736673;
const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const netnsPath = (name: string): string => `${NETNS_DIR}/${name}`;

function checkName(name: string): void {
  if (!NETNS_NAME.test(name)) throw invalidArgument(`invalid network namespace name ${JSON.stringify(name)}`);
}

async function ip(args: string[]): Promise<void> {
  await runInNetns(undefined, 'ip', args);
}

/** The names in /run/netns (mounted or not); [] when the directory does not exist. */
export async function listNetns(): Promise<string[]> {
  try {
    return (await readdir(NETNS_DIR)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new SwarmletError('Internal', `listing ${NETNS_DIR}: ${(err as Error).message}`, { cause: err });
  }
}

/** Whether /run/netns/NAME is a mounted network namespace. */
export async function isNetnsMounted(name: string): Promise<boolean> {
  checkName(name);
  try {
    return (await statfs(netnsPath(name))).type === NSFS_MAGIC;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new SwarmletError('Internal', `checking ${netnsPath(name)}: ${(err as Error).message}`, { cause: err });
  }
}

/** Makes the named namespace unless it is there; true when it was made. */
export async function ensureNetns(name: string): Promise<boolean> {
  checkName(name);
  if (await isNetnsMounted(name)) return false;
  // A leftover file that is not a namespace would make `ip netns add` fail with "File exists".
  await unlink(netnsPath(name)).catch(() => undefined);
  await ip(['netns', 'add', name]);
  return true;
}

/** Removes the named namespace (its devices go when the last user of it is gone); a missing one is fine. */
export async function deleteNetns(name: string): Promise<void> {
  checkName(name);
  if (!(await isNetnsMounted(name))) {
    await unlink(netnsPath(name)).catch(() => undefined);
    return;
  }
  await ip(['netns', 'del', name]);
}
