import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { humanAge, humanSize, imageRows, parseBuildArgs, planImageHistory, planImageInspect, resolveBuildPaths } from '../../cli/commands/image';
import { parsePullPolicy } from '../../cli/service-flags';
import { Image, ImageDetail } from '../../services/gen/swarmlet/v1/control';
import { PullPolicy } from '../../services/gen/swarmlet/v1/types';

const D = 'd'.repeat(64);
const img = (over: Partial<Image>): Image => ({ id: `sha256:${'a'.repeat(64)}`, references: [], digest: '', sizeBytes: 2_038_838, createdAt: '2026-01-01T00:00:00Z', usedBy: [], ...over }) as Image;

test('image ls rows: one per reference, docker\'s columns', () => {
  const now = new Date('2026-01-01T02:30:00Z');
  expect(
    imageRows(
      [
        img({ references: ['r:5000/busybox:latest', `r:5000/busybox@sha256:${D}`], usedBy: ['0123456789abcdef', 'fedcba9876543210'] }),
        img({ id: `sha256:${'b'.repeat(64)}`, createdAt: '2025-12-31T02:30:00Z' }),
      ],
      now,
    ),
  ).toEqual([
    ['r:5000/busybox', 'latest', 'aaaaaaaaaaaa', '2 hours ago', '2.04MB', '0123456789ab,fedcba987654'],
    ['r:5000/busybox', '<none>', 'aaaaaaaaaaaa', '2 hours ago', '2.04MB', '0123456789ab,fedcba987654'],
    ['<none>', '<none>', 'bbbbbbbbbbbb', '1 day ago', '2.04MB', ''],
  ]);
});

test.each([
  [0, '0B'],
  [999, '999B'],
  [1000, '1kB'],
  [1_234_567, '1.23MB'],
  [5_000_000_000, '5GB'],
])('humanSize(%d) = %s', (n, s) => expect(humanSize(n)).toBe(s));

test('humanAge', () => {
  const now = new Date('2026-03-01T00:00:00Z');
  expect(humanAge('2026-03-01T00:00:00Z', now)).toBe('less than a minute ago');
  expect(humanAge('2026-02-28T23:59:00Z', now)).toBe('1 minute ago');
  expect(humanAge('2026-02-15T00:00:00Z', now)).toBe('2 weeks ago');
  expect(humanAge('2024-01-01T00:00:00Z', now)).toBe('2 years ago');
});

test('--pull', () => {
  expect(parsePullPolicy('missing')).toBe(PullPolicy.PULL_POLICY_MISSING);
  expect(parsePullPolicy('always')).toBe(PullPolicy.PULL_POLICY_ALWAYS);
  expect(parsePullPolicy('never')).toBe(PullPolicy.PULL_POLICY_NEVER);
  expect(() => parsePullPolicy('sometimes')).toThrow('invalid --pull "sometimes": use missing, always or never');
});

describe('readRegistryAuth', () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { readRegistryAuth } = require('../../cli/registry-auth') as typeof import('../../cli/registry-auth');
  const fs = require('node:fs') as typeof import('node:fs');
  const os = require('node:os') as typeof import('node:os');
  const path = require('node:path') as typeof import('node:path');
  let dir: string;
  const saved = process.env.DOCKER_CONFIG;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swl-auth-'));
    process.env.DOCKER_CONFIG = dir;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: { 'r.lab:5000': { auth: Buffer.from('dora:pw').toString('base64') } } }));
    fs.writeFileSync(path.join(dir, 'auth'), '\n  eve:secret:x  \n');
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('from docker login\'s config.json for the image\'s registry, or from a file', () => {
    expect(readRegistryAuth({}, 'r.lab:5000/app')).toBeUndefined();
    expect(readRegistryAuth({ withRegistryAuth: true }, 'r.lab:5000/app:1')).toBe('dora:pw');
    expect(readRegistryAuth({ registryAuthFile: path.join(dir, 'auth') }, 'anything')).toBe('eve:secret:x');
  });

  test('clear refusals', () => {
    expect(() => readRegistryAuth({ withRegistryAuth: true }, 'other.lab/app')).toThrow(/has no credentials for other.lab/);
    expect(() => readRegistryAuth({ withRegistryAuth: true }, 'exec:/')).toThrow(/exec: images are not pulled/);
    expect(() => readRegistryAuth({ registryAuthFile: path.join(dir, 'missing') }, 'x')).toThrow(/cannot read --registry-auth-file .*ENOENT/);
    expect(() => readRegistryAuth({ registryAuthFile: path.join(dir, 'config.json') }, 'x')).toThrow(/user:password|registry credential/);
  });
});

