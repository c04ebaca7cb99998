import { randomBytes } from 'node:crypto';

/**
 * A short random suffix for names of things a test makes that other runs on the same machine can
 * see (cgroups, lab prefixes). Pids are no good: every run's sandbox is a new pid namespace,
 * where the test runner's pid is the same small number each time.
 */
export function uniqueSuffix(length = 4): string {
  return BigInt(`0x${randomBytes(8).toString('hex')}`).toString(36).slice(0, length).padStart(length, '0');
}
