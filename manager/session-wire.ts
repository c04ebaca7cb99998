/**
 * The bytes of a session's next message, whole or as a delta on the last one the session was sent
 * (services/api/session-delta.ts says what a delta holds). A message is the concatenation of its
 * parts' encodings (protobuf allows that), so each part is encoded on its own: what every node
 * shares (the managers, the cluster's timings, the VTEPs of every node) once per pass, not once
 * per node; and a part's bytes, kept per session, tell whether it changed. Tasks are told apart by
 * their stored version, so a task that did not change is not even encoded for a delta; nor is one
 * whose only change is the node's own report of it (ownReportOnly).
 */
import { SessionMessage } from '../services/gen/swarmlet/v1/dispatcher';
import { Task, TaskState } from '../services/gen/swarmlet/v1/types';
import { SESSION_PARTS, SessionPart } from '../services/api/session-delta';
import { NodeMessage } from './session-plans';

/** What a session was last sent: each part's bytes, and each task's version and desired state as sent. */
export interface SentState {
  parts: Map<SessionPart, Uint8Array>;
  tasks: Map<string, SentTask>;
}

interface SentTask {
  version: number | undefined;
  desired: TaskState;
}

/**
 * A task the agent has, changed since in its status alone, past ASSIGNED: the node's own report
 * coming back, which its agent does not need (swarmkit's dispatcher skips these too, by
 * TasksEqualStable). Once assigned, a task changes only in its desired state (the orchestrator)
 * and its status (its node's reports); a version the agent has not seen with the desired state
 * it has is such a report. Sending these back doubled the task copies nodes were sent while their
 * tasks started.
 */
const ownReportOnly = (had: SentTask, t: Task): boolean => had.desired === t.desiredState && (t.status?.state ?? TaskState.TASK_STATE_NEW) > TaskState.TASK_STATE_ASSIGNED;

/** A task's stored version (none for a task without one): a task at the same version is the same task. */
const versionOf = (t: Task): number | undefined => t.meta?.version || undefined;

/** The agent has the task as it needs it: at this version, or at one before its own report of it. */
const hasAlready = (had: SentTask | undefined, t: Task): had is SentTask => {
  const version = versionOf(t);
  return had?.version !== undefined && version !== undefined && (had.version === version || ownReportOnly(had, t));
};

/**
 * Whether the session has each of `assigned` (a node's tasks, as SessionPlan.assignedTo lists
 * them) as it needs it and no other: what `message` would then send is no task and no removal.
 * `reportShows` names a task whose own report can change another part of the message (host
 * ports): such a task at a new version is never taken as had. The dispatcher asks this when only
 * a node's tasks changed, and skips building a message that would not go.
 */
export function hasTasks(assigned: Task[], sent: SentState, reportShows: (t: Task) => boolean): boolean {
  if (assigned.length !== sent.tasks.size) return false;
  for (const t of assigned) {
    const had = sent.tasks.get(t.id);
    if (!hasAlready(had, t)) return false;
    if (had.version !== versionOf(t) && reportShows(t)) return false;
  }
  return true;
}

/** The parts every node's message shares: one value per pass, the same object for every node. */
const SHARED_PARTS = new Set<SessionPart>(['managers', 'clusterSpec', 'vteps']);

/** What an agent is sent of a task: all but the store's meta. */
const withoutMeta = (t: Task): Task => ({ ...t, meta: undefined });

const EMPTY = SessionMessage.fromPartial({});
const encode = (fields: Partial<SessionMessage>): Uint8Array => SessionMessage.encode({ ...EMPTY, ...fields }).finish();
const sameBytes = (a: Uint8Array | undefined, b: Uint8Array) => a === b || (a !== undefined && Buffer.compare(a, b) === 0);

/** The dispatcher's encoder: one for all sessions, told when a pass begins. */
export class SessionWire {
  /** The shared parts' bytes in this pass, by the value encoded. */
  private thisPass = new WeakMap<object, Uint8Array>();
  /** Each shared part's bytes as last encoded: unchanged, the same bytes are used again (one copy for every session). */
  private readonly lastShared = new Map<SessionPart, Uint8Array>();

  /** A new pass: the values of the shared parts may be new objects. */
  newPass(): void {
    this.thisPass = new WeakMap();
  }

  /**
   * The bytes to send a session, and what it will then have been sent; undefined when the
   * message would be the one it has. Whole when `sent` is undefined (the session's first
   * message) or the agent takes no deltas. `msg`'s tasks are as stored: their stored version
   * (meta) tells a task the session has from one it has not, and is not sent.
   */
  message(sessionId: string, msg: NodeMessage, sent: SentState | undefined, deltas: boolean): { bytes: Uint8Array; sent: SentState } | undefined {
    const parts = new Map<SessionPart, Uint8Array>();
    let partsChanged = false;
    for (const [part] of SESSION_PARTS) {
      const bytes = this.part(part, msg[part]);
      const had = sent?.parts.get(part);
      // A part as it was is kept as the bytes already held: the new copy dies young instead of joining the old generation beside the old one.
      if (sameBytes(had, bytes)) parts.set(part, had!);
      else {
        parts.set(part, bytes);
        partsChanged = true;
      }
    }
    // Each task as the agent will have it: as sent before (the same version, or its own report since), or as sent now.
    const tasks = new Map<string, SentTask>();
    const changed: Task[] = [];
    for (const t of msg.tasks) {
      const version = versionOf(t);
      const had = sent?.tasks.get(t.id);
      if (hasAlready(had, t)) {
        tasks.set(t.id, had);
        continue;
      }
      tasks.set(t.id, { version, desired: t.desiredState });
      changed.push(t);
    }
    const removed = sent ? [...sent.tasks.keys()].filter((id) => !tasks.has(id)) : [];
    if (sent && !partsChanged && changed.length === 0 && removed.length === 0) return undefined;
    if (!sent || !deltas) {
      const all = new Map(msg.tasks.map((t) => [t.id, { version: versionOf(t), desired: t.desiredState }]));
      return { bytes: Buffer.concat([encode({ sessionId }), ...parts.values(), encode({ tasks: msg.tasks.map(withoutMeta) })]), sent: { parts, tasks: all } };
    }
    const next = { parts, tasks };
    const delta = { removedTaskIds: removed } as NonNullable<SessionMessage['delta']>;
    const out = [encode({ sessionId })];
    for (const [part, same] of SESSION_PARTS) {
      const bytes = parts.get(part)!;
      if (sameBytes(sent.parts.get(part), bytes)) delta[same] = true;
      else out.push(bytes);
    }
    out.push(encode({ tasks: changed.map(withoutMeta) }), encode({ delta: { ...EMPTY_DELTA, ...delta } }));
    return { bytes: Buffer.concat(out), sent: next };
  }

  private part(part: SessionPart, value: unknown): Uint8Array {
    if (!SHARED_PARTS.has(part) || typeof value !== 'object' || value === null) return encode({ [part]: value });
    let bytes = this.thisPass.get(value);
    if (bytes) return bytes;
    bytes = encode({ [part]: value });
    const last = this.lastShared.get(part);
    if (last && sameBytes(last, bytes)) bytes = last;
    this.lastShared.set(part, bytes);
    this.thisPass.set(value, bytes);
    return bytes;
  }
}

const EMPTY_DELTA = SessionMessage.fromPartial({ delta: {} }).delta!;
