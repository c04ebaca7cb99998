/**
 * Placement constraints, as docker writes them: `node.id==ID`, `node.hostname!=NAME`,
 * `node.role==manager`, `node.labels.KEY==VALUE`. Values compare case-insensitively (swarmkit
 * does the same); label keys are exact. An absent label never equals anything, and so always
 * satisfies `!=`.
 */
import { invalidArgument } from '../../services/common/errors';
import { Node, NodeRole } from '../../services/gen/swarmlet/v1/types';

export interface Constraint {
  key: string;
  op: '==' | '!=';
  value: string;
}

const LABEL_PREFIX = 'node.labels.';
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$/;
const FIXED_KEYS = new Set(['node.id', 'node.hostname', 'node.role']);
const HELP = 'write KEY==VALUE or KEY!=VALUE with KEY one of node.id, node.hostname, node.role, node.labels.NAME';

/** Parses one constraint; InvalidArgument saying what is wrong with it. */
export function parseConstraint(text: string): Constraint {
  const shown = JSON.stringify(text);
  const match = /^([^=!]*)(==|!=)(.*)$/s.exec(text);
  if (!match) throw invalidArgument(`invalid constraint ${shown}: ${HELP}`);
  const key = match[1].trim();
  const op = match[2] as Constraint['op'];
  const value = match[3].trim();
  if (!key) throw invalidArgument(`invalid constraint ${shown}: the key is missing; ${HELP}`);
  if (!value) throw invalidArgument(`invalid constraint ${shown}: the value is missing`);
  if (/[=!]=/.test(value) || /[\n\r\0]/.test(value)) throw invalidArgument(`invalid constraint ${shown}: the value may not contain ==, != or line breaks`);
  const lower = key.toLowerCase();
  if (lower.startsWith(LABEL_PREFIX)) {
    const label = key.slice(LABEL_PREFIX.length);
    if (!LABEL_KEY.test(label)) throw invalidArgument(`invalid constraint ${shown}: ${JSON.stringify(label)} is not a valid label name`);
    return { key: LABEL_PREFIX + label, op, value };
  }
  if (!FIXED_KEYS.has(lower)) throw invalidArgument(`invalid constraint ${shown}: unknown key ${JSON.stringify(key)}; ${HELP}`);
  if (lower === 'node.role' && !/^(manager|worker)$/i.test(value)) {
    throw invalidArgument(`invalid constraint ${shown}: node.role is either manager or worker`);
  }
  return { key: lower, op, value };
}

/** The node's value for a constraint key; undefined for a label it does not have. */
function nodeValue(node: Node, key: string): string | undefined {
  switch (key) {
    case 'node.id':
      return node.id;
    case 'node.hostname':
      return node.description?.hostname ?? '';
    case 'node.role':
      return node.role === NodeRole.NODE_ROLE_MANAGER ? 'manager' : 'worker';
    default:
      return node.spec?.labels?.[key.slice(LABEL_PREFIX.length)];
  }
}

/**
 * Whether a node satisfies every constraint. Constraints may be given as text (parsed here,
 * throwing InvalidArgument on bad syntax) or already parsed (the scheduler parses once per service).
 */
export function matchConstraints(node: Node, constraints: readonly (Constraint | string)[]): boolean {
  for (const raw of constraints) {
    const c = typeof raw === 'string' ? parseConstraint(raw) : raw;
    const actual = nodeValue(node, c.key);
    const equal = actual !== undefined && actual.toLowerCase() === c.value.toLowerCase();
    if (equal !== (c.op === '==')) return false;
  }
  return true;
}
