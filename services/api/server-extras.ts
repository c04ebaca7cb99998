import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadFileDescriptorSetFromBuffer } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';

/** The descriptor set protoc wrote next to the generated code (services/gen), found from source or dist. */
function descriptorSet(): Buffer {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'services', 'gen', 'descriptor.bin');
    if (fs.existsSync(candidate)) return fs.readFileSync(candidate);
  }
  throw new Error('services/gen/descriptor.bin not found: run npm run build');
}

/**
 * The largest request message a node's servers (TCP and unix socket) accept: 4 MiB, grpc-js's own
 * default, set here so it is stated once. A larger one is refused with RESOURCE_EXHAUSTED before any
 * handler runs. Image build contexts and terminal input travel as streams of smaller chunks.
 */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/**
 * How long a connection with no call in progress is kept: 60 s. grpc-js's default is 30 minutes,
 * and it turns off node's own HTTP/2 timeout, so a client that completes TLS on port 2377 (no
 * certificate is needed to get that far: a joining node has none) and then sends nothing, or half
 * a preface, held its socket for half an hour. A client that is merely quiet loses nothing: grpc-js
 * channels reconnect on their next call, and an agent's session is a call in progress.
 */
export const IDLE_CONNECTION_MS = 60_000;

/**
 * The options of a node's gRPC servers: keepalive pings from idle clients allowed, the request size
 * limit, and the idle bound. No channelz: nothing here serves it, and grpc-js keeps its bookkeeping
 * (per connection, per call and per message) only while it is on.
 */
export const NODE_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.enable_channelz': 0,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5000,
  'grpc.max_receive_message_length': MAX_REQUEST_BYTES,
  'grpc.max_connection_idle_ms': IDLE_CONNECTION_MS,
};

let reflection: ReflectionService | undefined;

/**
 * The server reflection service, made once per process: parsing the descriptor set is most of a
 * server's setup (1.1-1.4 s of a `swarm join` on a loaded lab host, whose unix socket server had
 * parsed it already).
 */
export function reflectionService(): ReflectionService {
  reflection ??= new ReflectionService(loadFileDescriptorSetFromBuffer(descriptorSet()));
  return reflection;
}

/** Standard gRPC health checking and server reflection, so grpcurl and grpc_health_probe work. */
export function addStandardServices(server: grpc.Server, services: string[]): HealthImplementation {
  const health = new HealthImplementation(Object.fromEntries([['', 'SERVING'], ...services.map((s) => [s, 'SERVING'])]));
  health.addToServer(server);
  reflectionService().addToServer(server);
  return health;
}

export function bindServer(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))));
}

export function shutdownServer(server: grpc.Server, graceMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
