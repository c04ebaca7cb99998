/**
 * The web dashboard end to end, in a real headless chromium: a lab of two hosts (h1 manager, h2
 * worker), every daemon started with --dashboard-addr :9443 (the worker says it serves none). The
 * browser runs in a client namespace of the lab and reaches only the lab's addresses. It opens the
 * link `swarmlet dashboard` prints, sees a service's task boxes follow `service scale`, a label
 * with markup shown as text, the overlay and the published port, a killed worker's host shown
 * Down, and a rotated token end the page's access. No timing is asserted.
 * Run through test/run.sh (private network, mount and pid namespaces).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'puppeteer-core';
import { Lab, LabClient, LabHost, requireBuiltCli } from '../lab/lab';
import { formSwarm, sw, waitFor } from './cluster-helpers';
import { closeBrowser, LabBrowser, launchInNetns } from '../support/browser';
import { uniqueSuffix } from '../support/unique';

const prefix = `sdb${uniqueSuffix()}`;
const PORT = 9443;
/** Set to a path (e.g. docs/dashboard.png) to save a screenshot of the page with the service scaled. */
const SCREENSHOT = process.env.SWARMLET_DASHBOARD_SCREENSHOT;
const XSS = '<img src=x onerror="window.__xss=1">';
let lab: Lab;
let h1: LabHost, h2: LabHost;
let client: LabClient;
let b: LabBrowser | undefined;
let page: Page;

const GET = [
  'const [url, auth] = process.argv.slice(1);',
  'const req = require("https").request(url, { rejectUnauthorized: false, headers: auth ? { authorization: auth } : {} }, (res) => { let d = ""; res.on("data", (c) => (d += c)); res.on("end", () => console.log(JSON.stringify({ status: res.statusCode, headers: res.headers, body: d }))); });',
  'req.on("error", (e) => console.log(JSON.stringify({ error: e.code }))); req.end();',
].join(' ');

/** An HTTPS GET to h1's dashboard, made from the lab's client namespace. */
async function get(path: string, auth?: string): Promise<{ status?: number; headers?: Record<string, string>; body?: string; error?: string }> {
  const r = await lab.exec(client, [process.execPath, '-e', GET, `https://${h1.addr}:${PORT}${path}`, ...(auth ? [auth] : [])]);
  return JSON.parse(r.stdout);
}

/** The page's task boxes of `service` in `state`, per node card. */
const boxes = (service: string, state = 'running') =>
  page.$$eval(`.node .task[data-service="${service}"][data-state="${state}"]`, (els) => els.map((e) => e.closest('.node')!.getAttribute('data-node')));

async function waitForPage<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  return waitFor(`the page to show ${what}`, check, 60000, 100);
}

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 2 });
  [h1, h2] = lab.hosts;
  client = await lab.addClient();
  await formSwarm(lab, [h1], [h2], ['--dashboard-addr', `:${PORT}`]);
}, 180000);

afterAll(async () => {
  await closeBrowser(b);
  await lab?.destroy();
}, 60000);

test('a worker started with --dashboard-addr says in one line that only managers serve it', async () => {
  await waitFor('the worker\'s line', async () => (lab.logTail(h2, 200).includes('the dashboard is served by managers only') ? true : undefined));
  const res = await get('/');
  expect(res.status).toBe(200);
  expect(res.body).toContain('<title>swarmlet dashboard</title>');
});

test('without the token, or with a wrong one, the API answers 401 and nothing of the swarm', async () => {
  for (const auth of [undefined, 'Bearer swldash-wrong', 'Basic eDp5']) {
    for (const path of ['/api/view', '/api/stream']) {
      const res = await get(path, auth);
      expect(res.status).toBe(401);
      expect(res.headers?.['www-authenticate']).toMatch(/^Bearer/);
      expect(JSON.parse(res.body!)).toEqual({ message: 'unauthorized: this needs the dashboard token (run "swarmlet dashboard" on a manager)' });
    }
  }
});

