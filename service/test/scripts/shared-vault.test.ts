import { expect } from 'chai';
import { secretGroups } from '../../src/config/secret-catalogue.generated.js';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { prepareAgentDir, startAgent, waitForFile } from '../support/agent.js';
import { serverBin, baoEnv, repoRoot, startDevServer, vaultServer, type DevServer } from '../support/bao.js';
import { runScript } from '../support/bao-server.js';
import { runBootstrap } from '../support/bootstrap.js';
import { registerSecret } from '../support/leak-scan.js';
import { spawnService, startService, type ServiceProcess } from '../support/service.js';
import { tempDir } from '../support/temp-dirs.js';
import { vaultData, vaultRequest } from '../support/vault-http.js';

/** What the test reads of the saas service's /status. */
interface StatusView {
  gate: { state: string; since: string };
  token: { lastCheckAt: string | null };
}

interface RoleState {
  roleId: string;
  policies: string[];
  secretIds: string[];
}

describe(`two applications and two environments on one real ${vaultServer.name} dev server, with a real agent`, function () {
  this.timeout(120_000);
  let server: DevServer;
  let saasDev: string;
  let billingDev: string;
  let service: ServiceProcess | undefined;

  const roleState = async (role: string): Promise<RoleState> => {
    const root = server.rootToken;
    const listed = await vaultRequest(server.addr, root, 'LIST', `auth/approle/role/${role}/secret-id`);
    return {
      roleId: (await vaultData<{ role_id: string }>(server.addr, root, 'GET', `auth/approle/role/${role}/role-id`)).role_id,
      policies: (await vaultData<{ token_policies: string[] }>(server.addr, root, 'GET', `auth/approle/role/${role}`)).token_policies,
      secretIds: listed.status === 200 ? (listed.body as { data: { keys: string[] } }).data.keys.sort() : [],
    };
  };
  /** A login as the agent makes it: the wrapped secret id unwrapped, then AppRole. */
  const login = async (credentials: string): Promise<string> => {
    const wrapping = (await readFile(join(credentials, 'secret-id'), 'utf8')).trim();
    const { secret_id: secretId } = await vaultData<{ secret_id: string }>(server.addr, wrapping, 'POST', 'sys/wrapping/unwrap');
    registerSecret('secret id', secretId);
    const roleId = (await readFile(join(credentials, 'role-id'), 'utf8')).trim();
    const response = await vaultRequest(server.addr, undefined, 'POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId });
    const token = (response.body as { auth: { client_token: string } }).auth.client_token;
    registerSecret('app token', token);
    return token;
  };
  const tokenStatus = async (token: string) => (await vaultRequest(server.addr, token, 'GET', 'auth/token/lookup-self')).status;

  before(async function () {
    server = await startDevServer();
    saasDev = await tempDir('saas-dev');
    billingDev = await tempDir('billing-dev');
    const saas = await runBootstrap(server, 'dev', saasDev);
    expect(saas.code, saas.stderr).to.equal(0);
    const billing = await runBootstrap(server, 'dev', billingDev, { APP_NAME: 'billing' });
    expect(billing.code, billing.stderr).to.equal(0);
    expect(billing.stdout).to.contain('wrote role billing-app-dev (policy billing-app-dev,');
  });

  after(async function () {
    await service?.process.stop();
    await server.stop();
  });

  it('gives each application its own policy, reading only its own KV prefix', async function () {
    const policy = await vaultData<{ policy: string }>(server.addr, server.rootToken, 'GET', 'sys/policies/acl/billing-app-dev');
    expect(policy.policy).to.contain('path "secret/data/billing-project/dev/*"').and.contain('path "database/creds/billing-app-dev"');
    expect(policy.policy).to.not.contain('saas-');
    const token = await login(billingDev);
    expect((await vaultRequest(server.addr, token, 'GET', 'secret/data/billing-project/dev/api-keys')).status).to.equal(200);
    expect((await vaultRequest(server.addr, token, 'GET', 'secret/data/saas-project/dev/api-keys')).status).to.equal(403);
  });

  it('bootstrapping another environment or application leaves the other roles as they were', async function () {
    const before = { saas: await roleState('saas-app-dev'), billing: await roleState('billing-app-dev') };
    const staging = await runBootstrap(server, 'staging', await tempDir('saas-staging'));
    expect(staging.code, staging.stderr).to.equal(0);
    expect(staging.stdout).to.contain('wrote role saas-app-staging (policy saas-app-staging,');
    const again = await runBootstrap(server, 'dev', await tempDir('billing-again'), { APP_NAME: 'billing' });
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.contain('role billing-app-dev unchanged');
    expect(await roleState('saas-app-dev')).to.deep.equal(before.saas);
    // A new credentials folder gets a new wrapped secret id: billing's own role, and only it.
    const billing = await roleState('billing-app-dev');
    expect({ roleId: billing.roleId, policies: billing.policies }).to.deep.equal({ roleId: before.billing.roleId, policies: ['billing-app-dev'] });
    expect((await roleState('saas-app-staging')).policies).to.deep.equal(['saas-app-staging']);
  });

  it('kill-switch.sh as billing-admin takes billing\'s tokens and secret ids away and locks its role until --reopen; saas keeps serving and logging in', async function () {
    // saas in dev: a service of its own (SDK mode, as the start tests run it) and an agent-like token.
    const saasToken = await login(saasDev);
    const wrappedFile = join(await tempDir('saas-wrapped'), 'secret-id');
    const minted = await fetch(`${server.addr}/v1/auth/approle/role/saas-app-dev/secret-id`, {
      method: 'POST', headers: { 'X-Vault-Token': server.rootToken, 'X-Vault-Wrap-TTL': '60s' },
    });
    const wrappingToken = ((await minted.json()) as { wrap_info: { token: string } }).wrap_info.token;
    registerSecret('wrapping token', wrappingToken);
    await writeFile(wrappedFile, wrappingToken, { mode: 0o400 });
    service = await startService({
      SECRETS_MODE: 'sdk', APP_ENV: 'dev', VAULT_ADDR: server.addr, TOKEN_CHECK_MAX_INTERVAL_MS: '1000',
      VAULT_ROLE_ID_FILE: join(saasDev, 'role-id'), VAULT_WRAPPED_SECRET_ID_FILE: wrappedFile,
    });
    const saasBefore = await roleState('saas-app-dev');

    // billing in dev: two tokens, as after a re-login, and one secret id waiting.
    const billingTokens: string[] = [];
    for (let i = 0; i < 2; i++) {
      // The file the last login consumed: bootstrap.sh writes a fresh wrapped secret id.
      const again = await runBootstrap(server, 'dev', billingDev, { APP_NAME: 'billing' });
      expect(again.code, again.stderr).to.equal(0);
      billingTokens.push(await login(billingDev));
    }
    await vaultRequest(server.addr, server.rootToken, 'POST', 'auth/approle/role/billing-app-dev/secret-id');

    // billing's admin: the shipped saas-admin.hcl as first-bootstrap.sh writes it for APP_NAME=billing.
    const rendered = (await readFile(join(repoRoot, 'policies/saas-admin.hcl'), 'utf8')).replaceAll('saas-', 'billing-');
    await vaultData(server.addr, server.rootToken, 'PUT', 'sys/policies/acl/billing-admin', { policy: rendered });
    const admin = (await vaultRequest(server.addr, server.rootToken, 'POST', 'auth/token/create',
      { policies: ['billing-admin'], ttl: '10m' })).body as { auth: { client_token: string } };
    registerSecret('billing admin token', admin.auth.client_token);
    // The admin cannot reach saas's role.
    expect((await vaultRequest(server.addr, admin.auth.client_token, 'LIST', 'auth/approle/role/saas-app-dev/secret-id')).status).to.equal(403);

    const { adminUrl } = service;
    const status = async () => await (await fetch(`${adminUrl}/status`)).json() as StatusView;
    const gateBefore = (await status()).gate;
    expect(gateBefore.state).to.equal('open');
    const killed = await runScript('scripts/prod/kill-switch.sh', ['dev'], baoEnv(server.dir, {
      VAULT_ADDR: server.addr, VAULT_TOKEN: admin.auth.client_token, VAULT_CLI: serverBin, APP_NAME: 'billing',
    }));
    const killedAt = Date.now();
    expect(killed.code, killed.stderr).to.equal(0);
    expect(killed.stdout).to.contain("locked auth/approle/role/billing-app-dev (secret_id_bound_cidrs 0.0.0.0/32; was ''");
    expect(killed.stdout).to.match(/destroyed [1-9]\d* secret id\(s\) of auth\/approle\/role\/billing-app-dev/);
    expect(killed.stdout).to.contain(`revoked ${billingTokens.length + 1} token(s) with the policy billing-app-dev`);
    expect(killed.stdout).to.contain('database/creds/billing-app-dev');

    for (const token of billingTokens) expect(await tokenStatus(token), 'billing token').to.equal(403);
    expect((await roleState('billing-app-dev')).secretIds).to.deep.equal([]);
    expect(await tokenStatus(saasToken), 'saas token').to.equal(200);
    expect(await roleState('saas-app-dev')).to.deep.equal(saasBefore);
    // The saas service checks its token every 1000 ms: two checks recorded after the kill (the
    // second began after it), within two intervals + 1 s, and its gate never closed: a halt and
    // a new login in between would show as a later `since`.
    const checks = new Set<string>();
    for (const end = Date.now() + 2 * 1000 + 1000; checks.size < 2;) {
      const { token } = await status();
      if (token.lastCheckAt !== null && Date.parse(token.lastCheckAt) >= killedAt) checks.add(token.lastCheckAt);
      if (checks.size < 2 && Date.now() > end) throw new Error(`the saas service checked its token ${checks.size} time(s) within two 1000 ms check intervals + 1 s of the kill`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await status()).gate, 'the saas service\'s gate').to.deep.equal(gateBefore);
    expect((await fetch(`${service.url}/readyz`)).status).to.equal(200);

    // Locked: a fresh billing secret id (what its courier delivers) is refused; saas logs in.
    const refused = await runBootstrap(server, 'dev', billingDev, { APP_NAME: 'billing' });
    expect(refused.code, refused.stderr).to.equal(0);
    expect(refused.stdout, 'a bootstrap re-run keeps the lock').to.contain('role billing-app-dev is locked by the kill switch: left as it is');
    const loginAs = async (credentials: string) => {
      const wrapping = (await readFile(join(credentials, 'secret-id'), 'utf8')).trim();
      const { secret_id: secretId } = await vaultData<{ secret_id: string }>(server.addr, wrapping, 'POST', 'sys/wrapping/unwrap');
      registerSecret('secret id', secretId);
      const roleId = (await readFile(join(credentials, 'role-id'), 'utf8')).trim();
      return { roleId, secretId, response: await vaultRequest(server.addr, undefined, 'POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId }) };
    };
    const locked = await loginAs(billingDev);
    expect(locked.response.status, 'billing\'s login while locked').to.equal(400);
    expect(JSON.stringify(locked.response.body)).to.contain('unauthorized by CIDR restrictions on the role');
    const saasWrapped = await tempDir('saas-again');
    expect((await runBootstrap(server, 'dev', saasWrapped)).code).to.equal(0);
    const saasLogin = await loginAs(saasWrapped);
    expect(saasLogin.response.status, 'saas logs in while billing is locked').to.equal(200);
    registerSecret('app token', (saasLogin.response.body as { auth: { client_token: string } }).auth.client_token);

    // Nobody else reopens it: not saas's admin (another application's), nor code holding an app
    // token (saas's here), which cannot read the record either.
    const saasAdminPolicy = (await readFile(join(repoRoot, 'policies/saas-admin.hcl'), 'utf8'));
    await vaultData(server.addr, server.rootToken, 'PUT', 'sys/policies/acl/saas-admin', { policy: saasAdminPolicy });
    const saasAdmin = (await vaultRequest(server.addr, server.rootToken, 'POST', 'auth/token/create',
      { policies: ['saas-admin'], ttl: '10m' })).body as { auth: { client_token: string } };
    registerSecret('saas admin token', saasAdmin.auth.client_token);
    const saasAppToken = (saasLogin.response.body as { auth: { client_token: string } }).auth.client_token;
    for (const [who, token] of [['saas-admin', saasAdmin.auth.client_token], ['an app token', saasAppToken]] as const) {
      const tried = await runScript('scripts/prod/kill-switch.sh', ['--reopen', 'dev'], baoEnv(server.dir, {
        VAULT_ADDR: server.addr, VAULT_TOKEN: token, VAULT_CLI: serverBin, APP_NAME: 'billing',
      }));
      expect(tried.code, `${who} reopening billing`).to.equal(1);
      expect(tried.stderr, who).to.match(/permission denied/);
      expect((await vaultRequest(server.addr, token, 'GET', 'secret/data/billing-kill-switch/dev')).status, `${who} reading the record`).to.equal(403);
      expect((await vaultRequest(server.addr, token, 'POST', 'auth/approle/role/billing-app-dev', { secret_id_bound_cidrs: '' })).status, `${who} unlocking the role`).to.equal(403);
    }

    // billing's admin reopens: exactly what was there, and billing logs in again.
    const reopened = await runScript('scripts/prod/kill-switch.sh', ['--reopen', 'dev'], baoEnv(server.dir, {
      VAULT_ADDR: server.addr, VAULT_TOKEN: admin.auth.client_token, VAULT_CLI: serverBin, APP_NAME: 'billing',
    }));
    expect(reopened.code, reopened.stderr).to.equal(0);
    expect(reopened.stdout).to.contain("restored secret_id_bound_cidrs of auth/approle/role/billing-app-dev to ''");
    const role = await vaultData<{ secret_id_bound_cidrs: string[] | null }>(server.addr, server.rootToken, 'GET', 'auth/approle/role/billing-app-dev');
    expect(role.secret_id_bound_cidrs ?? []).to.deep.equal([]);
    const again = await vaultRequest(server.addr, undefined, 'POST', 'auth/approle/login', { role_id: locked.roleId, secret_id: locked.secretId });
    expect(again.status, 'billing\'s login after the reopen: the refused secret id stays valid').to.equal(200);
    registerSecret('app token', (again.body as { auth: { client_token: string } }).auth.client_token);
    expect(await roleState('saas-app-dev'), 'saas\'s role untouched').to.deep.include({ roleId: saasBefore.roleId, policies: saasBefore.policies });
  });

  it('kill-switch.sh names a role it cannot lock (a method it knows no lock for), still locks and revokes the rest, and exits 1', async function () {
    const root = server.rootToken;
    expect((await vaultRequest(server.addr, root, 'POST', 'sys/auth/jwt', { type: 'jwt' })).status).to.equal(204);
    try {
      const role = await vaultRequest(server.addr, root, 'POST', 'auth/jwt/role/billing-app-dev', {
        role_type: 'jwt', user_claim: 'sub', bound_audiences: 'billing', token_policies: 'billing-app-dev',
      });
      expect(role.status, JSON.stringify(role.body)).to.be.oneOf([200, 204]);
      const rendered = (await readFile(join(repoRoot, 'policies/saas-admin.hcl'), 'utf8')).replaceAll('saas-', 'billing-');
      await vaultData(server.addr, root, 'PUT', 'sys/policies/acl/billing-admin', { policy: rendered });
      const admin = (await vaultRequest(server.addr, root, 'POST', 'auth/token/create', { policies: ['billing-admin'], ttl: '10m' })).body as { auth: { client_token: string } };
      registerSecret('billing admin token', admin.auth.client_token);
      const env = baoEnv(server.dir, { VAULT_ADDR: server.addr, VAULT_TOKEN: admin.auth.client_token, VAULT_CLI: serverBin, APP_NAME: 'billing' });
      const killed = await runScript('scripts/prod/kill-switch.sh', ['dev'], env);
      expect(killed.code, killed.stderr).to.equal(1);
      expect(killed.stderr).to.contain('no lock known for auth/jwt/role/billing-app-dev (jwt): its tokens are revoked, but it can log in again');
      expect(killed.stdout).to.contain('locked auth/approle/role/billing-app-dev');
      expect(killed.stdout).to.contain('revoked the database credentials leased under database/creds/billing-app-dev');
      const reopened = await runScript('scripts/prod/kill-switch.sh', ['--reopen', 'dev'], env);
      expect(reopened.code, reopened.stderr).to.equal(0);
      expect(reopened.stdout).to.contain("restored secret_id_bound_cidrs of auth/approle/role/billing-app-dev to ''");
    } finally {
      await vaultRequest(server.addr, root, 'DELETE', 'sys/auth/jwt');
    }
  });

  it('runs billing end to end with APP_NAME=billing: SDK mode, and agent mode with the shipped template', async function () {
    const billingPaths = secretGroups.map((group) => `secret/data/billing-project/dev/${group}`);
    // SDK mode: billing's role id and a wrapped secret id of billing-app-dev, as bootstrap.sh writes them.
    const sdkCredentials = await tempDir('billing-sdk');
    const sdkRun = await runBootstrap(server, 'dev', sdkCredentials, { APP_NAME: 'billing' });
    expect(sdkRun.code, sdkRun.stderr).to.equal(0);
    const sdk = await startService({
      SECRETS_MODE: 'sdk', APP_NAME: 'billing', APP_ENV: 'dev', VAULT_ADDR: server.addr,
      VAULT_ROLE_ID_FILE: join(sdkCredentials, 'role-id'), VAULT_WRAPPED_SECRET_ID_FILE: join(sdkCredentials, 'secret-id'),
    });
    try {
      expect((await fetch(`${sdk.url}/readyz`)).status).to.equal(200);
      expect(await sdk.process.log()).to.contain('secret/data/billing-project/dev/app').and.to.contain('billing-app-dev');
    } finally {
      await sdk.process.stop();
    }

    // Agent mode: the shipped agent-config and template, its env/dev.hcl naming billing's role as an
    // operator writes it for another application (saas- made billing-, as app-name.sh's app_policy does).
    const agentDir = await prepareAgentDir(server, 'dev', { APP_NAME: 'billing' });
    await rm(join(agentDir.dir, 'config'));
    await cp(join(repoRoot, 'agent-config'), join(agentDir.dir, 'config'), { recursive: true });
    const envConfig = (await readFile(join(repoRoot, 'agent-config/env/dev.hcl'), 'utf8')).replaceAll('saas-', 'billing-');
    expect(envConfig).to.contain('auth/approle/role/billing-app-dev/secret-id');
    await writeFile(join(agentDir.dir, 'config/env/dev.hcl'), envConfig);
    const agent = startAgent(server, agentDir, 'dev', 'dev', { APP_NAME: 'billing' });
    try {
      await waitForFile(agentDir.renderedFile, agent);
      await waitForFile(agentDir.tokenFile, agent);
      const rendered = JSON.parse(await readFile(agentDir.renderedFile, 'utf8')) as Record<string, { path: string }>;
      expect(Object.values(rendered).map((group) => group.path)).to.deep.equal(billingPaths);
      const service = await startService({
        SECRETS_MODE: 'agent', APP_NAME: 'billing', APP_ENV: 'dev', VAULT_ADDR: server.addr,
        SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile,
      });
      try {
        expect((await fetch(`${service.url}/readyz`)).status).to.equal(200);
        // The same render is refused by a service of another application: its paths are billing's.
        const saas = await spawnService({
          SECRETS_MODE: 'agent', APP_ENV: 'dev', VAULT_ADDR: server.addr, SECRETS_FILE: agentDir.renderedFile,
          VAULT_TOKEN_FILE: agentDir.tokenFile, SECRETS_WAIT_MS: '1000',
        });
        expect(await saas.process.exited).to.not.equal(0);
        expect(await saas.process.log())
          .to.contain('is secret/data/billing-project/dev/database, expected secret/data/saas-project/dev/database');
      } finally {
        await service.process.stop();
      }
    } finally {
      await agent.stop();
    }
  });

  it('a service logged in as billing cannot read saas\'s secrets: the policy denies it, and the error names it', async function () {
    const credentials = await tempDir('billing-as-saas');
    const run = await runBootstrap(server, 'dev', credentials, { APP_NAME: 'billing' });
    expect(run.code, run.stderr).to.equal(0);
    // An unwrapped secret id of billing's role: APP_NAME=saas then reads saas-project with billing's token.
    const minted = await vaultData<{ secret_id: string }>(server.addr, server.rootToken, 'POST', 'auth/approle/role/billing-app-dev/secret-id');
    registerSecret('secret id', minted.secret_id);
    const secretIdFile = join(credentials, 'unwrapped-secret-id');
    await writeFile(secretIdFile, minted.secret_id, { mode: 0o400 });
    const service = await spawnService({
      SECRETS_MODE: 'sdk', APP_ENV: 'dev', VAULT_ADDR: server.addr, VAULT_CONNECT_TIMEOUT_MS: '2000',
      VAULT_ROLE_ID_FILE: join(credentials, 'role-id'), VAULT_SECRET_ID_FILE: secretIdFile,
    });
    expect(await service.process.exited).to.not.equal(0);
    const log = await service.process.log();
    expect(log, log).to.match(new RegExp('permission denied reading secret/data/saas-project/dev/\\S+ \\(403\\): ' +
      'the token\'s policies are \\[billing-app-dev, default\\]; policy saas-app-dev should grant read on secret/data/saas-project/dev/\\*'));
  });

  it('refuses an APP_NAME that could match another application\'s names', async function () {
    for (const name of ['saas-x', 'Billing', '9lives', 'a_b']) {
      const run = await runBootstrap(server, 'dev', await tempDir('bad-name'), { APP_NAME: name });
      expect(run.code, name).to.equal(1);
      expect(run.stderr, name).to.contain(`APP_NAME must be lowercase letters and digits, starting with a letter (got '${name}')`);
    }
  });
});
