/** ReconcileLoop without a store: passes on request, coalescing, per-request completion, resync passes. */
import { getEventListeners } from 'node:events';
import pino from 'pino';
import { LOADED_WAIT_MAX_MS, PassInfo, ReconcileLoop } from '../../services/common/reconcile-loop';

const log = pino({ level: 'silent' });

const loops: ReconcileLoop[] = [];
afterEach(async () => {
  await Promise.all(loops.splice(0).map((l) => l.stop()));
});

/** A loop whose passes are recorded, and each waits for `release()` when `hold` is set. */
function recordedLoop(opts: { resyncMs?: number; coalesceMs?: number; coalesceLeading?: boolean; coalescePassFactor?: number; passMs?: number; fail?: (n: number) => boolean } = {}) {
  const passes: PassInfo[] = [];
  let hold = false;
  let gate: (() => void) | undefined;
  const started: (() => void)[] = [];
  const loop = new ReconcileLoop(undefined, {
    name: 'test',
    watch: [],
    resyncMs: opts.resyncMs ?? Infinity,
    coalesceMs: opts.coalesceMs,
    coalesceLeading: opts.coalesceLeading,
    coalescePassFactor: opts.coalescePassFactor,
    reconcile: async (_signal, pass) => {
      passes.push(pass);
      for (const s of started.splice(0)) s();
      if (opts.passMs) await new Promise((r) => setTimeout(r, opts.passMs));
      if (hold) await new Promise<void>((r) => (gate = r));
      if (opts.fail?.(passes.length)) throw new Error(`pass ${passes.length} failed`);
    },
  }, log);
  const nextPassBegins = () => new Promise<void>((r) => started.push(r));
  return {
    loop,
    passes,
    release: () => {
      const g = gate;
      gate = undefined;
      g?.();
    },
    /** Resolves when the next pass has begun. */
    nextPassBegins,
    /** Starts the loop (stopped after the test); with `held`, every pass waits for release(), and this for the first to begin. */
    start: async (held = false) => {
      hold = held;
      const first = nextPassBegins();
      loops.push(loop);
      loop.start();
      if (held) await first;
    },
  };
}

