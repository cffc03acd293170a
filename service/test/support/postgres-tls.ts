import { execFile } from 'node:child_process';
import { chmod, chown } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { serverUser } from '../../../scripts/stack/postgres.js';
import { repoRoot } from './repo-root.js';
import type { TestPostgres } from './postgres.js';
import { tempDir } from './temp-dirs.js';

const run = promisify(execFile);

export interface TlsFiles {
  readonly dir: string;
  /** The CA certificate (PEM) that server.pem chains to. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** A fresh CA and a server certificate for `names` (DNS names or IP addresses), by scripts/prod/generate-tls.sh. */
export async function generateTls(...names: string[]): Promise<TlsFiles> {
  const dir = await tempDir('tls');
  await chmod(dir, 0o755); // PostgreSQL runs as the postgres user when the tests run as root
  await run('sh', [join(repoRoot, 'scripts/prod/generate-tls.sh'), dir, ...names]);
  return { dir, ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem') };
}

/**
 * Turns TLS on in a running test PostgreSQL with that certificate and key (ssl = on, a reload:
 * no restart), as the production compose's postgres does at start. Its key is the server
 * user's own, 0600, as PostgreSQL requires.
 */
export async function enableTls(postgres: TestPostgres, files: TlsFiles): Promise<void> {
  const user = await serverUser();
  if (user !== undefined) await chown(files.key, user.uid, user.gid);
  await chmod(files.key, 0o600);
  await postgres.query(`ALTER SYSTEM SET ssl_cert_file = '${files.cert}'`);
  await postgres.query(`ALTER SYSTEM SET ssl_key_file = '${files.key}'`);
  await postgres.query('ALTER SYSTEM SET ssl = on');
  await postgres.query('SELECT pg_reload_conf()');
  for (let i = 0; i < 100 && await postgres.query('SHOW ssl') !== 'on'; i++) await new Promise((r) => setTimeout(r, 50));
  if (await postgres.query('SHOW ssl') !== 'on') throw new Error('PostgreSQL did not turn TLS on (see its log)');
}
