/**
 * The `.env` and `env_file` format docker compose reads: `KEY=VALUE` lines, `export ` allowed,
 * `#` comments, single quotes literal, double quotes with \n escapes and `${VAR}` expansion,
 * unquoted values trimmed and cut at ` #`. A line `KEY` alone takes KEY from the lookup. Pure.
 */
import { interpolate, Lookup } from './interpolate';

export class DotenvError extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
  }
}

/** The variables of one file, in order; `lookup` resolves `${VAR}` in values and bare `KEY` lines. */
export function parseDotenv(text: string, lookup: Lookup = () => undefined): Map<string, string> {
  const vars = new Map<string, string>();
  const inFile: Lookup = (name) => (vars.has(name) ? vars.get(name) : lookup(name));
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    let line = lines[n].replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('export ')) line = line.slice(7).trimStart();
    const eq = line.indexOf('=');
    const key = (eq < 0 ? line : line.slice(0, eq)).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) throw new DotenvError(n + 1, `invalid variable name ${JSON.stringify(key)}`);
    if (eq < 0) {
      const v = lookup(key);
      if (v !== undefined) vars.set(key, v);
      continue;
    }
    let raw = line.slice(eq + 1).trimStart();
    let value: string;
    if (raw.startsWith("'") || raw.startsWith('"')) {
      const q = raw[0];
      // a quoted value may go on over several lines
      while (!closes(raw, q) && n + 1 < lines.length) raw += '\n' + lines[++n].replace(/\r$/, '');
      const end = closes(raw, q);
      if (!end) throw new DotenvError(n + 1, `unterminated ${q} quote in the value of ${key}`);
      const inner = raw.slice(1, end);
      value = q === "'" ? inner : expandValue(inner.replace(/\\([nrt"\\])/g, (_, e: string) => ({ n: '\n', r: '\r', t: '\t' } as Record<string, string>)[e] ?? e), inFile, n);
    } else {
      const hash = raw.search(/\s#/);
      value = expandValue((hash < 0 ? raw : raw.slice(0, hash)).trim(), inFile, n);
    }
    vars.set(key, value);
  }
  return vars;
}

/** The index of the quote that closes a value opened by `q` at 0, or 0 if there is none. */
function closes(raw: string, q: string): number {
  for (let i = 1; i < raw.length; i++) {
    if (raw[i] === '\\' && q === '"') i++;
    else if (raw[i] === q) return i;
  }
  return 0;
}

function expandValue(value: string, lookup: Lookup, n: number): string {
  try {
    return interpolate(value, lookup).value;
  } catch (err) {
    throw new DotenvError(n + 1, (err as Error).message);
  }
}
