/**
 * The pure part of terminals (exec -it, attach, tty tasks). The pty comes from util-linux
 * `script`: it opens a pty, runs a command on its slave as the session's controlling terminal,
 * and copies its own stdin to the master and the master to its stdout. So no file descriptor is
 * ever passed to Node, and a task's pty is held by a process under the task's shim (it outlives
 * the daemon like the rest of the task). A window size is set from outside with TIOCSWINSZ on
 * the slave (`stty -F /proc/<pid>/fd/0 rows R cols C`), which the kernel follows with SIGWINCH
 * to the terminal's foreground process group. No I/O here.
 */
import { invalidArgument } from '../../services/common/errors';

export interface TerminalSize {
  rows: number;
  cols: number;
}

/** One word for a POSIX shell: single-quoted unless it is plainly safe. */
export function shellQuote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** A window size the kernel takes (1..65535 each); refuses anything else. */
export function checkTerminalSize(size: TerminalSize): TerminalSize {
  const ok = (n: number) => Number.isInteger(n) && n >= 1 && n <= 0xffff;
  if (!ok(size.rows) || !ok(size.cols)) throw invalidArgument(`terminal size ${size.rows}x${size.cols} is not valid: rows and columns from 1 to 65535`);
  return size;
}

/** The stty arguments that set a window size. */
export function sttySizeArgs(size: TerminalSize): string[] {
  const s = checkTerminalSize(size);
  return ['rows', String(s.rows), 'cols', String(s.cols)];
}

/**
 * The argv that runs `command` on a fresh pty: `script` quiet (-q), returning the command's exit
 * status (-e), with no typescript (/dev/null). The pty's echo stays on (stdin is not a terminal),
 * as docker's is: the client's own terminal is in raw mode. With `size`, the pty has it before
 * the command starts.
 */
export function planScriptArgv(command: string[], size?: TerminalSize): string[] {
  if (command.length === 0) throw invalidArgument('a command is needed');
  const setSize = size ? `stty ${sttySizeArgs(size).join(' ')} 2>/dev/null; ` : '';
  return ['script', '-q', '-e', '-c', `${setSize}exec ${shellJoin(command)}`, '/dev/null'];
}

/** Linux's pty slaves are character devices of majors 136 to 143 (UNIX98_PTY_SLAVE_MAJOR). */
export function isPtySlave(rdev: number): boolean {
  // glibc's major(): bits 8-19, and 32-43 above them (no JS bit operator reaches past bit 31).
  const major = (Math.floor(rdev / 0x100) & 0xfff) | (Math.floor(rdev / 0x100000000) & ~0xfff);
  return major >= 136 && major <= 143;
}

/** The exit code of a process that ended with `code` or by `signalNumber`: 128+N for a signal, as a shell says. */
export function planExitCode(code: number | null, signalNumber: number | undefined): number {
  if (code !== null) return code;
  return 128 + (signalNumber ?? 0);
}

/** An exec's environment: the task's KEY=VALUE entries, then the exec's own, which win. */
export function planExecEnv(base: string[], extra: string[]): string[] {
  const env = new Map<string, string>();
  for (const entry of [...base, ...extra]) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw invalidArgument(`environment entry ${JSON.stringify(entry)} is not valid: use KEY=VALUE`);
    env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return [...env].map(([k, v]) => `${k}=${v}`);
}
