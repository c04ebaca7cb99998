/**
 * What a task's limits mean in cgroup files, without I/O (cgroups.ts writes them).
 */
import { invalidArgument } from '../../services/common/errors';

/**
 * The swap file and value for a memory limit and docker's --memory-swap (memory plus swap: -1
 * unlimited swap, 0 none beyond the memory limit, N >= memory N - memory of swap): v1's
 * memory.memsw.limit_in_bytes (memory plus swap), v2's memory.swap.max (swap alone). Undefined
 * without a memory limit (the swap is then not limited, as docker's).
 */
export function planSwapLimit(version: 1 | 2, memoryBytes: number, memorySwapBytes: number): { file: string; value: string } | undefined {
  if (memoryBytes <= 0) {
    if (memorySwapBytes !== 0) throw invalidArgument('You should always set the Memory limit when using Memoryswap limit, see usage');
    return undefined;
  }
  if (memorySwapBytes > 0 && memorySwapBytes < memoryBytes) throw invalidArgument('Minimum memoryswap limit should be larger than memory limit, see usage');
  if (memorySwapBytes < -1) throw invalidArgument(`memory swap limit ${memorySwapBytes} is not valid: -1, 0 or at least the memory limit`);
  if (version === 1) return { file: 'memory.memsw.limit_in_bytes', value: String(memorySwapBytes === -1 ? -1 : memorySwapBytes || memoryBytes) };
  return { file: 'memory.swap.max', value: memorySwapBytes === -1 ? 'max' : String(memorySwapBytes ? memorySwapBytes - memoryBytes : 0) };
}
