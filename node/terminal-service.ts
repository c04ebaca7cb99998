import * as grpc from '@grpc/grpc-js';
import type { Runtime, TerminalSession } from '../agent/runtime/runtime';
import { asSwarmletError, invalidArgument } from '../services/common/errors';
import type { Logger } from '../services/common/logger';
import { endServerStream, toServiceError } from '../services/api/grpc-errors';
import { LocalNodeServer, OutputStream, TerminalInput, TerminalOutput } from '../services/gen/swarmlet/v1/control';
import { TerminalTargetSource, resolveTerminalTarget } from './terminal-target';

type Call = grpc.ServerDuplexStream<TerminalInput, TerminalOutput>;

export interface TerminalServiceDeps {
  /** The runtime a target's id runs on (tasks and containers each have their own). */
  runtimeFor: (id: string) => Runtime;
  /** Where targets are looked up: this node's tasks and its containers. */
  targets: TerminalTargetSource[];
  /** How a target ended when its runtime no longer has it (a --rm container, removed as it ended), if known. */
  exitCodeOf?: (id: string) => number | undefined;
  log: Logger;
}

/** The first message of a call, or undefined when the client ended first. */
function firstMessage(call: Call): Promise<TerminalInput | undefined> {
  return new Promise((resolve) => {
    const onData = (m: TerminalInput) => {
      call.off('end', onEnd);
      call.pause();
      resolve(m);
    };
    const onEnd = () => {
      call.off('data', onData);
      resolve(undefined);
    };
    call.once('data', onData);
    call.once('end', onEnd);
  });
}

const ended = (s: NodeJS.ReadableStream | undefined) =>
  s ? new Promise<void>((resolve) => (s as unknown as { readableEnded?: boolean }).readableEnded ? resolve() : s.once('end', resolve).once('close', resolve)) : Promise.resolve();

/**
 * Relays one session over the call: output (stdout, stderr) to the client, stdin, resizes and
 * the end of stdin from it; the exit code last (`exited`: the session's, unless told). A client that goes away ends the session.
 */
async function relay(call: Call, session: TerminalSession, opts: { tty: boolean; stdin: boolean }, exited = session.exited): Promise<void> {
  let gone = false;
  const send = (stream: OutputStream) => (data: Buffer) => {
    if (!gone) call.write({ msg: { $case: 'output', value: { stream, data } } });
  };
  session.stdout.on('data', send(OutputStream.OUTPUT_STREAM_STDOUT));
  session.stderr?.on('data', send(OutputStream.OUTPUT_STREAM_STDERR));
  if (!opts.stdin && !opts.tty) session.stdin.end();
  call.on('data', (m: TerminalInput) => {
    const msg = m.msg;
    if (!msg) return;
    if (msg.$case === 'stdin' && opts.stdin && session.stdin.writable) session.stdin.write(msg.value);
    else if (msg.$case === 'resize') void session.resize(msg.value).catch(() => undefined);
    else if (msg.$case === 'closeStdin' && opts.stdin && !opts.tty) session.stdin.end();
  });
  call.on('cancelled', () => {
    gone = true;
    session.close();
  });
  call.on('error', () => {
    gone = true;
    session.close();
  });
  call.resume();
  const code = await exited;
  // The output the process wrote before it ended goes first (bounded: a grandchild may keep a pipe open).
  await Promise.race([Promise.all([ended(session.stdout), ended(session.stderr)]), new Promise((r) => setTimeout(r, 2000).unref())]);
  session.close();
  if (gone) return;
  call.write({ msg: { $case: 'exitCode', value: code } });
  call.end();
}

function fail(call: Call, err: unknown): void {
  endServerStream(call as unknown as grpc.ServerWritableStream<unknown, unknown>, Object.assign(new Error(asSwarmletError(err).message), toServiceError(err)));
}

/** LocalNode's Exec and Attach (docker exec and attach), on the node's unix socket. */
export function terminalService(deps: TerminalServiceDeps): Pick<LocalNodeServer, 'exec' | 'attach'> {
  const log = deps.log;
  return {
    exec: (call: Call) => {
      void (async () => {
        const first = (await firstMessage(call))?.msg;
        if (first?.$case !== 'exec') throw invalidArgument('the first message of an exec must be its start');
        const start = first.value;
        const taskId = await resolveTerminalTarget(start.target, deps.targets);
        const session = await deps.runtimeFor(taskId).execSession(taskId, {
          argv: start.argv,
          tty: start.tty,
          env: start.env,
          user: start.user,
          workdir: start.workdir,
          ...(start.size && start.size.rows > 0 && start.size.cols > 0 ? { size: start.size } : {}),
        });
        log.info({ taskId, tty: start.tty, argv0: start.argv[0] }, 'exec session started');
        call.write({ msg: { $case: 'started', value: { id: taskId, tty: session.tty } } });
        await relay(call, session, { tty: start.tty, stdin: start.stdin });
        log.info({ taskId }, 'exec session ended');
      })().catch((err) => fail(call, err));
    },
    attach: (call: Call) => {
      void (async () => {
        const first = (await firstMessage(call))?.msg;
        if (first?.$case !== 'attach') throw invalidArgument('the first message of an attach must be its start');
        const taskId = await resolveTerminalTarget(first.value.target, deps.targets);
        const session = await deps.runtimeFor(taskId).attach(taskId);
        // The runtime ends a session with -1 when the task is gone: a --rm container is removed as soon as it ends, maybe before the session looked.
        const exited = session.exited.then((code) => (code === -1 ? deps.exitCodeOf?.(taskId) ?? code : code));
        const size = first.value.size;
        if (size && size.rows > 0 && size.cols > 0) await session.resize(size).catch(() => undefined);
        log.info({ taskId }, 'attached');
        call.write({ msg: { $case: 'started', value: { id: taskId, tty: session.tty } } });
        // The task's stdin is never closed by one attach (other attaches may follow).
        await relay(call, session, { tty: true, stdin: true }, exited);
      })().catch((err) => fail(call, err));
    },
  };
}
