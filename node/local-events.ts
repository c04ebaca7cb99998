import type { EventEmitter } from 'node:events';
import type { ContainerEvent } from '../agent/containers/containers';
import { EventFilter, eventMs, planContainerEvent } from '../manager/events/event-plans';
import { EventSource } from '../manager/events/event-stream';
import { Event, EventsRequest } from '../services/gen/swarmlet/v1/control';

/** How many recent container events a node keeps for `events --since TIME`. */
export const LOCAL_EVENT_HISTORY_SIZE = 1000;

/**
 * This node's container events (create, start, die, destroy), from its container service, with the
 * latest kept for a time-based `since`. A revision-based `since` is about cluster events only: it
 * replays none of these.
 */
export class LocalEvents implements EventSource {
  private readonly history: Event[] = [];
  private readonly listeners = new Set<(e: Event) => void>();

  constructor(containers: EventEmitter, private readonly size = LOCAL_EVENT_HISTORY_SIZE) {
    containers.on('event', (c: ContainerEvent) => {
      const e = planContainerEvent(c, new Date().toISOString());
      this.history.push(e);
      if (this.history.length > this.size) this.history.shift();
      for (const l of this.listeners) l(e);
    });
  }

  async stream(req: EventsRequest, filter: EventFilter, write: (e: Event) => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    if (filter.sinceMs !== undefined && !req.sinceRevision) for (const e of this.history) if (eventMs(e) >= filter.sinceMs) write(e);
    this.listeners.add(write);
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      signal.addEventListener('abort', () => resolve(), { once: true });
      const wait = filter.untilMs === undefined ? undefined : filter.untilMs - Date.now();
      if (wait !== undefined && wait < 2 ** 31 - 1) timer = setTimeout(resolve, Math.max(0, wait));
    });
    clearTimeout(timer);
    this.listeners.delete(write);
  }
}
