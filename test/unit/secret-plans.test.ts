/** The pure plans of secrets and configs: references, targets, the agent's files and mounts, the CLI's flags. */
import pino from 'pino';
import { checkUnused, configFilePath, planFileReferences, resolveFileObject, secretFileName, validateFileObject } from '../../manager/file-object-plans';
import { taskFileValues } from '../../manager/file-values';
import { sealFileData } from '../../manager/service-secrets';
import { planFileMounts, planTaskFileMounts, planTaskFiles } from '../../agent/runtime/mount-plans';
import { renderExecFileMounts } from '../../agent/runtime/exec-spec';
import { parseConfigFlag, parseSecretFlag, planSecretChange } from '../../cli/file-flags';
import { fileObjectJson, fileObjectRows, readData } from '../../cli/commands/secret';
import { Config, Secret, Service, ServiceSpec, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { newSealKey } from '../../services/pki/seal';

const secret = (id: string, name: string): Secret => ({ id, spec: { name, labels: {} }, dataSealed: Buffer.alloc(0) });
const config = (id: string, name: string): Config => ({ id, spec: { name, labels: {} }, dataSealed: Buffer.alloc(0) });
const spec = (secrets: object[], configs: object[] = []) => ServiceSpec.fromPartial({ name: 'web', task: { container: { image: 'exec:/', secrets, configs } } });

describe('names, values and targets', () => {
  test.each([
    ['ok-name.1', 1, undefined],
    ['', 1, 'a secret needs a name'],
    ['-x', 1, 'invalid secret name'],
    ['a b', 1, 'invalid secret name'],
    ['x', 0, 'larger than 0'],
    ['x', 500 * 1024 + 1, 'less than 500 KB'],
  ])('%j with %d bytes', (name, size, error) => {
    const run = () => validateFileObject('secret', name, new Uint8Array(size));
    if (error) expect(run).toThrow(error);
    else expect(run).not.toThrow();
  });

  test.each([
    ['', 'pw', 'pw'],
    ['key', 'pw', 'key'],
    ['sub/key', 'pw', 'sub/key'],
    ['/run/secrets/key', 'pw', 'key'],
  ])('secret target %j of %s -> /run/secrets/%s', (target, name, file) => expect(secretFileName(target, name)).toBe(file));

  test.each([['/etc/key'], ['../key'], ['/run/secrets/'], ['a/../../b']])('secret target %j is refused', (target) => expect(() => secretFileName(target, 'pw')).toThrow());

  test.each([
    ['', 'app.ini', '/app.ini'],
    ['/etc/app.ini', 'app.ini', '/etc/app.ini'],
    ['etc/app.ini', 'app.ini', '/etc/app.ini'],
  ])('config target %j of %s -> %s', (target, name, path) => expect(configFilePath(target, name)).toBe(path));
  test('a config target with .. is refused', () => expect(() => configFilePath('/etc/../x', 'c')).toThrow("may not hold '..'"));
});

describe('resolveFileObject', () => {
  test('finds by name, id and unique id prefix', () => {
    const all = [secret('abc123', 'db'), secret('abd456', 'api')];
    expect(resolveFileObject('secret', all, 'db').id).toBe('abc123');
    expect(resolveFileObject('secret', all, 'abd456').spec?.name).toBe('api');
    expect(resolveFileObject('secret', all, 'abc').id).toBe('abc123');
  });

  // The Control fuzz's shrunk counterexample: a reference with a control character made a two-line error.
  test.each(['\u0000\n\u0000', 'db\r\nx'])('a reference with a control character (%j) is refused in one line', (ref) => {
    let err: unknown;
    try {
      resolveFileObject('secret', [secret('abc123', 'db')], ref);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ kind: 'InvalidArgument' });
    expect((err as Error).message).not.toContain('\n');
  });
});

