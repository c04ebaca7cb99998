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

/** Standard gRPC health checking and server reflection, so grpcurl and grpc_health_probe work. */
export function addStandardServices(server: grpc.Server, services: string[]): HealthImplementation {
  const health = new HealthImplementation(Object.fromEntries([['', 'SERVING'], ...services.map((s) => [s, 'SERVING'])]));
  health.addToServer(server);
  new ReflectionService(loadFileDescriptorSetFromBuffer(descriptorSet())).addToServer(server);
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
