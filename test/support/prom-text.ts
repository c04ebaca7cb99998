/**
 * A strict parser of Prometheus's text exposition format (0.0.4), for tests that scrape /metrics:
 * every line must be a HELP or TYPE comment, a sample, or blank; a sample's metric must belong to
 * the family its TYPE announced; label values unescape. Anything else throws, naming the line.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SUFFIXES: Record<Family['type'], string[]> = { counter: [''], gauge: [''], untyped: [''], histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count'] };

function parseValue(text: string, line: number): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = new RegExp(`^\\s*(${NAME})="((?:[^"\\\\\\n]|\\\\["\\\\n])*)"\\s*(,|$)`);
  let rest = text;
  while (rest.trim() !== '') {
    const m = re.exec(rest);
    if (!m) throw new Error(`line ${line}: bad labels ${JSON.stringify(text)}`);
    if (m[1] in labels) throw new Error(`line ${line}: label ${m[1]} twice`);
    labels[m[1]] = m[2].replace(/\\(["\\n])/g, (_, c) => (c === 'n' ? '\n' : c));
    rest = rest.slice(m[0].length);
  }
  return labels;
}

export function parsePromText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: 'untyped', help: '', samples: [] }));
    return f;
  };
  let current: Family | undefined;
  text.split('\n').forEach((raw, i) => {
    const n = i + 1;
    const line = raw.trimEnd();
    if (line === '') return;
    const comment = new RegExp(`^#\\s+(HELP|TYPE)\\s+(${NAME})(?:\\s+(.*))?$`).exec(line);
    if (comment) {
      const f = family(comment[2]);
      if (comment[1] === 'HELP') f.help = comment[3] ?? '';
      else {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(comment[3] ?? '')) throw new Error(`line ${n}: bad type ${comment[3]}`);
        if (f.samples.length) throw new Error(`line ${n}: TYPE of ${f.name} after its samples`);
        f.type = comment[3] as Family['type'];
      }
      current = f;
      return;
    }
    if (line.startsWith('#')) return;
    const m = new RegExp(`^(${NAME})(?:\\{(.*)\\})?\\s+(\\S+)(?:\\s+(-?\\d+))?$`).exec(line);
    if (!m) throw new Error(`line ${n}: not a sample: ${JSON.stringify(line)}`);
    const name = m[1];
    const owner = current && SUFFIXES[current.type].some((s) => name === current!.name + s) ? current : undefined;
    if (!owner) throw new Error(`line ${n}: sample ${name} outside its family (${current?.name ?? 'none'})`);
    owner.samples.push({ name, labels: parseLabels(m[2] ?? '', n), value: parseValue(m[3], n) });
  });
  return families;
}

/** The value of the one sample of `name` whose labels include `labels` (undefined if none; throws if several). */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const all = [...families.values()].flatMap((f) => f.samples).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (all.length > 1) throw new Error(`${all.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return all[0]?.value;
}

/** The sum of the samples of `name` whose labels include `labels`. */
export const sampleSum = (families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number =>
  [...families.values()].flatMap((f) => f.samples).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
