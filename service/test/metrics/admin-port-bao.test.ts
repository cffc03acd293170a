import { expect } from 'chai';
import { secretGroups } from '../../src/config/secret-catalogue.generated.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSettings } from '../../src/config/settings.js';
import { startService, type RunningService } from '../../src/start.js';
import { destroySecretIds, revokeAppRoleTokens } from '../support/approle-admin.js';
import { startDevServer, type DevServer } from '../support/bao.js';
import { runBootstrap } from '../support/bootstrap.js';
import { statusOf, timeUntil } from '../support/http-poll.js';
import { capturingLogger } from '../support/rendered-secrets.js';
import { tempDir } from '../support/temp-dirs.js';

const sample = (text: string, name: string, labels = '') =>
  Number(text.split('\n').find((l) => l.startsWith(`${name}${labels} `))?.split(' ').at(-1));

describe('the operator\'s port of a service in SDK mode, against a real bao dev server', function () {
  this.timeout(60_000);
  let server: DevServer;
  let service: RunningService | undefined;
  const adminToken = 'admin-bearer-token-for-tests';

  // A server each: the kill in the first test leaves the role id locked (Vault's user lockout).
  beforeEach(async function () {
    server = await startDevServer();
  });
  afterEach(async function () {
    await service?.close();
    service = undefined;
    await server.stop();
  });

  async function start(extra: NodeJS.ProcessEnv = {}): Promise<{ url: string; admin: string }> {
    const credentials = await tempDir('credentials');
    const run = await runBootstrap(server, 'dev', credentials, { ROLE_SECRET_ID_NUM_USES: '0' });
    expect(run.code, run.stderr).to.equal(0);
    service = await startService(readSettings({
      SECRETS_MODE: 'sdk', APP_ENV: 'dev', PORT: '0', ADMIN_PORT: '0', DRAIN_DELAY_MS: '0', VAULT_ADDR: server.addr, TOKEN_CHECK_MAX_INTERVAL_MS: '500', ...extra,
    }), { VAULT_ROLE_ID_FILE: join(credentials, 'role-id'), VAULT_WRAPPED_SECRET_ID_FILE: join(credentials, 'secret-id') },
    capturingLogger().logger);
    return { url: `http://127.0.0.1:${service.port}`, admin: `http://127.0.0.1:${service.adminPort}` };
  }

  it('counts the service\'s real calls to Vault, and answers /status and /metrics while traffic is halted', async function () {
    const { url, admin } = await start();
    // Two lookups at the 500 ms check interval: the second within two intervals + 1 s.
    let text: string;
    for (const end = Date.now() + 2 * 500 + 1000; ;) {
      text = await (await fetch(`${admin}/metrics`)).text();
      if (sample(text, 'saas_vault_requests_total', '{operation="lookup-self",outcome="ok"}') >= 2) break;
      if (Date.now() > end) throw new Error('/metrics counted fewer than two lookup-self calls within two 500 ms check intervals + 1 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(sample(text, 'saas_vault_requests_total', '{operation="login",outcome="ok"}')).to.equal(1);
    expect(sample(text, 'saas_vault_requests_total', '{operation="read",outcome="ok"}'), 'one read per group').to.equal(secretGroups.length);
    expect(sample(text, 'saas_vault_requests_total', '{operation="unwrap",outcome="ok"}')).to.equal(1);
    expect(sample(text, 'saas_vault_requests_total', '{operation="lookup-self",outcome="ok"}')).to.be.at.least(2);
    expect(sample(text, 'saas_traffic_gate_open')).to.equal(1);
    expect(sample(text, 'saas_vault_token_ttl_seconds')).to.be.within(250, 300);

    // The kill: the token and the secret id revoked.
    await destroySecretIds(server);
    await revokeAppRoleTokens(server);
    await timeUntil(`${url}/readyz`, 503, 3000);
    // Halted first for the refused token (vault_token_invalid), then for the login that failed.
    let view: unknown;
    for (const end = Date.now() + 3000; ;) {
      const status = await fetch(`${admin}/status`);
      expect(status.status, 'the admin port answers while halted').to.equal(200);
      view = await status.json();
      if ((view as { gate: { code?: string } }).gate.code === 'vault_login_failed' || Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(view).to.nested.include({ 'gate.state': 'halted', 'gate.code': 'vault_login_failed' });
    text = await (await fetch(`${admin}/metrics`)).text();
    expect(sample(text, 'saas_traffic_gate_open')).to.equal(0);
    expect(sample(text, 'saas_traffic_halts_total', '{code="vault_login_failed"}')).to.equal(1);
    expect(sample(text, 'saas_vault_requests_total', '{operation="lookup-self",outcome="refused"}')).to.equal(1);
    expect(sample(text, 'saas_vault_requests_total', '{operation="login",outcome="rejected"}')).to.be.at.least(1);
    expect(await statusOf(`${url}/status`), 'not on the public port').to.be.oneOf([404, 503]);
  });

  it('asks for the bearer token of ADMIN_TOKEN_FILE', async function () {
    const file = join(await tempDir('admin-token'), 'token');
    await writeFile(file, `${adminToken}\n`, { mode: 0o600 });
    const { admin } = await start({ ADMIN_TOKEN_FILE: file });
    expect(service?.adminPort).to.be.a('number');
    expect((await fetch(`${admin}/metrics`)).status).to.equal(401);
    const authorized = await fetch(`${admin}/metrics`, { headers: { Authorization: `Bearer ${adminToken}` } });
    expect(authorized.status).to.equal(200);
    expect(await authorized.text()).to.contain('saas_traffic_gate_open 1');
  });

  it('refuses to start when ADMIN_TOKEN_FILE cannot be read, or ADMIN_PORT is taken, naming the setting', async function () {
    const missing = await start({ ADMIN_TOKEN_FILE: '/nonexistent/admin-token' }).catch((error: unknown) => error as Error);
    expect(missing).to.be.instanceOf(Error);
    expect((missing as Error).message).to.equal('ADMIN_TOKEN_FILE names /nonexistent/admin-token, which cannot be read (ENOENT)');
    const first = await start();
    const taken = await start({ ADMIN_PORT: first.admin.split(':').at(-1) ?? '' }).catch((error: unknown) => error as Error);
    expect((taken as Error).message).to.match(/^cannot listen on 127\.0\.0\.1:\d+ \(ADMIN_HOST, ADMIN_PORT\): .*EADDRINUSE/);
  });
});
