/**
 * Events, as pure plans: what a change of a stored object means as docker-style events, which
 * events a request's filters keep, and how an event prints (docker's line, JSON, a template).
 */
import { invalidArgument } from '../../services/common/errors';
import { execute, parseTemplate } from '../../services/common/go-template';
import { Event, EventsRequest } from '../../services/gen/swarmlet/v1/control';
import { Config, Network, Node, NodeAvailability, Secret, Service, Task, UpdateState } from '../../services/gen/swarmlet/v1/types';
import { enumLabel, nodeRoleLabel, nodeStateLabel, taskStateLabel } from '../../services/metrics/metric-plans';
import { isCanonicalTime } from '../../services/common/iso-time';
import { ROOT } from '../store/keys';
import type { ObjectChange } from '../store/store';

export const EVENT_TYPES = ['service', 'node', 'task', 'network', 'secret', 'config', 'container'] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export const EVENT_ACTIONS = ['create', 'update', 'remove', 'start', 'die', 'destroy'] as const;

/** One change of a key, as the store's watch delivers it (values as stored: JSON). */
export interface StoreChange {
  key: string;
  kind: 'put' | 'delete';
  value?: string;
  previous?: string;
  revision: number;
}

/**
 * What a task's events read of it (its names, node, states and time): every task write is an event
 * to decode, and its spec, addresses and the rest are left out of the decoding.
 */
const TASK_EVENT_FIELDS = ['id', 'meta', 'serviceId', 'serviceName', 'slot', 'nodeId', 'desiredState', 'status'];
const taskEventFields = (o: unknown): unknown => {
  if (typeof o !== 'object' || o === null) return o;
  const all = o as Record<string, unknown>;
  const picked: Record<string, unknown> = {};
  for (const f of TASK_EVENT_FIELDS) if (f in all) picked[f] = all[f];
  return picked;
};

/** The prefixes whose objects make events, and how each is read. */
const KINDS: { prefix: string; type: EventType; decode: (o: unknown) => Versioned }[] = [
  { prefix: `${ROOT}services/`, type: 'service', decode: (o) => Service.fromJSON(o) },
  { prefix: `${ROOT}nodes/`, type: 'node', decode: (o) => Node.fromJSON(o) },
  { prefix: `${ROOT}tasks/`, type: 'task', decode: (o) => Task.fromJSON(taskEventFields(o)) },
  { prefix: `${ROOT}networks/`, type: 'network', decode: (o) => Network.fromJSON(o) },
  { prefix: `${ROOT}secrets/`, type: 'secret', decode: (o) => Secret.fromJSON(o) },
  { prefix: `${ROOT}configs/`, type: 'config', decode: (o) => Config.fromJSON(o) },
];

interface Versioned {
  id: string;
  meta?: { updatedAt: string };
}

/** Attributes in the order they print: name first, then each change as `x.old`, `x.new`. */
type Attrs = [string, string][];

const replicasOf = (s: Service) => (s.spec?.mode?.$case === 'replicated' ? String(s.spec.mode.value.replicas) : s.spec?.mode?.$case ?? '');
const imageOf = (s: Service) => s.spec?.task?.container?.image ?? '';
const updateStateOf = (s: Service) => (s.updateStatus?.state ? (UpdateState[s.updateStatus.state] ?? '').replace(/^UPDATE_STATE_/, '').toLowerCase() : '');
const taskName = (t: Task) => `${t.serviceName}.${t.slot || t.nodeId}`;
const availabilityOf = (n: Node) => enumLabel(NodeAvailability[n.spec?.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE]);

/** `key.old` and `key.new` when `of` differs between the two. */
function changed<T>(attrs: Attrs, key: string, before: T, after: T, of: (x: T) => string): boolean {
  const [a, b] = [of(before), of(after)];
  if (a === b) return false;
  attrs.push([`${key}.old`, a], [`${key}.new`, b]);
  return true;
}

function nameAttrs(type: EventType, o: Versioned): Attrs {
  switch (type) {
    case 'service':
      return [['name', (o as Service).spec?.name ?? '']];
    case 'node':
      return [['name', (o as Node).description?.hostname ?? '']];
    case 'task': {
      const t = o as Task;
      return [['name', taskName(t)], ['service', t.serviceName]];
    }
    case 'network':
      return [['name', (o as Network).spec?.name ?? ''], ['driver', (o as Network).spec?.driver ?? '']];
    default:
      return [['name', (o as Secret | Config).spec?.name ?? '']];
  }
}

