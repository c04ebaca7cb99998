import { Task } from '../../services/gen/swarmlet/v1/types';

/** What a runtime knows of one task's process. */
export interface RuntimeTaskState {
  state: 'created' | 'running' | 'exited' | 'missing';
  /** The task's pid 1 as seen from the host (created and running, and exited while known). */
  pid?: number;
  /** 128+N when a signal N ended the task. */
  exitCode?: number;
  oomKilled?: boolean;
  /** The signal's name (SIGTERM, SIGKILL, ...) when the exit code says a signal ended the task. */
  signal?: string;
  startedAt?: string;
  finishedAt?: string;
}

/** What prepare may need beyond the task. */
export interface PrepareOptions {
  /** The registry credential for the task's image (from its service's sealed one); never logged. */
  registryAuth?: string;
}

/**
 * The port the agent runs tasks through. Implementations are named for their mechanism
 * (ExecRuntime, CrunRuntime; RuntimeRouter picks one per task). Every method is safe to call again.
 */
export interface Runtime {
  /** Makes the task's sandbox (namespaces, cgroup with limits, log file) with its process held before the command runs. Idempotent. */
  prepare(task: Task, opts?: PrepareOptions): Promise<void>;
  /** Lets the held process run the command. */
  start(taskId: string): Promise<void>;
  inspect(taskId: string): Promise<RuntimeTaskState>;
  /** SIGTERM to the task's process, SIGKILL to everything in its cgroup after graceMs; resolves when all are gone. */
  stop(taskId: string, graceMs: number): Promise<void>;
  /** Forgets the task: cgroup, state files; keeps nothing but what remove is told to keep (logs go too). */
  remove(taskId: string): Promise<void>;
  /** Task ids this runtime has state for on disk (for re-adoption after an agent restart). */
  list(): Promise<string[]>;
  /** Runs a health-check command inside the task's namespaces; exit 0 = healthy. */
  exec(taskId: string, argv: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }>;
  /** The task's output: the last `tail` lines (-1 all), then new lines while `follow` until the signal aborts or the task is removed. */
  logs(taskId: string, opts: { tail: number; follow: boolean; signal: AbortSignal }): AsyncIterable<string>;
}
