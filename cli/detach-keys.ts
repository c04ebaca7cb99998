/**
 * docker's detach keys, Ctrl-P Ctrl-Q, in what the user types to `attach`: pure. A Ctrl-P is held
 * back until the next byte says whether it starts the sequence; anything else goes through as typed.
 */
export const DETACH_KEYS = Buffer.from([0x10, 0x11]);

export interface DetachScan {
  /** What to send on. */
  forward: Buffer;
  /** The user typed the sequence: detach (what followed it is dropped). */
  detached: boolean;
  /** Bytes of a sequence begun at the end of this chunk, held for the next one. */
  held: number;
}

export function scanDetachKeys(chunk: Buffer, held: number, keys: Buffer = DETACH_KEYS): DetachScan {
  const out: number[] = [];
  let matched = held;
  for (const byte of chunk) {
    if (byte === keys[matched]) {
      matched += 1;
      if (matched === keys.length) return { forward: Buffer.from(out), detached: true, held: 0 };
      continue;
    }
    // A partial sequence that did not go on was typed for the process.
    out.push(...keys.subarray(0, matched));
    matched = 0;
    if (byte === keys[0]) matched = 1;
    else out.push(byte);
  }
  return { forward: Buffer.from(out), detached: false, held: matched };
}
