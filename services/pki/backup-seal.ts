import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { invalidArgument, permissionDenied } from '../common/errors';

/**
 * A backup file: its contents gzipped and sealed with a key drawn from a passphrase (scrypt,
 * then AES-256-GCM with the file's header as additional data, so a changed byte anywhere is
 * refused). Layout: magic (8) | salt (16) | iv (12) | tag (16) | ciphertext.
 */
const MAGIC = Buffer.from('SWLTBAK1');
const SALT_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER = MAGIC.length + SALT_BYTES + IV_BYTES + TAG_BYTES;
/** scrypt's cost: about 0.1 s and 32 MiB here, once per backup or restore. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
/** The shortest passphrase a backup is sealed with. */
export const MIN_PASSPHRASE = 8;

const keyOf = (passphrase: string, salt: Buffer) => scryptSync(passphrase, salt, 32, SCRYPT);

/** A backup is sealed only with a passphrase of MIN_PASSPHRASE characters or more. */
export function checkPassphrase(passphrase: string): void {
  if (passphrase.length < MIN_PASSPHRASE) throw invalidArgument(`the backup passphrase must be at least ${MIN_PASSPHRASE} characters`);
}

export function sealBackup(passphrase: string, plaintext: Buffer): Buffer {
  checkPassphrase(passphrase);
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keyOf(passphrase, salt), iv);
  cipher.setAAD(Buffer.concat([MAGIC, salt, iv]));
  const body = Buffer.concat([cipher.update(gzipSync(plaintext)), cipher.final()]);
  return Buffer.concat([MAGIC, salt, iv, cipher.getAuthTag(), body]);
}

/** The contents of a backup; InvalidArgument when it is not one, PermissionDenied when the passphrase is wrong (or the file was changed). */
export function openBackup(passphrase: string, sealed: Uint8Array): Buffer {
  const buf = Buffer.from(sealed);
  if (buf.length <= HEADER || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw invalidArgument('this file is not a swarmlet backup');
  const salt = buf.subarray(MAGIC.length, MAGIC.length + SALT_BYTES);
  const iv = buf.subarray(MAGIC.length + SALT_BYTES, MAGIC.length + SALT_BYTES + IV_BYTES);
  const tag = buf.subarray(HEADER - TAG_BYTES, HEADER);
  const decipher = createDecipheriv('aes-256-gcm', keyOf(passphrase, salt), iv);
  decipher.setAAD(Buffer.concat([MAGIC, salt, iv]));
  decipher.setAuthTag(tag);
  let zipped: Buffer;
  try {
    zipped = Buffer.concat([decipher.update(buf.subarray(HEADER)), decipher.final()]);
  } catch (err) {
    throw permissionDenied('the backup does not open with this passphrase (or the file was changed)', err);
  }
  return gunzipSync(zipped);
}
