/**
 * Takes the README's picture of the web dashboard (docs/dashboard.png): a lab of three hosts (a
 * manager serving the dashboard, two workers with labels), a few services on two overlays, one
 * publishing a port, one that fits no node, and the page in the same headless chromium the
 * end-to-end test drives. Tears the lab down after.
 *   npm run build && scripts/sandbox.sh node dist/test/support/dashboard-screenshot.js docs/dashboard.png
 */
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { Lab, requireBuiltCli } from '../lab/lab';
import { formSwarm, runningTasks, sw, waitFor } from '../e2e/cluster-helpers';
import { closeBrowser, LabBrowser, launchInNetns } from './browser';
import { uniqueSuffix } from './unique';

async function main(out: string): Promise<void> {
  requireBuiltCli();
  const lab = await Lab.create({ prefix: `sds${uniqueSuffix()}`, hosts: 3 });
  let b: LabBrowser | undefined;
  try {
    const [h1, h2, h3] = lab.hosts;
    const client = await lab.addClient();
    await formSwarm(lab, [h1], [h2, h3], ['--dashboard-addr', ':9443']);
    await sw(lab, h1, ['node', 'update', '--label-add', 'zone=east', h2.name]);
    await sw(lab, h1, ['node', 'update', '--label-add', 'zone=west', '--label-add', 'disk=ssd', h3.name]);
    await sw(lab, h1, ['network', 'create', '-d', 'overlay', 'front']);
    await sw(lab, h1, ['network', 'create', '-d', 'overlay', 'back']);
    const service = (name: string, args: string[]) => sw(lab, h1, ['service', 'create', '-d', '--name', name, ...args, 'exec:/', 'sleep', '100000']);
    await service('web', ['--replicas', '4', '--network', 'front', '--publish', '8080:80']);
    await service('api', ['--replicas', '2', '--network', 'front', '--network', 'back']);
    await service('db', ['--replicas', '1', '--network', 'back', '--constraint', 'node.labels.disk==ssd']);
    await service('gpu-job', ['--constraint', 'node.labels.gpu==yes']);
    for (const [name, n] of [['web', 4], ['api', 2], ['db', 1]] as const) {
      await waitFor(`${n} running tasks of ${name}`, async () => ((await runningTasks(lab, h1, name)).length === n ? true : undefined), 90000);
    }
    const link = (await sw(lab, h1, ['dashboard'])).split('\n').map((l) => l.trim()).find((l) => l.startsWith('https://'))!;
    b = await launchInNetns(client.netns, join(lab.baseDir, 'browser'));
    const page = await b.browser.newPage();
    await page.setViewport({ width: 1000, height: 700 });
    await page.goto(link);
    await page.waitForSelector('.node[data-node] .task[data-state="running"]');
    await new Promise((r) => setTimeout(r, 1500));
    fs.writeFileSync(out, await page.screenshot({ type: 'png', fullPage: true }));
    process.stdout.write(`wrote ${out} (${fs.statSync(out).size} bytes)\n`);
  } finally {
    await closeBrowser(b);
    await lab.destroy();
  }
}

main(resolve(process.argv[2] ?? 'docs/dashboard.png')).catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
