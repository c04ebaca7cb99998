import pino from 'pino';

export type Logger = pino.Logger;

/** The one root logger of a process; components take children tagged with `component`. */
export function createRootLogger(level: string = 'info', destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

export function componentLogger(parent: Logger, component: string, bindings: Record<string, unknown> = {}): Logger {
  return parent.child({ component, ...bindings });
}
