import { execFile } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  ensurePostgres, initPostgres, postgresCommand, provisionAppRole, serverUser, superuserEnv, waitForPostgres,
  type PostgresLayout,
} from '../../../scripts/stack/postgres.js';
import { freePort } from './ports.js';
import { spawnManaged, type ManagedProcess } from './processes.js';
import { tempDir } from './temp-dirs.js';

export interface TestPostgres {
  readonly layout: PostgresLayout;
  readonly process: ManagedProcess;
  /** Creates (or re-passwords) the app's role and database with scripts/postgres-init.sh. */
  provision(username: string, password: string): Promise<void>;
  /**
   * Writes files into the folder scripts/postgres-init.sh reads (app-username, app-password,
   * vault-admin-password), keeping those written before, then runs the script.
   */
  provisionFiles(files: Readonly<Record<string, string>>): Promise<void>;
  /**
   * Runs `sql` with psql as the superuser over the local socket (-tAc: unaligned, no header),
   * in database `database` (default postgres); resolves to its output without the last newline.
   */
  query(sql: string, database?: string): Promise<string>;
  stop(): Promise<void>;
}

const run = promisify(execFile);

/** A real PostgreSQL on a free loopback port, set up the way the local stack sets up its own. */
export async function startTestPostgres(): Promise<TestPostgres> {
  const dir = await tempDir('pg');
  await chmod(dir, 0o755); // the server runs as the postgres user when the tests run as root
  const layout: PostgresLayout = {
    bindir: await ensurePostgres(), dataDir: join(dir, 'data'), socketDir: join(dir, 'socket'), port: await freePort(),
  };
  await initPostgres(layout);
  const { command, args } = postgresCommand(layout);
  const proc = spawnManaged(command, args, {
    env: { PATH: process.env.PATH }, logFile: join(dir, 'postgres.log'), cwd: '/', user: await serverUser(),
  });
  // A server that could not start (its port taken, a bad setting) says why in its log at once.
  await Promise.race([
    waitForPostgres(layout),
    proc.exited.then(async (code) => {
      throw new Error(`PostgreSQL exited (${String(code)}) before answering on port ${String(layout.port)}:\n${await proc.log()}`);
    }),
  ]).catch(async (error: unknown) => { await proc.stop(); throw error; });
  const credentials = join(dir, 'credentials');
  await mkdir(credentials, { recursive: true });
  const provisionFiles = async (files: Readonly<Record<string, string>>): Promise<void> => {
    for (const [name, value] of Object.entries(files)) await writeFile(join(credentials, name), value);
    await provisionAppRole(layout, credentials);
  };
  return {
    layout,
    process: proc,
    provision: (username, password) => provisionFiles({ 'app-username': username, 'app-password': password }),
    provisionFiles,
    async query(sql, database = 'postgres') {
      const { stdout } = await run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-U', 'postgres', '-d', database, '-tAc', sql], {
        env: { PATH: process.env.PATH, ...superuserEnv(layout) }, maxBuffer: 1 << 22,
      });
      return stdout.replace(/\n$/, '');
    },
    stop: async () => { await proc.stop(); },
  };
}