test('the page follows the swarm: nodes, task boxes through a scale, the overlay and port, a host killed, a token rotated', async () => {
  await sw(lab, h1, ['node', 'update', '--label-add', `note=${XSS}`, h1.name]);
  const out = await sw(lab, h1, ['dashboard']);
  const link = out.split('\n').map((l) => l.trim()).find((l) => l.startsWith('https://'))!;
  expect(link).toMatch(new RegExp(`^https://${h1.addr.replace(/\./g, '\\.')}:${PORT}/#token=swldash-[\\w-]+$`));
  const token = link.split('#token=')[1];
  // The same token on a second ask, and through the API with it.
  expect((await sw(lab, h1, ['dashboard', '-q'])).trim()).toBe(token);
  const api = await get('/api/view', `Bearer ${token}`);
  expect(api.status).toBe(200);
  expect(JSON.parse(api.body!).nodes.map((n: { hostname: string }) => n.hostname).sort()).toEqual([h1.name, h2.name]);

  b = await launchInNetns(client.netns, join(lab.baseDir, 'browser'));
  page = await b.browser.newPage();
  await page.setViewport({ width: 1100, height: 720 });
  await page.goto(link);
  await waitForPage('both nodes', async () => ((await page.$$('.node[data-node]')).length === 2 ? true : undefined));
  // The token left the address bar.
  expect(page.url()).toBe(`https://${h1.addr}:${PORT}/`);
  const card1 = `.node[data-node="${h1.name}"]`;
  expect(await page.$eval(card1, (e) => e.textContent)).toMatch(/leader/);
  // The label's markup is text: no element made of it, nothing run.
  await waitForPage('the label', async () => ((await page.$eval(card1, (e) => e.textContent)).includes(XSS) ? true : undefined));
  expect(await page.$$(`${card1} img`)).toHaveLength(0);
  expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();

  await sw(lab, h1, ['network', 'create', '--driver', 'overlay', 'front']);
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'web', '--replicas', '2', '--network', 'front', '--publish', '8080:80', 'exec:/', 'sleep', '100000']);
  await waitForPage('2 running boxes of web', async () => ((await boxes('web')).length === 2 ? true : undefined));
  await sw(lab, h1, ['service', 'scale', '-d', 'web=4']);
  await waitForPage('4 running boxes of web', async () => ((await boxes('web')).length === 4 ? true : undefined));
  const rows = (id: string) => page.$$eval(`#${id} tbody tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
  const front = await waitForPage('the overlay front on both hosts', async () => (await rows('overlays')).find((r) => r[0] === 'front' && r[3] === `${h1.name}, ${h2.name}`));
  expect(Number(front[1])).toBeGreaterThanOrEqual(4096);
  expect(front[2]).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
  expect(await rows('ports')).toContainEqual(['web', '8080', '80', 'tcp', 'ingress']);
  expect(await page.$$eval('#events li', (lis) => lis.map((li) => li.textContent).join('\n'))).toMatch(/service (create|update) web/);
  if (SCREENSHOT) fs.writeFileSync(SCREENSHOT, await page.screenshot({ type: 'png', fullPage: true }));
  await sw(lab, h1, ['service', 'scale', '-d', 'web=1']);
  await waitForPage('1 running box of web', async () => ((await boxes('web')).length === 1 ? true : undefined));

  await lab.killHost(h2);
  await waitForPage(`${h2.name} down`, async () => ((await page.$eval(`.node[data-node="${h2.name}"]`, (e) => e.getAttribute('data-state'))) === 'down' ? true : undefined));

  await sw(lab, h1, ['dashboard', '--rotate']);
  await waitForPage('the old token refused', async () => ((await page.$eval('#status', (e) => e.getAttribute('data-status'))) === 'unauthorized' ? true : undefined));
  expect((await get('/api/view', `Bearer ${token}`)).status).toBe(401);
}, 180000);
