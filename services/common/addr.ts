import { invalidArgument } from './errors';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export const DEFAULT_API_PORT = 2377;

export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}

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
