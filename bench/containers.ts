/**
 * Container start benchmark: how long the oci runtime (CrunRuntime with the node's ImageStore)
 * takes to get a task's command running, against plain `crun run` on a bundle prepared
 * beforehand, in the same run. The image is built from busybox-static and pushed to a
 * docker-registry on loopback; the task's command is `sh -c 'echo ready; exec sleep 100000'`.
 *
 *   cold   a fresh image store: pull + unpack + prepare (overlay, config, shim, crun create, held)
 *          + start, until "ready" is in the task's output.log
 *   warm   the image already on the node: prepare + start, until "ready"
 *   crun   the reference: `crun run` on a ready bundle (the same unpacked rootfs, read-only, the
 *          same command), spawned the way the runtime's shim does it (a private mount namespace
 *          with the hybrid cgroup2 mount hidden, --cgroup-manager=disabled), until "ready" on
 *          its stdout
 *
 * Each run is timed alone, then the task is stopped and removed (not timed). Printed: the medians
 * and their ratios to the reference. Run it through bench/run.sh (`npm run bench:containers --
 * --runs 5`), which puts it in throwaway network, mount and pid namespaces.
 *
 *   node dist/bench/containers.js [--runs N]
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ImageStore } from '../agent/images/image-store';
import { detectCgroups, removeCgroupParent } from '../agent/runtime/cgroups';
import { CrunRuntime } from '../agent/runtime/crun-runtime';
import { SwarmletError } from '../services/common/errors';
import { ContainerSpec, PullPolicy, Task, TaskState } from '../services/gen/swarmlet/v1/types';
import { pushBusybox } from '../test/support/image-build';
import { startRegistry } from '../test/support/registry';
import { uniqueSuffix } from '../test/support/unique';
import { COMMAND, readOr, timeCrunRun, until, writeReferenceBundle } from './crun-reference';
import { progress, ratio, summarize, type Summary } from './lab-helpers';

const log = pino({ level: 'silent' });

function parseArgs(argv: string[]): { runs: number } {
  let runs = 5;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runs') runs = Number(argv[++i]);
    else if (argv[i]?.startsWith('--runs=')) runs = Number(argv[i]!.slice('--runs='.length));
    else throw new SwarmletError('InvalidArgument', `unexpected argument ${argv[i]}; usage: containers.js [--runs N]`);
  }
  if (!Number.isInteger(runs) || runs < 1) throw new SwarmletError('InvalidArgument', `--runs must be a positive integer, not ${runs}`);
  return { runs };
}

function task(image: string, n: number): Task {
  const container: ContainerSpec = { image, command: COMMAND, args: [], env: [], dir: '', user: '', hostname: '', stopGracePeriodMs: 0, mounts: [], pull: PullPolicy.PULL_POLICY_MISSING, tty: false, openStdin: false, secrets: [], configs: [] };
  return {
    id: `bench${uniqueSuffix(6)}x${n}`,
    serviceId: 'bench',
    serviceName: 'bench',
    slot: n,
    nodeId: 'node',
    specVersion: 1,
    desiredState: TaskState.TASK_STATE_RUNNING,
    createdAt: '',
    spec: { container, resources: undefined, forceUpdate: 0, networks: [], networkAliases: [] },
    networks: [],
  };
}

/** One task through the runtime: prepare + start until "ready" in its output; then stop and remove it (untimed). */
async function timeTask(runtime: CrunRuntime, stateDir: string, image: string, n: number): Promise<number> {
  const t = task(image, n);
  const t0 = performance.now();
  await runtime.prepare(t);
  await runtime.start(t.id);
  await until('the task\'s output', () => readOr(join(stateDir, t.id, 'output.log')).includes('ready'));
  const ms = performance.now() - t0;
  await runtime.stop(t.id, 0);
  await runtime.remove(t.id);
  return ms;
}

const row = (name: string, s: Summary, ref: Summary) =>
  `${name.padEnd(8)} ${`${s.medianMs} ms`.padStart(9)} ${`${s.minMs}-${s.maxMs} ms`.padStart(14)} ${ratio(s.medianMs, ref.medianMs).padStart(7)}`;

async function main(opts: { runs: number }): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'swl-bench-containers-'));
  const parent = `swarmlet-bench-${uniqueSuffix(6)}`;
  const registry = await startRegistry({ baseDir: base });
  try {
    progress('building and pushing the busybox image');
    const { reference } = await pushBusybox(registry, { baseDir: base });
    const layout = await detectCgroups();
    const unified = layout.version === 1 ? layout.mounts.unified : undefined;
    const cold: number[] = [];
    const warm: number[] = [];
    const ref: number[] = [];
    const warmStore = new ImageStore({ root: join(base, 'images-warm'), log, insecureRegistries: [registry.addr] });
    const warmState = join(base, 'warm');
    const warmRuntime = new CrunRuntime({ stateDir: warmState, cgroupParent: parent, log, images: warmStore });
    const image = await warmStore.ensure(reference, PullPolicy.PULL_POLICY_MISSING);
    const bundle = join(base, 'bundle');
    const crunRoot = join(base, 'crun-ref');
    mkdirSync(crunRoot, { recursive: true });
    writeReferenceBundle(bundle, image.rootfs);
    await timeTask(warmRuntime, warmState, reference, 0); // first-use costs (cgroup parent, crun's caches) out of the figures
    await timeCrunRun(bundle, crunRoot, unified, 0);
    for (let i = 1; i <= opts.runs; i++) {
      ref.push(await timeCrunRun(bundle, crunRoot, unified, i));
      const store = new ImageStore({ root: join(base, `images-cold-${i}`), log, insecureRegistries: [registry.addr] });
      const coldState = join(base, `cold-${i}`);
      cold.push(await timeTask(new CrunRuntime({ stateDir: coldState, cgroupParent: parent, log, images: store }), coldState, reference, i));
      warm.push(await timeTask(warmRuntime, warmState, reference, i));
      progress(`run ${i}/${opts.runs}: crun run ${Math.round(ref[i - 1]!)} ms, cold ${Math.round(cold[i - 1]!)} ms, warm ${Math.round(warm[i - 1]!)} ms`);
      rmSync(join(base, `images-cold-${i}`), { recursive: true, force: true });
    }
    const r = summarize(ref);
    const c = summarize(cold);
    const w = summarize(warm);
    const lines = [
      `container start, ${opts.runs} runs each (median, min-max, ratio to crun run)`,
      `${'start'.padEnd(8)} ${'median'.padStart(9)} ${'range'.padStart(14)} ${'ratio'.padStart(7)}`,
      row('crun run', r, r),
      row('warm', w, r),
      row('cold', c, r),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    process.stdout.write(`BENCH_JSON ${JSON.stringify({ runs: opts.runs, crunRun: r, warm: w, cold: c, warmRatio: Number(ratio(w.medianMs, r.medianMs)), coldRatio: Number(ratio(c.medianMs, r.medianMs)) })}\n`);
  } finally {
    await registry.stop();
    await removeCgroupParent(parent).catch(() => undefined);
    rmSync(base, { recursive: true, force: true });
  }
}

let options: { runs: number };
try {
  options = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`bench/containers: ${(err as Error).message}\n`);
  process.exit(2);
}
main(options).catch((err: unknown) => {
  process.stderr.write(`bench/containers: failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
