/**
 * `stack deploy -c -` / `compose -f -`: the compose file comes from standard input, and the
 * relative paths in it resolve against the working directory, as docker's do.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadComposeProject } from '../../services/compose';
import { composeIoFor, findComposeFiles } from '../../services/compose/fs-io';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'swarmlet-stdin-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const FILE = 'services:\n  web:\n    image: busybox\n    secrets: [pw]\nsecrets:\n  pw: { file: ./pw.txt }\n';

test('the file named - is standard input, read once, and its relative paths are the working directory\'s', () => {
  writeFileSync(join(dir, 'pw.txt'), 'x');
  writeFileSync(join(dir, '-'), 'services: {}\n'); // a file named "-" is not what -c - reads
  let reads = 0;
  const files = findComposeFiles(['-'], dir);
  const io = composeIoFor(files, () => {
    reads++;
    return FILE;
  });
  const { project } = loadComposeProject({ files, projectName: 'app', env: {} }, io);
  expect(Object.keys(project.services)).toEqual(['web']);
  expect(project.secrets.pw.file).toBe(join(dir, 'pw.txt'));
  expect(reads).toBe(1);
});

test('other files are read from the filesystem, alongside standard input', () => {
  writeFileSync(join(dir, 'extra.yml'), 'services:\n  web:\n    environment: { A: "1" }\n');
  const files = findComposeFiles(['-', 'extra.yml'], dir);
  const { project } = loadComposeProject({ files, projectName: 'app', env: {} }, composeIoFor(files, () => FILE));
  expect(project.services.web.environment).toEqual({ A: '1' });
  expect(project.services.web.image).toBe('busybox');
});
