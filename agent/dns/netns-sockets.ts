/**
 * Opens the embedded resolver's UDP socket and TCP listener on 127.0.0.11:53 inside a task's
 * network namespace, for this process to serve. Node cannot setns, so the agent's namespace helper
 * (runtime/netns-ops.ts: one process for every namespace) binds both there, bringing lo up first,
 * and hands them over its IPC channel. The sockets keep serving that namespace from here.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import type { Server } from 'node:net';
import { internal, notFound } from '../../services/common/errors';
import { EMBEDDED_DNS_ADDRESS, EMBEDDED_DNS_PORT } from './resolv-conf';
import { Netlink } from '../network/netlink';
import { errnoOf } from '../network/netlink/errors';

export interface NetnsDnsSockets {
  udp: UdpSocket;
  tcp: Server;
}

/** The resolver's sockets in the namespace at `netnsPath`; rejects with the reason when they cannot be had. */
export async function openNetnsDnsSockets(netnsPath: string): Promise<NetnsDnsSockets> {
  let nl: Netlink;
  try {
    nl = await Netlink.inNetns(netnsPath);
  } catch (err) {
    const message = (err as Error).message;
    throw errnoOf(err) === 'ENOENT' ? notFound(`netns ${netnsPath}: ${message}`, err) : internal(`DNS sockets in ${netnsPath}: ${message}`, err);
  }
  try {
    return await nl.openSockets(EMBEDDED_DNS_ADDRESS, EMBEDDED_DNS_PORT);
  } catch (err) {
    throw internal(`DNS sockets in ${netnsPath}: ${(err as Error).message}`, err);
  } finally {
    nl.close();
  }
}
