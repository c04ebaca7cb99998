import type * as grpc from '@grpc/grpc-js';
import { failCall } from '../../services/api/tls';
import { Event, EventsRequest } from '../../services/gen/swarmlet/v1/control';
import { eventMatches, EventFilter, planEventFilter } from './event-plans';

/** Where events come from: the cluster's (the store's watch) or a node's own (its containers). */
export interface EventSource {
  /** Sends the events of `req` to `write` (filtered by the caller) until `signal` aborts or, past `until`, it has sent all before it; rejects if it cannot go on. */
  stream(req: EventsRequest, filter: EventFilter, write: (e: Event) => void, signal: AbortSignal): Promise<void>;
}

/**
 * The Events RPC over some sources: events that pass the request's filters, as they come, until
 * every source has sent what happened before `until` (then the stream ends well) or the client cancels. A bad request fails at once with
 * INVALID_ARGUMENT; a source that fails ends the stream with its status.
 */
export function eventsHandler(sources: () => EventSource[]): grpc.handleServerStreamingCall<EventsRequest, Event> {
  return (call) => {
    let filter: EventFilter;
    try {
      filter = planEventFilter(call.request);
    } catch (err) {
      return failCall(call, undefined, err);
    }
    const controller = new AbortController();
    let ended = false;
    const finish = (err?: unknown) => {
      if (ended) return;
      ended = true;
      controller.abort();
      if (err === undefined) call.end();
      else failCall(call, undefined, err);
    };
    call.on('cancelled', () => finish());
    const write = (e: Event) => {
      if (!ended && eventMatches(filter, e)) call.write(e);
    };
    void Promise.all(sources().map((s) => s.stream(call.request, filter, write, controller.signal))).then(
      () => finish(),
      (err) => finish(err),
    );
  };
}
