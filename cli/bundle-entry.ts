/**
 * The built CLI's entry point. `npm run build` (scripts/bundle-cli.js) copies this file's output
 * over dist/cli/main.js once it has made dist/cli/main.bundle.js (cli/run.ts and what it loads,
 * node_modules included, in one file) and that bundle's V8 code cache (cli/code-cache.ts). A call
 * then reads three files instead of resolving and reading a few hundred modules, and V8 takes the
 * compiled code from the cache instead of parsing the bundle. The daemon and `swarmlet lab` are left
 * out of the bundle: their modules load from tsc's output beside it (and a few packages only some
 * commands use, from node_modules).
 *
 * A plain `tsc` writes dist/cli/main.js again from cli/main.ts, so a bundle left from an earlier
 * build is never run; a cache V8 refuses (another Node, other V8 flags) only costs the parse.
 *
 * Reads one environment variable, SWARMLET_CODE_CACHE_OUT: the build sets it in the one call whose
 * compiled functions it keeps as the cache.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { BUNDLE_FILE, bundleKey, CODE_CACHE_FILE, readCodeCache, writeCodeCache } from './code-cache';

/** Runs the bundle beside this file as this module (same require, same exports), from its code cache when there is a good one. */
function runBundle(dir: string): void {
  const filename = join(dir, BUNDLE_FILE);
  // The build makes the bundle ASCII (so latin1 reads it as it is) and wraps it as Node wraps a CommonJS module.
  const bytes = readFileSync(filename);
  const key = bundleKey(bytes);
  const script = new Script(bytes.toString('latin1'), { filename, cachedData: readCodeCache(join(dir, CODE_CACHE_FILE), key) });
  const out = process.env.SWARMLET_CODE_CACHE_OUT;
  if (out) process.once('exit', () => writeCodeCache(out, key, script.createCachedData()));
  script.runInThisContext()(exports, require, module, filename, dir);
}

runBundle(__dirname);
