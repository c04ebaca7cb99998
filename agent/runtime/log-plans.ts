/**
 * A task's output as the runtimes keep it (output.log): one record per line, each with the time it
 * was written and the stream it came from, as docker's json-file keeps {log, stream, time}:
 *
 *   2026-12-05T00:29:56.123456000Z stdout F the line, without its newline
 *   2026-12-05T00:29:56.175000000Z stderr P a prompt that had no newline yet
 *
 * F: a whole line (its newline dropped); P: a part of one (docker's partial message: output that
 * waited for its newline too long, or longer than 16 KiB). The time is always 30 characters, so
 * records sort by it as text. the shim (shim-program.ts) writes them; these pure functions read them, and turn
 * docker's `logs --since` values and `-t` timestamps into and out of that form.
 */
import { invalidArgument } from '../../services/common/errors';

export type LogStream = 'stdout' | 'stderr';

export interface LogRecord {
  /** RFC 3339, UTC, nanoseconds, 30 characters ('' for a line kept before records had times). */
  time: string;
  stream: LogStream;
  /** A part of a line: its text has no newline after it. */
  partial: boolean;
  text: string;
}

const RECORD = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([FP]) /;
/** How long a record's prefix (time, stream, flag and their spaces) is. */
export const LOG_PREFIX_LENGTH = 40;

/** A record's prefix (the first LOG_PREFIX_LENGTH characters of its line); undefined when the line is no record. */
export function parseLogPrefix(head: string): Omit<LogRecord, 'text'> | undefined {
  const m = RECORD.exec(head);
  return m ? { time: m[1], stream: m[2] as LogStream, partial: m[3] === 'P' } : undefined;
}

/** One line of output.log as a record; a line in no record form (a log written before records) is a whole stdout line with no time. */
export function parseLogRecord(line: string): LogRecord {
  const p = parseLogPrefix(line.slice(0, LOG_PREFIX_LENGTH));
  return p ? { ...p, text: line.slice(LOG_PREFIX_LENGTH) } : { time: '', stream: 'stdout', partial: false, text: line };
}

/** The text of records as the process wrote it (a newline after each whole line). */
export function planLogText(records: LogRecord[]): string {
  return records.map((r) => (r.partial ? r.text : `${r.text}\n`)).join('');
}

/** A time as records keep it: 2026-12-05T00:29:56.123456789Z (a fraction of `ms` to the microsecond; `extraNanos` below a millisecond). */
export function formatLogTime(ms: number, extraNanos = 0): string {
  const whole = Math.floor(ms);
  const iso = new Date(whole).toISOString(); // ...:56.123Z
  const nanos = Math.min(999999, Math.round((ms - whole) * 1e3) * 1e3 + extraNanos);
  return `${iso.slice(0, 23)}${String(nanos).padStart(6, '0')}Z`;
}

/** docker's `logs -t` prefix: RFC 3339 with nanoseconds, trailing zeros dropped (Go's RFC3339Nano). */
export function planTimestampText(time: string): string {
  if (!time) return '';
  return time.replace(/\.?0+Z$/, 'Z');
}

const DURATION = /^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
const DATE_TIME = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?(Z|[+-]\d\d:?\d\d)?$/;

/** Go's time.ParseDuration, in milliseconds (undefined: not a duration). */
export function parseGoDuration(value: string): number | undefined {
  if (!DURATION.test(value)) return undefined;
  const sign = value.startsWith('-') ? -1 : 1;
  let ms = 0;
  for (const m of value.replace(/^[-+]/, '').matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * UNIT_MS[m[2]];
  return sign * ms;
}

/**
 * docker's `--since`/`--until` values (its GetTimestamp): a Go duration before `now` (10m, 1h30m),
 * Unix seconds (1733360000, 1733360000.5), or an RFC 3339 date or time (2026-12-05,
 * 2026-12-05T00:29:56, ...Z or +01:00; without a zone, local time). The time as records keep it.
 */
export function planLogSince(value: string, now: Date, tzOffsetMinutes = now.getTimezoneOffset()): string {
  const v = value.trim();
  const fail = () => invalidArgument(`failed to parse value as time or duration: ${JSON.stringify(value)}`);
  if (v !== '0') {
    const d = parseGoDuration(v);
    if (d !== undefined) return formatLogTime(Math.max(0, now.getTime() - d));
  }
  const unix = /^(\d+)(?:\.(\d{1,9}))?$/.exec(v);
  if (unix) {
    const nanos = Number((unix[2] ?? '').padEnd(9, '0'));
    return formatLogTime(Number(unix[1]) * 1000 + Math.floor(nanos / 1e6), nanos % 1e6);
  }
  const m = DATE_TIME.exec(v);
  if (!m) throw fail();
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const nums = [y, mo, d, h, mi, s].map(Number);
  if (nums[1] < 1 || nums[1] > 12 || nums[2] < 1 || nums[2] > 31 || nums[3] > 23 || nums[4] > 59 || nums[5] > 60) throw fail();
  let ms = Date.UTC(nums[0], nums[1] - 1, nums[2], nums[3], nums[4], nums[5]);
  if (!zone) ms += tzOffsetMinutes * 60000;
  else if (zone !== 'Z') {
    const z = /^([+-])(\d\d):?(\d\d)$/.exec(zone)!;
    ms -= (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3])) * 60000;
  }
  const nanos = Number(frac.padEnd(9, '0') || '0');
  return formatLogTime(ms + Math.floor(nanos / 1e6), nanos % 1e6);
}

/** Whether a record is at or after `since` (records with no time are older than any since). */
export function afterSince(record: LogRecord, since: string | undefined): boolean {
  return !since || record.time >= since;
}
