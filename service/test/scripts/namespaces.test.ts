import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { prepareAgentDir, startAgent, waitForFile } from '../support/agent.js';
import { serverBin, baoEnv, repoRoot, startDevServer, vaultServer, type DevServer } from '../support/bao.js';
import { runScript } from '../support/bao-server.js';
import { runBootstrap } from '../support/bootstrap.js';
import { registerSecret } from '../support/leak-scan.js';
import { startService, type ServiceProcess } from '../support/service.js';
import { tempDir } from '../support/temp-dirs.js';
import { vaultData, vaultRequest } from '../support/vault-http.js';

/**
 * Revoking a token by accessor is a Vault-wide power inside one namespace: no ACL path ties it
 * to a role. Namespaces (OpenBao's; Vault's only in its Enterprise edition) are the boundary
 * that does, so this file runs on OpenBao only.
 */
describe('one application per namespace on a real OpenBao dev server: the shipped scripts, agent and service', function () {
  this.timeout(120_000);
  let server: DevServer;
  const dirs = { saas: '', billing: '' };
  const admins = { saas: '', billing: '' };
  let agent: ReturnType<typeof startAgent> | undefined;
  let services: ServiceProcess[] = [];

  /** A call in `namespace`: OpenBao takes it as the first segment of the path. */
  const inNamespace = (namespace: string, token: string | undefined, method: string, path: string, body?: unknown) =>
    vaultRequest(server.addr, token, method, `${namespace}/${path}`, body);
  const scriptEnv = (namespace: 'saas' | 'billing', token: string) => baoEnv(server.dir, {
    VAULT_ADDR: server.addr, VAULT_TOKEN: token, VAULT_CLI: serverBin, VAULT_NAMESPACE: namespace, APP_NAME: namespace,
  });
  /** A login as the agent makes it, in the application's namespace: its token and accessor. */
  const login = async (namespace: 'saas' | 'billing') => {
    const again = await runBootstrap(server, 'dev', dirs[namespace], { VAULT_NAMESPACE: namespace, APP_NAME: namespace });
    expect(again.code, again.stderr).to.equal(0);
    const wrapping = (await readFile(join(dirs[namespace], 'secret-id'), 'utf8')).trim();
    const unwrapped = await inNamespace(namespace, wrapping, 'POST', 'sys/wrapping/unwrap');
    const secretId = (unwrapped.body as { data: { secret_id: string } }).data.secret_id;
    registerSecret('secret id', secretId);
    const roleId = (await readFile(join(dirs[namespace], 'role-id'), 'utf8')).trim();
    const response = await inNamespace(namespace, undefined, 'POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId });
    expect(response.status, JSON.stringify(response.body)).to.equal(200);
    const { client_token: token, accessor } = (response.body as { auth: { client_token: string; accessor: string } }).auth;
    registerSecret('app token', token);
    return { token, accessor };
  };

  before(async function () {
    if (vaultServer.name !== 'OpenBao') this.skip();
    server = await startDevServer();
    for (const namespace of ['saas', 'billing'] as const) {
      expect((await vaultRequest(server.addr, server.rootToken, 'POST', `sys/namespaces/${namespace}`, {})).status).to.equal(200);
      dirs[namespace] = await tempDir(`${namespace}-dev`);
      const run = await runBootstrap(server, 'dev', dirs[namespace], { VAULT_NAMESPACE: namespace, APP_NAME: namespace });
      expect(run.code, run.stderr).to.equal(0);
      // Each admin: the shipped saas-admin.hcl as first-bootstrap.sh writes it for its application.
      const policy = (await readFile(join(repoRoot, 'policies/saas-admin.hcl'), 'utf8')).replaceAll('saas-', `${namespace}-`);
      await vaultData(server.addr, server.rootToken, 'PUT', `${namespace}/sys/policies/acl/${namespace}-admin`, { policy });
      const created = await inNamespace(namespace, server.rootToken, 'POST', 'auth/token/create', { policies: [`${namespace}-admin`], ttl: '10m' });
      admins[namespace] = (created.body as { auth: { client_token: string } }).auth.client_token;
      registerSecret(`${namespace} admin token`, admins[namespace]);
    }
  });

  afterEach(async function () {
    await agent?.stop();
    agent = undefined;
    await Promise.all(services.map((service) => service.process.stop()));
    services = [];
  });

  after(async function () {
    if (vaultServer.name === 'OpenBao') await server.stop();
  });

  it('bootstrap.sh writes each application\'s roles and secrets in its own namespace, none in the root one', async function () {
    for (const namespace of ['saas', 'billing'] as const) {
      const roles = await inNamespace(namespace, server.rootToken, 'LIST', 'auth/approle/role');
      expect((roles.body as { data: { keys: string[] } }).data.keys).to.deep.equal([`${namespace}-app-dev`]);
    }
    expect((await vaultRequest(server.addr, server.rootToken, 'LIST', 'auth/approle/role')).status, 'the root namespace').to.equal(404);
    const { token } = await login('billing');
    expect((await inNamespace('billing', token, 'GET', 'secret/data/billing-project/dev/api-keys')).status).to.equal(200);
    expect((await inNamespace('saas', token, 'GET', 'secret/data/saas-project/dev/api-keys')).status, 'billing\'s token in saas').to.equal(403);
  });

  it('an application\'s admin neither lists, looks up nor revokes another application\'s tokens by accessor', async function () {
    const saas = await login('saas');
    const billing = await login('billing');
    const listed = await inNamespace('saas', admins.saas, 'LIST', 'auth/token/accessors');
    expect(listed.status).to.equal(200);
    const accessors = (listed.body as { data: { keys: string[] } }).data.keys;
    expect(accessors).to.include(saas.accessor).and.not.include(billing.accessor);
    for (const namespace of ['saas', 'billing']) {
      for (const path of ['auth/token/lookup-accessor', 'auth/token/revoke-accessor']) {
        const tried = await inNamespace(namespace, admins.saas, 'POST', path, { accessor: billing.accessor });
        // 403 in billing's namespace; in saas's, OpenBao answers 500 "cannot lookup token in different namespace".
        expect(tried.status, `${path} in ${namespace}`).to.be.at.least(400);
        expect(JSON.stringify(tried.body), `${path} in ${namespace}`).to.not.contain('billing-app-dev');
      }
    }
    expect((await inNamespace('billing', billing.token, 'GET', 'auth/token/lookup-self')).status, 'billing\'s token').to.equal(200);
    // The same call in billing's own namespace, by billing's admin, does revoke it: the refusal above is the boundary.
    expect((await inNamespace('billing', admins.billing, 'POST', 'auth/token/revoke-accessor', { accessor: billing.accessor })).status)
      .to.equal(204);
    expect((await inNamespace('billing', billing.token, 'GET', 'auth/token/lookup-self')).status).to.equal(403);
  });

  it('kill-switch.sh in saas\'s namespace halts saas\'s agent-mode service; billing\'s SDK-mode service keeps serving', async function () {
    // saas: the shipped agent configuration, unchanged, told its namespace by VAULT_NAMESPACE, and
    // the service checking the agent's token there.
    const agentDir = await prepareAgentDir(server, 'dev', { VAULT_NAMESPACE: 'saas' });
    agent = startAgent(server, agentDir, 'dev', 'dev', { VAULT_NAMESPACE: 'saas' });
    await waitForFile(agentDir.renderedFile, agent);
    await waitForFile(agentDir.tokenFile, agent);
    const saasService = await startService({
      SECRETS_MODE: 'agent', APP_ENV: 'dev', VAULT_ADDR: server.addr, VAULT_NAMESPACE: 'saas', TOKEN_CHECK_MAX_INTERVAL_MS: '1000',
      SECRETS_FILE: agentDir.renderedFile, VAULT_TOKEN_FILE: agentDir.tokenFile,
    });
    services.push(saasService);
    // billing: SDK mode, its own login in its namespace.
    const credentials = await tempDir('billing-sdk');
    const run = await runBootstrap(server, 'dev', credentials, { VAULT_NAMESPACE: 'billing', APP_NAME: 'billing' });
    expect(run.code, run.stderr).to.equal(0);
    const billingService = await startService({
      SECRETS_MODE: 'sdk', APP_NAME: 'billing', APP_ENV: 'dev', VAULT_ADDR: server.addr, VAULT_NAMESPACE: 'billing',
      TOKEN_CHECK_MAX_INTERVAL_MS: '1000',
      VAULT_ROLE_ID_FILE: join(credentials, 'role-id'), VAULT_WRAPPED_SECRET_ID_FILE: join(credentials, 'secret-id'),
    });
    services.push(billingService);
    expect(await billingService.process.log()).to.contain('secret/data/billing-project/dev/app');

    const killed = await runScript('scripts/prod/kill-switch.sh', ['dev'], scriptEnv('saas', admins.saas));
    const killedAt = Date.now();
    expect(killed.code, killed.stderr).to.equal(0);
    expect(killed.stdout).to.match(/revoked [1-9]\d* token\(s\) with the policy saas-app-dev/);
    // Halted within the 1000 ms check interval + 1 s.
    for (;;) {
      if ((await fetch(`${saasService.url}/readyz`)).status === 503) break;
      if (Date.now() > killedAt + 2000) throw new Error('the saas service still served 2 s after the kill');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // billing's service checked its token twice since (1000 ms interval) and still serves.
    await new Promise((resolve) => setTimeout(resolve, 2 * 1000 + 1000 - (Date.now() - killedAt)));
    expect((await fetch(`${billingService.url}/readyz`)).status, 'billing after saas\'s kill').to.equal(200);

    const reopened = await runScript('scripts/prod/kill-switch.sh', ['--reopen', 'dev'], scriptEnv('saas', admins.saas));
    expect(reopened.code, reopened.stderr).to.equal(0);
  });
});
