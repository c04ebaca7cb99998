import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { bundleKey, readCodeCache, writeCodeCache } from '../../cli/code-cache';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swarmlet-code-cache-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

// Two sources of the same length: V8 tells their caches apart by length alone.
const A = 'globalThis.answer = function () { return "from A"; }; globalThis.answer();';
const B = 'globalThis.answer = function () { return "from B"; }; globalThis.answer();';

function cacheOf(source: string): Buffer {
  const script = new Script(source, { filename: 'bundle.js' });
  script.runInThisContext();
  return script.createCachedData();
}

test('V8 alone would take a cache made for other contents of the same length (why the cache is keyed by contents)', () => {
  expect(A.length).toBe(B.length);
  const script = new Script(B, { filename: 'bundle.js', cachedData: cacheOf(A) });
  expect(script.cachedDataRejected).toBe(false);
});

test('a cache is read back for the contents it was made for, and for no other', () => {
  const file = join(dir, 'main.bundle.cache');
  const data = cacheOf(A);
  writeCodeCache(file, bundleKey(A), data);
  expect(readCodeCache(file, bundleKey(A))).toEqual(data);
  expect(readCodeCache(file, bundleKey(B))).toBeUndefined();
  const script = new Script(A, { filename: 'bundle.js', cachedData: readCodeCache(file, bundleKey(A)) });
  expect(script.cachedDataRejected).toBe(false);
});

test('no cache, or a file too short to hold one, reads as none', () => {
  expect(readCodeCache(join(dir, 'absent'), bundleKey(A))).toBeUndefined();
  writeFileSync(join(dir, 'short'), bundleKey(A));
  expect(readCodeCache(join(dir, 'short'), bundleKey(A))).toBeUndefined();
});

test('a cache is written whole or not at all: no temporary file is left', () => {
  const file = join(dir, 'main.bundle.cache');
  writeCodeCache(file, bundleKey(A), Buffer.from('x'));
  writeCodeCache(file, bundleKey(B), cacheOf(B));
  expect(readCodeCache(file, bundleKey(A))).toBeUndefined();
  expect(readCodeCache(file, bundleKey(B))).toBeDefined();
  expect(readdirSync(dir)).toEqual(['main.bundle.cache']);
});
