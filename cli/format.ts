/** Output helpers: aligned tables like docker's, and JSON. Pure. */

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
