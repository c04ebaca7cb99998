/**
 * Image build benchmark (issue 13): `swarmlet build` of a small Dockerfile (FROM the lab's busybox,
 * ENV, COPY, RUN, CMD) through the CLI and the daemon of one lab host, against plain `buildah bud`
 * of the same context with the same flags (chroot isolation, host network, vfs storage of its own)
 * run in the same host's netns, in the same run, alternating. Both build with --no-cache, so every
 * step runs each time; each side's first build (which pulls the base image) is not timed.
 * swarmlet's figure adds: the CLI and its gRPC stream, the copy of the result out of buildah as an
 * OCI layout, its unpack into the node's image store, and the tags.
 *
 * Run it through bench/run.sh (`npm run bench:image-build -- --runs 5`).
 *
 *   node dist/bench/image-build.js [--runs N] [--prefix P] [--keep-logs DIR]
 *
 * The table goes to stdout, then one line `BENCH_JSON {...}`; progress goes to stderr.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildahGlobalArgs, planBuildSpec, planBuildahBud, renderRegistriesConf } from '../agent/images/build-plans';
import { SwarmletError } from '../services/common/errors';
import { busyboxRegistry, sw } from '../test/e2e/cluster-helpers';
import type { Lab, LabHost } from '../test/lab/lab';
import type { TestRegistry } from '../test/support/registry';
import { benchMain, parseBenchArgs, progress, ratio, renderReport, summarize, withLab, type BenchOptions } from './lab-helpers';

const REGISTRY = '198.51.100.200:5000';

function context(dir: string, base: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'app.txt'), 'x'.repeat(64 * 1024));
  fs.writeFileSync(
    path.join(dir, 'Dockerfile'),
    [`FROM ${base}`, 'ENV APP=/app', 'COPY app.txt /app/app.txt', 'RUN wc -c /app/app.txt > /app/size && mkdir -p /data', 'CMD ["cat", "/app/size"]', ''].join('\n'),
  );
}

async function timed(what: string, fn: () => Promise<{ code: number; stderr: string }>): Promise<number> {
  const t0 = performance.now();
  const res = await fn();
  const ms = performance.now() - t0;
  if (res.code !== 0) throw new SwarmletError('Internal', `${what} exited ${res.code}: ${res.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return ms;
}

async function run(opts: BenchOptions): Promise<void> {
  let report = '';
  await withLab(
    opts,
    1,
    async (lab: Lab) => {
      let registry: TestRegistry | undefined;
      const scratch = fs.mkdtempSync(path.join(lab.baseDir, 'bench-build-'));
      try {
        progress('building and pushing the busybox image');
        const made = await busyboxRegistry(lab, REGISTRY);
        registry = made.registry;
        const h: LabHost = lab.host(1);
        await lab.startDaemon(h);
        const ctx = path.join(scratch, 'ctx');
        context(ctx, made.image);

        // Plain buildah: its own storage beside the lab, the same flags the daemon gives it.
        const paths = { root: path.join(scratch, 'buildah', 'root'), runroot: path.join(scratch, 'buildah', 'runroot'), registriesConf: path.join(scratch, 'buildah', 'registries.conf') };
        fs.mkdirSync(paths.root, { recursive: true });
        fs.mkdirSync(paths.runroot, { recursive: true });
        fs.writeFileSync(paths.registriesConf, renderRegistriesConf([REGISTRY]));
        const spec = planBuildSpec({ contextDir: ctx, dockerfile: '', tags: [], buildArgs: {}, quiet: true, noCache: true, target: '' });
        const iidfile = path.join(scratch, 'iid');
        const buildah = () => lab.exec(h, ['buildah', ...planBuildahBud(paths, spec, { iidfile })], { timeoutMs: 600_000, env: { TMPDIR: scratch } });
        const swarmlet = (i: number) => lab.cli(h, ['build', '-q', '--no-cache', '-t', `bench:${i}`, ctx], { timeoutMs: 600_000 });

        progress('first builds (base image pulled; not timed)');
        await timed('buildah bud', buildah);
        await timed('swarmlet build', () => swarmlet(0));

        const ours: number[] = [];
        const plain: number[] = [];
        for (let i = 1; i <= opts.runs; i++) {
          ours.push(await timed('swarmlet build', () => swarmlet(i)));
          plain.push(await timed('buildah bud', buildah));
          progress(`run ${i}/${opts.runs}: swarmlet ${ours[i - 1]!.toFixed(0)} ms, buildah ${plain[i - 1]!.toFixed(0)} ms`);
        }
        const o = summarize(ours);
        const p = summarize(plain);
        const images = JSON.parse(await sw(lab, h, ['images', '--format', 'api'])) as unknown[];
        const load = os.loadavg().map((x) => x.toFixed(2)).join(' / ');
        report += renderReport(
          `image build of a small Dockerfile (FROM busybox, ENV, COPY 64 KiB, RUN, CMD), --no-cache, ${opts.runs} builds each`,
          ['figure', 'median', 'min', 'max', 'ratio to buildah'],
          [
            ['swarmlet build (CLI + daemon + store)', `${o.medianMs} ms`, `${o.minMs} ms`, `${o.maxMs} ms`, ratio(o.medianMs, p.medianMs)],
            ['buildah bud (same context and flags)', `${p.medianMs} ms`, `${p.minMs} ms`, `${p.maxMs} ms`, '1.00'],
          ],
          [0],
          [
            'Wall time from spawn to exit, both run in the lab host\'s netns; swarmlet adds the CLI, the gRPC stream, buildah push to an OCI layout, umoci unpack and the tags.',
            `Images in the node's store after the run: ${images.length}. Load average (1/5/15 min) after: ${load}; 2 cores shared with other work.`,
          ],
        );
        report += `BENCH_JSON ${JSON.stringify({ bench: 'image-build', runs: opts.runs, swarmlet: o, buildah: p, ratio: o.medianMs / p.medianMs })}\n`;
      } finally {
        await registry?.stop();
        fs.rmSync(scratch, { recursive: true, force: true });
      }
    },
    { insecureRegistries: [REGISTRY] },
  );
  process.stdout.write(report);
}

benchMain('image-build', (argv) => parseBenchArgs(argv, { script: 'image-build.js', runs: 5, prefix: 'swbib' }), run);
