import * as grpc from '@grpc/grpc-js';
import { addStandardServices, reflectionService } from '../../services/api/server-extras';

describe('addStandardServices', () => {
  test('the descriptor set is parsed once per process: a second server (the TCP one a join starts) reuses its reflection service', () => {
    const servers = [new grpc.Server(), new grpc.Server()];
    for (const s of servers) addStandardServices(s, ['swarmlet.v1.Control']);
    expect(reflectionService()).toBe(reflectionService());
    for (const s of servers) s.forceShutdown();
  });
});
