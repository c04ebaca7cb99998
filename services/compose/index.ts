/**
 * The compose file model, shared by `swarmlet compose` and `swarmlet stack deploy`.
 *
 *   const { project, warnings } = loadComposeProject({ files, projectName, env }, io);
 *   const ignored = unsupportedKeys(project, MY_SUPPORTED_KEYS);
 *
 * loadComposeProject reads `.env`, parses each file with its lines kept, interpolates, validates
 * it against the compose-spec schema, merges the files as docker compose does, and returns the
 * typed model (model.ts). A mistake throws one SwarmletError (kind InvalidArgument) whose message
 * is `FILE:LINE: KEY.PATH: what is wrong`. Pure: `io` reads files; the edge is
 * services/compose/fs-io.ts (fsComposeIo reads with node:fs; findComposeFiles resolves `-f` names,
 * or finds docker compose's default file and its .override in a directory).
 *
 * An interpolated plain value becomes the number or boolean the schema wants there (`replicas:
 * ${N}`), as docker compose casts. Network, volume, secret and config names in the model are the
 * file's keys: callers name them PROJECT_KEY unless external or given `name:`.
 */
export * from './model';
export { loadComposeProject, projectNameFromDir, DEFAULT_FILE_NAMES, overrideFileName } from './load';
export type { ComposeIo, ComposeFile, LoadOptions, LoadResult } from './load';
export { unsupportedKeys, formatUnsupportedWarning } from './keys';