describe('planFileReferences', () => {
  const secrets = [secret('s1', 'pw'), secret('s2', 'key')];
  const configs = [config('c1', 'app.ini')];

  test('names become ids; defaults are filled in', () => {
    const out = planFileReferences(spec([{ secretName: 'pw' }, { secretName: 's2', file: { name: 'k', uid: 1, gid: 2, mode: 0o400 } }], [{ configName: 'app.ini' }]), secrets, configs);
    expect(out.task?.container?.secrets).toEqual([
      { secretId: 's1', secretName: 'pw', file: { name: 'pw', uid: 0, gid: 0, mode: 0o444 } },
      { secretId: 's2', secretName: 'key', file: { name: 'k', uid: 1, gid: 2, mode: 0o400 } },
    ]);
    expect(out.task?.container?.configs).toEqual([{ configId: 'c1', configName: 'app.ini', file: { name: '/app.ini', uid: 0, gid: 0, mode: 0o444 } }]);
  });

  test('a reference by an id that went is looked up by its name again', () => {
    const out = planFileReferences(spec([{ secretId: 'gone', secretName: 'pw' }]), secrets, configs);
    expect(out.task?.container?.secrets[0].secretId).toBe('s1');
  });

  test('unknown references, two files on one target and bad modes are refused', () => {
    expect(() => planFileReferences(spec([{ secretName: 'nope' }]), secrets, configs)).toThrow('no such secret: nope');
    expect(() => planFileReferences(spec([], [{ configName: 'nope' }]), secrets, configs)).toThrow('no such config: nope');
    expect(() => planFileReferences(spec([{ secretName: 'pw', file: { name: 'x' } }, { secretName: 'key', file: { name: 'x' } }]), secrets, configs)).toThrow('the same target /run/secrets/x');
    expect(() => planFileReferences(spec([{ secretName: 'pw', file: { mode: 0o1777 } }]), secrets, configs)).toThrow('not a file mode');
  });

  test('a spec without references is returned as it is', () => {
    const s = spec([]);
    expect(planFileReferences(s, [], [])).toBe(s);
  });
});

describe('checkUnused', () => {
  const svc = (name: string, s: ServiceSpec | undefined, previous?: ServiceSpec): Service => ({ id: name, spec: { ...s!, name }, previousSpec: previous, specVersion: 1, registryAuthSealed: Buffer.alloc(0) });
  const uses = spec([{ secretId: 's1', secretName: 'pw' }]);
  test('names every service that uses it, now or in its previous spec', () => {
    expect(() => checkUnused('secret', secret('s1', 'pw'), [svc('b', uses), svc('a', spec([]), uses), svc('c', spec([]))])).toThrow("secret 'pw' is in use by the following services: a, b");
    expect(() => checkUnused('secret', secret('s2', 'key'), [svc('b', uses)])).not.toThrow();
  });
});

describe('delivery', () => {
  const key = newSealKey();
  const log = pino({ level: 'silent' });
  const task = (id: string, secretIds: string[], desired = TaskState.TASK_STATE_RUNNING): Task =>
    Task.fromPartial({ id, desiredState: desired, spec: { container: { image: 'exec:/', secrets: secretIds.map((s) => ({ secretId: s, secretName: s, file: { name: s, uid: 0, gid: 0, mode: 0o400 } })) } } });
  const sealed = (id: string, value: string): Secret => ({ ...secret(id, id), dataSealed: sealFileData(() => key, 'secret', id, Buffer.from(value)) });

  test('a node gets the values its wanted tasks use, and no others', () => {
    const all = [sealed('a', 'va'), sealed('b', 'vb'), sealed('c', 'vc')];
    const values = taskFileValues([task('t1', ['a']), task('t2', ['c'], TaskState.TASK_STATE_SHUTDOWN)], all, [], () => key, log);
    expect(values.map((v) => [v.id, Buffer.from(v.data).toString()])).toEqual([['a', 'va']]);
  });

  test('a value sealed for another id does not open, and is left out', () => {
    const moved = { ...sealed('a', 'va'), id: 'b' };
    expect(taskFileValues([task('t1', ['b'])], [moved], [], () => key, log)).toEqual([]);
  });
});

