import type { Readable, Writable } from 'node:stream';
import { Task } from '../../services/gen/swarmlet/v1/types';
import type { LogRecord } from './log-plans';
import type { TaskFileMounts } from './mount-plans';
import type { TerminalSize } from './terminal-plans';

export type { TerminalSize } from './terminal-plans';

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
  /** Where the task's output goes (a container's log, kept across its restarts); default: output.log in the task's state directory. */
  logFile?: string;
  /** the task's secrets and configs, written on the node's tmpfs: mounted read-only. */
  files?: TaskFileMounts;
}

/** What `logs` reads: the last `tail` records (-1 all), those from `since` on (log-plans.ts's time), then new ones while `follow`. */
export interface LogsOptions {
  tail: number;
  follow: boolean;
  signal: AbortSignal;
  since?: string;
  /** With follow: when it aborts, what the log holds to its end is given, then the lines end. */
  drain?: AbortSignal;
}

/** An interactive command in a task (docker exec -i/-t). */
export interface ExecSessionOptions {
  argv: string[];
  /** A pty for the command (stdout and stderr are then one stream). */
  tty: boolean;
  /** KEY=VALUE, added to the task's environment. */
  env?: string[];
  /** Empty: the task's user. */
  user?: string;
  /** Empty: the task's working directory. */
  workdir?: string;
  /** The pty's size before the command starts. */
  size?: TerminalSize;
}

/**
 * A live connection to a process of a task: its stdin, its output and its end. For exec, the
 * process is the command; for attach, the task's main process (which outlives the session).
 */
export interface TerminalSession {
  /** The process is on a pty. */
  readonly tty: boolean;
  /** To the process's stdin (the pty with a tty); end() closes it (exec without a tty). */
  readonly stdin: Writable;
  /** Everything from a pty; else the process's stdout. */
  readonly stdout: Readable;
  /** Without a tty: the process's stderr. */
  readonly stderr?: Readable;
  /** Sets the pty's window size (nothing without a pty). */
  resize(size: TerminalSize): Promise<void>;
  /** The process's exit code once it ended. */
  readonly exited: Promise<number>;
  /** Ends the session: an exec'd command is killed, an attached task keeps running. */
  close(): void;
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
  /** Calls `onExit` as soon as the task's process ends (without it, exits are found by inspect); returns the way to stop watching. */
  watchExit?(taskId: string, onExit: () => void): () => void;
  /** SIGTERM to the task's process, SIGKILL to everything in its cgroup after graceMs; resolves when all are gone. */
  stop(taskId: string, graceMs: number): Promise<void>;
  /** Forgets the task: cgroup, state files; keeps nothing but what remove is told to keep (logs go too). */
  remove(taskId: string): Promise<void>;
  /** Task ids this runtime has state for on disk (for re-adoption after an agent restart). */
  list(): Promise<string[]>;
  /** Runs a health-check command inside the task's namespaces; exit 0 = healthy. */
  exec(taskId: string, argv: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }>;
  /** An interactive command in the running task's namespaces and cgroup, as its user, env and workdir unless told. */
  execSession(taskId: string, opts: ExecSessionOptions): Promise<TerminalSession>;
  /** The task's main process: its pty (a tty task), or its stdin (open_stdin) and its output from now on, and its end. */
  attach(taskId: string): Promise<TerminalSession>;
  /** The task's output, record by record (log-plans.ts), until the signal aborts or the task is removed when following. */
  logs(taskId: string, opts: LogsOptions): AsyncIterable<LogRecord>;
}
