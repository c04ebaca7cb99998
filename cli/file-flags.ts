/**
 * `--secret` and `--config` (docker's syntax: NAME, or source=NAME,target=T,uid=U,gid=G,mode=0400),
 * and `--secret-add/--secret-rm`, `--config-add/--config-rm` on update. Pure: the manager resolves
 * the names and checks the targets.
 */
import { invalidArgument } from '../services/common/errors';
import { ConfigReference, FileTarget, SecretReference } from '../services/gen/swarmlet/v1/types';

type Kind = 'secret' | 'config';
const KEYS = 'source (src), target, uid, gid, mode';

function parseRef(kind: Kind, text: string): { name: string; file: FileTarget } {
  const flag = `--${kind}`;
  if (!text.includes('=')) {
    if (!text.trim() || text.includes(',')) throw invalidArgument(`invalid ${flag} ${JSON.stringify(text)}: give NAME or source=NAME[,target=...]`);
    return { name: text.trim(), file: { name: '', uid: 0, gid: 0, mode: 0 } };
  }
  const file: FileTarget = { name: '', uid: 0, gid: 0, mode: 0 };
  let name = '';
  const seen = new Set<string>();
  for (const field of text.split(',')) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? '' : field.slice(eq + 1).trim();
    const canonical = key === 'src' ? 'source' : key;
    if (seen.has(canonical)) throw invalidArgument(`invalid ${flag} ${JSON.stringify(text)}: ${canonical} given twice`);
    seen.add(canonical);
    if (!value) throw invalidArgument(`invalid ${flag} ${JSON.stringify(text)}: ${key} needs a value`);
    const id = (what: string) => {
      if (!/^\d+$/.test(value) || Number(value) > 0xfffffffe) throw invalidArgument(`invalid ${flag} ${JSON.stringify(text)}: ${what} is a number, not ${JSON.stringify(value)}`);
      return Number(value);
    };
    switch (canonical) {
      case 'source':
        name = value;
        break;
      case 'target':
        file.name = value;
        break;
      case 'uid':
        file.uid = id('uid');
        break;
      case 'gid':
        file.gid = id('gid');
        break;
      case 'mode':
        if (!/^0?[0-7]{1,3}$/.test(value)) throw invalidArgument(`invalid ${flag} ${JSON.stringify(text)}: mode is an octal file mode like 0400, not ${JSON.stringify(value)}`);
        file.mode = parseInt(value, 8);
        break;
      default:
        throw invalidArgument(`invalid ${flag} ${JSON.stringify(text)}: unknown key ${JSON.stringify(key)} (keys: ${KEYS})`);
    }
  }
  if (!name) throw invalidArgument(`invalid ${flag} ${JSON.stringify(text)}: source is required`);
  return { name, file };
}

export function parseSecretFlag(text: string): SecretReference {
  const { name, file } = parseRef('secret', text);
  return { secretId: '', secretName: name, file };
}

export function parseConfigFlag(text: string): ConfigReference {
  const { name, file } = parseRef('config', text);
  return { configId: '', configName: name, file };
}

/**
 * `--secret-rm` (by name or id) then `--secret-add` on a service's references: removing one the
 * service does not have is refused; an added one replaces one of the same source.
 */
export function planSecretChange(current: SecretReference[], add: string[], rm: string[]): SecretReference[] {
  return planChange('secret', current, add.map(parseSecretFlag), rm, (r) => [r.secretName, r.secretId]);
}

export function planConfigChange(current: ConfigReference[], add: string[], rm: string[]): ConfigReference[] {
  return planChange('config', current, add.map(parseConfigFlag), rm, (r) => [r.configName, r.configId]);
}

function planChange<R>(kind: Kind, current: R[], added: R[], rm: string[], refs: (r: R) => string[]): R[] {
  for (const ref of rm) {
    if (!current.some((r) => refs(r).includes(ref))) throw invalidArgument(`--${kind}-rm ${ref}: the service has no ${kind} ${ref}`);
  }
  const addedNames = new Set(added.map((r) => refs(r)[0]));
  const kept = current.filter((r) => !refs(r).some((x) => rm.includes(x)) && !addedNames.has(refs(r)[0]));
  return [...kept, ...added];
}
