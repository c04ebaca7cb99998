/**
 * docker compose's variable interpolation in one string: `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+other}`, `${VAR+other}`, and `$$`
 * for a literal `$`. Defaults may themselves hold variables. Pure.
 */

/** A variable's value: undefined when unset (differs from "" for `-` and `?`). */
export type Lookup = (name: string) => string | undefined;

export interface InterpolationResult {
  value: string;
  /** Variables used without a value or default: docker compose warns and uses "". */
  unset: string[];
}

/** Thrown for a malformed expression or a `${VAR:?message}` whose variable has no value. */
export class InterpolationError extends Error {}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

export function interpolate(text: string, lookup: Lookup): InterpolationResult {
  const unset: string[] = [];
  const value = expand(text, lookup, unset);
  return { value, unset };
}

function expand(text: string, lookup: Lookup, unset: string[]): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '{') {
      const end = closingBrace(text, i + 2);
      if (end < 0) throw new InterpolationError(`invalid interpolation format: ${JSON.stringify(text)}: a "\${" without its "}"; write $$ for a literal $`);
      out += braced(text.slice(i + 2, end), text, lookup, unset);
      i = end + 1;
    } else {
      const m = NAME.exec(text.slice(i + 1));
      if (!m) throw new InterpolationError(`invalid interpolation format: ${JSON.stringify(text)}: write $$ for a literal $`);
      out += variable(m[0], lookup, unset);
      i += 1 + m[0].length;
    }
  }
  return out;
}

function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length; i++) {
    if (text[i] === '$' && text[i + 1] === '$') i++;
    else if (text[i] === '$' && text[i + 1] === '{') {
      depth++;
      i++;
    } else if (text[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

function variable(name: string, lookup: Lookup, unset: string[]): string {
  const v = lookup(name);
  if (v === undefined) {
    if (!unset.includes(name)) unset.push(name);
    return '';
  }
  return v;
}

function braced(expr: string, whole: string, lookup: Lookup, unset: string[]): string {
  const m = NAME.exec(expr);
  const bad = () => new InterpolationError(`invalid interpolation format: ${JSON.stringify(whole)}: write $$ for a literal $`);
  if (!m) throw bad();
  const name = m[0];
  const rest = expr.slice(name.length);
  if (rest === '') return variable(name, lookup, unset);
  const op = /^(:?[-?+])/.exec(rest);
  if (!op) throw bad();
  const arg = rest.slice(op[1].length);
  const v = lookup(name);
  const colon = op[1].startsWith(':');
  const missing = v === undefined || (colon && v === '');
  switch (op[1].slice(-1)) {
    case '-':
      return missing ? expand(arg, lookup, unset) : v!;
    case '+':
      return missing ? '' : expand(arg, lookup, unset);
    default: {
      if (!missing) return v!;
      const why = expand(arg, lookup, unset);
      throw new InterpolationError(`required variable ${name} is missing a value${why ? `: ${why}` : ''}`);
    }
  }
}