/** Whether `p` has settled once every queued callback and timer of this turn ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

test('a request made during a pass waits for the next pass, which began after it', async () => {
  const t = recordedLoop();
  await t.start(true);
  const second = t.nextPassBegins();
  const req = t.loop.request();
  t.release();
  await second;
  // Pass 1 ended; the request was made after it began, so it is not answered yet.
  expect(await settled(req)).toBe(false);
  expect(t.passes).toHaveLength(2);
  t.release();
  await req;
  expect(t.passes).toHaveLength(2);
});

test('requests made together share one pass and resolve in the order they were made', async () => {
  const t = recordedLoop();
  await t.start(true);
  const order: number[] = [];
  const reqs = [0, 1, 2].map((i) => t.loop.request().then(() => order.push(i)));
  const second = t.nextPassBegins();
  t.release();
  await second;
  t.release();
  await Promise.all(reqs);
  expect(order).toEqual([0, 1, 2]);
  expect(t.passes).toHaveLength(2);
});

test('a request made while idle runs a pass and resolves after it', async () => {
  const t = recordedLoop();
  await t.start();
  await t.loop.request();
  const before = t.passes.length;
  await t.loop.request();
  expect(t.passes).toHaveLength(before + 1);
});

test('a failed pass leaves the request to the retry that ends well', async () => {
  // The first pass runs as the loop starts; the first request is answered by pass 2.
  const t = recordedLoop({ fail: (n) => n === 3 });
  await t.start();
  await t.loop.request();
  expect(t.passes).toHaveLength(2);
  await t.loop.request();
  // Pass 3 failed; the request resolved only after pass 4, the retry.
  expect(t.passes).toHaveLength(4);
});

test('a resync pass says so: when asked for, and when the period runs out; other passes do not', async () => {
  const t = recordedLoop();
  await t.start();
  await t.loop.request();
  await t.loop.request({ resync: true });
  await t.loop.request();
  expect(t.passes.map((p) => p.resync)).toEqual([false, false, true, false]);

  const timed = recordedLoop({ resyncMs: 10 });
  await timed.start();
  for (let i = 0; i < 200 && timed.passes.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  expect(timed.passes.slice(0, 2).map((p) => p.resync)).toEqual([false, true]);
});

test('stopping resolves the requests still waiting, and later ones at once', async () => {
  const t = recordedLoop();
  await t.start(true);
  const req = t.loop.request();
  const stopped = t.loop.stop();
  t.release();
  await stopped;
  await req;
  await t.loop.request();
  expect(t.passes).toHaveLength(1);
});

test('with coalesceMs, changes that come one after another make one pass, not one each', async () => {
  const t = recordedLoop({ coalesceMs: 1000 });
  await t.start();
  await t.loop.request();
  const before = t.passes.length;
  // Five changes, each in its own turn of the event loop: without coalescing each would start a pass.
  for (let i = 0; i < 5; i++) {
    t.loop.poke();
    await new Promise((r) => setImmediate(r));
  }
  await t.loop.request();
  expect(t.passes).toHaveLength(before + 1);
});

test('with coalesceLeading, a change after a quiet spell is passed before any timer runs; changes during the wait after it make one pass', async () => {
  jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
  try {
    const t = recordedLoop({ coalesceMs: 1000, coalesceLeading: true });
    await t.start();
    await jest.advanceTimersByTimeAsync(1000);
    const before = t.passes.length;
    const begins = t.nextPassBegins();
    t.loop.poke();
    expect(await settled(begins)).toBe(true);
    // Now within the wait that follows that pass: five changes and a request share one pass, once the wait is over.
    await new Promise((r) => setImmediate(r));
    const req = t.loop.request();
    for (let i = 0; i < 5; i++) {
      t.loop.poke();
      await new Promise((r) => setImmediate(r));
    }
    expect(await settled(req)).toBe(false);
    await jest.advanceTimersByTimeAsync(1000);
    await req;
    expect(t.passes).toHaveLength(before + 2);
  } finally {
    jest.useRealTimers();
  }
});

test('with coalescePassFactor, the wait after a pass grows with what the pass took, up to a bound; quick passes wait coalesceMs', async () => {
  jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
  try {
    /** Starts a loop whose passes take `passMs`, and checks that a change after its first pass waits `waitMs` exactly. */
    const waitsAfterPass = async (passMs: number | undefined, waitMs: number) => {
      const t = recordedLoop({ coalesceMs: 100, coalesceLeading: true, coalescePassFactor: 2, passMs });
      await t.start();
      await jest.advanceTimersByTimeAsync(passMs ?? 0);
      const begins = t.nextPassBegins();
      t.loop.poke();
      await jest.advanceTimersByTimeAsync(waitMs - 1);
      expect(await settled(begins)).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      expect(await settled(begins)).toBe(true);
    };
    // A pass of 300 ms: the wait after it is 600 ms, not 100.
    await waitsAfterPass(300, 600);
    // A pass of 2 s waits the bound (1 s), not 4 s.
    await waitsAfterPass(2000, LOADED_WAIT_MAX_MS);
    // Quick passes wait coalesceMs.
    await waitsAfterPass(undefined, 100);
  } finally {
    // The passes under way end on the fake clock: stopped before it goes.
    const stopping = Promise.all(loops.splice(0).map((l) => l.stop()));
    await jest.advanceTimersByTimeAsync(5000);
    await stopping;
    jest.useRealTimers();
  }
});

test('without coalesceLeading, a change waits coalesceMs before its pass', async () => {
  jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
  try {
    const t = recordedLoop({ coalesceMs: 1000 });
    await t.start();
    await jest.advanceTimersByTimeAsync(1000);
    const begins = t.nextPassBegins();
    t.loop.poke();
    expect(await settled(begins)).toBe(false);
    await jest.advanceTimersByTimeAsync(1000);
    await begins;
  } finally {
    jest.useRealTimers();
  }
});

test('a stopped loop leaves no listener on its parent signal (a leader elected again and again starts its loops anew)', async () => {
  const parent = new AbortController();
  for (let i = 0; i < 12; i++) {
    const { loop } = recordedLoop({ coalesceMs: 1 });
    loop.start(parent.signal);
    await loop.request();
    await loop.stop();
  }
  expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
});
