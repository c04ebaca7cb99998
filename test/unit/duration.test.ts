import { formatDuration, parseDuration } from '../../services/common/duration';
import { SwarmletError } from '../../services/common/errors';
import { planClusterSpec } from '../../manager/node-plans';

describe('parseDuration', () => {
  test.each([
    ['0', 0],
    ['500ms', 500],
    ['5s', 5000],
    ['1.5s', 1500],
    ['1m30s', 90000],
    ['2h', 7200000],
  ])('%s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  test.each(['', '5', 's', '5x', '-1s', '5s junk', '1m 30s'])('%j is refused', (text) => {
    expect(() => parseDuration(text, '--x')).toThrow(SwarmletError);
    expect(() => parseDuration(text, '--x')).toThrow(/invalid --x/);
  });

  test.each([
    [0, '0s'],
    [500, '500ms'],
    [5000, '5s'],
    [90000, '90s'],
    [120000, '2m'],
    [7200000, '2h'],
  ])('%d ms prints as %s', (ms, text) => expect(formatDuration(ms)).toBe(text));
});

describe('planClusterSpec', () => {
  const current = { heartbeatPeriodMs: 1000, nodeDownAfterMs: 5000 };
  test('keeps what is not changed', () => {
    expect(planClusterSpec(current, { nodeDownAfterMs: 3000, heartbeatPeriodMs: undefined })).toEqual({ heartbeatPeriodMs: 1000, nodeDownAfterMs: 3000 });
  });
  test.each([
    [{ nodeDownAfterMs: 1000 }, /at least 2s/],
    [{ heartbeatPeriodMs: 50 }, /between 100ms and 1m/],
    [{ heartbeatPeriodMs: 4000 }, /twice the heartbeat period/],
  ])('%j is refused', (change, message) => {
    expect(() => planClusterSpec(current, change)).toThrow(message);
  });
});
