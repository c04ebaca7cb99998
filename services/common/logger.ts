import pino from 'pino';

export type Logger = pino.Logger;

/** Secrets never reach a log line, at the top level or one or two levels down. */
const SECRET_KEYS = ['registryAuth', 'registry_auth', 'registryAuthSealed', 'password', 'sealKey', 'credentials'];
export const REDACT_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

/** The one root logger of a process; components take children tagged with `component`. */
export function createRootLogger(level: string = 'info', destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, destination);
}

export function componentLogger(parent: Logger, component: string, bindings: Record<string, unknown> = {}): Logger {
  return parent.child({ component, ...bindings });
}
