/**
 * Polling helpers the tests share (the runtimes, the stores, the Control API): a failing check fails at once, a falsy
 * one is asked again every 50 ms until `timeoutMs`.
 */
import type { Runtime, RuntimeTaskState } from '../../agent/runtime/runtime';

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 15000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The task's state once it has exited. */
export const exited = (rt: Pick<Runtime, 'inspect'>, id: string): Promise<RuntimeTaskState> =>
  waitFor(`task ${id} to exit`, async () => {
    const s = await rt.inspect(id);
    return s.state === 'exited' ? s : undefined;
  });
