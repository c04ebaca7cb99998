import { Mutex } from 'async-mutex';
import { metrics } from '../../services/metrics/metrics';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SwarmletError, asSwarmletError, failedPrecondition, internal, notFound } from '../../services/common/errors';
import { ImageReference, parseImageReference, transportReference } from '../../services/common/image-ref';
import { Logger, componentLogger } from '../../services/common/logger';
import { RegistryCredential, parseRegistryAuth, renderAuthFile } from '../../services/common/registry-auth';
import { Image } from '../../services/gen/swarmlet/v1/control';
import { PullPolicy } from '../../services/gen/swarmlet/v1/types';
import {
  ImageRecord,
  ImageRunConfig,
  ImageUserOf,
  StoredImage,
  describePullFailure,
  parseImageConfig,
  planImagePrune,
  planImageRemoval,
  pullPolicyRefusal,
  pullTimedOut,
  resolveImageTarget,
  skopeoReason,
} from './image-plans';
import {
  BuildSpec,
  BuildahPaths,
  buildFailure,
  buildahGlobalArgs,
  describeLoginFailure,
  describePushFailure,
  isInsecureRegistry,
  planBuildahBud,
  planFromImages,
  renderRegistriesConf,
} from './build-plans';

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
  buildah?: string;
}

/** What `image inspect` shows: the image, its config as stored, its layers. */
export interface ImageDetails {
  image: Image;
  configJson: string;
  layers: { digest: string; sizeBytes: number }[];
  manifestDigest: string;
}

/** Output of a build or push as it comes. */
export type OutputSink = (stream: 'stdout' | 'stderr', text: string) => void;

const DEFAULT_PULL_TIMEOUT_MS = 5 * 60 * 1000;
const BUILD_TIMEOUT_MS = 60 * 60 * 1000;
const LOGIN_TIMEOUT_MS = 60 * 1000;
const LAYOUT_TAG = 'image';
/** An image's OCI layout (its manifest, config and layers as pulled or built), beside its rootfs: what push sends. */
const LAYOUT_DIR = 'oci';

interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
}

interface ToolOptions {
  /** Each chunk of output as it comes. */
  onOutput?: OutputSink;
  /** Written to the tool's stdin (a password: never argv). */
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Aborted: the tool is killed (the caller went away). */
  signal?: AbortSignal;
}

