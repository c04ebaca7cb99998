/**
 * The client side of LocalNode's Exec and Attach, as docker's CLI behaves: the local terminal in
 * raw mode when the process is on a pty (so Ctrl-C and Ctrl-D go to it as bytes), its window size
 * sent at the start and on every SIGWINCH, stdin streamed (its end sent as close_stdin), output
 * written to stdout and stderr, and attach's Ctrl-P Ctrl-Q detaching. Resolves with the exit code.
 */
import type * as grpc from '@grpc/grpc-js';
import { unavailable } from '../services/common/errors';
import type { TerminalInput, TerminalOutput, TerminalSize } from '../services/gen/swarmlet/v1/control';
import { controlApi, grpcErrors, grpcJs } from './client';
import { scanDetachKeys } from './detach-keys';

export interface TerminalClientOptions {
  /** Stream the local stdin (-i; attach always). */
  stdin: boolean;
  /** Ctrl-P Ctrl-Q detaches (attach). */
  detachKeys: boolean;
  host: string;
  /** Called once the daemon has opened the session (run -it starts its container then, so no output is missed). */
  onStarted?: () => Promise<void>;
}

/** The local terminal's size, when stdout is one. */
export function localSize(): TerminalSize | undefined {
  const { rows, columns } = process.stdout;
  return process.stdout.isTTY && rows > 0 && columns > 0 ? { rows, cols: columns } : undefined;
}

export function runTerminal(call: grpc.ClientDuplexStream<TerminalInput, TerminalOutput>, start: TerminalInput, opts: TerminalClientOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    let raw = false;
    let exitCode: number | undefined;
    let held = 0;
    let finished = false;
    const onResize = () => {
      const size = localSize();
      if (size) call.write({ msg: { $case: 'resize', value: size } });
    };
    const cleanup = () => {
      finished = true;
      process.stdout.off('resize', onResize);
      stdin.off('data', onStdin);
      stdin.off('end', onStdinEnd);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
    };
    const onStdin = (data: Buffer) => {
      let chunk = data;
      if (opts.detachKeys) {
        const scan = scanDetachKeys(data, held);
        held = scan.held;
        chunk = scan.forward;
        if (scan.detached) {
          if (chunk.length) call.write({ msg: { $case: 'stdin', value: chunk } });
          cleanup();
          call.cancel();
          return resolve(0);
        }
      }
      if (chunk.length) call.write({ msg: { $case: 'stdin', value: chunk } });
    };
    const onStdinEnd = () => call.write({ msg: { $case: 'closeStdin', value: true } });
    call.on('data', (m: TerminalOutput) => {
      const msg = m.msg;
      if (!msg) return;
      if (msg.$case === 'started') {
        // The local terminal goes raw only for a process on a pty, as docker's CLI does.
        if (msg.value.tty && opts.stdin && stdin.isTTY) {
          stdin.setRawMode(true);
          raw = true;
        }
        if (msg.value.tty) process.stdout.on('resize', onResize);
        if (opts.stdin) {
          stdin.on('data', onStdin);
          stdin.on('end', onStdinEnd);
          stdin.resume();
        }
        // Its pty exists once it started: it gets the local size then.
        if (opts.onStarted) opts.onStarted().then(() => msg.value.tty && onResize(), (err) => {
          if (finished) return;
          cleanup();
          call.cancel();
          reject(err);
        });
      } else if (msg.$case === 'output') {
        (msg.value.stream === controlApi().OutputStream.OUTPUT_STREAM_STDERR ? process.stderr : process.stdout).write(msg.value.data);
      } else if (msg.$case === 'exitCode') exitCode = msg.value;
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (finished) return;
      cleanup();
      if (err.code === grpcJs().status.UNAVAILABLE && /No connection established/.test(err.details ?? '')) {
        const why = /(ENOENT|ECONNREFUSED|EACCES)/.exec(err.details)?.[1];
        return reject(unavailable(`cannot connect to the swarmlet daemon at ${opts.host}${why ? ` (${why})` : ''}: is it running?`, err));
      }
      reject(grpcErrors().fromServiceError(err, `the call to ${opts.host}`));
    });
    call.on('end', () => {
      if (finished) return;
      cleanup();
      if (exitCode === undefined) reject(unavailable(`the session with ${opts.host} ended without an exit code`));
      else resolve(exitCode);
    });
    call.write(start);
  });
}
