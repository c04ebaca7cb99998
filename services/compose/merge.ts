/**
 * Merging `-f a.yml -f b.yml` as docker compose does: mappings merge key by key, later files win
 * for plain values; ports, expose, dns, env_file and the like are appended; environment, labels,
 * build args, depends_on and networks merge by name; volumes by mount point; secrets and configs
 * by source; command, entrypoint and healthcheck.test are replaced. Locations follow the values. Pure.
 */
import { Locations, Path } from './source';

type Rule = 'merge' | 'replace' | 'append' | 'byName' | 'byTarget' | 'bySource';

const SERVICE_RULES: Record<string, Rule> = {
  command: 'replace',
  entrypoint: 'replace',
  ports: 'append',
  expose: 'append',
  dns: 'append',
  dns_search: 'append',
  external_links: 'append',
  cap_add: 'append',
  cap_drop: 'append',
  env_file: 'append',
  tmpfs: 'append',
  security_opt: 'append',
  environment: 'byName',
  labels: 'byName',
  extra_hosts: 'byName',
  sysctls: 'byName',
  depends_on: 'byName',
  networks: 'byName',
  volumes: 'byTarget',
  devices: 'byTarget',
  secrets: 'bySource',
  configs: 'bySource',
};

function ruleFor(path: Path): Rule {
  if (path[0] !== 'services' || path.length < 3) return 'merge';
  const rest = path.slice(2).join('.');
  if (rest === 'healthcheck.test') return 'replace';
  if (rest === 'build.args' || rest === 'build.labels' || rest === 'deploy.labels') return 'byName';
  if (rest === 'deploy.placement.constraints') return 'append';
  return SERVICE_RULES[rest] ?? 'merge';
}

const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Merges the data of the files in order; each file's data was already checked by the schema. */
export function mergeFiles(files: unknown[], locs: Locations): unknown {
  return files.reduce((base, next) => mergeValue(base, next, [], locs));
}

function mergeValue(base: unknown, next: unknown, path: Path, locs: Locations): unknown {
  const rule = ruleFor(path);
  if (rule === 'replace' || next === undefined) return next === undefined ? base : next;
  if (rule === 'append' && (Array.isArray(base) || typeof base === 'string') && (Array.isArray(next) || typeof next === 'string')) {
    const out: unknown[] = [];
    for (const [arr, src] of [[[base].flat(), base], [[next].flat(), next]] as const) {
      arr.forEach((v, i) => {
        if (out.some((o) => JSON.stringify(o) === JSON.stringify(v))) return;
        out.push(v);
        locs.set(out, out.length - 1, Array.isArray(src) ? locs.get(src, i) : undefined);
      });
    }
    return out;
  }
  if (rule === 'byName') return mergeMaps(asMap(base, locs), asMap(next, locs), path, locs);
  if (rule === 'byTarget' || rule === 'bySource') return mergeKeyed(base, next, rule === 'byTarget' ? targetOf : sourceOf, locs);
  if (isMapping(base) && isMapping(next)) return mergeMaps(base, next, path, locs);
  return next;
}

function mergeMaps(base: unknown, next: unknown, path: Path, locs: Locations): unknown {
  if (!isMapping(base) || !isMapping(next)) return next;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(base)) {
    out[k] = v;
    locs.set(out, k, locs.get(base, k));
  }
  for (const [k, v] of Object.entries(next)) {
    out[k] = k in out ? mergeValue(out[k], v, [...path, k], locs) : v;
    locs.set(out, k, locs.get(next, k));
  }
  return out;
}

/** A list of `KEY=VALUE` / `KEY` / names as a mapping (the form every merge by name works on). */
function asMap(v: unknown, locs: Locations): unknown {
  if (!Array.isArray(v)) return v;
  const out: Record<string, unknown> = {};
  v.forEach((item, i) => {
    const s = String(item);
    const eq = s.indexOf('=');
    const key = eq < 0 ? s : s.slice(0, eq);
    out[key] = eq < 0 ? null : s.slice(eq + 1);
    locs.set(out, key, locs.get(v, i));
  });
  return out;
}

const targetOf = (v: unknown): string => {
  if (isMapping(v)) return String(v.target ?? '');
  const parts = String(v).split(':');
  return parts.length === 1 ? parts[0] : parts[1];
};
const sourceOf = (v: unknown): string => (isMapping(v) ? String(v.source ?? '') : String(v));

function mergeKeyed(base: unknown, next: unknown, keyOf: (v: unknown) => string, locs: Locations): unknown {
  if (!Array.isArray(base) || !Array.isArray(next)) return next;
  const out: unknown[] = [];
  const put = (v: unknown, src: unknown[], i: number) => {
    const at = out.findIndex((o) => keyOf(o) === keyOf(v));
    const idx = at < 0 ? out.length : at;
    out[idx] = v;
    locs.set(out, idx, locs.get(src, i));
  };
  base.forEach((v, i) => put(v, base, i));
  next.forEach((v, i) => put(v, next, i));
  return out;
}
