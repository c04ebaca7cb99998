/**
 * The image store's pure parts: what a skopeo failure means, what an OCI image config says, and
 * which images rm and prune take. No I/O.
 */
import { SwarmletError, failedPrecondition, internal, invalidArgument, notFound, permissionDenied, unavailable } from '../../services/common/errors';
import type { ImageReference } from '../../services/common/image-ref';

/** What a task needs from an image's config (OCI image spec `config`). */
export interface ImageRunConfig {
  entrypoint: string[];
  cmd: string[];
  env: string[];
  user: string;
  workingDir: string;
  exposedPorts?: string[];
  stopSignal?: string;
}

/** What the store keeps of one unpacked image (meta.json beside its rootfs). */
export interface ImageRecord {
  /** sha256:... of the image config. */
  id: string;
  /** The manifest digest the registry gave for the reference pulled (its "repo digest"). */
  digest: string;
  config: ImageRunConfig;
  sizeBytes: number;
  createdAt: string;
  pulledAt: string;
}

/** The reason skopeo gave: the msg="..." of its fatal log line, else its last line. */
export function skopeoReason(stderr: string): string {
  const lines = stderr.trim().split('\n').filter(Boolean);
  const last = lines[lines.length - 1] ?? '';
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(last);
  return (m ? m[1].replace(/\\"/g, '"') : last).trim();
}

const NOT_FOUND = /manifest unknown|name unknown|not found|\b404\b|no such image|repository name not known/i;
const AUTH = /unauthorized|authentication required|denied|forbidden|\b401\b|\b403\b|invalid username\/password/i;
const UNREACHABLE = /dial tcp|connection refused|no such host|no route to host|network is unreachable|i\/o timeout|timeout|TLS handshake|x509|connection reset|EOF|server misbehaving|pinging container registry/i;

/** A skopeo failure as a clear error: not found, credentials refused, unreachable, or the reason as is. */
export function describePullFailure(ref: ImageReference, stderr: string, hadAuth: boolean): SwarmletError {
  const reason = skopeoReason(stderr);
  const image = ref.normalized;
  const registry = ref.domain;
  if (/server gave HTTP response to HTTPS client/i.test(reason)) {
    return unavailable(`registry ${registry} unreachable (it speaks plain HTTP; name it in the daemon's insecureRegistries to pull from it)`, new Error(reason));
  }
  if (AUTH.test(reason)) {
    return hadAuth
      ? permissionDenied(`registry ${registry} refused the credentials for ${image}`, new Error(reason))
      : permissionDenied(`registry ${registry} requires credentials for ${image} (pass them with --with-registry-auth)`, new Error(reason));
  }
  if (NOT_FOUND.test(reason)) return notFound(`image ${image} not found in registry ${registry}`, new Error(reason));
  if (UNREACHABLE.test(reason)) return unavailable(`registry ${registry} unreachable (${shortNetReason(reason)})`, new Error(reason));
  if (/invalid reference|parsing reference|invalid reference format/i.test(reason)) return invalidArgument(`invalid reference format: ${image}: ${reason}`);
  return internal(`pulling ${image} failed: ${reason || 'skopeo failed without a reason'}`, new Error(reason));
}

/** The useful end of a Go network error: "connection refused", "no such host", ... */
function shortNetReason(reason: string): string {
  const known = /(connection refused|no such host|no route to host|network is unreachable|i\/o timeout|connection reset by peer|TLS handshake timeout|x509: [^"]+|EOF)/i.exec(reason);
  return known ? known[1] : reason;
}

export function pullTimedOut(ref: ImageReference, ms: number): SwarmletError {
  return unavailable(`pulling ${ref.normalized} timed out after ${Math.round(ms / 1000)}s (registry ${ref.domain} too slow or hung)`);
}

export function pullPolicyRefusal(ref: ImageReference): SwarmletError {
  return failedPrecondition(`image ${ref.normalized} is not on this node and the pull policy is never`);
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** The run config of an OCI (or docker) image config JSON. */
export function parseImageConfig(json: string): { config: ImageRunConfig; created?: string } {
  let parsed: { config?: Record<string, unknown>; created?: unknown };
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw internal(`the image config is not JSON: ${(err as Error).message}`, err);
  }
  const c = (parsed.config ?? {}) as Record<string, unknown>;
  const ports = c.ExposedPorts && typeof c.ExposedPorts === 'object' ? Object.keys(c.ExposedPorts as object) : [];
  return {
    config: {
      entrypoint: strings(c.Entrypoint),
      cmd: strings(c.Cmd),
      env: strings(c.Env),
      user: typeof c.User === 'string' ? c.User : '',
      workingDir: typeof c.WorkingDir === 'string' ? c.WorkingDir : '',
      ...(ports.length ? { exposedPorts: ports } : {}),
      ...(typeof c.StopSignal === 'string' && c.StopSignal ? { stopSignal: c.StopSignal } : {}),
    },
    created: typeof parsed.created === 'string' ? parsed.created : undefined,
  };
}

/** The store's view for rm and prune: each image with its references and the tasks that use it. */
export interface StoredImage {
  id: string;
  references: string[];
  usedBy: string[];
  sizeBytes: number;
}

/** What `image rm` does: references to untag and images to delete (or why it refuses). */
export interface RemovalPlan {
  untag: string[];
  remove: string[];
}

const shortId = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);

/**
 * `image rm TARGET`: a reference untags that reference (the image goes when nothing else names it);
 * an id (prefix) removes the image with all its references, and wants force when it has several.
 * An image some task uses stays (force untags it; it goes with prune once unused).
 */
export function planImageRemoval(images: StoredImage[], target: { reference?: string; idPrefix?: string }, force: boolean): RemovalPlan {
  if (target.reference) {
    const img = images.find((i) => i.references.includes(target.reference!));
    if (img) {
      const last = img.references.length === 1;
      if (last && img.usedBy.length && !force) throw usedError(target.reference, img);
      return { untag: [target.reference], remove: last && !img.usedBy.length ? [img.id] : [] };
    }
  }
  const prefix = (target.idPrefix ?? '').replace(/^sha256:/, '');
  const matches = prefix ? images.filter((i) => i.id.replace(/^sha256:/, '').startsWith(prefix)) : [];
  if (matches.length === 0) throw notFound(`no such image: ${target.reference ?? target.idPrefix}`);
  if (matches.length > 1) throw invalidArgument(`image id prefix ${prefix} is ambiguous: it matches ${matches.map((m) => shortId(m.id)).join(', ')}`);
  const img = matches[0];
  if (img.usedBy.length && !force) throw usedError(shortId(img.id), img);
  if (img.references.length > 1 && !force) {
    throw failedPrecondition(`image ${shortId(img.id)} is referenced by ${img.references.join(', ')}: remove those references, or use --force`);
  }
  return { untag: [...img.references], remove: img.usedBy.length ? [] : [img.id] };
}

function usedError(name: string, img: StoredImage): SwarmletError {
  return failedPrecondition(`image ${name} is used by task${img.usedBy.length > 1 ? 's' : ''} ${img.usedBy.join(', ')}: stop them first, or use --force`);
}

/** The image a reference or an id (prefix) names, for tag, push and inspect. */
export function resolveImageTarget(images: StoredImage[], target: { reference?: string; idPrefix?: string }, asTyped: string): StoredImage {
  if (target.reference) {
    const img = images.find((i) => i.references.includes(target.reference!));
    if (img) return img;
  }
  const prefix = (target.idPrefix ?? '').replace(/^sha256:/, '');
  const matches = prefix ? images.filter((i) => i.id.replace(/^sha256:/, '').startsWith(prefix)) : [];
  if (matches.length === 0) throw notFound(`no such image: ${asTyped}`);
  if (matches.length > 1) throw invalidArgument(`image id prefix ${prefix} is ambiguous: it matches ${matches.map((m) => shortId(m.id)).join(', ')}`);
  return matches[0];
}

/** `image prune`: unused images without a reference; with all, every unused image. */
export function planImagePrune(images: StoredImage[], all: boolean): StoredImage[] {
  return images.filter((i) => i.usedBy.length === 0 && (all || i.references.length === 0));
}
