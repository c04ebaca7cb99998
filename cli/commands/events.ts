import type { Argv } from 'yargs';
import { invalidArgument } from '../../services/common/errors';
import type { Event, EventsRequest } from '../../services/gen/swarmlet/v1/control';
import { callError, grpcJs } from '../client';
import { GlobalArgs, out, withClients } from './context';

type EventPlans = typeof import('../../manager/events/event-plans');

/** `--filter type=service --filter event=create` as the request's lists; InvalidArgument for anything else. */
export function planEventFilters(filters: string[]): Pick<EventsRequest, 'types' | 'actions'> {
  const types: string[] = [];
  const actions: string[] = [];
  for (const f of filters) {
    const m = /^(type|event)=(.+)$/.exec(f);
    if (!m) throw invalidArgument(`invalid filter ${JSON.stringify(f)}: expected type=TYPE or event=ACTION`);
    (m[1] === 'type' ? types : actions).push(m[2]);
  }
  return { types, actions };
}

/** How each event prints: docker's line, JSON (one object a line), or a template. */
function printerOf(format: string | undefined, plans: EventPlans): (e: Event) => string {
  const { eventJson, formatEventLine, planEventTemplate } = plans;
  if (!format || format === 'table') return formatEventLine;
  if (format === 'json') return (e) => JSON.stringify(eventJson(e));
  return planEventTemplate(format);
}

export function eventsCommand(y: Argv<GlobalArgs>) {
  return y.command(
    'events',
    'Stream cluster and node events (services, nodes, tasks, networks, secrets, configs, containers)',
    (a) =>
      a
        .option('since', { type: 'string', describe: 'From this time (RFC 3339, Unix seconds, or a duration back such as 10m), or after this store revision (the "revision" of --format json)' })
        .option('until', { type: 'string', describe: 'Stop at this time (same forms as --since, a revision excepted)' })
        .option('filter', { alias: 'f', type: 'string', array: true, default: [] as string[], describe: 'type=service|node|task|network|secret|config|container, event=create|update|remove|start|die|destroy' })
        .option('format', { type: 'string', describe: 'json (one object a line) or a template such as "{{.Type}} {{.Action}} {{.Actor.ID}}"' }),
    async (argv) => {
      // The plans (and the generated types they read) load when the command runs, not for every CLI call.
      const plans: EventPlans = require('../../manager/events/event-plans');
      const { planSince, planTime } = plans;
      const now = Date.now();
      const print = printerOf(argv.format as string | undefined, plans);
      const req: EventsRequest = {
        ...(argv.since ? planSince(argv.since, now) : { sinceRevision: 0, sinceTime: '' }),
        untilTime: argv.until ? planTime(argv.until, now, '--until') : '',
        ...planEventFilters(argv.filter as string[]),
      };
      await withClients(argv, async (c, host) => {
        await new Promise<void>((resolve, reject) => {
          const stream = c.control.events(req);
          // Ctrl-C ends the stream cleanly: what arrived is printed, the exit status is 0.
          const stop = () => {
            stream.cancel();
            resolve();
          };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          stream.on('data', (e: Event) => out(`${print(e)}\n`));
          stream.on('error', (err: Error & { code?: number }) => (err.code === grpcJs().status.CANCELLED ? resolve() : reject(callError(err, host))));
          stream.on('end', () => resolve());
        });
      });
    },
  );
}
