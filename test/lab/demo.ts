/**
 * `npm run demo`: the main job, shown on one machine. Builds a lab of three hosts (network
 * namespaces on a private underlay), starts a daemon on each, forms a swarm with the commands an
 * operator would type, runs a service on it, and tears everything down.
 */
import { Lab, LabHost, requireBuiltCli } from './lab';

async function run(lab: Lab, h: LabHost, args: string[]): Promise<string> {
  const shown = args.map((a) => (/[\s$;"]/.test(a) ? `'${a}'` : a)).join(' ');
  process.stdout.write(`\n[${h.name}]$ swarmlet ${shown}\n`);
  const res = await lab.cli(h, args);
  process.stdout.write(res.stdout + res.stderr);
  if (res.code !== 0) throw new Error(`swarmlet ${args[0]} failed on ${h.name}; its log:\n${lab.logTail(h)}`);
  return res.stdout;
}

const joinArgs = (out: string) => out.split('\n').find((l) => l.trim().startsWith('swarmlet join '))!.trim().split(/\s+/).slice(1);

async function main(): Promise<void> {
  requireBuiltCli();
  const lab = await Lab.create({ prefix: `swdemo${process.pid % 100}`, hosts: 3 });
  try {
    const [h1, h2, h3] = lab.hosts;
    await Promise.all(lab.hosts.map((h) => lab.startDaemon(h)));
    const init = await run(lab, h1, ['init', '--advertise-addr', h1.addr]);
    await run(lab, h2, joinArgs(init));
    await run(lab, h3, joinArgs(await run(lab, h1, ['swarm', 'join-token', 'manager'])));
    for (let i = 0; i < 50; i++) {
      const ls = await lab.cli(h1, ['node', 'ls']);
      if ((ls.stdout.match(/ Ready /g) ?? []).length === 3) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await run(lab, h3, ['node', 'ls']);
    await run(lab, h1, ['service', 'create', '--name', 'hello', '--replicas', '3', 'exec:/', 'sh', '-c', 'echo hello from $HOSTNAME; exec sleep 1000']);
    await run(lab, h1, ['service', 'ps', 'hello']);
    await run(lab, h1, ['service', 'logs', 'hello']);
  } finally {
    await lab.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exit(1);
});
