import * as fs from 'node:fs';
import { invalidArgument } from '../services/common/errors';
import { isExecImage, parseImageReference } from '../services/common/image-ref';
import { credentialFromDockerConfig, credentialsFromDockerConfig, formatRegistryAuth, parseRegistryAuth } from '../services/common/registry-auth';
import { dockerConfigFile } from '../services/config/config';

export interface RegistryAuthFlags {
  withRegistryAuth?: boolean;
  registryAuthFile?: string;
}

/**
 * The registry credential to send with a request, as `user:password`: from --registry-auth-file
 * (a file holding user:password), or with --with-registry-auth from docker login's config.json
 * entry for the image's registry. Undefined when neither flag is given.
 */
export function readRegistryAuth(flags: RegistryAuthFlags, image: string | undefined): string | undefined {
  if (!flags.withRegistryAuth && !flags.registryAuthFile) return undefined;
  if (flags.registryAuthFile) {
    let text: string;
    try {
      text = fs.readFileSync(flags.registryAuthFile, 'utf8');
    } catch (err) {
      throw invalidArgument(`cannot read --registry-auth-file ${flags.registryAuthFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
    }
    const line = text.split('\n').map((l) => l.trim()).find(Boolean) ?? '';
    try {
      return formatRegistryAuth(parseRegistryAuth(line));
    } catch (err) {
      throw invalidArgument(`--registry-auth-file ${flags.registryAuthFile} must hold user:password`, err);
    }
  }
  if (!image) throw invalidArgument('--with-registry-auth needs the service\'s image (give --image, or use --registry-auth-file)');
  if (isExecImage(image)) throw invalidArgument('--with-registry-auth needs an image from a registry; exec: images are not pulled');
  const { domain } = parseImageReference(image);
  const file = dockerConfigFile();
  if (!fs.existsSync(file)) throw invalidArgument(`--with-registry-auth: ${file} does not exist (run docker login ${domain}, or use --registry-auth-file)`);
  const cred = credentialFromDockerConfig(fs.readFileSync(file, 'utf8'), domain);
  if (!cred) throw invalidArgument(`--with-registry-auth: ${file} has no credentials for ${domain} (run docker login ${domain}, or use --registry-auth-file)`);
  return formatRegistryAuth(cred);
}

/** docker login's config.json text, or undefined when there is none. */
export function readDockerConfig(): string | undefined {
  const file = dockerConfigFile();
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw invalidArgument(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
  }
}

/** The saved login for an image's registry as user:password, as docker pull and push use it without being asked; else undefined. */
export function savedRegistryAuth(image: string): string | undefined {
  const text = readDockerConfig();
  if (!text) return undefined;
  const cred = credentialFromDockerConfig(text, parseImageReference(image).domain);
  return cred ? formatRegistryAuth(cred) : undefined;
}

/** The saved login for a container's image, as docker run, create and compose up pull with it; '' for none (and for exec: images). */
export function savedContainerRegistryAuth(config: { spec?: { container?: { image: string } } }): string {
  const image = config.spec?.container?.image ?? '';
  return (image && !image.startsWith('exec:') && savedRegistryAuth(image)) || '';
}

/** Every saved login, registry host -> user:password (a build's FROM may pull from any of them). */
export function savedRegistryAuths(): Record<string, string> {
  const text = readDockerConfig();
  if (!text) return {};
  return Object.fromEntries(Object.entries(credentialsFromDockerConfig(text)).map(([d, c]) => [d, formatRegistryAuth(c)]));
}
