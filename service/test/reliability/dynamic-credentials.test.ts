import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { wrappedSecretId } from '../support/approle-admin.js';
import { prepareAgentDir, startAgent, waitForFile, type AgentDir } from '../support/agent.js';
import { superuserEnv } from '../../../scripts/stack/postgres.js';
import { poolMaxConnections } from '../../src/db/pool-holder.js';
import { serverBin, baoEnv, repoRoot, startDevServer, type DevServer, vaultServer } from '../support/bao.js';
import { runBootstrap } from '../support/bootstrap.js';
import { enableDynamicCredentials } from '../support/database-engine.js';
import { recordOutput, registerSecret } from '../support/leak-scan.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import type { ManagedProcess } from '../support/processes.js';
import { startRecordingProxy, type RecordingProxy } from '../support/recording-proxy.js';
import { startService as startServiceProcess, type ServiceProcess } from '../support/service.js';
import { addIdentityProvider, devRedirectUrl, type IdentityProvider } from '../support/sign-in.js';
import { tempDir } from '../support/temp-dirs.js';
import { unwrapSecretId, vaultData, vaultRequest } from '../support/vault-http.js';
import { asDuration, scaleDurations, shippedProduction } from '../support/shipped-durations.js';
import { fastRenderConfig, sleep, until } from './harness.js';
import { SteadyLoad, type RequestSpec, type Sample } from './load.js';

const appEnv = 'dev';
const credsPrefix = `database/creds/saas-app-${appEnv}`;
/**
 * Leases of the tests' own, not the shipped 1 h / 24 h divided by one factor: the service's
 * 10 s check cannot go under 100 ms, so the largest factor is 100, and the max TTL it leaves is
 * 14.4 min. These show Vault's answers around a max TTL in seconds
 * (renewed at ~2.7 s, new credentials at ~11 s); the titles say so, and the last describe
 * runs the shipped durations.
 */
const leaseTtl = '4s';
const leaseTtlMs = 4000;
const leaseMaxTtl = '12s';
const checkIntervalMs = 1000;
/** SECRETS_REREAD_INTERVAL_MS of the SDK services below. */
const rereadIntervalMs = 1000;

/**
 * A proxy to Vault that passes reads and holds every other request until released: for a
 * script that writes PostgreSQL and then Vault, the time between the two lasts as long as
 * the test needs. `held` resolves with the first held request's path.
 */
