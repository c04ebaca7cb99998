import { Task } from '../../services/gen/swarmlet/v1/types';
import { ExecSessionOptions, LogsOptions, PrepareOptions, Runtime, RuntimeTaskState, TerminalSession } from './runtime';
import type { LogRecord } from './log-plans';

/** The runtime an image names: `exec:` images run on the exec runtime, every other one (an OCI reference) on the oci runtime. */
export function planRuntimeKind(image: string): 'exec' | 'oci' {
  return image.startsWith('exec:') ? 'exec' : 'oci';
}

/**
 * One Runtime over the exec and oci runtimes. prepare picks by the task's image; the calls that
 * name only a task id go to the runtime that has the task (learnt at prepare and list, else asked);
 * list merges both.
 */
export class RuntimeRouter implements Runtime {
  private readonly owners = new Map<string, Runtime>();

  constructor(private readonly runtimes: { exec: Runtime; oci: Runtime }) {}

  async prepare(task: Task, opts?: PrepareOptions): Promise<void> {
    const runtime = this.runtimes[planRuntimeKind(task.spec?.container?.image ?? '')];
    this.owners.set(task.id, runtime);
    await (opts ? runtime.prepare(task, opts) : runtime.prepare(task));
  }

  /** The runtime that has the task; undefined when neither has it. */
  private async owner(taskId: string): Promise<Runtime | undefined> {
    const known = this.owners.get(taskId);
    if (known) return known;
    for (const runtime of [this.runtimes.oci, this.runtimes.exec]) {
      if ((await runtime.inspect(taskId)).state !== 'missing') {
        this.owners.set(taskId, runtime);
        return runtime;
      }
    }
    return undefined;
  }

  async start(taskId: string): Promise<void> {
    const runtime = await this.owner(taskId);
    await (runtime ?? this.runtimes.oci).start(taskId);
  }

  async inspect(taskId: string): Promise<RuntimeTaskState> {
    const runtime = await this.owner(taskId);
    return runtime ? runtime.inspect(taskId) : { state: 'missing' };
  }

  /** Both are watched: only the one with the task's state directory sees anything. */
  watchExit(taskId: string, onExit: () => void): () => void {
    const stops = [this.runtimes.exec, this.runtimes.oci].map((r) => r.watchExit?.(taskId, onExit));
    return () => stops.forEach((stop) => stop?.());
  }

  async stop(taskId: string, graceMs: number): Promise<void> {
    const runtime = await this.owner(taskId);
    if (runtime) await runtime.stop(taskId, graceMs);
  }

  /** Both forget the task: a prepare cut short may have left pieces in either that inspect does not count. */
  async remove(taskId: string): Promise<void> {
    this.owners.delete(taskId);
    await this.runtimes.oci.remove(taskId);
    await this.runtimes.exec.remove(taskId);
  }

  async list(): Promise<string[]> {
    const ids = new Set<string>();
    for (const [kind, runtime] of Object.entries(this.runtimes) as ['exec' | 'oci', Runtime][]) {
      for (const id of await runtime.list()) {
        ids.add(id);
        if (!this.owners.has(id)) this.owners.set(id, this.runtimes[kind]);
      }
    }
    return [...ids].sort();
  }

  async exec(taskId: string, argv: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    const runtime = await this.owner(taskId);
    return (runtime ?? this.runtimes.oci).exec(taskId, argv, timeoutMs);
  }

  async execSession(taskId: string, opts: ExecSessionOptions): Promise<TerminalSession> {
    const runtime = await this.owner(taskId);
    return (runtime ?? this.runtimes.oci).execSession(taskId, opts);
  }

  async attach(taskId: string): Promise<TerminalSession> {
    const runtime = await this.owner(taskId);
    return (runtime ?? this.runtimes.oci).attach(taskId);
  }

  async *logs(taskId: string, opts: LogsOptions): AsyncIterable<LogRecord> {
    const runtime = await this.owner(taskId);
    yield* (runtime ?? this.runtimes.oci).logs(taskId, opts);
  }
}
