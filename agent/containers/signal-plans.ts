/** Pure: `kill -s` signals as docker takes them (HUP, SIGHUP, 1, sighup), Linux's numbering. */

const LINUX_SIGNALS: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14, TERM: 15,
  STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28,
  IO: 29, PWR: 30, SYS: 31,
};

/** A signal's name without SIG (`KILL`), or undefined when it is none docker would take. */
export function planSignal(signal: string): string | undefined {
  const s = (signal || 'KILL').trim().toUpperCase().replace(/^SIG/, '');
  if (/^\d+$/.test(s)) return Object.keys(LINUX_SIGNALS).find((k) => LINUX_SIGNALS[k] === Number(s));
  if (s === 'IOT') return 'ABRT';
  if (s === 'POLL') return 'IO';
  return s in LINUX_SIGNALS ? s : undefined;
}
