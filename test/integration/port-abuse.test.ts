/**
 * Abuse of a manager's TCP port (2377 on a node; here a free loopback port with the daemon's server
 * options and credentials): garbage bytes, TLS without a client certificate, a worker's certificate
 * calling Control, and a request over the size limit are each refused, and the manager serves a
 * good call after each. A real Manager against a real throwaway etcd.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { callUnary } from '../../services/api/handlers';
import { IDLE_CONNECTION_MS, MAX_REQUEST_BYTES, NODE_SERVER_OPTIONS } from '../../services/api/server-extras';
import { managerChannelOptions, managerClientCredentials } from '../../services/api/tls';
import { ControlClient } from '../../services/gen/swarmlet/v1/control';
import { NetworkSpec } from '../../services/gen/swarmlet/v1/types';
import { EtcdFixture, startEtcd } from './etcd-fixture';
import { startTlsManager, TlsManager } from './tls-manager';

const TEST_IDLE_MS = 1000;

let etcd: EtcdFixture;
let m: TlsManager;
let good: ControlClient;

beforeAll(async () => {
  etcd = await startEtcd();
  // The daemon's options, but connections with no call are closed after 1 s instead of a minute.
  m = await startTlsManager(etcd, { 'grpc.max_connection_idle_ms': TEST_IDLE_MS });
  good = m.control();
}, 60000);

afterAll(async () => {
  await m?.stop();
  await etcd?.stop();
});

/** The good call every refusal is followed by: the manager still serves. */
async function stillServes(): Promise<void> {
  const res = await callUnary(good.listNodes.bind(good), {});
  expect(res.nodes.map((n) => n.id)).toEqual(['m1', 'w1']);
}

/** The gRPC status a call ended with. */
async function statusOf(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error('expected the call to be refused');
}

/** Writes `bytes` on a fresh connection; resolves once the server has closed it. */
function sendAndWaitForClose(port: number, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.end(bytes));
    sock.on('data', () => undefined);
    sock.on('error', () => undefined);
    sock.on('close', () => resolve());
    sock.setTimeout(20000, () => {
      sock.destroy();
      reject(new Error('the server kept a garbage connection open'));
    });
  });
}

const port = () => Number(m.apiAddr.split(':')[1]);

test('garbage bytes, an HTTP/1 request and a half TLS hello on the port are dropped; the manager keeps serving', async () => {
  await stillServes();
  const garbage = [
    Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)),
    Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
    Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 0x01]),
    Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00'),
  ];
  for (const bytes of garbage) {
    await sendAndWaitForClose(port(), bytes);
    await stillServes();
  }
});

test('a TLS client without a certificate is refused Control with PERMISSION_DENIED; the manager keeps serving', async () => {
  const anonymous = new ControlClient(m.apiAddr, managerClientCredentials(m.ca.certPem), managerChannelOptions);
  try {
    const st = await statusOf(callUnary(anonymous.listNodes.bind(anonymous), {}));
    expect(st).toEqual({ code: grpc.status.PERMISSION_DENIED, details: 'a certificate issued by this cluster is required' });
  } finally {
    anonymous.close();
  }
  await stillServes();
  await stillServes();
});

test("a worker's certificate calling Control is refused with PERMISSION_DENIED; the manager keeps serving", async () => {
  const asWorker = m.control(m.workerCert);
  const st = await statusOf(callUnary(asWorker.listNodes.bind(asWorker), {}));
  expect(st).toEqual({ code: grpc.status.PERMISSION_DENIED, details: 'a manager or operator certificate is required; this one is for a worker' });
  const write = await statusOf(callUnary(asWorker.removeNode.bind(asWorker), { node: 'w1', force: true }));
  expect(write.code).toBe(grpc.status.PERMISSION_DENIED);
  await stillServes();
});

test(`a request over ${MAX_REQUEST_BYTES} bytes is refused with RESOURCE_EXHAUSTED and changes nothing; one just under it is read`, async () => {
  const before = await etcd.client.getAll().prefix('/swarmlet/v1/networks').strings();
  const big = 'x'.repeat(MAX_REQUEST_BYTES);
  const st = await statusOf(callUnary(good.createNetwork.bind(good), { spec: NetworkSpec.fromPartial({ name: 'big', driver: 'overlay', labels: { big } }) }));
  expect(st.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  expect(st.details).toMatch(/larger than max/);
  expect(await etcd.client.getAll().prefix('/swarmlet/v1/networks').strings()).toEqual(before);
  await stillServes();
  // Under the limit, the request is read and refused by the handler, in a status the client gets (not a 4 MiB trailer).
  const under = await statusOf(callUnary(good.getNode.bind(good), { node: 'y'.repeat(MAX_REQUEST_BYTES - 64) }));
  expect(under).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: `node reference is too long: ${MAX_REQUEST_BYTES - 64} characters, at most 255` });
  await stillServes();
});

/** Completes TLS without a client certificate, writes `bytes` (maybe none), and resolves with how long the server took to close the socket. */
function tlsIdleUntilClosed(port: number, bytes: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ port, host: '127.0.0.1', ca: m.ca.certPem, ALPNProtocols: ['h2'] }, () => {
      const start = Date.now();
      if (bytes.length > 0) sock.write(bytes);
      sock.on('close', () => resolve(Date.now() - start));
    });
    sock.on('data', () => undefined);
    sock.on('error', () => undefined);
    sock.setTimeout(30000, () => {
      sock.destroy();
      reject(new Error('the server kept an idle TLS connection open'));
    });
  });
}

test(`a TLS client that sends nothing, or half an HTTP/2 preface, is closed once the idle bound passes (${IDLE_CONNECTION_MS} ms on a node); the manager keeps serving`, async () => {
  expect(NODE_SERVER_OPTIONS['grpc.max_connection_idle_ms']).toBe(IDLE_CONNECTION_MS);
  const [silent, half] = await Promise.all([tlsIdleUntilClosed(port(), Buffer.alloc(0)), tlsIdleUntilClosed(port(), Buffer.from('PRI * HTTP/2.0\r\n'))]);
  // Closed by the idle bound, not at once by something else.
  expect(silent).toBeGreaterThanOrEqual(TEST_IDLE_MS - 50);
  expect(half).toBeGreaterThanOrEqual(TEST_IDLE_MS - 50);
  await stillServes();
  // A good client left quiet past the bound is closed too, and its next call reconnects.
  await new Promise((r) => setTimeout(r, 3 * TEST_IDLE_MS));
  await stillServes();
});
