import { clusterCodec, hasClearSecrets } from '../../manager/store/cluster-secrets';
import { Cluster } from '../../services/gen/swarmlet/v1/types';
import { newSealKey } from '../../services/pki/seal';

const cluster: Cluster = {
  id: 'c1',
  joinTokens: { worker: 'SWLTKN-1-aaa-worker', manager: 'SWLTKN-1-aaa-manager' },
  rootCa: { certPem: 'CERT', keyPem: '-----BEGIN PRIVATE KEY-----x', digest: 'aaa' },
};

describe('clusterCodec', () => {
  test('with a seal key, the CA key and join tokens are stored sealed and read back in clear', () => {
    const key = newSealKey();
    const stored = clusterCodec(() => key).toJSON(cluster);
    const text = JSON.stringify(stored);
    expect(text).not.toMatch(/PRIVATE KEY|SWLTKN/);
    expect(text).toContain('CERT');
    expect(hasClearSecrets(stored)).toBe(false);
    const back = clusterCodec(() => key).fromJSON(stored);
    expect(back.rootCa?.keyPem).toBe(cluster.rootCa!.keyPem);
    expect(back.joinTokens).toEqual(cluster.joinTokens);
  });

  test('sealed secrets do not open with another key, nor without one', () => {
    const stored = clusterCodec(() => newSealKey()).toJSON(cluster);
    expect(() => clusterCodec(() => newSealKey()).fromJSON(stored)).toThrow(/does not open/);
    expect(() => clusterCodec(() => undefined).fromJSON(stored)).toThrow(/no seal key/);
  });

  test('a cluster stored in clear (before sealing) reads as it is', () => {
    const stored = Cluster.toJSON(cluster);
    expect(hasClearSecrets(stored)).toBe(true);
    expect(clusterCodec(() => newSealKey()).fromJSON(stored).joinTokens).toEqual(cluster.joinTokens);
  });
});
