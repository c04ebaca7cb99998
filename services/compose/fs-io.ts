/** The edge: compose files, `.env` and env_files read from the node's filesystem. */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, relative, resolve } from 'node:path';
import { invalidArgument } from '../common/errors';
import { ComposeFile, ComposeIo, DEFAULT_FILE_NAMES, overrideFileName } from './load';

export const fsComposeIo: ComposeIo = {
  readFile(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  },
};

/** The file name that stands for standard input, as docker's `stack deploy -c -` and `compose -f -`. */
export const STDIN_FILE = '-';

/**
 * fsComposeIo, except that the file named `-` is standard input, read once when the loader asks
 * for it. Its path is `-` in the working directory, so that relative paths in it resolve there.
 */
export function composeIoFor(files: readonly ComposeFile[], readStdin: () => string = () => readFileSync(0, 'utf8')): ComposeIo {
  const stdin = files.find((f) => f.name === STDIN_FILE)?.path;
  if (stdin === undefined) return fsComposeIo;
  let text: string | undefined;
  return { readFile: (path) => (path === stdin ? (text ??= readStdin()) : fsComposeIo.readFile(path)) };
}

/**
 * The files `-f` named (relative to `cwd`), or else the first of docker compose's default names in
 * `cwd` with its `.override` file when there is one.
 */
export function findComposeFiles(named: readonly string[], cwd: string): ComposeFile[] {
  if (named.length) return named.map((n) => ({ name: n, path: resolve(cwd, n) }));
  const found = DEFAULT_FILE_NAMES.map((n) => resolve(cwd, n)).find((p) => existsSync(p));
  if (!found) throw invalidArgument(`no configuration file provided: not found (looked for ${DEFAULT_FILE_NAMES.join(', ')} in ${cwd})`);
  const files = [{ name: relative(cwd, found) || basename(found), path: found }];
  const override = resolve(dirname(found), overrideFileName(basename(found)));
  if (existsSync(override)) files.push({ name: relative(cwd, override), path: override });
  return files;
}
