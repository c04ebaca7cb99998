/**
 * `npm run demo`: the main job, shown on one machine. Builds a lab of three hosts (network
 * namespaces on a private underlay), starts a daemon on each, forms a swarm with the commands an
 * operator would type, runs a service on it, publishes a port through the routing mesh and asks
 * every node for it from a machine outside the swarm, and tears everything down.
 */
import { join } from 'node:path';
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

    // The routing mesh: a port published by a service on an overlay answers on every node, the
    // ones without a task too, for a machine on the LAN that is not in the swarm.
    const whoami = join(lab.repoRoot, 'dist', 'test', 'support', 'whoami-server.js');
    await run(lab, h1, ['network', 'create', '-d', 'overlay', 'front']);
    await run(lab, h1, ['service', 'create', '--name', 'web', '--replicas', '2', '--network', 'front', '--constraint', `node.hostname!=${h3.name}`,
      '-p', '8080:8000', 'exec:/', process.execPath, whoami, '8000']);
    await run(lab, h1, ['service', 'inspect', '--pretty', 'web']);
    const client = await lab.addClient();
    for (const h of lab.hosts) {
      const url = `http://${h.addr}:8080/`;
      let answer = '';
      for (let i = 0; i < 50 && !answer; i++) {
        const res = await lab.exec(client, ['curl', '-s', '-m', '2', url]);
        answer = res.code === 0 ? res.stdout.trim() : '';
        if (!answer) await new Promise((r) => setTimeout(r, 200));
      }
      process.stdout.write(`\n[${client.addr}]$ curl ${url}   (${h === h3 ? 'no task on this node' : 'a task runs here'})\n${answer || '(no answer)'}\n`);
      if (!answer) throw new Error(`${url} did not answer; the log of ${h.name}:\n${lab.logTail(h)}`);
    }
  } finally {
    await lab.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exit(1);
});
