import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { internal, invalidArgument, permissionDenied } from '../common/errors';

/**
 * Sealing of small secrets (registry credentials) with the managers' shared key: AES-256-GCM,
 * bound to a context string (the service id) as additional data, so a sealed blob is useless
 * under another service or key. Layout: version (1) | iv (12) | tag (16) | ciphertext.
 */
export const SEAL_KEY_BYTES = 32;
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER = 1 + IV_BYTES + TAG_BYTES;

export const newSealKey = (): Buffer => randomBytes(SEAL_KEY_BYTES);

function checkKey(key: Buffer): void {
  if (key.length !== SEAL_KEY_BYTES) throw internal(`the seal key must be ${SEAL_KEY_BYTES} bytes, not ${key.length}`);
}

export function seal(key: Buffer, plaintext: string, context: string): Buffer {
  checkKey(key);
  if (!plaintext) throw invalidArgument('nothing to seal');
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
}

/** The plaintext of a sealed blob; PermissionDenied when the key or context is not the one it was sealed with. */
export function unseal(key: Buffer, sealed: Uint8Array, context: string): string {
  checkKey(key);
  const buf = Buffer.from(sealed);
  if (buf.length <= HEADER || buf[0] !== VERSION) throw invalidArgument('the sealed value is malformed');
  const iv = buf.subarray(1, 1 + IV_BYTES);
  const tag = buf.subarray(1 + IV_BYTES, HEADER);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(buf.subarray(HEADER)), decipher.final()]).toString('utf8');
  } catch (err) {
    throw permissionDenied('the sealed value does not open with this key (sealed by another swarm, or for another service)', err);
  }
}
