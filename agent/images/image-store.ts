import { Mutex } from 'async-mutex';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { asSwarmletError, internal, notFound } from '../../services/common/errors';
import { ImageReference, parseImageReference, transportReference } from '../../services/common/image-ref';
import { Logger, componentLogger } from '../../services/common/logger';
import { parseRegistryAuth, renderAuthFile } from '../../services/common/registry-auth';
import { Image } from '../../services/gen/swarmlet/v1/control';
import { PullPolicy } from '../../services/gen/swarmlet/v1/types';
import {
  ImageRecord,
  ImageRunConfig,
  StoredImage,
  describePullFailure,
  parseImageConfig,
  planImagePrune,
  planImageRemoval,
  pullPolicyRefusal,
  pullTimedOut,
  skopeoReason,
} from './image-plans';

export type { ImageRunConfig } from './image-plans';

/** An image unpacked on this node, ready to be a container's read-only lower layer. */
export interface LocalImage {
  /** sha256:... of the image config. */
  id: string;
  references: string[];
  /** The registry's manifest digest of the reference pulled. */
  digest: string;
  /** The unpacked root filesystem: read-only, shared by every task of the image (overlayfs lowerdir). */
  rootfs: string;
  config: ImageRunConfig;
  sizeBytes: number;
}

export interface ImageStoreOptions {
  /** <dataDir>/images */
  root: string;
  log: Logger;
  /** host[:port] of registries pulled from over plain HTTP or without TLS verification. */
  insecureRegistries?: readonly string[];
  /** A pull (inspect + copy + unpack) that takes longer is killed. Default 5 minutes. */
  pullTimeoutMs?: number;
  skopeo?: string;
  umoci?: string;
}

const DEFAULT_PULL_TIMEOUT_MS = 5 * 60 * 1000;
const LAYOUT_TAG = 'image';

interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
}

/** Runs a tool with a deadline; never rejects on a non-zero exit. */
function runTool(file: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    timer.unref();
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-8192)));
    child.on('error', (e) => (clearTimeout(timer), reject(internal(`cannot run ${file}: ${e.message}`, e))));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128 + (signal ? 9 : 0), stdout: Buffer.concat(out), stderr: err, timedOut });
    });
  });
}

function writeAtomic(file: string, text: string, mode = 0o644): void {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, text, { mode });
  fs.renameSync(tmp, file);
}

function readJson<T>(file: string, fallback: T): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw internal(`${file} is unreadable: ${(err as Error).message}`, err);
  }
}

/** Bytes under a directory (files and symlinks by their own size; hard links once). */
async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  const seen = new Set<string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.promises.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = await fs.promises.lstat(p);
      if (st.nlink > 1 && !st.isDirectory()) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      total += st.size;
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return total;
}

const hexOf = (digest: string) => digest.replace(/^sha256:/, '');

/**
 * This node's images. A pull copies the image with skopeo into a private OCI layout in a temp
 * dir, unpacks it once with umoci, and renames the result into images/<config hex>/ (rootfs +
 * meta.json): a failure or a crash leaves only a temp dir, wiped at the next start. References
 * (references.json) and task uses (used.json) are small files replaced atomically. Pulls run
 * one at a time; concurrent calls for the same reference share one pull. Credentials go to
 * skopeo in a temp auth file (0600, removed after), never in argv or logs.
 */
export class ImageStore {
  private readonly log: Logger;
  private readonly root: string;
  private readonly imagesDir: string;
  private readonly tmpDir: string;
  private readonly refsFile: string;
  private readonly usedFile: string;
  private readonly insecure: ReadonlySet<string>;
  private readonly pullTimeoutMs: number;
  private readonly skopeo: string;
  private readonly umoci: string;
  private readonly pulls = new Mutex();
  private readonly inflight = new Map<string, Promise<LocalImage>>();
  /** Images a pull is about to tag: rm and prune leave them alone. */
  private readonly pinned = new Set<string>();
  private refs: Record<string, string>;
  private used: Record<string, string>;

  constructor(opts: ImageStoreOptions) {
    this.log = componentLogger(opts.log, 'images');
    this.root = opts.root;
    this.imagesDir = path.join(opts.root, 'images');
    this.tmpDir = path.join(opts.root, 'tmp');
    this.refsFile = path.join(opts.root, 'references.json');
    this.usedFile = path.join(opts.root, 'used.json');
    this.insecure = new Set(opts.insecureRegistries ?? []);
    this.pullTimeoutMs = opts.pullTimeoutMs ?? DEFAULT_PULL_TIMEOUT_MS;
    this.skopeo = opts.skopeo ?? 'skopeo';
    this.umoci = opts.umoci ?? 'umoci';
    // Whatever a pull cut short by a crash left behind goes now: nothing there looks like an image.
    // The directories themselves are made by the first write (ensureDirs): a daemon that never
    // pulls, such as one whose init was refused, leaves its data dir as it found it.
    fs.rmSync(this.tmpDir, { recursive: true, force: true });
    this.refs = readJson<Record<string, string>>(this.refsFile, {});
    this.used = readJson<Record<string, string>>(this.usedFile, {});
  }

