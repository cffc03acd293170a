import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { superuserEnv } from '../../../scripts/stack/postgres.js';
import { serverBin, baoEnv, repoRoot, startDevServer, type DevServer } from '../support/bao.js';
import { recordOutput, registerSecret } from '../support/leak-scan.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import { vaultData, vaultRequest } from '../support/vault-http.js';

/** Where set_role_password is defined, between its markers: the library and postgres-init.sh's copy. */
function setRolePassword(script: string): string {
  const begin = script.indexOf('# --- set_role_password (begin) ---');
  const end = script.indexOf('# --- set_role_password (end) ---');
  expect(begin, 'begin marker').to.be.greaterThan(-1);
  expect(end, 'end marker').to.be.greaterThan(begin);
  return script.slice(begin, end);
}

describe('passwords set by scripts/postgres-init.sh and scripts/rotate-db-password.sh reach PostgreSQL as SCRAM verifiers only ' +
  '(real PostgreSQL with log_statement = all, real bao dev server)', function () {
  this.timeout(60_000);
  let server: DevServer;
  let postgres: TestPostgres;
  const appUser = 'saas_app';
  const initial = randomBytes(24).toString('hex');
  const adminInitial = randomBytes(24).toString('hex');

  before(async function () {
    [server, postgres] = await Promise.all([startDevServer(), startTestPostgres()]);
    registerSecret('initial app password', initial);
    registerSecret('initial vault_admin password', adminInitial);
    // Every statement PostgreSQL runs goes to its log, as an auditor's setting would have it.
    await postgres.query('ALTER SYSTEM SET log_statement = \'all\'');
    await postgres.query('SELECT pg_reload_conf()');
    for (let i = 0; i < 100 && await postgres.query('SHOW log_statement') !== 'all'; i++) await new Promise((r) => setTimeout(r, 50));
  });
  after(async function () {
    await Promise.all([server.stop(), postgres.stop()]);
  });

  const statements = async () => (await postgres.process.log()).split('\n').filter((l) => /LOG: {2}statement: /.test(l));

  async function logsIn(user: string, password: string): Promise<boolean> {
    const client = new pg.Client({ host: '127.0.0.1', port: postgres.layout.port, user, password, database: 'saas' });
    try {
      await client.connect();
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  it('postgres-init.sh: the app role and vault_admin log in with their passwords, which no logged statement holds', async function () {
    await postgres.provisionFiles({ 'app-username': appUser, 'app-password': `${initial}\n`, 'vault-admin-password': adminInitial });
    expect(await logsIn(appUser, initial)).to.equal(true);
    expect(await logsIn('vault_admin', adminInitial)).to.equal(true);
    const logged = await statements();
    const alters = logged.filter((l) => /ALTER USER/.test(l));
    expect(alters.map((l) => /ALTER USER (\w+) PASSWORD 'SCRAM-SHA-256\$4096:/.exec(l)?.[1])).to.deep.equal([appUser, 'vault_admin']);
    expect(logged.join('\n')).to.not.contain(initial).and.not.contain(adminInitial);
    // Only while it has none: a re-run keeps the password vault_admin has (Vault's, after rotate-root).
    await postgres.provisionFiles({ 'vault-admin-password': randomBytes(8).toString('hex') });
    expect(await logsIn('vault_admin', adminInitial)).to.equal(true);
  });

  it('rotate-db-password.sh: the app logs in with the new password from Vault, the old one is refused, and no logged statement holds either', async function () {
    const path = 'secret/data/saas-project/dev/database';
    const written = await vaultRequest(server.addr, server.rootToken, 'POST', path, { data: { username: appUser, password: initial } });
    expect(written.status, JSON.stringify(written.body)).to.equal(200);
    const rotation = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile('sh', [join(repoRoot, 'scripts/rotate-db-password.sh')], {
        env: baoEnv(server.dir, {
          VAULT_ADDR: server.addr, VAULT_TOKEN: server.rootToken, VAULT_CLI: serverBin, APP_ENV: 'dev',
          ...superuserEnv(postgres.layout), PGUSER: 'postgres',
        }),
      }, (error, stdout, stderr) => { resolve({ code: error === null ? 0 : 1, out: `${stdout}${stderr}` }); });
    });
    recordOutput('rotate-db-password.sh output', rotation.out);
    expect(rotation.code, rotation.out).to.equal(0);
    expect(rotation.out).to.not.match(/Enter (new password|it again)/);
    const rotated = (await vaultData<{ data: { password: string } }>(server.addr, server.rootToken, 'GET', path)).data.password;
    registerSecret('rotated app password', rotated);
    expect(rotated).to.match(/^[0-9a-f]{48}$/);
    expect(await logsIn(appUser, rotated)).to.equal(true);
    expect(await logsIn(appUser, initial)).to.equal(false);
    const logged = (await statements()).join('\n');
    expect(logged).to.match(new RegExp(`ALTER USER ${appUser} PASSWORD 'SCRAM-SHA-256\\$4096:[^']+'`));
    expect(logged).to.not.contain(rotated);
  });

  it('postgres-init.sh carries the same set_role_password as scripts/lib/pg-password.sh (the image mounts it alone)', async function () {
    const [library, init] = await Promise.all(['scripts/lib/pg-password.sh', 'scripts/postgres-init.sh']
      .map((file) => readFile(join(repoRoot, file), 'utf8')));
    expect(setRolePassword(init ?? '')).to.equal(setRolePassword(library ?? ''));
  });
});
