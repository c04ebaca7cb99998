import { readFileSync } from 'node:fs';
import { parseLogRecord, planLogText } from '../../agent/runtime/log-plans';

/** A task's output.log (or a container's log) as the process wrote it: the records' text. */
export function readTaskOutput(file: string): string {
  return planLogText(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(parseLogRecord),
  );
}
