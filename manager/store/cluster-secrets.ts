import { failedPrecondition } from '../../services/common/errors';
import { Cluster } from '../../services/gen/swarmlet/v1/types';
import { seal, unseal } from '../../services/pki/seal';
import { SealKeySource } from '../service-secrets';

interface ClusterSecrets {
  caKeyPem: string;
  worker: string;
  manager: string;
}

const context = (clusterId: string) => `cluster-secrets:${clusterId}`;

/**
 * How the cluster object is kept in etcd: its CA key and join tokens sealed with the managers'
 * key (as services' registry credentials are), so that raw etcd data does not give them away.
 * A cluster written before sealing existed reads as it is, and is sealed on its next write.
 */
export function clusterCodec(sealKey?: SealKeySource): { toJSON(c: Cluster): unknown; fromJSON(o: unknown): Cluster } {
  return {
    toJSON(c: Cluster): unknown {
      const key = sealKey?.();
      const secrets: ClusterSecrets = { caKeyPem: c.rootCa?.keyPem ?? '', worker: c.joinTokens?.worker ?? '', manager: c.joinTokens?.manager ?? '' };
      if (!key || !secrets.caKeyPem) return Cluster.toJSON({ ...c, sealedSecrets: undefined });
      return Cluster.toJSON({
        ...c,
        rootCa: { ...c.rootCa!, keyPem: '' },
        joinTokens: { worker: '', manager: '' },
        sealedSecrets: seal(key, JSON.stringify(secrets), context(c.id)),
      });
    },
    fromJSON(o: unknown): Cluster {
      const c = Cluster.fromJSON(o);
      if (!c.sealedSecrets?.length) return c;
      const key = sealKey?.();
      if (!key) throw failedPrecondition('the swarm\'s CA key and join tokens are sealed and this manager has no seal key (its data dir lost seal.key?)');
      const s = JSON.parse(unseal(key, c.sealedSecrets, context(c.id))) as ClusterSecrets;
      return { ...c, rootCa: { ...c.rootCa!, keyPem: s.caKeyPem }, joinTokens: { worker: s.worker, manager: s.manager }, sealedSecrets: undefined };
    },
  };
}

/** Whether the cluster as stored still holds its secrets in clear (made before sealing, or without a key). */
export const hasClearSecrets = (stored: unknown): boolean => !Cluster.fromJSON(stored).sealedSecrets?.length;
