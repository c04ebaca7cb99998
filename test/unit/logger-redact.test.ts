import { Writable } from 'node:stream';
import { createRootLogger } from '../../services/common/logger';

test('registry credentials, passwords and seal keys never reach a log line', async () => {
  let out = '';
  const log = createRootLogger('info', new Writable({ write: (c, _e, cb) => ((out += c.toString()), cb()) }));
  log.info(
    {
      registryAuth: 'alice:top1',
      req: { registryAuth: 'alice:top2', registry_auth: 'alice:top3', reference: 'r:5000/x' },
      msg: { credentials: [{ taskId: 't1', registryAuth: 'alice:top4' }] },
      cred: { username: 'alice', password: 'top5' },
      issued: { sealKey: 'top6' },
    },
    'hello',
  );
  await new Promise((r) => setImmediate(r));
  expect(out).toContain('r:5000/x');
  expect(out).toContain('[redacted]');
  for (const secret of ['top1', 'top2', 'top3', 'top4', 'top5', 'top6']) expect(out).not.toContain(secret);
});
