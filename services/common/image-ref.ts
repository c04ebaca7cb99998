import { invalidArgument } from './errors';

/**
 * Docker image references (distribution's grammar), parsed and normalized as docker does:
 * `busybox` -> docker.io/library/busybox:latest, `host:5000/x/y:tag`, `name@sha256:...`.
 * Pure: no I/O.
 */
export interface ImageReference {
  /** Registry host[:port], e.g. docker.io or 10.0.0.5:5000. */
  readonly domain: string;
  /** Repository path inside the registry, e.g. library/busybox. */
  readonly path: string;
  readonly tag?: string;
  /** algorithm:hex, e.g. sha256:... */
  readonly digest?: string;
  /** domain/path */
  readonly name: string;
  /** The normalized reference: name[:tag][@digest] (tag latest when neither is given). */
  readonly normalized: string;
}

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const DEFAULT_TAG = 'latest';
export const MAX_NAME_LENGTH = 255;

const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = new RegExp(`^${ALNUM}(?:${SEPARATOR}${ALNUM})*$`);
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]{1,5})?$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$/;
const ANCHORED_ID = /^[a-f0-9]{64}$/;

const bad = (ref: string, why: string) => invalidArgument(`invalid reference format: ${JSON.stringify(ref)}: ${why}`);

/** Splits `name[:tag][@digest]` (the tag's colon is the last one after the last slash). */
function splitReference(ref: string): { name: string; tag?: string; digest?: string } {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(ref, 'a digest is sha256: followed by 64 lowercase hex digits (or sha384/sha512)');
  }
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  let tag: string | undefined;
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(ref, 'a tag is up to 128 letters, digits, \'_\', \'.\' and \'-\', not starting with \'.\' or \'-\'');
  }
  return { name: rest, tag, digest };
}

/** docker's rule: the first component is a registry when it has '.' or ':', is localhost, or has uppercase letters. */
function splitDomain(name: string): { domain: string; path: string } {
  const i = name.indexOf('/');
  const first = name.slice(0, i);
  if (i < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    return { domain: DEFAULT_DOMAIN, path: name };
  }
  return { domain: first === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : first, path: name.slice(i + 1) };
}

/** Parses and normalizes a reference; throws InvalidArgument "invalid reference format: ..." when it is not one. */
export function parseImageReference(input: string): ImageReference {
  const ref = input;
  if (!ref) throw bad(ref, 'it is empty');
  if (/[\s\0]/.test(ref)) throw bad(ref, 'it contains whitespace or control characters');
  if (ANCHORED_ID.test(ref)) throw bad(ref, 'a repository name cannot be a 64-character hex string (that is an image id)');
  const { name, tag, digest } = splitReference(ref);
  if (!name) throw bad(ref, 'the repository name is missing');
  if (name.length > MAX_NAME_LENGTH) throw bad(ref, `the repository name is longer than ${MAX_NAME_LENGTH} characters`);
  const split = splitDomain(name);
  let { path } = split;
  const { domain } = split;
  if (!DOMAIN.test(domain)) throw bad(ref, `${JSON.stringify(domain)} is not a valid registry host[:port]`);
  if (path !== path.toLowerCase()) throw bad(ref, 'the repository name must be lowercase');
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;
  for (const component of path.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      throw bad(ref, component ? `${JSON.stringify(component)} is not a valid repository name component (lowercase letters, digits and single separators . _ __ -)` : 'the repository name has an empty component');
    }
  }
  const full = `${domain}/${path}`;
  if (full.length > MAX_NAME_LENGTH) throw bad(ref, `the repository name is longer than ${MAX_NAME_LENGTH} characters`);
  const effectiveTag = tag ?? (digest ? undefined : DEFAULT_TAG);
  const normalized = `${full}${effectiveTag ? `:${effectiveTag}` : ''}${digest ? `@${digest}` : ''}`;
  return Object.freeze({ domain, path, tag: effectiveTag, digest, name: full, normalized });
}

/** The reference skopeo is given for a pull: by digest when there is one (the tag is then only a label). */
export function transportReference(ref: ImageReference): string {
  return ref.digest ? `${ref.name}@${ref.digest}` : `${ref.name}:${ref.tag}`;
}

/** A registry as references name it: host[:port] (what insecureRegistries lists). */
export const isRegistryHost = (s: string) => DOMAIN.test(s);

/** `exec:` images are the exec runtime's; every other image is an OCI reference. */
export const isExecImage = (image: string) => image.startsWith('exec:');

/** The registry a reference names, as docker's config.json `auths` keys it (docker.io -> https://index.docker.io/v1/ too). */
export function registryAuthKeys(domain: string): string[] {
  if (domain === DEFAULT_DOMAIN) return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'https://docker.io', 'registry-1.docker.io'];
  return [domain, `https://${domain}`, `http://${domain}`, `https://${domain}/v1/`, `https://${domain}/v2/`];
}
