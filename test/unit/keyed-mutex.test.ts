import { KeyedMutex } from '../../services/common/keyed-mutex';

/** A promise and the function that settles it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

test('calls for one key run one at a time, in order; other keys run alongside', async () => {
  const mutex = new KeyedMutex();
  const order: string[] = [];
  const first = gate();
  const a1 = mutex.runExclusive('a', async () => {
    order.push('a1 start');
    await first.promise;
    order.push('a1 end');
  });
  const a2 = mutex.runExclusive('a', async () => {
    order.push('a2');
  });
  const b = mutex.runExclusive('b', async () => {
    order.push('b');
  });
  await b;
  expect(order).toEqual(['a1 start', 'b']);
  first.open();
  await Promise.all([a1, a2]);
  expect(order).toEqual(['a1 start', 'b', 'a1 end', 'a2']);
});

test('a failed call rejects its caller alone; the next call for the key still runs', async () => {
  const mutex = new KeyedMutex();
  await expect(mutex.runExclusive('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  await expect(mutex.runExclusive('k', async () => 7)).resolves.toBe(7);
});

test('idle() waits for every call already made, queued ones included', async () => {
  const mutex = new KeyedMutex();
  const done: string[] = [];
  const first = gate();
  void mutex.runExclusive('a', async () => {
    await first.promise;
    done.push('a1');
  });
  void mutex.runExclusive('a', async () => {
    done.push('a2');
  });
  const idle = mutex.idle().then(() => done.push('idle'));
  first.open();
  await idle;
  expect(done).toEqual(['a1', 'a2', 'idle']);
});