/** Runs a tool with a deadline; never rejects on a non-zero exit. */
function runTool(file: string, args: string[], timeoutMs: number, opts: ToolOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(opts.input);
    }
    const out: Buffer[] = [];
    let err = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    timer.unref();
    const onAbort = () => child.kill('SIGKILL');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    child.stdout!.on('data', (d: Buffer) => {
      out.push(d);
      opts.onOutput?.('stdout', d.toString('utf8'));
    });
    child.stderr!.on('data', (d: Buffer) => {
      err = (err + d.toString('utf8')).slice(-8192);
      opts.onOutput?.('stderr', d.toString('utf8'));
    });
    child.on('error', (e) => (clearTimeout(timer), reject(internal(`cannot run ${file}: ${e.message}`, e))));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
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
 *
 * Each image keeps its OCI layout (images/<config hex>/oci): push copies it to a registry with
 * skopeo, inspect reads its config. A build runs buildah in storage of the store's own
 * (buildah/, vfs: the build cache) and goes into the store like a pull, through that layout.
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
  private readonly buildah: string;
  private readonly buildahPaths: BuildahPaths;
  private readonly pulls = new Mutex();
  private readonly inflight = new Map<string, Promise<LocalImage>>();
  /** Images a pull is about to tag: rm and prune leave them alone. */
  private readonly pinned = new Set<string>();
  private refs: Record<string, string>;
  private used: Record<string, string>;
  /** Builds under way: prune leaves buildah's storage alone meanwhile. */
  private buildsRunning = 0;

  constructor(opts: ImageStoreOptions) {
    this.log = componentLogger(opts.log, 'images');
    this.root = opts.root;
    this.imagesDir = path.join(opts.root, 'images');
    this.tmpDir = path.join(opts.root, 'tmp');
    this.refsFile = path.join(opts.root, 'references.json');
    this.usedFile = path.join(opts.root, 'used.json');
    this.insecure = new Set(opts.insecureRegistries ?? []);
    this.buildah = opts.buildah ?? 'buildah';
    // buildah's storage and registries are this daemon's own: several daemons on one machine never share them.
    const b = path.join(opts.root, 'buildah');
    this.buildahPaths = { root: path.join(b, 'root'), runroot: path.join(b, 'runroot'), registriesConf: path.join(b, 'registries.conf') };
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
      images.push(this.imageOf(rec, byId.get(rec.id) ?? []));
    }
    return images.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id));
  }

  /** `image rm`: a reference or an id (prefix). Returns docker's "Untagged: REF" and "Deleted: ID" lines. */
  async remove(target: string, force = false, userOf?: ImageUserOf): Promise<string[]> {
    let reference: string | undefined;
    try {
      reference = parseImageReference(target).normalized;
    } catch {
      reference = undefined;
    }
    const idPrefix = /^(sha256:)?[a-f0-9]{1,64}$/.test(target) ? target : undefined;
    const known = reference && this.refs[reference] ? reference : undefined;
    if (!known && !idPrefix) throw notFound(`no such image: ${target}`);
    const plan = planImageRemoval(this.stored(), known ? { reference: known } : { idPrefix }, force, userOf);
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
    const reclaimedBytes = victims.reduce((n, v) => n + v.sizeBytes, 0) + (await this.pruneBuildCache(all));
    if (victims.length || reclaimedBytes) this.log.info({ removed: victims.map((v) => v.id), reclaimedBytes }, 'images pruned');
    return { removed: victims.map((v) => v.id), reclaimedBytes };
  }

  /**
   * The build cache goes with prune: buildah's images that no name holds (each build's layers, kept
   * for the next build; with vfs each is a whole copy of its root); with all, every image buildah
   * has (base images too: the next build copies or pulls them again). Not while a build runs.
   * Returns the bytes freed.
   */
  private async pruneBuildCache(all: boolean): Promise<number> {
    if (this.buildsRunning > 0 || !fs.existsSync(this.buildahPaths.root)) return 0;
    const before = await diskUsage(this.buildahPaths.root);
    const res = await runTool(this.buildah, [...buildahGlobalArgs(this.buildahPaths), 'rmi', all ? '--all' : '--prune'], this.pullTimeoutMs);
    if (res.code !== 0) this.log.warn({ err: skopeoReason(res.stderr) }, 'could not prune the build cache');
    return Math.max(0, before - (await diskUsage(this.buildahPaths.root)));
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

  /**
   * `image build`: buildah builds the context in this daemon's own storage (its layer cache), the
   * result is copied out as an OCI layout and goes into the store like a pull, tagged with
   * spec.tags. Output streams to onOutput as buildah writes it.
   */
  async build(spec: BuildSpec, opts: { auths?: Record<string, RegistryCredential>; onOutput?: OutputSink; signal?: AbortSignal } = {}): Promise<LocalImage> {
    const log = this.log.child({ tags: spec.tags.map((t) => t.normalized) });
    this.ensureDirs();
    this.ensureBuildah();
    const work = fs.mkdtempSync(path.join(this.tmpDir, 'build-'));
    this.buildsRunning += 1;
    try {
      const authfile = opts.auths && Object.keys(opts.auths).length ? this.writeAuthFile(work, opts.auths) : undefined;
      const iidfile = path.join(work, 'iid');
      const env = { ...process.env, TMPDIR: work };
      log.info({ context: spec.contextDir }, 'building image');
      await this.seedBuildah(spec, env, log);
      const res = await runTool(this.buildah, planBuildahBud(this.buildahPaths, spec, { iidfile, authfile }), BUILD_TIMEOUT_MS, { onOutput: opts.onOutput, env, signal: opts.signal });
      if (opts.signal?.aborted) throw internal('the build was cancelled');
      if (res.timedOut) throw internal(`the build took longer than ${BUILD_TIMEOUT_MS / 60000} minutes and was stopped`);
      if (res.code !== 0) throw buildFailure(res.stderr);
      const built = fs.readFileSync(iidfile, 'utf8').trim();
      const layout = path.join(work, 'layout');
      const out = await runTool(this.buildah, [...buildahGlobalArgs(this.buildahPaths), 'push', '--quiet', built, `oci:${layout}:${LAYOUT_TAG}`], this.pullTimeoutMs, { env });
      if (out.code !== 0) throw internal(`copying the built image ${built} out of buildah failed: ${skopeoReason(out.stderr)}`);
      const img = await this.pulls.runExclusive(() => this.importLayout(layout, work, spec.tags.map((t) => t.normalized), '', `image ${built}`));
      log.info({ id: img.id }, 'image built');
      return img;
    } catch (err) {
      const e = asSwarmletError(err);
      log.warn({ err: e.message }, 'build failed');
      throw e;
    } finally {
      this.buildsRunning -= 1;
      fs.rmSync(work, { recursive: true, force: true });
    }
  }

  /** `image tag SOURCE TARGET`: TARGET names the image SOURCE (a reference or id prefix) names. */
  tagImage(source: string, target: string): Image {
    const to = parseImageReference(target);
    if (to.digest) throw notFound(`refusing to create a tag with a digest reference: ${target}`);
    const rec = this.resolve(source);
    this.tag(to.normalized, rec.id);
    this.log.info({ id: rec.id, reference: to.normalized }, 'image tagged');
    return this.imageOf(rec, Object.keys(this.refs).filter((r) => this.refs[r] === rec.id));
  }

  /**
   * `image push NAME`: skopeo copies the image's OCI layout to the registry NAME names, with
   * progress lines to onOutput. Returns the manifest digest the registry has.
   */
  async push(reference: string, auth?: string, onOutput?: OutputSink, signal?: AbortSignal): Promise<string> {
    const ref = parseImageReference(reference);
    const id = this.refs[ref.normalized];
    const rec = id ? this.record(hexOf(id)) : undefined;
    if (!rec) throw notFound(`An image does not exist locally with the tag: ${ref.normalized}`);
    const layout = path.join(this.imagesDir, hexOf(rec.id), LAYOUT_DIR);
    if (!fs.existsSync(path.join(layout, 'index.json'))) {
      throw failedPrecondition(`image ${ref.normalized} was stored before swarmlet kept image layers: pull or build it again to push it`);
    }
    const log = this.log.child({ image: ref.normalized });
    this.ensureDirs();
    const work = fs.mkdtempSync(path.join(this.tmpDir, 'push-'));
    this.pinned.add(rec.id);
    try {
      const digestFile = path.join(work, 'digest');
      const args = ['copy', '--digestfile', digestFile];
      if (isInsecureRegistry(ref.domain, this.insecure)) args.push('--dest-tls-verify=false');
      if (auth) args.push('--dest-authfile', this.writeAuthFile(work, { [ref.domain]: parseRegistryAuth(auth) }));
      else args.push('--dest-no-creds');
      args.push(`oci:${layout}:${LAYOUT_TAG}`, `docker://${transportReference(ref)}`);
      log.info({ id: rec.id }, 'pushing image');
      const res = await runTool(this.skopeo, args, this.pullTimeoutMs, { onOutput: (stream, text) => stream === 'stdout' && onOutput?.(stream, text), signal });
      if (signal?.aborted) throw internal(`the push of ${ref.normalized} was cancelled`);
      if (res.timedOut) throw pullTimedOut(ref, this.pullTimeoutMs);
      if (res.code !== 0) throw describePushFailure(ref, res.stderr, Boolean(auth));
      const digest = fs.readFileSync(digestFile, 'utf8').trim();
      const now = this.record(hexOf(rec.id));
      if (now && !now.digest) writeAtomic(path.join(this.imagesDir, hexOf(rec.id), 'meta.json'), JSON.stringify({ ...now, digest }, null, 2));
      log.info({ id: rec.id, digest }, 'image pushed');
      return digest;
    } catch (err) {
      const e = asSwarmletError(err);
      log.warn({ err: e.message }, 'push failed');
      throw e;
    } finally {
      this.pinned.delete(rec.id);
      fs.rmSync(work, { recursive: true, force: true });
    }
  }

  /** `image inspect`: the image with its config as stored and its layers (from its OCI layout; an image kept before layouts were has its run config only). */
  inspect(target: string): ImageDetails {
    const rec = this.resolve(target);
    const image = this.imageOf(rec, Object.keys(this.refs).filter((r) => this.refs[r] === rec.id));
    const layout = path.join(this.imagesDir, hexOf(rec.id), LAYOUT_DIR);
    if (!fs.existsSync(path.join(layout, 'index.json'))) {
      const c = rec.config;
      const config = { Entrypoint: c.entrypoint, Cmd: c.cmd, Env: c.env, User: c.user, WorkingDir: c.workingDir, ExposedPorts: Object.fromEntries((c.exposedPorts ?? []).map((p) => [p, {}])), StopSignal: c.stopSignal };
      return { image, configJson: JSON.stringify({ created: rec.createdAt, config }), layers: [], manifestDigest: '' };
    }
    const { manifestDigest, manifest } = this.readManifest(layout);
    const configJson = fs.readFileSync(path.join(layout, 'blobs', ...rec.id.split(':')), 'utf8');
    const layers = (manifest.layers ?? []).map((l) => ({ digest: l.digest, sizeBytes: Number(l.size ?? 0) }));
    return { image, configJson, layers, manifestDigest };
  }

  /**
   * `login`: skopeo logs in to `server` with the credential (the password on its stdin, into a
   * throwaway auth file), so a wrong one is refused before the CLI saves it.
   */
  async login(server: string, cred: RegistryCredential): Promise<void> {
    this.ensureDirs();
    const work = fs.mkdtempSync(path.join(this.tmpDir, 'login-'));
    try {
      const args = ['login', '--authfile', path.join(work, 'auth.json'), '--username', cred.username, '--password-stdin'];
      if (isInsecureRegistry(server, this.insecure)) args.push('--tls-verify=false');
      args.push(server);
      const res = await runTool(this.skopeo, args, LOGIN_TIMEOUT_MS, { input: `${cred.password}\n` });
      if (res.timedOut) throw describeLoginFailure(server, 'i/o timeout');
      if (res.code !== 0) throw describeLoginFailure(server, res.stderr);
      this.log.info({ registry: server, username: cred.username }, 'registry login checked');
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }

  // ---- internals ------------------------------------------------------------------------------

  private imageOf(rec: ImageRecord, references: string[]): Image {
    return { id: rec.id, references: [...references].sort(), digest: rec.digest, sizeBytes: rec.sizeBytes, createdAt: rec.createdAt, usedBy: this.usersOf(rec.id) };
  }

  /** The record of the image a reference or id prefix names. */
  private resolve(target: string): ImageRecord {
    let reference: string | undefined;
    try {
      reference = parseImageReference(target).normalized;
    } catch {
      reference = undefined;
    }
    const idPrefix = /^(sha256:)?[a-f0-9]{1,64}$/.test(target) ? target : undefined;
    if (!reference && !idPrefix) throw notFound(`no such image: ${target}`);
    const hit = resolveImageTarget(this.stored(), { reference, idPrefix }, target);
    const rec = this.record(hexOf(hit.id));
    if (!rec) throw notFound(`no such image: ${target}`);
    return rec;
  }

  /**
   * The images the Dockerfile's FROM lines name that this store has (pulled or built) go into
   * buildah's storage under those names first, as they are here: a build uses the node's image as
   * docker does (FROM a locally built image works; the registry is not asked again). One buildah
   * already has, by the same id, is left as it is; one that cannot be copied is left to buildah to
   * pull.
   */
  private async seedBuildah(spec: BuildSpec, env: NodeJS.ProcessEnv, log: Logger): Promise<void> {
    const file = spec.dockerfile ?? ['Dockerfile', 'Containerfile'].map((f) => path.join(spec.contextDir, f)).find((f) => fs.existsSync(f));
    let text: string;
    try {
      text = fs.readFileSync(file ?? '', 'utf8');
    } catch {
      return; // buildah says what is wrong
    }
    const g = buildahGlobalArgs(this.buildahPaths);
    for (const ref of planFromImages(text, spec.buildArgs)) {
      const id = this.refs[ref.normalized];
      const layout = id ? path.join(this.imagesDir, hexOf(id), LAYOUT_DIR) : '';
      if (!id || !fs.existsSync(path.join(layout, 'index.json'))) continue;
      const have = await runTool(this.buildah, [...g, 'inspect', '--type', 'image', '--format', '{{.FromImageID}}', ref.normalized], LOGIN_TIMEOUT_MS, { env });
      if (have.code === 0 && have.stdout.toString('utf8').trim() === hexOf(id)) continue;
      // skopeo names it as it copies it (buildah pull would name it after the layout's path).
      const { root, runroot } = this.buildahPaths;
      const dest = `containers-storage:[vfs@${root}+${runroot}]${ref.normalized}`;
      const copied = await runTool(this.skopeo, ['copy', '--quiet', `oci:${layout}:${LAYOUT_TAG}`, dest], this.pullTimeoutMs, { env });
      if (copied.code !== 0) log.warn({ image: ref.normalized, err: skopeoReason(copied.stderr) }, "could not give the build the node's copy of its base image");
    }
  }

  /** buildah's dirs (0700) and this daemon's registries.conf for it. */
  private ensureBuildah(): void {
    for (const d of [this.buildahPaths.root, this.buildahPaths.runroot]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    writeAtomic(this.buildahPaths.registriesConf, renderRegistriesConf([...this.insecure]));
  }

  /** A containers-auth.json (0600) in a work dir for the credentials given; returns its path. */
  private writeAuthFile(work: string, creds: Record<string, RegistryCredential>): string {
    const file = path.join(work, 'auth.json');
    const auths: Record<string, { auth: string }> = {};
    for (const [domain, c] of Object.entries(creds)) auths[domain] = (JSON.parse(renderAuthFile(domain, c)) as { auths: Record<string, { auth: string }> }).auths[domain];
    fs.writeFileSync(file, JSON.stringify({ auths }), { mode: 0o600 });
    return file;
  }

  /** An OCI layout made in `work` (by a pull or a build) into the store: unpacked once, tagged. */
  private async importLayout(layout: string, work: string, references: string[], digest: string, label: string, deadline?: number, onTimeout?: () => SwarmletError): Promise<LocalImage> {
    const { id, config, created } = this.readLayout(layout);
    this.pinned.add(id);
    try {
      if (!this.record(hexOf(id))) {
        await this.unpack(label, layout, work, { id, digest, config, created }, deadline ?? Date.now() + this.pullTimeoutMs, onTimeout ?? (() => internal(`unpacking ${label} timed out`)));
      }
      else if (digest) this.touchDigest(id, digest);
      for (const r of references) this.tag(r, id);
    } finally {
      this.pinned.delete(id);
    }
    return this.localOrGone(id);
  }

  private readManifest(layout: string): { manifestDigest: string; manifest: { config?: { digest?: string }; layers?: { digest: string; size?: number }[] } } {
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests?: { digest: string }[] };
    const manifestDigest = index.manifests?.[0]?.digest;
    if (!manifestDigest) throw internal('the image has no manifest');
    return { manifestDigest, manifest: JSON.parse(fs.readFileSync(path.join(layout, 'blobs', ...manifestDigest.split(':')), 'utf8')) };
  }


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
      const pulled = metrics.imagePullSeconds.startTimer();
      const layout = path.join(work, 'layout');
      const copy = await this.tool(this.skopeo, ['copy', '--quiet', ...common.src, `docker://${ref.name}@${digest}`, `oci:${layout}:${LAYOUT_TAG}`], deadline, ref);
      if (copy.code !== 0) throw describePullFailure(ref, copy.stderr, Boolean(auth));
      metrics.imagePullBytes.inc(blobBytes(layout));
      const img = await this.importLayout(layout, work, [ref.normalized], digest, ref.normalized, deadline, () => pullTimedOut(ref, this.pullTimeoutMs));
      pulled();
      log.info({ id: img.id, digest }, 'image pulled');
      return img;
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
    const insecure = isInsecureRegistry(ref.domain, this.insecure);
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
    return this.toolUntil(file, args, deadline, () => pullTimedOut(ref, this.pullTimeoutMs));
  }

  private async toolUntil(file: string, args: string[], deadline: number, onTimeout: () => SwarmletError): Promise<RunResult> {
    const left = deadline - Date.now();
    if (left <= 0) throw onTimeout();
    const res = await runTool(file, args, left);
    if (res.timedOut) throw onTimeout();
    return res;
  }

  /** index.json -> manifest -> config: the image id and its run config. */
  private readLayout(layout: string): { id: string; config: ImageRunConfig; created?: string } {
    const blob = (digest: string) => fs.readFileSync(path.join(layout, 'blobs', ...digest.split(':')), 'utf8');
    const { manifest } = this.readManifest(layout);
    const id = manifest.config?.digest;
    if (!id || !/^sha256:[a-f0-9]{64}$/.test(id)) throw internal('the pulled image has no sha256 config digest');
    return { id, ...parseImageConfig(blob(id)) };
  }

  /** umoci unpacks the layers (whiteouts and all) into work/image/rootfs, which is then renamed into place. */
  private async unpack(label: string, layout: string, work: string, img: { id: string; digest: string; config: ImageRunConfig; created?: string }, deadline: number, onTimeout: () => SwarmletError): Promise<void> {
    const staged = path.join(work, 'image');
    fs.mkdirSync(staged);
    const rootfs = path.join(staged, 'rootfs');
    const res = await this.toolUntil(this.umoci, ['raw', 'unpack', '--image', `${layout}:${LAYOUT_TAG}`, rootfs], deadline, onTimeout);
    if (res.code !== 0) throw internal(`unpacking ${label} failed: ${skopeoReason(res.stderr)}`);
    const now = new Date().toISOString();
    const rec: ImageRecord = { id: img.id, digest: img.digest, config: img.config, sizeBytes: await diskUsage(rootfs), createdAt: img.created ?? now, pulledAt: now };
    fs.writeFileSync(path.join(staged, 'meta.json'), JSON.stringify(rec, null, 2));
    // The layout stays beside the rootfs: push sends it, inspect and history read it.
    fs.renameSync(layout, path.join(staged, LAYOUT_DIR));
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

/** The bytes of the blobs (manifest, config, layers) of an OCI layout: what a pull fetched. */
function blobBytes(layout: string): number {
  const dir = path.join(layout, 'blobs', 'sha256');
  try {
    return fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
  } catch {
    return 0;
  }
}
