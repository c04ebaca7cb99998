import { Etcd3 } from 'etcd3';
import { BackupKeyValue, StoredKeyValue } from '../backup-plans';
import { etcdRequestError } from './etcd-errors';
import { ROOT } from './keys';
import { rangePrefix } from './paged-range';

/** How many puts one restore transaction carries (etcd's default --max-txn-ops is 128). */
const PUTS_PER_TXN = 100;

/** Every key of the swarm, read at one revision (the election's keys, outside ROOT, all live under leases). */
export async function dumpKeyspace(etcd: Etcd3): Promise<{ revision: number; kvs: StoredKeyValue[] }> {
  try {
    const { revision, kvs } = await rangePrefix(etcd, ROOT);
    return { revision, kvs: kvs.map((kv) => ({ key: kv.key, value: kv.value, lease: kv.lease })) };
  } catch (err) {
    throw etcdRequestError(err);
  }
}

/** Writes a backup's keys into an empty etcd, in transactions of PUTS_PER_TXN. */
export async function loadKeyspace(etcd: Etcd3, kvs: BackupKeyValue[]): Promise<void> {
  try {
    for (let i = 0; i < kvs.length; i += PUTS_PER_TXN) {
      const ops = kvs.slice(i, i + PUTS_PER_TXN).map(([k, v]) => etcd.put(Buffer.from(k, 'base64')).value(Buffer.from(v, 'base64')));
      // A compare that always holds: the puts go in as one transaction.
      await etcd.if(ROOT, 'Create', '>', -1).then(...ops).commit();
    }
  } catch (err) {
    throw etcdRequestError(err);
  }
}