describe("the agent's files and mounts", () => {
  const task = Task.fromPartial({
    id: 't1',
    spec: {
      container: {
        image: 'busybox',
        secrets: [{ secretId: 's1', secretName: 'pw', file: { name: 'pw', uid: 0, gid: 0, mode: 0o400 } }],
        configs: [{ configId: 'c1', configName: 'app.ini', file: { name: '/etc/app.ini', uid: 5, gid: 6, mode: 0o444 } }],
      },
    },
  });
  const values = new Map<string, Uint8Array>([['s1', Buffer.from('x')], ['c1', Buffer.from('y')]]);

  test('files, then the mounts of the secrets directory and of each config, read-only', () => {
    const files = planTaskFiles(task, values);
    expect(files.map((f) => [f.kind, f.path, f.target, f.uid, f.gid, f.mode])).toEqual([
      ['secret', 'secrets/pw', 'pw', 0, 0, 0o400],
      ['config', 'configs/0', '/etc/app.ini', 5, 6, 0o444],
    ]);
    const mounts = planTaskFileMounts(files, '/tmpfs/t1');
    expect(mounts).toEqual({ secretsDir: '/tmpfs/t1/secrets', configs: [{ source: '/tmpfs/t1/configs/0', target: '/etc/app.ini' }] });
    expect(planFileMounts(mounts).map((m) => [m.destination, m.source, m.options.includes('ro')])).toEqual([
      ['/run/secrets', '/tmpfs/t1/secrets', true],
      ['/etc/app.ini', '/tmpfs/t1/configs/0', true],
    ]);
    expect(renderExecFileMounts(mounts)).toBe('d\t/tmpfs/t1/secrets\t/run/secrets\nf\t/tmpfs/t1/configs/0\t/etc/app.ini\n');
  });

  test('a value that did not come refuses the task', () => {
    expect(() => planTaskFiles(task, new Map([['c1', Buffer.from('y')]]))).toThrow('secret pw is not available to this node');
  });

  test('a task without secrets or configs has nothing to mount', () => {
    expect(planTaskFiles(Task.fromPartial({ id: 't2', spec: { container: { image: 'busybox' } } }), values)).toEqual([]);
    expect(planFileMounts(undefined)).toEqual([]);
  });
});

describe('CLI flags', () => {
  test('--secret NAME and the long form', () => {
    expect(parseSecretFlag('pw')).toEqual({ secretId: '', secretName: 'pw', file: { name: '', uid: 0, gid: 0, mode: 0 } });
    expect(parseSecretFlag('source=pw,target=db,uid=33,gid=34,mode=0400')).toEqual({ secretId: '', secretName: 'pw', file: { name: 'db', uid: 33, gid: 34, mode: 0o400 } });
    expect(parseConfigFlag('src=app.ini,target=/etc/app.ini')).toEqual({ configId: '', configName: 'app.ini', file: { name: '/etc/app.ini', uid: 0, gid: 0, mode: 0 } });
  });

  test.each([['target=x'], ['source=pw,mode=999'], ['source=pw,uid=x'], ['source=pw,color=red'], ['source=pw,source=q'], ['a,b']])('--secret %j is refused', (text) => expect(() => parseSecretFlag(text)).toThrow());

  test('--secret-rm then --secret-add', () => {
    const current = [parseSecretFlag('a'), { ...parseSecretFlag('b'), secretId: 'idb' }];
    expect(planSecretChange(current, ['c'], ['a']).map((r) => r.secretName)).toEqual(['b', 'c']);
    expect(planSecretChange(current, ['source=b,target=x'], []).map((r) => [r.secretName, r.file?.name])).toEqual([['a', ''], ['b', 'x']]);
    expect(planSecretChange(current, [], ['idb']).map((r) => r.secretName)).toEqual(['a']);
    expect(() => planSecretChange(current, [], ['nope'])).toThrow('--secret-rm nope: the service has no secret nope');
  });
});

describe('secret create FILE|-', () => {
  test('- reads stdin; a missing file is one clear error', () => {
    expect(readData('-', () => Buffer.from('from stdin')).toString()).toBe('from stdin');
    expect(() => readData('/nonexistent/pw.txt')).toThrow('cannot read /nonexistent/pw.txt: no such file');
  });

  test('inspect shows a config\'s data and never a secret\'s; ls rows as docker prints them', () => {
    const s: Secret = { id: 'abc', meta: { version: 7, createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z' }, spec: { name: 'pw', labels: { a: 'b' } }, dataSealed: Buffer.from('sealed') };
    expect(fileObjectJson(s)).toEqual({ ID: 'abc', Version: { Index: 7 }, CreatedAt: '2026-01-01T00:00:00Z', UpdatedAt: '2026-01-01T00:00:00Z', Spec: { Name: 'pw', Labels: { a: 'b' } } });
    expect(fileObjectJson(s, Buffer.from('x')).Spec).toEqual({ Name: 'pw', Labels: { a: 'b' }, Data: 'eA==' });
    const now = Date.parse('2026-01-01T00:02:00Z');
    expect(fileObjectRows('secret', [s], now)).toEqual([['abc', 'pw', '', '2 minutes ago', '2 minutes ago']]);
    expect(fileObjectRows('config', [s], now)).toEqual([['abc', 'pw', '2 minutes ago', '2 minutes ago']]);
  });
});
