/** What a swarm backup holds, and how it is checked when read back. Pure: the sealing is services/pki/backup-seal.ts. */
import { invalidArgument } from '../services/common/errors';

export const BACKUP_FORMAT = 'swarmlet-backup';
export const BACKUP_VERSION = 1;

/** One etcd key and its value, base64. */
export type BackupKeyValue = [key: string, value: string];

export interface BackupContent {
  format: typeof BACKUP_FORMAT;
  version: typeof BACKUP_VERSION;
  clusterId: string;
  createdAt: string;
  /** The etcd revision the keys were read at: one consistent view. */
  revision: number;
  /** The cluster's root CA: what signs the restored manager's certificate (and trusts the workers' ones). */
  ca: { certPem: string; keyPem: string };
  /** The managers' seal key (base64): it opens the CA key, join tokens and secrets sealed in the store. */
  sealKey: string;
  /** Every key of the swarm that does not die with a lease, at `revision`. */
  kvs: BackupKeyValue[];
}

/** What an etcd range gives for one key. */
export interface StoredKeyValue {
  key: Buffer;
  value: Buffer;
  /** '0' when the key has no lease. */
  lease: string;
}

/**
 * The content of a backup. Keys under a lease (managers' presence, agents' heartbeats, the
 * leader's election) are left out: they say who is alive now, and would be wrong on restore.
 */
export function planBackupContent(p: { clusterId: string; createdAt: Date; revision: number; ca: { certPem: string; keyPem: string }; sealKey: Buffer; kvs: StoredKeyValue[] }): BackupContent {
  return {
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    clusterId: p.clusterId,
    createdAt: p.createdAt.toISOString(),
    revision: p.revision,
    ca: p.ca,
    sealKey: p.sealKey.toString('base64'),
    kvs: p.kvs.filter((kv) => !kv.lease || kv.lease === '0').map((kv) => [kv.key.toString('base64'), kv.value.toString('base64')]),
  };
}

/** A backup's content as read back, checked field by field: InvalidArgument naming what is wrong. */
export function parseBackupContent(text: string): BackupContent {
  let c: Partial<BackupContent>;
  try {
    c = JSON.parse(text);
  } catch {
    throw invalidArgument('the backup opened, but its content is not readable');
  }
  if (c?.format !== BACKUP_FORMAT) throw invalidArgument('the backup opened, but it is not a swarmlet backup');
  if (c.version !== BACKUP_VERSION) throw invalidArgument(`the backup is of version ${c.version}; this swarmlet reads version ${BACKUP_VERSION}`);
  if (typeof c.clusterId !== 'string' || !c.clusterId) throw invalidArgument('the backup names no cluster');
  if (!c.ca?.certPem || !c.ca.keyPem) throw invalidArgument('the backup holds no root CA');
  if (typeof c.sealKey !== 'string' || !c.sealKey) throw invalidArgument('the backup holds no seal key');
  if (!Array.isArray(c.kvs) || !c.kvs.every((kv) => Array.isArray(kv) && kv.length === 2 && kv.every((x) => typeof x === 'string'))) throw invalidArgument('the backup holds no readable keys');
  return c as BackupContent;
}
