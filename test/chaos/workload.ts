/**
 * The chaos suite's steady workload:
 *   - Writer: `swarmlet service update -d --replicas N --label-add chaos.seq=K web` through the CLI
 *     of an up manager, one after another, and every ROLL_EVERY-th write also `--env-add
 *     CHAOS_GEN=K` (a rolling update of the tasks); each write is recorded (what it set, whether the
 *     CLI acknowledged it, the specVersion read back after the ack);
 *   - Prober: a long-running probe.js in a lab namespace, its per-second counts collected.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { type LabHost } from '../lab/lab';
import { sleep } from '../lab/process-tree';
import { parseProbeLine, type ProbeSecond, type WriteRecord } from './checks';
import { type ChaosSwarm } from './swarm';

/** The replica counts the writer cycles through. */
const REPLICAS = [3, 4, 5, 4];
/** Every ROLL_EVERY-th write changes the tasks' env too: a rolling update (the others scale and label). */
const ROLL_EVERY = 5;
const WRITE_PAUSE_MS = 2000;
const WRITE_TIMEOUT_MS = 15_000;

export class Writer {
  readonly writes: WriteRecord[] = [];
  private seq = 0;
  private running: Promise<void> | undefined;
  private stopping = false;

  constructor(private readonly swarm: ChaosSwarm, private readonly service: string, private readonly t0: number) {}

  /** The first write, made before any fault: the service then holds a write of the workload. */
  async writeOnce(): Promise<WriteRecord> {
    this.seq++;
    const seq = this.seq;
    const replicas = REPLICAS[(seq - 1) % REPLICAS.length] as number;
    const managers = this.swarm.upManagers();
    // Spread the writes over the managers that are up: each serves the API.
    const via = managers[seq % Math.max(1, managers.length)] as LabHost | undefined;
    const rolls = seq % ROLL_EVERY === 1;
    const rec: WriteRecord = { seq, replicas, gen: rolls ? seq : undefined, acked: false, at: Date.now() - this.t0, via: via?.name ?? '(none)' };
    if (!via) {
      rec.error = 'no manager up';
      this.writes.push(rec);
      return rec;
    }
    const r = await this.swarm.lab.cli(via, ['service', 'update', '-d', '--replicas', String(replicas), '--label-add', `chaos.seq=${seq}`, ...(rolls ? ['--env-add', `CHAOS_GEN=${seq}`] : []), this.service], { timeoutMs: WRITE_TIMEOUT_MS });
    rec.acked = r.code === 0;
    if (!rec.acked) rec.error = (r.stderr.trim().split('\n')[0] ?? '') || `exit ${r.code}`;
    else rec.specVersion = await this.swarm.service(via, this.service).then((s) => s.specVersion, () => undefined);
    this.writes.push(rec);
    return rec;
  }

  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.running = (async () => {
      while (!this.stopping) {
        await this.writeOnce();
        if (!this.stopping) await sleep(WRITE_PAUSE_MS);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    this.running = undefined;
  }

  since(atMs: number): WriteRecord[] {
    return this.writes.filter((w) => w.at >= atMs - this.t0);
  }
}

/** Probe children alive now, killed when this process exits however it exits. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/**
 * A probe.js child whose argv comes from `argv()` (asked again whenever the child exits, as when
 * the task it runs in was replaced). Its seconds pile up in `series`.
 */
export class Prober {
  readonly series: ProbeSecond[] = [];
  /** Restarts of the child: when (unix ms), and why. */
  readonly restarts: { at: number; why: string }[] = [];
  private child: ChildProcess | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(readonly name: string, private readonly argv: () => Promise<string[]>) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        let argv: string[];
        try {
          argv = await this.argv();
        } catch (err) {
          this.restarts.push({ at: Date.now(), why: `cannot start: ${(err as Error).message.split('\n')[0]}` });
          await sleep(2000);
          continue;
        }
        const exit = await this.runOnce(argv);
        if (!this.stopped) {
          this.restarts.push({ at: Date.now(), why: `exited (${exit})` });
          await sleep(1000);
        }
      }
    })();
  }

  private runOnce(argv: string[]): Promise<string> {
    return new Promise((done) => {
      const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      children.add(child);
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-300)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        const s = parseProbeLine(line);
        if (s) this.series.push(s);
      });
      child.once('error', (e) => done(e.message));
      child.once('close', (code, sig) => {
        children.delete(child);
        done(`${sig ?? `code ${code}`}${err.trim() ? `: ${err.trim().split('\n').pop()}` : ''}`);
      });
    });
  }

  /** Restarts the child now (for example when its task moved). */
  kick(): void {
    this.child?.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.child?.kill('SIGKILL');
    await this.loop;
  }
}
