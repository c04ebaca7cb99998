/**
 * The V8 code cache of the CLI's bundle, keyed by the bundle's contents: the cache file starts with
 * the hex SHA-1 of the bundle it was made from, so a cache made for another bundle is never used
 * (SHA-1: the fastest of Node's hashes here, and a key, not a signature).
 * (V8 itself checks only the source's length, and Node's version and flags.) Imports node:* only:
 * every CLI call runs it before anything else (cli/bundle-entry.ts).
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

/** Beside dist/cli/main.js, made by the build. */
export const BUNDLE_FILE = 'main.bundle.js';
export const CODE_CACHE_FILE = 'main.bundle.cache';
const KEY_LENGTH = 40;

/** The key a bundle's cache is filed under. */
export function bundleKey(bundle: Buffer | string): string {
  return createHash('sha1').update(bundle).digest('hex');
}

/** The code cache in `file` if it was made for `key`; undefined when there is none, or one for another bundle. */
export function readCodeCache(file: string, key: string): Buffer | undefined {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch {
    return undefined;
  }
  return data.length > KEY_LENGTH && data.toString('latin1', 0, KEY_LENGTH) === key ? data.subarray(KEY_LENGTH) : undefined;
}

/** Writes the code cache for `key` to `file`, whole or not at all. */
export function writeCodeCache(file: string, key: string, data: Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, Buffer.concat([Buffer.from(key, 'latin1'), data]));
  renameSync(tmp, file);
}
