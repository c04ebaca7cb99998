/**
 * Opens the embedded resolver's UDP socket and TCP listener on 127.0.0.11:53 inside a task's
 * network namespace, for this process to serve. Node cannot setns, so a short-lived helper
 * (`nsenter --net=PATH node -e HELPER`) brings lo up if need be, binds both there and hands them
 * over the IPC channel (process.send(msg, handle): dgram and net handles both travel). The
 * sockets keep serving that namespace from here; the helper exits once we have them.
 */
import { ChildProcess, spawn } from 'node:child_process';
import type { Socket as UdpSocket } from 'node:dgram';
import type { Server } from 'node:net';
import { internal, notFound } from '../../services/common/errors';
import { EMBEDDED_DNS_ADDRESS, EMBEDDED_DNS_PORT } from './resolv-conf';
import { nsenterArgv } from '../network/netns-run';

const HELPER_SOURCE = `
'use strict';
const dgram = require('dgram'), net = require('net'), cp = require('child_process');
const [addr, port] = [process.argv[1], Number(process.argv[2])];
const fail = (err) => { process.send({ error: String(err && err.message || err) }); process.exit(1); };
function bindUdp(retry) {
  const u = dgram.createSocket('udp4');
  u.once('error', (err) => {
    u.close();
    if (err.code === 'EADDRNOTAVAIL' && retry) {
      try { cp.execFileSync('ip', ['link', 'set', 'lo', 'up'], { stdio: 'ignore' }); } catch (e) { return fail(e); }
      return bindUdp(false);
    }
    fail(err);
  });
  u.bind(port, addr, () => {
    const s = net.createServer();
    s.once('error', fail);
    s.listen({ host: addr, port, exclusive: true }, () => {
      process.send({ kind: 'udp' }, u);
      process.send({ kind: 'tcp' }, s);
    });
  });
}
process.on('disconnect', () => process.exit(0));
bindUdp(true);
`;

const TIMEOUT_MS = 10000;
const STDERR_CAP = 2048;

export interface NetnsDnsSockets {
  udp: UdpSocket;
  tcp: Server;
}

/** The resolver's sockets in the namespace at `netnsPath`; rejects with the reason when they cannot be had. */
export function openNetnsDnsSockets(netnsPath: string): Promise<NetnsDnsSockets> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      const [cmd, ...args] = nsenterArgv(netnsPath, [process.execPath, '-e', HELPER_SOURCE, EMBEDDED_DNS_ADDRESS, String(EMBEDDED_DNS_PORT)]);
      child = spawn(cmd, args, {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
    } catch (err) {
      reject(internal(`cannot start the DNS socket helper for ${netnsPath}`, err));
      return;
    }
    let udp: UdpSocket | undefined;
    let tcp: Server | undefined;
    let stderr = '';
    let settled = false;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (stderr.length < STDERR_CAP) stderr += chunk.slice(0, STDERR_CAP - stderr.length);
    });
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.connected) child.disconnect();
      if (err) {
        udp?.close();
        tcp?.close();
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        reject(err);
      } else resolve({ udp: udp!, tcp: tcp! });
    };
    const timer = setTimeout(() => finish(internal(`the DNS socket helper for ${netnsPath} did not answer in time`)), TIMEOUT_MS);
    child.once('error', (err) => finish(internal(`cannot run nsenter: ${err.message}`, err)));
    child.once('exit', (code, signal) => {
      const text = stderr.trim();
      const reason = text || `the helper exited with ${signal ?? `code ${code}`}`;
      finish(/No such file/.test(text) ? notFound(`netns ${netnsPath}: ${reason}`) : internal(`DNS sockets in ${netnsPath}: ${reason}`));
    });
    child.on('message', (msg: { kind?: string; error?: string }, handle: unknown) => {
      if (msg.error) return finish(internal(`DNS sockets in ${netnsPath}: ${msg.error}`));
      if (msg.kind === 'udp') udp = handle as UdpSocket;
      if (msg.kind === 'tcp') tcp = handle as Server;
      if (udp && tcp) finish();
    });
  });
}
