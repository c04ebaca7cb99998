/**
 * Loading a project: `.env`, each file parsed, interpolated and checked against the schema, the
 * files merged, then normalised into the model. Pure: files are read through `ComposeIo`.
 */
import { invalidArgument } from '../common/errors';
import { parseDotenv, DotenvError } from './dotenv';
import { Lookup } from './interpolate';
import { mergeFiles } from './merge';
import { ComposeProject } from './model';
import { normaliseProject } from './normalise';
import { checkSchema } from './schema';
import { composeError, Locations, parseComposeFile } from './source';

/** The only I/O loading needs. */
export interface ComposeIo {
  /** A file's text, or undefined when it does not exist or cannot be read. */
  readFile(absolutePath: string): string | undefined;
}

export interface ComposeFile {
  /** As the user named it (it starts every error line), e.g. `docker-compose.yml`. */
  name: string;
  /** Absolute. */
  path: string;
}

export interface LoadOptions {
  /** In order; later ones override earlier ones (`-f a -f b`). At least one. */
  files: ComposeFile[];
  /** -p; else COMPOSE_PROJECT_NAME, the top-level `name:`, or the project directory's name. */
  projectName?: string;
  /** The shell's environment: it wins over `.env`. */
  env: Record<string, string | undefined>;
  /** Default: the first file's directory. `.env` is read from here. */
  workingDir?: string;
}

export interface LoadResult {
  project: ComposeProject;
  /** Lines to print as warnings (docker compose's: unset variables, the obsolete `version`). */
  warnings: string[];
}

/** docker compose's file names, in the order it looks for them in a directory. */
export const DEFAULT_FILE_NAMES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];

/** The override file that goes with a default file (`docker-compose.override.yml`). */
export const overrideFileName = (name: string) => name.replace(/\.(ya?ml)$/, '.override.$1');

const PROJECT_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/** docker compose's normalisation of a directory name into a project name. */
export function projectNameFromDir(dir: string): string {
  const base = dir.replace(/\/+$/, '').split('/').pop() ?? '';
  return base.toLowerCase().replace(/[^a-z0-9_-]/g, '').replace(/^[_-]+/, '');
}

const dirname = (p: string) => p.replace(/\/[^/]*$/, '') || '/';

export function loadComposeProject(opts: LoadOptions, io: ComposeIo): LoadResult {
  if (opts.files.length === 0) throw invalidArgument('no configuration file provided: not found');
  const workingDir = opts.workingDir ?? dirname(opts.files[0].path);
  const shell: Lookup = (n) => opts.env[n];
  const dotenvPath = `${workingDir === '/' ? '' : workingDir}/.env`;
  const dotenvText = io.readFile(dotenvPath);
  let dotenv = new Map<string, string>();
  if (dotenvText !== undefined) {
    try {
      dotenv = parseDotenv(dotenvText, shell);
    } catch (err) {
      if (err instanceof DotenvError) throw invalidArgument(`${dotenvPath}:${err.line}: ${err.message}`, err);
      throw err;
    }
  }
  const lookup: Lookup = (n) => opts.env[n] ?? dotenv.get(n);

  const locs = new Locations();
  const unset: string[] = [];
  const warnings: string[] = [];
  let topName: string | undefined;
  const datas = opts.files.map((f) => {
    const text = io.readFile(f.path);
    if (text === undefined) throw invalidArgument(`open ${f.path}: no such file or directory`);
    const parsed = parseComposeFile(f.name, text, lookup, locs);
    for (const u of parsed.unset) if (!unset.includes(u)) unset.push(u);
    const data = parsed.data;
    if (data === null || data === undefined) throw invalidArgument(`${f.name}: empty compose file`);
    if (typeof data !== 'object' || Array.isArray(data)) throw invalidArgument(`${f.name}:1: the top level must be a mapping (services:, networks:, ...)`);
    const top = data as Record<string, unknown>;
    // `name:` and a numeric `version:` (as in `version: 2`) are newer than the schema knows
    if ('name' in top) {
      if (typeof top.name !== 'string') throw composeError(locs.locate(top, ['name']), ['name'], 'must be a string');
      topName = top.name;
      delete top.name;
    }
    if ('version' in top) {
      if (typeof top.version === 'number') top.version = String(top.version);
      if (!warnings.some((w) => w.includes('`version`'))) warnings.push(`${f.name}: the attribute \`version\` is obsolete, it will be ignored, please remove it to avoid potential confusion`);
    }
    const problem = checkSchema(top);
    if (problem) throw composeError(locs.locate(top, problem.path) ?? { file: f.name, line: 1 }, problem.path, problem.message);
    return top;
  });
  for (const u of unset) warnings.push(`The "${u}" variable is not set. Defaulting to a blank string.`);

  const merged = mergeFiles(datas, locs) as Record<string, any>;
  const name = opts.projectName ?? lookup('COMPOSE_PROJECT_NAME') ?? topName ?? projectNameFromDir(workingDir);
  if (!PROJECT_NAME.test(name)) {
    throw invalidArgument(`invalid project name ${JSON.stringify(name)}: must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit`);
  }
  const project = normaliseProject(merged, {
    name,
    workingDir,
    lookup,
    locate: (path) => locs.locate(merged, path),
    readFile: (p) => io.readFile(p),
  });
  return { project, warnings };
}
