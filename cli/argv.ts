/**
 * The command line before yargs reads it, with no imports beyond this file: every call runs this
 * first, and a call loads only the command module it names (cli/command-table.ts).
 */

/** Boolean flags of `service create`, of `run`/`container run|create` (also in the combined short forms students type: -dit, -it), and of `exec`: their options stop at the image or the container, and these take no value. */
export const SERVICE_BOOLEAN_FLAGS = new Set(['-d', '--detach', '--no-healthcheck', '--help', '--quiet', '-q', '--force', '--with-registry-auth', '-t', '--tty', '-i', '--interactive']);
export const CONTAINER_BOOLEAN_FLAGS = new Set([
  '--detach', '--interactive', '--tty', '--rm', '--read-only', '--help', '--init', '--publish-all', '-P',
  ...['d', 'i', 't', 'di', 'dt', 'id', 'it', 'ti', 'td', 'dit', 'dti', 'idt', 'itd', 'tdi', 'tid'].map((s) => `-${s}`),
]);
export const EXEC_BOOLEAN_FLAGS = new Set(['-i', '--interactive', '-t', '--tty', '-d', '--detach', '--help']);

/** Options every command takes that have a value: skipped when looking for the command's words. */
export const GLOBAL_VALUE_FLAGS = new Set(['-H', '--host', '--cert-dir', '--format']);

/** The arguments for yargs, and the commands that follow an image, a container or a compose service. */
export interface CommandLine {
  args: string[];
  /** `service create ... IMAGE COMMAND...` */
  serviceCommand: string[];
  /** `run|container run|container create ... IMAGE COMMAND...` */
  runCommand: string[];
  /** `exec|container exec ... CONTAINER COMMAND...` */
  execCommand: string[];
  /** `compose exec ... SERVICE COMMAND...` */
  composeExecCommand: string[];
}

/** Splits what the user typed into what yargs parses and the commands it must never read as our options. Pure. */
export function splitCommandLine(input: string[]): CommandLine {
  const composeExec = prepareComposeArgs(input);
  const create = separateCommand(composeExec.args, ['service', 'create'], SERVICE_BOOLEAN_FLAGS);
  const run = [['run'], ['container', 'run'], ['container', 'create']].map((p) => separateCommand(create.args, p, CONTAINER_BOOLEAN_FLAGS)).find((r) => r.args !== create.args) ?? { args: create.args, command: [] };
  const exec = [['exec'], ['container', 'exec']].map((p) => separateCommand(run.args, p, EXEC_BOOLEAN_FLAGS)).find((r) => r.args !== run.args) ?? { args: run.args, command: [] };
  return {
    args: attachDashValues(exec.args, run.args === create.args ? SERVICE_BOOLEAN_FLAGS : CONTAINER_BOOLEAN_FLAGS),
    serviceCommand: create.command,
    runCommand: run.command,
    execCommand: exec.command,
    composeExecCommand: composeExec.command,
  };
}

/** The first word that is not an option (`service` in `-H unix:///x service ls`), if any. Pure. */
export function commandWord(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return undefined;
    if (!a.startsWith('-') || a === '-') return a;
    if (!a.includes('=') && GLOBAL_VALUE_FLAGS.has(a)) i += 1;
  }
  return undefined;
}

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
      if (!args[i].includes('=') && GLOBAL_VALUE_FLAGS.has(args[i])) i += 1;
      continue;
    }
    words.push(i);
  }
  return words.length === path.length && path.every((p, k) => args[words[k]] === p) ? words[path.length - 1] : -1;
}

/** `compose exec`'s boolean flags: its options stop at the service (prepareComposeArgs). */
const COMPOSE_EXEC_BOOLEAN_FLAGS = new Set(['-T', '--no-TTY', '-d', '--detach', '--privileged', '--help', '-i', '--interactive', '-t', '--tty']);
const COMPOSE_VALUE_FLAGS = new Set(['-f', '--file', '-p', '--project-name', '--project-directory', '-H', '--host', '--cert-dir', '--format']);

/**
 * Prepares `compose` arguments for yargs, as docker compose reads them: a `-f` before the
 * subcommand is the file (`--file`), after it a subcommand's own (`logs -f` follows); and in
 * `compose [opts] exec [opts] SERVICE COMMAND...` the command after the service is the
 * container's, never options of ours. Returns the arguments up to the service, and the command. Pure.
 */
export function prepareComposeArgs(input: string[]): { args: string[]; command: string[] } {
  const args = [...input];
  let i = 0;
  const skipOptions = (values: Set<string>, booleans: Set<string>, rewrite = false) => {
    while (i < args.length && args[i].startsWith('-') && args[i] !== '-') {
      const a = args[i];
      if (rewrite && a === '-f') args[i] = '--file';
      else if (rewrite && /^-f./.test(a)) args[i] = `--file=${a.slice(2).replace(/^=/, '')}`;
      i += !a.includes('=') && values.has(a) && !booleans.has(a) ? 2 : 1;
    }
  };
  skipOptions(COMPOSE_VALUE_FLAGS, new Set());
  if (args[i] !== 'compose') return { args: input, command: [] };
  i++;
  skipOptions(COMPOSE_VALUE_FLAGS, new Set(), true);
  if (args[i] !== 'exec') return { args, command: [] };
  i++;
  skipOptions(new Set(['-e', '--env', '-u', '--user', '-w', '--workdir', '--index']), COMPOSE_EXEC_BOOLEAN_FLAGS);
  if (i >= args.length) return { args, command: [] };
  return { args: args.slice(0, i + 1), command: args.slice(i + 1) };
}

export { shellWords } from '../services/common/shell-words';
