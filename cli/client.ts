import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { invalidArgument, unavailable } from '../services/common/errors';
import { fromServiceError } from '../services/api/grpc-errors';
import { callUnary } from '../services/api/handlers';
import { managerChannelOptions, managerClientCredentials } from '../services/api/tls';
import { ControlClient, LocalNodeClient } from '../services/gen/swarmlet/v1/control';

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
  if (opts.host.startsWith('unix://')) {
    const creds = grpc.credentials.createInsecure();
    const control = new ControlClient(opts.host, creds);
    const local = new LocalNodeClient(opts.host, creds);
    return { control, local, close: () => (control.close(), local.close()) };
  }
  if (!opts.certDir) throw invalidArgument('a tcp:// host needs --cert-dir with ca.pem, node.pem and node-key.pem');
  const read = (f: string) => {
    const file = path.join(opts.certDir!, f);
    if (!fs.existsSync(file)) throw invalidArgument(`${file} does not exist`);
    return fs.readFileSync(file, 'utf8');
  };
  // An operator's directory (operator-cert --out) has cert.pem and key.pem; a node's data dir node.pem and node-key.pem.
  const operator = fs.existsSync(path.join(opts.certDir, 'cert.pem'));
  const creds = managerClientCredentials(read('ca.pem'), { certPem: read(operator ? 'cert.pem' : 'node.pem'), keyPem: read(operator ? 'key.pem' : 'node-key.pem') });
  const control = new ControlClient(opts.host.slice('tcp://'.length), creds, managerChannelOptions);
  return { control, close: () => control.close() };
}

/** Calls a unary method; a failure becomes a SwarmletError whose message names the daemon when it cannot be reached. */
export async function call<Req, Res>(client: grpc.Client, method: (req: Req, md: grpc.Metadata, o: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown, req: Req, host: string, timeoutMs = 60000): Promise<Res> {
  try {
    return await callUnary(method.bind(client), req, timeoutMs);
  } catch (err) {
    const e = err as grpc.ServiceError;
    if (e.code === grpc.status.UNAVAILABLE && /No connection established/.test(e.details ?? '')) {
      const why = /(ENOENT|ECONNREFUSED|EACCES|EHOSTUNREACH|ETIMEDOUT)/.exec(e.details)?.[1];
      throw unavailable(`cannot connect to the swarmlet daemon at ${host}${why ? ` (${why})` : ''}: is it running?`, err);
    }
    throw fromServiceError(err, `the call to ${host}`);
  }
}
