import { SwarmletError } from '../../services/common/errors';
import { TOKEN_PREFIX, constantTimeEqual, encodeBase36, formatJoinToken, matchJoinToken, parseJoinToken } from '../../services/pki/tokens';

const digest = 'a'.repeat(50);
const bytes = (...values: number[]) => Uint8Array.from(values);
const secretBytes = Uint8Array.from({ length: 16 }, (_, i) => i * 17);

describe('encodeBase36', () => {
  test.each([
    [bytes(), 3, '000'],
    [bytes(0), 1, '0'],
    [bytes(35), 2, '0z'],
    [bytes(36), 2, '10'],
    [bytes(1, 0), 4, '0074'],
    [new Uint8Array(16).fill(0xff), 25, 'f5lxx1zz5pnorynqglhzmsp33'],
    [new Uint8Array(32).fill(0xff), 50, '6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof'],
  ])('%p in %i digits is %s', (input, width, expected) => {
    expect(encodeBase36(input, width)).toBe(expected);
  });

  test('refuses a number that does not fit the width', () => {
    expect(() => encodeBase36(bytes(36), 1)).toThrow(SwarmletError);
  });
});

describe('formatJoinToken and parseJoinToken', () => {
  test('round trip', () => {
    const token = formatJoinToken(digest, secretBytes);
    expect(token).toBe(`${TOKEN_PREFIX}-1-${digest}-${encodeBase36(secretBytes, 25)}`);
    expect(parseJoinToken(token)).toEqual({ version: 1, caDigest: digest, secret: encodeBase36(secretBytes, 25) });
  });

  test('surrounding whitespace is ignored', () => {
    const token = formatJoinToken(digest, secretBytes);
    expect(parseJoinToken(`  ${token}\n`).caDigest).toBe(digest);
  });

  test('a digest of the wrong shape is refused when formatting', () => {
    expect(() => formatJoinToken('abc', secretBytes)).toThrow(/CA digest/);
  });

  const secret = '1'.repeat(25);
  test.each([
    ['empty', '', /must start with "SWLTKN-"/],
    ["swarmkit's prefix", `SWMTKN-1-${digest}-${secret}`, /must start with "SWLTKN-"/],
    ['lowercase prefix', `swltkn-1-${digest}-${secret}`, /must start with "SWLTKN-"/],
    ['too few parts', `SWLTKN-1-${digest}`, /4 dash-separated parts, not 3/],
    ['too many parts', `SWLTKN-1-${digest}-${secret}-x`, /4 dash-separated parts, not 5/],
    ['version 2', `SWLTKN-2-${digest}-${secret}`, /version "2"; only version 1/],
    ['short digest', `SWLTKN-1-${digest.slice(1)}-${secret}`, /CA digest must be 50 lowercase base36/],
    ['digest not base36', `SWLTKN-1-${digest.slice(1)}_-${secret}`, /CA digest must be 50 lowercase base36/],
    ['uppercase digest', `SWLTKN-1-${digest.toUpperCase()}-${secret}`, /CA digest must be 50 lowercase base36/],
    ['long secret', `SWLTKN-1-${digest}-${secret}1`, /secret must be 25 lowercase base36/],
    ['secret not base36', `SWLTKN-1-${digest}-${secret.slice(1)}!`, /secret must be 25 lowercase base36/],
  ])('%s is refused', (_name, token, message) => {
    let thrown: unknown;
    try {
      parseJoinToken(token);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SwarmletError);
    expect((thrown as SwarmletError).kind).toBe('InvalidArgument');
    expect((thrown as SwarmletError).message).toMatch(message);
    expect((thrown as SwarmletError).message).not.toContain(digest);
  });
});

describe('matchJoinToken', () => {
  const tokens = {
    worker: formatJoinToken(digest, new Uint8Array(16).fill(1)),
    manager: formatJoinToken(digest, new Uint8Array(16).fill(2)),
  };
  const other = formatJoinToken(digest, new Uint8Array(16).fill(3));

  test.each([
    ['the worker token', 'worker', tokens.worker],
    ['the manager token', 'manager', tokens.manager],
    ['the worker token with whitespace', 'worker', ` ${tokens.worker}\n`],
    ['an unknown token', null, other],
    ['a truncated manager token', null, tokens.manager.slice(0, -1)],
    ['an extended worker token', null, tokens.worker + '0'],
    ['an empty string', null, ''],
    ['garbage', null, 'not a token at all'],
  ])('%s grants %p', (_name, role, presented) => {
    expect(matchJoinToken(presented, tokens)).toBe(role);
  });

  test('an empty configured token never matches', () => {
    expect(matchJoinToken('', { worker: '', manager: '' })).toBeNull();
    expect(matchJoinToken(' ', { worker: '', manager: tokens.manager })).toBeNull();
  });

  test('never throws, whatever it is given', () => {
    expect(matchJoinToken(undefined as unknown as string, tokens)).toBeNull();
  });
});

describe('constantTimeEqual', () => {
  test.each([
    ['', '', true],
    ['abc', 'abc', true],
    ['abc', 'abd', false],
    ['abc', 'ab', false],
    ['ab', 'abc', false],
    ['', 'a', false],
    ['\u0000', '', false],
    ['', '\u0000', false],
  ])('%p vs %p is %p', (a, b, equal) => {
    expect(constantTimeEqual(a, b)).toBe(equal);
  });
});
