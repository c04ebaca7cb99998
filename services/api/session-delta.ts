/**
 * Session messages as deltas, both ends of the protocol. A session's first message is
 * whole; after it, to an agent that said it accepts deltas, the dispatcher sends only what changed:
 * the tasks new or changed, the ids of those gone, and the other parts only when they differ from
 * the last message (a flag in `delta` says which parts are as before). The agent applies each
 * delta to the message it has and works from the whole one, as it would from a whole message.
 * Pure.
 */
import { failedPrecondition } from '../common/errors';
import { SessionDelta, SessionMessage } from '../gen/swarmlet/v1/dispatcher';

/** The parts of a message a delta may leave out, each with the flag that says it did. */
export const SESSION_PARTS = [
  ['node', 'sameNode'],
  ['managers', 'sameManagers'],
  ['clusterSpec', 'sameClusterSpec'],
  ['overlays', 'sameOverlays'],
  ['services', 'sameServices'],
  ['ingress', 'sameIngress'],
  ['hostPorts', 'sameHostPorts'],
  ['credentials', 'sameCredentials'],
  ['vteps', 'sameVteps'],
  ['fileValues', 'sameFileValues'],
] as const satisfies readonly (readonly [keyof SessionMessage, keyof SessionDelta])[];

export type SessionPart = (typeof SESSION_PARTS)[number][0];

/** Tasks in the order the dispatcher lists them. */
export const byTaskId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);

/**
 * The whole message a session's message stands for: itself when it is whole, else the delta
 * applied to `last` (the whole message before it). A delta with nothing to apply it to is a
 * broken session: the caller ends it, and the next session starts whole.
 */
export function applySessionDelta(last: SessionMessage | undefined, msg: SessionMessage): SessionMessage {
  const delta = msg.delta;
  if (!delta) return msg;
  if (!last) throw failedPrecondition('a session delta came before any whole message');
  const whole: SessionMessage = { ...msg, delta: undefined };
  const target = whole as unknown as Record<SessionPart, unknown>;
  for (const [part, same] of SESSION_PARTS) if (delta[same]) target[part] = last[part];
  const gone = new Set(delta.removedTaskIds);
  for (const t of msg.tasks) gone.add(t.id);
  whole.tasks = last.tasks.filter((t) => !gone.has(t.id)).concat(msg.tasks).sort(byTaskId);
  return whole;
}
