import { createRootLogger } from '../../services/common/logger';
import { Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { sealForCreate, sealForUpdate, taskCredentials, withoutSecrets } from '../../manager/service-secrets';
import { newSealKey, unseal } from '../../services/pki/seal';

const key = newSealKey();
const log = createRootLogger('silent' as 'info');
const svc = (id: string, sealed: Buffer): Service => ({ id, registryAuthSealed: sealed }) as Service;
const task = (id: string, serviceId: string, desiredState = TaskState.TASK_STATE_RUNNING): Task => ({ id, serviceId, desiredState }) as Task;

describe('sealing services\' registry credentials', () => {
  test('create seals for the service id; no credential, nothing sealed', () => {
    const sealed = sealForCreate(() => key, 'alice:pw', 's1', 'r:5000/app:1');
    expect(unseal(key, sealed, 's1')).toBe('alice:pw');
    expect(sealForCreate(() => key, '', 's1', 'r:5000/app:1').length).toBe(0);
  });

  test('create refuses exec images, malformed credentials and a manager without a key', () => {
    expect(() => sealForCreate(() => key, 'alice:pw', 's1', 'exec:/')).toThrow(/exec: images are not pulled/);
    expect(() => sealForCreate(() => key, 'nocolon', 's1', 'app')).toThrow(/user:password/);
    expect(() => sealForCreate(() => undefined, 'alice:pw', 's1', 'app')).toThrow(/no seal key/);
  });

  test('update: a new credential, clear, or keep', () => {
    const current = svc('s1', sealForCreate(() => key, 'alice:pw', 's1', 'app'));
    expect(unseal(key, sealForUpdate(() => key, current, { registryAuth: 'bob:x', clearRegistryAuth: false }, 'app'), 's1')).toBe('bob:x');
    expect(sealForUpdate(() => key, current, { registryAuth: '', clearRegistryAuth: true }, 'app').length).toBe(0);
    expect(sealForUpdate(() => key, current, { registryAuth: '', clearRegistryAuth: false }, 'app').equals(current.registryAuthSealed)).toBe(true);
    expect(() => sealForUpdate(() => key, current, { registryAuth: 'bob:x', clearRegistryAuth: true }, 'app')).toThrow(/exclusive/);
  });

  test('the API never returns the sealed credential', () => {
    expect(withoutSecrets(svc('s1', Buffer.from('xyz'))).registryAuthSealed.length).toBe(0);
  });

  test('a node gets the credential for each task it must run whose service has one', () => {
    const services = [svc('s1', sealForCreate(() => key, 'alice:pw', 's1', 'app')), svc('s2', Buffer.alloc(0)), svc('s3', sealForCreate(() => newSealKey(), 'eve:x', 's3', 'app'))];
    const tasks = [task('t1', 's1'), task('t2', 's2'), task('t3', 's1', TaskState.TASK_STATE_SHUTDOWN), task('t4', 's3'), task('t5', 's1')];
    expect(taskCredentials(tasks, services, () => key, log)).toEqual([
      { taskId: 't1', registryAuth: 'alice:pw' },
      { taskId: 't5', registryAuth: 'alice:pw' },
    ]);
    expect(taskCredentials(tasks, services, () => undefined, log)).toEqual([]);
  });
});
