import { afterSince, formatLogTime, parseGoDuration, parseLogRecord, planLogSince, planLogText, planTimestampText } from '../../agent/runtime/log-plans';

describe('log records', () => {
  test.each([
    ['2026-12-05T00:29:56.123456000Z stdout F hello world', { time: '2026-12-05T00:29:56.123456000Z', stream: 'stdout', partial: false, text: 'hello world' }],
    ['2026-12-05T00:29:56.123456000Z stderr P / # ', { time: '2026-12-05T00:29:56.123456000Z', stream: 'stderr', partial: true, text: '/ # ' }],
    ['2026-12-05T00:29:56.123456000Z stdout F ', { time: '2026-12-05T00:29:56.123456000Z', stream: 'stdout', partial: false, text: '' }],
    // A log written before records: its lines are stdout, with no time.
    ['plain old line', { time: '', stream: 'stdout', partial: false, text: 'plain old line' }],
    ['2026-12-05 stdout F not a record', { time: '', stream: 'stdout', partial: false, text: '2026-12-05 stdout F not a record' }],
  ])('%j', (line, want) => expect(parseLogRecord(line)).toEqual(want));

  test('text as written: a newline after whole lines only', () => {
    const recs = ['2026-12-05T00:00:00.000000000Z stdout P a', '2026-12-05T00:00:00.000000000Z stdout F b', '2026-12-05T00:00:00.000000000Z stdout P $ '].map(parseLogRecord);
    expect(planLogText(recs)).toBe('ab\n$ ');
  });

  test('timestamps as docker prints them (RFC3339Nano: trailing zeros dropped)', () => {
    expect(planTimestampText('2026-12-05T00:29:56.123456000Z')).toBe('2026-12-05T00:29:56.123456Z');
    expect(planTimestampText('2026-12-05T00:29:56.000000000Z')).toBe('2026-12-05T00:29:56Z');
    expect(planTimestampText('2026-12-05T00:29:56.100000001Z')).toBe('2026-12-05T00:29:56.100000001Z');
    expect(planTimestampText('')).toBe('');
    expect(formatLogTime(Date.UTC(2026, 11, 5, 0, 29, 56, 123) + 0.456)).toBe('2026-12-05T00:29:56.123456000Z');
  });
});

describe('logs --since (docker GetTimestamp forms)', () => {
  const now = new Date(Date.UTC(2026, 11, 5, 12, 0, 0));
  test.each([
    ['10m', '2026-12-05T11:50:00.000000000Z'],
    ['1h30m', '2026-12-05T10:30:00.000000000Z'],
    ['1.5h', '2026-12-05T10:30:00.000000000Z'],
    ['90s', '2026-12-05T11:58:30.000000000Z'],
    ['1733360000', '2024-12-05T00:53:20.000000000Z'],
    ['1733360000.5', '2024-12-05T00:53:20.500000000Z'],
    ['1733360000.000000001', '2024-12-05T00:53:20.000000001Z'],
    ['0', '1970-01-01T00:00:00.000000000Z'],
    ['2026-12-05T10:00:00Z', '2026-12-05T10:00:00.000000000Z'],
    ['2026-12-05T10:00:00.123456789Z', '2026-12-05T10:00:00.123456789Z'],
    ['2026-12-05T10:00:00+01:00', '2026-12-05T09:00:00.000000000Z'],
    ['2026-12-05T10:00:00-0230', '2026-12-05T12:30:00.000000000Z'],
  ])('%s', (value, want) => expect(planLogSince(value, now, 0)).toBe(want));

  test('without a zone, local time (as docker)', () => {
    expect(planLogSince('2026-12-05T10:00:00', now, -60)).toBe('2026-12-05T09:00:00.000000000Z');
    expect(planLogSince('2026-12-05', now, 0)).toBe('2026-12-05T00:00:00.000000000Z');
  });

  test.each(['yesterday', '10 minutes', '2026-13-01', '', '12:00', '10x'])('%j is refused with docker\'s message', (value) => {
    expect(() => planLogSince(value, now, 0)).toThrow(`failed to parse value as time or duration: ${JSON.stringify(value)}`);
  });

  test('Go durations', () => {
    expect(parseGoDuration('300ms')).toBe(300);
    expect(parseGoDuration('-1m')).toBe(-60000);
    expect(parseGoDuration('2h45m10s')).toBe(9910000);
    expect(parseGoDuration('5')).toBeUndefined();
  });

  test('records from since on; ones with no time are older than any since', () => {
    const r = parseLogRecord('2026-12-05T10:00:00.000000001Z stdout F x');
    expect(afterSince(r, '2026-12-05T10:00:00.000000001Z')).toBe(true);
    expect(afterSince(r, '2026-12-05T10:00:00.000000002Z')).toBe(false);
    expect(afterSince(r, undefined)).toBe(true);
    expect(afterSince(parseLogRecord('old'), '1970-01-01T00:00:00.000000000Z')).toBe(false);
  });
});
