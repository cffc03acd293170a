import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { prepareAgentDir, startAgent, waitForFile, type AgentDir } from '../support/agent.js';
import { repoRoot, startDevServer, type DevServer } from '../support/bao.js';
import { forgetSecret, recordOutput, registerSecret, scanForLeaks } from '../support/leak-scan.js';
import { freePort } from '../support/ports.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import type { ManagedProcess } from '../support/processes.js';
import { startService, type ServiceProcess } from '../support/service.js';
import { addIdentityProvider, devRedirectUrl, type IdentityProvider } from '../support/sign-in.js';
import { tempDir, tempDirsCreated } from '../support/temp-dirs.js';
import { vaultData, vaultRequest } from '../support/vault-http.js';
import { foreignLines, initialEnvironment, parseLog } from './harness.js';
import { hasHelmetHeaders } from './load.js';

interface KvRead<T> {
  data: T;
  metadata: { version: number };
}

/** What a stack trace, a source path or a parser's own message looks like in a response. */
const internals = /\bat \S+ \(|\bat (async )?[\w.]+ \(|node_modules|\/work\/|\.ts:\d+|\.js:\d+|SyntaxError|TypeError|Unexpected token|stack/i;

describe('security (issue 9): process environment, file modes, the app token\'s reach, hostile input, the secret scan', function () {
  this.timeout(60_000);
  let server: DevServer;
  let agentDir: AgentDir;
  let agent: ManagedProcess;
  let service: ServiceProcess;
  let postgres: TestPostgres;
  let identity: IdentityProvider;
  let agentToken = '';
  /** Every secret value of the environment, as Vault holds it. */
  const values: string[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];

  before(async function () {
    server = await startDevServer();
    cleanups.push(() => server.stop());
    agentDir = await prepareAgentDir(server, 'dev');
    // After the bootstrap, before the agent's first render: the sign-in's client in the oidc group.
    identity = await addIdentityProvider(server, devRedirectUrl);
    await identity.credentials();
    agent = startAgent(server, agentDir);
    cleanups.push(() => agent.stop());
    await waitForFile(agentDir.renderedFile, agent);
    await waitForFile(agentDir.tokenFile, agent);
    agentToken = (await readFile(agentDir.tokenFile, 'utf8')).trim();
    registerSecret('agent token (dev)', agentToken);
    for (const group of ['database', 'api-keys', 'app', 'oidc']) {
      const read = await vaultData<KvRead<Record<string, unknown>>>(server.addr, server.rootToken, 'GET', `secret/data/saas-project/dev/${group}`);
      values.push(...Object.entries(read.data).filter(([key]) => !['username', 'client_id'].includes(key)).flatMap(([, v]) => v).map(String));
    }
    // Sessions live in PostgreSQL, with the user the database group names.
    postgres = await startTestPostgres();
    cleanups.push(() => postgres.stop());
    const database = await vaultData<KvRead<{ username: string; password: string }>>(server.addr, server.rootToken, 'GET',
      'secret/data/saas-project/dev/database');
    await postgres.provision(database.data.username, database.data.password);
    service = await startService({
      SECRETS_MODE: 'agent', APP_ENV: 'dev', VAULT_ADDR: server.addr, SECRETS_FILE: agentDir.renderedFile,
      VAULT_TOKEN_FILE: agentDir.tokenFile, DATABASE_PORT: String(postgres.layout.port), TOKEN_CHECK_MAX_INTERVAL_MS: '1000',
      ...identity.serviceEnv,
    });
    cleanups.push(() => service.process.stop());
  });

  after(async function () {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('holds no secret value and no token in the agent-mode process\'s initial environment', async function () {
    const environment = await initialEnvironment(service.process.child.pid ?? 0);
    expect(environment).to.contain(`SECRETS_FILE=${agentDir.renderedFile}`);
    // The database password, the webhook signing key, the session key and the client secret.
    expect(values).to.have.length(4);
    for (const value of [...values, agentToken, server.rootToken]) expect(environment).to.not.contain(value);
    expect(environment).to.not.match(/^(VAULT_TOKEN|VAULT_SECRET_ID|VAULT_ROLE_ID|BAO_TOKEN)=/m);
  });

  for (const variant of ['VAULT_SECRET_ID_FILE', 'VAULT_WRAPPED_SECRET_ID_FILE'] as const) {
    it(`holds no credential in the SDK-mode process's initial environment (VAULT_ROLE_ID_FILE, ${variant})`, async function () {
      const dir = await tempDir('sdk-credentials');
      const roleId = (await readFile(join(agentDir.credentialsDir, 'role-id'), 'utf8')).trim();
      registerSecret('role id', roleId);
      let secretId: string;
      if (variant === 'VAULT_SECRET_ID_FILE') {
        secretId = (await vaultData<{ secret_id: string }>(server.addr, server.rootToken, 'POST', 'auth/approle/role/saas-app-dev/secret-id')).secret_id;
      } else {
        const minted = await fetch(`${server.addr}/v1/auth/approle/role/saas-app-dev/secret-id`, {
          method: 'POST', headers: { 'X-Vault-Token': server.rootToken, 'X-Vault-Wrap-TTL': '60s' },
        });
        secretId = ((await minted.json()) as { wrap_info: { token: string } }).wrap_info.token;
      }
      registerSecret('secret id', secretId);
      await writeFile(join(dir, 'role-id'), roleId, { mode: 0o400 });
      await writeFile(join(dir, 'secret-id'), secretId, { mode: 0o400 });
      const sdk = await startService({
        SECRETS_MODE: 'sdk', APP_ENV: 'dev', VAULT_ADDR: server.addr, VAULT_ROLE_ID_FILE: join(dir, 'role-id'),
        [variant]: join(dir, 'secret-id'), DATABASE_PORT: String(await freePort()),
      });
      try {
        const environment = await initialEnvironment(sdk.process.child.pid ?? 0);
        expect(environment).to.contain(`${variant}=${join(dir, 'secret-id')}`);
        for (const value of [roleId, secretId, ...values, server.rootToken]) expect(environment).to.not.contain(value);
        const status = await (await fetch(`${sdk.adminUrl}/status`)).json() as { mode: string; gate: { state: string } };
        expect(status).to.nested.include({ mode: 'sdk', 'gate.state': 'open' });
      } finally {
        expect(await sdk.process.stop()).to.equal(0);
      }
      expect(foreignLines(await sdk.process.log())).to.deep.equal([]);
    });
  }

  it('writes the rendered file and the token sink with the modes agent.hcl sets, and removes the secret id file after reading it', async function () {
    const config = (await readFile(join(repoRoot, 'agent-config/agent.hcl'), 'utf8')) +
      await readFile(join(repoRoot, 'agent-config/env/dev.hcl'), 'utf8');
    const sinkMode = Number.parseInt(/sink "file"[\s\S]*?mode\s*=\s*(0[0-7]+)/.exec(config)?.[1] ?? '', 8);
    const templatePerms = Number.parseInt(/template \{[\s\S]*?perms\s*=\s*"(0[0-7]+)"/.exec(config)?.[1] ?? '', 8);
    expect([sinkMode, templatePerms]).to.deep.equal([0o440, 0o440]);
    expect((await stat(agentDir.tokenFile)).mode & 0o777).to.equal(sinkMode);
    expect((await stat(agentDir.renderedFile)).mode & 0o777).to.equal(templatePerms);
    expect((await stat(join(agentDir.credentialsDir, 'role-id'))).mode & 0o777).to.equal(0o400);
    const secretIdFile = await stat(join(agentDir.credentialsDir, 'secret-id')).then(() => 'present', (error: unknown) => (error as NodeJS.ErrnoException).code);
    expect(secretIdFile).to.equal('ENOENT');
  });

  it('refuses the app\'s token (403) to write, delete, list environments, read sys/, create tokens or read another environment', async function () {
    // Another environment's secrets exist, so a 403 there is the policy, not a missing path.
    await vaultData(server.addr, server.rootToken, 'POST', 'secret/data/saas-project/prod/app', { data: { session_keys: [randomBytes(32).toString('hex')] } });
    const attempts: [string, string, string, unknown?][] = [
      ['write its own secret', 'POST', 'secret/data/saas-project/dev/app', { data: { session_keys: ['x'.repeat(40)] } }],
      ['write a new path', 'POST', 'secret/data/saas-project/dev/new-group', { data: { a: 'b' } }],
      ['delete its own secret', 'DELETE', 'secret/data/saas-project/dev/app'],
      ['destroy versions', 'POST', 'secret/destroy/saas-project/dev/app', { versions: [1] }],
      ['delete metadata', 'DELETE', 'secret/metadata/saas-project/dev/app'],
      ['list the environments', 'GET', 'secret/metadata/saas-project?list=true'],
      ['list another environment', 'GET', 'secret/metadata/saas-project/prod?list=true'],
      ['list its own environment', 'GET', 'secret/metadata/saas-project/dev?list=true'],
      ['read sys/mounts', 'GET', 'sys/mounts'],
      ['read sys/policies', 'GET', 'sys/policies/acl?list=true'],
      ['read sys/auth', 'GET', 'sys/auth'],
      ['create a token', 'POST', 'auth/token/create', {}],
      ['create an orphan token', 'POST', 'auth/token/create-orphan', {}],
      ['mint a secret id', 'POST', 'auth/approle/role/saas-app-dev/secret-id', {}],
      ['read another environment', 'GET', 'secret/data/saas-project/prod/app'],
      ['read staging', 'GET', 'secret/data/saas-project/staging/database'],
    ];
    const statuses: Record<string, number> = {};
    for (const [what, method, path, body] of attempts) statuses[what] = (await vaultRequest(server.addr, agentToken, method, path, body)).status;
    expect(statuses).to.deep.equal(Object.fromEntries(attempts.map(([what]) => [what, 403])));
    // What it may do: read its own environment.
    expect((await vaultRequest(server.addr, agentToken, 'GET', 'secret/data/saas-project/dev/app')).status).to.equal(200);
  });

  describe('hostile input', function () {
    let session = '';
    before(async function () {
      const signedIn = await identity.signIn(service.url);
      expect(signedIn.tenant).to.equal('acme');
      session = signedIn.cookieHeader;
    });

    const json = { 'Content-Type': 'application/json' };
    /** POST /api/projects with a live session: the body alone is hostile. */
    const create = (body: string | Buffer, headers: Record<string, string> = json): [string, RequestInit] =>
      ['/api/projects', { method: 'POST', headers: { ...headers, Cookie: session }, body }];
    const cases: [string, () => [string, RequestInit], number][] = [
      ['bad JSON', () => create('{"name": "acme",'), 400],
      ['bad JSON quoting a secret', () => create(`{"name": "${values[0] ?? ''}" oops`), 400],
      ['a body over 16 KB', () => create(JSON.stringify({ name: 'x', description: 'y'.repeat(20_000) })), 413],
      ['a 64 KB body', () => create(`{"name":"${'a'.repeat(65_536)}"}`), 413],
      ['a wrong type', () => create('{"name": 42}'), 400],
      ['an array body', () => create('["acme"]'), 400],
      ['a JSON null body', () => create('null'), 400],
      ['an unknown field', () => create('{"name":"acme","admin":true}'), 400],
      ['a __proto__ key', () => create('{"name":"acme","__proto__":{"admin":true}}'), 400],
      ['5000-deep nested JSON', () => create(`${'['.repeat(5000)}${']'.repeat(5000)}`), 400],
      ['invalid UTF-8', () => create(Buffer.from([0x7b, 0x22, 0x6e, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), 400],
      ['a text/plain body', () => create('{"name":"acme"}', { 'Content-Type': 'text/plain' }), 400],
      ['a wrong type in a project', () => create('{"name": {"$gt": ""}}'), 400],
      ['an unknown route', () => ['/nope', {}], 404],
      ['an unknown API route', () => ['/api/nope', { headers: { Cookie: session } }], 404],
      ['a path traversal', () => ['/api/projects/..%2F..%2Fetc%2Fpasswd', { headers: { Cookie: session } }], 404],
      ['an SQL-looking id', () => ['/api/projects/1%27%20OR%20%271%27%3D%271', { headers: { Cookie: session } }], 404],
      ['an 8 KB URL', () => [`/${'a'.repeat(8000)}`, {}], 404],
      ['a wrong method', () => ['/api/projects', { method: 'PUT', headers: { Cookie: session } }], 405],
      ['no session', () => ['/api/projects', {}], 401],
      ['a forged session', () => ['/api/session', { headers: { Cookie: session.replace(/saas_session=[\w-]+/, `saas_session=${Buffer.from('{"tenant":"evil"}').toString('base64url')}`) } }], 401],
      ['a garbage cookie', () => ['/api/session', { headers: { Cookie: 'saas_session=%%%; saas_session.sig=AAAA' } }], 401],
    ];
    for (const [what, make, expected] of cases) {
      it(`answers ${what} with ${expected}, a JSON error, no internals, and the security headers`, async function () {
        const [path, init] = make();
        const response = await fetch(`${service.url}${path}`, init);
        const text = await response.text();
        expect(response.status, text).to.equal(expected);
        expect(response.headers.get('content-type')).to.match(/^application\/json/);
        const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
        expect(body.error?.code).to.be.a('string');
        expect(body.error?.message).to.be.a('string');
        expect(Object.keys(body)).to.deep.equal(['error']);
        expect(text).to.not.match(internals);
        for (const value of values) expect(text).to.not.contain(value);
        expect(hasHelmetHeaders(Object.fromEntries(response.headers.entries())), [...response.headers.keys()].join(', ')).to.be.true;
      });
    }

    it('puts the security headers on successful answers too (200, 204)', async function () {
      // A session of its own to end: the cases above keep theirs.
      const ending = (await identity.signIn(service.url)).cookieHeader;
      for (const [path, init] of [['/healthz', {}], ['/readyz', {}], ['/api/session', { headers: { Cookie: session } }],
        ['/auth/logout', { method: 'POST', headers: { Cookie: ending } }]] as [string, RequestInit][]) {
        const response = await fetch(`${service.url}${path}`, init);
        await response.body?.cancel();
        expect(response.status, path).to.be.oneOf([200, 204]);
        expect(hasHelmetHeaders(Object.fromEntries(response.headers.entries())), path).to.be.true;
      }
    });

    it('logged no internal error for any of it, and the process is still running', async function () {
      // Every hostile body came with a live session: none of them made a project.
      const listed = await fetch(`${service.url}/api/projects`, { headers: { Cookie: session } });
      expect(await listed.json()).to.deep.include({ projects: [] });
      const log = parseLog(await service.process.log());
      expect(log.filter((e) => e.level === 'error' || e.level === 'fatal')).to.deep.equal([]);
      expect(service.process.child.exitCode).to.equal(null);
    });
  });

  describe('the secret scan (support/leak-scan.ts; the root hook runs it again over the whole mocha process)', function () {
    it('finds a planted secret in a recorded output and in a log file (the scan\'s self-test)', async function () {
      const canary = `canary-${randomBytes(16).toString('hex')}`;
      registerSecret('canary', canary);
      try {
        recordOutput('self-test output', `first line\nthe canary ${canary} here\n`);
        const logFile = join(await tempDir('scan-self-test'), 'planted.log');
        await writeFile(logFile, `{"msg":"ok"}\n{"msg":"leak","value":"${canary}"}\n`);
        const { hits } = await scanForLeaks(tempDirsCreated());
        const canaryHits = hits.filter((h) => h.what === 'canary');
        expect(canaryHits.map((h) => `${h.source.endsWith('planted.log') ? 'planted.log' : h.source}:${h.line}`))
          .to.have.members(['self-test output:2', 'planted.log:2']);
        await writeFile(logFile, '');
      } finally {
        forgetSecret(canary);
      }
    });

    it('finds no secret value or token in any log line, script output or response of the run so far', async function () {
      await service.process.log();
      const summary = await scanForLeaks(tempDirsCreated());
      expect(summary.secrets).to.be.greaterThan(5);
      expect(summary.outputs).to.be.greaterThan(20);
      expect(summary.hits.map((h) => `${h.what} in ${h.source}:${h.line}`)).to.deep.equal([]);
    });
  });
});