  /** The image `ref` names, pulled as `policy` says: missing (when absent), always, never. */
  async ensure(ref: string, policy: PullPolicy = PullPolicy.PULL_POLICY_MISSING, auth?: string): Promise<LocalImage> {
    const parsed = parseImageReference(ref);
    if (policy !== PullPolicy.PULL_POLICY_ALWAYS) {
      const local = this.lookup(parsed);
      if (local) return local;
      if (policy === PullPolicy.PULL_POLICY_NEVER) throw pullPolicyRefusal(parsed);
    }
    return this.pullParsed(parsed, auth);
  }

  /** Pulls `ref` from its registry (a no-op when the registry's digest is the one this node has). */
  async pull(ref: string, auth?: string): Promise<LocalImage> {
    return this.pullParsed(parseImageReference(ref), auth);
  }

  /** Every image on this node, newest first. */
  async list(): Promise<Image[]> {
    const byId = new Map<string, string[]>();
    for (const [r, id] of Object.entries(this.refs)) byId.set(id, [...(byId.get(id) ?? []), r]);
    const images: Image[] = [];
    for (const hex of this.imageDirs()) {
      const rec = this.record(hex);
      if (!rec) continue;
      images.push({
        id: rec.id,
        references: (byId.get(rec.id) ?? []).sort(),
        digest: rec.digest,
        sizeBytes: rec.sizeBytes,
        createdAt: rec.createdAt,
        usedBy: this.usersOf(rec.id),
      });
    }
    return images.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id));
  }

  /** `image rm`: a reference or an id (prefix). Returns docker's "Untagged: REF" and "Deleted: ID" lines. */
  async remove(target: string, force = false): Promise<string[]> {
    let reference: string | undefined;
    try {
      reference = parseImageReference(target).normalized;
    } catch {
      reference = undefined;
    }
    const idPrefix = /^(sha256:)?[a-f0-9]{1,64}$/.test(target) ? target : undefined;
    const known = reference && this.refs[reference] ? reference : undefined;
    if (!known && !idPrefix) throw notFound(`no such image: ${target}`);
    const plan = planImageRemoval(this.stored(), known ? { reference: known } : { idPrefix }, force);
    const out: string[] = [];
    for (const r of plan.untag) {
      delete this.refs[r];
      out.push(`Untagged: ${r}`);
    }
    this.saveRefs();
    for (const id of plan.remove) {
      this.deleteImage(id);
      out.push(`Deleted: ${id}`);
    }
    this.log.info({ target, untagged: plan.untag, deleted: plan.remove }, 'images removed');
    return out;
  }

  /** `image prune`: unused images without a reference (all: every unused image). */
  async prune(all = false): Promise<{ removed: string[]; reclaimedBytes: number }> {
    const victims = planImagePrune(this.stored(), all);
    for (const v of victims) for (const r of v.references) delete this.refs[r];
    this.saveRefs();
    for (const v of victims) this.deleteImage(v.id);
    const reclaimedBytes = victims.reduce((n, v) => n + v.sizeBytes, 0);
    if (victims.length) this.log.info({ removed: victims.map((v) => v.id), reclaimedBytes }, 'images pruned');
    return { removed: victims.map((v) => v.id), reclaimedBytes };
  }

  /**
   * Records that a task's root is made from the image (rm refuses it; ls shows it). Call it right
   * after ensure(), with no await between: nothing can remove the image in that gap.
   */
  use(taskId: string, imageId: string): void {
    if (!this.record(hexOf(imageId))) throw notFound(`image ${imageId} is not on this node (removed meanwhile?)`);
    if (this.used[taskId] === imageId) return;
    this.used[taskId] = imageId;
    writeAtomic(this.usedFile, JSON.stringify(this.used));
  }

  release(taskId: string): void {
    if (!(taskId in this.used)) return;
    delete this.used[taskId];
    writeAtomic(this.usedFile, JSON.stringify(this.used));
  }

  /** Forgets the uses of tasks not in `taskIds` (after a restart: the tasks the runtime still has). */
  retainUses(taskIds: Iterable<string>): void {
    const keep = new Set(taskIds);
    const gone = Object.keys(this.used).filter((t) => !keep.has(t));
    if (!gone.length) return;
    for (const t of gone) delete this.used[t];
    writeAtomic(this.usedFile, JSON.stringify(this.used));
  }

  // ---- internals ------------------------------------------------------------------------------

  /** The image a reference names here: by the reference itself, or for name@digest by a pull of that name with that digest. */
  private lookup(ref: ImageReference): LocalImage | undefined {
    const direct = this.refs[ref.normalized];
    if (direct) return this.local(direct);
    if (!ref.digest) return undefined;
    const sameName = Object.entries(this.refs).filter(([r]) => parseImageReference(r).name === ref.name);
    const hit = sameName.find(([, id]) => this.record(hexOf(id))?.digest === ref.digest);
    if (!hit) return undefined;
    this.tag(ref.normalized, hit[1]);
    return this.local(hit[1]);
  }

  private local(id: string): LocalImage | undefined {
    const rec = this.record(hexOf(id));
    if (!rec) return undefined;
    return {
      id: rec.id,
      references: Object.keys(this.refs).filter((r) => this.refs[r] === rec.id).sort(),
      digest: rec.digest,
      rootfs: path.join(this.imagesDir, hexOf(rec.id), 'rootfs'),
      config: rec.config,
      sizeBytes: rec.sizeBytes,
    };
  }

  private localOrGone(id: string): LocalImage {
    const img = this.local(id);
    if (!img) throw internal(`image ${id} was removed while it was being pulled`);
    return img;
  }

  private record(hex: string): ImageRecord | undefined {
    if (!/^[a-f0-9]{64}$/.test(hex)) return undefined;
    return readJson<ImageRecord | undefined>(path.join(this.imagesDir, hex, 'meta.json'), undefined);
  }

  private imageDirs(): string[] {
    if (!fs.existsSync(this.imagesDir)) return [];
    return fs.readdirSync(this.imagesDir).filter((d) => /^[a-f0-9]{64}$/.test(d));
  }

  /** The store's directories, 0700, made before anything is written into them. */
  private ensureDirs(): void {
    fs.mkdirSync(this.imagesDir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  private usersOf(id: string): string[] {
    return Object.keys(this.used).filter((t) => this.used[t] === id).sort();
  }

  private stored(): StoredImage[] {
    return this.imageDirs().flatMap((hex) => {
      const rec = this.record(hex);
      if (!rec || this.pinned.has(rec.id)) return [];
      return [{ id: rec.id, references: Object.keys(this.refs).filter((r) => this.refs[r] === rec.id), usedBy: this.usersOf(rec.id), sizeBytes: rec.sizeBytes }];
    });
  }

  private saveRefs(): void {
    this.ensureDirs();
    writeAtomic(this.refsFile, JSON.stringify(this.refs));
  }

  /** Moves the image dir aside (one rename) before deleting it: never half an image under images/. */
  private deleteImage(id: string): void {
    const dir = path.join(this.imagesDir, hexOf(id));
    if (!fs.existsSync(dir)) return;
    this.ensureDirs();
    const doomed = path.join(this.tmpDir, `rm-${hexOf(id).slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    fs.renameSync(dir, doomed);
    fs.rmSync(doomed, { recursive: true, force: true });
  }

  private pullParsed(ref: ImageReference, auth?: string): Promise<LocalImage> {
    const key = `${ref.normalized}\0${auth ?? ''}`;
    const running = this.inflight.get(key);
    if (running) return running;
    const shared = this.pulls.runExclusive(() => this.pullNow(ref, auth)).finally(() => this.inflight.delete(key));
    this.inflight.set(key, shared);
    return shared;
  }

  private async pullNow(ref: ImageReference, auth?: string): Promise<LocalImage> {
    const log = this.log.child({ image: ref.normalized });
    this.ensureDirs();
    const work = fs.mkdtempSync(path.join(this.tmpDir, 'pull-'));
    const deadline = Date.now() + this.pullTimeoutMs;
    try {
      const common = await this.skopeoOptions(ref, work, auth);
      const digest = await this.remoteDigest(ref, common, deadline, Boolean(auth));
      const known = Object.entries(this.refs).find(([, id]) => this.record(hexOf(id))?.digest === digest)?.[1];
      if (known && this.record(hexOf(known))) {
        this.tag(ref.normalized, known);
        log.debug({ digest }, 'image up to date');
        return this.localOrGone(known);
      }
      log.info({ digest }, 'pulling image');
      const layout = path.join(work, 'layout');
      const copy = await this.tool(this.skopeo, ['copy', '--quiet', ...common.src, `docker://${ref.name}@${digest}`, `oci:${layout}:${LAYOUT_TAG}`], deadline, ref);
      if (copy.code !== 0) throw describePullFailure(ref, copy.stderr, Boolean(auth));
      const { id, config, created } = this.readLayout(layout);
      this.pinned.add(id);
      try {
        if (!this.record(hexOf(id))) await this.unpack(ref, layout, work, { id, digest, config, created }, deadline);
        else this.touchDigest(id, digest);
        this.tag(ref.normalized, id);
      } finally {
        this.pinned.delete(id);
      }
      log.info({ id, digest }, 'image pulled');
      return this.localOrGone(id);
    } catch (err) {
      const e = asSwarmletError(err);
      log.warn({ err: e.message }, 'pull failed');
      throw e;
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }

  /** Flags skopeo needs for this registry: TLS off for the insecure ones, an auth file when there is a credential. */
  private async skopeoOptions(ref: ImageReference, work: string, auth?: string): Promise<{ src: string[]; inspect: string[] }> {
    const insecure = this.insecure.has(ref.domain);
    const src: string[] = insecure ? ['--src-tls-verify=false'] : [];
    const inspect: string[] = insecure ? ['--tls-verify=false'] : [];
    if (auth) {
      const file = path.join(work, 'auth.json');
      fs.writeFileSync(file, renderAuthFile(ref.domain, parseRegistryAuth(auth)), { mode: 0o600 });
      src.push('--authfile', file);
      inspect.push('--authfile', file);
    } else {
      // No credential: do not fall back to whatever auth file the host has for root.
      src.push('--src-no-creds');
      inspect.push('--no-creds');
    }
    return { src, inspect };
  }

  /** The manifest digest the registry serves for the reference (sha256 of the raw manifest). */
  private async remoteDigest(ref: ImageReference, opts: { inspect: string[] }, deadline: number, hadAuth: boolean): Promise<string> {
    const res = await this.tool(this.skopeo, ['inspect', '--raw', ...opts.inspect, `docker://${transportReference(ref)}`], deadline, ref);
    if (res.code !== 0) throw describePullFailure(ref, res.stderr, hadAuth);
    const digest = `sha256:${createHash('sha256').update(res.stdout).digest('hex')}`;
    if (ref.digest && ref.digest.startsWith('sha256:') && ref.digest !== digest) {
      throw internal(`registry ${ref.domain} served a manifest for ${ref.normalized} whose digest is ${digest}`);
    }
    return ref.digest ?? digest;
  }

  private async tool(file: string, args: string[], deadline: number, ref: ImageReference): Promise<RunResult> {
    const left = deadline - Date.now();
    if (left <= 0) throw pullTimedOut(ref, this.pullTimeoutMs);
    const res = await runTool(file, args, left);
    if (res.timedOut) throw pullTimedOut(ref, this.pullTimeoutMs);
    return res;
  }

  /** index.json -> manifest -> config: the image id and its run config. */
  private readLayout(layout: string): { id: string; config: ImageRunConfig; created?: string } {
    const blob = (digest: string) => fs.readFileSync(path.join(layout, 'blobs', ...digest.split(':')), 'utf8');
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests?: { digest: string }[] };
    const manifestDigest = index.manifests?.[0]?.digest;
    if (!manifestDigest) throw internal('the pulled image has no manifest');
    const manifest = JSON.parse(blob(manifestDigest)) as { config?: { digest?: string } };
    const id = manifest.config?.digest;
    if (!id || !/^sha256:[a-f0-9]{64}$/.test(id)) throw internal('the pulled image has no sha256 config digest');
    return { id, ...parseImageConfig(blob(id)) };
  }

  /** umoci unpacks the layers (whiteouts and all) into work/image/rootfs, which is then renamed into place. */
  private async unpack(ref: ImageReference, layout: string, work: string, img: { id: string; digest: string; config: ImageRunConfig; created?: string }, deadline: number): Promise<void> {
    const staged = path.join(work, 'image');
    fs.mkdirSync(staged);
    const rootfs = path.join(staged, 'rootfs');
    const res = await this.tool(this.umoci, ['raw', 'unpack', '--image', `${layout}:${LAYOUT_TAG}`, rootfs], deadline, ref);
    if (res.code !== 0) throw internal(`unpacking ${ref.normalized} failed: ${skopeoReason(res.stderr)}`);
    const now = new Date().toISOString();
    const rec: ImageRecord = { id: img.id, digest: img.digest, config: img.config, sizeBytes: await diskUsage(rootfs), createdAt: img.created ?? now, pulledAt: now };
    fs.writeFileSync(path.join(staged, 'meta.json'), JSON.stringify(rec, null, 2));
    fs.chmodSync(staged, 0o755);
    fs.renameSync(staged, path.join(this.imagesDir, hexOf(img.id)));
  }

  private touchDigest(id: string, digest: string): void {
    const file = path.join(this.imagesDir, hexOf(id), 'meta.json');
    const rec = this.record(hexOf(id));
    if (rec && rec.digest !== digest) writeAtomic(file, JSON.stringify({ ...rec, digest }, null, 2));
  }

  private tag(reference: string, id: string): void {
    if (this.refs[reference] === id) return;
    this.refs[reference] = id;
    this.saveRefs();
  }
}
