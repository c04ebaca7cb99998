import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The layers of the source tree, from the ground up: services/ (errors, logging, config, PKI, API
 * glue, generated code), then agent/ and manager/ side by side, then node/ (the per-host process)
 * and cli/. A folder imports only from the layers below it.
 */
const ROOT = path.resolve(__dirname, '../..');


function sourcesUnder(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return sourcesUnder(rel);
    return e.isFile() && e.name.endsWith('.ts') ? [rel] : [];
  });
}

/** The top-level folder of each relative module a file imports (import, export ... from, require, import()). */
export function importedFolders(file: string, text: string): string[] {
  const specs = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"](\.[^'"]*)['"]/gm)].map((m) => m[1]);
  return specs.map((s) => path.relative(ROOT, path.resolve(ROOT, path.dirname(file), s)).split(path.sep)[0]);
}

/** `file: folder` for each import of `file` into one of `forbidden`. */
function violations(dir: string, forbidden: string[], skip: Set<string> = new Set()): string[] {
  return sourcesUnder(dir)
    .filter((f) => !skip.has(f))
    .flatMap((f) => importedFolders(f, fs.readFileSync(path.join(ROOT, f), 'utf8')).filter((top) => forbidden.includes(top)).map((top) => `${f}: ${top}/`));
}

describe('layers', () => {
  test('the import reader sees every form of relative import', () => {
    const text = [
      "import { a } from '../../agent/x';",
      "import type { b } from '../manager/y';",
      "export { c } from '../../node/z';",
      "import '../../cli/side-effect';",
      "const d = require('../../agent/r');",
      "const e = await import('../../manager/i');",
      "import * as fs from 'node:fs';",
      "import { f } from '../common/errors';",
    ].join('\n');
    expect(importedFolders('services/api/file.ts', text)).toEqual(['agent', 'services', 'node', 'cli', 'agent', 'manager', 'services']);
  });

  test('services/ is the ground floor: it imports neither agent/, manager/, node/ nor cli/', () => {
    expect(violations('services', ['agent', 'manager', 'node', 'cli'])).toEqual([]);
  });

  test('manager/ does not import agent/, node/ or cli/', () => {
    expect(violations('manager', ['agent', 'node', 'cli'])).toEqual([]);
  });

  test('agent/ does not import manager/, node/ or cli/', () => {
    expect(violations('agent', ['manager', 'node', 'cli'])).toEqual([]);
  });

  test('lab/ (what `swarmlet lab` runs) stands on services/ alone: no agent/, manager/, node/, cli/ or test/', () => {
    expect(violations('lab', ['agent', 'manager', 'node', 'cli', 'test'])).toEqual([]);
  });

  test('product code never imports test/', () => {
    expect(['services', 'manager', 'agent', 'node', 'cli', 'lab'].flatMap((dir) => violations(dir, ['test', 'bench']))).toEqual([]);
  });
});
