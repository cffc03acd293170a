import { writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Request as LoadRequest } from 'autocannon';
import Cookies from 'cookies';
import pg from 'pg';
import { readSettings } from '../../service/src/config/settings.js';
import { routeDependencies } from '../../service/src/http/route-dependencies.js';
import { startTestPostgres, type TestPostgres } from '../../service/test/support/postgres.js';
import { sampleSecrets } from '../../service/test/support/rendered-secrets.js';

/** The data route both data variants serve: one page of a tenant's projects. */
export const dataPath = '/api/projects?limit=10';

export interface DataRoute {
  /** What the data variants' servers read: the secrets file (the service) or the secrets themselves (env-secrets). */
  readonly env: NodeJS.ProcessEnv;
  /** One GET per tenant, each with its session's signed cookie; autocannon's connections cycle through them. */
  readonly requests: LoadRequest[];
  readonly postgres: TestPostgres;
}

/**
 * A real PostgreSQL holding `tenants` tenants, each with a live session and `projects`
 * projects, written with the service's own stores; the cookies are signed with the session
 * keys both apps are given, under the name dev's plain HTTP uses.
 */
export async function prepareDataRoute(dir: string, tenants = 20, projects = 10): Promise<DataRoute> {
  const postgres = await startTestPostgres();
  const secrets = sampleSecrets();
  const { username, password } = secrets.database;
  await postgres.provision(username, password);
  const pool = new pg.Pool({ host: '127.0.0.1', port: postgres.layout.port, database: 'saas', user: username, password });
  const stores = routeDependencies(readSettings({}));
  const requests: LoadRequest[] = [];
  try {
    for (let t = 0; t < tenants; t++) {
      const tenant = `t${String(t).padStart(3, '0')}`;
      for (let p = 0; p < projects; p++) await stores.projects.create(pool, tenant, { name: `project ${String(p)}`, description: '' });
      const token = await stores.sessions.create(pool, { issuer: 'https://bench.invalid', subject: tenant, tenant });
      requests.push({ method: 'GET', path: dataPath, headers: { cookie: signedCookie(secrets.app.session_keys, token) } });
    }
  } finally {
    await pool.end();
  }
  const secretsFile = join(dir, 'secrets.json');
  await writeFile(secretsFile, JSON.stringify(secrets), { mode: 0o600 });
  return {
    postgres, requests,
    env: {
      BENCH_PG_PORT: String(postgres.layout.port), BENCH_SECRETS_FILE: secretsFile,
      DATABASE_USERNAME: username, DATABASE_PASSWORD: password, SESSION_KEYS: secrets.app.session_keys.join(','),
      // Out of reach: both apps check the rate, neither refuses.
      TENANT_REQUESTS_PER_SECOND: '999999999',
    },
  };
}

/** The Cookie header a browser sends back for the signed `saas_session` cookie: the value and its signature. */
function signedCookie(keys: readonly string[], token: string): string {
  const headers = new Map<string, unknown>();
  const res = {
    getHeader: (name: string) => headers.get(name.toLowerCase()),
    setHeader: (name: string, value: unknown) => { headers.set(name.toLowerCase(), value); },
  };
  new Cookies({ headers: {} } as unknown as IncomingMessage, res as unknown as ServerResponse, { keys: [...keys], secure: false })
    .set('saas_session', token, { signed: true });
  const set = headers.get('set-cookie') as string[];
  return set.map((line) => line.split(';')[0]).join('; ');
}
