/**
 * A real terminal for end-to-end tests: a tmux server of its own (`-L <name>`, no config), a
 * detached session running a command on a pty of a given size, keys sent as a user types them,
 * the screen read back, and the window resized. kill() ends the server and all it runs.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import * as path from 'node:path';

function tmux(socket: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('tmux', ['-L', socket, '-f', '/dev/null', ...args], { env: { ...process.env, TERM: 'xterm-256color' }, timeout: 10000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`tmux ${args.join(' ')}: ${(stderr || err.message).trim()}`)) : resolve(stdout),
    );
  });
}

export class Tmux {
  private constructor(private readonly socket: string, private readonly session: string) {}

  /** Runs `command` (a shell command line) in a new detached session of `cols` x `rows`, with no status line. */
  static async start(socket: string, command: string, cols: number, rows: number): Promise<Tmux> {
    const t = new Tmux(socket, 'main');
    await tmux(socket, ['new-session', '-d', '-s', t.session, '-x', String(cols), '-y', String(rows), command, ';', 'set-option', '-g', 'status', 'off', ';', 'set-option', '-g', 'window-size', 'manual']);
    return t;
  }

  /** Text typed literally, then Enter. */
  async type(line: string): Promise<void> {
    await tmux(this.socket, ['send-keys', '-t', this.session, '-l', line]);
    await tmux(this.socket, ['send-keys', '-t', this.session, 'Enter']);
  }

  /** tmux key names: C-c, C-d, C-p, Enter... */
  async keys(...keys: string[]): Promise<void> {
    await tmux(this.socket, ['send-keys', '-t', this.session, ...keys]);
  }

  /** What the pane shows, with its history, lines joined. */
  screen(): Promise<string> {
    return tmux(this.socket, ['capture-pane', '-p', '-J', '-S', '-200', '-t', this.session]);
  }

  async resize(cols: number, rows: number): Promise<void> {
    await tmux(this.socket, ['resize-window', '-t', this.session, '-x', String(cols), '-y', String(rows)]);
  }

  /** The pane's size as the program in it sees it. */
  async size(): Promise<{ rows: number; cols: number }> {
    const [rows, cols] = (await tmux(this.socket, ['display-message', '-p', '-t', this.session, '#{pane_height} #{pane_width}'])).trim().split(' ').map(Number);
    return { rows, cols };
  }

  /** Ends the server, and removes its socket file, which tmux leaves behind (one more in /tmp/tmux-<uid> each run). */
  async kill(): Promise<void> {
    await tmux(this.socket, ['kill-server']).catch(() => undefined);
    await rm(path.join(process.env.TMUX_TMPDIR || '/tmp', `tmux-${process.getuid?.() ?? 0}`, this.socket), { force: true });
  }
}
