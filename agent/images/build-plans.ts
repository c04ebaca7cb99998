/**
 * The pure parts of `image build`, `push` and `login`: buildah's argv, the registries.conf a
 * daemon's buildah reads, which registries speak plain HTTP, and what a failure means. No I/O.
 */
import { SwarmletError, internal, invalidArgument, permissionDenied, unavailable } from '../../services/common/errors';
import { ImageReference, parseImageReference } from '../../services/common/image-ref';
import { skopeoReason } from './image-plans';

/**
 * Registries reached over plain HTTP (or without TLS verification): those the daemon's
 * insecureRegistries names, and, as docker has it, loopback (localhost, 127.0.0.0/8, ::1).
 */
export function isInsecureRegistry(domain: string, insecure: Iterable<string>): boolean {
  for (const d of insecure) if (d === domain) return true;
  const host = domain.startsWith('[') ? domain.slice(1, domain.indexOf(']')) : domain.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** registries.conf (v2) for a daemon's buildah: short names from docker.io, as docker resolves them; loopback (any port: a location matches up to a ':') and its insecure registries plain HTTP. */
export function renderRegistriesConf(insecure: readonly string[]): string {
  const lines = ['unqualified-search-registries = ["docker.io"]', 'short-name-mode = "permissive"', ''];
  for (const d of [...new Set(['localhost', '127.0.0.1', '[::1]', ...insecure])].sort()) lines.push('[[registry]]', `location = ${JSON.stringify(d)}`, 'insecure = true', '');
  return lines.join('\n');
}

/** What a build is asked for, checked. */
export interface BuildSpec {
  contextDir: string;
  dockerfile?: string;
  tags: ImageReference[];
  buildArgs: Record<string, string>;
  quiet: boolean;
  noCache: boolean;
  target?: string;
}

const BUILD_ARG = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A build request checked: absolute paths, valid tags, build-arg names. Throws InvalidArgument. */
export function planBuildSpec(req: { contextDir: string; dockerfile: string; tags: string[]; buildArgs: Record<string, string>; quiet: boolean; noCache: boolean; target: string }): BuildSpec {
  if (!req.contextDir) throw invalidArgument('a build context is required');
  if (!req.contextDir.startsWith('/')) throw invalidArgument(`the build context must be an absolute path: ${req.contextDir}`);
  if (req.dockerfile && !req.dockerfile.startsWith('/')) throw invalidArgument(`the Dockerfile must be an absolute path: ${req.dockerfile}`);
  const tags = req.tags.map((t) => {
    if (t.includes('@')) throw invalidArgument(`invalid tag ${t}: a tag cannot name a digest`);
    return parseImageReference(t);
  });
  for (const k of Object.keys(req.buildArgs)) if (!BUILD_ARG.test(k)) throw invalidArgument(`invalid --build-arg name: ${JSON.stringify(k)}`);
  if (req.target && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(req.target)) throw invalidArgument(`invalid --target: ${req.target}`);
  return { contextDir: req.contextDir, dockerfile: req.dockerfile || undefined, tags, buildArgs: { ...req.buildArgs }, quiet: req.quiet, noCache: req.noCache, target: req.target || undefined };
}

/** Where a daemon's buildah keeps its state: all under the daemon's data dir. */
export interface BuildahPaths {
  root: string;
  runroot: string;
  registriesConf: string;
}

/** buildah's global flags: this daemon's storage (vfs: no mounts to leave behind) and registries. */
export function buildahGlobalArgs(p: BuildahPaths): string[] {
  return ['--root', p.root, '--runroot', p.runroot, '--storage-driver', 'vfs', '--registries-conf', p.registriesConf];
}

/**
 * `buildah bud` for a build: RUN steps under chroot isolation in the daemon's own network
 * namespace (no runtime, bridge or netns of their own: what works inside a lab host and the test
 * sandbox), layers cached as docker caches them, the image id written to `iidfile`.
 */
export function planBuildahBud(p: BuildahPaths, spec: BuildSpec, files: { iidfile: string; authfile?: string }): string[] {
  const args = [...buildahGlobalArgs(p), 'bud', '--isolation', 'chroot', '--network', 'host', '--layers', '--pull=false', '--iidfile', files.iidfile];
  if (spec.quiet) args.push('--quiet');
  if (spec.noCache) args.push('--no-cache');
  if (spec.target) args.push('--target', spec.target);
  if (spec.dockerfile) args.push('--file', spec.dockerfile);
  if (files.authfile) args.push('--authfile', files.authfile);
  for (const [k, v] of Object.entries(spec.buildArgs)) args.push('--build-arg', `${k}=${v}`);
  args.push(spec.contextDir);
  return args;
}

/** The reason buildah gave for a failed build: its last "Error: ..." line (or last line), without the prefix. */
export function buildFailure(stderr: string): SwarmletError {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const error = [...lines].reverse().find((l) => /^(Error|error):? /.test(l)) ?? lines[lines.length - 1] ?? '';
  const reason = error.replace(/^(Error|error):?\s*/, '').replace(/^(building|creating build container|error building) at STEP "([^"]*)": /i, 'step "$2": ');
  if (/no such file or directory|cannot find Dockerfile|no Dockerfile|Containerfile/i.test(reason) && /Dockerfile|Containerfile|context/i.test(reason)) {
    return invalidArgument(`the build failed: ${reason}`);
  }
  return internal(`the build failed: ${reason || 'buildah failed without a reason'}`);
}

