import type { Argv } from 'yargs';
import { GlobalArgs } from './context';
import { fileObjectCommands } from './secret';

/** `swarmlet config ...`: the secret commands over configs (whose inspect shows the data, as docker's does). */
export const configCommands = (y: Argv<GlobalArgs>) => fileObjectCommands(y, 'config');
