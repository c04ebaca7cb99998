/**
 * Where a long step's time goes, for its log line: each `phase(name)` records the milliseconds since
 * the previous one (or since the timer was made) under `name` in `phasesMs`.
 */
export function phaseTimer(): { phasesMs: Record<string, number>; phase: (name: string) => void } {
  const phasesMs: Record<string, number> = {};
  let mark = performance.now();
  const phase = (name: string) => {
    const now = performance.now();
    phasesMs[name] = Math.round(now - mark);
    mark = now;
  };
  return { phasesMs, phase };
}
