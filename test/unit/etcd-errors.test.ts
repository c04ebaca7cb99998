import { EtcdError, GRPCInvalidArgumentError, GRPCResourceExhastedError, GRPCUnavailableError } from 'etcd3';
import { corruptionIn, EtcdSettlingError, etcdMembershipError, etcdRequestError, etcdUnavailable } from '../../manager/store/etcd-errors';
import { conflict, SwarmletError } from '../../services/common/errors';

describe('etcd client errors become SwarmletErrors once, at the store', () => {
  test.each([
    ['etcdserver: leader changed', true],
    ['etcdserver: no leader', true],
    ['14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:2379', false],
  ])('%s: Unavailable, settling %s', (text, settling) => {
    const err = etcdUnavailable(new GRPCUnavailableError(text));
    expect(err).toBeInstanceOf(SwarmletError);
    expect(err.kind).toBe('Unavailable');
    expect(err instanceof EtcdSettlingError).toBe(settling);
    expect(err.message).toBe(`the cluster store is unavailable: ${text}`);
    expect(err.cause).toBeInstanceOf(GRPCUnavailableError);
  });

  test('a reply over the client limit, or a request over etcd\'s, is InvalidArgument', () => {
    const reply = etcdRequestError(new GRPCResourceExhastedError('8 RESOURCE_EXHAUSTED: Received message larger than max (14316167 vs. 4194304)'));
    expect(reply).toMatchObject({ kind: 'InvalidArgument', message: 'request too large: 14316167 bytes, limit 4194304' });
    const request = etcdRequestError(new GRPCInvalidArgumentError('etcdserver: request is too large'));
    expect(request).toMatchObject({ kind: 'InvalidArgument', message: `request too large: more than etcd's limit of ${1.5 * 1024 * 1024} bytes` });
    expect(etcdRequestError(new GRPCUnavailableError('etcdserver: leader changed'))).toBeInstanceOf(EtcdSettlingError);
  });

  test('a membership change refused while a member just joined is settling; another refusal is not', () => {
    const settling = etcdMembershipError(new EtcdError('etcdserver: unhealthy cluster'), 'etcd would not remove the member now');
    expect(settling).toBeInstanceOf(EtcdSettlingError);
    expect(settling.message).toBe('etcd would not remove the member now (etcdserver: unhealthy cluster); try again in a few seconds');
    const other = etcdMembershipError(new EtcdError('etcdserver: member not found'), 'etcd would not remove the member now');
    expect(other).not.toBeInstanceOf(EtcdSettlingError);
    expect(other.kind).toBe('Unavailable');
  });

  test('our own errors pass through unchanged', () => {
    const own = conflict('a service named web already exists');
    expect(etcdRequestError(own)).toBe(own);
    expect(etcdUnavailable(own)).toBe(own);
  });
});

describe('corruptionIn', () => {
  const line = (level: string, msg: string, error?: string) => JSON.stringify({ level, ts: '2026-12-05T03:37:51.492Z', msg, ...(error && { error }) });

  test.each([
    ['walpb: crc mismatch', line('fatal', 'discovery failed', 'walpb: crc mismatch')],
    ['proto: integer overflow', line('fatal', 'discovery failed', 'proto: integer overflow')],
    ['invalid database', line('panic', 'failed to open database', 'invalid database')],
    ['failed to find database snapshot file (snap: snapshot file doesn\'t exist)', line('fatal', 'failed to find database snapshot file (snap: snapshot file doesn\'t exist)')],
  ])('names %s as damage', (why, fatal) => {
    expect(corruptionIn([line('info', 'starting an etcd server'), fatal, ''].join('\n'))).toBe(why);
  });

  test.each([
    ['no fatal line', [line('info', 'ready to serve client requests'), line('warn', 'lost the TCP streaming connection with remote peer')].join('\n')],
    ['a fatal line that is not damage', line('fatal', 'listen tcp 127.0.0.1:2379: bind: address already in use')],
    ['an empty log', ''],
  ])('says nothing for %s', (_what, tail) => {
    expect(corruptionIn(tail)).toBeUndefined();
  });
});
