/**
 * How a session tells its agent that the node was removed, through a real grpc-js server and
 * client on a unix socket: by a trailer, not by the wording of its message.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { endServerStream, isNodeRemoved, nodeRemovedStatus } from '../../services/api/grpc-errors';
import { DispatcherClient, DispatcherServer, DispatcherService, SessionMessage, SessionRequest } from '../../services/gen/swarmlet/v1/dispatcher';

let dir: string;
let server: grpc.Server;
let client: DispatcherClient;
/** How the next session the server opens ends. */
let ending: Error & Partial<grpc.ServiceError>;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swl-removed-'));
  server = new grpc.Server();
  const service: Partial<DispatcherServer> = {
    // The stream ends once the call is under way, as the dispatcher ends one after reading the store.
    session: (stream: grpc.ServerWritableStream<SessionRequest, SessionMessage>) => void setImmediate(() => endServerStream(stream, ending)),
  };
  server.addService(DispatcherService, service as DispatcherServer);
  const socket = `unix://${path.join(dir, 'dispatcher.sock')}`;
  await new Promise<void>((resolve, reject) => server.bindAsync(socket, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  client = new DispatcherClient(socket, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  server?.forceShutdown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Opens a session and returns the error it ends with. */
function sessionError(): Promise<grpc.ServiceError> {
  return new Promise((resolve) => {
    const stream = client.session({ description: undefined, advertiseAddr: '', apiAddr: '', acceptsDeltas: false });
    stream.on('data', () => undefined);
    stream.on('error', resolve);
  });
}

test('a removed node learns it from the trailer', async () => {
  ending = nodeRemovedStatus();
  const err = await sessionError();
  expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
  expect(err.details).toBe('this node was removed from the swarm');
  expect(isNodeRemoved(err)).toBe(true);
});

test('another refusal is not a removal, whatever its message says', async () => {
  ending = Object.assign(new Error('x'), { code: grpc.status.PERMISSION_DENIED, details: 'certificate of a removed CA refused' });
  const err = await sessionError();
  expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
  expect(isNodeRemoved(err)).toBe(false);
});