/** What an update says, or undefined for a write that changed nothing an operator follows (an allocation, a heartbeat's description). */
function updateAttrs(type: EventType, before: Versioned, after: Versioned): Attrs | undefined {
  const attrs: Attrs = [];
  switch (type) {
    case 'service': {
      const [b, a] = [before as Service, after as Service];
      changed(attrs, 'replicas', b, a, replicasOf);
      changed(attrs, 'image', b, a, imageOf);
      changed(attrs, 'updatestate', b, a, updateStateOf);
      return attrs.length || b.specVersion !== a.specVersion ? attrs : undefined;
    }
    case 'node': {
      const [b, a] = [before as Node, after as Node];
      changed(attrs, 'state', b, a, (n) => nodeStateLabel(n.status?.state));
      changed(attrs, 'availability', b, a, availabilityOf);
      changed(attrs, 'role', b, a, (n) => nodeRoleLabel(n.role));
      if (attrs.some(([k]) => k === 'state.new') && a.status?.message) attrs.push(['message', a.status.message]);
      return attrs.length ? attrs : undefined;
    }
    case 'task': {
      const [b, a] = [before as Task, after as Task];
      const moved = changed(attrs, 'state', b, a, (t) => taskStateLabel(t.status?.state));
      changed(attrs, 'desiredstate', b, a, (t) => taskStateLabel(t.desiredState));
      if (!attrs.length) return undefined;
      if (moved) {
        if (a.nodeId) attrs.push(['node', a.nodeId]);
        if (a.status?.message) attrs.push(['message', a.status.message]);
        if (a.status?.err) attrs.push(['err', a.status.err]);
      }
      return attrs;
    }
    default:
      return attrs;
  }
}

const decodeAs = (decode: (o: unknown) => Versioned, value: string | undefined): Versioned | undefined => {
  if (value === undefined || value === '') return undefined;
  try {
    return decode(JSON.parse(value));
  } catch {
    return undefined;
  }
};

/**
 * The events of one change of a key: create (no previous value), update (what changed, or none
 * for writes nobody follows), remove. `now` is when it was seen; a write's time is its object's
 * `updatedAt` (the store sets it on every write), a removal's `now`.
 */
export function planStoreEvents(change: StoreChange, now: string): Event[] {
  const kind = kindOf(change.key);
  if (!kind) return [];
  const before = decodeAs(kind.decode, change.previous);
  const after = change.kind === 'put' ? decodeAs(kind.decode, change.value) : undefined;
  return eventsOf(kind, { ...change, before, after }, now);
}

/** planStoreEvents for a change whose objects are decoded already (as the stores decode them). */
export function planObjectEvents(change: ObjectChange, now: string): Event[] {
  const kind = kindOf(change.key);
  if (!kind) return [];
  return eventsOf(kind, { key: change.key, kind: change.kind, revision: change.revision, before: change.before as Versioned | undefined, after: change.kind === 'put' ? (change.after as Versioned | undefined) : undefined }, now);
}

const kindOf = (key: string) => KINDS.find((k) => key.startsWith(k.prefix) && !key.slice(k.prefix.length).includes('/'));

function eventsOf(kind: (typeof KINDS)[number], change: { key: string; kind: 'put' | 'delete'; revision: number; before?: Versioned; after?: Versioned }, now: string): Event[] {
  const { before, after } = change;
  const id = after?.id ?? before?.id ?? change.key.slice(kind.prefix.length);
  const event = (action: string, attrs: Attrs, time: string): Event => ({
    type: kind.type,
    action,
    actorId: id,
    attributes: Object.fromEntries(attrs),
    scope: 'swarm',
    time: toNanoTime(time || now),
    revision: change.revision,
  });
  if (change.kind === 'delete') return before ? [event('remove', nameAttrs(kind.type, before), now)] : [event('remove', [], now)];
  if (!after) return [];
  if (!before) return [event('create', nameAttrs(kind.type, after), after.meta?.updatedAt ?? now)];
  const attrs = updateAttrs(kind.type, before, after);
  return attrs ? [event('update', [...nameAttrs(kind.type, after), ...attrs], after.meta?.updatedAt ?? now)] : [];
}

/** An RFC 3339 time with nanoseconds, as docker prints: `2026-12-05T08:00:00.000000000Z`. */
export function toNanoTime(time: string): string {
  // What the store writes (toISOString): its milliseconds padded, with no parsing (every task write is an event).
  if (isCanonicalTime(time)) return `${time.slice(0, 23)}000000Z`;
  if (/\.\d{9}Z$/.test(time)) return time;
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) return time;
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

/** Milliseconds since the epoch of an event's time (its nanoseconds cut to milliseconds). */
export const eventMs = (e: Pick<Event, 'time'>) => Date.parse(e.time);

/** What a request keeps: types and actions (empty: all), and the time window. */
export interface EventFilter {
  types: Set<string>;
  actions: Set<string>;
  sinceMs?: number;
  untilMs?: number;
}

