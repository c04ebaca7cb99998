import { watch, type FSWatcher } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { LogRecord, afterSince, parseLogRecord } from './log-plans';

const CHUNK = 64 * 1024;
const POLL_MS = 200;
const NL = 0x0a;

/** Where the last `tail` lines of the first `size` bytes of the file start (0 for all of them). */
async function tailOffset(file: string, size: number, tail: number): Promise<number> {
  if (tail < 0) return 0;
  if (tail === 0) return size;
  const fh = await open(file, 'r');
  try {
    let end = size;
    // A final line without its newline still counts as a line.
    let newlines = 0;
    let skipLast = true;
    while (end > 0) {
      const start = Math.max(0, end - CHUNK);
      const buf = Buffer.alloc(end - start);
      await fh.read(buf, 0, buf.length, start);
      for (let i = buf.length - 1; i >= 0; i -= 1) {
        if (buf[i] !== NL) {
          skipLast = false;
          continue;
        }
        if (skipLast && start + i === size - 1) {
          skipLast = false;
          continue;
        }
        newlines += 1;
        if (newlines === tail) return start + i + 1;
      }
      end = start;
    }
    return 0;
  } finally {
    await fh.close();
  }
}

/**
 * A file's lines: the last `tail` of them (-1: all), then, while `follow`, each new line as it is
 * appended (by fs.watch, or a poll every 200 ms) until the signal aborts or the file is removed.
 * Lines come without their newline; a last line without one is given when not following.
 */
export async function* readLogLines(file: string, opts: { tail: number; follow: boolean; signal: AbortSignal }): AsyncGenerator<string> {
  const { signal } = opts;
  let pos = await tailOffset(file, (await stat(file)).size, opts.tail);
  let pending = Buffer.alloc(0);
  let watcher: FSWatcher | undefined;
  let wake: (() => void) | undefined;
  const poke = () => wake?.();
  if (opts.follow) {
    try {
      watcher = watch(file, { persistent: false }, poke);
      watcher.on('error', () => undefined);
    } catch {
      watcher = undefined;
    }
    signal.addEventListener('abort', poke, { once: true });
  }
  try {
    for (;;) {
      if (signal.aborted) return;
      const size = await stat(file).then((s) => s.size, () => undefined);
      if (size === undefined) return; // removed
      if (size < pos) {
        pos = 0; // truncated
        pending = Buffer.alloc(0);
      }
      if (size > pos) {
        const fh = await open(file, 'r');
        try {
          while (pos < size) {
            const buf = Buffer.alloc(Math.min(CHUNK, size - pos));
            const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
            if (bytesRead === 0) break;
            pos += bytesRead;
            pending = Buffer.concat([pending, buf.subarray(0, bytesRead)]);
            let nl: number;
            while ((nl = pending.indexOf(NL)) >= 0) {
              const line = pending.subarray(0, nl).toString('utf8');
              pending = pending.subarray(nl + 1);
              yield line;
              if (signal.aborted) return;
            }
          }
        } finally {
          await fh.close();
        }
      }
      if (!opts.follow) {
        if (pending.length > 0) yield pending.toString('utf8');
        return;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, POLL_MS);
        timer.unref();
        wake = done;
        function done() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        if (signal.aborted) done();
      });
    }
  } finally {
    watcher?.close();
    signal.removeEventListener('abort', poke);
  }
}

/** A task's output.log as records (log-plans.ts): the last `tail` (-1: all) of those from `since` on, then new ones while `follow`. */
export async function* readLogRecords(file: string, opts: { tail: number; follow: boolean; signal: AbortSignal; since?: string }): AsyncGenerator<LogRecord> {
  for await (const line of readLogLines(file, opts)) {
    const record = parseLogRecord(line);
    if (afterSince(record, opts.since)) yield record;
  }
}
