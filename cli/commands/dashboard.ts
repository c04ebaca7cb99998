import type { Argv } from 'yargs';
import { call } from '../client';
import { json, wantsJson } from '../format';
import { GlobalArgs, out, withClients } from './context';

/** The page's address with the token in its fragment: a browser never sends the fragment, the page reads it and then drops it from the address bar. */
export const dashboardLink = (url: string, token: string) => `${url}#token=${token}`;

export function dashboardCommand(y: Argv<GlobalArgs>) {
  return y.command(
    'dashboard',
    'Show the web dashboard\'s address with its access token (or rotate the token)',
    (a) =>
      a
        .option('rotate', { type: 'boolean', default: false, describe: 'Replace the token: the old one stops working on every manager, and open pages must load the new link' })
        .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Print the token only' }),
    async (argv) => {
      await withClients(argv, async (c, host) => {
        const res = await call(c.control, c.control.getDashboardToken, { rotate: argv.rotate }, host);
        if (argv.quiet) return out(`${res.token}\n`);
        if (wantsJson(argv.format)) return out(json({ URL: res.url ? dashboardLink(res.url, res.token) : '', Token: res.token }));
        if (argv.rotate) out('Successfully rotated the dashboard token.\n\n');
        if (!res.url) {
          out('This manager serves no dashboard: start its daemon with --dashboard-addr :PORT (or SWARMLET_DASHBOARD_ADDR, or "dashboardAddr" in daemon.json).\n');
          return out(`The token, which every manager that serves the dashboard takes:\n\n    ${res.token}\n`);
        }
        out(`Open the swarm's dashboard (HTTPS, with the swarm's own certificate: your browser will ask you to accept it):\n\n    ${dashboardLink(res.url, res.token)}\n\n`);
        out('The token is the same on every manager that serves the dashboard. "swarmlet dashboard --rotate" replaces it.\n');
      });
    },
  );
}
