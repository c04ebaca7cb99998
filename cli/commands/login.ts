import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Argv } from 'yargs';
import { invalidArgument } from '../../services/common/errors';
import { dockerConfigKey, loginServer, planDockerLogin, planDockerLogout } from '../../services/common/registry-auth';
import { dockerConfigFile } from '../../services/config/config';
import { call } from '../client';
import { readDockerConfig } from '../registry-auth';
import { GlobalArgs, out, withClients } from './context';

/** config.json written as docker writes it: its dir 0700, the file 0600 from its first byte, replaced in one rename. */
function writeDockerConfig(text: string): void {
  const file = dockerConfigFile();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw invalidArgument(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
  }
}

/** All of stdin, without its trailing newline (what --password-stdin reads). */
function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d) => (text += d));
    process.stdin.on('end', () => resolve(text.replace(/\r?\n$/, '')));
    process.stdin.on('error', reject);
  });
}

/** One line typed at the terminal; without echo for a password. */
function prompt(question: string, secret: boolean): Promise<string> {
  return new Promise((resolve) => {
    const stdin = process.stdin;
    process.stdout.write(question);
    stdin.setEncoding('utf8');
    if (secret) stdin.setRawMode(true);
    stdin.resume();
    let text = '';
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          stdin.off('data', onData);
          if (secret) {
            stdin.setRawMode(false);
            process.stdout.write('\n');
          }
          stdin.pause();
          return resolve(text);
        }
        if (ch === '\u0003') {
          if (secret) stdin.setRawMode(false);
          process.stdout.write('\n');
          process.exit(130);
        }
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** `swarmlet login` / `logout`: docker's config.json credentials, checked by the daemon against the registry before they are saved. */
export function loginCommands(y: Argv<GlobalArgs>) {
  return y
    .command(
      'login [server]',
      'Log in to a registry (credentials go to docker\'s config.json, used by pull, push, build and --with-registry-auth)',
      (a) =>
        a
          .positional('server', { type: 'string', describe: 'Registry host[:port]; default Docker Hub' })
          .option('username', { alias: 'u', type: 'string', requiresArg: true, describe: 'Username' })
          .option('password', { alias: 'p', type: 'string', requiresArg: true, describe: 'Password (insecure: use --password-stdin)' })
          .option('password-stdin', { type: 'boolean', default: false, describe: 'Take the password from stdin' }),
      async (argv) => {
        const server = loginServer(argv.server as string | undefined);
        let username = (argv.username as string | undefined) ?? '';
        let password = argv.password as string | undefined;
        if (argv.passwordStdin) {
          if (password !== undefined) throw invalidArgument('--password and --password-stdin are mutually exclusive');
          if (!username) throw invalidArgument('Must provide --username with --password-stdin');
          password = await readStdin();
        } else if (password !== undefined) {
          process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
        }
        if (!username || password === undefined) {
          if (!process.stdin.isTTY) throw invalidArgument('Cannot perform an interactive login from a non TTY device');
          if (!username) username = (await prompt('Username: ', false)).trim();
          if (password === undefined) password = await prompt('Password: ', true);
        }
        if (!username) throw invalidArgument('Username is required');
        if (!password) throw invalidArgument('Password is required');
        const before = readDockerConfig();
        await withClients(argv, async (c, host) => {
          if (!c.local) throw invalidArgument("login is checked by this node's daemon: run it against its unix:// socket");
          const l = c.local;
          const res = await call(l, l.registryLogin, { server, username, password: password! }, host);
          writeDockerConfig(planDockerLogin(before, server, { username, password: password! }));
          out(`${res.status}\n`);
        });
      },
    )
    .command(
      'logout [server]',
      'Log out from a registry (removes its credentials from docker\'s config.json)',
      (a) => a.positional('server', { type: 'string', describe: 'Registry host[:port]; default Docker Hub' }),
      async (argv) => {
        const server = loginServer(argv.server as string | undefined);
        const shown = server === 'docker.io' ? dockerConfigKey(server) : server;
        const text = readDockerConfig();
        const { text: next, removed } = planDockerLogout(text, server);
        if (!removed) return void out(`Not logged in to ${shown}\n`);
        out(`Removing login credentials for ${shown}\n`);
        writeDockerConfig(next);
      },
    );
}
