import { parseBackupContent, planBackupContent } from '../../manager/backup-plans';
import { checkPassphrase, openBackup, sealBackup } from '../../services/pki/backup-seal';

const kv = (key: string, value: string, lease = '0') => ({ key: Buffer.from(key), value: Buffer.from(value), lease });

const content = () =>
  planBackupContent({
    clusterId: 'c1',
    createdAt: new Date('2026-12-05T04:00:00.000Z'),
    revision: 42,
    ca: { certPem: 'CERT', keyPem: 'KEY' },
    sealKey: Buffer.alloc(32, 7),
    kvs: [kv('/swarmlet/v1/cluster', '{"id":"c1"}'), kv('/swarmlet/v1/heartbeats/n1', 'x', '7587'), kv('/swarmlet/v1/services/s1', '{}')],
  });

describe('planBackupContent', () => {
  test('keeps every key without a lease, base64, and leaves out those that die with one', () => {
    const c = content();
    expect(c.kvs.map(([k]) => Buffer.from(k, 'base64').toString())).toEqual(['/swarmlet/v1/cluster', '/swarmlet/v1/services/s1']);
    expect(Buffer.from(c.kvs[0][1], 'base64').toString()).toBe('{"id":"c1"}');
    expect(c).toMatchObject({ format: 'swarmlet-backup', version: 1, clusterId: 'c1', revision: 42, createdAt: '2026-12-05T04:00:00.000Z', ca: { certPem: 'CERT', keyPem: 'KEY' } });
    expect(Buffer.from(c.sealKey, 'base64')).toEqual(Buffer.alloc(32, 7));
  });
});

describe('parseBackupContent', () => {
  test('reads back what planBackupContent made', () => {
    expect(parseBackupContent(JSON.stringify(content()))).toEqual(content());
  });

  test.each<[string, unknown, RegExp]>([
    ['not JSON', 'nope', /not readable/],
    ['another format', { format: 'other' }, /not a swarmlet backup/],
    ['a newer version', { ...content(), version: 2 }, /version 2; this swarmlet reads version 1/],
    ['no CA key', { ...content(), ca: { certPem: 'CERT' } }, /no root CA/],
    ['no seal key', { ...content(), sealKey: '' }, /no seal key/],
    ['keys of the wrong shape', { ...content(), kvs: [['a']] }, /no readable keys/],
  ])('refuses %s', (_what, value, message) => {
    expect(() => parseBackupContent(typeof value === 'string' ? value : JSON.stringify(value))).toThrow(message);
  });
});

describe('sealBackup and openBackup', () => {
  const plain = Buffer.from(JSON.stringify(content()));

  test('open with the passphrase it was sealed with, and the sealed file shows none of the content', () => {
    const sealed = sealBackup('correct horse', plain);
    expect(sealed.subarray(0, 8).toString()).toBe('SWLTBAK1');
    expect(sealed.includes(Buffer.from('swarmlet-backup'))).toBe(false);
    expect(openBackup('correct horse', sealed)).toEqual(plain);
  });

  test('a wrong passphrase, or a changed byte, is refused as PermissionDenied', () => {
    const sealed = sealBackup('correct horse', plain);
    expect(() => openBackup('wrong horse', sealed)).toThrow(expect.objectContaining({ kind: 'PermissionDenied' }));
    const changed = Buffer.from(sealed);
    changed[changed.length - 1] ^= 1;
    expect(() => openBackup('correct horse', changed)).toThrow(/does not open with this passphrase/);
  });

  test('a file that is no backup is InvalidArgument', () => {
    expect(() => openBackup('correct horse', Buffer.from('hello world, this is not a backup at all'))).toThrow(expect.objectContaining({ kind: 'InvalidArgument', message: 'this file is not a swarmlet backup' }));
  });

  test('a passphrase shorter than 8 characters is refused', () => {
    expect(() => checkPassphrase('short')).toThrow('the backup passphrase must be at least 8 characters');
    expect(() => sealBackup('', plain)).toThrow(/at least 8/);
  });
});
