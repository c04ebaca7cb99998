import { Etcd3 } from 'etcd3';
import { conflict, notFound } from '../../services/common/errors';
import { etcdRequestError } from './etcd-errors';
import { keys } from './keys';

/** An operator certificate the swarm issued: kept so that it can be revoked by serial. */
export interface OperatorCertRecord {
  serial: string;
  name: string;
  notAfter: string;
  issuedAt: string;
  /** Set once revoked: managers refuse the certificate from then on. */
  revokedAt?: string;
}

/**
 * The swarm's record of operator certificates, and its revocation list, in etcd. Its etcd failures
 * are the store's kinds (Unavailable), as EtcdStore's are: a caller's access check reads the list,
 * and without quorum that must fail as the quorum guard can name, not with etcd's own words.
 */
export class OperatorCertRegistry {
  constructor(private readonly etcd: Etcd3) {}

  async record(rec: OperatorCertRecord): Promise<void> {
    const key = keys.operatorCert(rec.serial);
    const res = await guard(this.etcd.if(key, 'Create', '==', 0).then(this.etcd.put(key).value(JSON.stringify(rec))).commit());
    if (!res.succeeded) throw conflict(`an operator certificate with serial ${rec.serial} is already recorded`);
  }

  /** Marks the certificate revoked (again is fine); NotFound when the swarm never issued it. */
  async revoke(serial: string, now: Date): Promise<OperatorCertRecord> {
    const key = keys.operatorCert(serial);
    for (;;) {
      const got = await guard(this.etcd.get(key).exec());
      const kv = got.kvs[0];
      if (!kv) throw notFound(`this swarm issued no operator certificate with serial ${serial} (see the serial printed by "swarmlet swarm operator-cert", or openssl x509 -noout -serial -in cert.pem)`);
      const rec = JSON.parse(kv.value.toString()) as OperatorCertRecord;
      if (rec.revokedAt) return rec;
      const next = { ...rec, revokedAt: now.toISOString() };
      const res = await guard(this.etcd.if(key, 'Mod', '==', kv.mod_revision).then(this.etcd.put(key).value(JSON.stringify(next))).commit());
      if (res.succeeded) return next;
    }
  }

  /** The serials of revoked certificates. */
  async revokedSerials(): Promise<Set<string>> {
    const all = await guard(this.etcd.getAll().prefix(keys.operatorCertsPrefix).strings());
    const out = new Set<string>();
    for (const value of Object.values(all)) {
      const rec = JSON.parse(value) as OperatorCertRecord;
      if (rec.revokedAt) out.add(rec.serial);
    }
    return out;
  }
}

/** An etcd call's failure as the store's errors are (etcdRequestError). */
const guard = <T>(call: Promise<T>): Promise<T> =>
  call.catch((err: unknown) => {
    throw etcdRequestError(err);
  });
