/**
 * `service create [OPTIONS] IMAGE [COMMAND] [ARG...]`: options stop at the image, as docker's do,
 * so a command's own flags (`sh -c ...`) are never read as ours. Returns the arguments up to and
 * including the image, for the option parser, and the command after it. Pure.
 */
export function separateCommand(args: string[], path: string[], booleanFlags: Set<string>): { args: string[]; command: string[] } {
  const at = indexOfPath(args, path);
  if (at < 0) return { args, command: [] };
  for (let i = at + 1; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return { args: [...args.slice(0, i), ...args.slice(i + 1, i + 2)], command: args.slice(i + 2) };
    if (!a.startsWith('-') || a === '-') return { args: args.slice(0, i + 1), command: args.slice(i + 1) };
    if (a.includes('=') || isBooleanFlag(a, booleanFlags)) continue;
    i += 1; // the option's value
  }
  return { args, command: [] };
}

/**
 * A flag's value that starts with '-' (`-p -1:80`, `--limit-memory -5M`) would be read by yargs as
 * another flag, and the command would fail with a misleading usage error. Like docker (pflag), a
 * value flag takes the next word whatever it starts with: any word that starts with '-' then a
 * digit or '.' is never one of our flags (none is named so), so it is joined to the flag before it
 * (`--limit-memory=-5M`), and the flag's own parser refuses it by name. Pure.
 */
export function attachDashValues(args: string[], booleanFlags: Set<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = args[i + 1];
    if (a === '--') return [...out, ...args.slice(i)];
    if (next !== undefined && /^--?[A-Za-z][\w-]*$/.test(a) && !isBooleanFlag(a, booleanFlags) && /^-[0-9.]/.test(next)) {
      out.push(`${a}=${next}`);
      i += 1;
    } else out.push(a);
  }
  return out;
}

/** A boolean flag, or short boolean flags written together as docker users do (`-it`, `-dit`). */
export function isBooleanFlag(a: string, booleanFlags: Set<string>): boolean {
  if (booleanFlags.has(a)) return true;
  return /^-[A-Za-z]{2,}$/.test(a) && [...a.slice(1)].every((ch) => booleanFlags.has(`-${ch}`));
}

/** Where the last word of `path` (e.g. service, create) stands, if the leading non-option words are `path`; else -1. */
function indexOfPath(args: string[], path: string[]): number {
  const words: number[] = [];
  for (let i = 0; i < args.length && words.length < path.length; i++) {
    if (args[i].startsWith('-')) {
      if (!args[i].includes('=') && (args[i] === '-H' || args[i] === '--host' || args[i] === '--cert-dir' || args[i] === '--format')) i += 1;
      continue;
    }
    words.push(i);
  }
  return words.length === path.length && path.every((p, k) => args[words[k]] === p) ? words[path.length - 1] : -1;
}

export { shellWords } from '../services/common/shell-words';
