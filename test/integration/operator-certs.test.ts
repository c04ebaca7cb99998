/** The operator certificate registry against a real etcd: its failures are the store's kinds, not etcd's words. */
import { SwarmletError } from '../../services/common/errors';
import { OperatorCertRegistry } from '../../manager/store/operator-certs';
import { EtcdFixture, fixtureClient, startEtcd } from './etcd-fixture';

let etcd: EtcdFixture | undefined;

afterEach(async () => {
  await etcd?.stop();
  etcd = undefined;
});

test('records, revokes and lists; with etcd gone, each call fails Unavailable (what the quorum guard names), not with a raw etcd error', async () => {
  etcd = await startEtcd();
  const client = fixtureClient([etcd.endpoint]);
  try {
    const registry = new OperatorCertRegistry(client);
    await registry.record({ serial: '0a1b', name: 'ops', notAfter: '2027-12-05T00:00:00.000Z', issuedAt: '2026-12-05T00:00:00.000Z' });
    await registry.revoke('0a1b', new Date('2026-12-06T00:00:00.000Z'));
    expect([...(await registry.revokedSerials())]).toEqual(['0a1b']);
    await etcd.stop();
    etcd = undefined;
    for (const call of [() => registry.revokedSerials(), () => registry.revoke('0a1b', new Date()), () => registry.record({ serial: '0c2d', name: 'x', notAfter: '', issuedAt: '' })]) {
      const err = await call().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(SwarmletError);
      expect((err as SwarmletError).kind).toBe('Unavailable');
    }
  } finally {
    client.close();
  }
});
