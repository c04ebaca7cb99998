import { interpolate, InterpolationError } from '../../services/compose/interpolate';
import { parseDotenv, DotenvError } from '../../services/compose/dotenv';
import { parsePort, parseVolumeShort, resolvePath } from '../../services/compose/normalise';

const env: Record<string, string> = { SET: 'value', EMPTY: '', TAG: '1.36' };
const lookup = (n: string) => env[n];

describe('interpolate', () => {
  test.each([
    ['plain', 'plain'],
    ['$SET', 'value'],
    ['${SET}', 'value'],
    ['a${SET}b$SET.c', 'avalueb' + 'value.c'],
    ['$$SET', '$SET'],
    ['$${SET}', '${SET}'],
    ['${UNSET:-def}', 'def'],
    ['${EMPTY:-def}', 'def'],
    ['${EMPTY-def}', ''],
    ['${UNSET-def}', 'def'],
    ['${SET:-def}', 'value'],
    ['${UNSET:-busybox:${TAG}}', 'busybox:1.36'],
    ['${SET:+other}', 'other'],
    ['${EMPTY:+other}', ''],
    ['${EMPTY+other}', 'other'],
    ['${UNSET+other}', ''],
    ['${SET:?boom}', 'value'],
    ['cost: 5$$', 'cost: 5$'],
  ])('%s -> %s', (text, value) => expect(interpolate(text, lookup).value).toBe(value));

  test('unset variables are reported once', () => {
    expect(interpolate('$NOPE ${NOPE} ${ALSO}', lookup)).toEqual({ value: '  ', unset: ['NOPE', 'ALSO'] });
  });

  test.each([
    ['${UNSET:?set it}', /^required variable UNSET is missing a value: set it$/],
    ['${EMPTY:?}', /^required variable EMPTY is missing a value$/],
    ['${UNSET?x}', /required variable UNSET/],
    ['${SET', /invalid interpolation format.*without its "}"/],
    ['${}', /invalid interpolation format/],
    ['${SET:x}', /invalid interpolation format/],
    ['cost $5', /invalid interpolation format.*\$\$/],
  ])('%s is refused', (text, message) => {
    expect(() => interpolate(text, lookup)).toThrow(InterpolationError);
    expect(() => interpolate(text, lookup)).toThrow(message);
  });
});

describe('parseDotenv', () => {
  test('docker compose .env forms', () => {
    const text = ['# comment', '', 'A=1', 'export B = two ', "C='single $A'", 'D="double ${A}\\n"', 'E=unquoted # comment', 'F=', 'G="multi', 'line"', 'FROM_SHELL', 'H=${A}${SHELL_ONLY}'].join('\n');
    const vars = parseDotenv(text, (n) => ({ FROM_SHELL: 'sh', SHELL_ONLY: '!' } as Record<string, string>)[n]);
    expect(Object.fromEntries(vars)).toEqual({ A: '1', B: 'two', C: 'single $A', D: 'double 1\n', E: 'unquoted', F: '', G: 'multi\nline', FROM_SHELL: 'sh', H: '1!' });
  });
  test.each([
    ['BAD KEY=1', 1, /invalid variable name/],
    ['A=1\nB="open', 2, /unterminated " quote/],
  ])('%j is refused at line %d', (text, line, message) => {
    try {
      parseDotenv(text);
      throw new Error('parsed');
    } catch (err) {
      expect(err).toBeInstanceOf(DotenvError);
      expect((err as DotenvError).line).toBe(line);
      expect((err as Error).message).toMatch(message);
    }
  });
});

describe('ports', () => {
  test.each([
    [80, [{ target: 80, protocol: 'tcp', mode: 'ingress' }]],
    ['80', [{ target: 80, protocol: 'tcp', mode: 'ingress' }]],
    ['8080:80/udp', [{ target: 80, published: 8080, protocol: 'udp', mode: 'ingress' }]],
    ['127.0.0.1::80', [{ target: 80, hostIp: '127.0.0.1', protocol: 'tcp', mode: 'ingress' }]],
    ['[::1]:8080:80', [{ target: 80, published: 8080, hostIp: '::1', protocol: 'tcp', mode: 'ingress' }]],
    ['3000-3001', [{ target: 3000, protocol: 'tcp', mode: 'ingress' }, { target: 3001, protocol: 'tcp', mode: 'ingress' }]],
  ])('%j', (text, ports) => expect(parsePort(text)).toEqual(ports.map((p) => ({ hostIp: undefined, ...p }))));
  test.each([
    ['0', /use a port from 1 to 65535/],
    ['70000', /use a port from 1 to 65535/],
    ['80/sctp', /unknown protocol "sctp"/],
    ['1:2:3:4', /use \[HOST_IP:\]\[PUBLISHED:\]TARGET/],
    ['300.0.0.1:80:80', /is not an IP address/],
    ['8000-8002:80-81', /same length/],
  ])('%j is refused', (text, message) => expect(() => parsePort(text)).toThrow(message));
  test('long syntax is checked', () => {
    expect(() => parsePort({ target: 80, protocol: 'sctp' })).toThrow(/invalid protocol/);
    expect(() => parsePort({ target: 0 })).toThrow(/target must be a port/);
  });
});

describe('volumes, short syntax', () => {
  const resolve = (p: string) => resolvePath('/proj', p, '/home/u');
  test.each([
    ['/data', { type: 'volume', source: '', target: '/data', readOnly: false }],
    ['db:/var/lib/db:ro', { type: 'volume', source: 'db', target: '/var/lib/db', readOnly: true }],
    ['./site:/www:rw,z', { type: 'bind', source: '/proj/site', target: '/www', readOnly: false }],
    ['../up/x:/x', { type: 'bind', source: '/up/x', target: '/x', readOnly: false }],
    ['~/conf:/conf:ro', { type: 'bind', source: '/home/u/conf', target: '/conf', readOnly: true }],
  ])('%s', (text, mount) => expect(parseVolumeShort(text, resolve)).toEqual(mount));
  test.each([
    ['rel', /mount point must be an absolute path/],
    ['a:b', /mount point must be an absolute path/],
    ['bad name:/x', /is not a volume name/],
    ['/a:/b:ro:x', /use \[SOURCE:\]TARGET\[:MODE\]/],
    ['/a:/b:sometimes', /unknown mode "sometimes"/],
  ])('%j is refused', (text, message) => expect(() => parseVolumeShort(text, resolve)).toThrow(message));
});