const PUSH_AUTH = /unauthorized|authentication required|denied|forbidden|\b401\b|\b403\b|invalid username\/password/i;
const UNREACHABLE = /dial tcp|connection refused|no such host|no route to host|network is unreachable|i\/o timeout|timeout|TLS handshake|connection reset|server misbehaving|pinging container registry/i;

/** A failed push (skopeo copy to a registry) as one clear error. */
export function describePushFailure(ref: ImageReference, stderr: string, hadAuth: boolean): SwarmletError {
  const reason = skopeoReason(stderr);
  const registry = ref.domain;
  if (/server gave HTTP response to HTTPS client/i.test(reason)) {
    return unavailable(`registry ${registry} unreachable (it speaks plain HTTP; name it in the daemon's insecureRegistries to push to it)`, new Error(reason));
  }
  if (PUSH_AUTH.test(reason)) {
    return hadAuth
      ? permissionDenied(`registry ${registry} refused the credentials to push ${ref.normalized}`, new Error(reason))
      : permissionDenied(`registry ${registry} requires credentials to push ${ref.normalized} (run swarmlet login ${registry})`, new Error(reason));
  }
  if (UNREACHABLE.test(reason)) return unavailable(`registry ${registry} unreachable (${reason.replace(/^.*?(dial tcp [^:]+:\d+: )?/, '')})`, new Error(reason));
  return internal(`pushing ${ref.normalized} failed: ${reason || 'skopeo failed without a reason'}`, new Error(reason));
}

/** A failed `skopeo login` as one clear error (the password is never part of it). */
export function describeLoginFailure(server: string, stderr: string): SwarmletError {
  const reason = skopeoReason(stderr).replace(/^(Error: )?(authenticating creds for "[^"]*": )?/i, '');
  if (/server gave HTTP response to HTTPS client/i.test(reason)) {
    return unavailable(`registry ${server} unreachable (it speaks plain HTTP; name it in the daemon's insecureRegistries)`, new Error(reason));
  }
  if (PUSH_AUTH.test(reason)) return permissionDenied(`login to ${server} failed: unauthorized: incorrect username or password`, new Error(reason));
  if (UNREACHABLE.test(reason)) return unavailable(`registry ${server} unreachable (${reason})`, new Error(reason));
  return internal(`login to ${server} failed: ${reason || 'skopeo failed without a reason'}`, new Error(reason));
}
