/** Output helpers: aligned tables like docker's, JSON, and docker's --format. Pure. */
import { invalidArgument } from '../services/common/errors';

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] + 3)))
      .join('')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

export const title = (s: string) => (s ? s[0].toUpperCase() + s.slice(1).toLowerCase() : s);

/** `NODE_STATE_READY` -> `Ready`: the enum's last word. */
export const enumWord = (s: string) => title(s.split('_').slice(-1)[0]);

/** A table column's header as docker names the field in `--format`: `MANAGER STATUS` -> `ManagerStatus`. */
export const fieldOf = (header: string) => header.split(/\s+/).map((w) => (w === 'ID' ? w : title(w))).join('');

/** Table rows as docker's `--format json` objects: one key per column, renamed where docker's field differs from its header. */
export function rowObjects(headers: string[], rows: string[][], rename: Record<string, string> = {}): Record<string, string>[] {
  return rows.map((cells) => Object.fromEntries(headers.map((h, i) => [rename[h] ?? fieldOf(h), cells[i] ?? ''])));
}

/**
 * What `--format` asks of a list (`ls`, `ps`): docker's table (the default, or `table`), `json`
 * (one docker-shaped object per line, as `docker ... ls --format json` prints), `api` (the API's
 * own objects, as one JSON array), a Go template run per row (`{{.Name}} {{.Status}}`), or
 * `table TEMPLATE` (the columns it names, under their headers).
 */
export function formatList(format: string | undefined, rows: Record<string, unknown>[], defaultTable: () => string, api: () => unknown): string {
  if (format === undefined || format === '' || format === 'table') return defaultTable();
  if (format === 'json') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  if (format === 'api') return json(api());
  const { parseTemplate, execute, headerOf } = require('../services/common/go-template') as typeof import('../services/common/go-template');
  if (format.startsWith('table ')) {
    const t = parseTemplate(format.slice('table '.length).trim());
    const header = t.parts.map((p) => ('text' in p ? p.text : headerOf(p.source))).join('');
    const cells = rows.map((r) => execute(t, r).split('\t'));
    const headers = header.split('\t');
    return headers.length > 1 ? table(headers, cells) : [header, ...cells.map((c) => c.join('\t'))].join('\n') + '\n';
  }
  const t = parseTemplate(format);
  return rows.map((r) => `${execute(t, r)}\n`).join('');
}

/** What `--format` asks of `inspect`: docker-shaped JSON (the default, or `json`), `api`, or a Go template run per object. */
export function formatInspect(format: string | undefined, objects: unknown[], api: () => unknown[] = () => objects): string {
  if (format === undefined || format === '' || format === 'json' || format === 'table') return json(objects);
  if (format === 'api') return json(api());
  const { parseTemplate, execute } = require('../services/common/go-template') as typeof import('../services/common/go-template');
  const t = parseTemplate(format);
  return objects.map((o) => `${execute(t, o)}\n`).join('');
}

/** For commands with one JSON form and a text form: whether --format asks for JSON (`json`, `api`). A template is refused, not ignored. */
export function wantsJson(format: string | undefined): boolean {
  if (format === undefined || format === '' || format === 'table') return false;
  if (format === 'json' || format === 'api') return true;
  throw invalidArgument(`this command takes --format json or table, not a template (${JSON.stringify(format)})`);
}
