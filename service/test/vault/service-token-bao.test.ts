import { expect } from 'chai';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readSettings } from '../../src/config/settings.js';
import { startService, type RunningService } from '../../src/start.js';
import { checkFraction, checkSpread } from '../../src/vault/token-schedule.js';
import { destroySecretIds, revokeAppRoleTokens, unlockRoleId, wrappedSecretId } from '../support/approle-admin.js';
import { startDevServer, type DevServer, vaultServer } from '../support/bao.js';
import { runBootstrap } from '../support/bootstrap.js';
import { poll, statusOf, timeUntil } from '../support/http-poll.js';
import { capturingLogger } from '../support/rendered-secrets.js';
import { tempDir } from '../support/temp-dirs.js';
import { agentTimeFactor } from '../support/scaled-agent.js';
import { asDuration, scaleDurations, shippedProduction } from '../support/shipped-durations.js';
import { vaultData, vaultRequest } from '../support/vault-http.js';

describe(`the service's token (SDK mode) against a real ${vaultServer.name} dev server`, function () {
  this.timeout(60_000);
  let server: DevServer;
  let service: RunningService | undefined;
  let log: ReturnType<typeof capturingLogger>;

  beforeEach(async function () {
    server = await startDevServer();
    log = capturingLogger();
  });
  afterEach(async function () {
    await service?.close();
    service = undefined;
    await server.stop();
  });

  async function start(roleEnv: NodeJS.ProcessEnv, settingsEnv: NodeJS.ProcessEnv = {}): Promise<{ url: string; secretIdFile: string }> {
    const credentials = await tempDir('credentials');
    const run = await runBootstrap(server, 'dev', credentials, roleEnv);
    expect(run.code, run.stderr).to.equal(0);
    const settings = readSettings({ SECRETS_MODE: 'sdk', APP_ENV: 'dev', PORT: '0', ADMIN_PORT: '0', DRAIN_DELAY_MS: '0', VAULT_ADDR: server.addr, ...settingsEnv });
    const secretIdFile = join(credentials, 'secret-id');
    service = await startService(settings,
      { VAULT_ROLE_ID_FILE: join(credentials, 'role-id'), VAULT_WRAPPED_SECRET_ID_FILE: secretIdFile }, log.logger);
    return { url: `http://127.0.0.1:${service.port}`, secretIdFile };
  }
  const fatal = () => log.lines.filter((l) => l.level === 'fatal');
  const newLogin = 'replaced the service\'s Vault token';

  it(`serves 200 without a gap for longer than the max TTL, on the shipped durations divided by ${agentTimeFactor}: renewals, then a new login`, async function () {
    // The shipped TTL, max TTL and check interval, each divided by one factor: the margin a
    // renewal has before the expiry is the one users get (a sixth of the TTL at the latest), not
    // one a busy machine eats.
    const durations = scaleDurations((await shippedProduction()).durations, agentTimeFactor);
    this.timeout(durations.tokenMaxTtl + 60_000);
    const { url } = await start(
      { ROLE_TOKEN_TTL: asDuration(durations.tokenTtl), ROLE_TOKEN_MAX_TTL: asDuration(durations.tokenMaxTtl), ROLE_SECRET_ID_NUM_USES: '0' },
      { TOKEN_CHECK_MAX_INTERVAL_MS: String(durations.checkInterval) });
    const statuses = await poll(`${url}/readyz`, durations.tokenMaxTtl + durations.tokenTtl, 250);
    expect(statuses.filter((s) => s !== 200), `${statuses.length} requests`).to.deep.equal([]);
    expect(log.lines.map((l) => l.msg)).to.include(newLogin);
    expect(fatal()).to.deep.equal([]);
    const status = service?.tokenWatcher.status();
    expect(service?.mode).to.equal('sdk');
    expect(status).to.include({ renewable: true, lastCheckOk: true });
    expect(status?.ttlSeconds).to.be.within(0, durations.tokenTtl / 1000);
  });

  it('halts every route within one check interval + 1 s of a revocation, stays halted without a secret id, ' +
    'and recovers when a fresh one is dropped', async function () {
    const { url, secretIdFile } = await start({ ROLE_TOKEN_TTL: '4s', ROLE_TOKEN_MAX_TTL: '60s', ROLE_SECRET_ID_NUM_USES: '1' },
      { TOKEN_CHECK_MAX_INTERVAL_MS: '0' });
    expect(await statusOf(`${url}/readyz`)).to.equal(200);
    await revokeAppRoleTokens(server);
    // The check interval is two thirds of the 4 s TTL, plus its random part at most.
    const interval = 4000 * (checkFraction + checkSpread / 2);
    const halted = await timeUntil(`${url}/readyz`, 503, interval + 1000);
    expect(halted).to.be.at.most(interval + 1000);
    for (const path of ['/readyz', '/anything']) expect(await statusOf(`${url}${path}`), path).to.equal(503);
    // The refusal at once, then the failed login naming the fix (the login follows the halt:
    // on a busy machine it may not have answered yet when the 503 is first seen).
    for (const end = Date.now() + 5000; fatal().length < 2 && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
    expect(fatal().map((l) => l.code)).to.deep.equal(['vault_token_invalid', 'vault_login_failed']);

    // The only secret id was used at start-up: nothing to log in with.
    expect((await poll(`${url}/readyz`, 3000)).every((s) => s === 503)).to.be.true;
    const wrappingToken = await wrappedSecretId(server);
    await writeFile(secretIdFile, wrappingToken);
    // The service's retries with the used-up secret id may have locked the role id (5 failures).
    await unlockRoleId(server, await readFile(join(dirname(secretIdFile), 'role-id'), 'utf8'));
    await timeUntil(`${url}/readyz`, 200, 12_000);
    expect(fatal(), 'no more fatal lines').to.have.length(2);
    expect(log.text()).to.not.contain(wrappingToken);
  });

  it('halts within the check interval + 1 s when Vault refuses the token and the new login then fails transiently (429 from a rate-limit quota on the login path), and reopens once a login passes', async function () {
    const { url } = await start({ ROLE_SECRET_ID_NUM_USES: '0' }, { TOKEN_CHECK_MAX_INTERVAL_MS: '1000' });
    // Every login from now on is over the quota: Vault answers 429, which says nothing about the secret id.
    const quota = await vaultRequest(server.addr, server.rootToken, 'POST', 'sys/quotas/rate-limit/no-logins',
      { path: 'auth/approle/login', rate: 1, interval: '1h' });
    expect(quota.status, JSON.stringify(quota.body)).to.be.oneOf([200, 204]);
    const spent = await vaultRequest(server.addr, undefined, 'POST', 'auth/approle/login', { role_id: 'spend-the-quota' });
    expect(spent.status).to.not.equal(429);
    const refusedAt = Date.now();
    await revokeAppRoleTokens(server);
    const halted = await timeUntil(`${url}/readyz`, 503, 1000 + 1000 + 1000);
    expect(Date.now() - refusedAt, 'halted within the check interval + 1 s').to.be.at.most(1000 + 1000);
    expect(halted).to.be.at.most(2000);
    // It keeps trying, and stays halted: the revoked token is never trusted again.
    expect((await poll(`${url}/readyz`, 3000, 250)).every((s) => s === 503)).to.be.true;
    expect(log.lines.some((l) => /rate limit quota exceeded/.test(String(l.problem)))).to.be.true;
    expect(fatal().map((l) => l.code)).to.deep.equal(['vault_token_invalid']);
    expect((await vaultRequest(server.addr, server.rootToken, 'DELETE', 'sys/quotas/rate-limit/no-logins')).status).to.equal(204);
    await timeUntil(`${url}/readyz`, 200, 12_000);
  });

  describe('the kill switch, with the default 10 s check interval and a 5 min token', function () {
    it('rotate: revoking the token alone halts at its next check and a new login reopens, within 10 s + 1 s', async function () {
      const { url } = await start({ ROLE_SECRET_ID_NUM_USES: '0' });
      const revokedAt = Date.now();
      await revokeAppRoleTokens(server);
      const deadline = revokedAt + 11_000 + 2000;
      while (!log.lines.some((l) => l.msg === newLogin) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const login = log.lines.find((l) => l.msg === newLogin);
      const tookMs = Date.parse(String(login?.time)) - revokedAt;
      expect(tookMs, 'the new login came within 10 s + 1 s').to.be.below(11_000);
      expect(await statusOf(`${url}/readyz`)).to.equal(200);
      // One rule for every refusal: the refused token is reported at once, the login reopens.
      expect(fatal().map((l) => l.code)).to.deep.equal(['vault_token_invalid']);
      console.log(`      rotate: new login ${tookMs} ms after the revocation`);
    });

    it('kill: revoking the token and its secret id halts every route within 10 s + 1 s, for good, one fatal line per cause',
      async function () {
        const { url } = await start({ ROLE_SECRET_ID_NUM_USES: '0' });
        expect(await destroySecretIds(server)).to.equal(1);
        await revokeAppRoleTokens(server);
        const halted = await timeUntil(`${url}/readyz`, 503, 11_000);
        console.log(`      kill: halted ${halted} ms after the revocation`);
        expect((await poll(`${url}/readyz`, 12_000, 500)).every((s) => s === 503), 'stays halted').to.be.true;
        expect(fatal().map((l) => l.code)).to.deep.equal(['vault_token_invalid', 'vault_login_failed']);
        expect(String(fatal()[1]?.reason)).to.contain('until an operator delivers a fresh secret id');
        const body = await (await fetch(`${url}/readyz`)).json() as { error: { message: string } };
        expect(body.error.message, 'the public answer names no cause').to.equal('service halted: the service cannot log in to Vault');
      });
  });

  it('a 768 h token (Vault\'s default TTL) keeps the service open: no halt 1 ms after the start', async function () {
    const { url } = await start({ ROLE_TOKEN_TTL: '768h', ROLE_TOKEN_MAX_TTL: '768h' });
    expect((await poll(`${url}/readyz`, 1500)).every((s) => s === 200)).to.be.true;
    expect(service?.tokenWatcher.status().ttlSeconds).to.be.greaterThan(768 * 3600 - 10);
    expect(fatal()).to.deep.equal([]);
  });

  it('a 429 from a real rate-limit quota does not halt, and its Retry-After is honoured', async function () {
    const { url } = await start({ ROLE_SECRET_ID_NUM_USES: '0' }, { TOKEN_CHECK_MAX_INTERVAL_MS: '300' });
    await vaultData(server.addr, server.rootToken, 'POST', 'sys/quotas/config', { enable_rate_limit_response_headers: true });
    await vaultData(server.addr, server.rootToken, 'POST', 'sys/quotas/rate-limit/lookup-self',
      { path: 'auth/token/lookup-self', rate: 1, interval: '5s' });
    const statuses = await poll(`${url}/readyz`, 4000);
    expect(statuses.every((s) => s === 200), statuses.join(',')).to.be.true;
    expect(fatal()).to.deep.equal([]);
    const retries = log.lines.filter((l) => String(l.problem).startsWith('429'));
    expect(retries.length, 'the quota answered 429').to.be.at.least(1);
    // The check interval is 300 ms; Vault asked for seconds, and got them.
    for (const line of retries) expect(line.retryInMs).to.be.at.least(1000);
    expect(retries.length, 'not one retry per 300 ms').to.be.at.most(2);
  });
});
