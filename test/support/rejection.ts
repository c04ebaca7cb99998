import { SwarmletError } from '../../services/common/errors';

/** Awaits a promise that must reject with an error of `kind` (SwarmletError by default); returns that error for further checks. */
export async function rejection<E extends Error = SwarmletError>(p: Promise<unknown>, kind: abstract new (...args: never[]) => E = SwarmletError as never): Promise<E> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(kind);
    return err as E;
  }
  throw new Error('expected a rejection');
}

/** Calls `fn`, which must throw a SwarmletError; returns it for checks of its kind and message. */
export function refusal(fn: () => unknown): SwarmletError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SwarmletError);
    return err as SwarmletError;
  }
  throw new Error('expected a refusal');
}
