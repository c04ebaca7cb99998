/**
 * The part of Go's text/template that docker users type in `--format`: `{{.Field}}`,
 * `{{.A.B}}`, `{{.}}`, and the functions docker adds (`json`, `upper`, `lower`, `title`, `join`,
 * `split`, `truncate`, `println`), each applied to one argument or piped (`{{.Name | upper}}`).
 * `\t` and `\n` in the text are a tab and a newline, as docker reads them. No range/if/with: a
 * template that uses them is refused with one line. Written by hand: no kept npm library
 * implements Go's template syntax. Used by the CLI's --format and by `events`. Pure.
 */
import { invalidArgument } from './errors';

type Value = unknown;

/** A parsed template: literal text and actions, in order. */
export interface Template {
  parts: ({ text: string } | { action: Pipeline; source: string })[];
}

type Arg = { field: string[] } | { string: string } | { number: number };
interface Command {
  fn?: string;
  args: Arg[];
}
type Pipeline = Command[];

const FUNCTIONS: Record<string, (...args: Value[]) => Value> = {
  json: (v) => JSON.stringify(v ?? null),
  upper: (v) => text(v).toUpperCase(),
  lower: (v) => text(v).toLowerCase(),
  title: (v) => text(v).replace(/\b\w/g, (c) => c.toUpperCase()),
  join: (v, sep) => (Array.isArray(v) ? v.map(text).join(text(sep)) : text(v)),
  split: (v, sep) => text(v).split(text(sep)),
  truncate: (v, n) => [...text(v)].slice(0, Number(n)).join(''),
  println: (...vs) => `${vs.map(text).join(' ')}\n`,
};

function fail(source: string, why: string): never {
  throw invalidArgument(`template parsing error: ${source}: ${why}`);
}

/** How Go prints a value in a template: strings as they are, maps and slices in Go's own style. */
export function text(v: Value): string {
  if (v === undefined || v === null) return '<no value>';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(text).join(' ')}]`;
  if (typeof v === 'object') return `map[${Object.entries(v as Record<string, Value>).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => `${k}:${text(x)}`).join(' ')}]`;
  return String(v);
}

function tokens(source: string, inner: string): string[] {
  const out: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|"`]+)/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while ((m = re.exec(inner)) !== null) {
    out.push(m[1]);
    at = re.lastIndex;
  }
  if (inner.slice(at).trim() !== '') fail(source, `unexpected ${JSON.stringify(inner.slice(at).trim())}`);
  return out;
}

function parseArg(source: string, tok: string): Arg {
  if (tok === '.') return { field: [] };
  if (/^(\.[A-Za-z_]\w*)+$/.test(tok)) return { field: tok.slice(1).split('.') };
  if (tok.startsWith('"')) return { string: JSON.parse(tok) as string };
  if (tok.startsWith('`')) return { string: tok.slice(1, -1) };
  if (/^-?\d+$/.test(tok)) return { number: Number(tok) };
  return fail(source, `unexpected ${JSON.stringify(tok)} in command`);
}

function parseAction(source: string, inner: string): Pipeline {
  const toks = tokens(source, inner);
  if (toks.length === 0) fail(source, 'missing value for command');
  const pipeline: Pipeline = [];
  let cur: string[] = [];
  const flush = () => {
    if (cur.length === 0) fail(source, 'missing command in pipeline');
    const [head, ...rest] = cur;
    if (/^[A-Za-z_]\w*$/.test(head)) {
      if (['range', 'if', 'with', 'end', 'else', 'define', 'template', 'block'].includes(head)) fail(source, `"${head}" is not supported by swarmlet's --format`);
      if (!(head in FUNCTIONS)) fail(source, `function "${head}" not defined`);
      pipeline.push({ fn: head, args: rest.map((t) => parseArg(source, t)) });
    } else {
      if (rest.length > 0) fail(source, `can't give argument to non-function ${head}`);
      pipeline.push({ args: [parseArg(source, head)] });
    }
    cur = [];
  };
  for (const t of toks) {
    if (t === '|') flush();
    else cur.push(t);
  }
  flush();
  return pipeline;
}

export function parseTemplate(source: string): Template {
  const unescaped = source.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const parts: Template['parts'] = [];
  let at = 0;
  while (at < unescaped.length) {
    const open = unescaped.indexOf('{{', at);
    if (open < 0) {
      parts.push({ text: unescaped.slice(at) });
      break;
    }
    if (open > at) parts.push({ text: unescaped.slice(at, open) });
    const close = unescaped.indexOf('}}', open + 2);
    if (close < 0) fail(source, 'unclosed action');
    let inner = unescaped.slice(open + 2, close);
    // {{- and -}} trim the space beside them, as in Go.
    if (inner.startsWith('- ') && parts.length > 0 && 'text' in parts[parts.length - 1]) (parts[parts.length - 1] as { text: string }).text = (parts[parts.length - 1] as { text: string }).text.trimEnd();
    if (inner.startsWith('- ')) inner = inner.slice(2);
    let trimAfter = false;
    if (inner.endsWith(' -')) {
      inner = inner.slice(0, -2);
      trimAfter = true;
    }
    parts.push({ action: parseAction(source, inner), source: inner.trim() });
    at = close + 2;
    if (trimAfter) while (at < unescaped.length && /\s/.test(unescaped[at])) at++;
  }
  return { parts };
}

/** Fields that are maps in docker's types: a missing key in them is `<no value>`, as Go prints it, not an error. */
const MAP_FIELDS = new Set(['Labels', 'Attributes', 'Options', 'Annotations']);

function lookup(source: string, value: Value, path: string[]): Value {
  let v = value;
  for (const [i, name] of path.entries()) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(source, `can't evaluate field ${name} in type ${Array.isArray(v) ? 'slice' : typeof v}`);
    const obj = v as Record<string, Value>;
    if (!(name in obj)) {
      if (i > 0 && MAP_FIELDS.has(path[i - 1])) return undefined;
      fail(source, `can't evaluate field ${name}`);
    }
    v = obj[name];
  }
  return v;
}

/** Runs a parsed template against one value. */
export function execute(t: Template, value: Value): string {
  let out = '';
  for (const part of t.parts) {
    if ('text' in part) {
      out += part.text;
      continue;
    }
    let piped: Value = undefined;
    part.action.forEach((cmd, i) => {
      const args = cmd.args.map((a) => ('field' in a ? lookup(part.source, value, a.field) : 'string' in a ? a.string : a.number));
      if (i > 0) args.push(piped);
      if (cmd.fn) piped = FUNCTIONS[cmd.fn](...args);
      else piped = args[0];
    });
    out += text(piped);
  }
  return out;
}

/** `CurrentState` -> `CURRENT STATE`, the header docker prints for a `table` column. */
export function headerOf(action: string): string {
  const m = /^\.([A-Za-z_]\w*)$/.exec(action.trim());
  if (!m) return action.trim().toUpperCase();
  return m[1].replace(/([a-z0-9])([A-Z])/g, '$1 $2').toUpperCase();
}
