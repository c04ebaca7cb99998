import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { invalidArgument, unavailable } from '../services/common/errors';
import type { ControlClient, LocalNodeClient } from '../services/gen/swarmlet/v1/control';

// grpc-js, the generated Control API and the TLS helpers (x509) cost most of a CLI call's start-up, and
// --help, --version or a bad flag never use them: they load on first use, once.
export const grpcJs = (): typeof import('@grpc/grpc-js') => require('@grpc/grpc-js');
export const controlApi = (): typeof import('../services/gen/swarmlet/v1/control') => require('../services/gen/swarmlet/v1/control');
export const grpcErrors = (): typeof import('../services/api/grpc-errors') => require('../services/api/grpc-errors');

export interface Clients {
  control: ControlClient;
  local?: LocalNodeClient;
  close(): void;
}

export interface ConnectOptions {
  host: string;
  /** For tcp:// hosts: a directory with ca.pem and cert.pem + key.pem (an operator's) or node.pem + node-key.pem (a manager's data dir certs). */
  certDir?: string;
}

/** Connects to a daemon's unix socket (local API and Control), or a manager's TCP address (Control, mTLS). */
export function connect(opts: ConnectOptions): Clients {
  const { ControlClient, LocalNodeClient } = controlApi();
  if (opts.host.startsWith('unix://')) {
    const creds = grpcJs().credentials.createInsecure();
    const control = new ControlClient(opts.host, creds);
    const { LOCAL_API_MESSAGE_OPTIONS }: typeof import('../services/api/limits') = require('../services/api/limits');
    const local = new LocalNodeClient(opts.host, creds, LOCAL_API_MESSAGE_OPTIONS);
    return { control, local, close: () => (control.close(), local.close()) };
  }
  if (!opts.certDir) throw invalidArgument('a tcp:// host needs --cert-dir with ca.pem, node.pem and node-key.pem');
  const read = (f: string) => {
    const file = path.join(opts.certDir!, f);
    if (!fs.existsSync(file)) throw invalidArgument(`${file} does not exist`);
    return fs.readFileSync(file, 'utf8');
  };
  // An operator's directory (operator-cert --out) has cert.pem and key.pem; a node's data dir node.pem and node-key.pem.
  const { managerChannelOptions, managerClientCredentials }: typeof import('../services/api/tls') = require('../services/api/tls');
  const operator = fs.existsSync(path.join(opts.certDir, 'cert.pem'));
  const creds = managerClientCredentials(read('ca.pem'), { certPem: read(operator ? 'cert.pem' : 'node.pem'), keyPem: read(operator ? 'key.pem' : 'node-key.pem') });
  const control = new ControlClient(opts.host.slice('tcp://'.length), creds, managerChannelOptions);
  return { control, close: () => control.close() };
}

/** Calls a unary method; a failure becomes a SwarmletError whose message names the daemon when it cannot be reached. */
export async function call<Req, Res>(client: grpc.Client, method: (req: Req, md: grpc.Metadata, o: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown, req: Req, host: string, timeoutMs = 60000): Promise<Res> {
  try {
    const { callUnary }: typeof import('../services/api/handlers') = require('../services/api/handlers');
    return await callUnary(method.bind(client), req, timeoutMs);
  } catch (err) {
    throw callError(err, host);
  }
}

/** A failed call as a SwarmletError; its message names the daemon when it cannot be reached. */
export function callError(err: unknown, host: string): Error {
  const e = err as grpc.ServiceError;
  if (e.code === grpcJs().status.UNAVAILABLE && /No connection established/.test(e.details ?? '')) {
    const why = /(ENOENT|ECONNREFUSED|EACCES|EHOSTUNREACH|ETIMEDOUT)/.exec(e.details)?.[1];
    return unavailable(`cannot connect to the swarmlet daemon at ${host}${why ? ` (${why})` : ''}: is it running?`, err);
  }
  return grpcErrors().fromServiceError(err, `the call to ${host}`);
}