async function holdingWrites(target: string): Promise<{ url: string; held: Promise<string>; release: () => void; close: () => Promise<void> }> {
  const upstream = new URL(target);
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => { release = resolve; });
  let hold: (path: string) => void = () => undefined;
  const held = new Promise<string>((resolve) => { hold = resolve; });
  const server = createServer((incoming, outgoing) => {
    const forward = () => {
      const request = httpRequest({
        host: upstream.hostname, port: upstream.port, path: incoming.url, method: incoming.method, headers: incoming.headers,
      }, (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      });
      request.on('error', () => { outgoing.destroy(); });
      incoming.pipe(request);
    };
    if (incoming.method === 'GET') forward();
    else {
      hold(incoming.url ?? '');
      void released.then(forward);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held, release,
    close: () => new Promise<void>((resolve) => { release(); server.close(() => { resolve(); }); server.closeAllConnections(); }),
  };
}

interface Status {
  gate: { state: string; code?: string };
  lease: { path: string; renewedBy: string; ttlSeconds: number | null } | null;
  secrets: { paths: { path: string; version: number | null }[] };
}

async function status(service: ServiceProcess): Promise<Status> {
  return (await (await fetch(`${service.adminUrl}/status`)).json()) as Status;
}

/** A counter of /metrics, e.g. saas_vault_requests_total{operation="lease-renew",outcome="ok"}. */
async function metric(service: ServiceProcess, sample: string): Promise<number> {
  const text = await (await fetch(`${service.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

describe(`dynamic PostgreSQL credentials: real ${vaultServer.name} dev server, real PostgreSQL, the service as a process`, function () {
  this.timeout(90_000);
  let server: DevServer;
  let pg: TestPostgres;
  let proxy: RecordingProxy;
  let roleId: string;
  let identity: IdentityProvider;
  /** Every service here signs in through the dev server's OpenID Connect provider. */
  const startService = (env: NodeJS.ProcessEnv) => startServiceProcess({ ...identity.serviceEnv, ...env });

  /** The app's users Vault issued that exist in PostgreSQL now. */
  const issuedUsers = async (): Promise<string[]> =>
    (await pg.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%' ORDER BY rolname")).split('\n').filter((l) => l !== '');
  /** Users with a session open on the app's database. */
  const connectedUsers = async (): Promise<string[]> =>
    (await pg.query("SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'saas' AND usename LIKE 'v-%'"))
      .split('\n').filter((l) => l !== '');
  const revokeLeases = async () => {
    expect((await vaultRequest(server.addr, server.rootToken, 'PUT', `sys/leases/revoke-prefix/${credsPrefix}`)).status).to.equal(204);
  };

  async function sessionCookie(service: ServiceProcess): Promise<string> {
    const signedIn = await identity.signIn(service.url);
    expect(signedIn.tenant).to.equal('acme');
    return signedIn.cookieHeader;
  }

  async function signedIn(service: ServiceProcess): Promise<(i: number) => RequestSpec> {
    const cookie = await sessionCookie(service);
    return (i) => (i % 3 === 0
      ? { kind: 'create', path: '/api/projects', method: 'POST', body: JSON.stringify({ name: `p${i}` }), headers: { Cookie: cookie } }
      : { kind: 'list', path: '/api/projects', headers: { Cookie: cookie } });
  }

  const failed = (samples: readonly Sample[]) => samples.filter((s) => s.status !== 200 && s.status !== 201)
    .map((s) => `${s.kind} ${s.status} ${s.code ?? s.error ?? ''}`);

  before(async function () {
    [server, pg] = await Promise.all([startDevServer(), startTestPostgres()]);
    proxy = await startRecordingProxy(server.addr);
    const credentials = await tempDir('credentials');
    const run = await runBootstrap(server, appEnv, credentials, { ROLE_SECRET_ID_NUM_USES: '0' });
    expect(run.code, run.stderr).to.equal(0);
    roleId = await readFile(join(credentials, 'role-id'), 'utf8');
    // After the bootstrap: the sign-in's client in the oidc group, which every service reads.
    identity = await addIdentityProvider(server, devRedirectUrl);
    await identity.credentials();
    await enableDynamicCredentials(server, pg, { appEnv, ttl: leaseTtl, maxTtl: leaseMaxTtl });
  });
  after(async function () {
    await proxy.close();
    await pg.stop();
    await server.stop();
  });

  describe('SDK mode: the service holds the lease', function () {
    let service: ServiceProcess;

    before(async function () {
      const secretId = await unwrapSecretId(server.addr, await wrappedSecretId(server));
      service = await startService({
        SECRETS_MODE: 'sdk', DATABASE_CREDENTIALS: 'dynamic', APP_ENV: appEnv, VAULT_ADDR: proxy.url,
        VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId, TOKEN_CHECK_MAX_INTERVAL_MS: String(checkIntervalMs),
        SECRETS_REREAD_INTERVAL_MS: '1000', DATABASE_HOST: '127.0.0.1', DATABASE_PORT: String(pg.layout.port), DATABASE_NAME: 'saas',
      });
    });
    after(async function () {
      await service.process.stop();
    });

    it('renews the lease and rolls over to new credentials before the max TTL under steady load, failing no request (the tests\' own 4 s / 12 s leases)', async function () {
      const load = new SteadyLoad(service.url, 40, await signedIn(service));
      const users = new Set<string>();
      load.start('rollover');
      const end = Date.now() + 15_000;
      while (Date.now() < end) {
        for (const user of await connectedUsers()) users.add(user);
        await sleep(250);
      }
      const samples = await load.stop();
      expect(failed(samples).slice(0, 10), `of ${samples.length}`).to.deep.equal([]);
      expect(samples.length).to.be.greaterThan(400);
      // Requests the load generator itself could not send on time (a busy machine), not the service's doing.
      expect(load.skipped, 'requests the generator skipped').to.be.at.most(Math.ceil(samples.length / 100));
      expect(await metric(service, 'saas_vault_requests_total{operation="lease-renew",outcome="ok"}'), 'renewals').to.be.at.least(2);
      expect(await metric(service, 'saas_vault_requests_total{operation="read-dynamic",outcome="ok"}'), 'credentials issued')
        .to.be.at.least(2);
      expect(users.size, `database users that served: ${[...users].length}`).to.be.at.least(2);
      const { lease } = await status(service);
      expect(lease).to.include({ path: credsPrefix, renewedBy: 'service' });
      expect(lease?.ttlSeconds).to.be.a('number').within(0, 4);
      expect(await metric(service, `saas_secret_lease_ttl_seconds{path="${credsPrefix}"}`)).to.be.within(0, 4);
      const text = await (await fetch(`${service.adminUrl}/metrics`)).text();
      expect(text).to.include(`saas_secret_lease_ttl_seconds{path="${credsPrefix}"} `);
    });

    it('takes a KV rotation within the re-read interval plus one second', async function () {
      const written = await vaultData<{ version: number }>(server.addr, server.rootToken, 'POST', `secret/data/saas-project/${appEnv}/api-keys`,
        { data: { webhook_signing_key: `rotated-${'k'.repeat(40)}` } });
      const tookMs = await until('the new api-keys version is loaded', async () => (await status(service)).secrets.paths
        .some((p) => p.path.endsWith('/api-keys') && p.version === written.version), 5000);
      expect(tookMs).to.be.at.most(1000 + 1000);
    });

    it('replaces credentials an operator revoked within one check interval: one halt reported at once, reopened by the new ones', async function () {
      // A connection of the current credentials, idle in the pool: the revocation ends it.
      expect((await fetch(`${service.url}/api/projects`, { headers: { Cookie: await sessionCookie(service) } })).status).to.equal(200);
      const before = await issuedUsers();
      await revokeLeases();
      const tookMs = await until('new credentials', async () => {
        const now = await issuedUsers();
        return now.length > 0 && now.every((u) => !before.includes(u));
      }, 5000);
      expect(tookMs).to.be.at.most(checkIntervalMs + 1000);
      expect((await fetch(`${service.url}/readyz`)).status).to.equal(200);
      // One rule for every refusal: the gone lease is reported at once (one halt), then replaced.
      expect(await metric(service, 'saas_traffic_halts_total{code="database_lease_revoked"}')).to.equal(1);
    });

    it('halts with database_lease_revoked when no new credentials can be had, and reopens when they can', async function () {
      const role = await vaultData<Record<string, unknown>>(server.addr, server.rootToken, 'GET', `database/roles/saas-app-${appEnv}`);
      expect((await vaultRequest(server.addr, server.rootToken, 'DELETE', `database/roles/saas-app-${appEnv}`)).status).to.equal(204);
      await revokeLeases();
      // Without its role, Vault revokes with PostgreSQL's default statements, which leave the
      // user's sessions open: nothing shows in the pool, and the lease's own schedule sees it,
      // at its renewal (at most 5/6 of its TTL).
      const haltedMs = await until('halted', async () => (await status(service)).gate.code === 'database_lease_revoked', 10_000);
      expect(haltedMs).to.be.at.most((5 / 6) * leaseTtlMs + 1000);
      const answer = await fetch(`${service.url}/api/projects`);
      expect(answer.status).to.equal(503);
      expect(await answer.json()).to.deep.include({
        error: { code: 'database_lease_revoked', message: 'service halted: the service\'s database credentials were revoked' },
      });
      await vaultData(server.addr, server.rootToken, 'POST', `database/roles/saas-app-${appEnv}`, role);
      await until('open again', async () => (await status(service)).gate.state === 'open', 15_000);
      expect((await fetch(`${service.url}/readyz`)).status).to.equal(200);
    });

    it('revokes its token and its leases on SIGTERM: the database user is gone from pg_roles', async function () {
      expect(await issuedUsers()).to.have.length.greaterThan(0);
      const token = proxy.clientTokens.at(-1) ?? '';
      expect((await vaultRequest(server.addr, server.rootToken, 'POST', 'auth/token/lookup', { token })).status).to.equal(200);
      service.process.child.kill('SIGTERM');
      expect(await service.process.exited).to.equal(0);
      // Its token (5 min TTL) is gone at once, not at its expiry; the users went with it.
      expect((await vaultRequest(server.addr, server.rootToken, 'POST', 'auth/token/lookup', { token })).status).to.equal(403);
      await until('no issued user left', async () => (await issuedUsers()).length === 0, 5000);
      const leases = await vaultRequest(server.addr, server.rootToken, 'LIST', `sys/leases/lookup/${credsPrefix}`);
      expect(leases.status, 'no lease left under the prefix').to.equal(404);
      const log = await service.process.log();
      expect(log).to.include('revoked the service\'s Vault token and the leases it held');
    });
  });

  describe('agent mode: Vault Agent holds the lease', function () {
    let agentDir: AgentDir;
    let agent: ManagedProcess;
    let service: ServiceProcess;
    const rendered = async () => JSON.parse(await readFile(agentDir.renderedFile, 'utf8')) as {
      database: { path: string; lease: { id: string; duration: number }; data: { username: string; password: string } };
    };
    const registerRendered = async () => {
      const file = await rendered();
      registerSecret('rendered dynamic database password', file.database.data.password);
    };

    before(async function () {
      agentDir = await prepareAgentDir(server, appEnv);
      await fastRenderConfig(agentDir);
      agent = startAgent(server, agentDir, appEnv, appEnv, { DATABASE_CREDENTIALS: 'dynamic' });
      await waitForFile(agentDir.renderedFile, agent);
      await waitForFile(agentDir.tokenFile, agent);
      await registerRendered();
      registerSecret('agent token', await readFile(agentDir.tokenFile, 'utf8'));
      service = await startService({
        SECRETS_MODE: 'agent', DATABASE_CREDENTIALS: 'dynamic', APP_ENV: appEnv, VAULT_ADDR: server.addr,
        SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile, TOKEN_CHECK_MAX_INTERVAL_MS: String(checkIntervalMs),
        DATABASE_HOST: '127.0.0.1', DATABASE_PORT: String(pg.layout.port), DATABASE_NAME: 'saas',
      });
    });
    after(async function () {
      await service.process.stop();
      await agent.stop();
    });

    it('renders the lease; the agent renews it and renders new credentials before the max TTL, failing no request (the tests\' own 4 s / 12 s leases)', async function () {
      const first = await rendered();
      expect(first.database.path).to.equal(credsPrefix);
      expect(first.database.lease.duration).to.be.within(1, 4);
      const renewals = new Set<string>();
      const leaseIds = new Set<string>([first.database.lease.id]);
      const load = new SteadyLoad(service.url, 40, await signedIn(service));
      load.start('agent rollover');
      const end = Date.now() + 15_000;
      while (Date.now() < end) {
        const file = await rendered().catch(() => undefined);
        if (file !== undefined) {
          leaseIds.add(file.database.lease.id);
          registerSecret('rendered dynamic database password', file.database.data.password);
          const looked = await vaultRequest(server.addr, server.rootToken, 'PUT', 'sys/leases/lookup', { lease_id: file.database.lease.id });
          const lastRenewal = (looked.body as { data?: { last_renewal: string | null } }).data?.last_renewal;
          if (typeof lastRenewal === 'string') renewals.add(`${file.database.lease.id} ${lastRenewal}`);
        }
        await sleep(250);
      }
      const samples = await load.stop();
      expect(failed(samples).slice(0, 10), `of ${samples.length}`).to.deep.equal([]);
      expect(load.skipped).to.equal(0);
      expect(renewals.size, 'renewals the agent made, seen by lease lookups').to.be.at.least(2);
      expect(leaseIds.size, 'credentials the agent rendered').to.be.at.least(2);
      expect((await status(service)).lease).to.include({ path: credsPrefix, renewedBy: 'agent' });
    });

    it('halts with database_lease_revoked within one check interval of a revocation, and reopens on the agent\'s new render', async function () {
      // A connection of the current credentials, idle in the pool: the revocation ends it.
      expect((await fetch(`${service.url}/api/projects`, { headers: { Cookie: await sessionCookie(service) } })).status).to.equal(200);
      const before = (await rendered()).database.lease.id;
      await revokeLeases();
      // Halted, unless the agent has already rendered new credentials (HashiCorp Vault's agent
      // may, with the 1 s render of these tests): either way, not serving on the revoked lease.
      const haltedMs = await until('halted or a new render', async () => (await status(service)).gate.code === 'database_lease_revoked' ||
        (await rendered()).database.lease.id !== before, 5000);
      expect(haltedMs).to.be.at.most(checkIntervalMs + 1000);
      await until('a new render', async () => (await rendered()).database.lease.id !== before, 20_000);
      await registerRendered();
      await until('open again', async () => (await status(service)).gate.state === 'open', 5000);
    });
  });

  describe('SDK mode with kv credentials: a rotation by scripts/rotate-db-password.sh', function () {
    let service: ServiceProcess;
    const databasePath = `secret/data/saas-project/${appEnv}/database`;
    const loadedDatabaseVersion = async () => (await status(service)).secrets.paths.find((p) => p.path === databasePath)?.version;

    before(async function () {
      const database = await vaultData<{ data: { username: string; password: string } }>(server.addr, server.rootToken, 'GET', databasePath);
      await pg.provision(database.data.username, database.data.password);
      const secretId = await unwrapSecretId(server.addr, await wrappedSecretId(server));
      service = await startService({
        SECRETS_MODE: 'sdk', DATABASE_CREDENTIALS: 'kv', APP_ENV: appEnv, VAULT_ADDR: proxy.url,
        VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId, SECRETS_REREAD_INTERVAL_MS: String(rereadIntervalMs),
        DATABASE_HOST: '127.0.0.1', DATABASE_PORT: String(pg.layout.port), DATABASE_NAME: 'saas',
      });
    });
    after(async function () {
      await service.process.stop();
    });

    it('keeps serving on its open connections while PostgreSQL has the new password and Vault the old; a connection it must open then is refused, '
      + 'until it loads the new version within the re-read interval plus one second', async function () {
      // The pool first holds all the connections it may open: a request finding none idle in
      // the window would open one and be refused (a busy machine slows requests and they pile
      // up), which is the other half of the claim, not this one.
      const cookie = await sessionCookie(service);
      const sessions = async () => Number(await pg.query("SELECT count(*) FROM pg_stat_activity WHERE datname = 'saas' AND usename NOT LIKE 'v-%'"));
      await until(`the pool's ${poolMaxConnections} connections`, async () => {
        await Promise.all(Array.from({ length: 2 * poolMaxConnections }, async () => {
          await (await fetch(`${service.url}/api/projects`, { headers: { Cookie: cookie } })).body?.cancel();
        }));
        return await sessions() >= poolMaxConnections;
      }, 10_000);
      const load = new SteadyLoad(service.url, 40, await signedIn(service));
      load.start('kv rotation');
      await sleep(1000);
      const before = await loadedDatabaseVersion();
      // The script writes PostgreSQL first, then Vault: holding its Vault write holds that window open.
      const vault = await holdingWrites(server.addr);
      try {
        const rotation = new Promise<{ code: number; out: string }>((resolve) => {
          execFile('sh', [join(repoRoot, 'scripts/rotate-db-password.sh')], {
            env: baoEnv(server.dir, {
              VAULT_ADDR: vault.url, VAULT_TOKEN: server.rootToken, VAULT_CLI: serverBin, APP_ENV: appEnv,
              ...superuserEnv(pg.layout), PGUSER: 'postgres',
            }),
          }, (error, stdout, stderr) => { resolve({ code: error === null ? 0 : 1, out: `${stdout}${stderr}` }); });
        });
        expect(await vault.held, 'the script\'s write to Vault').to.contain(`/v1/${databasePath}`);
        const opened = Date.now();
        await sleep(1500);
        // PostgreSQL ends every session the service had: it must open new ones, with the password it holds (the old one).
        const ended = Date.now();
        await pg.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'saas' AND usename NOT LIKE 'v-%' AND pid <> pg_backend_pid()");
        await sleep(1500);
        expect(await loadedDatabaseVersion(), 'Vault still holds the old password').to.equal(before);
        const released = Date.now();
        vault.release();
        const result = await rotation;
        recordOutput('rotate-db-password.sh output', result.out);
        expect(result.code, result.out).to.equal(0);
        const rotated = await vaultData<{ data: { password: string } }>(server.addr, server.rootToken, 'GET', databasePath);
        registerSecret('rotated KV database password', rotated.data.password);
        const tookMs = await until('the new database version is loaded', async () => (await loadedDatabaseVersion()) === (before ?? 0) + 1, 10_000);
        expect(tookMs, 'from Vault\'s write to the service\'s load').to.be.at.most(rereadIntervalMs + 1000);
        const loaded = Date.now();
        await sleep(2000);
        const samples = await load.stop();
        const open = samples.filter((s) => s.t0 >= opened && s.t1 < ended);
        expect(open.length, 'answers while PostgreSQL had the new password, before the sessions ended').to.be.greaterThan(30);
        expect(failed(open).slice(0, 5), 'the open connections stay authenticated').to.deep.equal([]);
        // Once the ended sessions are noticed (a request on one fails, the pool drops it), every new one is refused.
        const refused = samples.filter((s) => s.t0 >= ended + 500 && s.t1 < released);
        expect(refused.length).to.be.greaterThan(20);
        expect(failed(refused).length, 'requests needing a connection in the window').to.equal(refused.length);
        expect(new Set(refused.map((s) => `${s.status} ${s.code ?? ''}`)), 'what a client sees then').to.deep.equal(new Set(['503 database_unavailable']));
        const after = samples.filter((s) => s.t0 > loaded);
        expect(after.length, 'answers after the new version was loaded').to.be.greaterThan(30);
        expect(failed(after).slice(0, 5)).to.deep.equal([]);
      } finally {
        await vault.close();
      }
    });
  });
  describe('at the shipped durations (1 h leases, the default 10 s token check): a revocation is seen through PostgreSQL', function () {
    before(async function () {
      // The role as database-engine.sh ships it: no DB_CREDS_TTL or DB_CREDS_MAX_TTL.
      await enableDynamicCredentials(server, pg, { appEnv });
    });

    for (const mode of ['sdk', 'agent'] as const) {
      it(`${mode === 'sdk' ? 'SDK mode replaces' : 'agent mode halts on'} revoked credentials within 10 s + 1 s, though the lease is next looked up in about 40 min`, async function () {
        let agentDir: AgentDir | undefined;
        let agent: ManagedProcess | undefined;
        let service: ServiceProcess | undefined;
        try {
          const base = { DATABASE_CREDENTIALS: 'dynamic', APP_ENV: appEnv, DATABASE_HOST: '127.0.0.1', DATABASE_PORT: String(pg.layout.port), DATABASE_NAME: 'saas' };
          if (mode === 'sdk') {
            const secretId = await unwrapSecretId(server.addr, await wrappedSecretId(server));
            service = await startService({ ...base, SECRETS_MODE: 'sdk', VAULT_ADDR: server.addr, VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId });
          } else {
            agentDir = await prepareAgentDir(server, appEnv);
            agent = startAgent(server, agentDir, appEnv, appEnv, { DATABASE_CREDENTIALS: 'dynamic' });
            await waitForFile(agentDir.renderedFile, agent);
            await waitForFile(agentDir.tokenFile, agent);
            registerSecret('agent token (shipped durations)', await readFile(agentDir.tokenFile, 'utf8'));
            const file = JSON.parse(await readFile(agentDir.renderedFile, 'utf8')) as { database: { data: { password: string } } };
            registerSecret('rendered dynamic database password (shipped durations)', file.database.data.password);
            service = await startService({
              ...base, SECRETS_MODE: 'agent', VAULT_ADDR: server.addr, SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile,
            });
          }
          const running = service;
          expect((await fetch(`${running.url}/api/projects`, { headers: { Cookie: await sessionCookie(running) } })).status).to.equal(200);
          const lease = (await status(running)).lease as { nextCheckInSeconds: number | null } | null;
          // Looked up on the lease's schedule (two thirds of 1 h, spread by a sixth), not every 10 s.
          expect(lease?.nextCheckInSeconds, 'the lease\'s next check').to.be.within(0.5 * 3600 - 5, (5 / 6) * 3600);
          const before = await issuedUsers();
          await revokeLeases();
          const tookMs = mode === 'sdk'
            ? await until('new credentials', async () => {
              const now = await issuedUsers();
              return now.length > 0 && now.every((u) => !before.includes(u));
            }, 11_000)
            : await until('halted', async () => (await status(running)).gate.code === 'database_lease_revoked', 11_000);
          expect(tookMs).to.be.at.most(10_000 + 1000);
          console.log(`      ${mode}: ${mode === 'sdk' ? 'new credentials' : 'halted'} ${tookMs} ms after the revocation`);
          if (mode === 'sdk') {
            expect((await fetch(`${running.url}/readyz`)).status).to.equal(200);
            expect(await metric(running, 'saas_traffic_halts_total{code="database_lease_revoked"}')).to.equal(1);
          }
        } finally {
          await service?.process.stop();
          await agent?.stop();
        }
      });
    }
  });
  describe('the agent dead until its token expires (1/30 of the shipped token TTL, lease TTL and check interval)', function () {
    it('traffic halts with vault_token_expired before Vault ends the database user: no database_unavailable first', async function () {
      const d = scaleDurations((await shippedProduction()).durations, 30);
      await enableDynamicCredentials(server, pg, { appEnv, ttl: asDuration(d.leaseTtl), maxTtl: asDuration(d.leaseMaxTtl) });
      const agentDir = await prepareAgentDir(server, appEnv, {
        ROLE_TOKEN_TTL: asDuration(d.tokenTtl), ROLE_TOKEN_MAX_TTL: asDuration(d.tokenMaxTtl), ROLE_SECRET_ID_NUM_USES: '0',
      });
      const agent = startAgent(server, agentDir, appEnv, appEnv, { DATABASE_CREDENTIALS: 'dynamic' });
      let service: ServiceProcess | undefined;
      try {
        await waitForFile(agentDir.renderedFile, agent);
        await waitForFile(agentDir.tokenFile, agent);
        registerSecret('agent token (expiry test)', await readFile(agentDir.tokenFile, 'utf8'));
        const file = JSON.parse(await readFile(agentDir.renderedFile, 'utf8')) as { database: { data: { username: string; password: string } } };
        registerSecret('rendered dynamic database password (expiry test)', file.database.data.password);
        service = await startService({
          SECRETS_MODE: 'agent', DATABASE_CREDENTIALS: 'dynamic', APP_ENV: appEnv, VAULT_ADDR: server.addr,
          SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile, TOKEN_CHECK_MAX_INTERVAL_MS: String(d.checkInterval),
          DATABASE_HOST: '127.0.0.1', DATABASE_PORT: String(pg.layout.port), DATABASE_NAME: 'saas',
        });
        const running = service;
        const load = new SteadyLoad(running.url, 40, await signedIn(running));
        load.start('agent dead until its token expires');
        agent.child.kill('SIGKILL');
        // What is left of the token (its TTL at most), one check interval, and 1 s.
        await until('halted', async () => (await status(running)).gate.state === 'halted', d.tokenTtl + d.checkInterval + 1000);
        // Vault ends the token, its lease and so the database user: the requests go on past that.
        await until('the database user dropped', async () => !(await issuedUsers()).includes(file.database.data.username), 10_000);
        await sleep(1000);
        const samples = await load.stop();
        // Answers only: a socket the server closed as idle just as the keep-alive client reused
        // it (status 0, "socket hang up") is the client's race, not an answer of the service.
        const refused = samples.filter((s) => s.status !== 0 && s.status !== 200 && s.status !== 201);
        expect(refused.length, 'requests answered once halted').to.be.greaterThan(0);
        expect([...new Set(refused.map((s) => `${s.status} ${s.code ?? s.error ?? ''}`))]).to.deep.equal(['503 vault_token_expired']);
        expect((await status(running)).gate.code).to.equal('vault_token_expired');
      } finally {
        await service?.process.stop();
        await agent.stop();
      }
    });
  });
});
