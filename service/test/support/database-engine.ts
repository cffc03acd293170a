import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serverBin, baoEnv, repoRoot, type DevServer } from './bao.js';
import type { ScriptResult } from './bootstrap.js';
import { recordOutput, registerSecret } from './leak-scan.js';
import type { TestPostgres } from './postgres.js';

export const databaseEngineScript = join(repoRoot, 'scripts/database-engine.sh');

type Server = Pick<DevServer, 'addr' | 'rootToken' | 'dir'>;

export interface DynamicCredentialsOptions {
  /** dev, staging or prod: the connection saas-<env>, the role saas-app-<env>. */
  appEnv: string;
  /** DB_CREDS_TTL (the script's default: 1h). */
  ttl?: string;
  /** DB_CREDS_MAX_TTL (the script's default: 24h). */
  maxTtl?: string;
}

/** The file holding vault_admin's initial password, as enableDynamicCredentials gave it to the script. */
export function adminPasswordFile(server: Server, appEnv: string): string {
  return join(server.dir, `vault-admin-password-${appEnv}`);
}

/** Every run of the script through this module appends its output here (a *.log: the leak scan reads it). */
export function databaseEngineLog(server: Server): string {
  return join(server.dir, 'database-engine.log');
}

/** Runs scripts/database-engine.sh as an operator would, with `bao` and the root token. */
export function runDatabaseEngine(server: Server, appEnv: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<ScriptResult> {
  const env = baoEnv(server.dir, { VAULT_ADDR: server.addr, VAULT_TOKEN: server.rootToken, VAULT_CLI: serverBin, ...extraEnv });
  return new Promise((resolve) => {
    execFile('sh', [databaseEngineScript, appEnv], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      recordOutput(`database-engine.sh ${appEnv} output`, `${stdout}\n${stderr}`);
      void appendFile(databaseEngineLog(server), `$ database-engine.sh ${appEnv} (exit ${code})\n${stdout}${stderr}`)
        .then(() => { resolve({ code, stdout, stderr }); });
    });
  });
}

/**
 * Sets up the `dynamic` way on a real bao and a real PostgreSQL, as the stack does: the group
 * role saas_app_owner and vault_admin with a generated initial password (scripts/postgres-init.sh
 * from a vault-admin-password file), then scripts/database-engine.sh against the server, which
 * rotates that password at once. Afterwards `database/creds/saas-app-<env>` issues users.
 *
 * One environment per PostgreSQL: vault_admin is created once, and a second environment's
 * connection would need its initial password, which Vault has rotated (the script then fails
 * naming DATABASE_ADMIN_PASSWORD_FILE). Calling it again for the same environment is a re-run.
 */
export async function enableDynamicCredentials(server: Server, pg: TestPostgres, options: DynamicCredentialsOptions): Promise<void> {
  const adminExists = await pg.query("SELECT count(*) FROM pg_roles WHERE rolname = 'vault_admin'") === '1';
  const extraEnv: NodeJS.ProcessEnv = {
    DATABASE_ADDRESS: `127.0.0.1:${pg.layout.port}`,
    ...options.ttl === undefined ? {} : { DB_CREDS_TTL: options.ttl },
    ...options.maxTtl === undefined ? {} : { DB_CREDS_MAX_TTL: options.maxTtl },
  };
  if (!adminExists) {
    const password = randomBytes(24).toString('hex');
    registerSecret('vault_admin initial password', password);
    await pg.provisionFiles({ 'vault-admin-password': password });
    const file = adminPasswordFile(server, options.appEnv);
    await writeFile(file, `${password}\n`, { mode: 0o600 });
    extraEnv.DATABASE_ADMIN_PASSWORD_FILE = file;
  }
  const result = await runDatabaseEngine(server, options.appEnv, extraEnv);
  if (result.code !== 0) {
    throw new Error(`scripts/database-engine.sh ${options.appEnv} exited ${result.code}: ${result.stderr.trim()}`);
  }
}
