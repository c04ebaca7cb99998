import { invalidArgument } from '../common/errors';

/**
 * Join tokens: `SWLTKN-1-<digest>-<secret>`, after swarmkit's `SWMTKN-1-...`. The digest pins the
 * root CA a joining node must see before it sends the secret; the secret decides its role.
 */
export const TOKEN_PREFIX = 'SWLTKN';
const TOKEN_VERSION = '1';
/** 36^50 > 2^256 and 36^25 > 2^128, so these widths hold any SHA-256 digest and 16-byte secret. */
const DIGEST_LENGTH = 50;
const SECRET_LENGTH = 25;
const BASE36 = /^[0-9a-z]+$/;

export interface ParsedJoinToken {
  version: 1;
  caDigest: string;
  secret: string;
}

export type JoinRole = 'worker' | 'manager';

/** Big-endian bytes as a lowercase base36 number, left-padded with '0' to `width`. */
export function encodeBase36(bytes: Uint8Array, width: number): string {
  // One BigInt from the hex digits: a shift and an OR per byte made an id cost several microseconds.
  const value = bytes.length ? BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex')}`) : 0n;
  const digits = value.toString(36);
  if (digits.length > width) throw invalidArgument(`${bytes.length} bytes do not fit in ${width} base36 digits.`);
  return digits.padStart(width, '0');
}

export function formatJoinToken(caDigest: string, secretBytes: Uint8Array): string {
  if (caDigest.length !== DIGEST_LENGTH || !BASE36.test(caDigest)) {
    throw invalidArgument(`The CA digest must be ${DIGEST_LENGTH} base36 characters.`);
  }
  return [TOKEN_PREFIX, TOKEN_VERSION, caDigest, encodeBase36(secretBytes, SECRET_LENGTH)].join('-');
}

/** Checks the token's shape only; whether its secret is current is for `matchJoinToken`. Messages never echo the token. */
export function parseJoinToken(token: string): ParsedJoinToken {
  const parts = token.trim().split('-');
  if (parts[0] !== TOKEN_PREFIX) throw invalidArgument(`The join token must start with "${TOKEN_PREFIX}-".`);
  if (parts.length !== 4) throw invalidArgument(`The join token must have 4 dash-separated parts, not ${parts.length}.`);
  const [, version, caDigest, secret] = parts;
  if (version !== TOKEN_VERSION) throw invalidArgument(`The join token has version "${version}"; only version ${TOKEN_VERSION} is supported.`);
  if (caDigest.length !== DIGEST_LENGTH || !BASE36.test(caDigest)) {
    throw invalidArgument(`The join token's CA digest must be ${DIGEST_LENGTH} lowercase base36 characters.`);
  }
  if (secret.length !== SECRET_LENGTH || !BASE36.test(secret)) {
    throw invalidArgument(`The join token's secret must be ${SECRET_LENGTH} lowercase base36 characters.`);
  }
  return { version: 1, caDigest, secret };
}

/** The role a presented token grants, or null. Both tokens are always compared so timing reveals nothing about which one matched. */
export function matchJoinToken(presented: string, tokens: { worker: string; manager: string }): JoinRole | null {
  const candidate = typeof presented === 'string' ? presented.trim() : '';
  if (candidate === '') return null;
  const isWorker = tokens.worker !== '' && constantTimeEqual(candidate, tokens.worker);
  const isManager = tokens.manager !== '' && constantTimeEqual(candidate, tokens.manager);
  // If the two tokens were ever equal, grant the lesser role.
  return isWorker ? 'worker' : isManager ? 'manager' : null;
}

/** Takes time proportional to the longer string and leaks only the lengths, which are public for well-formed tokens. */
export function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const length = Math.max(a.length, b.length);
  for (let i = 0; i < length; i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}
