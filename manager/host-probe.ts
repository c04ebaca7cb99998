import * as net from 'node:net';
import { DEFAULT_API_PORT, parseHostPort } from '../services/common/addr';
import { Node } from '../services/gen/swarmlet/v1/types';

/** How long a probe waits for a host's answer. Hosts of a swarm share a LAN: an answer takes far less. */
export const HOST_PROBE_TIMEOUT_MS = 300;

/** Whether a host is up, asked at its address: true when its kernel answers, false when nothing does, undefined when it cannot be asked. */
export type HostProbe = (node: Node) => Promise<boolean | undefined>;

/** Where a node's host is asked: its API address (IP:PORT), else its advertise address on the default API port. */
export function probeTarget(node: Node): { host: string; port: number } | undefined {
  try {
    if (node.status?.apiAddr) return parseHostPort(node.status.apiAddr);
    if (node.status?.addr) return parseHostPort(node.status.addr, DEFAULT_API_PORT);
  } catch {
    // an address it cannot parse: not asked
  }
  return undefined;
}

/**
 * Asks a node's host with a TCP handshake to its daemon's port. A handshake, or a refusal (the
 * daemon is not listening: restarting), both come from the host's kernel: the host is up. A
 * timeout, or no route, says it is down or cut off. A daemon whose event loop is busy still
 * answers: the kernel completes the handshake.
 */
export const probeHost: HostProbe = (node) => {
  const target = probeTarget(node);
  if (!target) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    let done = false;
    const settle = (answers: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answers);
    };
    const socket = net.connect({ host: target.host, port: target.port });
    socket.once('connect', () => settle(true));
    socket.once('error', (err: NodeJS.ErrnoException) => settle(err.code === 'ECONNREFUSED'));
    // An answer that came while this process was busy is read first (I/O callbacks run before setImmediate's).
    const timer = setTimeout(() => setImmediate(() => settle(false)), HOST_PROBE_TIMEOUT_MS);
    timer.unref();
  });
};
