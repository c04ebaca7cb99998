/** Docker's sizes (`64m`, `1.5g`) and CPU counts (`0.5`), for flags and compose files. Pure. */
import { invalidArgument } from './errors';

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** `64m`, `1.5g`, `512k`, `1048576` -> bytes. */
export function parseBytes(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw invalidArgument(`invalid ${what} ${JSON.stringify(text)}: use a size like 64m, 1g or 512k`);
  return Math.round(Number(m[1]) * unit);
}

/** `0.5`, `.5`, `2` -> nano CPUs (docker's --cpus forms). The manager bounds the result. */
export function parseCpus(text: string, what: string): number {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text.trim()) || Number(text) <= 0) throw invalidArgument(`invalid ${what} ${JSON.stringify(text)}: use a number of CPUs like 0.5 or 2`);
  return Math.round(Number(text) * 1e9);
}
