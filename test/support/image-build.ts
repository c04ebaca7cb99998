/**
 * Builds a small OCI image from busybox-static with umoci (no internet), and pushes it to a test
 * registry with skopeo. The rootfs holds /bin/busybox and a symlink for every applet (at the
 * path `busybox --list-full` gives: /bin/sh, /usr/sbin/httpd, /bin/cat, ...), /etc/passwd and
 * /etc/group (root, nobody), /tmp (1777) and /var/www. Config: Cmd ["sh"], Env PATH.
 * Extra files go in a second layer, and `whiteouts` in a third (to exercise layer merging). Each
 * layer has its history entry, as real images do (buildah refuses a base whose history is short).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RegistryCredentials } from './registry';

export interface ImageConfigOptions {
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  exposedPorts?: string[];
  stopSignal?: string;
}

export interface BusyboxImageOptions {
  /** Parent of the build dir. Default: os.tmpdir(). */
  baseDir?: string;
  tag?: string;
  /** Absolute path in the image -> content (a second layer). */
  files?: Record<string, string>;
  /** Paths removed again by a whiteout layer. */
  whiteouts?: string[];
  config?: ImageConfigOptions;
}

export interface BuiltImage {
  /** The OCI layout dir. */
  readonly layout: string;
  readonly tag: string;
  /** The build dir (layout and scratch): remove() deletes it. */
  readonly dir: string;
  remove(): void;
}

export const DEFAULT_PATH = 'PATH=/usr/sbin:/usr/bin:/sbin:/bin';
const BUSYBOX = '/bin/busybox';

function run(file: string, args: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
  });
}

const inNetns = (netns: string | undefined, argv: string[]) => (netns ? ['nsenter', `--net=/run/netns/${netns}`, '--', ...argv] : argv);

/** The base rootfs: busybox, its applet links, a minimal /etc. */
async function writeBaseRootfs(root: string): Promise<void> {
  const busybox = fs.existsSync(BUSYBOX) ? BUSYBOX : '/usr/bin/busybox';
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'var/www', 'proc', 'sys', 'dev']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.mkdirSync(path.join(root, 'tmp'), { mode: 0o1777 });
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.copyFileSync(busybox, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  const applets = (await run(busybox, ['--list-full'])).split('\n').map((l) => l.trim()).filter(Boolean);
  for (const rel of applets) {
    if (rel === 'bin/busybox') continue;
    const link = path.join(root, rel);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    if (!fs.existsSync(link)) fs.symlinkSync('/bin/busybox', link);
  }
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
}

function configArgs(c: ImageConfigOptions): string[] {
  const args: string[] = [];
  const cmd = c.cmd ?? ['sh'];
  args.push('--clear=config.cmd', ...cmd.flatMap((x) => ['--config.cmd', x]));
  if (c.entrypoint) args.push('--clear=config.entrypoint', ...c.entrypoint.flatMap((x) => ['--config.entrypoint', x]));
  for (const e of c.env ?? [DEFAULT_PATH]) args.push('--config.env', e);
  if (c.workingDir) args.push('--config.workingdir', c.workingDir);
  if (c.user) args.push('--config.user', c.user);
  for (const p of c.exposedPorts ?? []) args.push('--config.exposedports', p);
  if (c.stopSignal) args.push('--config.stopsignal', c.stopSignal);
  return args;
}

/** Builds the image into a fresh OCI layout under baseDir. */
export async function buildBusyboxImage(opts: BusyboxImageOptions = {}): Promise<BuiltImage> {
  const dir = fs.mkdtempSync(path.join(opts.baseDir ?? os.tmpdir(), 'swl-image-'));
  const tag = opts.tag ?? 'latest';
  const layout = path.join(dir, 'oci');
  const image = `${layout}:${tag}`;
  try {
    await run('umoci', ['init', '--layout', layout]);
    await run('umoci', ['new', '--image', image]);
    const base = path.join(dir, 'base');
    await writeBaseRootfs(base);
    await run('umoci', ['insert', '--image', image, base, '/']);
    if (opts.files && Object.keys(opts.files).length) {
      const extra = path.join(dir, 'extra');
      for (const [file, content] of Object.entries(opts.files)) {
        const target = path.join(extra, file);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, content);
      }
      await run('umoci', ['insert', '--image', image, extra, '/']);
    }
    for (const w of opts.whiteouts ?? []) await run('umoci', ['insert', '--image', image, '--whiteout', w]);
    await run('umoci', ['config', '--no-history', '--image', image, ...configArgs(opts.config ?? {})]);
    fs.rmSync(base, { recursive: true, force: true });
    fs.rmSync(path.join(dir, 'extra'), { recursive: true, force: true });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { layout, tag, dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export interface PushOptions {
  creds?: RegistryCredentials;
  /** Run skopeo inside this network namespace (where the registry listens). */
  netns?: string;
}

/** Pushes a built image to `dest` (HOST:PORT/name:tag) over plain HTTP. Returns the manifest digest. */
export async function pushImage(image: BuiltImage, dest: string, opts: PushOptions = {}): Promise<string> {
  const digestFile = path.join(image.dir, `digest-${process.hrtime.bigint()}`);
  const argv = inNetns(opts.netns, [
    'skopeo',
    'copy',
    '--quiet',
    '--dest-tls-verify=false',
    '--digestfile',
    digestFile,
    ...(opts.creds ? ['--dest-creds', `${opts.creds.user}:${opts.creds.password}`] : []),
    `oci:${image.layout}:${image.tag}`,
    `docker://${dest}`,
  ]);
  await run(argv[0], argv.slice(1));
  const digest = fs.readFileSync(digestFile, 'utf8').trim();
  fs.rmSync(digestFile, { force: true });
  return digest;
}

/** Builds a busybox image and pushes it to `registry` as `name:tag` (default busybox:latest); returns the pushed reference and digest. */
export async function pushBusybox(
  registry: { addr: string; auth?: RegistryCredentials },
  opts: BusyboxImageOptions & { name?: string; netns?: string } = {},
): Promise<{ reference: string; digest: string }> {
  const image = await buildBusyboxImage(opts);
  try {
    const reference = `${registry.addr}/${opts.name ?? 'busybox'}:${image.tag}`;
    const digest = await pushImage(image, reference, { creds: registry.auth, netns: opts.netns });
    return { reference, digest };
  } finally {
    image.remove();
  }
}