test('--build-arg: KEY=VALUE, and KEY alone from the environment (dropped when unset)', () => {
  expect(parseBuildArgs(['A=1', 'B=x=y', 'C=', 'HOME', 'UNSET_X'], { HOME: '/root' })).toEqual({ A: '1', B: 'x=y', C: '', HOME: '/root' });
  expect(() => parseBuildArgs(['=1'], {})).toThrow('invalid --build-arg "=1": it must be KEY=VALUE');
});

test('build paths: the context and Dockerfile resolved from the working dir, and checked', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swl-ctx-'));
  try {
    fs.mkdirSync(path.join(dir, 'app'));
    fs.writeFileSync(path.join(dir, 'app', 'Dockerfile'), 'FROM scratch\n');
    fs.writeFileSync(path.join(dir, 'other.Dockerfile'), 'FROM scratch\n');
    expect(resolveBuildPaths('app', undefined, dir)).toEqual({ contextDir: path.join(dir, 'app'), dockerfile: path.join(dir, 'app', 'Dockerfile') });
    expect(resolveBuildPaths('app', 'other.Dockerfile', dir)).toEqual({ contextDir: path.join(dir, 'app'), dockerfile: path.join(dir, 'other.Dockerfile') });
    expect(() => resolveBuildPaths('nothere', undefined, dir)).toThrow('unable to prepare context: path "nothere" not found');
    expect(() => resolveBuildPaths('other.Dockerfile', undefined, dir)).toThrow('unable to prepare context: context must be a directory');
    expect(() => resolveBuildPaths('app', 'missing', dir)).toThrow('Cannot locate specified Dockerfile: missing');
    expect(() => resolveBuildPaths('.', undefined, dir)).toThrow('Cannot locate specified Dockerfile: Dockerfile');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const detail: ImageDetail = {
  image: img({ id: `sha256:${'b'.repeat(64)}`, references: ['localhost:5000/app:1', 'localhost:5000/app:latest'], digest: `sha256:${D}` }),
  configJson: JSON.stringify({
    created: '2026-01-01T01:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['A=1'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: ['sha256:l1', 'sha256:l2'] },
    history: [
      { created: '2026-01-01T00:00:00Z', created_by: 'umoci insert' },
      { created: '2026-01-01T00:30:00Z', created_by: '/bin/sh -c #(nop) ENV A=1', empty_layer: true },
      { created: '2026-01-01T01:00:00Z', created_by: '/bin/sh -c echo hi > /x', comment: 'FROM busybox' },
    ],
  }),
  layers: [{ digest: 'sha256:c1', sizeBytes: 1000 }, { digest: 'sha256:c2', sizeBytes: 20 }],
  manifestDigest: `sha256:${D}`,
};

test('image inspect: docker\'s fields from the stored config', () => {
  expect(planImageInspect(detail)).toEqual({
    Id: `sha256:${'b'.repeat(64)}`,
    RepoTags: ['localhost:5000/app:1', 'localhost:5000/app:latest'],
    RepoDigests: [`localhost:5000/app@sha256:${D}`],
    Created: '2026-01-01T01:00:00Z',
    Author: '',
    Config: { User: '', ExposedPorts: null, Env: ['A=1'], Cmd: ['sh'], Volumes: null, WorkingDir: '', Entrypoint: null, Labels: null },
    Architecture: 'amd64',
    Os: 'linux',
    Size: 2_038_838,
    RootFS: { Type: 'layers', Layers: ['sha256:l1', 'sha256:l2'] },
  });
});

test('image history: newest first, the id on the top row, each layer\'s size on its step', () => {
  expect(planImageHistory(detail)).toEqual([
    { id: `sha256:${'b'.repeat(64)}`, created: '2026-01-01T01:00:00Z', createdBy: '/bin/sh -c echo hi > /x', sizeBytes: 20, comment: 'FROM busybox' },
    { id: '<missing>', created: '2026-01-01T00:30:00Z', createdBy: '/bin/sh -c #(nop) ENV A=1', sizeBytes: 0, comment: '' },
    { id: '<missing>', created: '2026-01-01T00:00:00Z', createdBy: 'umoci insert', sizeBytes: 1000, comment: '' },
  ]);
});
