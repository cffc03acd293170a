import { execFile } from 'node:child_process';
import { chown, mkdir, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repoRoot = resolve(import.meta.dirname, '../..');

/** Where one local PostgreSQL keeps its data and socket, and the port it listens on (loopback only). */
export interface PostgresLayout {
  readonly bindir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly port: number;
}

export interface Command {
  readonly command: string;
  readonly args: string[];
}

/** scripts/ensure-postgres.sh: the server's binaries, installed from Debian's packages when missing. */
export async function ensurePostgres(): Promise<string> {
  const { stdout } = await run('sh', [join(repoRoot, 'scripts/ensure-postgres.sh')], { maxBuffer: 1 << 20 });
  return stdout.trim();
}

/** PostgreSQL refuses to run as root: as root, its processes run as the `postgres` user. */
export async function serverUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (userInfo().uid !== 0) return undefined;
  const { stdout: uid } = await run('id', ['-u', 'postgres']);
  const { stdout: gid } = await run('id', ['-g', 'postgres']);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

async function ownedByServerUser(dir: string): Promise<void> {
  await mkdir(dirname(dir), { recursive: true, mode: 0o755 });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const user = await serverUser();
  if (user !== undefined) await chown(dir, user.uid, user.gid);
}

/** initdb, once: local socket connections trust the OS user, TCP needs a password (SCRAM). */
export async function initPostgres(layout: PostgresLayout): Promise<void> {
  await ownedByServerUser(layout.socketDir);
  if (await stat(join(layout.dataDir, 'PG_VERSION')).then(() => true, () => false)) return;
  await ownedByServerUser(layout.dataDir);
  await run(join(layout.bindir, 'initdb'), [
    '-D', layout.dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '--no-instructions',
  ], { cwd: '/', maxBuffer: 1 << 22, ...await serverUser() });
}

/** The command that runs the server in the foreground, on 127.0.0.1 only; spawn it as serverUser(). */
export function postgresCommand(layout: PostgresLayout): Command {
  return {
    command: join(layout.bindir, 'postgres'),
    args: [
      '-D', layout.dataDir, '-p', String(layout.port), '-c', 'listen_addresses=127.0.0.1',
      '-c', `unix_socket_directories=${layout.socketDir}`, '-c', 'fsync=off',
    ],
  };
}

/** psql's connection to the server as its superuser, over the local socket. */
export function superuserEnv(layout: PostgresLayout): NodeJS.ProcessEnv {
  return { PGHOST: layout.socketDir, PGPORT: String(layout.port), POSTGRES_USER: 'postgres', POSTGRES_DB: 'postgres' };
}

export async function waitForPostgres(layout: PostgresLayout, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await run('psql', ['-U', 'postgres', '-d', 'postgres', '-tAc', 'SELECT 1'], { env: { ...process.env, ...superuserEnv(layout) } });
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`PostgreSQL on port ${layout.port} did not answer: ${(error as Error).message}`, { cause: error });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Runs scripts/postgres-init.sh, exactly as the postgres image's init folder does. */
export async function provisionAppRole(layout: PostgresLayout, credentialsDir: string, database = 'saas'): Promise<void> {
  await run('sh', [join(repoRoot, 'scripts/postgres-init.sh')], {
    env: { PATH: process.env.PATH, ...superuserEnv(layout), PG_CREDENTIALS_DIR: credentialsDir, APP_DATABASE: database },
  });
}
