import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { startDevServer, type DevServer } from '../support/bao.js';
import { runBootstrap } from '../support/bootstrap.js';
import {
  adminPasswordFile, databaseEngineLog, enableDynamicCredentials, runDatabaseEngine,
} from '../support/database-engine.js';
import { registerSecret } from '../support/leak-scan.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import { enableTls, generateTls, type TlsFiles } from '../support/postgres-tls.js';
import { tempDir } from '../support/temp-dirs.js';
import { unwrapSecretId, vaultData, vaultRequest } from '../support/vault-http.js';

interface Issued {
  lease_id: string;
  lease_duration: number;
  renewable: boolean;
  data: { username: string; password: string };
}

const ttl = 600;
const maxTtl = 1800;

describe('scripts/database-engine.sh: dynamic PostgreSQL users from a real bao', function () {
  this.timeout(60_000);
  let server: DevServer;
  let postgres: TestPostgres;
  let appToken: string;
  const kvUser = 'saas_app';
  const kvPassword = randomBytes(24).toString('hex');
  const issuedPasswords: string[] = [];
  const clients: pg.Client[] = [];

  before(async function () {
    [server, postgres] = await Promise.all([startDevServer(), startTestPostgres()]);
    registerSecret('KV app password', kvPassword);
    // As the stack does: the bootstrap (policy saas-app-dev, AppRole), PostgreSQL with the KV
    // role, then the dynamic way on top.
    const credentials = join(await tempDir('db-engine'), 'credentials');
    const bootstrap = await runBootstrap(server, 'dev', credentials);
    expect(bootstrap.code, bootstrap.stderr).to.equal(0);
    await postgres.provision(kvUser, kvPassword);
    await enableDynamicCredentials(server, postgres, { appEnv: 'dev', ttl: `${ttl / 60}m`, maxTtl: `${maxTtl / 60}m` });
    // The app's token, logged in with AppRole as the agent would.
    const login = await vaultRequest(server.addr, undefined, 'POST', 'auth/approle/login', {
      role_id: await readFile(join(credentials, 'role-id'), 'utf8'),
      secret_id: await unwrapSecretId(server.addr, await readFile(join(credentials, 'secret-id'), 'utf8')),
    });
    expect(login.status, JSON.stringify(login.body)).to.equal(200);
    appToken = (login.body as { auth: { client_token: string } }).auth.client_token;
  });
  after(async function () {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    await Promise.all([server.stop(), postgres.stop()]);
  });

  async function issue(token: string): Promise<Issued> {
    const response = await vaultRequest(server.addr, token, 'GET', 'database/creds/saas-app-dev');
    expect(response.status, JSON.stringify(response.body)).to.equal(200);
    const issued = response.body as Issued;
    registerSecret('dynamic PostgreSQL password', issued.data.password);
    issuedPasswords.push(issued.data.password);
    return issued;
  }

  async function connect(user: string, password: string): Promise<pg.Client> {
    const client = new pg.Client({ host: '127.0.0.1', port: postgres.layout.port, user, password, database: 'saas' });
    client.on('error', () => undefined); // a terminated session errors out of band
    await client.connect();
    clients.push(client);
    return client;
  }

  async function rows(client: pg.Client, sql: string): Promise<unknown[][]> {
    return (await client.query({ text: sql, rowMode: 'array' })).rows as unknown[][];
  }

  const owner = (table: string) => postgres.query(`SELECT tableowner FROM pg_tables WHERE tablename = '${table}'`, 'saas');
  const validUntil = async (user: string) =>
    Number(await postgres.query(`SELECT extract(epoch FROM rolvaliduntil)::bigint FROM pg_roles WHERE rolname = '${user}'`));

  let first: Issued;
  let second: Issued;

  it('issues the app token a user (lease TTL from DB_CREDS_TTL) that logs in and creates a table owned by saas_app_owner', async function () {
    first = await issue(appToken);
    expect(first.data.username).to.match(/^v-/);
    expect(first.renewable).to.equal(true);
    expect(first.lease_duration).to.equal(ttl);
    expect(first.lease_id).to.match(/^database\/creds\/saas-app-dev\//);
    const client = await connect(first.data.username, first.data.password);
    // ALTER ROLE … SET role: the session acts as the group role from the first statement.
    expect(await rows(client, 'SELECT current_user, session_user')).to.deep.equal([['saas_app_owner', first.data.username]]);
    await client.query('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)');
    await client.query("INSERT INTO notes (body) VALUES ('from the first user')");
    expect(await owner('notes')).to.equal('saas_app_owner');
    // VALID UNTIL '{{expiration}}': PostgreSQL itself refuses the user after the lease.
    expect(await validUntil(first.data.username)).to.be.within(Date.now() / 1000 + ttl - 30, Date.now() / 1000 + ttl + 5);
    expect(await postgres.query('SHOW server_version_num')).to.match(/^1[5-9]\d{4}$/);
  });

  it('gives a second user (and the KV role) full use of that table: shared ownership', async function () {
    second = await issue(appToken);
    expect(second.data.username).to.not.equal(first.data.username);
    const client = await connect(second.data.username, second.data.password);
    expect(await rows(client, 'SELECT body FROM notes')).to.deep.equal([['from the first user']]);
    await client.query("INSERT INTO notes (body) VALUES ('from the second user')");
    await client.query('ALTER TABLE notes ADD COLUMN tag text'); // an owner's right, through the group
    const kv = await connect(kvUser, kvPassword);
    await kv.query("INSERT INTO notes (body) VALUES ('from the KV role')");
    await kv.query('CREATE TABLE kv_made (id int)');
    expect(await owner('kv_made')).to.equal('saas_app_owner');
    await client.query('INSERT INTO kv_made VALUES (1)');
    expect(await rows(client, 'SELECT count(*)::int FROM notes')).to.deep.equal([[3]]);
  });

  it('renews the lease with the app token (sys/leases/renew) up to DB_CREDS_MAX_TTL, and moves VALID UNTIL', async function () {
    const before = await validUntil(first.data.username);
    const response = await vaultRequest(server.addr, appToken, 'PUT', 'sys/leases/renew',
      { lease_id: first.lease_id, increment: 3600 });
    expect(response.status, JSON.stringify(response.body)).to.equal(200);
    const renewed = response.body as { lease_id: string; lease_duration: number };
    expect(renewed.lease_id).to.equal(first.lease_id);
    // Asked for an hour, capped by max_ttl (30 minutes from issue).
    expect(renewed.lease_duration).to.be.within(maxTtl - 60, maxTtl);
    expect(await validUntil(first.data.username) - before).to.be.within(maxTtl - ttl - 60, maxTtl - ttl + 5);
    const role = await vaultData<{ default_ttl: number; max_ttl: number }>(server.addr, server.rootToken, 'GET',
      'database/roles/saas-app-dev');
    expect([role.default_ttl, role.max_ttl]).to.deep.equal([ttl, maxTtl]);
  });

  it('made the initial vault_admin password useless (rotate-root), and vault_admin is no superuser', async function () {
    const initial = (await readFile(adminPasswordFile(server, 'dev'), 'utf8')).trim();
    const client = new pg.Client({ host: '127.0.0.1', port: postgres.layout.port, user: 'vault_admin', password: initial, database: 'saas' });
    let error: unknown;
    try {
      await client.connect();
    } catch (caught) {
      error = caught;
    } finally {
      await client.end().catch(() => undefined);
    }
    expect((error as Error | undefined)?.message).to.equal('password authentication failed for user "vault_admin"');
    expect(await postgres.query("SELECT rolsuper, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = 'vault_admin'"))
      .to.equal('f|t|t');
    expect(await postgres.query(`SELECT admin_option FROM pg_auth_members
      WHERE roleid = 'saas_app_owner'::regrole AND member = 'vault_admin'::regrole`)).to.equal('t');
    expect(await postgres.query("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'saas_app_owner'")).to.equal('f');
  });

  it('revoking the leases (root, revoke-prefix) ends open sessions, drops the users, and keeps what they made', async function () {
    // The second user makes a table as itself (SET ROLE NONE): revocation hands it to the group.
    const own = await connect(second.data.username, second.data.password);
    await own.query('SET ROLE NONE');
    await own.query('CREATE TABLE made_as_itself (id int)');
    expect(await owner('made_as_itself')).to.equal(second.data.username);
    const session = await connect(first.data.username, first.data.password);
    const running = session.query('SELECT pg_sleep(60)').then(() => undefined, (error: unknown) => error as Error);
    expect(await postgres.query("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'")).to.equal('2');

    const response = await vaultRequest(server.addr, server.rootToken, 'PUT',
      'sys/leases/revoke-prefix/database/creds/saas-app-dev');
    expect(response.status, JSON.stringify(response.body)).to.be.oneOf([200, 204]);
    const deadline = Date.now() + 10_000;
    while (await postgres.query("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'") !== '0') {
      if (Date.now() > deadline) throw new Error('the dynamic users were still in pg_roles 10 s after revoke-prefix');
      await new Promise((r) => setTimeout(r, 100));
    }
    const ended = await running;
    expect(ended?.message).to.match(/terminating connection due to administrator command|Connection terminated/);
    expect(await owner('made_as_itself')).to.equal('saas_app_owner');
    expect(await owner('notes')).to.equal('saas_app_owner');
    expect(await postgres.query('SELECT count(*) FROM notes', 'saas')).to.equal('3');
  });

  it('runs again: connection and role unchanged, without the password file, and users still issue', async function () {
    const again = await runDatabaseEngine(server, 'dev', {
      DATABASE_ADDRESS: `127.0.0.1:${postgres.layout.port}`, DB_CREDS_TTL: `${ttl / 60}m`, DB_CREDS_MAX_TTL: `${maxTtl / 60}m`,
    });
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.include('database-engine: database secrets engine already enabled at database/');
    expect(again.stdout).to.include('database-engine: connection saas-dev unchanged');
    expect(again.stdout).to.include('database-engine: role saas-app-dev unchanged');
    const third = await issue(appToken);
    const client = await connect(third.data.username, third.data.password);
    expect(await rows(client, 'SELECT count(*)::int FROM notes')).to.deep.equal([[3]]);
  });

  it('fails on bad input with a line naming the variable, and configures nothing', async function () {
    const address = `127.0.0.1:${postgres.layout.port}`;
    const noAddress = await runDatabaseEngine(server, 'staging', { DATABASE_ADMIN_PASSWORD_FILE: adminPasswordFile(server, 'dev') });
    expect(noAddress.code).to.equal(1);
    expect(noAddress.stderr).to.match(/^database-engine: DATABASE_ADDRESS is not set: /m);
    const missing = join(server.dir, 'no-such-password-file');
    const unreadable = await runDatabaseEngine(server, 'staging', { DATABASE_ADDRESS: address, DATABASE_ADMIN_PASSWORD_FILE: missing });
    expect(unreadable.code).to.equal(1);
    expect(unreadable.stderr).to.include(`database-engine: DATABASE_ADMIN_PASSWORD_FILE (${missing}) is missing or not readable`);
    const unset = await runDatabaseEngine(server, 'staging', { DATABASE_ADDRESS: address });
    expect(unset.code).to.equal(1);
    expect(unset.stderr).to.match(/^database-engine: DATABASE_ADMIN_PASSWORD_FILE is not set: /m);
    const badTtl = await runDatabaseEngine(server, 'staging', { DATABASE_ADDRESS: address, DB_CREDS_TTL: '2d', DB_CREDS_MAX_TTL: '1d' });
    expect(badTtl.stderr).to.include('database-engine: DB_CREDS_TTL (2d) is longer than DB_CREDS_MAX_TTL (1d)');
    const config = await vaultRequest(server.addr, server.rootToken, 'GET', 'database/config/saas-staging');
    expect(config.status).to.equal(404);
  });

  it('never printed a password: not the initial one, not an issued one', async function () {
    const output = await readFile(databaseEngineLog(server), 'utf8');
    expect(output).to.include('rotated the password of vault_admin (database/rotate-root/saas-dev)');
    const initial = (await readFile(adminPasswordFile(server, 'dev'), 'utf8')).trim();
    for (const secret of [initial, kvPassword, ...issuedPasswords]) expect(output.includes(secret)).to.equal(false);
  });
});

describe('scripts/database-engine.sh with DATABASE_SSLMODE=verify-full: Vault\'s connection verifies PostgreSQL\'s certificate ' +
  '(real bao, real PostgreSQL with ssl = on)', function () {
  this.timeout(60_000);
  let server: DevServer;
  let postgres: TestPostgres;
  let tls: TlsFiles;
  let otherCa: TlsFiles;
  let passwordFile: string;

  before(async function () {
    [server, postgres, tls, otherCa] = await Promise.all([
      startDevServer(), startTestPostgres(), generateTls('localhost', '127.0.0.1'), generateTls('localhost', '127.0.0.1'),
    ]);
    await enableTls(postgres, tls);
    const password = randomBytes(24).toString('hex');
    registerSecret('vault_admin initial password (TLS)', password);
    await postgres.provisionFiles({ 'vault-admin-password': password });
    passwordFile = join(await tempDir('db-engine-tls'), 'vault-admin-password');
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  });
  after(async function () {
    await Promise.all([server.stop(), postgres.stop()]);
  });

  // The bao dev server runs on this host: the CA's path is one it reads.
  const engine = (extra: NodeJS.ProcessEnv) => runDatabaseEngine(server, 'dev', {
    DATABASE_ADDRESS: `localhost:${postgres.layout.port}`, DATABASE_SSLMODE: 'verify-full', ...extra,
  });

  it('refuses verify-full without DATABASE_SSLROOTCERT, naming it, and writes no connection', async function () {
    const result = await engine({ DATABASE_ADMIN_PASSWORD_FILE: passwordFile });
    expect(result.code).to.equal(1);
    expect(result.stderr).to.equal('database-engine: DATABASE_SSLROOTCERT is not set: DATABASE_SSLMODE verify-full needs the ' +
      'CA certificate\'s path on the Vault server\n');
    expect((await vaultRequest(server.addr, server.rootToken, 'GET', 'database/config/saas-dev')).status).to.equal(404);
  });

  it('fails when PostgreSQL\'s certificate does not chain to DATABASE_SSLROOTCERT, naming the settings, and writes no connection', async function () {
    const result = await engine({ DATABASE_ADMIN_PASSWORD_FILE: passwordFile, DATABASE_SSLROOTCERT: otherCa.ca });
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include(`database-engine: cannot write connection saas-dev (Vault connects to localhost:${postgres.layout.port} ` +
      `as vault_admin with sslmode verify-full, sslrootcert ${otherCa.ca} to check it; DATABASE_SSLMODE, DATABASE_SSLROOTCERT): `);
    expect(result.stderr).to.include('x509: certificate signed by unknown authority');
    expect((await vaultRequest(server.addr, server.rootToken, 'GET', 'database/config/saas-dev')).status).to.equal(404);
  });

  it('connects over TLS with the right CA: users issue and log in, and Vault\'s own sessions are encrypted', async function () {
    const result = await engine({ DATABASE_ADMIN_PASSWORD_FILE: passwordFile, DATABASE_SSLROOTCERT: tls.ca });
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.include(`database-engine: wrote connection saas-dev (localhost:${postgres.layout.port}/saas as ` +
      `vault_admin, sslmode verify-full, sslrootcert ${tls.ca}, allowed_roles saas-app-dev)`);
    const issued = await vaultData<{ username: string; password: string }>(server.addr, server.rootToken, 'GET',
      'database/creds/saas-app-dev');
    registerSecret('dynamic PostgreSQL password (TLS)', issued.password);
    expect(await postgres.query(`SELECT count(*) FROM pg_roles WHERE rolname = '${issued.username}'`)).to.equal('1');
    const sessions = await postgres.query(`SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
      WHERE a.usename = 'vault_admin'`);
    expect(sessions.split('\n')).to.include('t').and.not.include('f');
  });

  it('runs again unchanged: the CA in the URL compares equal to what Vault reports', async function () {
    const again = await engine({ DATABASE_SSLROOTCERT: tls.ca });
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.include('database-engine: connection saas-dev unchanged');
  });
});
