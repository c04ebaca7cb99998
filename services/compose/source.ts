/**
 * One compose file's YAML to plain data, interpolated, with the file and line of every key and
 * list item kept aside (so a mistake found later can be pointed at). Pure.
 */
import { Document, isAlias, isMap, isPair, isScalar, isSeq, LineCounter, Node, parseDocument } from 'yaml';
import { invalidArgument, SwarmletError } from '../common/errors';
import { interpolate, InterpolationError, Lookup } from './interpolate';

export type Path = readonly (string | number)[];

export interface Loc {
  file: string;
  line: number;
}

/** `services.web.ports[0]`. */
export function formatPath(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** The one line a mistake is told in: `FILE:LINE: KEY.PATH: message`. */
export function composeError(loc: Loc | undefined, path: Path, message: string, cause?: unknown): SwarmletError {
  const where = loc ? `${loc.file}:${loc.line}: ` : '';
  return invalidArgument(`${where}${path.length ? `${formatPath(path)}: ` : ''}${message}`, cause);
}

/** Where each member of each object or array of a parsed tree came from. */
export class Locations {
  private readonly members = new WeakMap<object, Map<string | number, Loc>>();
  private readonly interpolated = new WeakMap<object, Set<string | number>>();

  /** Marks a member as a plain scalar that interpolation changed (it may be cast to a number or a boolean). */
  markInterpolated(container: object, key: string | number): void {
    let m = this.interpolated.get(container);
    if (!m) this.interpolated.set(container, (m = new Set()));
    m.add(key);
  }

  isInterpolated(container: object, key: string | number): boolean {
    return this.interpolated.get(container)?.has(key) ?? false;
  }

  set(container: object, key: string | number, loc: Loc | undefined): void {
    if (!loc) return;
    let m = this.members.get(container);
    if (!m) this.members.set(container, (m = new Map()));
    m.set(key, loc);
  }

  get(container: object, key: string | number): Loc | undefined {
    return this.members.get(container)?.get(key);
  }

  /** The location of the deepest member along `path` from `root` that has one. */
  locate(root: unknown, path: Path): Loc | undefined {
    let found: Loc | undefined;
    let cur: unknown = root;
    for (const key of path) {
      if (cur === null || typeof cur !== 'object') break;
      found = this.get(cur, key) ?? found;
      cur = (cur as Record<string | number, unknown>)[key];
    }
    return found;
  }
}

export interface ParsedFile {
  data: unknown;
  /** Variables used with no value and no default (docker compose warns, and uses ""). */
  unset: string[];
}

const MAX_DEPTH = 64;

/**
 * `0400`: octal, as docker compose reads it (YAML 1.1's integers, which go-yaml v3 keeps), where
 * the YAML 1.2 core schema reads decimal 400. File modes (`mode: 0440`) are written so.
 */
const LEGACY_OCTAL = /^[-+]?0[0-7]+$/;

/** A plain (unquoted) scalar with a variable in it: `replicas: ${N}` is a number once N is known. */
const castable = (node: unknown): boolean => isScalar(node) && node.type === 'PLAIN' && typeof node.value === 'string' && node.value.includes('$');

/** Parses one file; a YAML or interpolation mistake throws the one-line SwarmletError. */
export function parseComposeFile(name: string, text: string, lookup: Lookup, locs: Locations): ParsedFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const line = e.linePos?.[0]?.line ?? lines.linePos(e.pos[0]).line;
    throw invalidArgument(`${name}:${line}: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`, e);
  }
  const unset: string[] = [];
  const at = (node: Node | null | undefined, fallback?: Loc): Loc | undefined => (node?.range ? { file: name, line: lines.linePos(node.range[0]).line } : fallback);
  const convert = (node: unknown, path: Path, depth: number): unknown => {
    if (depth > MAX_DEPTH) throw composeError(at(node as Node), path, 'nested too deeply (an alias that refers to itself?)');
    if (isAlias(node)) return convert(node.resolve(doc as Document), path, depth + 1);
    if (isMap(node)) {
      const obj: Record<string, unknown> = {};
      const merged: unknown[] = [];
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const keyNode = pair.key as Node | null;
        if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
          throw composeError(at(keyNode, at(node)), path, 'a key must be a plain string');
        }
        const key = String(keyNode.value);
        if (key === '<<') {
          merged.push(convert(pair.value, path, depth + 1));
          continue;
        }
        obj[key] = convert(pair.value, [...path, key], depth + 1);
        locs.set(obj, key, at(keyNode));
        if (castable(pair.value)) locs.markInterpolated(obj, key);
      }
      // YAML merge keys (<<: *anchor): explicit keys win, then the first merged map that has one
      for (const m of merged.flatMap((v) => (Array.isArray(v) ? v : [v]))) {
        if (m === null || typeof m !== 'object' || Array.isArray(m)) throw composeError(at(node), path, '<< merges only mappings');
        for (const [k, v] of Object.entries(m)) {
          if (k in obj) continue;
          obj[k] = v;
          locs.set(obj, k, locs.get(m, k));
        }
      }
      return obj;
    }
    if (isSeq(node)) {
      const arr: unknown[] = [];
      node.items.forEach((item, i) => {
        arr.push(convert(item, [...path, i], depth + 1));
        locs.set(arr, i, at(item as Node, at(node)));
        if (castable(item)) locs.markInterpolated(arr, i);
      });
      return arr;
    }
    if (isScalar(node)) {
      if (typeof node.value === 'number' && node.type === 'PLAIN' && LEGACY_OCTAL.test(node.source ?? '')) return parseInt(node.source!, 8);
      if (typeof node.value !== 'string') return node.value;
      try {
        const r = interpolate(node.value, lookup);
        for (const u of r.unset) if (!unset.includes(u)) unset.push(u);
        return r.value;
      } catch (err) {
        if (err instanceof InterpolationError) throw composeError(at(node), path, err.message, err);
        throw err;
      }
    }
    return null; // an empty value (`key:`)
  };
  const data = convert(doc.contents, [], 0);
  return { data, unset };
}
