/** Which keys of a project a caller does not support, for its one warning line. Pure. */
import { ComposeProject } from './model';

/**
 * The keys of `project.keys` that no pattern of `supported` covers. A pattern is a key path with
 * `*` for any one name, and covers that key and everything under it: `services.*.deploy.resources`
 * covers `services.web.deploy.resources.limits`. Only the outermost unsupported key is named.
 */
export function unsupportedKeys(project: Pick<ComposeProject, 'keys'>, supported: readonly string[]): string[] {
  const patterns = supported.map((p) => p.split('.'));
  const matches = (p: string[], parts: string[], n: number) => p.slice(0, n).every((seg, i) => seg === '*' || seg === parts[i]);
  const covered = (parts: string[]) => patterns.some((p) => p.length <= parts.length && matches(p, parts, p.length));
  // a key with supported keys under it (`services`, `services.web.deploy`) is not itself named
  const holdsSupported = (parts: string[]) => patterns.some((p) => p.length > parts.length && matches(p, parts, parts.length));
  const named: string[] = [];
  for (const key of project.keys) {
    const parts = key.split('.');
    if (covered(parts) || holdsSupported(parts)) continue;
    if (named.some((n) => key.startsWith(`${n}.`))) continue; // its parent is named already
    if (!named.includes(key)) named.push(key);
  }
  return named;
}

/** The one warning line naming them (empty when there are none). */
export function formatUnsupportedWarning(keys: readonly string[]): string {
  return keys.length ? `WARNING: swarmlet does not support these keys and ignores them: ${keys.join(', ')}` : '';
}