/** The request's filters, checked: InvalidArgument for an unknown type or a bad time. */
export function planEventFilter(req: EventsRequest): EventFilter {
  const bad = req.types.find((t) => !(EVENT_TYPES as readonly string[]).includes(t));
  if (bad !== undefined) throw invalidArgument(`invalid event type ${JSON.stringify(bad)}: one of ${EVENT_TYPES.join(', ')}`);
  const action = req.actions.find((a) => !/^[a-z_]{1,32}$/.test(a));
  if (action !== undefined) throw invalidArgument(`invalid event ${JSON.stringify(action)}: a word such as ${EVENT_ACTIONS.join(', ')}`);
  if (req.sinceRevision < 0) throw invalidArgument(`invalid revision ${req.sinceRevision}: 1 or more`);
  const time = (text: string, what: string) => {
    if (!text) return undefined;
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) throw invalidArgument(`invalid ${what} time ${JSON.stringify(text)}: expected RFC 3339`);
    return ms;
  };
  const sinceMs = time(req.sinceTime, 'since');
  const untilMs = time(req.untilTime, 'until');
  if (sinceMs !== undefined && untilMs !== undefined && untilMs < sinceMs) throw invalidArgument('--until is before --since');
  return { types: new Set(req.types), actions: new Set(req.actions), sinceMs, untilMs };
}

export function eventMatches(f: EventFilter, e: Event): boolean {
  if (f.types.size && !f.types.has(e.type)) return false;
  if (f.actions.size && !f.actions.has(e.action)) return false;
  const ms = eventMs(e);
  if (f.sinceMs !== undefined && ms < f.sinceMs) return false;
  if (f.untilMs !== undefined && ms > f.untilMs) return false;
  return true;
}

/** Docker's line: `TIME TYPE ACTION ID (k=v, k=v)`, the attributes sorted by key as docker sorts them. */
export function formatEventLine(e: Event): string {
  const attrs = Object.entries(e.attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${e.time} ${e.type} ${e.action} ${e.actorId}${attrs.length ? ` (${attrs.map(([k, v]) => `${k}=${v}`).join(', ')})` : ''}`;
}

/** The event as docker's `--format '{{json .}}'` prints it (with the store revision, to resume from). */
export function eventJson(e: Event): Record<string, unknown> {
  const ms = eventMs(e);
  const nanos = BigInt(ms) * 1000000n + BigInt(Number(/\.\d{3}(\d{6})Z$/.exec(e.time)?.[1] ?? 0));
  return {
    Type: e.type,
    Action: e.action,
    Actor: { ID: e.actorId, Attributes: e.attributes },
    scope: e.scope,
    time: Math.floor(ms / 1000),
    timeNano: Number(nanos),
    revision: e.revision,
  };
}

/**
 * `--format TEMPLATE` for events (`{{.Type}} {{.Action}} {{.Actor.Attributes.name}}`, `{{json .}}`),
 * with the CLI's Go-template subset; a broken template is refused before anything streams.
 */
export function planEventTemplate(template: string): (e: Event) => string {
  const t = parseTemplate(template);
  const doc = (e: Event) => ({ ...eventJson(e), ID: e.actorId, Attributes: e.attributes });
  // Run once on an empty event, so that an unknown field is refused before anything streams.
  execute(t, doc({ time: new Date(0).toISOString(), type: '', action: '', actorId: '', attributes: {}, scope: '', revision: 0 } as Event));
  return (e) => execute(t, doc(e));
}

/** A store revision or a time, as `--since` takes it: a whole number under 10^9 is a revision; else a time. */
export function planSince(text: string, now: number): { sinceRevision: number; sinceTime: string } {
  const s = text.trim();
  if (/^\d+$/.test(s) && Number(s) < 1e9) {
    if (Number(s) < 1) throw invalidArgument(`invalid --since ${JSON.stringify(text)}: a revision is 1 or more`);
    return { sinceRevision: Number(s), sinceTime: '' };
  }
  return { sinceRevision: 0, sinceTime: planTime(s, now, '--since') };
}

/** Docker's times: RFC 3339 (a date alone too), Unix seconds (with a fraction), or a duration back from now (10m, 1h30m). */
export function planTime(text: string, now: number, flag: string): string {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return new Date(Math.round(Number(s) * 1000)).toISOString();
  const dur = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$/.exec(s);
  if (dur && s) return new Date(now - ((Number(dur[1] ?? 0) * 60 + Number(dur[2] ?? 0)) * 60 + Number(dur[3] ?? 0)) * 1000).toISOString();
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(s) && !Number.isNaN(Date.parse(s))) return new Date(Date.parse(s)).toISOString();
  throw invalidArgument(`invalid ${flag} ${JSON.stringify(text)}: a time (2026-12-05T08:00:00Z, Unix seconds), a duration back from now (10m), or a store revision`);
}


/** A node's container event, in docker's shape: `container die ID (name=web, image=busybox, exitCode=1)`. */
export function planContainerEvent(c: { action: string; id: string; name: string; image: string; exitCode: number }, now: string): Event {
  const attributes: Record<string, string> = { name: c.name, image: c.image };
  if (c.action === 'die') attributes.exitCode = String(c.exitCode);
  return { type: 'container', action: c.action, actorId: c.id, attributes, scope: 'local', time: toNanoTime(now), revision: 0 };
}
