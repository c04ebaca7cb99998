import { cliHost } from '../../services/config/config';
import { Clients, connect } from '../client';

export interface GlobalArgs {
  host?: string;
  certDir?: string;
  format?: string;
}

/** Runs `fn` with clients for the chosen daemon, and closes them after. */
export async function withClients<T>(argv: GlobalArgs, fn: (c: Clients, host: string) => Promise<T>): Promise<T> {
  // Given twice (say, a wrapper's -H and the user's), the last one wins.
  const flag = ([] as (string | undefined)[]).concat(argv.host).at(-1);
  const host = cliHost(flag);
  const clients = connect({ host, certDir: argv.certDir });
  try {
    return await fn(clients, host);
  } finally {
    clients.close();
  }
}

export const out = (s: string) => process.stdout.write(s);
