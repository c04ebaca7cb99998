/**
 * A server-streaming call that fails (a `logs` of a container that is gone) ends with its status at
 * the client, through a real grpc-js server and client on a unix socket: failCall on a stream used
 * to destroy it, grpc-js then sent no status, and the client (`run --rm`'s last log read) waited on.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { failCall } from '../../services/api/tls';
import { notFound } from '../../services/common/errors';
import { ContainerLogLine, ContainerLogsRequest, LocalNodeClient, LocalNodeServer, LocalNodeService } from '../../services/gen/swarmlet/v1/control';

let dir: string;
let server: grpc.Server;
let client: LocalNodeClient;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swl-failed-streams-'));
  server = new grpc.Server();
  const service: Partial<LocalNodeServer> = {
    // One line, then the failure, as a follow whose container goes; or the failure at once.
    containerLogs: (call: grpc.ServerWritableStream<ContainerLogsRequest, ContainerLogLine>) => {
      if (call.request.follow) call.write({ line: 'hi', stream: 'stdout', time: '', partial: false });
      setImmediate(() => failCall(call, undefined, notFound(`No such container: ${call.request.container}`)));
    },
  };
  server.addService(LocalNodeService, service as LocalNodeServer);
  const socket = `unix://${path.join(dir, 'local.sock')}`;
  await new Promise<void>((resolve, reject) => server.bindAsync(socket, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  client = new LocalNodeClient(socket, grpc.credentials.createInsecure());
});

afterAll(() => {
  client?.close();
  server?.forceShutdown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The lines a logs call gave and how it ended. */
function logs(follow: boolean): Promise<{ lines: string[]; code: number | undefined; details: string | undefined }> {
  return new Promise((resolve) => {
    const lines: string[] = [];
    const stream = client.containerLogs({ container: 'gone', follow, tail: -1, since: '' });
    stream.on('data', (m: ContainerLogLine) => lines.push(m.line));
    stream.on('error', (err: grpc.ServiceError) => resolve({ lines, code: err.code, details: err.details }));
    stream.on('end', () => resolve({ lines, code: undefined, details: undefined }));
  });
}

test('a stream failed at once ends with its status', async () => {
  expect(await logs(false)).toEqual({ lines: [], code: grpc.status.NOT_FOUND, details: 'No such container: gone' });
});

test('a stream failed after a message ends with its status, the message given', async () => {
  expect(await logs(true)).toEqual({ lines: ['hi'], code: grpc.status.NOT_FOUND, details: 'No such container: gone' });
});
