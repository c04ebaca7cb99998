/**
 * docs/labs.md cannot rot: every block of it fenced as ```sh lab=HOST runs, in order, in a fresh
 * `swarmlet lab` (lab=local on this machine, lab=h1... through `swarmlet lab shell HOST --`), with
 * bash -euo pipefail in one working directory, as a student following the page would.
 * LABS_DOC_ONLY=0,1,7 runs only those blocks (0-based; the last, `lab down`, always runs): for
 * working on one section of the page without the whole run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destroyLabsByPrefix, findRepoRoot, requireBuiltCli } from '../lab/lab';
import { runCommand } from '../lab/ip-command';
import { uniqueSuffix } from '../support/unique';

const repo = findRepoRoot();
const name = `swdoc${uniqueSuffix()}`;
const env = { SWARMLET_LAB: name, PATH: `${join(repo, 'bin')}:${process.env.PATH}` };
let workDir: string;

/** The runnable blocks of a markdown page: ```sh lab=WHERE ... ```, in order. */
export function labBlocks(markdown: string): { where: string; script: string; line: number }[] {
  const out: { where: string; script: string; line: number }[] = [];
  const re = /^```sh lab=(\S+)\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) out.push({ where: m[1], script: m[2], line: markdown.slice(0, m.index).split('\n').length });
  return out;
}

beforeAll(() => {
  requireBuiltCli();
  workDir = mkdtempSync(join(tmpdir(), 'swdoc-'));
});

afterAll(async () => {
  await runCommand([process.execPath, requireBuiltCli(), 'lab', 'down'], { env });
  await destroyLabsByPrefix(name, '/run/swarmlet/lab');
  rmSync(workDir, { recursive: true, force: true });
}, 120_000);

test('every lab block of docs/labs.md runs', async () => {
  const blocks = labBlocks(readFileSync(join(repo, 'docs', 'labs.md'), 'utf8'));
  expect(blocks.length).toBeGreaterThan(10);
  expect(blocks[0].script.trim()).toMatch(/^swarmlet lab up\b/);
  expect(blocks.at(-1)!.script.trim()).toBe('swarmlet lab down');
  const only = process.env.LABS_DOC_ONLY?.split(',').map(Number);
  for (const [i, b] of blocks.entries()) {
    if (only && !only.includes(i) && i !== blocks.length - 1) continue;
    const bash = ['bash', '-euo', 'pipefail', '-c', b.script];
    const argv = b.where === 'local' ? bash : ['swarmlet', 'lab', 'shell', b.where, '--', ...bash];
    const r = await runCommand(argv, { env, cwd: workDir, timeoutMs: 180_000 });
    if (r.code !== 0) throw new Error(`docs/labs.md:${b.line} (lab=${b.where}) exited ${r.code}:\n${b.script}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
  }
}, 900_000);
