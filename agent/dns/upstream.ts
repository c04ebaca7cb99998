/**
 * Forwarding to the upstream resolvers, from this process's own network namespace (the host's):
 * UDP queries over UDP, TCP queries over TCP, each upstream in order with a timeout, the first
 * answer relayed as it came (TC bit and all). Undefined when none answered.
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect, isIP } from 'node:net';
import { invalidArgument } from '../../services/common/errors';
import { parseResolvConfNameservers } from './resolv-conf';

export const UPSTREAM_TIMEOUT_MS = 2000;
const MAX_TCP_MESSAGE = 65535;

export interface Upstream {
  host: string;
  port: number;
}

/** 'ip', 'ip:port', '[v6]:port' or a bare IPv6 address. */
export function parseUpstream(text: string): Upstream {
  const s = text.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  const v4 = /^([\d.]+)(?::(\d+))?$/.exec(s);
  const [host, port] = bracketed ? [bracketed[1], bracketed[2]] : v4 ? [v4[1], v4[2]] : [s, undefined];
  const p = port === undefined ? 53 : Number(port);
  if (!isIP(host) || !Number.isInteger(p) || p < 1 || p > 65535) {
    throw invalidArgument(`DNS upstream ${JSON.stringify(text)} is not valid: use IP or IP:PORT`);
  }
  return { host, port: p };
}

/** The nameservers of the host's resolv.conf (none when it cannot be read). */
export function readHostUpstreams(path = '/etc/resolv.conf'): Upstream[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return parseResolvConfNameservers(text).flatMap((ns) => {
    try {
      return [parseUpstream(ns.includes(':') ? `[${ns}]` : ns)];
    } catch {
      return [];
    }
  });
}

function udpOnce(query: Buffer, up: Upstream, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const sock = createSocket(isIP(up.host) === 6 ? 'udp6' : 'udp4');
    let finished = false;
    const done = (reply?: Buffer) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.close();
      resolve(reply);
    };
    const timer = setTimeout(() => done(), timeoutMs);
    sock.on('error', () => done());
    // The answer must carry the query's id (the upstream echoes the bytes we relay).
    sock.on('message', (msg) => {
      if (msg.length >= 12 && msg.readUInt16BE(0) === query.readUInt16BE(0)) done(msg);
    });
    // Connected: an ICMP "port unreachable" ends the wait at once.
    sock.connect(up.port, up.host, () => sock.send(query, (err) => err && done()));
  });
}

function tcpOnce(query: Buffer, up: Upstream, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const sock = connect({ host: up.host, port: up.port });
    let buf = Buffer.alloc(0);
    const done = (reply?: Buffer) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(reply);
    };
    const timer = setTimeout(() => done(), timeoutMs);
    sock.on('error', () => done());
    sock.on('close', () => done());
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > MAX_TCP_MESSAGE + 2) return done();
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
  });
}

/** The first upstream answer to a query (raw bytes, as the client sent them), tried in order. */
export async function forwardQuery(query: Buffer, upstreams: Upstream[], protocol: 'udp' | 'tcp', timeoutMs = UPSTREAM_TIMEOUT_MS): Promise<Buffer | undefined> {
  if (query.length < 12) return undefined;
  for (const up of upstreams) {
    const reply = protocol === 'udp' ? await udpOnce(query, up, timeoutMs) : await tcpOnce(query, up, timeoutMs);
    if (reply) return reply;
  }
  return undefined;
}
