import { invalidArgument } from './errors';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000 };

/** Parses docker-style durations: `500ms`, `5s`, `1m30s`, `2h`. A bare `0` is zero. */
export function parseDuration(text: string, what = 'duration'): number {
  const s = text.trim();
  if (s === '0') return 0;
  const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== s) {
    throw invalidArgument(`invalid ${what} ${JSON.stringify(text)}: use a number with a unit, like 500ms, 5s, 1m30s`);
  }
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * UNITS[p[2]], 0));
}

/** The shortest docker-style text for a duration in milliseconds. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3600000 === 0) return `${ms / 3600000}h`;
  if (ms % 60000 === 0) return `${ms / 60000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
