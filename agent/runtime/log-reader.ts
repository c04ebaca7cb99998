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
 * appended (by fs.watch, or a poll every 200 ms) until the signal aborts, or until `drain` aborts
 * or the file is removed: then what the file holds up to its end is still given (it is read
 * through a handle opened at the start, so a --rm container's last lines outlive its log's
 * removal), and the lines end. Lines come without their newline; a last line without one is given
 * when not following.
 */
export async function* readLogLines(file: string, opts: { tail: number; follow: boolean; signal: AbortSignal; drain?: AbortSignal }): AsyncGenerator<string> {
  const { signal } = opts;
  const fh = await open(file, 'r');
  let pending = Buffer.alloc(0);
  let watcher: FSWatcher | undefined;
  let wake: (() => void) | undefined;
  const poke = () => wake?.();
  try {
    let pos = await tailOffset(file, (await fh.stat()).size, opts.tail);
    if (opts.follow) {
      try {
        watcher = watch(file, { persistent: false }, poke);
        watcher.on('error', () => undefined);
      } catch {
        watcher = undefined;
      }
      signal.addEventListener('abort', poke, { once: true });
      opts.drain?.addEventListener('abort', poke, { once: true });
    }
    for (;;) {
      if (signal.aborted) return;
      // Whether this is the last read: asked to drain, or the file is gone (checked before the read, so nothing written before is missed).
      const last = !opts.follow || opts.drain?.aborted === true || (await stat(file).then(() => false, () => true));
      const size = (await fh.stat()).size;
      if (size < pos) {
        pos = 0; // truncated
        pending = Buffer.alloc(0);
      }
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
      if (last) {
        if (!opts.follow && pending.length > 0) yield pending.toString('utf8');
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
        if (signal.aborted || opts.drain?.aborted) done();
      });
    }
  } finally {
    watcher?.close();
    signal.removeEventListener('abort', poke);
    opts.drain?.removeEventListener('abort', poke);
    await fh.close();
  }
}

/** A task's output.log as records (log-plans.ts): the last `tail` (-1: all) of those from `since` on, then new ones while `follow`. */
export async function* readLogRecords(file: string, opts: { tail: number; follow: boolean; signal: AbortSignal; since?: string; drain?: AbortSignal }): AsyncGenerator<LogRecord> {
  for await (const line of readLogLines(file, opts)) {
    const record = parseLogRecord(line);
    if (afterSince(record, opts.since)) yield record;
  }
}
