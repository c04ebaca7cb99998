import { invalidArgument } from './errors';
import { DEFAULT_DOMAIN, isRegistryHost, registryAuthKeys } from './image-ref';

/** One registry credential. Never logged. */
export interface RegistryCredential {
  readonly username: string;
  readonly password: string;
}

/**
 * Reads a registry credential as the API carries it: `user:password`, or docker's base64 JSON
 * {"username","password"} (what `docker service create --with-registry-auth` sends), or the
 * base64 `user:password` of a config.json `auth` field. Pure.
 */
export function parseRegistryAuth(text: string): RegistryCredential {
  const s = text.trim();
  if (!s) throw invalidArgument('the registry credential is empty');
  const decoded = decodeBase64(s);
  if (decoded?.startsWith('{')) {
    try {
      const j = JSON.parse(decoded) as { username?: unknown; password?: unknown; auth?: unknown };
      if (typeof j.auth === 'string' && j.auth && !j.username) return parseRegistryAuth(j.auth);
      if (typeof j.username === 'string' && typeof j.password === 'string' && j.username) return { username: j.username, password: j.password };
    } catch {
      /* not JSON after all */
    }
    throw invalidArgument('the registry credential is base64 JSON without a username and password');
  }
  const colon = s.indexOf(':');
  if (colon > 0 && /^[^\s"{}]+$/.test(s.slice(0, colon))) return { username: s.slice(0, colon), password: s.slice(colon + 1) };
  if (decoded && decoded.indexOf(':') > 0) return parseRegistryAuth(decoded);
  throw invalidArgument('the registry credential must be user:password');
}

function decodeBase64(s: string): string | undefined {
  if (!/^[A-Za-z0-9+/=_-]+$/.test(s) || s.length % 4 === 1) return undefined;
  const text = Buffer.from(s, 'base64').toString('utf8');
  return /^[\x20-\x7e]+$/.test(text) ? text : undefined;
}

/** The auth file skopeo and podman read (containers-auth.json): one registry, one credential. */
export function renderAuthFile(domain: string, cred: RegistryCredential): string {
  const auth = Buffer.from(`${cred.username}:${cred.password}`, 'utf8').toString('base64');
  return JSON.stringify({ auths: { [domain]: { auth } } });
}

/**
 * The credential for `domain` in a docker config.json (what `docker login` writes): an `auths`
 * entry with `auth` (base64 user:password) or `username`/`password`. Undefined when there is none
 * (credential helpers are not read).
 */
export function credentialFromDockerConfig(configJson: string, domain: string): RegistryCredential | undefined {
  let parsed: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    parsed = JSON.parse(configJson);
  } catch (err) {
    throw invalidArgument(`the docker config file is not JSON: ${(err as Error).message}`, err);
  }
  const auths = parsed?.auths ?? {};
  for (const key of registryAuthKeys(domain)) {
    const entry = auths[key];
    if (!entry) continue;
    if (entry.username && entry.password !== undefined) return { username: entry.username, password: entry.password };
    if (entry.auth) return parseRegistryAuth(Buffer.from(entry.auth, 'base64').toString('utf8'));
  }
  return undefined;
}

/** What the CLI sends: user:password. */
export const formatRegistryAuth = (cred: RegistryCredential) => `${cred.username}:${cred.password}`;

/** The registry host `login` and `logout` mean by what the user typed: a URL's host, docker.io for Docker Hub's names. */
export function loginServer(input: string | undefined): string {
  const host = (input ?? '').trim().replace(/^https?:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  if (!host || host === 'index.docker.io' || host === 'registry-1.docker.io') return DEFAULT_DOMAIN;
  if (!isRegistryHost(host)) throw invalidArgument(`invalid registry address: ${JSON.stringify(input)}`);
  return host;
}

/** The `auths` key docker login writes for a registry: Docker Hub's v1 URL, else host[:port]. */
export const dockerConfigKey = (domain: string) => (domain === DEFAULT_DOMAIN ? 'https://index.docker.io/v1/' : domain);

type DockerConfig = { auths?: Record<string, { auth?: string; username?: string; password?: string } & Record<string, unknown>> } & Record<string, unknown>;

function parseDockerConfig(configJson: string | undefined): DockerConfig {
  if (!configJson || !configJson.trim()) return {};
  try {
    const parsed = JSON.parse(configJson) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as DockerConfig;
  } catch (err) {
    throw invalidArgument(`the docker config file is not JSON: ${(err as Error).message}`, err);
  }
  throw invalidArgument('the docker config file is not a JSON object');
}

/** config.json after `login`: the registry's entry is auths.<key>.auth = base64(user:password); the rest of the file is kept. */
export function planDockerLogin(configJson: string | undefined, domain: string, cred: RegistryCredential): string {
  const config = parseDockerConfig(configJson);
  const auths = { ...(config.auths ?? {}) };
  for (const k of registryAuthKeys(domain)) delete auths[k];
  auths[dockerConfigKey(domain)] = { auth: Buffer.from(`${cred.username}:${cred.password}`, 'utf8').toString('base64') };
  return JSON.stringify({ ...config, auths }, null, '\t') + '\n';
}

/** config.json after `logout`: every entry for the registry gone; removed says whether there was one. */
export function planDockerLogout(configJson: string | undefined, domain: string): { text: string; removed: boolean } {
  const config = parseDockerConfig(configJson);
  const auths = { ...(config.auths ?? {}) };
  const keys = registryAuthKeys(domain).filter((k) => k in auths);
  for (const k of keys) delete auths[k];
  return { text: JSON.stringify({ ...config, auths }, null, '\t') + '\n', removed: keys.length > 0 };
}

/** Every credential in a docker config.json, by registry host (what a build's FROM may pull with). */
export function credentialsFromDockerConfig(configJson: string): Record<string, RegistryCredential> {
  const out: Record<string, RegistryCredential> = {};
  for (const key of Object.keys(parseDockerConfig(configJson).auths ?? {})) {
    let domain: string;
    try {
      domain = loginServer(key);
    } catch {
      continue;
    }
    const cred = credentialFromDockerConfig(configJson, domain);
    if (cred && !out[domain]) out[domain] = cred;
  }
  return out;
}
