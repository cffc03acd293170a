import { expect } from 'chai';
import { secretGroups } from '../src/config/secret-catalogue.generated.js';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSettings } from '../src/config/settings.js';
import { startService, type RunningService } from '../src/start.js';
import { startDevServer, type DevServer } from './support/bao.js';
import { runBootstrap } from './support/bootstrap.js';
import { capturingLogger, renderedDocument, renderLikeAgent } from './support/rendered-secrets.js';
import { tempDir } from './support/temp-dirs.js';
import { unwrapSecretId, vaultData } from './support/vault-http.js';

describe('startService in SDK mode, against a real bao dev server', function () {
  let server: DevServer;
  let credentials: string;
  let roleId: string;
  let secretId: string;
  let running: RunningService | undefined;

  before(async function () {
    server = await startDevServer();
    credentials = await tempDir('credentials');
    const run = await runBootstrap(server, 'dev', credentials, { ROLE_SECRET_ID_NUM_USES: '0' });
    expect(run.code, run.stderr).to.equal(0);
    roleId = await readFile(join(credentials, 'role-id'), 'utf8');
    secretId = await unwrapSecretId(server.addr, await readFile(join(credentials, 'secret-id'), 'utf8'));
    await writeFile(join(credentials, 'plain-secret-id'), `${secretId}\n`);
  });
  afterEach(async function () {
    await running?.close();
    running = undefined;
  });
  after(async function () {
    await server.stop();
  });

  function settings(extra: NodeJS.ProcessEnv = {}) {
    return readSettings({ SECRETS_MODE: 'sdk', APP_ENV: 'dev', PORT: '0', ADMIN_PORT: '0', DRAIN_DELAY_MS: '0', VAULT_ADDR: server.addr, ...extra });
  }

  it('takes the credentials out of the environment, loads every path, and only then listens', async function () {
    const env: NodeJS.ProcessEnv = { VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId, APP_ENV: 'dev' };
    const log = capturingLogger();
    running = await startService(settings(), env, log.logger);

    expect(env).to.deep.equal({ APP_ENV: 'dev' });
    expect(running.mode).to.equal('sdk');
    const versions: Record<string, number> = {};
    for (const group of secretGroups) {
      const kv = await vaultData<{ metadata: { version: number }; data: unknown }>(server.addr, server.rootToken, 'GET',
        `secret/data/saas-project/dev/${group}`);
      versions[`secret/data/saas-project/dev/${group}`] = kv.metadata.version;
    }
    const snapshot = running.holder.current;
    expect(Object.fromEntries(snapshot?.sources.map((s) => [s.path, s.version]) ?? [])).to.deep.equal(versions);
    const order = log.lines.map((l) => l.msg);
    expect(order).to.deep.equal(['logged in to Vault with AppRole', 'secrets loaded from Vault', 'listening']);
    expect((await fetch(`http://127.0.0.1:${running.port}/readyz`)).status).to.equal(200);
    expect(log.text()).to.not.contain(secretId).and.not.contain(snapshot?.secrets.database.password);
  });

  it('works with VAULT_ROLE_ID_FILE and VAULT_SECRET_ID_FILE', async function () {
    const env = { VAULT_ROLE_ID_FILE: join(credentials, 'role-id'), VAULT_SECRET_ID_FILE: join(credentials, 'plain-secret-id') };
    running = await startService(settings(), env, capturingLogger().logger);
    expect(env).to.deep.equal({});
    expect(running.holder.current?.sources).to.have.length(secretGroups.length);
  });

  it('works with a response-wrapped secret id, given once', async function () {
    const response = await fetch(`${server.addr}/v1/auth/approle/role/saas-app-dev/secret-id`, {
      method: 'POST', headers: { 'X-Vault-Token': server.rootToken, 'X-Vault-Wrap-TTL': '30s' },
    });
    const wrappingToken = ((await response.json()) as { wrap_info: { token: string } }).wrap_info.token;
    const file = join(await tempDir('wrapped'), 'wrapped-secret-id');
    await writeFile(file, wrappingToken);
    running = await startService(settings(), { VAULT_ROLE_ID: roleId, VAULT_WRAPPED_SECRET_ID_FILE: file },
      capturingLogger().logger);
    expect(running.holder.current?.sources).to.have.length(secretGroups.length);
    await running.close();
    running = undefined;

    const replay = await startService(settings(), { VAULT_ROLE_ID: roleId, VAULT_WRAPPED_SECRET_ID_FILE: file },
      capturingLogger().logger).catch((error: unknown) => error as Error);
    expect(replay).to.be.instanceOf(Error);
    expect((replay as Error).message).to.contain('possible interception');
  });
});

describe('startService in agent mode', function () {
  it('removes AppRole credential variables from the environment too: the agent holds the credentials', async function () {
    const server = await startDevServer();
    let running: RunningService | undefined;
    try {
      const response = await fetch(`${server.addr}/v1/auth/token/create`, {
        method: 'POST', headers: { 'X-Vault-Token': server.rootToken }, body: JSON.stringify({ ttl: '1h' }),
      });
      const token = ((await response.json()) as { auth: { client_token: string } }).auth.client_token;
      const dir = await tempDir('agent-files');
      await writeFile(join(dir, 'token'), token);
      await renderLikeAgent(join(dir, 'app.json'), JSON.stringify(renderedDocument('dev', 1)));
      const env: NodeJS.ProcessEnv = {
        APP_ENV: 'dev', VAULT_ROLE_ID: 'left-over-role-id', VAULT_SECRET_ID_FILE: '/run/secrets/secret-id',
        VAULT_WRAPPED_SECRET_ID: 'left-over-wrapping-token',
      };
      running = await startService(readSettings({
        SECRETS_MODE: 'auto', APP_ENV: 'dev', PORT: '0', ADMIN_PORT: '0', DRAIN_DELAY_MS: '0', VAULT_ADDR: server.addr,
        SECRETS_FILE: join(dir, 'app.json'), VAULT_TOKEN_FILE: join(dir, 'token'),
      }), env, capturingLogger().logger);
      expect(running.mode).to.equal('agent');
      expect(env).to.deep.equal({ APP_ENV: 'dev' });
    } finally {
      await running?.close();
      await server.stop();
    }
  });
});
