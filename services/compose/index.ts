/**
 * The compose file model, shared by `swarmlet compose` and `swarmlet stack deploy`.
 *
 *   const { project, warnings } = loadComposeProject({ files, projectName, env }, io);
 *   const ignored = unsupportedKeys(project, MY_SUPPORTED_KEYS);
 *
 * loadComposeProject reads `.env`, parses each file with its lines kept, interpolates, validates
 * it against the compose-spec schema, merges the files as docker compose does, and returns the
 * typed model (model.ts). A mistake throws one SwarmletError (kind InvalidArgument) whose message
 * is `FILE:LINE: KEY.PATH: what is wrong`. Pure: `io` reads files (fsComposeIo is node:fs's).
 */
export * from './model';
export { loadComposeProject, projectNameFromDir, DEFAULT_FILE_NAMES, overrideFileName } from './load';
export type { ComposeIo, ComposeFile, LoadOptions, LoadResult } from './load';
export { unsupportedKeys, formatUnsupportedWarning } from './keys';
