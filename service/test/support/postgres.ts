import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ensurePostgres, initPostgres, postgresCommand, provisionAppRole, serverUser, waitForPostgres, type PostgresLayout,
} from '../../../scripts/stack/postgres.js';
import { freePort } from './ports.js';
import { spawnManaged, type ManagedProcess } from './processes.js';
import { tempDir } from './temp-dirs.js';

export interface TestPostgres {
  readonly layout: PostgresLayout;
  readonly process: ManagedProcess;
  /** Creates (or re-passwords) the app's role and database with scripts/postgres-init.sh. */
  provision(username: string, password: string): Promise<void>;
  stop(): Promise<void>;
}

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
  await waitForPostgres(layout);
  const credentials = join(dir, 'credentials');
  await mkdir(credentials, { recursive: true });
  return {
    layout,
    process: proc,
    async provision(username, password) {
      await writeFile(join(credentials, 'app-username'), username);
      await writeFile(join(credentials, 'app-password'), password);
      await provisionAppRole(layout, credentials);
    },
    stop: async () => { await proc.stop(); },
  };
}
