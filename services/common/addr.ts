import { isIPv4 } from './cidr';
import { invalidArgument } from './errors';

export const DEFAULT_API_PORT = 2377;

export { isIPv4 };

/** Parses `IP[:PORT]` (IPv4), defaulting the port. InvalidArgument with the offending text otherwise. */
export function parseHostPort(text: string, defaultPort = DEFAULT_API_PORT, what = 'address'): { host: string; port: number } {
  const s = text.trim();
  const m = /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!m || !isIPv4(m[1])) throw invalidArgument(`invalid ${what} ${JSON.stringify(text)}: expected IPv4[:PORT]`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidArgument(`invalid port in ${what} ${JSON.stringify(text)}`);
  return { host: m[1], port };
}

export const formatHostPort = (host: string, port: number) => `${host}:${port}`;
